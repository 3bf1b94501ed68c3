//! Handing deliveries on: to a retry tier, to the dead-letter topic, to the attempts log; and
//! the side effects of failure (the circuit breaker, disabling an endpoint, telling its owner).
//!
//! Every write that settles a delivery goes through the idempotent acks=all producer and is
//! awaited before the delivery's input offset is settled.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::delivery::{Delivery, now_ms};
use crate::dispatch::classify::AttemptResult;
use crate::dispatch::client::Exchange;
use crate::event::InvalidRecord;
use crate::ingest::book::Settle;
use crate::ingest::consumer::tier_label;
use crate::records::envelope::{AttemptSummary, DeliveryEnvelope};
use crate::records::{AttemptRecord, EndpointNotification};
use crate::retry::breaker::{CircuitBreaker, Trip};
use crate::retry::schedule::{NextStep, RetrySchedule};
use crate::subscriptions::{Endpoint, SubscriptionTable};
use crate::telemetry::Metrics;

/// What went wrong with an attempt, as recorded and carried into retry records.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub not_before: Option<Duration>,
    pub latency_ms: i64,
    pub snippet: Option<String>,
}

impl Failure {
    /// A failure that happened before any request was made.
    pub fn local(error: String) -> Self {
        Failure {
            error: Some(error),
            ..Failure::default()
        }
    }

    pub fn from_exchange(exchange: &Exchange) -> Self {
        let (status, error) = match &exchange.result {
            AttemptResult::Response { status, .. } => {
                let error = (!(200..300).contains(status)).then(|| format!("HTTP {status}"));
                (Some(*status), error)
            }
            AttemptResult::Timeout => (None, Some("timed out".to_owned())),
            AttemptResult::Connect(e) => (None, Some(format!("connection failed: {e}"))),
            AttemptResult::Refused(e) => (None, Some(format!("refused: {e}"))),
            AttemptResult::Other(e) => (None, Some(e.clone())),
        };
        Failure {
            status,
            error,
            not_before: None,
            latency_ms: exchange.latency.as_millis() as i64,
            snippet: exchange.snippet.clone(),
        }
    }

    pub fn with_not_before(mut self, not_before: Option<Duration>) -> Self {
        self.not_before = not_before;
        self
    }

    /// The bounded label used in the attempts metric.
    fn status_class(&self) -> &'static str {
        match (self.status, self.error.as_deref()) {
            (Some(s), _) => crate::dispatch::classify::status_class(s),
            (None, Some(e)) if e.starts_with("timed out") => "timeout",
            (None, Some(e)) if e.starts_with("connection") => "connect",
            (None, Some(e)) if e.starts_with("refused") => "refused",
            _ => "other",
        }
    }
}

/// Topic names the handoff writes to.
#[derive(Debug, Clone)]
pub struct HandoffTopics {
    pub tiers: Vec<String>,
    pub dead_letter: String,
    pub attempts: String,
    pub notifications: String,
    pub invalid: String,
    pub subscriptions: String,
}

pub struct Handoff {
    producer: FutureProducer,
    topics: HandoffTopics,
    schedule: RetrySchedule,
    breaker: Mutex<CircuitBreaker>,
    table: Arc<SubscriptionTable>,
    metrics: Metrics,
    /// Random per process: marks the endpoint records this process writes when disabling.
    instance: String,
}

/// How long to wait before trying a failed durable write again. Writes are retried until
/// they succeed: the input offset they settle is held until then, so nothing is lost.
const REWRITE_BACKOFF: Duration = Duration::from_secs(1);

