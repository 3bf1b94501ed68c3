//! Carrying out plans: writing deliveries to a retry tier or the dead-letter topic, logging
//! attempts, disabling endpoints, and dead-ending input records that do not decode.
//!
//! Every write that settles a delivery goes through the idempotent acks=all producer and is
//! awaited before the delivery's input offset is settled. A write is retried until it lands,
//! with two exceptions that would otherwise freeze a partition: a record too large for the
//! broker is written again in a smaller form (truncated body, reason `too_large`), and a
//! delivery whose partition was revoked is abandoned (its new owner redoes the work).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::delivery::{
    DeadLetterReason, Delivery, DeliveryOutcome, DisableReason, DropReason, ErrorClass, now_ms,
};
use crate::event::InvalidRecord;
use crate::offsets::{Lease, Settle};
use crate::records::envelope::{AttemptSummary, DeliveryEnvelope};
use crate::records::{AttemptLine, AttemptRecord};
use crate::subscriptions::{Endpoint, SubscriptionTable, publish_status};
use crate::telemetry::Metrics;

use super::plan::RetryAt;
use super::tier_label;

/// What went wrong with an attempt, as recorded and carried into retry records.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: Option<u16>,
    pub class: ErrorClass,
    pub not_before: Option<Duration>,
    pub latency_ms: i64,
    pub snippet: Option<String>,
}

impl Failure {
    /// A failure that happened before any request was made.
    pub fn local(class: ErrorClass) -> Self {
        Failure {
            status: None,
            class,
            not_before: None,
            latency_ms: 0,
            snippet: None,
        }
    }

    /// What the owner of the endpoint is told about it.
    pub fn describe(&self) -> String {
        self.class.describe(self.status)
    }
}

/// How [`Handoff::disable`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disabling {
    /// The endpoint is disabled (by this write or by another instance's).
    Disabled,
    /// It is still enabled: the write failed, or an operator re-enabled it meanwhile.
    StillEnabled,
    /// The endpoint no longer exists.
    Deleted,
}

/// Why a write did not land.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("the record is larger than the broker accepts")]
    TooLarge,
    #[error("the partition the delivery came from was revoked")]
    Revoked,
}

/// Topic names the handoff writes to.
#[derive(Debug, Clone)]
pub struct HandoffTopics {
    pub tiers: Vec<String>,
    pub tier_delays: Vec<Duration>,
    pub dead_letter: String,
    pub attempts: String,
    pub invalid: String,
    pub subscriptions: String,
}

pub struct Handoff {
    producer: FutureProducer,
    topics: HandoffTopics,
    table: Arc<SubscriptionTable>,
    metrics: Metrics,
}

/// How long to wait before trying a failed durable write again.
const REWRITE_BACKOFF: Duration = Duration::from_secs(1);
/// How long one write may wait in the producer's queue before it is tried again.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The body kept when a record is written in its smaller form.
const TRUNCATED_BODY: usize = 64 * 1024;
/// Longest request body kept in an attempt record (batches are at most 256 KiB by default).
const ATTEMPT_BODY_LIMIT: usize = 512 * 1024;
/// Tries of a status write before the disabling is given up (the breaker tries again later).
const STATUS_WRITE_TRIES: u32 = 5;
/// How long to wait for our own status write to come back through the table.
const STATUS_APPLY_TIMEOUT: Duration = Duration::from_secs(30);

