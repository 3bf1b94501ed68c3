//! Kafka client configuration shared by every client hookrelay creates, the start-up
//! connectivity check, and topic administration.

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
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4");
    c
}
