//! The I/O shell of the subscriptions table: follows every partition of the compacted topic
//! into the [`Store`], reports ready once caught up, and publishes endpoint changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ids::{AccountId, EndpointId};

use crate::kafka::assign::{
    FollowerContext, PartitionsError, follower_config, retry_transient, topic_partitions,
};

use super::endpoint::{Endpoint, EndpointError, decode_record, encode_endpoint};
use super::join::fan_out;
use super::status::{EndpointStatus, encode_status, status_key};
use super::store::{Change, Store, StoreError};

/// Records applied in one RocksDB write at most: large enough for bootstrap throughput,
/// small enough that a live update is visible within milliseconds.
const MAX_BATCH: usize = 1_000;
/// How long one poll waits when nothing arrives; also bounds how late `shutdown` is noticed.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Bound on metadata and watermark requests at start.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on one publish (queueing plus delivery is bounded by the producer's own
/// `message.timeout.ms`).
const PUBLISH_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Group id the follower's consumer carries only because librdkafka requires one for
/// `assign`; it never joins the group nor commits to it.
const UNJOINED_GROUP: &str = "hookrelay-subscriptions-unjoined";
/// Longest key echoed in a log line about an undecodable record.
const MAX_LOGGED_KEY: usize = 80;

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the endpoint cannot be published")]
    Endpoint(#[from] EndpointError),
    #[error("the endpoint status cannot be published")]
    Status(#[from] super::status::StatusError),
    #[error("Kafka {action} failed for topic {topic}")]
    Kafka {
        action: &'static str,
        topic: String,
        #[source]
        source: Box<KafkaError>,
    },
    #[error(
        "topic {topic} does not exist or has no partitions ({code:?}); create it (compacted) first"
    )]
    TopicMissing {
        topic: String,
        code: Option<RDKafkaErrorCode>,
    },
    #[error("{topic:?} is not a valid Kafka topic name")]
    InvalidTopic { topic: String },
    #[error("the store materializes topic {stored:?}, not {requested:?}")]
    TopicMismatch { stored: String, requested: String },
    #[error(
        "the store has read partition {partition} of {topic} up to offset {stored}, but the topic \
         ends at {high}: it was recreated; delete the table directory to rebuild it"
    )]
    AheadOfTopic {
        topic: String,
        partition: i32,
        stored: i64,
        high: i64,
    },
    #[error("publishing endpoint {id} to {topic} failed")]
    Publish {
        id: EndpointId,
        topic: String,
        #[source]
        source: Box<KafkaError>,
    },
    #[error("the subscriptions follower stopped before it caught up")]
    FollowerStopped,
    #[error("the subscriptions follower task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Where the follower is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowerState {
    /// Reading towards the high watermarks seen at start.
    CatchingUp,
    /// Caught up, following new changes.
    Ready,
    /// Shut down or failed; the table no longer changes.
    Stopped,
}

/// What the follower thread and the table share.
struct Shared {
    state: watch::Sender<FollowerState>,
    /// Next offset applied per partition, for read-your-writes waits.
    positions: watch::Sender<BTreeMap<i32, i64>>,
    stop: AtomicBool,
    records_applied: AtomicU64,
    records_skipped: AtomicU64,
    stale_ignored: AtomicU64,
    consumer_errors: AtomicU64,
    /// Why the follower stopped, when a store failure stopped it.
    failure: std::sync::Mutex<Option<String>>,
    /// Decoded endpoints per account for the fan-out join, so an event does not decode each
    /// of its account's endpoints again. Emptied whenever the follower applies a change.
    accounts: std::sync::Mutex<AccountCache>,
}

/// See [`Shared::accounts`]. `generation` grows with every apply, so a lookup that read the
/// store before a change cannot put that older state into the cache after it.
#[derive(Default)]
struct AccountCache {
    generation: u64,
    endpoints: std::collections::HashMap<AccountId, Arc<Vec<Endpoint>>>,
}

/// Accounts kept decoded at most; the cache starts over when it is full.
const ACCOUNT_CACHE_LIMIT: usize = 100_000;

impl Shared {
    fn accounts(&self) -> std::sync::MutexGuard<'_, AccountCache> {
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn invalidate_accounts(&self) {
        let mut cache = self.accounts();
        cache.generation += 1;
        cache.endpoints.clear();
    }
}

