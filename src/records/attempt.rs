//! The value of `webhook-attempts` records: one line of the delivery log per request or
//! terminal decision, read by the customer API's event log and by operators.

use serde::{Deserialize, Serialize};

use super::avro::EmbeddedSchema;

static SCHEMA: EmbeddedSchema = EmbeddedSchema::new(
    "attempt",
    &[(1, include_str!("../../schemas/attempt.v1.avsc"))],
);

/// One attempt or terminal decision (schema `attempt`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The `webhook-id` of the request.
    pub delivery_id: String,
    pub endpoint_id: String,
    pub account_id: String,
    pub event_ids: Vec<String>,
    /// 1 = first attempt.
    pub attempt: i32,
    /// Unix ms when the attempt finished.
    pub at_ms: i64,
    /// `delivered`, `retry_scheduled`, `dead_lettered`, `endpoint_disabled`, `refused`,
    /// `dropped_endpoint_deleted`, …: a string so a new outcome does not break old readers.
    pub outcome: String,
    /// HTTP status; `None` when no response arrived.
    pub status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The start of the response body, already truncated by the caller.
    pub response_snippet: Option<String>,
    /// The retry tier the attempt was made from (e.g. `5m`); `None` for a first attempt.
    pub tier: Option<String>,
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
            ..sample()
        };
        assert_eq!(
            AttemptRecord::from_avro(&delivered.to_avro().unwrap()).unwrap(),
            delivered
        );
    }
}
