//! The I/O shell of the API's store: one consumer (no group, no commits) assigned every
//! partition of `webhook-attempts` and `webhook-api-keys`, applying what it reads to the
//! [`ApiStore`] with the offsets, and telling when the keys (and the log) have caught up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::kafka::assign::{
    FollowerContext, PartitionsError, follower_config, retry_transient, topic_partitions,
};

use super::store::{ApiStore, Consumed, Source, StoreError};

const MAX_BATCH: usize = 1_000;
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// librdkafka wants a group id even for `assign`; this one is never joined or committed to.
const UNJOINED_GROUP: &str = "hookrelay-api-unjoined";

#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Kafka {action} failed for topic {topic}")]
    Kafka {
        action: &'static str,
        topic: String,
        #[source]
        source: Box<KafkaError>,
    },
    #[error("topic {topic} does not exist or has no partitions; run `hookrelay topics create`")]
    TopicMissing { topic: String },
    #[error("the API store follower stopped before the API keys caught up")]
    Stopped,
    #[error("the API store follower task failed")]
    Task(#[from] tokio::task::JoinError),
}

struct Shared {
    keys_ready: watch::Sender<bool>,
    log_ready: AtomicBool,
    stopped: AtomicBool,
    stop: AtomicBool,
    attempts_applied: AtomicU64,
    skipped: AtomicU64,
}

/// The materialized attempts log and API keys of this process.
pub struct ApiTable {
    store: Arc<ApiStore>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTable")
            .field("store", &self.store)
            .field("keys_ready", &self.keys_ready())
            .field("log_ready", &self.log_ready())
            .finish()
    }
}

impl ApiTable {
    /// Starts following both topics into `store` from the offsets stored with the data.
    pub async fn start(
        client: ClientConfig,
        attempts_topic: &str,
        keys_topic: &str,
        store: ApiStore,
    ) -> Result<(Arc<ApiTable>, JoinHandle<()>), FollowerError> {
        let store = Arc::new(store);
        let topics = [
            (Source::Attempts, attempts_topic.to_owned()),
            (Source::Keys, keys_topic.to_owned()),
        ];
        let (consumer, catch_up) = {
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || assign_all(client, &topics, &store)).await??
        };
        let shared = Arc::new(Shared {
            keys_ready: watch::Sender::new(catch_up.is_caught_up(Source::Keys)),
            log_ready: AtomicBool::new(catch_up.is_caught_up(Source::Attempts)),
            stopped: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            attempts_applied: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        });
        let handle = {
            let store = Arc::clone(&store);
            let shared = Arc::clone(&shared);
            tokio::task::spawn_blocking(move || follow(&consumer, &store, &shared, catch_up))
        };
        Ok((Arc::new(ApiTable { store, shared }), handle))
    }

    pub fn store(&self) -> &ApiStore {
        &self.store
    }

    /// True once the API keys caught up with their topic as it was at start.
    pub fn keys_ready(&self) -> bool {
        *self.shared.keys_ready.borrow()
    }

    /// True once the attempts log caught up with its topic as it was at start (until then
    /// the log may miss older attempts).
    pub fn log_ready(&self) -> bool {
        self.shared.log_ready.load(Ordering::Relaxed)
    }

    /// True when the follower stopped (shutdown or a storage failure).
    pub fn stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Relaxed)
    }

    /// Attempt records applied since start.
    pub fn attempts_applied(&self) -> u64 {
        self.shared.attempts_applied.load(Ordering::Relaxed)
    }

    /// Records skipped since start (undecodable, or attempts already past retention).
    pub fn records_skipped(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// Waits until the API keys caught up; fails if the follower stopped first.
    pub async fn wait_keys_ready(&self) -> Result<(), FollowerError> {
        let mut rx = self.shared.keys_ready.subscribe();
        let shared = Arc::clone(&self.shared);
        loop {
            if *rx.borrow_and_update() {
                return Ok(());
            }
            if shared.stopped.load(Ordering::Relaxed) {
                return Err(FollowerError::Stopped);
            }
            // The stopped flag has no channel of its own: look again every poll interval.
            let _ = tokio::time::timeout(POLL_INTERVAL, rx.changed()).await;
        }
    }

    /// Asks the follower to stop (within one poll interval).
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for ApiTable {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Catch-up per (topic, partition): the high watermark at start, and whether it was reached.
struct CatchUp {
    topics: BTreeMap<String, Source>,
    done: BTreeMap<(String, i32), (i64, bool)>,
}

impl CatchUp {
    fn advance(&mut self, topic: &str, partition: i32, next: i64) {
        if let Some((high, done)) = self.done.get_mut(&(topic.to_owned(), partition)) {
            *done |= next >= *high;
        }
    }

    fn is_caught_up(&self, source: Source) -> bool {
        self.done
            .iter()
            .filter(|((topic, _), _)| self.topics.get(topic) == Some(&source))
            .all(|(_, (_, done))| *done)
    }
}

fn assign_all(
    client: ClientConfig,
    topics: &[(Source, String)],
    store: &ApiStore,
) -> Result<(BaseConsumer<FollowerContext>, CatchUp), FollowerError> {
    let kafka = |action: &'static str, topic: &str| {
        let topic = topic.to_owned();
        move |source| FollowerError::Kafka {
            action,
            topic,
            source: Box::new(source),
        }
    };
    let consumer: BaseConsumer<FollowerContext> = follower_config(client, UNJOINED_GROUP)
        .create_with_context(FollowerContext { what: "API store" })
        .map_err(kafka("consumer creation", &topics[0].1))?;
    let mut tpl = TopicPartitionList::new();
    let mut catch_up = CatchUp {
        topics: topics.iter().map(|(s, t)| (t.clone(), *s)).collect(),
        done: BTreeMap::new(),
    };
    for (_, topic) in topics {
        let partitions =
            topic_partitions(&consumer, topic, METADATA_TIMEOUT).map_err(|e| match e {
                PartitionsError::Kafka(source) => kafka("metadata request", topic)(source),
                PartitionsError::Missing { .. } => FollowerError::TopicMissing {
                    topic: topic.clone(),
                },
            })?;
        let stored = store.offsets(topic)?;
        for partition in partitions {
            let (_low, high) =
                retry_transient(|| consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT))
                    .map_err(kafka("watermark request", topic))?;
            let offset = match stored.get(&partition) {
                Some(&next) if next > high => {
                    // The topic was recreated under the same name: read it again.
                    tracing::warn!(
                        topic,
                        partition,
                        stored = next,
                        high,
                        "the API store read past the end of a partition (topic recreated?); reading it from the start"
                    );
                    Offset::Beginning
                }
                Some(&next) => Offset::Offset(next),
                None => Offset::Beginning,
            };
            let position = stored.get(&partition).copied().unwrap_or(0);
            catch_up
                .done
                .insert((topic.clone(), partition), (high, position >= high));
            tpl.add_partition_offset(topic, partition, offset)
                .map_err(kafka("assignment", topic))?;
        }
    }
    consumer
        .assign(&tpl)
        .map_err(kafka("assignment", &topics[0].1))?;
    Ok((consumer, catch_up))
}

