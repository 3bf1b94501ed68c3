//! Kafka client configuration shared by every client hookrelay creates, the start-up
//! connectivity check, topic administration, and what the consumers that assign their own
//! partitions share ([`assign`]).

pub mod assign;
pub mod probe;
pub mod topics;

pub use probe::{ConnectError, check_connection};

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// A client configuration with the brokers, client id and the operator's extra properties.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("client.id", &kafka.client_id);
    for (key, value) in &kafka.properties {
        c.set(key, value);
    }
    c
}

/// A producer configuration for records that settle deliveries: idempotent, acks=all, so a
/// delivery handed to a retry or dead-letter topic is durable before its input offset is
/// committed.
pub fn durable_producer_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = client_config(kafka);
    // Defaults the operator may override with kafka.properties. Nothing a customer waits
    // for waits on these records (attempt log lines, retry hand-offs, status records; the
    // commit that follows a hand-off runs every 200 ms anyway), so they linger 50 ms and
    // leave in a few large requests: at 1,000 events/s fan-out 3 that took the broker's and
    // hookrelay's CPU down with it (BENCHMARKS.md, "Latency and CPU").
    for (key, value) in [("linger.ms", "50"), ("compression.type", "lz4")] {
        if c.get(key).is_none() {
            c.set(key, value);
        }
    }
    c.set("enable.idempotence", "true").set("acks", "all");
    c
}