impl Handoff {
    pub fn new(
        producer: FutureProducer,
        config: &Config,
        schedule: RetrySchedule,
        table: Arc<SubscriptionTable>,
        metrics: Metrics,
    ) -> Self {
        let t = &config.topics;
        let threshold = NonZeroU32::new(config.retry.breaker_threshold).unwrap_or(NonZeroU32::MIN);
        Handoff {
            producer,
            topics: HandoffTopics {
                tiers: config.retry.tiers.iter().map(|t| t.topic.clone()).collect(),
                dead_letter: t.dead_letter.clone(),
                attempts: t.attempts.clone(),
                notifications: t.notifications.clone(),
                invalid: t.invalid.clone(),
                subscriptions: t.subscriptions.clone(),
            },
            schedule,
            breaker: Mutex::new(CircuitBreaker::new(threshold)),
            table,
            metrics,
            instance: format!("inst_{:016x}", rand::random::<u64>()),
        }
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Writes a record and waits for the broker's acknowledgement, retrying until it lands.
    async fn write(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: OwnedHeaders,
    ) {
        loop {
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).headers(headers.clone());
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(v) = value {
                record = record.payload(v);
            }
            match self.producer.send(record, Duration::from_secs(30)).await {
                Ok(_) => return,
                Err((e, _)) => {
                    error!(topic, error = %e, "durable write failed; retrying");
                    tokio::time::sleep(REWRITE_BACKOFF).await;
                }
            }
        }
    }

