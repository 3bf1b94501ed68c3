//! The consumer-group member that reads the input topic, every retry tier and the requests
//! topic. Input records are decoded, joined against the subscriptions table and fanned out to
//! the endpoint workers; retry records are held until due and then sent again.
//!
//! The poll loop never waits for capacity: what cannot be taken now stays in Kafka (the
//! partition is paused, and the record it could not take is sought back to), or goes to a
//! retry tier when its endpoint is slow. Offsets are committed from the
//! [`OffsetBook`] every 200 ms, on revoke and at shutdown, with commit metadata that
//! lets the next owner skip what already settled (see [`crate::offsets::metadata`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::{Statistics, Window};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::delivery::{
    DeadLetterReason, Delivery, DeliveryOutcome, InFlightCounter, Origin, delivery_id, now_ms,
};
use crate::dispatch::{Dispatcher, Room};
use crate::event::{EventDecoder, InvalidRecord};
use crate::ids::EndpointId;
use crate::lifecycle::{Readiness, stopped};
use crate::offsets::{Admit, CommitPoint, OffsetBook, TopicPartition, metadata};
use crate::records::envelope::DeliveryEnvelope;
use crate::retry::handoff::Handoff;
use crate::retry::tier_label;
use crate::subscriptions::{FollowerState, SubscriptionTable};
use crate::telemetry::Metrics;

use super::pauses::{PauseReason, Pauses};
use super::registry::RegistryClient;
use super::resting::{self, Resting};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("creating the consumer")]
    Create(#[source] KafkaError),
    #[error("subscribing to {topics:?}")]
    Subscribe {
        topics: Vec<String>,
        #[source]
        source: KafkaError,
    },
}

/// How often the loop looks at pauses, health and the commit clock.
const TICK: Duration = Duration::from_millis(100);
/// How often settled offsets are committed: the most a crash can re-send is about this much
/// (plus what settled past a record still in flight, which the commit metadata covers).
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// How long a partition may wait in Kafka for an endpoint judged fast enough to wait for;
/// after that, what does not fit goes to a retry tier instead. A safety net: an endpoint
/// that cannot drain within `MAX_DRAIN` at its own speed is judged slow long before.
const ENDPOINT_WAIT_LIMIT: Duration = Duration::from_secs(10);
/// Bound on fetching committed offsets (with their metadata) for a new assignment.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// Rebalance, commit and statistics hooks. Runs on the thread that polls the consumer.
pub struct IngestContext {
    book: Arc<OffsetBook>,
    metrics: Metrics,
    revoked_tx: mpsc::UnboundedSender<Vec<TopicPartition>>,
    assigned_tx: mpsc::UnboundedSender<Vec<TopicPartition>>,
    readiness: Arc<Readiness>,
    /// Set when an asynchronous commit failed, so the loop commits everything again.
    commit_failed: AtomicBool,
    /// The slowest broker's p99 round trip in the last statistics interval, in µs: how long
    /// a quiet partition is looked at before it rests depends on it.
    slowest_round_trip_us: AtomicU64,
}

impl ClientContext for IngestContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown) {
            self.readiness
                .brokers_reachable
                .store(false, Ordering::Release);
        }
        warn!(%error, reason, "Kafka client error");
    }

    fn stats(&self, stats: Statistics) {
        let up = any_broker_up(stats.brokers.values().map(|b| (b.nodeid, b.state.as_str())));
        let was = self.readiness.brokers_reachable.swap(up, Ordering::AcqRel);
        if was != up {
            if up {
                info!("a broker is reachable again");
            } else {
                warn!("no broker is reachable");
            }
        }
        // An interval without any answer (a broker slower than it, or down) keeps the last.
        if let Some(slowest) =
            slowest_round_trip_us(stats.brokers.values().map(|b| (b.nodeid, b.rtt.as_ref())))
        {
            self.slowest_round_trip_us.store(slowest, Ordering::Relaxed);
        }
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's internal "unassigned" partition; lag -1 means unknown.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

/// Whether librdkafka's statistics show a broker it can talk to: `brokers` as (node id,
/// state). Only brokers proper count: they have a node id, while the bootstrap entries
/// (node id -1) are the configured addresses, not brokers of the cluster.
fn any_broker_up<'a>(brokers: impl IntoIterator<Item = (i32, &'a str)>) -> bool {
    brokers
        .into_iter()
        .any(|(nodeid, state)| nodeid >= 0 && state == "UP")
}

