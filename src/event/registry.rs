//! Writer schemas of Confluent-framed records fetched from a Confluent-compatible schema
//! registry (`codec.schema_registry`): the settings, what a registry answer means, and the
//! cache the decoder reads. No I/O here; the consumer fetches (`ingest::registry`).
//!
//! A registry answer is one of three things:
//! - a usable writer schema: Avro, self-contained, and readable as the `license_event` schema
//!   hookrelay ships (Avro schema resolution: a producer's newer compatible schema works);
//! - a definite refusal: the registry says the id does not exist, or its schema is not Avro,
//!   uses references, or cannot be read as a license event. Records with that id then go to
//!   the invalid-records topic with the reason;
//! - anything else (no connection, a timeout, a 5xx, a 401, a proxy's HTML): transient. The
//!   record is never refused for it; its partition waits and the fetch is retried.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Serialize};

use crate::config::Password;

/// `[codec.schema_registry]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL of the registry's Confluent-compatible API; `schemas/ids/{id}` is appended
    /// (Confluent: `https://sr.example.com`, Apicurio: `https://…/apis/ccompat/v7`). Empty:
    /// no registry.
    #[serde(default)]
    pub url: String,
    /// HTTP basic authentication (Confluent Cloud: the API key and secret).
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Password,
    /// `Authorization: Bearer` token instead of basic authentication.
    #[serde(default)]
    pub bearer_token: Password,
    /// A PEM file of extra CA certificates to trust (a private registry); empty: the
    /// system's trust store only.
    #[serde(default)]
    pub ca_file: String,
    /// Bound on one request.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Wait after the first failed request; doubles per failure up to `retry_max`.
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_retry_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}

impl SchemaRegistryConfig {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}

/// Why the registry's schema for an id cannot be used: records with that id are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnusableSchema {
    #[error("the schema registry has no schema with id {schema_id}")]
    NotFound { schema_id: u32 },
    #[error("schema id {schema_id} is a {kind} schema, not Avro")]
    NotAvro { schema_id: u32, kind: String },
    #[error(
        "schema id {schema_id} refers to other registered schemas, which hookrelay does not resolve"
    )]
    References { schema_id: u32 },
    #[error("schema id {schema_id} is not a valid Avro schema: {detail}")]
    Invalid { schema_id: u32, detail: String },
    #[error("schema id {schema_id} cannot be read as the license_event schema: {detail}")]
    Incompatible { schema_id: u32, detail: String },
}

impl UnusableSchema {
    /// The `hookrelay-invalid-reason` of records refused for it.
    pub fn reason(&self) -> &'static str {
        match self {
            UnusableSchema::NotFound { .. } => "unknown_schema",
            _ => "unusable_schema",
        }
    }
}

/// A registry answer that says nothing definite about the schema: try again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransientAnswer(pub String);

/// What the registry said about one schema id.
#[derive(Debug, Clone)]
pub enum RegistryEntry {
    /// The writer schema, checked to resolve into the current license_event schema.
    Usable(Arc<Schema>),
    Unusable(UnusableSchema),
}

/// The body of `GET /schemas/ids/{id}` (Confluent's API; Apicurio, Karapace and Redpanda
/// answer the same).
#[derive(Deserialize)]
struct SchemaById {
    schema: String,
    /// Absent for Avro.
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde_json::Value>,
}

/// The body of an error answer.
#[derive(Deserialize)]
struct ErrorBody {
    error_code: i64,
}

/// Confluent's error code for "Schema not found".
const SCHEMA_NOT_FOUND: i64 = 40403;

/// Interprets an HTTP answer to `GET schemas/ids/{schema_id}`; `reader` is the current
/// license_event schema the datum must resolve into.
pub fn interpret_answer(
    schema_id: u32,
    status: u16,
    body: &[u8],
    reader: &Schema,
) -> Result<RegistryEntry, TransientAnswer> {
    match status {
        200 => {}
        404 => {
            // Only the registry's own "schema not found" is definite; a bare 404 is a wrong
            // URL (a path prefix missing), which the operator fixes.
            return match serde_json::from_slice::<ErrorBody>(body) {
                Ok(e) if e.error_code == SCHEMA_NOT_FOUND => {
                    Ok(RegistryEntry::Unusable(UnusableSchema::NotFound { schema_id }))
                }
                _ => Err(TransientAnswer(
                    "HTTP 404 without the registry's schema-not-found code: is codec.schema_registry.url the registry's API base?"
                        .to_owned(),
                )),
            };
        }
        401 | 403 => {
            return Err(TransientAnswer(format!(
                "HTTP {status}: the registry refused the credentials (codec.schema_registry.username/password or bearer_token)"
            )));
        }
        other => return Err(TransientAnswer(format!("HTTP {other}"))),
    }
    let answer: SchemaById = serde_json::from_slice(body).map_err(|e| {
        TransientAnswer(format!(
            "HTTP 200 whose body is not a schema-by-id answer ({e})"
        ))
    })?;
    if let Some(kind) = answer
        .schema_type
        .filter(|k| !k.eq_ignore_ascii_case("AVRO"))
    {
        return Ok(RegistryEntry::Unusable(UnusableSchema::NotAvro {
            schema_id,
            kind,
        }));
    }
    if !answer.references.is_empty() {
        return Ok(RegistryEntry::Unusable(UnusableSchema::References {
            schema_id,
        }));
    }
    let writer = match Schema::parse_str(&answer.schema) {
        Ok(writer) => writer,
        Err(e) => {
            return Ok(RegistryEntry::Unusable(UnusableSchema::Invalid {
                schema_id,
                detail: e.to_string(),
            }));
        }
    };
    let incompatible = |detail: String| {
        Ok(RegistryEntry::Unusable(UnusableSchema::Incompatible {
            schema_id,
            detail,
        }))
    };
    match SchemaCompatibility::can_read(&writer, reader) {
        Ok(Compatibility::Full) => Ok(RegistryEntry::Usable(Arc::new(writer))),
        Ok(Compatibility::Partial) => {
            incompatible("only some of its records could be read".to_owned())
        }
        Err(e) => incompatible(e.to_string()),
    }
}

