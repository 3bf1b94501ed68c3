// Seed inputs written by Apache Avro for Java (the reference implementation, and what JVM
// producers of license events use), for the fuzz corpus:
//   event_record/ok-java-*     license events, single-object encoded by BinaryMessageEncoder
//                              (v1 and v2 writers) and Confluent-framed (schema id 2 = v2)
//   endpoint_record/ok-java-*  an endpoint record (schema endpoint.v3), keyed by its id
// It also prints each schema's CRC-64-AVRO fingerprint as Java computes it.
//
// Run from the repository root after a schema change, and commit the files:
//   mvn -q -f fuzz/producers/java/pom.xml dependency:build-classpath -Dmdep.outputFile=/tmp/cp
//   java -cp "$(cat /tmp/cp)" fuzz/producers/java/JavaSeeds.java

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.message.BinaryMessageEncoder;

public class JavaSeeds {
    static final Path CORPUS = Path.of("fuzz/corpus");

    static Schema schema(String file) throws IOException {
        Schema s = new Schema.Parser().parse(Files.readString(Path.of("schemas", file)));
        System.out.printf("%s: CRC-64-AVRO %016x%n", file, SchemaNormalization.parsingFingerprint64(s));
        return s;
    }

    static byte[] singleObject(Schema schema, GenericRecord record) throws IOException {
        ByteBuffer buffer = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), schema).encode(record);
        byte[] out = new byte[buffer.remaining()];
        buffer.get(out);
        return out;
    }

    static byte[] confluent(int schemaId, Schema schema, GenericRecord record) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0);
        out.write(ByteBuffer.allocate(4).putInt(schemaId).array());
        BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(schema).write(record, encoder);
        encoder.flush();
        return out.toByteArray();
    }

    static void write(String target, String name, byte[] bytes) throws IOException {
        Path path = CORPUS.resolve(target).resolve(name);
        Files.write(path, bytes);
        System.out.printf("%s: %d bytes%n", path, bytes.length);
    }

    static GenericRecord event(Schema schema, String type) {
        Schema dataSchema = schema.getField("data").schema();
        GenericRecord data = new GenericData.Record(dataSchema);
        data.put("licenseKey", "TO-8F3A-22C1-9B7E-F6A8");
        data.put("plan", "enterprise");
        data.put("domain", null);
        data.put("activationsUsed", 3);
        data.put("activationLimit", 50);
        data.put("expiresAt", 1805068800000L);
        data.put("features", List.of("analytics", "sso"));
        data.put("previousPlan", "professional");
        GenericRecord event = new GenericData.Record(schema);
        event.put("id", "evt_java01");
        event.put("type", type);
        event.put("created", 1773585000123L);
        event.put("account_id", "acc_jvm");
        event.put("data", data);
        return event;
    }

    public static void main(String[] args) throws IOException {
        Schema v1 = schema("license_event.v1.avsc");
        Schema v2 = schema("license_event.v2.avsc");
        write("event_record", "ok-java-v1-license.upgraded", singleObject(v1, event(v1, "license.upgraded")));
        GenericRecord renewed = event(v2, "license.renewed");
        GenericRecord data = (GenericRecord) renewed.get("data");
        data.put("amount", 49900L);
        data.put("currency", "EUR");
        write("event_record", "ok-java-v2-license.renewed", singleObject(v2, renewed));
        write("event_record", "ok-java-confluent_v2-license.renewed", confluent(2, v2, renewed));

        Schema endpoint = schema("endpoint.v3.avsc");
        Schema secretSchema = endpoint.getField("secrets").schema().getElementType();
        GenericRecord secret = new GenericData.Record(secretSchema);
        secret.put("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        secret.put("expires_at_ms", null);
        GenericRecord batching = new GenericData.Record(endpoint.getField("batching").schema());
        batching.put("enabled", false);
        GenericRecord ep = new GenericData.Record(endpoint);
        ep.put("id", "ep_java");
        ep.put("account_id", "acc_jvm");
        ep.put("url", "http://10.0.0.7:8080/hooks");
        ep.put("event_types", List.of());
        ep.put("secrets", List.of(secret));
        ep.put("enabled", true);
        ep.put("batching", batching);
        ep.put("version", 1L);
        ByteArrayOutputStream record = new ByteArrayOutputStream();
        record.write("ep_java".getBytes());
        record.write(0);
        record.write(singleObject(endpoint, ep));
        write("endpoint_record", "ok-java-v3", record.toByteArray());
    }
}