impl Handoff {
    pub fn new(
        producer: FutureProducer,
        config: &Config,
        table: Arc<SubscriptionTable>,
        metrics: Metrics,
    ) -> Self {
        let t = &config.topics;
        Handoff {
            producer,
            topics: HandoffTopics {
                tiers: config.retry.tiers.iter().map(|t| t.topic.clone()).collect(),
                tier_delays: config.retry.tiers.iter().map(|t| t.delay).collect(),
                dead_letter: t.dead_letter.clone(),
                attempts: t.attempts.clone(),
                invalid: t.invalid.clone(),
                subscriptions: t.subscriptions.clone(),
            },
            table,
            metrics,
        }
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Writes a record and waits for the broker's acknowledgement, retrying until it lands,
    /// unless it is too large (never will) or `lease` is revoked (no longer ours to write).
    async fn write(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &OwnedHeaders,
        lease: Option<&Lease>,
    ) -> Result<(), WriteError> {
        loop {
            if lease.is_some_and(Lease::is_revoked) {
                return Err(WriteError::Revoked);
            }
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).headers(headers.clone());
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(v) = value {
                record = record.payload(v);
            }
            match self.producer.send(record, WRITE_TIMEOUT).await {
                Ok(_) => return Ok(()),
                Err((e, _)) if is_too_large(&e) => return Err(WriteError::TooLarge),
                Err((e, _)) => {
                    error!(topic, error = %e, "durable write failed; retrying");
                    match lease {
                        Some(lease) => {
                            tokio::select! {
                                () = tokio::time::sleep(REWRITE_BACKOFF) => {}
                                () = lease.revoked() => return Err(WriteError::Revoked),
                            }
                        }
                        None => tokio::time::sleep(REWRITE_BACKOFF).await,
                    }
                }
            }
        }
    }

    /// Logs one request (or one decision made without a request) on the attempts topic.
    /// Best effort: queued without waiting for the acknowledgement.
    pub fn log_attempt(&self, record: AttemptRecord) {
        self.log_line(record.line());
    }

