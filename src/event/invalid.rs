//! Why an input record was refused, and the headers its copy on the invalid-records topic
//! carries.
//!
//! Messages name fields, versions and positions, never the record's bytes or values that may
//! be secret (license keys): they go to logs and Kafka headers.

use crate::records::avro::AvroError;

use super::registry::UnusableSchema;

use super::model::EventType;

/// An input record that cannot become a [`LicenseEvent`](super::LicenseEvent).
#[derive(Debug, thiserror::Error)]
pub enum InvalidRecord {
    /// A record without a value (or a zero-length one).
    #[error("the record has no value")]
    Empty,
    /// Neither an Avro marker nor a JSON object.
    #[error(
        "the record is neither Avro (single-object or Confluent-framed) nor a JSON object (first byte 0x{first:02x})"
    )]
    UnknownEncoding { first: u8 },
    /// The Avro record does not decode (its cause is kept as the source).
    #[error("{0}")]
    Avro(#[source] AvroError),
    /// A Confluent-framed record whose schema id is not in `codec.confluent_schema_ids`.
    #[error(
        "the record is Confluent-framed with schema id {schema_id}, which codec.confluent_schema_ids does not map"
    )]
    UnmappedSchemaId { schema_id: u32 },
    /// The schema registry's schema for the record's id cannot be used (see
    /// [`UnusableSchema`]).
    #[error("{0}")]
    Registry(#[source] UnusableSchema),
    /// Not a refusal: the record's schema id is being fetched from the schema registry, and
    /// the record must be decoded again once it is. Never sent to the invalid-records topic
    /// (see [`InvalidRecord::is_pending`]).
    #[error("the writer schema of id {schema_id} is not fetched from the schema registry yet")]
    SchemaPending { schema_id: u32 },
    /// The bytes start like Confluent framing but stop within its 5-byte header.
    #[error("the record is shorter than the 5-byte Confluent header")]
    ConfluentHeader,
    /// The JSON record does not parse or does not have the event's shape.
    #[error("JSON record: {detail}")]
    Json {
        /// Position and kind of the problem, without the input's values.
        detail: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// A field the event's type needs is absent or blank.
    #[error("{event_type} event has no {field}")]
    MissingField {
        event_type: EventType,
        field: &'static str,
    },
    #[error("event id {id:?} does not start with evt_ followed by an id")]
    BadId { id: String },
    /// A field is present but unusable.
    #[error("{field} is invalid: {problem}")]
    BadField {
        field: &'static str,
        problem: &'static str,
    },
}

impl InvalidRecord {
    /// A short stable label: the `reason` of the invalid-records metric and the
    /// `hookrelay-invalid-reason` header. Dashboards and alerts key on these; do not rename.
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidRecord::Empty => "empty",
            InvalidRecord::UnknownEncoding { .. } => "unknown_encoding",
            InvalidRecord::Avro(e) => match e {
                AvroError::UnknownFingerprint { .. } | AvroError::UnknownVersion { .. } => {
                    "unknown_schema"
                }
                AvroError::Truncated { .. } => "avro_truncated",
                AvroError::RegistryDatum {
                    truncated: true, ..
                } => "avro_truncated",
                _ => "avro_malformed",
            },
            InvalidRecord::UnmappedSchemaId { .. } => "unknown_schema",
            InvalidRecord::Registry(why) => why.reason(),
            InvalidRecord::SchemaPending { .. } => "schema_pending",
            InvalidRecord::ConfluentHeader => "avro_truncated",
            // JSON that parses but lacks a field every event has (e.g. `account_id`).
            InvalidRecord::Json { source, .. }
                if source.classify() == serde_json::error::Category::Data
                    && source.to_string().starts_with("missing field") =>
            {
                "missing_field"
            }
            InvalidRecord::Json { .. } => "json_malformed",
            InvalidRecord::UnknownType(_) => "unknown_type",
            InvalidRecord::MissingField { .. } => "missing_field",
            InvalidRecord::BadId { .. } => "bad_id",
            InvalidRecord::BadField { .. } => "bad_field",
        }
    }

    /// True for [`InvalidRecord::SchemaPending`]: the record is not invalid, only not
    /// decodable yet; it must stay in Kafka, never go to the invalid-records topic.
    pub fn is_pending(&self) -> bool {
        matches!(self, InvalidRecord::SchemaPending { .. })
    }

    /// Every label [`reason`](Self::reason) can return for a refused record, so metrics can
    /// be pre-registered (`schema_pending` is not a refusal).
    pub const REASONS: [&'static str; 11] = [
        "empty",
        "unknown_encoding",
        "unknown_schema",
        "unusable_schema",
        "avro_truncated",
        "avro_malformed",
        "json_malformed",
        "unknown_type",
        "missing_field",
        "bad_id",
        "bad_field",
    ];

    pub(crate) fn json(source: serde_json::Error) -> Self {
        use serde_json::error::Category;
        let (line, column) = (source.line(), source.column());
        let text = source.to_string();
        let detail = match source.classify() {
            Category::Eof => format!("ends early (line {line}, column {column})"),
            Category::Syntax | Category::Io => {
                format!("is not valid JSON (line {line}, column {column})")
            }
            // serde's own wording for these names the field only, never a value.
            Category::Data if text.starts_with("missing field") => {
                let head = text.split(" at line").next().unwrap_or("missing field");
                format!("{head} (line {line}, column {column})")
            }
            Category::Data => format!(
                "a value has the wrong type or is out of range (line {line}, column {column})"
            ),
        };
        InvalidRecord::Json { detail, source }
    }
}

