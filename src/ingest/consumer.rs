//! The consumer-group member that reads the input topic and every retry tier. Input records
//! are decoded, joined against the subscriptions table and fanned out to the endpoint
//! queues; retry records are held until due (the partition paused meanwhile) and then sent
//! again. Offsets are stored only as deliveries settle (see [`book`](super::book)).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use crate::admin::Readiness;
use crate::batch::queue::Dispatcher;
use crate::delivery::{Delivery, delivery_id, now_ms};
use crate::event::EventDecoder;
use crate::ingest::book::{OffsetBook, OffsetStore, Settle, TopicPartition};
use crate::records::envelope::DeliveryEnvelope;
use crate::retry::handoff::Handoff;
use crate::subscriptions::SubscriptionTable;
use crate::telemetry::Metrics;

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
    #[error("reading the subscriptions table: {0}")]
    Table(String),
}

/// Rebalance and statistics hooks. Runs on the thread that polls the consumer.
pub struct IngestContext {
    book: Arc<OffsetBook>,
    metrics: Metrics,
    tier_topics: Vec<String>,
    revoked_tx: mpsc::UnboundedSender<Vec<TopicPartition>>,
    readiness: Arc<Readiness>,
}

impl ClientContext for IngestContext {
    fn stats(&self, stats: Statistics) {
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

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        // Commit what is settled for the partitions we lose; the rest is read again by
        // their next owner (at-least-once: it may duplicate, it never drops).
        let mut commit = TopicPartitionList::new();
        let mut revoked = Vec::new();
        for e in tpl.elements() {
            let tp = TopicPartition {
                topic: Arc::from(e.topic()),
                partition: e.partition(),
            };
            if let Some(offset) = self.book.revoke(&tp) {
                let _ =
                    commit.add_partition_offset(e.topic(), e.partition(), Offset::Offset(offset));
            }
            self.metrics
                .consumer_lag
                .remove_label_values(&[e.topic(), &e.partition().to_string()])
                .ok();
            revoked.push(tp);
        }
        if commit.count() > 0
            && let Err(e) = consumer.commit(&commit, CommitMode::Sync)
        {
            warn!(error = %e, "committing settled offsets of revoked partitions failed; they will be read again");
        }
        info!(partitions = revoked.len(), "partitions revoked");
        let _ = self.revoked_tx.send(revoked);
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                for e in tpl.elements() {
                    self.book.assign(TopicPartition {
                        topic: Arc::from(e.topic()),
                        partition: e.partition(),
                    });
                }
                // librdkafka keeps a partition paused across a rebalance; we hold nothing for
                // a freshly assigned partition, so make sure it is fetching.
                let mut tiers = TopicPartitionList::new();
                for e in tpl.elements() {
                    if self.tier_topics.iter().any(|t| t == e.topic()) {
                        tiers.add_partition(e.topic(), e.partition());
                    }
                }
                if tiers.count() > 0
                    && let Err(e) = consumer.resume(&tiers)
                {
                    warn!(error = %e, "resuming newly assigned retry partitions failed");
                }
                self.readiness
                    .consumer_assigned
                    .store(true, std::sync::atomic::Ordering::Release);
                info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// Stores committable offsets with librdkafka; auto-commit sends them to the broker.
struct ConsumerStore(std::sync::Weak<StreamConsumer<IngestContext>>);

impl OffsetStore for ConsumerStore {
    fn store(&self, tpl: &TopicPartitionList) {
        if let Some(consumer) = self.0.upgrade()
            && let Err(e) = consumer.store_offsets(tpl)
        {
            // Normal for a partition revoked a moment ago.
            debug!(error = %e, "storing an offset failed");
        }
    }
}

/// Consumer settings that make at-least-once hold; the caller's config supplies brokers,
/// group and operator properties.
pub fn consumer_config(mut base: ClientConfig, group_id: &str) -> ClientConfig {
    // Defaults the operator may override with kafka.properties.
    for (key, value) in [
        // Fail over within seconds when an instance dies (librdkafka's default is 45 s).
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "2000"),
        ("statistics.interval.ms", "5000"),
        // Bound what librdkafka prefetches; the in-flight limit bounds the rest.
        ("queued.max.messages.kbytes", "16384"),
    ] {
        if base.get(key).is_none() {
            base.set(key, value);
        }
    }
    base.set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        // Offsets are stored by the book as deliveries settle, never on read.
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    base
}

/// A retry record held until its due time.
struct Held {
    envelope: DeliveryEnvelope,
    settle: Settle,
}

pub struct Ingest {
    consumer: Arc<StreamConsumer<IngestContext>>,
    events_topic: String,
    tier_topics: Vec<String>,
    decoder: EventDecoder,
    table: Arc<SubscriptionTable>,
    dispatcher: Arc<Dispatcher>,
    handoff: Arc<Handoff>,
    book: Arc<OffsetBook>,
    metrics: Metrics,
    in_flight: Arc<Semaphore>,
    held: HashMap<TopicPartition, VecDeque<Held>>,
    wake_tx: mpsc::UnboundedSender<TopicPartition>,
    wake_rx: mpsc::UnboundedReceiver<TopicPartition>,
    revoked_rx: mpsc::UnboundedReceiver<Vec<TopicPartition>>,
}

pub struct IngestParts {
    pub client: ClientConfig,
    pub group_id: String,
    pub events_topic: String,
    pub tier_topics: Vec<String>,
    pub decoder: EventDecoder,
    pub table: Arc<SubscriptionTable>,
    pub dispatcher: Arc<Dispatcher>,
    pub handoff: Arc<Handoff>,
    pub metrics: Metrics,
    pub max_in_flight: usize,
    pub readiness: Arc<Readiness>,
}

impl Ingest {
    pub fn new(parts: IngestParts) -> Result<Self, IngestError> {
        let book = OffsetBook::new();
        let (revoked_tx, revoked_rx) = mpsc::unbounded_channel();
        let context = IngestContext {
            book: book.clone(),
            metrics: parts.metrics.clone(),
            tier_topics: parts.tier_topics.clone(),
            revoked_tx,
            readiness: parts.readiness,
        };
        let consumer: StreamConsumer<IngestContext> =
            consumer_config(parts.client, &parts.group_id)
                .create_with_context(context)
                .map_err(IngestError::Create)?;
        let consumer = Arc::new(consumer);
        book.set_store(Arc::new(ConsumerStore(Arc::downgrade(&consumer))));
        let mut topics = vec![parts.events_topic.clone()];
        topics.extend(parts.tier_topics.iter().cloned());
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|source| IngestError::Subscribe {
                topics: topics.clone(),
                source,
            })?;
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        Ok(Ingest {
            consumer,
            events_topic: parts.events_topic,
            tier_topics: parts.tier_topics,
            decoder: parts.decoder,
            table: parts.table,
            dispatcher: parts.dispatcher,
            handoff: parts.handoff,
            book,
            metrics: parts.metrics,
            in_flight: Arc::new(Semaphore::new(parts.max_in_flight)),
            held: HashMap::new(),
            wake_tx,
            wake_rx,
            revoked_rx,
        })
    }