/// The slowest broker's p99 round trip in µs, from librdkafka's statistics as (node id,
/// round-trip window): brokers proper only (not the bootstrap entries), and only windows
/// that hold answers. `None` when no broker answered in the interval.
fn slowest_round_trip_us<'a>(
    brokers: impl IntoIterator<Item = (i32, Option<&'a Window>)>,
) -> Option<u64> {
    brokers
        .into_iter()
        .filter(|(nodeid, _)| *nodeid >= 0)
        .filter_map(|(_, rtt)| rtt.filter(|w| w.cnt > 0))
        .map(|w| w.p99.max(0) as u64)
        .max()
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        // Commit what is settled (and what settled past it) for the partitions we lose,
        // while they are still ours; their next owner reads the rest again.
        let mut points = Vec::new();
        let mut revoked = Vec::new();
        for e in tpl.elements() {
            let tp = TopicPartition::new(e.topic(), e.partition());
            if let Some(point) = self.book.revoke(&tp) {
                points.push((tp.clone(), point));
            }
            self.metrics
                .consumer_lag
                .remove_label_values(&[e.topic(), &e.partition().to_string()])
                .ok();
            revoked.push(tp);
        }
        if !points.is_empty()
            && let Err(e) = commit(consumer, &points, CommitMode::Sync)
        {
            self.metrics.commit_failures.inc();
            warn!(error = %e, "committing the revoked partitions failed; their next owner reads more again");
        }
        info!(partitions = revoked.len(), "partitions revoked");
        let _ = self.revoked_tx.send(revoked);
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let committed = consumer.committed_offsets((*tpl).clone(), COMMITTED_TIMEOUT);
                if let Err(e) = &committed {
                    warn!(error = %e, "could not read the committed offsets' metadata; reading from the committed offsets");
                }
                let mut assigned = Vec::new();
                for e in tpl.elements() {
                    let tp = TopicPartition::new(e.topic(), e.partition());
                    let resume = committed.as_ref().ok().and_then(|c| {
                        let elem = c.find_partition(e.topic(), e.partition())?;
                        let Offset::Offset(offset) = elem.offset() else {
                            return None;
                        };
                        // rust-rdkafka panics on metadata that is not UTF-8 (another tool's);
                        // treat that like no metadata.
                        let text = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            elem.metadata().to_owned()
                        }))
                        .ok()?;
                        metadata::decode(offset, &text)
                    });
                    if let Some(r) = &resume {
                        debug!(%tp, through = r.last(), "skipping what the previous owner settled");
                    }
                    self.book.assign(tp.clone(), resume);
                    assigned.push(tp);
                }
                self.readiness
                    .consumer_assigned
                    .store(true, Ordering::Release);
                info!(partitions = tpl.count(), "partitions assigned");
                let _ = self.assigned_tx.send(assigned);
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            self.metrics.commit_failures.inc();
            self.commit_failed.store(true, Ordering::Release);
            debug!(error = %e, "an offset commit failed; the next one carries the same offsets");
        }
    }
}

/// Commits commit points with their metadata.
fn commit<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    points: &[(TopicPartition, CommitPoint)],
    mode: CommitMode,
) -> KafkaResult<()> {
    let mut tpl = TopicPartitionList::with_capacity(points.len());
    for (tp, point) in points {
        tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(point.offset))?;
        if !point.metadata.is_empty()
            && let Some(mut elem) = tpl.find_partition(&tp.topic, tp.partition)
        {
            elem.set_metadata(&point.metadata);
        }
    }
    consumer.commit(&tpl, mode)
}

/// Consumer settings that make at-least-once hold; the caller's config supplies brokers,
/// group and operator properties.
pub fn consumer_config(mut base: ClientConfig, group_id: &str) -> ClientConfig {
    // Defaults the operator may override with kafka.properties.
    for (key, value) in [
        // Fail over within seconds when an instance dies (librdkafka's default is 45 s).
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "2000"),
        // Also how soon /readyz notices a broker outage and its end.
        ("statistics.interval.ms", "2000"),
        // Bound what librdkafka prefetches; the in-flight limit bounds the rest.
        ("queued.max.messages.kbytes", "16384"),
        // A fetch returns once 16 KiB are there or after 5 ms. librdkafka's defaults (1 byte,
        // 500 ms) answer every fetch as soon as one record arrives: at 1,000 events/s that
        // is a fetch per record, which cost the broker and hookrelay more CPU than the
        // deliveries and, on a busy machine, a worse tail. 5 ms is the latency it adds at
        // most (BENCHMARKS.md, "Latency and CPU").
        ("fetch.wait.max.ms", "5"),
        ("fetch.min.bytes", "16384"),
    ] {
        if base.get(key).is_none() {
            base.set(key, value);
        }
    }
    base.set("group.id", group_id)
        // Commits are made by the loop from the offset book, with metadata.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    base
}

/// A retry record held until its due time (and until its endpoint has room).
struct Held {
    envelope: DeliveryEnvelope,
    settle: crate::offsets::Settle,
}

