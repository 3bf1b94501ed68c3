//! Costs of the event contract per record: decoding each input encoding (including an
//! old schema version, which goes through Avro schema resolution), rendering the customer
//! body, wrapping a batch, and the envelope a retry writes and reads. Each runs once per
//! input record or delivery, so each must stay far below the HTTP exchange it feeds.
//!
//! Run: `CARGO_TARGET_DIR=/var/cache/hookrelay/target cargo bench --bench codec`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookrelay::event::{
    CodecConfig, EventDecoder, EventType, LicenseEvent, batch_body, customer_body, encode_avro,
    encode_confluent, encode_json, sample,
};
use hookrelay::ids::{AccountId, EventId};
use hookrelay::records::{AttemptSummary, DeliveryEnvelope};

fn event() -> LicenseEvent {
    sample(
        EventId::from("evt_a1b2c3d4e5f6"),
        EventType::LicenseActivated,
        AccountId::from("acc_7Hq2"),
    )
}

fn decoding(c: &mut Criterion) {
    let decoder = EventDecoder::new(&CodecConfig {
        confluent_schema_ids: BTreeMap::from([(
            1,
            hookrelay::event::current_schema_name().expect("name"),
        )]),
        ..CodecConfig::default()
    })
    .expect("decoder");
    let e = event();
    let avro = encode_avro(&e).expect("avro");
    let v1 = hookrelay::event::encode_avro_v1(&e).expect("v1 encodes");
    let confluent = encode_confluent(&e, 1).expect("confluent");
    let json = encode_json(&e);
    assert_eq!(decoder.decode(&v1).expect("v1 decodes").id, e.id);

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function(
        format!("avro single-object current ({} B)", avro.len()),
        |b| b.iter(|| decoder.decode(black_box(&avro))),
    );
    g.bench_function(
        format!("avro single-object v1, resolved ({} B)", v1.len()),
        |b| b.iter(|| decoder.decode(black_box(&v1))),
    );
    g.bench_function(format!("avro confluent ({} B)", confluent.len()), |b| {
        b.iter(|| decoder.decode(black_box(&confluent)))
    });
    g.bench_function(format!("json ({} B)", json.len()), |b| {
        b.iter(|| decoder.decode(black_box(&json)))
    });
    g.bench_function("garbage (refused)", |b| {
        b.iter(|| decoder.decode(black_box(b"\xc3\x01not a known fingerprint")))
    });
    g.finish();

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("avro single-object", |b| {
        b.iter(|| encode_avro(black_box(&e)))
    });
    g.bench_function("json", |b| b.iter(|| encode_json(black_box(&e))));
    g.finish();
}

fn bodies(c: &mut Criterion) {
    let e = event();
    let body = customer_body(&e);
    let members: Vec<Vec<u8>> = (0..10).map(|_| body.clone()).collect();
    let refs: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
    let created = e.created;

    let mut g = c.benchmark_group("body");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("customer_body ({} B)", body.len()), |b| {
        b.iter(|| customer_body(black_box(&e)))
    });
    g.bench_function("batch_body of 10", |b| {
        b.iter(|| batch_body(black_box("bat_5f0c1e2d3a4b"), created, black_box(&refs)))
    });
    g.finish();
}

fn envelopes(c: &mut Criterion) {
    let body = String::from_utf8(customer_body(&event())).expect("utf-8");
    let envelope = DeliveryEnvelope {
        delivery_id: "msg_0123456789abcdef0123456789abcdef".into(),
        endpoint_id: "ep_1".into(),
        account_id: "acc_7Hq2".into(),
        event_ids: vec!["evt_a1b2c3d4e5f6".into()],
        event_types: vec!["license.activated".into()],
        batch: false,
        body,
        attempt: 3,
        first_attempt_at_ms: 1_773_585_000_000,
        due_at_ms: 1_773_585_360_000,
        last_status: Some(503),
        last_error: Some("HTTP 503".into()),
        origin_topic: "license-events".into(),
        origin_partition: 3,
        origin_offset: 1_234_567,
        history: (1..=2)
            .map(|attempt| AttemptSummary {
                attempt,
                at_ms: 1_773_585_000_000,
                status: Some(503),
                error: Some("HTTP 503".into()),
                latency_ms: 12,
            })
            .collect(),
        dead_letter_reason: None,
    };
    let bytes = envelope.to_avro().expect("encode");
    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("to_avro ({} B)", bytes.len()), |b| {
        b.iter(|| black_box(&envelope).to_avro())
    });
    g.bench_function("from_avro", |b| {
        b.iter(|| DeliveryEnvelope::from_avro(black_box(&bytes)))
    });
    g.finish();
}

criterion_group!(benches, decoding, bodies, envelopes);
criterion_main!(benches);