/// The materialized `webhook-subscriptions` table of this process.
///
/// Reads go straight to RocksDB (microseconds, mostly from the block cache); writes happen
/// only on the follower's blocking thread. Dropping the last handle stops the follower.
pub struct SubscriptionTable {
    store: Arc<Store>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SubscriptionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionTable")
            .field("store", &self.store)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Counters of the follower since this process started it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowerStats {
    pub records_applied: u64,
    pub records_skipped: u64,
    pub stale_ignored: u64,
    pub consumer_errors: u64,
}

/// Where a published change landed; see [`SubscriptionTable::wait_applied`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    pub partition: i32,
    pub offset: i64,
}

impl SubscriptionTable {
    /// Starts following `topic` into `store` from the offsets stored with the data (or the
    /// beginning). `client` carries the brokers and any security settings; the follower
    /// adds its own consumer settings (no group, no commits). Returns once the partitions
    /// are assigned; [`SubscriptionTable::wait_ready`] waits for the catch-up.
    pub async fn start(
        client: ClientConfig,
        topic: &str,
        store: Store,
    ) -> Result<(Arc<SubscriptionTable>, JoinHandle<()>), SubscriptionError> {
        if !valid_topic_name(topic) {
            return Err(SubscriptionError::InvalidTopic {
                topic: topic.to_owned(),
            });
        }
        if store.topic() != topic {
            return Err(SubscriptionError::TopicMismatch {
                stored: store.topic().to_owned(),
                requested: topic.to_owned(),
            });
        }
        let store = Arc::new(store);
        let (consumer, catch_up) = {
            let store = Arc::clone(&store);
            let topic = topic.to_owned();
            tokio::task::spawn_blocking(move || assign_all(client, &topic, &store)).await??
        };

        let ready = catch_up.is_caught_up();
        let shared = Arc::new(Shared {
            state: watch::Sender::new(if ready {
                FollowerState::Ready
            } else {
                FollowerState::CatchingUp
            }),
            positions: watch::Sender::new(catch_up.positions.clone()),
            stop: AtomicBool::new(false),
            records_applied: AtomicU64::new(0),
            records_skipped: AtomicU64::new(0),
            stale_ignored: AtomicU64::new(0),
            consumer_errors: AtomicU64::new(0),
            failure: std::sync::Mutex::new(None),
            accounts: std::sync::Mutex::default(),
        });
        tracing::info!(
            topic,
            endpoints = store.len(),
            partitions = catch_up.targets.len(),
            ready,
            "Following the subscriptions topic"
        );
        let handle = {
            let store = Arc::clone(&store);
            let shared = Arc::clone(&shared);
            tokio::task::spawn_blocking(move || follow(&consumer, &store, &shared, catch_up))
        };
        Ok((Arc::new(SubscriptionTable { store, shared }), handle))
    }

    /// Why the follower stopped, if a store failure stopped it.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True once the table caught up with the topic as it was at start, while it follows.
    pub fn is_ready(&self) -> bool {
        self.state() == FollowerState::Ready
    }

    pub fn state(&self) -> FollowerState {
        *self.shared.state.borrow()
    }

    /// Waits until the table is ready; fails if the follower stopped first.
    pub async fn wait_ready(&self) -> Result<(), SubscriptionError> {
        let mut rx = self.shared.state.subscribe();
        let state = rx
            .wait_for(|s| *s != FollowerState::CatchingUp)
            .await
            .map_err(|_| SubscriptionError::FollowerStopped)?;
        match *state {
            FollowerState::Ready => Ok(()),
            _ => Err(SubscriptionError::FollowerStopped),
        }
    }

    /// Waits until the record at (`partition`, `offset`) has been applied, so a caller that
    /// published a change can read it back.
    pub async fn wait_applied(&self, published: Published) -> Result<(), SubscriptionError> {
        let mut positions = self.shared.positions.subscribe();
        let mut state = self.shared.state.subscribe();
        loop {
            let applied = positions
                .borrow_and_update()
                .get(&published.partition)
                .is_some_and(|next| *next > published.offset);
            if applied {
                return Ok(());
            }
            if *state.borrow_and_update() == FollowerState::Stopped {
                return Err(SubscriptionError::FollowerStopped);
            }
            tokio::select! {
                changed = positions.changed() => changed.map_err(|_| SubscriptionError::FollowerStopped)?,
                changed = state.changed() => changed.map_err(|_| SubscriptionError::FollowerStopped)?,
            }
        }
    }

    /// One endpoint, enabled or not.
    pub fn get(&self, id: &EndpointId) -> Result<Option<Endpoint>, StoreError> {
        self.store.get(id)
    }

