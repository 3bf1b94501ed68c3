//! The value of retry-tier and dead-letter records: one delivery, its exact body and its
//! history, so a retry worker can re-sign and resend it without the original event.

use serde::{Deserialize, Serialize};

use super::avro::EmbeddedSchema;

static SCHEMA: EmbeddedSchema = EmbeddedSchema::new(
    "delivery_envelope",
    &[(1, include_str!("../../schemas/delivery_envelope.v1.avsc"))],
);

/// One delivery waiting for its next attempt (schema `delivery_envelope`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryEnvelope {
    /// The stable `webhook-id` (`msg_…`, or `bat_…` for a batch) receivers dedupe on.
    pub delivery_id: String,
    pub endpoint_id: String,
    pub account_id: String,
    /// Every event in `body`, in body order.
    pub event_ids: Vec<String>,
    /// The type of each event, parallel to `event_ids` (for filtering and metrics without
    /// parsing the body).
    pub event_types: Vec<String>,
    /// True when `body` is a batch body.
    pub batch: bool,
    /// The exact customer JSON body: retries re-sign it, never re-render it, so every
    /// attempt carries the same bytes.
    pub body: String,
    /// The number of the NEXT attempt (1 = first).
    pub attempt: i32,
    pub first_attempt_at_ms: i64,
    /// Unix ms before which the next attempt must not be made.
    pub due_at_ms: i64,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// Where the input record came from, for tracing a delivery back to its event.
    pub origin_topic: String,
    pub origin_partition: i32,
    pub origin_offset: i64,
    /// Every attempt so far, oldest first.
    pub history: Vec<AttemptSummary>,
    /// Set on dead-letter records: why the delivery stopped.
    pub dead_letter_reason: Option<String>,
}

/// One earlier attempt, as carried in [`DeliveryEnvelope::history`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptSummary {
    pub attempt: i32,
    pub at_ms: i64,
    /// HTTP status; `None` when no response arrived.
    pub status: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i64,
}

super::avro::avro_record!(DeliveryEnvelope, SCHEMA);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> DeliveryEnvelope {
        DeliveryEnvelope {
            delivery_id: "msg_0123456789abcdef".into(),
            endpoint_id: "ep_1".into(),
            account_id: "acc_1".into(),
            event_ids: vec!["evt_1".into(), "evt_2".into()],
            event_types: vec!["license.created".into(), "domain.added".into()],
            batch: true,
            body: r#"{"id":"bat_1","type":"batch","created":"2026-03-15T14:30:00Z","data":{"events":[]}}"#
                .into(),
            attempt: 3,
            first_attempt_at_ms: 1_773_585_000_000,
            due_at_ms: 1_773_585_360_000,
            last_status: Some(503),
            last_error: Some("HTTP 503".into()),
            origin_topic: "license-events".into(),
            origin_partition: 7,
            origin_offset: 123_456_789,
            history: vec![
                AttemptSummary {
                    attempt: 1,
                    at_ms: 1_773_585_000_000,
                    status: None,
                    error: Some("timed out".into()),
                    latency_ms: 5_000,
                },
                AttemptSummary {
                    attempt: 2,
                    at_ms: 1_773_585_060_000,
                    status: Some(503),
                    error: Some("HTTP 503".into()),
                    latency_ms: 12,
                },
            ],
            dead_letter_reason: None,
        }
    }

    #[test]
    fn round_trips_with_history_and_optional_fields() {
        let e = sample();
        assert_eq!(
            DeliveryEnvelope::from_avro(&e.to_avro().unwrap()).unwrap(),
            e
        );
        let dead = DeliveryEnvelope {
            last_status: None,
            last_error: None,
            history: vec![],
            dead_letter_reason: Some("retries_exhausted".into()),
            ..sample()
        };
        assert_eq!(
            DeliveryEnvelope::from_avro(&dead.to_avro().unwrap()).unwrap(),
            dead
        );
    }

    #[test]
    fn the_body_survives_byte_for_byte() {
        // Retries re-sign the stored body: any change (escaping, key order) breaks the
        // receiver's dedupe and signature expectations.
        let body =
            "{\"id\":\"evt_1\",\"data\":{\"plan\":\"pro \\u00e9 \\\"x\\\"\",\"n\":[1,2]}}\u{1F600}";
        let e = DeliveryEnvelope {
            body: body.into(),
            ..sample()
        };
        let back = DeliveryEnvelope::from_avro(&e.to_avro().unwrap()).unwrap();
        assert_eq!(back.body.as_bytes(), body.as_bytes());
    }

    #[test]
    fn other_record_types_are_refused() {
        let attempt = crate::records::attempt::tests::sample().to_avro().unwrap();
        assert!(matches!(
            DeliveryEnvelope::from_avro(&attempt),
            Err(crate::records::avro::AvroError::UnknownFingerprint { .. })
        ));
    }
}