/// Two refusals are equal when they report the same thing (reason and message); the
/// underlying Avro and JSON errors carry no comparable state of their own.
impl PartialEq for InvalidRecord {
    fn eq(&self, other: &Self) -> bool {
        self.reason() == other.reason() && self.to_string() == other.to_string()
    }
}

/// The first 64 characters of a producer-supplied string, for messages.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Header names on records copied to the invalid-records topic.
pub const HEADER_INVALID_REASON: &str = "hookrelay-invalid-reason";
pub const HEADER_INVALID_DETAIL: &str = "hookrelay-invalid-detail";
pub const HEADER_ORIGIN_TOPIC: &str = "hookrelay-origin-topic";
pub const HEADER_ORIGIN_PARTITION: &str = "hookrelay-origin-partition";
pub const HEADER_ORIGIN_OFFSET: &str = "hookrelay-origin-offset";

/// The longest detail header written; a message beyond it is cut at a character boundary.
const MAX_DETAIL_BYTES: usize = 512;

/// The headers added to a record copied to the invalid-records topic: why (`reason` is an
/// [`InvalidRecord::reason`] label, `detail` its message) and where it came from. Values are
/// UTF-8 text so people and scripts can read them (`kcat -f '%h'`). `detail` is expected to
/// be an [`InvalidRecord`] message, which never contains the record's bytes; it is capped at
/// 512 bytes regardless.
pub fn invalid_headers(
    reason: &str,
    detail: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Vec<(String, Vec<u8>)> {
    let mut end = detail.len().min(MAX_DETAIL_BYTES);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    vec![
        (HEADER_INVALID_REASON.to_owned(), reason.as_bytes().to_vec()),
        (
            HEADER_INVALID_DETAIL.to_owned(),
            detail.as_bytes()[..end].to_vec(),
        ),
        (HEADER_ORIGIN_TOPIC.to_owned(), topic.as_bytes().to_vec()),
        (
            HEADER_ORIGIN_PARTITION.to_owned(),
            partition.to_string().into_bytes(),
        ),
        (
            HEADER_ORIGIN_OFFSET.to_owned(),
            offset.to_string().into_bytes(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_say_why_and_where_from() {
        let h = invalid_headers(
            "missing_field",
            "license.activated event has no domain",
            "license-events",
            3,
            42,
        );
        let get = |k: &str| {
            h.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        };
        assert_eq!(get(HEADER_INVALID_REASON).as_deref(), Some("missing_field"));
        assert_eq!(
            get(HEADER_INVALID_DETAIL).as_deref(),
            Some("license.activated event has no domain")
        );
        assert_eq!(get(HEADER_ORIGIN_TOPIC).as_deref(), Some("license-events"));
        assert_eq!(get(HEADER_ORIGIN_PARTITION).as_deref(), Some("3"));
        assert_eq!(get(HEADER_ORIGIN_OFFSET).as_deref(), Some("42"));
    }

    #[test]
    fn long_details_are_capped_on_a_character_boundary() {
        let detail = "é".repeat(400); // 800 bytes
        let h = invalid_headers("bad_field", &detail, "t", 0, 0);
        let v = &h[1].1;
        assert!(v.len() <= MAX_DETAIL_BYTES);
        assert!(std::str::from_utf8(v).is_ok());
    }

    #[test]
    fn json_errors_do_not_repeat_input_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct S {
            n: i32,
            key: String,
        }
        let err = serde_json::from_str::<S>(r#"{"n":"TO-SECRET-KEY-1234","key":"x"}"#).unwrap_err();
        let inv = InvalidRecord::json(err);
        assert_eq!(inv.reason(), "json_malformed");
        assert!(!inv.to_string().contains("SECRET"), "{inv}");

        let err = serde_json::from_str::<S>(r#"{"n":1}"#).unwrap_err();
        let inv = InvalidRecord::json(err);
        assert!(inv.to_string().contains("missing field `key`"), "{inv}");
        assert_eq!(inv.reason(), "missing_field");
    }

    #[test]
    fn excerpts_cut_long_strings() {
        assert_eq!(excerpt("evt"), "evt");
        let long = "x".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), 65);
    }

    #[test]
    fn every_reason_is_listed() {
        let samples = [
            InvalidRecord::Empty,
            InvalidRecord::UnknownEncoding { first: 1 },
            InvalidRecord::UnmappedSchemaId { schema_id: 9 },
            InvalidRecord::Registry(UnusableSchema::NotFound { schema_id: 9 }),
            InvalidRecord::Registry(UnusableSchema::References { schema_id: 9 }),
            InvalidRecord::ConfluentHeader,
            InvalidRecord::UnknownType("x".into()),
            InvalidRecord::MissingField {
                event_type: EventType::DomainAdded,
                field: "domain",
            },
            InvalidRecord::BadId { id: "x".into() },
            InvalidRecord::BadField {
                field: "created",
                problem: "x",
            },
        ];
        for s in samples {
            assert!(
                InvalidRecord::REASONS.contains(&s.reason()),
                "{}",
                s.reason()
            );
        }
    }
}