fn follow(
    consumer: &BaseConsumer<FollowerContext>,
    store: &ApiStore,
    shared: &Shared,
    mut catch_up: CatchUp,
) {
    let started = Instant::now();
    let mut batch: Vec<Consumed> = Vec::with_capacity(MAX_BATCH);
    let mut drained: Vec<(String, i32, i64)> = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        store.tick();
        batch.clear();
        let mut polled = consumer.poll(POLL_INTERVAL);
        while let Some(result) = polled {
            match result {
                Ok(m) => {
                    let Some(source) = catch_up.topics.get(m.topic()).copied() else {
                        polled = consumer.poll(Duration::ZERO);
                        continue;
                    };
                    batch.push(Consumed {
                        source,
                        topic: m.topic().to_owned(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    });
                }
                Err(KafkaError::PartitionEOF(_)) => {
                    // The event names the partition but not the topic (both topics have a
                    // partition 0): ask the consumer which partitions are at their end.
                    if let Ok(positions) = consumer.position() {
                        for tp in positions.elements() {
                            if let Offset::Offset(next) = tp.offset() {
                                drained.push((tp.topic().to_owned(), tp.partition(), next));
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "The API store consumer reported an error");
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            polled = consumer.poll(Duration::ZERO);
        }
        if !batch.is_empty() {
            match store.apply(&batch) {
                Ok(applied) => {
                    shared
                        .attempts_applied
                        .fetch_add(applied.attempts, Ordering::Relaxed);
                    shared.skipped.fetch_add(applied.skipped, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::error!(error = %crate::telemetry::ErrorChain(&error), "The API store cannot be written; its follower stops (the API keeps answering from what it has)");
                    break;
                }
            }
            for c in &batch {
                catch_up.advance(&c.topic, c.partition, c.offset.saturating_add(1));
            }
        }
        for (topic, partition, next) in drained.drain(..) {
            catch_up.advance(&topic, partition, next);
        }
        if !*shared.keys_ready.borrow() && catch_up.is_caught_up(Source::Keys) {
            shared.keys_ready.send_replace(true);
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "The API keys caught up"
            );
        }
        if !shared.log_ready.load(Ordering::Relaxed) && catch_up.is_caught_up(Source::Attempts) {
            shared.log_ready.store(true, Ordering::Relaxed);
            tracing::info!(
                attempts = shared.attempts_applied.load(Ordering::Relaxed),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "The delivery log caught up"
            );
        }
    }
    if let Err(error) = store.flush() {
        tracing::warn!(%error, "Flushing the API store failed");
    }
    shared.stopped.store(true, Ordering::Relaxed);
}