    /// Best-effort write (the attempts log, notifications are durable below): queued without
    /// waiting for the acknowledgement.
    fn write_async(&self, topic: &str, key: &[u8], value: &[u8]) {
        let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).key(key).payload(value);
        if let Err((e, _)) = self.producer.send_result(record) {
            warn!(topic, error = %e, "could not queue a record for the attempts log");
        }
    }

    /// Logs one request on the attempts topic.
    pub fn record_attempt(
        &self,
        endpoint: &Endpoint,
        batch: &[Delivery],
        failure: &Failure,
        outcome: &str,
    ) {
        let Some(first) = batch.first() else {
            return;
        };
        let success = outcome == "delivered";
        self.metrics
            .attempts
            .with_label_values(&[
                if success { "success" } else { "failure" },
                failure.status_class(),
            ])
            .inc();
        let record = AttemptRecord {
            delivery_id: first.id.clone(),
            endpoint_id: endpoint.id.to_string(),
            account_id: endpoint.account_id.to_string(),
            event_ids: batch.iter().map(|d| d.event_id.to_string()).collect(),
            attempt: first.attempt as i32,
            at_ms: now_ms(),
            outcome: outcome.to_owned(),
            status: failure.status.map(i32::from),
            latency_ms: failure.latency_ms,
            error: failure.error.clone(),
            response_snippet: failure.snippet.clone(),
            tier: None,
        };
        match record.to_avro() {
            Ok(bytes) => self.write_async(
                &self.topics.attempts,
                endpoint.id.as_str().as_bytes(),
                &bytes,
            ),
            Err(e) => warn!(error = %e, "could not encode an attempt record"),
        }
    }

    /// A 2xx: the endpoint's consecutive-failure count starts over.
    pub fn succeeded(&self, endpoint: &Endpoint) {
        self.breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_success(&endpoint.id);
    }

    /// A failed attempt. Returns true when it tripped the breaker and the endpoint is now
    /// disabled (the caller dead-letters instead of retrying).
    pub async fn failed(&self, endpoint: &Endpoint, failure: &Failure) -> bool {
        let trip = self
            .breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_failure(&endpoint.id);
        if trip == Trip::Open {
            self.disable_endpoint(endpoint, "consecutive_failures", failure)
                .await;
            return true;
        }
        false
    }

    /// Hands a delivery that failed an attempt to its next tier, or to the dead-letter topic
    /// (disabling the endpoint) when the schedule is exhausted.
    pub async fn after_failure(&self, mut d: Delivery, failure: &Failure) {
        let now = now_ms();
        d.history.push(AttemptSummary {
            attempt: d.attempt as i32,
            at_ms: now,
            status: failure.status.map(i32::from),
            error: failure.error.clone(),
            latency_ms: failure.latency_ms,
        });
        d.first_attempt_ms.get_or_insert(now);
        match self.schedule.after_failure(d.attempt, failure.not_before) {
            NextStep::Tier {
                index,
                attempt,
                delay,
            } => {
                d.attempt = attempt;
                self.to_tier(d, index, delay, failure).await;
            }
            NextStep::DeadLetter => {
                if let Ok(Some(endpoint)) = self.table.get(&d.endpoint_id) {
                    self.disable_endpoint(&endpoint, "retries_exhausted", failure)
                        .await;
                }
                self.dead_letter(d, "retries_exhausted", Some(failure))
                    .await;
            }
        }
    }

    /// The endpoint's backlog is full: settle the delivery by parking it in the first tier.
    /// Its attempt number is unchanged (nothing was sent).
    pub async fn overflow(&self, d: Delivery) {
        let failure = Failure::local("endpoint backlog full".to_owned());
        let delay = self
            .schedule
            .tiers()
            .first()
            .copied()
            .unwrap_or(Duration::from_secs(60));
        self.to_tier(d, 0, delay, &failure).await;
    }

    async fn to_tier(&self, d: Delivery, index: usize, delay: Duration, failure: &Failure) {
        let Some(topic) = self.topics.tiers.get(index) else {
            self.dead_letter(d, "retries_exhausted", Some(failure))
                .await;
            return;
        };
        let due_at_ms = now_ms() + delay.as_millis() as i64;
        let envelope = d.to_envelope(due_at_ms, failure.status, failure.error.clone(), None);
        let Some(bytes) = encode_or_log(envelope.to_avro()) else {
            return;
        };
        let headers = retry_headers(&d, &envelope, failure);
        self.write(
            topic,
            Some(d.endpoint_id.as_str().as_bytes()),
            Some(&bytes),
            headers,
        )
        .await;
        self.metrics
            .retry_scheduled
            .with_label_values(&[&tier_label(index)])
            .inc();
        self.metrics
            .deliveries
            .with_label_values(&["retry_scheduled"])
            .inc();
        d.settle();
    }

    /// Writes the delivery, its history and the reason to the dead-letter topic.
    pub async fn dead_letter(&self, mut d: Delivery, reason: &str, failure: Option<&Failure>) {
        let failure = failure.cloned().unwrap_or_default();
        d.first_attempt_ms.get_or_insert(now_ms());
        let envelope = d.to_envelope(
            now_ms(),
            failure.status,
            failure.error.clone(),
            Some(reason.to_owned()),
        );
        let Some(bytes) = encode_or_log(envelope.to_avro()) else {
            return;
        };
        let mut headers = retry_headers(&d, &envelope, &failure);
        headers = headers.insert(Header {
            key: "hookrelay-dead-letter-reason",
            value: Some(reason.as_bytes()),
        });
        self.write(
            &self.topics.dead_letter,
            Some(d.endpoint_id.as_str().as_bytes()),
            Some(&bytes),
            headers,
        )
        .await;
        self.metrics
            .dead_lettered
            .with_label_values(&[reason])
            .inc();
        self.metrics
            .deliveries
            .with_label_values(&["dead_lettered"])
            .inc();
        info!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, event_id = %d.event_id, reason, "delivery dead-lettered");
        d.settle();
    }

    /// The endpoint was deleted after the event was joined: the delivery ends here.
    pub async fn endpoint_deleted(&self, d: Delivery) {
        let record = AttemptRecord {
            delivery_id: d.id.clone(),
            endpoint_id: d.endpoint_id.to_string(),
            account_id: d.account_id.to_string(),
            event_ids: vec![d.event_id.to_string()],
            attempt: d.attempt as i32,
            at_ms: now_ms(),
            outcome: "dropped_endpoint_deleted".to_owned(),
            status: None,
            latency_ms: 0,
            error: Some("endpoint deleted".to_owned()),
            response_snippet: None,
            tier: None,
        };
        if let Some(bytes) = encode_or_log(record.to_avro()) {
            self.write(
                &self.topics.attempts,
                Some(d.endpoint_id.as_str().as_bytes()),
                Some(&bytes),
                OwnedHeaders::new(),
            )
            .await;
        }
        self.metrics
            .deliveries
            .with_label_values(&["dropped"])
            .inc();
        d.settle();
    }

    /// Disables an endpoint: writes the disabled state to the subscriptions topic (so every
    /// instance sees it) and an `endpoint.disabled` notification for its owner.
    pub async fn disable_endpoint(&self, endpoint: &Endpoint, reason: &str, failure: &Failure) {
        let current = match self.table.get(&endpoint.id) {
            Ok(Some(ep)) => ep,
            Ok(None) => return,
            Err(e) => {
                warn!(endpoint_id = %endpoint.id, error = %e, "cannot read the endpoint to disable it");
                endpoint.clone()
            }
        };
        if !current.enabled {
            return;
        }
        let now = now_ms();
        let mut disabled = current.clone();
        disabled.enabled = false;
        disabled.disabled_reason = Some(reason.to_owned());
        disabled.disabled_at_ms = Some(now);
        disabled.disabled_by = Some(self.instance.clone());
        disabled.updated_at_ms = Some(now);
        disabled.version = current.version + 1;
        let mut tries = 0;
        let published = loop {
            match crate::subscriptions::publish(
                &self.producer,
                &self.topics.subscriptions,
                &disabled,
            )
            .await
            {
                Ok(published) => break published,
                Err(e) if tries < 10 => {
                    tries += 1;
                    error!(endpoint_id = %endpoint.id, error = %e, "writing the disabled endpoint failed; retrying");
                    tokio::time::sleep(REWRITE_BACKOFF).await;
                }
                Err(e) => {
                    // Its deliveries still go to the dead-letter topic; the endpoint stays
                    // enabled until a later failure tries again.
                    error!(endpoint_id = %endpoint.id, error = %e, "could not disable the endpoint");
                    return;
                }
            }
        };
        self.breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(&endpoint.id);
        // Several instances may disable the same endpoint at once, each writing version
        // v+1. Every table keeps the first record of a version, so once ours is applied, the
        // table says whose write won: only that instance tells the owner.
        let applied =
            tokio::time::timeout(Duration::from_secs(30), self.table.wait_applied(published)).await;
        let won = matches!(applied, Ok(Ok(())))
            && self.table.get(&endpoint.id).ok().flatten().as_ref() == Some(&disabled);
        if !won {
            info!(endpoint_id = %endpoint.id, "endpoint was disabled by another instance first; it sends the notification");
            return;
        }
        self.metrics
            .endpoints_disabled
            .with_label_values(&[reason])
            .inc();
        warn!(endpoint_id = %endpoint.id, reason, "endpoint disabled");
        let notification = EndpointNotification {
            id: notification_id(&endpoint.id.to_string(), disabled.version),
            kind: "endpoint.disabled".to_owned(),
            endpoint_id: endpoint.id.to_string(),
            account_id: endpoint.account_id.to_string(),
            url: endpoint.url.to_string(),
            reason: reason.to_owned(),
            disabled_at_ms: now,
            last_status: failure.status.map(i32::from),
            last_error: failure.error.clone(),
        };
        if let Some(bytes) = encode_or_log(notification.to_avro()) {
            self.write(
                &self.topics.notifications,
                Some(endpoint.id.as_str().as_bytes()),
                Some(&bytes),
                OwnedHeaders::new(),
            )
            .await;
        }
    }

    /// Dead-ends an input record that could not be decoded or validated: the original key,
    /// value and headers go to the invalid-records topic with headers saying why and where
    /// from; then its offset is settled.
    pub async fn invalid(&self, msg: OwnedMessage, invalid: &InvalidRecord, settle: Settle) {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = msg.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        for (key, value) in crate::event::invalid_headers(
            invalid.reason(),
            &invalid.to_string(),
            msg.topic(),
            msg.partition(),
            msg.offset(),
        ) {
            headers = headers.insert(Header {
                key: &key,
                value: Some(&value),
            });
        }
        self.write(&self.topics.invalid, msg.key(), msg.payload(), headers)
            .await;
        settle.settle();
    }

    /// A retry-tier record that does not decode: kept on the dead-letter topic byte for byte.
    pub async fn undecodable_retry(&self, msg: OwnedMessage, settle: Settle) {
        let mut headers = msg.headers().cloned().unwrap_or_default();
        headers = headers.insert(Header {
            key: "hookrelay-dead-letter-reason",
            value: Some("undecodable_retry_record".as_bytes()),
        });
        self.write(&self.topics.dead_letter, msg.key(), msg.payload(), headers)
            .await;
        self.metrics
            .dead_lettered
            .with_label_values(&["undecodable_retry_record"])
            .inc();
        settle.settle();
    }
}

