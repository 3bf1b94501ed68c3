//! What the consumers that assign partitions themselves, instead of joining a group, share:
//! the followers of compacted topics (the subscriptions table, the API store) and replays.
//! Finding a topic's partitions, asking again through errors that clear by themselves, and
//! the followers' consumer settings and context.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// How long start-up keeps asking when the cluster answers with a transient error (a leader
/// election after a broker restart, a topic created a moment ago).
const TRANSIENT_RETRY_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum PartitionsError {
    #[error("the metadata request failed")]
    Kafka(#[source] KafkaError),
    #[error("the topic does not exist or has no partitions ({code:?})")]
    Missing { code: Option<RDKafkaErrorCode> },
}

/// The partition ids of `topic`, from a metadata request asked again while it fails
/// transiently.
pub fn topic_partitions<X: ConsumerContext, C: Consumer<X>>(
    consumer: &C,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, PartitionsError> {
    let metadata = retry_transient(|| consumer.fetch_metadata(Some(topic), timeout))
        .map_err(PartitionsError::Kafka)?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().iter().map(|p| p.id()).collect())
        }
        other => Err(PartitionsError::Missing {
            code: other.and_then(|t| t.error()).map(RDKafkaErrorCode::from),
        }),
    }
}

/// Settings of a follower's consumer: every instance reads everything, so partitions are
/// assigned, never subscribed, and nothing is committed (the offsets live in the follower's
/// store with the data). librdkafka wants a group id even for `assign`; `group` is never
/// joined or committed to, so the broker never sees it. EOF events tell when a partition is
/// drained.
pub fn follower_config(mut client: ClientConfig, group: &str) -> ClientConfig {
    client
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    client
}

/// Runs a blocking metadata request again while it fails with an error that clears by
/// itself (no leader yet, leader moved), for at most [`TRANSIENT_RETRY_FOR`].
pub fn retry_transient<T>(
    mut request: impl FnMut() -> Result<T, KafkaError>,
) -> Result<T, KafkaError> {
    let deadline = Instant::now() + TRANSIENT_RETRY_FOR;
    loop {
        match request() {
            Err(e) if is_transient(&e) && Instant::now() < deadline => {
                tracing::debug!(error = %e, "transient metadata error; asking again");
                std::thread::sleep(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

fn is_transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::BrokerNotAvailable
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
        )
    )
}

/// A follower consumer's context. librdkafka also reports the end of a partition as a
/// client-wide error event; with `enable.partition.eof` on, that is expected, not an error
/// worth a log line. `what` names the follower in the lines it does log.
pub struct FollowerContext {
    pub what: &'static str,
}

impl rdkafka::ClientContext for FollowerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if eof {
            tracing::trace!(follower = self.what, %reason, "partition drained");
        } else {
            tracing::warn!(follower = self.what, %error, %reason, "follower consumer error");
        }
    }
}

impl ConsumerContext for FollowerContext {}
