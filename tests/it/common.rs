//! Shared helpers for the integration tests: the broker address, unique topic names and
//! small admin/produce/consume helpers built directly on rdkafka.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The broker started by `scripts/kafka start` (override with HOOKRELAY_TEST_BOOTSTRAP).
pub fn bootstrap() -> String {
    std::env::var("HOOKRELAY_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".to_owned())
}

/// A topic (or group, or directory) name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{n}-{:x}",
        std::process::id(),
        nanos & 0xff_ffff
    )
}

pub fn client_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap());
    c
}

pub fn admin() -> AdminClient<DefaultClientContext> {
    client_config()
        .create()
        .expect("admin client (is the broker up? run scripts/kafka start)")
}

/// Creates a topic with the given partitions and configs and waits for it.
pub async fn create_topic(name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin()
        .create_topics([&topic], &opts)
        .await
        .expect("create_topics request failed (is the broker up? run scripts/kafka start)");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
    wait_until_listed(name, partitions).await;
}

/// Waits until the broker's metadata lists every partition of `name` with a leader: a
/// create request can return before then, and a write in that gap fails with "unknown topic
/// or partition" (seen as a rare flake right after creation).
async fn wait_until_listed(name: &str, partitions: i32) {
    let admin = admin();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = admin
            .inner()
            .fetch_metadata(Some(name), Duration::from_secs(5))
            .is_ok_and(|m| {
                m.topics().iter().any(|t| {
                    t.name() == name
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            });
        if ready {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "topic {name} was created but its {partitions} partitions have no leader after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn producer() -> FutureProducer {
    client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces one record and waits for the broker's acknowledgement.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(v) = value {
        record = record.payload(v);
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
}

/// Every record in `topic` once it holds at least `min` (waiting up to 30 s for them), then
/// until no more arrive for a second: for records written asynchronously after the event a
/// test waited for.
pub fn read_all_at_least(topic: &str, min: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let records = read_all(topic);
        if records.len() >= min || std::time::Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every record currently in `topic` (all partitions, from the beginning): reads until no
/// record arrives for a second.
pub fn read_all(topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = client_config()
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let mut idle_since = std::time::Instant::now();
    let started = std::time::Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(m.detach());
                idle_since = std::time::Instant::now();
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {
                // The first assignment takes a moment; only count idleness after it.
                let assigned = consumer
                    .assignment()
                    .map(|a| a.count() > 0)
                    .unwrap_or(false);
                if assigned && idle_since.elapsed() > Duration::from_secs(1) && !out.is_empty() {
                    break;
                }
                if started.elapsed() > Duration::from_secs(8) {
                    break;
                }
            }
        }
    }
    out
}
