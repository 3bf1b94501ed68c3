//! The value of `webhook-attempts` records: one line of the delivery log per request or
//! terminal decision, read by the customer API's event log and by operators.

use serde::{Deserialize, Serialize};

use super::avro::{AvroError, EmbeddedSchema, SINGLE_OBJECT_HEADER_LEN, SINGLE_OBJECT_MAGIC, wire};

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

impl AttemptRecord {
    /// Avro single-object encoding with the current schema (`attempt.v2`).
    pub fn to_avro(&self) -> Result<Vec<u8>, AvroError> {
        self.line().to_avro()
    }

    /// The record's fields, borrowed.
    pub fn line(&self) -> AttemptLine<'_> {
        // Every field named, so a field added to the struct does not compile until it is
        // carried here too.
        let AttemptRecord {
            delivery_id,
            endpoint_id,
            account_id,
            event_ids,
            attempt,
            at_ms,
            outcome,
            status,
            latency_ms,
            error,
            response_snippet,
            tier,
            event_types,
            batch,
            error_class,
            dead_letter_reason,
            next_attempt_at_ms,
            request_body,
        } = self;
        AttemptLine {
            delivery_id,
            endpoint_id,
            account_id,
            event_ids: Strings::Many(event_ids),
            attempt: *attempt,
            at_ms: *at_ms,
            outcome,
            status: *status,
            latency_ms: *latency_ms,
            error: error.as_deref(),
            response_snippet: response_snippet.as_deref(),
            tier: tier.as_deref(),
            event_types: Strings::Many(event_types),
            batch: *batch,
            error_class: error_class.as_deref(),
            dead_letter_reason: dead_letter_reason.as_deref(),
            next_attempt_at_ms: *next_attempt_at_ms,
            request_body: request_body.as_deref(),
        }
    }

    /// Decodes a record written with any released schema version.
    pub fn from_avro(bytes: &[u8]) -> Result<Self, AvroError> {
        SCHEMA.get()?.decode(bytes)
    }

    /// The schema set, for tools and the evolution tests.
    pub fn schema() -> &'static EmbeddedSchema {
        &SCHEMA
    }
}

/// The version [`AttemptLine::to_avro`] writes.
const CURRENT_VERSION: u32 = 2;

/// A list of strings in an attempt line: one borrowed string (a single event) or a slice.
#[derive(Debug, Clone, Copy)]
pub enum Strings<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl Strings<'_> {
    fn text_len(&self) -> usize {
        match self {
            Strings::One(s) => s.len(),
            Strings::Many(v) => v.iter().map(String::len).sum(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Strings::One(s) => {
                wire::long(out, 1);
                wire::string(out, s);
                out.push(0);
            }
            Strings::Many(v) => wire::strings(out, v),
        }
    }
}

/// The fields of one attempt record, borrowed: what dispatch writes for every request
/// without building an owned [`AttemptRecord`] (a dozen strings copied) first.
#[derive(Debug, Clone, Copy)]
pub struct AttemptLine<'a> {
    pub delivery_id: &'a str,
    pub endpoint_id: &'a str,
    pub account_id: &'a str,
    pub event_ids: Strings<'a>,
    pub attempt: i32,
    pub at_ms: i64,
    pub outcome: &'a str,
    pub status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<&'a str>,
    pub response_snippet: Option<&'a str>,
    pub tier: Option<&'a str>,
    pub event_types: Strings<'a>,
    pub batch: bool,
    pub error_class: Option<&'a str>,
    pub dead_letter_reason: Option<&'a str>,
    pub next_attempt_at_ms: Option<i64>,
    pub request_body: Option<&'a str>,
}