    /// [`Handoff::log_attempt`] from borrowed fields, as dispatch logs every request.
    pub fn log_line(&self, mut line: AttemptLine<'_>) {
        line.request_body = line
            .request_body
            .map(|body| prefix_at_char(body, ATTEMPT_BODY_LIMIT));
        let bytes = match line.to_avro() {
            Ok(bytes) => bytes,
            Err(e) => {
                error!(error = %e, "cannot encode an attempt record");
                return;
            }
        };
        let value: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topics.attempts)
            .key(line.endpoint_id.as_bytes())
            .payload(&bytes);
        if let Err((e, _)) = self.producer.send_result(value) {
            warn!(error = %e, "could not queue a record for the attempts log");
        }
    }

    /// Logs a decision about a delivery made without sending it (dead-lettered because its
    /// endpoint is disabled, dropped because it was deleted…).
    pub fn log_decision(
        &self,
        d: &Delivery,
        outcome: DeliveryOutcome,
        dead_letter: Option<DeadLetterReason>,
    ) {
        let (event_ids, event_types) = d.event_lists();
        self.log_attempt(AttemptRecord {
            delivery_id: d.id.clone(),
            endpoint_id: d.endpoint_id.to_string(),
            account_id: d.account_id.to_string(),
            event_ids,
            attempt: d.attempt as i32,
            at_ms: now_ms(),
            outcome: outcome.as_str().to_owned(),
            status: None,
            latency_ms: 0,
            error: None,
            response_snippet: None,
            tier: self.tier_of(d),
            event_types,
            batch: d.members.is_some(),
            error_class: None,
            dead_letter_reason: dead_letter.map(|r| r.as_str().to_owned()),
            next_attempt_at_ms: None,
            request_body: None,
        });
    }

    /// The tier a delivery was read from, as the attempts log names it (e.g. `5m`).
    pub fn tier_of(&self, d: &Delivery) -> Option<String> {
        let (topic, _, _) = d.settle.origin();
        let index = self.topics.tiers.iter().position(|t| t == topic)?;
        self.topics
            .tier_delays
            .get(index)
            .map(|delay| humantime::format_duration(*delay).to_string())
    }

    /// Delivered: settles each delivery.
    pub fn delivered(&self, batch: Vec<Delivery>) {
        let done = now_ms();
        self.metrics
            .delivery(DeliveryOutcome::Delivered, batch.len());
        for d in batch {
            self.metrics
                .end_to_end_latency
                .observe((done - d.event_created_ms).max(0) as f64 / 1000.0);
            d.settle();
        }
    }

    /// Writes a delivery that failed an attempt to its next tier.
    pub async fn retry(&self, mut d: Delivery, at: RetryAt, failure: &Failure) {
        add_to_history(&mut d, failure);
        d.attempt = at.attempt;
        self.to_tier(d, at.tier, at.delay, Some(failure)).await;
    }

    /// Writes a delivery whose attempt failed for the last time to the dead-letter topic,
    /// with that attempt in its history.
    pub async fn dead_letter_after(
        &self,
        mut d: Delivery,
        reason: DeadLetterReason,
        failure: &Failure,
    ) {
        add_to_history(&mut d, failure);
        self.dead_letter(d, reason, Some(failure)).await;
    }

    /// The endpoint cannot take the delivery now (it is slow and its backlog is full):
    /// settle it by parking it in the first tier. Its attempt number is unchanged (nothing
    /// was sent).
    pub async fn overflow(&self, d: Delivery) {
        let delay = self
            .topics
            .tier_delays
            .first()
            .copied()
            .unwrap_or(Duration::from_secs(60));
        self.to_tier(d, 0, delay, None).await;
    }

    async fn to_tier(&self, d: Delivery, index: usize, delay: Duration, failure: Option<&Failure>) {
        let Some(topic) = self.topics.tiers.get(index) else {
            self.dead_letter(d, DeadLetterReason::RetriesExhausted, failure)
                .await;
            return;
        };
        let due_at_ms = now_ms() + delay.as_millis() as i64;
        let envelope = d.to_envelope(
            due_at_ms,
            failure.and_then(|f| f.status),
            failure.map(Failure::describe),
            None,
        );
        let Some(bytes) = encode_or_log(envelope.to_avro()) else {
            return;
        };
        let headers = retry_headers(&envelope, None);
        let written = self
            .write(
                topic,
                Some(d.endpoint_id.as_str().as_bytes()),
                Some(&bytes),
                &headers,
                Some(d.lease()),
            )
            .await;
        match written {
            Ok(()) => {
                self.metrics
                    .retry_scheduled
                    .with_label_values(&[&tier_label(index)])
                    .inc();
                self.metrics.delivery(DeliveryOutcome::RetryScheduled, 1);
                d.settle();
            }
            Err(WriteError::TooLarge) => {
                self.metrics
                    .oversize_records
                    .with_label_values(&["retry"])
                    .inc();
                warn!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, bytes = bytes.len(), "retry record too large for the broker; dead-lettering it in a smaller form");
                self.dead_letter(d, DeadLetterReason::TooLarge, failure)
                    .await;
            }
            Err(WriteError::Revoked) => drop(d),
        }
    }

    /// Writes the delivery, its history and the reason to the dead-letter topic. A record
    /// too large for the broker goes in a smaller form (body truncated, reason `too_large`).
    pub async fn dead_letter(
        &self,
        mut d: Delivery,
        reason: DeadLetterReason,
        failure: Option<&Failure>,
    ) {
        d.first_attempt_ms.get_or_insert(now_ms());
        let mut envelope = d.to_envelope(
            now_ms(),
            failure.and_then(|f| f.status),
            failure.map(Failure::describe),
            Some(reason),
        );
        let key = d.endpoint_id.as_str().as_bytes().to_vec();
        let mut written = match encode_or_log(envelope.to_avro()) {
            Some(bytes) => {
                let headers = retry_headers(&envelope, Some(reason));
                self.write(
                    &self.topics.dead_letter,
                    Some(&key),
                    Some(&bytes),
                    &headers,
                    Some(d.lease()),
                )
                .await
            }
            None => Err(WriteError::TooLarge),
        };
        let mut reason = reason;
        if let Err(WriteError::TooLarge) = written {
            self.metrics
                .oversize_records
                .with_label_values(&["dead_letter"])
                .inc();
            let original = envelope.body.len();
            truncate_at_char(&mut envelope.body, TRUNCATED_BODY);
            envelope.dead_letter_reason = Some(DeadLetterReason::TooLarge.as_str().to_owned());
            reason = DeadLetterReason::TooLarge;
            let mut headers = retry_headers(&envelope, Some(reason));
            headers = headers.insert(Header {
                key: "hookrelay-original-body-bytes",
                value: Some(original.to_string().as_bytes()),
            });
            written = match encode_or_log(envelope.to_avro()) {
                Some(bytes) => {
                    self.write(
                        &self.topics.dead_letter,
                        Some(&key),
                        Some(&bytes),
                        &headers,
                        Some(d.lease()),
                    )
                    .await
                }
                None => Err(WriteError::TooLarge),
            };
            if let Err(WriteError::TooLarge) = written {
                // Even the smaller form does not fit (huge headers or history): the log line
                // and the metric are all that is left of it.
                error!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, "dead-letter record too large even truncated; dropping it");
                written = Ok(());
            }
        }
        match written {
            Ok(()) => {
                self.metrics.dead_letter(reason);
                info!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, event_id = %d.event_id, reason = reason.as_str(), "delivery dead-lettered");
                d.settle();
            }
            Err(_) => drop(d),
        }
    }

    /// Ends a delivery that nobody wants any more (the endpoint was deleted or paused).
    pub fn drop_delivery(&self, d: Delivery, reason: DropReason) {
        self.metrics.delivery(DeliveryOutcome::Dropped, 1);
        info!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, reason = reason.as_str(), "delivery dropped");
        d.settle();
    }

    /// Disables an endpoint: writes a status record one epoch past the one this instance
    /// sees (see [`crate::subscriptions::status`]) and waits for the table to apply it. The
    /// owner's notice is written by the table's outbox once this instance's write wins, so a
    /// crash in between cannot lose it and two instances disabling at once send one.
    pub async fn disable(
        &self,
        endpoint: &Endpoint,
        reason: DisableReason,
        failure: &Failure,
    ) -> Disabling {
        let current = match self.table.get(&endpoint.id) {
            Ok(Some(ep)) => ep,
            Ok(None) => return Disabling::Deleted,
            Err(e) => {
                warn!(endpoint_id = %endpoint.id, error = %e, "cannot read the endpoint to disable it");
                return Disabling::StillEnabled;
            }
        };
        if current.breaker_disabled() {
            return Disabling::Disabled;
        }
        let status = current.current_status().disabled_after(
            reason.as_str(),
            now_ms(),
            self.table.instance_id(),
            failure.status,
            Some(failure.describe()),
        );
        let mut tries = 0;
        let published = loop {
            match publish_status(&self.producer, &self.topics.subscriptions, &status).await {
                Ok(published) => break published,
                Err(e) if tries + 1 < STATUS_WRITE_TRIES => {
                    tries += 1;
                    error!(endpoint_id = %endpoint.id, error = %e, "writing the disabled status failed; retrying");
                    tokio::time::sleep(REWRITE_BACKOFF).await;
                }
                Err(e) => {
                    error!(endpoint_id = %endpoint.id, error = %e, "could not disable the endpoint; it stays enabled until the breaker trips again");
                    return Disabling::StillEnabled;
                }
            }
        };
        let applied =
            tokio::time::timeout(STATUS_APPLY_TIMEOUT, self.table.wait_applied(published)).await;
        if !matches!(applied, Ok(Ok(()))) {
            warn!(endpoint_id = %endpoint.id, "the disabled status was written but not seen applied in time");
        }
        match self.table.status(&endpoint.id) {
            Ok(Some(now)) if !now.enabled => {
                if now == status {
                    self.metrics
                        .endpoints_disabled
                        .with_label_values(&[reason.as_str()])
                        .inc();
                    warn!(endpoint_id = %endpoint.id, reason = reason.as_str(), epoch = status.epoch, "endpoint disabled");
                } else {
                    info!(endpoint_id = %endpoint.id, "endpoint was disabled by another instance first");
                }
                Disabling::Disabled
            }
            Ok(_) => {
                info!(endpoint_id = %endpoint.id, "endpoint was re-enabled while this instance disabled it; it stays enabled");
                Disabling::StillEnabled
            }
            Err(e) => {
                warn!(endpoint_id = %endpoint.id, error = %e, "cannot read the endpoint status back");
                Disabling::StillEnabled
            }
        }
    }

    /// Dead-ends an input record that could not be decoded or validated: the original key,
    /// value and headers go to the invalid-records topic with headers saying why and where
    /// from; then its offset is settled. A record too large to copy with those headers goes
    /// in a smaller form: our headers, the first 64 KiB of the value, and its original size.
    pub async fn invalid(&self, msg: OwnedMessage, invalid: &InvalidRecord, settle: Settle) {
        let ours = crate::event::invalid_headers(
            invalid.reason(),
            &invalid.to_string(),
            msg.topic(),
            msg.partition(),
            msg.offset(),
        );
        let mut headers = OwnedHeaders::new();
        if let Some(original) = msg.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        for (key, value) in &ours {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let lease = settle.lease().clone();
        let written = self
            .write(
                &self.topics.invalid,
                msg.key(),
                msg.payload(),
                &headers,
                Some(&lease),
            )
            .await;
        let written = match written {
            Err(WriteError::TooLarge) => {
                self.metrics
                    .oversize_records
                    .with_label_values(&["invalid"])
                    .inc();
                let payload = msg.payload().unwrap_or_default();
                warn!(
                    topic = msg.topic(),
                    partition = msg.partition(),
                    offset = msg.offset(),
                    bytes = payload.len(),
                    "invalid record too large to copy whole; writing it truncated"
                );
                let mut small = OwnedHeaders::new();
                for (key, value) in &ours {
                    small = small.insert(Header {
                        key,
                        value: Some(value),
                    });
                }
                small = small.insert(Header {
                    key: "hookrelay-original-value-bytes",
                    value: Some(payload.len().to_string().as_bytes()),
                });
                let cut = &payload[..payload.len().min(TRUNCATED_BODY)];
                let key = msg.key().map(|k| &k[..k.len().min(TRUNCATED_BODY)]);
                match self
                    .write(&self.topics.invalid, key, Some(cut), &small, Some(&lease))
                    .await
                {
                    Err(WriteError::TooLarge) => {
                        error!(
                            offset = msg.offset(),
                            "invalid record too large even truncated; only this log line keeps it"
                        );
                        Ok(())
                    }
                    other => other,
                }
            }
            other => other,
        };
        if written.is_ok() {
            settle.settle();
        }
    }

    /// A retry-tier record that does not decode: kept on the dead-letter topic byte for byte.
    pub async fn undecodable_retry(&self, msg: OwnedMessage, settle: Settle) {
        let mut headers = msg.headers().cloned().unwrap_or_default();
        headers = headers.insert(Header {
            key: "hookrelay-dead-letter-reason",
            value: Some(DeadLetterReason::UndecodableRetryRecord.as_str().as_bytes()),
        });
        let lease = settle.lease().clone();
        let written = self
            .write(
                &self.topics.dead_letter,
                msg.key(),
                msg.payload(),
                &headers,
                Some(&lease),
            )
            .await;
        match written {
            Ok(()) => {
                self.metrics
                    .dead_letter(DeadLetterReason::UndecodableRetryRecord);
                settle.settle();
            }
            Err(WriteError::TooLarge) => {
                // Our own tier records are never this large; something else wrote it.
                self.metrics
                    .oversize_records
                    .with_label_values(&["dead_letter"])
                    .inc();
                error!(
                    topic = msg.topic(),
                    offset = msg.offset(),
                    "undecodable retry record too large to keep; only this log line keeps it"
                );
                settle.settle();
            }
            Err(WriteError::Revoked) => {}
        }
    }
}

