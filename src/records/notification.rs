//! The value of `webhook-notifications` records: notices for an endpoint's owner, such as
//! "your endpoint was disabled", for an email or paging service to act on.

use serde::{Deserialize, Serialize};

use super::avro::EmbeddedSchema;

static SCHEMA: EmbeddedSchema = EmbeddedSchema::new(
    "endpoint_notification",
    &[(
        1,
        include_str!("../../schemas/endpoint_notification.v1.avsc"),
    )],
);

/// The notification type written when the circuit breaker disables an endpoint.
pub const ENDPOINT_DISABLED: &str = "endpoint.disabled";

/// A notice about one endpoint (schema `endpoint_notification`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointNotification {
    /// `ntf_…`, stable for one state change so consumers can dedupe.
    pub id: String,
    /// [`ENDPOINT_DISABLED`]; a string so new kinds do not break old readers.
    #[serde(rename = "type")]
    pub kind: String,
    pub endpoint_id: String,
    pub account_id: String,
    pub url: String,
    /// `consecutive_failures`, `retries_exhausted`, …
    pub reason: String,
    pub disabled_at_ms: i64,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
}

super::avro::avro_record!(EndpointNotification, SCHEMA);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_the_type_field_type() {
        let n = EndpointNotification {
            id: "ntf_1".into(),
            kind: ENDPOINT_DISABLED.into(),
            endpoint_id: "ep_1".into(),
            account_id: "acc_1".into(),
            url: "https://example.com/hook".into(),
            reason: "consecutive_failures".into(),
            disabled_at_ms: 1_773_585_060_000,
            last_status: None,
            last_error: Some("timed out".into()),
        };
        let bytes = n.to_avro().unwrap();
        assert_eq!(EndpointNotification::from_avro(&bytes).unwrap(), n);
        // Consumers in other languages read the Avro field `type`.
        let value = EndpointNotification::schema()
            .get()
            .unwrap()
            .decode_value(&bytes)
            .unwrap();
        let apache_avro::types::Value::Record(fields) = value else {
            panic!("not a record");
        };
        assert!(fields.iter().any(|(k, v)| k == "type"
            && *v == apache_avro::types::Value::String(ENDPOINT_DISABLED.into())));
    }
}