impl AttemptLine<'_> {
    /// Avro single-object encoding with the current schema (`attempt.v2`).
    ///
    /// Written field by field rather than through apache-avro's serde writer: one record
    /// goes out per request, and the generic writer (resolving the schema's names, then
    /// serde) was 3% of the CPU of an unbatched drain. The bytes are the same, which
    /// `the_direct_encoding_is_the_librarys` checks, and CI reads them with Apache Avro for
    /// Java and fastavro (`tests/it/interop.rs`).
    pub fn to_avro(&self) -> Result<Vec<u8>, AvroError> {
        let schema = SCHEMA.get()?;
        let fingerprint = schema
            .fingerprint(CURRENT_VERSION)
            .ok_or(AvroError::UnknownVersion {
                schema: schema.name(),
                version: CURRENT_VERSION,
            })?;
        let text = [
            self.delivery_id,
            self.endpoint_id,
            self.account_id,
            self.outcome,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>()
            + self.request_body.map_or(0, str::len)
            + self.event_ids.text_len()
            + self.event_types.text_len();
        let mut out = Vec::with_capacity(SINGLE_OBJECT_HEADER_LEN + text + 128);
        out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
        out.extend_from_slice(&fingerprint.0);
        wire::string(&mut out, self.delivery_id);
        wire::string(&mut out, self.endpoint_id);
        wire::string(&mut out, self.account_id);
        self.event_ids.write(&mut out);
        wire::long(&mut out, i64::from(self.attempt));
        wire::long(&mut out, self.at_ms);
        wire::string(&mut out, self.outcome);
        wire::optional(&mut out, self.status.map(i64::from), wire::long);
        wire::long(&mut out, self.latency_ms);
        wire::optional(&mut out, self.error, wire::string);
        wire::optional(&mut out, self.response_snippet, wire::string);
        wire::optional(&mut out, self.tier, wire::string);
        self.event_types.write(&mut out);
        out.push(u8::from(self.batch));
        wire::optional(&mut out, self.error_class, wire::string);
        wire::optional(&mut out, self.dead_letter_reason, wire::string);
        wire::optional(&mut out, self.next_attempt_at_ms, wire::long);
        wire::optional(&mut out, self.request_body, wire::string);
        Ok(out)
    }
}

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

    fn unicode() -> AttemptRecord {
        AttemptRecord {
            delivery_id: "bat_ä".into(),
            event_ids: (0..70).map(|i| format!("evt_{i}")).collect(),
            event_types: (0..70).map(|_| "license.renewed".into()).collect(),
            batch: true,
            status: None,
            latency_ms: -1,
            at_ms: i64::MAX,
            attempt: i32::MIN,
            request_body: Some("{\"name\":\"Zoë 🚀\"}".into()),
            ..sample()
        }
    }

    #[test]
    fn the_direct_encoding_is_the_librarys() {
        let schema = AttemptRecord::schema().get().expect("schema");
        assert_eq!(schema.current_version(), CURRENT_VERSION);
        let empty = AttemptRecord {
            event_ids: vec![],
            event_types: vec![],
            status: None,
            error: None,
            response_snippet: None,
            tier: None,
            error_class: None,
            next_attempt_at_ms: None,
            request_body: None,
            dead_letter_reason: Some("endpoint_disabled".into()),
            ..sample()
        };
        for record in [sample(), empty, unicode()] {
            let direct = record.to_avro().expect("direct");
            assert_eq!(
                direct,
                schema.encode(&record).expect("library"),
                "{record:?}"
            );
            assert_eq!(AttemptRecord::from_avro(&direct).expect("decode"), record);
        }
    }

    #[test]
    fn a_single_event_borrowed_encodes_as_a_one_item_list() {
        // Dispatch logs an unbatched request with `Strings::One`, not a slice.
        let one = AttemptRecord {
            event_ids: vec!["evt_1".into()],
            event_types: vec!["license.created".into()],
            ..sample()
        };
        let line = AttemptLine {
            event_ids: Strings::One("evt_1"),
            event_types: Strings::One("license.created"),
            ..one.line()
        };
        let schema = AttemptRecord::schema().get().expect("schema");
        assert_eq!(
            line.to_avro().expect("direct"),
            schema.encode(&one).expect("library")
        );
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