/// A partition paused on a record its endpoint had no room for.
struct Blocked {
    endpoint: EndpointId,
    since: Instant,
}

/// The topics the member consumes, by role.
pub struct IngestTopics {
    pub events: String,
    pub tiers: Vec<String>,
    pub requests: String,
}

pub struct IngestParts {
    pub client: ClientConfig,
    pub group_id: String,
    pub topics: IngestTopics,
    /// Topics whose idle partitions rest between fetches, and for how long (see
    /// [`super::resting`]).
    pub rests: Vec<(String, Duration)>,
    pub decoder: EventDecoder,
    pub table: Arc<SubscriptionTable>,
    pub dispatcher: Arc<Dispatcher>,
    pub handoff: Arc<Handoff>,
    pub metrics: Metrics,
    pub in_flight: InFlightCounter,
    /// Endpoints that partitions wait for and that may take more now (from the workers).
    pub room_rx: mpsc::UnboundedReceiver<EndpointId>,
    pub max_in_flight: usize,
    pub readiness: Arc<Readiness>,
    /// The schema registry client, when `codec.schema_registry.url` is set.
    pub registry: Option<Arc<RegistryClient>>,
}

pub struct Ingest {
    consumer: Arc<StreamConsumer<IngestContext>>,
    topics: IngestTopics,
    decoder: EventDecoder,
    table: Arc<SubscriptionTable>,
    dispatcher: Arc<Dispatcher>,
    handoff: Arc<Handoff>,
    book: Arc<OffsetBook>,
    metrics: Metrics,
    in_flight: InFlightCounter,
    max_in_flight: usize,
    readiness: Arc<Readiness>,
    pauses: Pauses,
    resting: Resting,
    held: HashMap<TopicPartition, VecDeque<Held>>,
    blocked: HashMap<TopicPartition, Blocked>,
    /// Partitions that waited [`ENDPOINT_WAIT_LIMIT`] for an endpoint: the record they wait
    /// with goes to a retry tier for the endpoints that still have no room.
    impatient: HashSet<TopicPartition>,
    committed: HashMap<TopicPartition, CommitPoint>,
    last_commit: Instant,
    last_gauges: Instant,
    table_failed: bool,
    wake_tx: mpsc::UnboundedSender<TopicPartition>,
    wake_rx: mpsc::UnboundedReceiver<TopicPartition>,
    revoked_rx: mpsc::UnboundedReceiver<Vec<TopicPartition>>,
    assigned_rx: mpsc::UnboundedReceiver<Vec<TopicPartition>>,
    room_rx: mpsc::UnboundedReceiver<EndpointId>,
    registry: Option<Arc<RegistryClient>>,
    /// Partitions paused on a record whose schema id is being fetched, by schema id.
    awaiting_schema: HashMap<u32, HashSet<TopicPartition>>,
    /// Schema ids whose answer reached the decoder's cache (from the fetch tasks).
    schema_tx: mpsc::UnboundedSender<u32>,
    schema_rx: mpsc::UnboundedReceiver<u32>,
}

impl Ingest {
    pub fn new(parts: IngestParts) -> Result<Self, IngestError> {
        let book = OffsetBook::new();
        let (revoked_tx, revoked_rx) = mpsc::unbounded_channel();
        let (assigned_tx, assigned_rx) = mpsc::unbounded_channel();
        let context = IngestContext {
            book: book.clone(),
            metrics: parts.metrics.clone(),
            revoked_tx,
            assigned_tx,
            readiness: parts.readiness.clone(),
            commit_failed: AtomicBool::new(false),
            slowest_round_trip_us: AtomicU64::new(0),
        };
        let consumer: StreamConsumer<IngestContext> =
            consumer_config(parts.client, &parts.group_id)
                .create_with_context(context)
                .map_err(IngestError::Create)?;
        let mut topics = vec![parts.topics.events.clone()];
        topics.extend(parts.topics.tiers.iter().cloned());
        topics.push(parts.topics.requests.clone());
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|source| IngestError::Subscribe {
                topics: topics.clone(),
                source,
            })?;
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        let (schema_tx, schema_rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        Ok(Ingest {
            consumer: Arc::new(consumer),
            topics: parts.topics,
            decoder: parts.decoder,
            table: parts.table,
            dispatcher: parts.dispatcher,
            handoff: parts.handoff,
            book,
            metrics: parts.metrics,
            in_flight: parts.in_flight,
            max_in_flight: parts.max_in_flight.max(1),
            readiness: parts.readiness,
            pauses: Pauses::default(),
            resting: Resting::new(parts.rests),
            held: HashMap::new(),
            blocked: HashMap::new(),
            impatient: HashSet::new(),
            committed: HashMap::new(),
            last_commit: now,
            last_gauges: now,
            table_failed: false,
            wake_tx,
            wake_rx,
            revoked_rx,
            assigned_rx,
            room_rx: parts.room_rx,
            registry: parts.registry,
            awaiting_schema: HashMap::new(),
            schema_tx,
            schema_rx,
        })
    }