    /// The breaker status record of an endpoint, if it has one.
    pub fn status(&self, id: &EndpointId) -> Result<Option<EndpointStatus>, StoreError> {
        self.store.status(id)
    }

    /// This table's instance id: the `by` of the status records this process writes. Stable
    /// across restarts with the same data directory.
    pub fn instance_id(&self) -> &str {
        self.store.instance_id()
    }

    /// Owner notices this instance still has to write, as `(notice id, Avro bytes)`.
    pub fn pending_notices(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.store.pending_notices()
    }

    /// Forgets a notice once it is durably on the notifications topic.
    pub fn remove_notice(&self, id: &str) -> Result<(), StoreError> {
        self.store.remove_notice(id)
    }

    /// Resolves after the follower next applies a batch (or stops). For tasks that act on
    /// what the table holds, such as writing owed notices.
    pub async fn changed(&self) {
        let mut positions = self.shared.positions.subscribe();
        let mut state = self.shared.state.subscribe();
        tokio::select! {
            _ = positions.changed() => {}
            _ = state.changed() => {}
        }
    }

    /// Every endpoint of an account, enabled or not (for the admin API).
    pub fn endpoints_of_account(&self, account: &AccountId) -> Result<Vec<Endpoint>, StoreError> {
        self.store.endpoints_of_account(account)
    }

    /// The endpoints an event of `event_type` for `account` is delivered to.
    pub fn endpoints_for(
        &self,
        account: &AccountId,
        event_type: &str,
    ) -> Result<Vec<Endpoint>, StoreError> {
        let generation = {
            let cache = self.shared.accounts();
            if let Some(all) = cache.endpoints.get(account) {
                return Ok(fan_out(account, event_type, all).cloned().collect());
            }
            cache.generation
        };
        let all = Arc::new(self.store.endpoints_of_account(account)?);
        {
            let mut cache = self.shared.accounts();
            if cache.generation == generation {
                if cache.endpoints.len() >= ACCOUNT_CACHE_LIMIT {
                    cache.endpoints.clear();
                }
                cache.endpoints.insert(account.clone(), Arc::clone(&all));
            }
        }
        Ok(fan_out(account, event_type, &all).cloned().collect())
    }