/// Our own records always encode; if one does not, it is a bug worth a loud log, and the
/// caller skips the write.
fn encode_or_log(encoded: Result<Vec<u8>, crate::records::avro::AvroError>) -> Option<Vec<u8>> {
    encoded
        .map_err(|e| error!(error = %e, "cannot encode a record hookrelay writes"))
        .ok()
}

/// `ntf_` + a digest of endpoint and the version that disabled it: two instances that
/// disable the same endpoint state produce the same id, so the email service can dedupe.
fn notification_id(endpoint_id: &str, version: i64) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::new()
        .chain_update(endpoint_id.as_bytes())
        .chain_update(version.to_be_bytes())
        .finalize();
    format!("ntf_{}", hex::encode(&d[..12]))
}

/// Headers of retry and dead-letter records. Spring Kafka's retry-topic names (and binary
/// encodings) where one exists, so JVM tooling reads them; `hookrelay-*` text headers for
/// people and scripts.
fn retry_headers(d: &Delivery, envelope: &DeliveryEnvelope, failure: &Failure) -> OwnedHeaders {
    let (origin_topic, origin_partition, origin_offset) = d.settle.origin();
    let attempt = d.attempt as i32;
    let status = failure.status.map(|s| s.to_string()).unwrap_or_default();
    let error = failure.error.clone().unwrap_or_default();
    let text = [
        ("hookrelay-endpoint-id", d.endpoint_id.to_string()),
        ("hookrelay-delivery-id", d.id.clone()),
        ("hookrelay-event-id", d.event_id.to_string()),
        ("hookrelay-attempt", attempt.to_string()),
        ("hookrelay-due-at-ms", envelope.due_at_ms.to_string()),
        (
            "hookrelay-first-attempt-ms",
            envelope.first_attempt_at_ms.to_string(),
        ),
        ("hookrelay-last-status", status),
        ("hookrelay-last-error", error.clone()),
        ("hookrelay-origin-topic", envelope.origin_topic.clone()),
        (
            "hookrelay-origin-partition",
            envelope.origin_partition.to_string(),
        ),
        (
            "hookrelay-origin-offset",
            envelope.origin_offset.to_string(),
        ),
    ];
    let mut h = OwnedHeaders::new_with_capacity(text.len() + 6);
    for (k, v) in &text {
        h = h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    h.insert(Header {
        key: "retry_topic-attempts",
        value: Some(&attempt.to_be_bytes()),
    })
    .insert(Header {
        key: "retry_topic-backoff-timestamp",
        value: Some(&java_big_integer(envelope.due_at_ms)),
    })
    .insert(Header {
        key: "retry_topic-original-timestamp",
        value: Some(&java_big_integer(envelope.first_attempt_at_ms)),
    })
    .insert(Header {
        key: "kafka_dlt-original-topic",
        value: Some(origin_topic.as_bytes()),
    })
    .insert(Header {
        key: "kafka_dlt-original-partition",
        value: Some(&origin_partition.to_be_bytes()),
    })
    .insert(Header {
        key: "kafka_dlt-original-offset",
        value: Some(&origin_offset.to_be_bytes()),
    })
    .insert(Header {
        key: "kafka_dlt-exception-message",
        value: Some(error.as_bytes()),
    })
}

/// `java.math.BigInteger.valueOf(v).toByteArray()`: minimal big-endian two's complement,
/// which is how Spring Kafka writes its retry timestamps.
fn java_big_integer(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integer_bytes_match_java() {
        assert_eq!(java_big_integer(0), vec![0]);
        assert_eq!(java_big_integer(127), vec![0x7f]);
        assert_eq!(java_big_integer(128), vec![0x00, 0x80]);
        assert_eq!(java_big_integer(-1), vec![0xff]);
        assert_eq!(java_big_integer(-129), vec![0xff, 0x7f]);
        assert_eq!(
            java_big_integer(1_700_000_000_000),
            vec![0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00]
        );
    }

    #[test]
    fn notification_ids_are_stable_per_disabling() {
        assert_eq!(notification_id("ep_1", 3), notification_id("ep_1", 3));
        assert_ne!(notification_id("ep_1", 3), notification_id("ep_1", 4));
    }
}