    /// The offset book, for tests.
    pub fn book(&self) -> Arc<OffsetBook> {
        self.book.clone()
    }

    /// Consumes until `shutdown` turns true, then stops intake, lets requests in flight
    /// finish (up to `drain`), commits what settled and returns. Still a group member until
    /// then, so the commit lands; what did not settle is read again by the next owner.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>, drain: Duration) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A handle of our own: the message borrows the consumer, and handling needs `self`.
        let consumer = self.consumer.clone();
        loop {
            tokio::select! {
                biased;
                () = stopped(&mut shutdown) => break,
                Some(revoked) = self.revoked_rx.recv() => self.on_revoked(&revoked),
                Some(assigned) = self.assigned_rx.recv() => self.on_assigned(assigned),
                Some(tp) = self.wake_rx.recv() => self.release_due(&tp),
                Some(endpoint) = self.room_rx.recv() => self.endpoint_has_room(&endpoint),
                Some(schema_id) = self.schema_rx.recv() => self.schema_known(schema_id),
                _ = tick.tick() => self.tick(),
                received = consumer.recv() => match received {
                    Ok(msg) => self.handle(&msg),
                    Err(e) => warn!(error = %e, "consumer error"),
                },
            }
        }
        self.stop(drain).await;
    }

    async fn stop(&mut self, drain: Duration) {
        info!(
            in_flight = self.in_flight.current(),
            "stopping intake; letting requests in flight finish"
        );
        self.pauses.set_global(PauseReason::Stopping, true);
        self.sync_pauses();
        // Held retry records and queued deliveries were never sent: they stay uncommitted
        // and their next owner sends them, so waiting for them would only delay the exit.
        self.held.clear();
        self.dispatcher.close();
        let deadline = tokio::time::Instant::now() + drain;
        let consumer = self.consumer.clone();
        while self.in_flight.current() > 0 {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    warn!(
                        in_flight = self.in_flight.current(),
                        "drain timeout: abandoning requests still in flight; their records stay uncommitted and are sent again by the next owner"
                    );
                    self.book.abandon_all();
                    break;
                }
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
                Some(revoked) = self.revoked_rx.recv() => self.on_revoked(&revoked),
                // Serve rebalance callbacks; every partition is paused, so no record comes.
                received = consumer.recv() => if let Err(e) = received {
                    debug!(error = %e, "consumer error while draining");
                },
            }
        }
        let points = self.book.snapshot();
        if !points.is_empty() {
            match commit(self.consumer.as_ref(), &points, CommitMode::Sync) {
                Ok(()) => info!(partitions = points.len(), "committed settled offsets"),
                Err(e) => {
                    self.metrics.commit_failures.inc();
                    warn!(error = %e, "final commit failed; uncommitted records will be read again")
                }
            }
        }
    }

    fn on_assigned(&mut self, assigned: Vec<TopicPartition>) {
        self.resting.assign(&assigned, Instant::now());
        self.pauses.assign(assigned);
        self.sync_pauses();
    }

    fn on_revoked(&mut self, revoked: &[TopicPartition]) {
        for tp in revoked {
            if let Some(q) = self.held.remove(tp) {
                debug!(%tp, records = q.len(), "dropping held retry records of a revoked partition");
            }
            self.blocked.remove(tp);
            self.impatient.remove(tp);
            self.committed.remove(tp);
            for waiting in self.awaiting_schema.values_mut() {
                waiting.remove(tp);
            }
        }
        self.pauses.revoke(revoked);
        self.resting.revoke(revoked);
    }

    fn handle(&mut self, msg: &BorrowedMessage<'_>) {
        let tp = TopicPartition::new(msg.topic(), msg.partition());
        if self.resting.saw_record(&tp, Instant::now()) {
            // Fetched as it was put to rest: it has records, so it fetches on.
            self.pauses.set(&tp, PauseReason::Resting, false);
            self.sync_pauses();
        }
        if self.pauses.is_paused(&tp) && !self.held.contains_key(&tp) {
            // Arrived as the partition was being paused: keep it in Kafka for later.
            self.seek_back(&tp, msg.offset());
            return;
        }
        match self.book.admit(&tp, msg.offset()) {
            Admit::New => {}
            Admit::AlreadySettled | Admit::NotOurs => return,
        }
        if msg.topic() == self.topics.events {
            self.handle_event(msg, &tp);
        } else if msg.topic() == self.topics.requests
            || self.topics.tiers.iter().any(|t| t == msg.topic())
        {
            self.handle_retry(msg, &tp);
        } else {
            warn!(
                topic = msg.topic(),
                "record from an unexpected topic ignored"
            );
        }
        self.check_in_flight();
    }

    /// Pauses `tp` (if not yet) and rewinds it to `offset`, so the record there is read
    /// again once the partition resumes.
    fn seek_back(&mut self, tp: &TopicPartition, offset: i64) {
        self.sync_pauses();
        if let Err(e) = self.consumer.seek(
            &tp.topic,
            tp.partition,
            Offset::Offset(offset),
            Duration::ZERO,
        ) {
            // Without the seek the partition would resume past the record: commit nothing
            // past it by forgetting the partition's lease; it is read again on reassignment.
            error!(%tp, offset, error = %e, "cannot rewind a paused partition");
        }
    }

    fn table_usable(&self) -> bool {
        !self.table_failed && self.table.state() == FollowerState::Ready
    }

    fn handle_event(&mut self, msg: &BorrowedMessage<'_>, tp: &TopicPartition) {
        let offset = msg.offset();
        if !self.table_usable() {
            self.table_failure("the subscriptions table stopped following its topic".to_owned());
            self.seek_back(tp, offset);
            return;
        }
        let event = match self.decoder.decode(msg.payload().unwrap_or_default()) {
            Ok(event) => event,
            Err(InvalidRecord::SchemaPending { schema_id }) => {
                self.await_schema(tp, offset, schema_id);
                return;
            }
            Err(invalid) => {
                self.metrics.events_consumed.inc();
                let Some(settle) = self.book.track(tp, offset, 1) else {
                    return;
                };
                self.metrics
                    .events_invalid
                    .with_label_values(&[invalid.reason()])
                    .inc();
                warn!(topic = msg.topic(), partition = msg.partition(), offset, reason = invalid.reason(), error = %invalid, "invalid input record; sending it to the invalid-records topic");
                let handoff = self.handoff.clone();
                let owned = msg.detach();
                tokio::spawn(async move { handoff.invalid(owned, &invalid, settle).await });
                return;
            }
        };
        let endpoints = match self
            .table
            .endpoints_for(&event.account_id, event.event_type.as_str())
        {
            Ok(endpoints) => endpoints,
            Err(e) => {
                self.table_failure(format!("reading the subscriptions table: {e}"));
                self.seek_back(tp, offset);
                return;
            }
        };
        // Every endpoint must have room before anything is admitted, so a record is
        // either handled whole or left in Kafka whole.
        let impatient = self.impatient.contains(tp);
        let mut shed = vec![false; endpoints.len()];
        for (i, endpoint) in endpoints.iter().enumerate() {
            if endpoint.breaker_disabled() {
                continue;
            }
            match self.dispatcher.room(&endpoint.id) {
                Room::Free => {}
                Room::Full { slow: true } => shed[i] = true,
                Room::Full { slow: false } if impatient => shed[i] = true,
                Room::Full { slow: false } => {
                    self.block(tp, offset, endpoint.id.clone());
                    return;
                }
            }
        }
        self.impatient.remove(tp);
        self.metrics.events_consumed.inc();
        let Some(settle) = self.book.track(tp, offset, endpoints.len() as u32) else {
            return;
        };
        if endpoints.is_empty() {
            return;
        }
        let body = Bytes::from(crate::event::customer_body(&event));
        let created_ms = (event.created.unix_timestamp_nanos() / 1_000_000) as i64;
        let origin = Origin {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset,
        };
        for (endpoint, shed) in endpoints.into_iter().zip(shed) {
            let disabled = endpoint.breaker_disabled();
            let delivery = Delivery {
                id: delivery_id(&endpoint.id, &event.id),
                endpoint_id: endpoint.id,
                account_id: event.account_id.clone(),
                event_id: event.id.clone(),
                event_type: event.event_type.as_str().to_owned(),
                body: body.clone(),
                event_created_ms: created_ms,
                attempt: 1,
                requested: false,
                members: None,
                first_attempt_ms: None,
                history: Vec::new(),
                origin: origin.clone(),
                settle: settle.clone(),
                in_flight: self.in_flight.enter(),
            };
            if disabled {
                // Kept, so re-enabling the endpoint can replay it.
                self.dead_letter(delivery, DeadLetterReason::EndpointDisabled);
            } else if shed {
                self.overflow(delivery);
            } else {
                self.dispatcher.submit(delivery);
            }
        }
    }

    /// Leaves the record at `offset` in Kafka until the registry's answer for `schema_id` is
    /// in the decoder's cache, fetching it unless a fetch is already running.
    fn await_schema(&mut self, tp: &TopicPartition, offset: i64, schema_id: u32) {
        let (Some(registry), Some(cache)) = (
            self.registry.clone(),
            self.decoder.registry_schemas().cloned(),
        ) else {
            // The decoder asks for a registry only when one is configured, and then the
            // client exists (app wiring); without one the record could never decode.
            error!(%tp, offset, schema_id, "a record waits for the schema registry, but none is configured; the partition stays paused");
            self.pauses.set(tp, PauseReason::SchemaRegistry, true);
            self.seek_back(tp, offset);
            return;
        };
        debug!(%tp, offset, schema_id, "the record's writer schema is not known yet; the partition waits for the schema registry");
        self.pauses.set(tp, PauseReason::SchemaRegistry, true);
        self.seek_back(tp, offset);
        let waiting = self.awaiting_schema.entry(schema_id).or_default();
        let first = waiting.is_empty();
        waiting.insert(tp.clone());
        if first {
            let reader = self.decoder.reader_schema().clone();
            let done = self.schema_tx.clone();
            tokio::spawn(async move {
                registry.resolve_into(schema_id, &reader, &cache).await;
                let _ = done.send(schema_id);
            });
        }
    }

    /// The answer for `schema_id` is cached: the partitions waiting for it read on.
    fn schema_known(&mut self, schema_id: u32) {
        for tp in self.awaiting_schema.remove(&schema_id).unwrap_or_default() {
            self.pauses.set(&tp, PauseReason::SchemaRegistry, false);
        }
        self.sync_pauses();
    }

    fn dead_letter(&self, delivery: Delivery, reason: DeadLetterReason) {
        self.handoff
            .log_decision(&delivery, DeliveryOutcome::DeadLettered, Some(reason));
        let handoff = self.handoff.clone();
        tokio::spawn(async move { handoff.dead_letter(delivery, reason, None).await });
    }

    fn overflow(&self, delivery: Delivery) {
        let handoff = self.handoff.clone();
        tokio::spawn(async move { handoff.overflow(delivery).await });
    }

    /// Leaves the record at `offset` in Kafka until `endpoint` has room.
    fn block(&mut self, tp: &TopicPartition, offset: i64, endpoint: EndpointId) {
        debug!(%tp, offset, endpoint_id = %endpoint, "endpoint backlog full; the record waits in Kafka");
        self.dispatcher.await_room(&endpoint);
        self.pauses.set(tp, PauseReason::EndpointFull, true);
        self.blocked.insert(
            tp.clone(),
            Blocked {
                endpoint,
                since: Instant::now(),
            },
        );
        self.seek_back(tp, offset);
    }

    fn handle_retry(&mut self, msg: &BorrowedMessage<'_>, tp: &TopicPartition) {
        let Some(settle) = self.book.track(tp, msg.offset(), 1) else {
            return;
        };
        let envelope = match DeliveryEnvelope::from_avro(msg.payload().unwrap_or_default()) {
            Ok(env) => env,
            Err(e) => {
                // Not ours, or corrupt: keep it for a person rather than drop it.
                warn!(topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), error = %e, "undecodable retry record; moving it to the dead-letter topic as is");
                let handoff = self.handoff.clone();
                let owned = msg.detach();
                tokio::spawn(async move { handoff.undecodable_retry(owned, settle).await });
                return;
            }
        };
        let queue = self.held.entry(tp.clone()).or_default();
        let first_held = queue.is_empty();
        queue.push_back(Held { envelope, settle });
        if first_held {
            self.release_due(tp);
        } else {
            // Behind a head that waits: hold the partition so nothing more piles up.
            self.pauses.set(tp, PauseReason::RetryNotDue, true);
            self.sync_pauses();
        }
    }

    /// Sends every held record of `tp` that is due and whose endpoint has room; holds the
    /// partition while the head is not due (and arranges to be woken when it is) or waits
    /// for its endpoint.
    fn release_due(&mut self, tp: &TopicPartition) {
        loop {
            let Some(queue) = self.held.get_mut(tp) else {
                return;
            };
            let Some(head) = queue.front() else {
                self.held.remove(tp);
                self.pauses.set(tp, PauseReason::RetryNotDue, false);
                self.pauses.set(tp, PauseReason::EndpointFull, false);
                self.sync_pauses();
                return;
            };
            if head.settle.is_revoked() {
                self.held.remove(tp);
                return;
            }
            let now = now_ms();
            let due = head.envelope.due_at_ms;
            // Strictly after: both instants are whole milliseconds, so `due == now` may still
            // be up to a millisecond early.
            if due >= now {
                self.pauses.set(tp, PauseReason::RetryNotDue, true);
                self.sync_pauses();
                let wake = self.wake_tx.clone();
                let tp = tp.clone();
                let wait = Duration::from_millis((due - now) as u64 + 1);
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = wake.send(tp);
                });
                return;
            }
            if self.in_flight.current() >= self.max_in_flight {
                // Intake is paused as a whole; the tick releases due heads again.
                return;
            }
            let endpoint = EndpointId::new(head.envelope.endpoint_id.clone());
            let shed = match self.dispatcher.room(&endpoint) {
                Room::Free => false,
                Room::Full { slow: true } => true,
                Room::Full { slow: false } => {
                    self.dispatcher.await_room(&endpoint);
                    let since = self
                        .blocked
                        .entry(tp.clone())
                        .or_insert_with(|| Blocked {
                            endpoint: endpoint.clone(),
                            since: Instant::now(),
                        })
                        .since;
                    if since.elapsed() < ENDPOINT_WAIT_LIMIT {
                        self.pauses.set(tp, PauseReason::EndpointFull, true);
                        self.sync_pauses();
                        return;
                    }
                    true
                }
            };
            self.blocked.remove(tp);
            self.pauses.set(tp, PauseReason::EndpointFull, false);
            let Some(Held { envelope, settle }) = queue.pop_front() else {
                continue;
            };
            let requested = *tp.topic == *self.topics.requests;
            let delivery =
                Delivery::from_envelope(envelope, settle, self.in_flight.enter(), requested);
            if shed {
                self.overflow(delivery);
            } else {
                self.dispatcher.submit(delivery);
            }
        }
    }

    /// A worker says an endpoint that partitions wait for may take more: let them go on now
    /// rather than at the next tick.
    fn endpoint_has_room(&mut self, endpoint: &EndpointId) {
        let waiting: Vec<TopicPartition> = self
            .blocked
            .iter()
            .filter(|(_, b)| &b.endpoint == endpoint)
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in waiting {
            if self.held.contains_key(&tp) {
                self.release_due(&tp);
            } else if self.dispatcher.resumable(endpoint) {
                self.blocked.remove(&tp);
                self.pauses.set(&tp, PauseReason::EndpointFull, false);
            }
        }
        self.sync_pauses();
    }

    fn check_in_flight(&mut self) {
        let current = self.in_flight.current();
        let limited = self.pauses.has_global(PauseReason::InFlightLimit);
        if !limited && current >= self.max_in_flight {
            debug!(
                in_flight = current,
                "in-flight limit reached; pausing intake"
            );
            self.pauses.set_global(PauseReason::InFlightLimit, true);
            self.sync_pauses();
        } else if limited && current < self.max_in_flight - self.max_in_flight / 10 {
            self.pauses.set_global(PauseReason::InFlightLimit, false);
            self.sync_pauses();
        }
    }

    /// The subscriptions table cannot be trusted any more: hold intake until a restart.
    fn table_failure(&mut self, why: String) {
        if self.table_failed {
            return;
        }
        self.table_failed = true;
        let why = self.table.failure().unwrap_or(why);
        error!(error = %why, "the subscriptions table stopped; intake is paused and nothing more is committed on it until hookrelay restarts");
        self.readiness.subscriptions_failed(why);
        self.metrics.subscriptions_failures.inc();
        self.metrics.subscriptions_ready.set(0);
        self.pauses.set_global(PauseReason::TableStopped, true);
        self.sync_pauses();
    }

    fn tick(&mut self) {
        if !self.table_failed && self.table.state() == FollowerState::Stopped {
            self.table_failure("the subscriptions table stopped following its topic".to_owned());
        }
        self.check_in_flight();
        // Partitions waiting for an endpoint: resume once it has room, or once it turned out
        // slow (the record then goes to a retry tier), or after waiting long enough.
        let blocked: Vec<(TopicPartition, EndpointId, Instant)> = self
            .blocked
            .iter()
            .map(|(tp, b)| (tp.clone(), b.endpoint.clone(), b.since))
            .collect();
        for (tp, endpoint, since) in blocked {
            if self.held.contains_key(&tp) {
                // Released below with the other due heads.
                continue;
            }
            let go = if self.dispatcher.resumable(&endpoint) {
                true
            } else if since.elapsed() >= ENDPOINT_WAIT_LIMIT {
                self.impatient.insert(tp.clone());
                true
            } else {
                false
            };
            if go {
                self.blocked.remove(&tp);
                self.pauses.set(&tp, PauseReason::EndpointFull, false);
            }
        }
        // Due heads held back by a full endpoint or the in-flight limit.
        let now = now_ms();
        let due: Vec<TopicPartition> = self
            .held
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|h| h.envelope.due_at_ms < now))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            self.release_due(&tp);
        }
        // Quiet partitions: rest the idle ones, fetch the rested ones again.
        let round_trip = Duration::from_micros(
            self.consumer
                .context()
                .slowest_round_trip_us
                .load(Ordering::Relaxed),
        );
        // Paused for another reason (a held retry head among them) is waiting, not idle.
        let pauses = &self.pauses;
        let changes = self
            .resting
            .due(Instant::now(), resting::look_for(round_trip), |tp| {
                pauses.is_paused_except(tp, PauseReason::Resting)
            });
        for (tp, rest) in changes {
            self.pauses.set(&tp, PauseReason::Resting, rest);
        }
        self.sync_pauses();
        if self.last_commit.elapsed() >= COMMIT_EVERY {
            self.last_commit = Instant::now();
            self.commit_settled();
        }
        if self.last_gauges.elapsed() >= Duration::from_secs(1) {
            self.last_gauges = Instant::now();
            self.update_gauges();
        }
    }

    /// Commits the partitions whose commit point moved since their last commit.
    fn commit_settled(&mut self) {
        if self
            .consumer
            .context()
            .commit_failed
            .swap(false, Ordering::AcqRel)
        {
            self.committed.clear();
        }
        let changed: Vec<(TopicPartition, CommitPoint)> = self
            .book
            .snapshot()
            .into_iter()
            .filter(|(tp, point)| self.committed.get(tp) != Some(point))
            .collect();
        if changed.is_empty() {
            return;
        }
        match commit(self.consumer.as_ref(), &changed, CommitMode::Async) {
            Ok(()) => self.committed.extend(changed),
            Err(e) => {
                self.metrics.commit_failures.inc();
                debug!(error = %e, "could not start an offset commit; trying again shortly");
            }
        }
    }

    fn sync_pauses(&mut self) {
        let changes = self.pauses.changes();
        for (tps, pause) in [(&changes.pause, true), (&changes.resume, false)] {
            if tps.is_empty() {
                continue;
            }
            let mut tpl = TopicPartitionList::with_capacity(tps.len());
            for tp in tps {
                tpl.add_partition(&tp.topic, tp.partition);
            }
            let result = if pause {
                self.consumer.pause(&tpl)
            } else {
                self.consumer.resume(&tpl)
            };
            if let Err(e) = result {
                debug!(paused = pause, partitions = tps.len(), error = %e, "pause/resume failed");
            }
        }
    }

    fn update_gauges(&self) {
        let now = now_ms();
        for (i, topic) in self.topics.tiers.iter().enumerate() {
            let (mut waiting, mut overdue) = (0i64, 0i64);
            for (tp, q) in &self.held {
                if &*tp.topic == topic.as_str() {
                    waiting += q.len() as i64;
                    overdue += q
                        .iter()
                        .filter(|h| h.envelope.due_at_ms + 1000 < now)
                        .count() as i64;
                }
            }
            let tier = tier_label(i);
            self.metrics
                .retry_waiting
                .with_label_values(&[&tier])
                .set(waiting);
            self.metrics
                .retry_overdue
                .with_label_values(&[&tier])
                .set(overdue);
        }
        for (reason, n) in self.pauses.counts() {
            self.metrics
                .paused_partitions
                .with_label_values(&[reason.as_str()])
                .set(n as i64);
        }
        debug!(
            consumed = self.metrics.events_consumed.get(),
            in_flight = self.in_flight.current(),
            unsettled_offsets = self.book.unsettled(),
            endpoints = self.dispatcher.active_endpoints(),
            "ingest progress"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_is_reachable_only_when_a_real_one_is_up() {
        // librdkafka's states: INIT, TRY_CONNECT, CONNECT, SSL_HANDSHAKE, AUTH, UP, DOWN, ...
        assert!(any_broker_up([(-1, "INIT"), (1, "UP")]));
        assert!(any_broker_up([(1, "DOWN"), (2, "UP")]));
        // A bootstrap entry does not count, whatever its state.
        assert!(!any_broker_up([(-1, "UP"), (1, "DOWN")]));
        assert!(!any_broker_up([
            (1, "TRY_CONNECT"),
            (2, "CONNECT"),
            (3, "AUTH")
        ]));
        assert!(!any_broker_up([]));
    }

    #[test]
    fn the_slowest_round_trip_counts_brokers_that_answered() {
        let window = |p99, cnt| Window {
            p99,
            cnt,
            ..Window::default()
        };
        let (fast, slow, silent) = (window(6_000, 40), window(400_000, 3), window(0, 0));
        assert_eq!(
            slowest_round_trip_us([(1, Some(&fast)), (2, Some(&slow))]),
            Some(400_000)
        );
        assert_eq!(
            slowest_round_trip_us([(-1, Some(&slow)), (1, Some(&fast)), (2, Some(&silent))]),
            Some(6_000),
            "a bootstrap entry and a broker without answers do not count"
        );
        assert_eq!(
            slowest_round_trip_us([(1, Some(&silent)), (2, None)]),
            None,
            "no answers: keep what was known"
        );
    }
}