/// Appends a failed attempt to the history a delivery carries.
fn add_to_history(d: &mut Delivery, failure: &Failure) {
    let now = now_ms();
    d.history.push(AttemptSummary {
        attempt: d.attempt as i32,
        at_ms: now,
        status: failure.status.map(i32::from),
        error: Some(failure.describe()),
        latency_ms: failure.latency_ms,
    });
    d.first_attempt_ms.get_or_insert(now);
}

/// librdkafka's answer for a record above `message.max.bytes`, or the broker's for one above
/// the topic's `max.message.bytes`: retrying cannot help.
fn is_too_large(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge)
    )
}

/// Cuts `s` to at most `limit` bytes, at a character boundary.
fn truncate_at_char(s: &mut String, limit: usize) {
    let keep = prefix_at_char(s, limit).len();
    s.truncate(keep);
}

/// The longest prefix of `s` of at most `limit` bytes that ends on a character boundary.
fn prefix_at_char(s: &str, limit: usize) -> &str {
    if s.len() <= limit {
        return s;
    }
    let mut cut = limit;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Our own records always encode; if one does not, it is a bug worth a loud log, and the
/// caller skips the write.
fn encode_or_log(encoded: Result<Vec<u8>, crate::records::avro::AvroError>) -> Option<Vec<u8>> {
    encoded
        .map_err(|e| error!(error = %e, "cannot encode a record hookrelay writes"))
        .ok()
}

/// Headers of retry and dead-letter records. Spring Kafka's retry-topic names (and binary
/// encodings) where one exists, so JVM tooling reads them; `hookrelay-*` text headers for
/// people and scripts.
fn retry_headers(
    envelope: &DeliveryEnvelope,
    dead_letter: Option<DeadLetterReason>,
) -> OwnedHeaders {
    let attempt = envelope.attempt;
    let status = envelope
        .last_status
        .map(|s| s.to_string())
        .unwrap_or_default();
    let error = envelope.last_error.clone().unwrap_or_default();
    let text = [
        ("hookrelay-endpoint-id", envelope.endpoint_id.clone()),
        ("hookrelay-delivery-id", envelope.delivery_id.clone()),
        (
            "hookrelay-event-id",
            envelope.event_ids.first().cloned().unwrap_or_default(),
        ),
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
    let mut h = OwnedHeaders::new_with_capacity(text.len() + 8);
    for (k, v) in &text {
        h = h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    if let Some(reason) = dead_letter {
        h = h.insert(Header {
            key: "hookrelay-dead-letter-reason",
            value: Some(reason.as_str().as_bytes()),
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
        value: Some(envelope.origin_topic.as_bytes()),
    })
    .insert(Header {
        key: "kafka_dlt-original-partition",
        value: Some(&envelope.origin_partition.to_be_bytes()),
    })
    .insert(Header {
        key: "kafka_dlt-original-offset",
        value: Some(&envelope.origin_offset.to_be_bytes()),
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
    fn truncation_keeps_whole_characters() {
        let mut s = "aé".repeat(10);
        truncate_at_char(&mut s, 4);
        assert_eq!(s, "aéa");
        let mut short = "abc".to_owned();
        truncate_at_char(&mut short, 10);
        assert_eq!(short, "abc");
    }

    #[test]
    fn only_size_errors_count_as_too_large() {
        assert!(is_too_large(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
        )));
        assert!(!is_too_large(&KafkaError::MessageProduction(
            RDKafkaErrorCode::QueueFull
        )));
    }
}
