//! What every part of the demo shares: its constants (scaled-down retry tiers, the sample
//! accounts, receiver timing) and its error type.

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::error::KafkaError;

/// The retry schedule of the demo: the production tiers (1m, 5m, 30m, 2h, 24h) scaled down
/// so a delivery runs through all of them in half a minute.
pub(super) const DEMO_TIERS_SECS: [u64; 5] = [2, 4, 6, 8, 10];
/// How long the slow receiver takes to answer: slower than everything else, well within
/// the 5 s request timeout.
pub(super) const SLOW_ANSWER: Duration = Duration::from_millis(1500);
/// When the bulk import starts, counted from the moment the service is running.
pub(super) const BURST_AFTER: Duration = Duration::from_secs(5);
/// Bound on producing one record (the mock cluster answers in milliseconds).
pub(super) const PRODUCE_TIMEOUT: Duration = Duration::from_secs(10);
/// The schema registry id the demo's Confluent-framed records carry; the config maps it to
/// the current license event schema, as an operator without a registry would.
pub(super) const DEMO_SCHEMA_ID: u32 = 1;
/// Path every sample receiver listens on.
pub(super) const RECEIVER_PATH: &str = "/webhook";

/// The two sample customers.
pub(super) const ACME: &str = "acct_acme";
pub(super) const GLOBEX: &str = "acct_globex";

/// What can go wrong while setting the demo up. Each names the step.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--rate must be a positive number of events per second, not {0}")]
    Rate(f64),
    #[error("starting a sample receiver on loopback")]
    Receiver(#[source] std::io::Error),
    #[error("building a sample receiver's URL")]
    ReceiverUrl(#[source] url::ParseError),
    #[error("creating the working directory {path}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Kafka: {action}")]
    Kafka {
        action: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("creating topic {topic} on the mock cluster")]
    MockTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("producing to {topic}")]
    Produce {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("encoding a sample event")]
    Encode(#[source] crate::event::CodecError),
}

pub(super) fn kafka(action: &'static str) -> impl FnOnce(KafkaError) -> DemoError {
    move |source| DemoError::Kafka { action, source }
}
