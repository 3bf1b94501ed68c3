//! The value of `webhook-attempts` records: one line of the delivery log per request or
//! terminal decision, read by the customer API's event log and by operators.

use serde::{Deserialize, Serialize};

use super::avro::EmbeddedSchema;

static SCHEMA: EmbeddedSchema = EmbeddedSchema::new(
    "attempt",
    &[
        (1, include_str!("../../schemas/attempt.v1.avsc")),
        (2, include_str!("../../schemas/attempt.v2.avsc")),
    ],
);

/// One attempt or terminal decision (schema `attempt`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The `webhook-id` of the request: `msg_…` for one event, `bat_…` for a batch.
    pub delivery_id: String,
    pub endpoint_id: String,
    pub account_id: String,
    pub event_ids: Vec<String>,
    /// 1 = first attempt.
    pub attempt: i32,
    /// Unix ms when the attempt finished.
    pub at_ms: i64,
    /// A [`DeliveryOutcome`](crate::delivery::DeliveryOutcome) string: a string on the wire
    /// so a new outcome does not break old readers.
    pub outcome: String,
    /// HTTP status; `None` when no response arrived.
    pub status: Option<i32>,
    pub latency_ms: i64,
    /// A short description safe to show the customer: no internal address, no error chain.
    pub error: Option<String>,
    /// The start of the response body, already truncated by the caller.
    pub response_snippet: Option<String>,
    /// The retry tier the attempt was made from (e.g. `5m`); `None` for a first attempt.
    pub tier: Option<String>,
    /// The type of each event, parallel to `event_ids`.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// True when the request carried a batch body.
    #[serde(default)]
    pub batch: bool,
    /// An [`ErrorClass`](crate::delivery::ErrorClass) string; `None` on success.
    #[serde(default)]
    pub error_class: Option<String>,
    /// A [`DeadLetterReason`](crate::delivery::DeadLetterReason) string when dead-lettered.
    #[serde(default)]
    pub dead_letter_reason: Option<String>,
    /// When the next attempt is due, when one was scheduled.
    #[serde(default)]
    pub next_attempt_at_ms: Option<i64>,
    /// The exact body sent; `None` when no request was made.
    #[serde(default)]
    pub request_body: Option<String>,
}

super::avro::avro_record!(AttemptRecord, SCHEMA);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> AttemptRecord {
        AttemptRecord {
            delivery_id: "msg_1".into(),
            endpoint_id: "ep_1".into(),
            account_id: "acc_1".into(),
            event_ids: vec!["evt_1".into()],
            attempt: 2,
            at_ms: 1_773_585_060_000,
            outcome: "retry_scheduled".into(),
            status: Some(500),
            latency_ms: 31,
            error: Some("HTTP 500".into()),
            response_snippet: Some("internal error".into()),
            tier: Some("1m".into()),
            event_types: vec!["license.created".into()],
            batch: false,
            error_class: Some("http_5xx".into()),
            dead_letter_reason: None,
            next_attempt_at_ms: Some(1_773_585_360_000),
            request_body: Some(r#"{"id":"evt_1"}"#.into()),
        }
    }

    #[test]
    fn round_trips_with_and_without_optional_fields() {
        let a = sample();
        assert_eq!(AttemptRecord::from_avro(&a.to_avro().unwrap()).unwrap(), a);
        let delivered = AttemptRecord {
            outcome: "delivered".into(),
            status: Some(204),
            error: None,
            response_snippet: None,
            tier: None,
            error_class: None,
            next_attempt_at_ms: None,
            ..sample()
        };
        assert_eq!(
            AttemptRecord::from_avro(&delivered.to_avro().unwrap()).unwrap(),
            delivered
        );
    }
}