    /// Number of endpoints in the table.
    pub fn len(&self) -> u64 {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Change records (upserts and tombstones, stale ones included) this process read from
    /// the topic; after a restart it counts only what the stored offsets did not cover.
    pub fn records_applied(&self) -> u64 {
        self.shared.records_applied.load(Ordering::Relaxed)
    }

    /// Records skipped because they did not decode or validate.
    pub fn records_skipped(&self) -> u64 {
        self.shared.records_skipped.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> FollowerStats {
        FollowerStats {
            records_applied: self.records_applied(),
            records_skipped: self.records_skipped(),
            stale_ignored: self.shared.stale_ignored.load(Ordering::Relaxed),
            consumer_errors: self.shared.consumer_errors.load(Ordering::Relaxed),
        }
    }

    /// The next offset to read per partition, as applied.
    pub fn positions(&self) -> BTreeMap<i32, i64> {
        self.shared.positions.borrow().clone()
    }

    /// Asks the follower to stop; it does within [`POLL_INTERVAL`] plus one batch. Await the
    /// join handle from [`SubscriptionTable::start`] to know the consumer is closed.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for SubscriptionTable {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Kafka's rule: 1 to 249 characters of `[a-zA-Z0-9._-]`.
fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Creates the consumer, reads the high watermarks and assigns every partition at its
/// stored offset. Blocking.
fn assign_all(
    client: ClientConfig,
    topic: &str,
    store: &Store,
) -> Result<(BaseConsumer<FollowerContext>, CatchUp), SubscriptionError> {
    let kafka = |action: &'static str| {
        let topic = topic.to_owned();
        move |source| SubscriptionError::Kafka {
            action,
            topic,
            source: Box::new(source),
        }
    };
    let consumer: BaseConsumer<FollowerContext> = follower_config(client, UNJOINED_GROUP)
        .create_with_context(FollowerContext {
            what: "subscriptions",
        })
        .map_err(kafka("consumer creation"))?;
    let partitions = topic_partitions(&consumer, topic, METADATA_TIMEOUT).map_err(|e| match e {
        PartitionsError::Kafka(source) => kafka("metadata request")(source),
        PartitionsError::Missing { code } => SubscriptionError::TopicMissing {
            topic: topic.to_owned(),
            code,
        },
    })?;

    let stored = store.offsets()?;
    let mut targets = BTreeMap::new();
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for &partition in &partitions {
        let (_low, high) =
            retry_transient(|| consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT))
                .map_err(kafka("watermark request"))?;
        let offset = match stored.get(&partition) {
            Some(&next) if next > high => {
                return Err(SubscriptionError::AheadOfTopic {
                    topic: topic.to_owned(),
                    partition,
                    stored: next,
                    high,
                });
            }
            Some(&next) => Offset::Offset(next),
            None => Offset::Beginning,
        };
        targets.insert(partition, high);
        tpl.add_partition_offset(topic, partition, offset)
            .map_err(kafka("assignment"))?;
    }
    consumer.assign(&tpl).map_err(kafka("assignment"))?;
    Ok((consumer, CatchUp::new(targets, stored)))
}

/// The follower loop: poll, decode, apply in batches, track the catch-up. Blocking; runs
/// until [`SubscriptionTable::shutdown`] (or the table is dropped) or a store failure.
fn follow(
    consumer: &BaseConsumer<FollowerContext>,
    store: &Store,
    shared: &Shared,
    mut catch_up: CatchUp,
) {
    let started = Instant::now();
    let mut batch: Vec<Change> = Vec::with_capacity(MAX_BATCH);
    let mut drained: Vec<i32> = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        batch.clear();
        let mut polled = consumer.poll(POLL_INTERVAL);
        while let Some(result) = polled {
            match result {
                Ok(message) => batch.push(to_change(&message, shared)),
                Err(KafkaError::PartitionEOF(partition)) => drained.push(partition),
                Err(error) => {
                    shared.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, topic = store.topic(), "The subscriptions consumer reported an error");
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            polled = consumer.poll(Duration::ZERO);
        }

        if !batch.is_empty() {
            let applied = store.apply(&batch);
            shared.invalidate_accounts();
            match applied {
                Ok(stats) => {
                    // Tombstones of unknown ids count too: they were read and changed nothing.
                    let applied = batch.len() as u64 - stats.skipped;
                    shared.records_applied.fetch_add(applied, Ordering::Relaxed);
                    shared
                        .stale_ignored
                        .fetch_add(stats.stale, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::error!(error = %crate::telemetry::ErrorChain(&error), topic = store.topic(), "The subscriptions table cannot be written; the follower stops");
                    *shared.failure.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(crate::telemetry::ErrorChain(&error).to_string());
                    shared.state.send_replace(FollowerState::Stopped);
                    return;
                }
            }
            for change in &batch {
                catch_up.advance(change.partition, change.offset.saturating_add(1));
            }
            let positions = catch_up.positions.clone();
            shared.positions.send_replace(positions);
        }
        for partition in drained.drain(..) {
            catch_up.drained(partition);
        }
        if catch_up.is_caught_up() && *shared.state.borrow() == FollowerState::CatchingUp {
            flush(store);
            shared.state.send_replace(FollowerState::Ready);
            tracing::info!(
                topic = store.topic(),
                endpoints = store.len(),
                records = shared.records_applied.load(Ordering::Relaxed),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "The subscriptions table caught up and is ready"
            );
        }
    }
    flush(store);
    shared.state.send_replace(FollowerState::Stopped);
    tracing::info!(topic = store.topic(), "The subscriptions follower stopped");
}

/// Flushes the store; a failure only costs speed (the log still has every write).
fn flush(store: &Store) {
    if let Err(error) = store.flush() {
        tracing::warn!(%error, topic = store.topic(), "Flushing the subscriptions table failed");
    }
}

/// Turns one record into a change; an undecodable one becomes a skip (logged by key only,
/// never with its content) so it cannot stop the table.
fn to_change<M: Message>(message: &M, shared: &Shared) -> Change {
    let op = match decode_record(message.key(), message.payload()) {
        Ok(op) => Some(op),
        Err(error) => {
            shared.records_skipped.fetch_add(1, Ordering::Relaxed);
            let key = message.key().map(|k| {
                String::from_utf8_lossy(k)
                    .chars()
                    .take(MAX_LOGGED_KEY)
                    .collect::<String>()
            });
            tracing::warn!(
                endpoint_id = key.as_deref().unwrap_or("<none>"),
                partition = message.partition(),
                offset = message.offset(),
                error = %error.redacted(),
                "Skipped a subscription record that does not decode"
            );
            None
        }
    };
    Change {
        partition: message.partition(),
        offset: message.offset(),
        op,
    }
}

/// Whether the follower has reached, on every partition, the high watermark it saw at
/// start. A partition also counts once the consumer reported its end (covers empty
/// partitions and offsets that hold no readable record, like transaction markers).
#[derive(Debug)]
struct CatchUp {
    /// High watermark per partition at start.
    targets: BTreeMap<i32, i64>,
    /// Next offset to read per partition (from the store, then as applied).
    positions: BTreeMap<i32, i64>,
    /// Partitions that have reached their target.
    done: BTreeMap<i32, bool>,
}

impl CatchUp {
    fn new(targets: BTreeMap<i32, i64>, positions: BTreeMap<i32, i64>) -> Self {
        let done = targets
            .iter()
            .map(|(p, high)| (*p, positions.get(p).copied().unwrap_or(0) >= *high))
            .collect();
        Self {
            targets,
            positions,
            done,
        }
    }

    fn advance(&mut self, partition: i32, next: i64) {
        let position = self.positions.entry(partition).or_insert(next);
        *position = (*position).max(next);
        if let (Some(done), Some(high)) =
            (self.done.get_mut(&partition), self.targets.get(&partition))
        {
            *done |= *position >= *high;
        }
    }

    fn drained(&mut self, partition: i32) {
        if let Some(done) = self.done.get_mut(&partition) {
            *done = true;
        }
    }

    fn is_caught_up(&self) -> bool {
        self.done.values().all(|d| *d)
    }
}

/// Writes an endpoint to the subscriptions topic (keyed by its id). Every instance's table
/// picks it up; wait with [`SubscriptionTable::wait_applied`] to read it back locally.
pub async fn publish(
    producer: &FutureProducer,
    topic: &str,
    endpoint: &Endpoint,
) -> Result<Published, SubscriptionError> {
    let payload = encode_endpoint(endpoint)?;
    send(producer, topic, &endpoint.id, Some(&payload)).await
}

/// Writes an endpoint's status record (key `status:<id>`): how the circuit breaker disables
/// an endpoint and how an operator re-enables it. See [`super::status`].
pub async fn publish_status(
    producer: &FutureProducer,
    topic: &str,
    status: &EndpointStatus,
) -> Result<Published, SubscriptionError> {
    let payload = encode_status(status)?;
    send_keyed(
        producer,
        topic,
        &status.endpoint_id,
        &status_key(&status.endpoint_id),
        Some(&payload),
    )
    .await
}

/// Writes a tombstone: the endpoint disappears from every table, and compaction removes
/// its history from the topic.
pub async fn publish_tombstone(
    producer: &FutureProducer,
    topic: &str,
    id: &EndpointId,
) -> Result<Published, SubscriptionError> {
    send(producer, topic, id, None).await
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    id: &EndpointId,
    payload: Option<&[u8]>,
) -> Result<Published, SubscriptionError> {
    send_keyed(producer, topic, id, id.as_str(), payload).await
}

async fn send_keyed(
    producer: &FutureProducer,
    topic: &str,
    id: &EndpointId,
    key: &str,
    payload: Option<&[u8]>,
) -> Result<Published, SubscriptionError> {
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key);
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    producer
        .send(record, PUBLISH_QUEUE_TIMEOUT)
        .await
        .map(|d| Published {
            partition: d.partition,
            offset: d.offset,
        })
        .map_err(|(source, _)| SubscriptionError::Publish {
            id: id.clone(),
            topic: topic.to_owned(),
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_when_every_partition_reached_its_start_watermark() {
        let mut c = CatchUp::new(BTreeMap::from([(0, 10), (1, 5)]), BTreeMap::new());
        assert!(!c.is_caught_up());
        c.advance(0, 10);
        assert!(!c.is_caught_up());
        c.advance(1, 4);
        assert!(!c.is_caught_up());
        c.advance(1, 5);
        assert!(c.is_caught_up());
    }

    #[test]
    fn empty_partitions_and_stored_offsets_count_as_caught_up() {
        let c = CatchUp::new(BTreeMap::from([(0, 0), (1, 7)]), BTreeMap::from([(1, 7)]));
        assert!(
            c.is_caught_up(),
            "restart at the watermarks is ready at once"
        );
    }

    #[test]
    fn a_drained_partition_counts_even_below_its_watermark() {
        // E.g. the last offsets hold transaction markers, never delivered as records.
        let mut c = CatchUp::new(BTreeMap::from([(0, 10)]), BTreeMap::new());
        c.advance(0, 8);
        c.drained(0);
        assert!(c.is_caught_up());
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(valid_topic_name("webhook-subscriptions"));
        assert!(valid_topic_name("a.b_c-1"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name("a b"));
        assert!(!valid_topic_name("a\0b"));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }
}
