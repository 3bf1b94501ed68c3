// The JVM producer and consumer of hookrelay's interop tests (tests/it/interop.rs), written
// against Apache Avro for Java (the specification's reference implementation) and the Apache
// Kafka Java client, as a JVM licensing system or consumer would use them. hookrelay's own
// code plays no part here: this program reads the schema files in schemas/ and nothing else.
//
//   fingerprints SCHEMA_DIR
//       one line per schemas/*.avsc: file name, SchemaNormalization.parsingFingerprint64 as
//       16 hex digits, and the Parsing Canonical Form
//   produce BOOTSTRAP TOPIC SCHEMA_DIR CASES_FILE
//       CASES_FILE holds JSON lines {"schema":"license_event.v2","framing":"single"|"confluent",
//       "confluent_id":N,"key":"...","record":{...}}: each record is built as a GenericRecord
//       of that schema and written with BinaryMessageEncoder (single-object) or as a plain
//       binary datum after the Confluent header, then produced with KafkaProducer (acks=all,
//       idempotent); prints the number produced
//   read SCHEMA_DIR
//       stdin lines "NAME HEX" (NAME like "attempt", HEX a single-object record); each is
//       decoded with BinaryMessageDecoder for the newest schemas/NAME.vN.avsc, knowing every
//       older version, and printed as one JSON line ({"error": "..."} when it does not decode)
//
// Run by the tests through scripts/interop-tools, which fetches the jars and compiles this file.

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Future;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Interop {
    static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        switch (args.length > 0 ? args[0] : "") {
            case "fingerprints" -> fingerprints(Path.of(args[1]));
            case "produce" -> produce(args[1], args[2], Path.of(args[3]), Path.of(args[4]));
            case "read" -> read(Path.of(args[1]));
            default -> {
                System.err.println("usage: Interop fingerprints|produce|read ...");
                System.exit(2);
            }
        }
    }

    static Schema parse(Path file) throws IOException {
        return new Schema.Parser().parse(Files.readString(file));
    }

    static void fingerprints(Path dir) throws IOException {
        List<Path> files = new ArrayList<>();
        try (var listing = Files.list(dir)) {
            listing.filter(p -> p.toString().endsWith(".avsc")).sorted().forEach(files::add);
        }
        for (Path file : files) {
            Schema schema = parse(file);
            System.out.printf("%s %016x %s%n", file.getFileName(),
                SchemaNormalization.parsingFingerprint64(schema), SchemaNormalization.toParsingForm(schema));
        }
    }

    // ---- producing ----

    static void produce(String bootstrap, String topic, Path schemaDir, Path casesFile) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        Map<String, Schema> schemas = new HashMap<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (String line : Files.readAllLines(casesFile, StandardCharsets.UTF_8)) {
                if (line.isBlank()) continue;
                JsonNode c = JSON.readTree(line);
                String name = c.get("schema").asText();
                Schema schema = schemas.get(name);
                if (schema == null) {
                    schema = parse(schemaDir.resolve(name + ".avsc"));
                    schemas.put(name, schema);
                }
                GenericRecord record = (GenericRecord) toAvro(schema, c.get("record"), "record");
                byte[] value = switch (c.get("framing").asText()) {
                    case "single" -> singleObject(schema, record);
                    case "confluent" -> confluent(c.get("confluent_id").asInt(), schema, record);
                    default -> throw new IllegalArgumentException("unknown framing in " + line);
                };
                byte[] key = c.get("key").asText().getBytes(StandardCharsets.UTF_8);
                sent.add(producer.send(new ProducerRecord<>(topic, key, value)));
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) f.get();
        }
        System.out.println(sent.size());
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

    /** Plain JSON (nulls for absent optionals, numbers, strings, arrays) as a value of `schema`. */
    static Object toAvro(Schema schema, JsonNode v, String path) {
        switch (schema.getType()) {
            case NULL:
                if (v == null || v.isNull()) return null;
                break;
            case BOOLEAN:
                if (v.isBoolean()) return v.booleanValue();
                break;
            case INT:
                if (v.canConvertToInt() && v.isIntegralNumber()) return v.intValue();
                break;
            case LONG:
                if (v.canConvertToLong() && v.isIntegralNumber()) return v.longValue();
                break;
            case DOUBLE:
                if (v.isNumber()) return v.doubleValue();
                break;
            case FLOAT:
                if (v.isNumber()) return v.floatValue();
                break;
            case STRING:
                if (v.isTextual()) return v.textValue();
                break;
            case ENUM:
                if (v.isTextual()) return new GenericData.EnumSymbol(schema, v.textValue());
                break;
            case ARRAY: {
                if (!v.isArray()) break;
                List<Object> items = new ArrayList<>();
                for (JsonNode item : v) items.add(toAvro(schema.getElementType(), item, path + "[]"));
                return items;
            }
            case MAP: {
                if (!v.isObject()) break;
                Map<String, Object> map = new TreeMap<>();
                for (Iterator<String> keys = v.fieldNames(); keys.hasNext(); ) {
                    String key = keys.next();
                    map.put(key, toAvro(schema.getValueType(), v.get(key), path + "." + key));
                }
                return map;
            }
            case RECORD: {
                if (!v.isObject()) break;
                GenericRecord record = new GenericData.Record(schema);
                for (Iterator<String> names = v.fieldNames(); names.hasNext(); ) {
                    String name = names.next();
                    if (schema.getField(name) == null)
                        throw new IllegalArgumentException(path + "." + name + ": not a field of " + schema.getFullName());
                }
                for (Schema.Field field : schema.getFields()) {
                    JsonNode fv = v.get(field.name());
                    if (fv == null) {
                        if (!field.hasDefaultValue())
                            throw new IllegalArgumentException(path + "." + field.name() + " is missing");
                        record.put(field.name(), GenericData.get().getDefaultValue(field));
                    } else {
                        record.put(field.name(), toAvro(field.schema(), fv, path + "." + field.name()));
                    }
                }
                return record;
            }
            case UNION: {
                for (Schema branch : schema.getTypes()) {
                    try {
                        return toAvro(branch, v, path);
                    } catch (IllegalArgumentException wrongBranch) {
                        // try the next branch
                    }
                }
                break;
            }
            default:
                break;
        }
        throw new IllegalArgumentException(path + ": " + v + " is not a " + schema);
    }

    // ---- reading ----

    static void read(Path schemaDir) throws IOException {
        Map<String, BinaryMessageDecoder<GenericRecord>> decoders = new HashMap<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) continue;
            String[] parts = line.trim().split(" ", 2);
            try {
                BinaryMessageDecoder<GenericRecord> decoder = decoders.get(parts[0]);
                if (decoder == null) {
                    decoder = decoder(schemaDir, parts[0]);
                    decoders.put(parts[0], decoder);
                }
                GenericRecord record = decoder.decode(hex(parts[1]));
                // GenericData renders a record as JSON (strings escaped, null, numbers, arrays).
                System.out.println(GenericData.get().toString(record));
            } catch (Exception e) {
                System.out.println(JSON.createObjectNode().put("error", e.toString()));
            }
        }
    }

    /** A decoder reading every released version of schemas/NAME.vN.avsc into the newest. */
    static BinaryMessageDecoder<GenericRecord> decoder(Path schemaDir, String name) throws IOException {
        TreeMap<Integer, Schema> versions = new TreeMap<>();
        try (var listing = Files.list(schemaDir)) {
            for (Path file : (Iterable<Path>) listing::iterator) {
                String f = file.getFileName().toString();
                if (f.startsWith(name + ".v") && f.endsWith(".avsc")) {
                    String n = f.substring(name.length() + 2, f.length() - 5);
                    if (n.chars().allMatch(Character::isDigit)) versions.put(Integer.parseInt(n), parse(file));
                }
            }
        }
        if (versions.isEmpty()) throw new IOException("no schemas/" + name + ".vN.avsc");
        BinaryMessageDecoder<GenericRecord> decoder =
            new BinaryMessageDecoder<>(GenericData.get(), versions.lastEntry().getValue());
        for (Schema older : versions.headMap(versions.lastKey()).values()) decoder.addSchema(older);
        return decoder;
    }

    static byte[] hex(String s) {
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        return out;
    }
}
