//! The fault suite's producer: license events at a steady rate for a set of accounts (each
//! with its endpoints), keyed by account as the licensing system produces them, Avro and JSON
//! mixed; optionally a share of malformed records of every kind the decoder knows. It keeps
//! the pairs (endpoint, event) the ledger must end up holding.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hookrelay::event::{EventType, encode_avro, encode_json};
use hookrelay::ids::{AccountId, EventId};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// One account and the endpoints (ledger names) that accept its events.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub accepting: Vec<String>,
}

/// Malformed records of every kind the decoder tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poison {
    Garbage,
    WrongMagic,
    UnknownSchemaId,
    TruncatedAvro,
    InvalidJson,
    UnknownType,
    MissingFields,
    NearOneMegabyte,
}

impl Poison {
    pub const ALL: [Poison; 8] = [
        Poison::Garbage,
        Poison::WrongMagic,
        Poison::UnknownSchemaId,
        Poison::TruncatedAvro,
        Poison::InvalidJson,
        Poison::UnknownType,
        Poison::MissingFields,
        Poison::NearOneMegabyte,
    ];

    /// The record's value.
    pub fn bytes(self, i: usize, account: &str) -> Vec<u8> {
        let valid = event(i, account);
        match self {
            Poison::Garbage => format!("garbage record {i} \u{1}\u{2}").into_bytes(),
            Poison::WrongMagic => {
                let mut b = encode_avro(&valid).expect("encode");
                b[1] = 0x7f;
                b
            }
            Poison::UnknownSchemaId => {
                let mut b = vec![0u8, 0, 0, 0x27, 0x0f];
                b.extend_from_slice(&[2, 4, 6, 8]);
                b
            }
            Poison::TruncatedAvro => {
                let b = encode_avro(&valid).expect("encode");
                b[..b.len() / 2].to_vec()
            }
            Poison::InvalidJson => br#"{"id":"evt_broken","type":"#.to_vec(),
            Poison::UnknownType => encode_json(&valid)
                .to_vec()
                .replace_first(valid.event_type.as_str().as_bytes(), b"license.exploded"),
            Poison::MissingFields => format!(
                r#"{{"id":"evt_p{i}","type":"license.created","created":"2026-03-15T14:30:00Z"}}"#
            )
            .into_bytes(),
            Poison::NearOneMegabyte => {
                let mut b = br#"{"id":"evt_big","padding":""#.to_vec();
                b.resize(999_000, b'x');
                b.extend_from_slice(br#""}"#);
                b
            }
        }
    }
}

trait ReplaceFirst {
    fn replace_first(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceFirst for Vec<u8> {
    fn replace_first(self, from: &[u8], to: &[u8]) -> Vec<u8> {
        match self.windows(from.len()).position(|w| w == from) {
            Some(i) => [&self[..i], to, &self[i + from.len()..]].concat(),
            None => self,
        }
    }
}

fn event(i: usize, account: &str) -> hookrelay::event::LicenseEvent {
    hookrelay::event::sample(
        EventId::new(format!("evt_f{}_{i:08}", std::process::id())),
        EventType::ALL[i % EventType::ALL.len()],
        AccountId::from(account),
    )
}

/// What a run of the producer wrote.
#[derive(Default)]
pub struct Produced {
    /// (endpoint, event id) for every valid event and every endpoint that accepts it.
    pub expected: Vec<(String, String)>,
    pub events: usize,
    /// Each malformed record: its kind, key, value and the reason the decoder gives it.
    pub poison: Vec<(Poison, Vec<u8>, String)>,
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        // Room for the near-1 MB poison record.
        .set("message.max.bytes", "1048576")
        // Keep trying through a broker restart.
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer")
}

/// Produces `rate` events per second over `accounts` until `stop` is set (or `duration`
/// passed). With `poison_every = Some(n)`, every n-th record is malformed instead, cycling
/// through every kind. Every record is acknowledged before this returns.
pub async fn produce(
    bootstrap: &str,
    topic: &str,
    accounts: &[Account],
    rate: f64,
    duration: Duration,
    poison_every: Option<usize>,
    stop: Arc<AtomicBool>,
) -> Produced {
    let producer = producer(bootstrap);
    let decoder = hookrelay::event::EventDecoder::new(&Default::default()).expect("decoder");
    let mut produced = Produced::default();
    let mut pending = Vec::new();
    let started = Instant::now();
    let mut i = 0usize;
    let mut poisoned = 0usize;
    while started.elapsed() < duration && !stop.load(Ordering::Acquire) {
        // Keep to the rate: the i-th record is due at i / rate seconds.
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let account = &accounts[i % accounts.len()];
        let poison = poison_every
            .filter(|n| i % n == n - 1)
            .map(|_| Poison::ALL[poisoned % Poison::ALL.len()]);
        let value = match poison {
            Some(kind) => {
                poisoned += 1;
                let bytes = kind.bytes(i, &account.id);
                let reason = match decoder.decode(&bytes) {
                    Err(invalid) => invalid.reason().to_owned(),
                    Ok(_) => panic!("{kind:?} decoded; it is not malformed"),
                };
                produced.poison.push((kind, bytes.clone(), reason));
                bytes
            }
            None => {
                let e = event(i, &account.id);
                for endpoint in &account.accepting {
                    produced.expected.push((endpoint.clone(), e.id.to_string()));
                }
                produced.events += 1;
                if i.is_multiple_of(2) {
                    encode_avro(&e).expect("avro")
                } else {
                    encode_json(&e).to_vec()
                }
            }
        };
        let record = FutureRecord::to(topic).key(&account.id).payload(&value);
        match producer.send_result(record) {
            Ok(delivery) => pending.push(delivery),
            Err((e, _)) => panic!("queueing a record failed: {e}"),
        }
        if pending.len() >= 500 {
            for d in pending.drain(..) {
                d.await.expect("delivery").expect("acknowledged");
            }
        }
        i += 1;
    }
    for d in pending {
        d.await.expect("delivery").expect("acknowledged");
    }
    produced
}