/// Registry answers by schema id, shared by the decoder (reads) and the consumer (writes
/// what it fetched). Schema ids are immutable in a registry, so entries never expire; the
/// cache holds at most [`MAX_ENTRIES`], far more ids than one topic's producers use.
#[derive(Debug, Default)]
pub struct RegistrySchemas {
    entries: RwLock<HashMap<u32, RegistryEntry>>,
}

/// Bound on cached ids, so a producer writing random ids cannot grow memory without end;
/// past it, new answers are not kept (their records are fetched again).
pub const MAX_ENTRIES: usize = 10_000;

impl RegistrySchemas {
    pub fn get(&self, schema_id: u32) -> Option<RegistryEntry> {
        // A poisoned lock only means another thread panicked mid-insert; the map is intact.
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(&schema_id).cloned()
    }

    pub fn insert(&self, schema_id: u32, entry: RegistryEntry) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() < MAX_ENTRIES || entries.contains_key(&schema_id) {
            entries.insert(schema_id, entry);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Schema {
        Schema::parse_str(include_str!("../../schemas/license_event.v2.avsc")).unwrap()
    }

    /// Confluent's answer: the schema as a JSON string, no schemaType for Avro.
    fn answer(schema: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "schema": schema })).unwrap()
    }

    #[test]
    fn a_shipped_or_newer_compatible_schema_is_usable() {
        for schema in [
            include_str!("../../schemas/license_event.v1.avsc"),
            include_str!("../../schemas/license_event.v2.avsc"),
        ] {
            let entry = interpret_answer(7, 200, &answer(schema), &reader()).unwrap();
            assert!(matches!(entry, RegistryEntry::Usable(_)), "{entry:?}");
        }
        // A producer's v3: one more field with a default.
        let mut v3: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/license_event.v2.avsc")).unwrap();
        v3["fields"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name":"source","type":["null","string"],"default":null}));
        let entry = interpret_answer(8, 200, &answer(&v3.to_string()), &reader()).unwrap();
        assert!(matches!(entry, RegistryEntry::Usable(_)), "{entry:?}");
    }

    #[test]
    fn definite_refusals_name_their_reason() {
        let r = reader();
        let unusable = |status, body: &[u8]| match interpret_answer(9, status, body, &r) {
            Ok(RegistryEntry::Unusable(u)) => u,
            other => panic!("{other:?}"),
        };
        let not_found = unusable(
            404,
            br#"{"error_code":40403,"message":"Schema 9 not found"}"#,
        );
        assert_eq!(not_found, UnusableSchema::NotFound { schema_id: 9 });
        assert_eq!(not_found.reason(), "unknown_schema");

        let proto = unusable(
            200,
            br#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#,
        );
        assert!(matches!(proto, UnusableSchema::NotAvro { .. }));
        assert_eq!(proto.reason(), "unusable_schema");

        let refs = unusable(
            200,
            br#"{"schema":"{\"type\":\"record\",\"name\":\"X\",\"fields\":[]}","references":[{"name":"a","subject":"b","version":1}]}"#,
        );
        assert!(matches!(refs, UnusableSchema::References { .. }));

        assert!(matches!(
            unusable(200, &answer("{\"type\":\"nope\"}")),
            UnusableSchema::Invalid { .. }
        ));
        // Another record entirely: nothing of license_event.
        assert!(matches!(
            unusable(
                200,
                &answer(
                    r#"{"type":"record","name":"io.hookrelay.events.LicenseEvent","fields":[{"name":"n","type":"int"}]}"#
                )
            ),
            UnusableSchema::Incompatible { .. }
        ));
    }

    #[test]
    fn everything_else_is_transient() {
        let r = reader();
        for (status, body) in [
            (500, &br#"{"error_code":50001,"message":"store"}"#[..]),
            (503, b""),
            (401, br#"{"error_code":401,"message":"Unauthorized"}"#),
            (403, b""),
            // A 404 from a wrong path, not the registry's "schema not found".
            (404, b"<html>Not Found</html>"),
            (
                404,
                br#"{"error_code":40401,"message":"Subject not found"}"#,
            ),
            (200, b"<html>a proxy's login page</html>"),
            (302, b""),
        ] {
            assert!(
                interpret_answer(1, status, body, &r).is_err(),
                "{status} {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = RegistrySchemas::default();
        for id in 0..(MAX_ENTRIES as u32 + 5) {
            cache.insert(
                id,
                RegistryEntry::Unusable(UnusableSchema::NotFound { schema_id: id }),
            );
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert!(cache.get(0).is_some());
        assert!(cache.get(MAX_ENTRIES as u32 + 1).is_none());
    }

    #[test]
    fn debug_output_hides_the_credentials() {
        let c = SchemaRegistryConfig {
            url: "https://sr.example.com".to_owned(),
            username: "key".to_owned(),
            password: Password::new("hunter2-secret"),
            bearer_token: Password::new("tok-secret"),
            ..SchemaRegistryConfig::default()
        };
        let printed = format!("{c:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("tok-secret"),
            "{printed}"
        );
    }
}