    /// The offset book, for readiness and tests.
    pub fn book(&self) -> Arc<OffsetBook> {
        self.book.clone()
    }

    /// Consumes until `shutdown` turns true, then stops intake, waits up to `drain` for
    /// in-flight deliveries to settle, commits what is settled and returns.
    pub async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
        drain: Duration,
    ) -> Result<(), IngestError> {
        let mut gauges = tokio::time::interval(Duration::from_secs(1));
        let mut ticks = 0u64;
        // A handle of our own: the message borrows the consumer, and handling needs `self`.
        let consumer = self.consumer.clone();
        loop {
            tokio::select! {
                biased;
                () = crate::app::stopped(&mut shutdown) => break,
                Some(revoked) = self.revoked_rx.recv() => self.drop_held(&revoked),
                Some(tp) = self.wake_rx.recv() => self.release_due(&tp).await,
                _ = gauges.tick() => {
                    self.update_gauges();
                    ticks += 1;
                    if ticks.is_multiple_of(10) {
                        debug!(
                            consumed = self.metrics.events_consumed.get(),
                            in_flight = self.metrics.in_flight.get(),
                            unsettled_offsets = self.book.unsettled(),
                            free_permits = self.in_flight.available_permits(),
                            "ingest progress"
                        );
                    }
                }
                received = consumer.recv() => match received {
                    Ok(msg) => self.handle(&msg).await?,
                    Err(e) => warn!(error = %e, "consumer error"),
                },
            }
        }
        info!("stopping intake; draining in-flight deliveries");
        self.consumer.unsubscribe();
        let deadline = tokio::time::Instant::now() + drain;
        while self.book.unsettled() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = self.book.unsettled();
        if left > 0 {
            warn!(
                unsettled = left,
                "drain timeout: unsettled records stay uncommitted and will be read again"
            );
        }
        self.commit_settled();
        Ok(())
    }

    /// Commits the settled offsets of every partition synchronously.
    fn commit_settled(&self) {
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in self.book.committable() {
            let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset));
        }
        if tpl.count() == 0 {
            return;
        }
        match self.consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => info!(partitions = tpl.count(), "committed settled offsets"),
            Err(e) => {
                warn!(error = %e, "final commit failed; uncommitted records will be read again")
            }
        }
    }

    async fn handle(&mut self, msg: &BorrowedMessage<'_>) -> Result<(), IngestError> {
        let tp = TopicPartition {
            topic: Arc::from(msg.topic()),
            partition: msg.partition(),
        };
        if msg.topic() == self.events_topic {
            self.handle_event(msg, &tp).await
        } else if self.tier_topics.iter().any(|t| t == msg.topic()) {
            self.handle_retry(msg, &tp).await;
            Ok(())
        } else {
            warn!(
                topic = msg.topic(),
                "record from an unexpected topic ignored"
            );
            Ok(())
        }
    }

    async fn handle_event(
        &mut self,
        msg: &BorrowedMessage<'_>,
        tp: &TopicPartition,
    ) -> Result<(), IngestError> {
        self.metrics.events_consumed.inc();
        let event = match self.decoder.decode(msg.payload().unwrap_or_default()) {
            Ok(event) => event,
            Err(invalid) => {
                let Some(settle) = self.book.track(tp, msg.offset(), 1) else {
                    return Ok(());
                };
                self.metrics
                    .events_invalid
                    .with_label_values(&[invalid.reason()])
                    .inc();
                warn!(topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), reason = invalid.reason(), error = %invalid, "invalid input record; sending it to the invalid-records topic");
                let handoff = self.handoff.clone();
                let owned = msg.detach();
                tokio::spawn(async move { handoff.invalid(owned, &invalid, settle).await });
                return Ok(());
            }
        };
        let endpoints = self
            .table
            .endpoints_for(&event.account_id, event.event_type.as_str())
            .map_err(|e| IngestError::Table(e.to_string()))?;
        let Some(settle) = self.book.track(tp, msg.offset(), endpoints.len() as u32) else {
            return Ok(());
        };
        if endpoints.is_empty() {
            return Ok(());
        }
        let body = Bytes::from(crate::event::customer_body(&event));
        let created_ms = (event.created.unix_timestamp_nanos() / 1_000_000) as i64;
        for endpoint in endpoints {
            let permit = self.in_flight.clone().acquire_owned().await.ok();
            self.dispatcher.submit(Delivery {
                id: delivery_id(&endpoint.id, &event.id),
                endpoint_id: endpoint.id,
                account_id: event.account_id.clone(),
                event_id: event.id.clone(),
                event_type: event.event_type.as_str().to_owned(),
                body: body.clone(),
                event_created_ms: created_ms,
                attempt: 1,
                first_attempt_ms: None,
                history: Vec::new(),
                settle: settle.clone(),
                permit,
            });
        }
        Ok(())
    }

    async fn handle_retry(&mut self, msg: &BorrowedMessage<'_>, tp: &TopicPartition) {
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
            self.release_due(tp).await;
        }
    }

    /// Sends every held record of `tp` that is due; pauses the partition while the head is
    /// not, and arranges to be woken when it is.
    async fn release_due(&mut self, tp: &TopicPartition) {
        loop {
            let now = now_ms();
            let Some(queue) = self.held.get_mut(tp) else {
                return;
            };
            let head_due = match queue.front() {
                None => None,
                Some(head) if head.settle.is_revoked() => {
                    self.held.remove(tp);
                    return;
                }
                Some(head) => Some(head.envelope.due_at_ms),
            };
            match head_due {
                None => {
                    self.held.remove(tp);
                    self.set_paused(tp, false);
                    return;
                }
                Some(due) if due > now => {
                    self.set_paused(tp, true);
                    let wake = self.wake_tx.clone();
                    let tp = tp.clone();
                    let wait = Duration::from_millis((due - now) as u64);
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        let _ = wake.send(tp);
                    });
                    return;
                }
                Some(_) => {
                    if let Some(held) = queue.pop_front() {
                        self.dispatch_retry(held).await;
                    }
                }
            }
        }
    }

    async fn dispatch_retry(&mut self, held: Held) {
        let Held { envelope, settle } = held;
        let permit = self.in_flight.clone().acquire_owned().await.ok();
        let delivery = Delivery::from_envelope(envelope, settle, permit);
        self.dispatcher.submit(delivery);
    }

    fn set_paused(&self, tp: &TopicPartition, paused: bool) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.topic, tp.partition);
        let result = if paused {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        if let Err(e) = result {
            debug!(topic = %tp.topic, partition = tp.partition, paused, error = %e, "pause/resume failed");
        }
    }

    fn drop_held(&mut self, revoked: &[TopicPartition]) {
        for tp in revoked {
            if let Some(q) = self.held.remove(tp) {
                debug!(topic = %tp.topic, partition = tp.partition, records = q.len(), "dropping held retry records of a revoked partition");
            }
        }
    }

    fn update_gauges(&self) {
        let now = now_ms();
        for (i, topic) in self.tier_topics.iter().enumerate() {
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
    }
}

/// The tier label used in metrics: "1".."5", so dashboards do not depend on topic names.
pub fn tier_label(index: usize) -> String {
    (index + 1).to_string()
}
