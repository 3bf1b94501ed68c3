//! The endpoint record of `webhook-subscriptions`: its model, wire codec (Avro or JSON) and
//! validation. Pure: no Kafka, no RocksDB.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::ids::{AccountId, EndpointId, Secret};
use crate::records::avro::{AvroError, VersionedSchema};
use crate::sign::SignError;

use super::status::{EndpointStatus, StatusError, decode_status, parse_status_key};

/// Every writer schema version of the endpoint record this build can read; the last is the
/// one it writes. Embedded, so the binary needs no schema files.
static ENDPOINT_SCHEMA: LazyLock<Result<VersionedSchema, AvroError>> = LazyLock::new(|| {
    VersionedSchema::new(
        "endpoint",
        &[
            (1, include_str!("../../schemas/endpoint.v1.avsc")),
            (2, include_str!("../../schemas/endpoint.v2.avsc")),
            (3, include_str!("../../schemas/endpoint.v3.avsc")),
        ],
    )
});

pub(crate) fn endpoint_schema() -> Result<&'static VersionedSchema, EndpointError> {
    ENDPOINT_SCHEMA.as_ref().map_err(EndpointError::Schema)
}

/// Longest id (endpoint or account) accepted; ids are keys in Kafka and RocksDB.
const MAX_ID_LEN: usize = 255;

/// A webhook endpoint as materialized from `webhook-subscriptions`.
///
/// `Debug` is safe to log: secrets print as `whsec_***`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub account_id: AccountId,
    pub url: Url,
    #[serde(default)]
    pub description: Option<String>,
    /// Event types delivered here; empty means every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Newest first. Every secret not yet expired signs, so receivers can rotate without
    /// rejecting requests in between.
    pub secrets: Vec<EndpointSecret>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Why the endpoint was disabled (by its owner or by the circuit breaker).
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub disabled_at_ms: Option<i64>,
    /// The instance that disabled it (circuit breaker), to settle concurrent disablings.
    #[serde(default)]
    pub disabled_by: Option<String>,
    /// Overrides the configured per-endpoint rate limit.
    #[serde(default)]
    pub rate_limit_per_sec: Option<NonZeroU32>,
    /// Overrides the configured per-endpoint concurrency cap.
    #[serde(default)]
    pub max_concurrency: Option<NonZeroU32>,
    #[serde(default)]
    pub batching: Batching,
    /// Grows with every change. The table never replaces an endpoint with a lower version,
    /// so a late write of an old state (e.g. a retried admin request) cannot undo a newer one.
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub created_at_ms: Option<i64>,
    #[serde(default)]
    pub updated_at_ms: Option<i64>,
    /// Where the owner is e-mailed when the endpoint is disabled (schema v3). Unset, the
    /// notifier falls back to the account's default, then to the operator's address (see
    /// `crate::notify::recipient`).
    #[serde(default)]
    pub contact_email: Option<String>,
    /// The circuit breaker's status record for this endpoint, merged in by the table when it
    /// reads the endpoint; `None` when there is none (never disabled). Not part of the
    /// endpoint record: writing an endpoint never writes its status.
    #[serde(skip)]
    pub status: Option<EndpointStatus>,
}

/// One signing secret and when it stops signing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSecret {
    pub secret: Secret,
    /// Unix milliseconds after which this secret no longer signs; `None` for the current one.
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
}

/// How an endpoint wants bursts delivered; unset limits fall back to the configured ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batching {
    /// False opts out: every event goes in its own request.
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub max_events: Option<NonZeroU32>,
    #[serde(default)]
    pub max_bytes: Option<NonZeroU32>,
    #[serde(default)]
    pub linger_ms: Option<u32>,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            enabled: true,
            max_events: None,
            max_bytes: None,
            linger_ms: None,
        }
    }
}

fn default_true() -> bool {
    true
}

impl Endpoint {
    /// A new enabled endpoint at version 1 that receives every event type, signed with
    /// `secret`, with the configured limits and batching.
    pub fn new(id: EndpointId, account_id: AccountId, url: Url, secret: Secret) -> Self {
        Endpoint {
            id,
            account_id,
            url,
            description: None,
            event_types: Vec::new(),
            secrets: vec![EndpointSecret {
                secret,
                expires_at_ms: None,
            }],
            enabled: true,
            disabled_reason: None,
            disabled_at_ms: None,
            disabled_by: None,
            rate_limit_per_sec: None,
            max_concurrency: None,
            batching: Batching::default(),
            version: 1,
            created_at_ms: None,
            updated_at_ms: None,
            contact_email: None,
            status: None,
        }
    }

    /// The breaker status: the merged record, or enabled at epoch 0.
    pub fn current_status(&self) -> EndpointStatus {
        self.status
            .clone()
            .unwrap_or_else(|| EndpointStatus::initial(self.id.clone()))
    }

    /// True when the circuit breaker has disabled the endpoint (its owner's `enabled` switch
    /// is separate).
    pub fn breaker_disabled(&self) -> bool {
        self.status.as_ref().is_some_and(|s| !s.enabled)
    }

    /// The breaker epoch: changes whenever the endpoint is disabled or re-enabled.
    pub fn status_epoch(&self) -> i64 {
        self.status.as_ref().map_or(0, |s| s.epoch)
    }

    /// True when events of this type go to this endpoint (empty `event_types` means all).
    /// Says nothing about `enabled`; [`super::join::fan_out`] checks both.
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }

    /// The secrets that sign a request made at `now_ms`, newest first.
    pub fn active_secrets(&self, now_ms: i64) -> impl Iterator<Item = &Secret> {
        self.secrets
            .iter()
            .filter(move |s| crate::sign::still_signs(s.expires_at_ms, now_ms))
            .map(|s| &s.secret)
    }

    /// Checks what the type system does not: id shapes, the URL scheme and the secrets.
    /// The error never contains a secret.
    pub fn validate(&self) -> Result<(), EndpointError> {
        if !self.id.is_well_formed() || !plain_id(self.id.as_str()) {
            return Err(EndpointError::InvalidId {
                id: self.id.clone(),
            });
        }
        if self.account_id.as_str().is_empty() || !plain_id(self.account_id.as_str()) {
            return Err(EndpointError::InvalidAccountId);
        }
        match self.url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(EndpointError::UrlScheme {
                    scheme: other.to_owned(),
                });
            }
        }
        if self.url.host_str().is_none_or(str::is_empty) {
            return Err(EndpointError::UrlWithoutHost);
        }
        if self.secrets.is_empty() {
            return Err(EndpointError::NoSecret);
        }
        for (index, s) in self.secrets.iter().enumerate() {
            match crate::sign::check_secret(&s.secret) {
                Ok(_) => {}
                Err(SignError::MissingPrefix) => return Err(EndpointError::SecretPrefix { index }),
                Err(SignError::TooShort { bytes }) => {
                    return Err(EndpointError::SecretTooShort { index, bytes });
                }
                Err(_) => return Err(EndpointError::SecretNotBase64 { index }),
            }
        }
        if let Some(index) = self.event_types.iter().position(|t| t.trim().is_empty()) {
            return Err(EndpointError::EmptyEventType { index });
        }
        if self.version < 0 {
            return Err(EndpointError::NegativeVersion);
        }
        if let Some(email) = &self.contact_email
            && !plausible_email(email)
        {
            return Err(EndpointError::ContactEmail);
        }
        Ok(())
    }
}

/// Longest contact address accepted (RFC 5321's limit on a forward path).
const MAX_EMAIL_LEN: usize = 254;

/// One `local@domain` address: bounded, no spaces, control characters or angle brackets, a
/// non-empty part on each side of a single `@`. The mail library parses it fully when
/// sending; this keeps obvious garbage out of the table.
fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= MAX_EMAIL_LEN
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !s
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
}

/// Non-empty, bounded, and free of control characters (NUL separates the account index key).
fn plain_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && !s.chars().any(char::is_control)
}

/// Why an endpoint record was rejected. `Display` never shows a secret, but the `Json` and
/// `Avro` sources may quote record content: log [`EndpointError::redacted`] instead.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("the record has no key (the key must be the endpoint id)")]
    MissingKey,
    #[error("the record key is not a well-formed endpoint id")]
    InvalidKey,
    #[error("endpoint id {id} is not well-formed (ep_ followed by up to 252 printable characters)")]
    InvalidId { id: EndpointId },
    #[error("the record key {key} differs from the endpoint id {id} in the value")]
    KeyMismatch { key: EndpointId, id: EndpointId },
    #[error("account_id must be non-empty, at most 255 characters, without control characters")]
    InvalidAccountId,
    #[error("url scheme {scheme:?} is not supported (use http or https)")]
    UrlScheme { scheme: String },
    #[error("url has no host")]
    UrlWithoutHost,
    #[error("an endpoint needs at least one signing secret")]
    NoSecret,
    #[error("secret #{index} does not start with whsec_")]
    SecretPrefix { index: usize },
    #[error("secret #{index} is not whsec_ followed by non-empty standard base64")]
    SecretNotBase64 { index: usize },
    #[error(
        "secret #{index} has {bytes} key bytes; Standard Webhooks requires at least {}",
        crate::sign::MIN_SECRET_BYTES
    )]
    SecretTooShort { index: usize, bytes: usize },
    #[error("event type #{index} is empty")]
    EmptyEventType { index: usize },
    #[error("version must not be negative")]
    NegativeVersion,
    #[error("contact_email must be one address like owner@example.com")]
    ContactEmail,
    #[error("JSON endpoint record does not decode")]
    Json(#[source] serde_json::Error),
    #[error("Avro endpoint record does not decode or encode")]
    Avro(#[source] Box<AvroError>),
    #[error("the status record does not decode")]
    Status(#[from] StatusError),
    /// The embedded endpoint schemas are unusable: a build defect, caught by the unit tests.
    #[error("the built-in endpoint schema is unusable")]
    Schema(#[source] &'static AvroError),
}

impl EndpointError {
    /// A description safe for logs: codec errors are reduced to where they happened, since
    /// their messages can quote field values, secrets included.
    pub fn redacted(&self) -> Redacted<'_> {
        Redacted(self)
    }
}

/// See [`EndpointError::redacted`].
pub struct Redacted<'a>(&'a EndpointError);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            EndpointError::Json(e) => write!(
                f,
                "JSON endpoint record does not decode ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
            EndpointError::Avro(_) => f.write_str(
                "Avro endpoint record does not decode (unknown writer schema or data not matching it)",
            ),
            other => fmt::Display::fmt(other, f),
        }
    }
}

/// Encodes an endpoint as the topic carries it: Avro single-object encoding. Validates
/// first, so nothing invalid is ever published.
///
/// The writer version is the oldest that holds every field the endpoint sets: an endpoint
/// without a contact e-mail is written as v2, which builds from before v3 still read (a
/// reader needs to know the writer's schema), so a rolling upgrade does not hide endpoint
/// changes from the instances not yet upgraded. Only endpoints that use v3's field need v3.
pub fn encode_endpoint(endpoint: &Endpoint) -> Result<Vec<u8>, EndpointError> {
    endpoint.validate()?;
    let version = if endpoint.contact_email.is_some() {
        3
    } else {
        2
    };
    endpoint_schema()?
        .encode_projected(version, endpoint)
        .map_err(|e| EndpointError::Avro(Box::new(e)))
}

/// Decodes and validates a record value: JSON when its first non-space byte is `{`, Avro
/// single-object encoding (any known writer version) otherwise.
pub fn decode_endpoint(bytes: &[u8]) -> Result<Endpoint, EndpointError> {
    let endpoint: Endpoint = if looks_like_json(bytes) {
        serde_json::from_slice(bytes).map_err(EndpointError::Json)?
    } else {
        endpoint_schema()?
            .decode(bytes)
            .map_err(|e| EndpointError::Avro(Box::new(e)))?
    };
    endpoint.validate()?;
    Ok(endpoint)
}

fn looks_like_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// What one `webhook-subscriptions` record asks of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Insert or replace (unless the stored version is higher).
    Upsert(Box<Endpoint>),
    /// A tombstone: remove the endpoint.
    Delete(EndpointId),
    /// A status record (key `status:<id>`): replaces the stored status unless that has a
    /// higher or equal epoch.
    Status(Box<EndpointStatus>),
    /// A tombstone for a status record.
    DeleteStatus(EndpointId),
}

/// Interprets one record: the key must be a well-formed endpoint id, a null value deletes,
/// any other value must decode to an endpoint with that same id.
pub fn decode_record(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Op, EndpointError> {
    let key = key.ok_or(EndpointError::MissingKey)?;
    let key = std::str::from_utf8(key).map_err(|_| EndpointError::InvalidKey)?;
    if let Some(id) = parse_status_key(key) {
        if !id.is_well_formed() || !plain_id(id.as_str()) {
            return Err(EndpointError::InvalidKey);
        }
        let Some(value) = value else {
            return Ok(Op::DeleteStatus(id));
        };
        let status = decode_status(value)?;
        if status.endpoint_id != id {
            return Err(EndpointError::KeyMismatch {
                key: id,
                id: status.endpoint_id,
            });
        }
        return Ok(Op::Status(Box::new(status)));
    }
    let key = EndpointId::from(key);
    if !key.is_well_formed() || !plain_id(key.as_str()) {
        return Err(EndpointError::InvalidKey);
    }
    let Some(value) = value else {
        return Ok(Op::Delete(key));
    };
    let endpoint = decode_endpoint(value)?;
    if endpoint.id != key {
        return Err(EndpointError::KeyMismatch {
            key,
            id: endpoint.id,
        });
    }
    Ok(Op::Upsert(Box::new(endpoint)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid endpoint for tests across the module.
    pub(crate) fn endpoint(id: &str, account: &str) -> Endpoint {
        Endpoint::new(
            EndpointId::from(id),
            AccountId::from(account),
            Url::parse("https://example.com/hooks").unwrap(),
            Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        )
    }

    fn full_endpoint() -> Endpoint {
        let mut e = endpoint("ep_full", "acct_1");
        e.description = Some("billing hooks".into());
        e.event_types = vec!["license.created".into(), "payment.failed".into()];
        e.secrets.insert(
            0,
            EndpointSecret {
                secret: Secret::new("whsec_bmV3LXNlY3JldC1ieXRlcy0xMjM0NTY3OA=="),
                expires_at_ms: None,
            },
        );
        e.secrets[1].expires_at_ms = Some(1_700_000_000_000);
        e.enabled = false;
        e.disabled_reason = Some("10 consecutive failures".into());
        e.disabled_at_ms = Some(1_690_000_000_000);
        e.rate_limit_per_sec = NonZeroU32::new(50);
        e.max_concurrency = NonZeroU32::new(3_000_000_000);
        e.batching = Batching {
            enabled: false,
            max_events: NonZeroU32::new(10),
            max_bytes: NonZeroU32::new(65536),
            linger_ms: Some(0),
        };
        e.version = 42;
        e.created_at_ms = Some(1);
        e.updated_at_ms = Some(2);
        e.contact_email = Some("ops@example.com".into());
        e
    }

    #[test]
    fn empty_event_types_subscribe_to_everything() {
        let mut e = endpoint("ep_1", "a");
        assert!(e.subscribes_to("license.created"));
        e.event_types = vec!["license.expired".into()];
        assert!(e.subscribes_to("license.expired"));
        assert!(!e.subscribes_to("license.created"));
    }

    #[test]
    fn secrets_need_24_key_bytes_and_may_drop_their_padding() {
        let with = |secret: &str| {
            let mut e = endpoint("ep_s", "a");
            e.secrets[0].secret = Secret::new(secret);
            e.validate()
        };
        // 23 bytes: refused with the reason, never the secret.
        let err = with("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG0=").unwrap_err();
        assert!(
            matches!(
                err,
                EndpointError::SecretTooShort {
                    index: 0,
                    bytes: 23
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("at least 24"), "{err}");
        assert!(!err.to_string().contains("MDEy"));
        // 24 bytes, padded or not (base64 of 24 bytes has no padding; 25 does).
        assert!(with("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u").is_ok());
        assert!(with("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ubw==").is_ok());
        assert!(
            with("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ubw").is_ok(),
            "unpadded"
        );
        assert!(matches!(
            with("whsec_not base64!").unwrap_err(),
            EndpointError::SecretNotBase64 { index: 0 }
        ));
        assert!(matches!(
            with("sk_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u").unwrap_err(),
            EndpointError::SecretPrefix { index: 0 }
        ));
    }

    #[test]
    fn expired_secrets_stop_signing() {
        let e = full_endpoint();
        let at = |now| {
            e.active_secrets(now)
                .map(Secret::expose)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            at(1_600_000_000_000).len(),
            2,
            "during the rotation both sign"
        );
        assert_eq!(
            at(1_700_000_000_000),
            vec!["whsec_bmV3LXNlY3JldC1ieXRlcy0xMjM0NTY3OA=="],
            "at the expiry instant only the new one signs"
        );
    }

    #[test]
    fn avro_round_trip_keeps_every_field() {
        let e = full_endpoint();
        let bytes = encode_endpoint(&e).unwrap();
        assert_eq!(&bytes[..2], &[0xC3, 0x01], "single-object encoding marker");
        assert_eq!(decode_endpoint(&bytes).unwrap(), e);
        let minimal = endpoint("ep_min", "a");
        assert_eq!(
            decode_endpoint(&encode_endpoint(&minimal).unwrap()).unwrap(),
            minimal
        );
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let e = full_endpoint();
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(decode_endpoint(&json).unwrap(), e);

        let hand_written = br#"  {"id":"ep_1","account_id":"acct_1","url":"https://example.com/h",
            "secrets":[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}"#;
        let d = decode_endpoint(hand_written).unwrap();
        assert!(d.enabled, "enabled by default");
        assert!(d.batching.enabled, "batching on by default");
        assert!(d.event_types.is_empty());
        assert_eq!(d.version, 0);
    }

    #[test]
    fn validation_rejects_with_a_reason() {
        let check = |f: &dyn Fn(&mut Endpoint)| {
            let mut e = endpoint("ep_1", "acct");
            f(&mut e);
            e.validate().unwrap_err().to_string()
        };
        assert!(check(&|e| e.id = EndpointId::from("x_1")).contains("not well-formed"));
        assert!(check(&|e| e.account_id = AccountId::from("")).contains("account_id"));
        assert!(check(&|e| e.account_id = AccountId::from("a\0b")).contains("account_id"));
        assert!(check(&|e| e.url = Url::parse("ftp://example.com/").unwrap()).contains("\"ftp\""));
        assert!(check(&|e| e.secrets.clear()).contains("at least one"));
        assert!(
            check(&|e| e.secrets[0].secret = Secret::new("sk_live_abcdef"))
                .contains("does not start with whsec_")
        );
        let msg = check(&|e| e.secrets[0].secret = Secret::new("whsec_not base64!"));
        assert!(msg.contains("base64"), "{msg}");
        assert!(
            !msg.contains("not base64!"),
            "the secret never appears: {msg}"
        );
        assert!(check(&|e| e.event_types = vec!["".into()]).contains("event type #0"));
        assert!(check(&|e| e.version = -1).contains("version"));
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "a@b@c",
            "ops @example.com",
            "<ops@x.com>",
            "a@x.com, b@y.com",
            "ops@exa\nmple.com",
        ] {
            assert!(
                check(&|e| e.contact_email = Some(bad.into())).contains("contact_email"),
                "{bad:?} is refused"
            );
        }
        let mut e = endpoint("ep_1", "acct");
        e.contact_email = Some("webhooks+alerts@customer.example".into());
        assert!(e.validate().is_ok());
    }

    /// The Avro schema of endpoint version `v`, as shipped.
    fn schema_v(v: u32) -> apache_avro::Schema {
        let set = endpoint_schema().unwrap();
        let (_, schema, _) = set.versions().find(|(n, _, _)| *n == v).unwrap();
        schema.clone()
    }

    #[test]
    fn endpoints_without_a_contact_are_written_as_v2_for_older_readers() {
        let set = endpoint_schema().unwrap();
        let plain = endpoint("ep_1", "acct");
        let bytes = encode_endpoint(&plain).unwrap();
        assert_eq!(bytes[2..10], set.fingerprint(2).unwrap().0, "v2 writer");
        assert_eq!(decode_endpoint(&bytes).unwrap(), plain);

        let with_contact = full_endpoint();
        let bytes = encode_endpoint(&with_contact).unwrap();
        assert_eq!(bytes[2..10], set.fingerprint(3).unwrap().0, "v3 writer");
        assert_eq!(decode_endpoint(&bytes).unwrap(), with_contact);
    }

    #[test]
    fn old_reader_schemas_read_v3_records() {
        // A reader on v1 or v2 that is handed the v3 writer schema resolves the record and
        // drops contact_email (Avro resolution ignores writer fields the reader lacks).
        let bytes = encode_endpoint(&full_endpoint()).unwrap();
        let writer = schema_v(3);
        for old in [1, 2] {
            let reader = schema_v(old);
            let mut datum = &bytes[10..];
            let value = apache_avro::reader::datum::GenericDatumReader::builder(&writer)
                .reader_schema(&reader)
                .build()
                .and_then(|r| r.read_value(&mut datum))
                .unwrap_or_else(|e| panic!("v{old} reads v3: {e}"));
            assert!(datum.is_empty(), "v{old} consumed the whole datum");
            let apache_avro::types::Value::Record(fields) = value else {
                panic!("not a record");
            };
            assert!(fields.iter().any(
                |(k, v)| k == "id" && *v == apache_avro::types::Value::String("ep_full".into())
            ));
            assert!(!fields.iter().any(|(k, _)| k == "contact_email"));
        }
    }

    #[test]
    fn v3_reads_v2_records_without_a_contact() {
        // (v1 data is covered field by field by the directory-driven evolution test.)
        let set = endpoint_schema().unwrap();
        let mut e = full_endpoint();
        e.contact_email = None;
        let bytes = set.encode_projected(2, &e).unwrap();
        assert_eq!(bytes[2..10], set.fingerprint(2).unwrap().0);
        assert_eq!(decode_endpoint(&bytes).unwrap(), e);
    }

    #[test]
    fn encode_refuses_an_invalid_endpoint() {
        let mut e = endpoint("ep_1", "acct");
        e.secrets.clear();
        assert!(matches!(encode_endpoint(&e), Err(EndpointError::NoSecret)));
    }

    #[test]
    fn records_need_a_matching_key() {
        let json = serde_json::to_vec(&endpoint("ep_1", "a")).unwrap();
        assert!(matches!(
            decode_record(Some(b"ep_1"), Some(&json)),
            Ok(Op::Upsert(e)) if e.id.as_str() == "ep_1"
        ));
        assert!(matches!(
            decode_record(Some(b"ep_2"), Some(&json)),
            Err(EndpointError::KeyMismatch { .. })
        ));
        assert!(matches!(
            decode_record(None, Some(&json)),
            Err(EndpointError::MissingKey)
        ));
        assert!(matches!(
            decode_record(Some(b"evt_1"), None),
            Err(EndpointError::InvalidKey)
        ));
        assert_eq!(
            decode_record(Some(b"ep_1"), None).unwrap(),
            Op::Delete(EndpointId::from("ep_1"))
        );
    }

    #[test]
    fn redacted_codec_errors_do_not_quote_values() {
        // A secret given as a plain string: serde_json quotes the value in its message.
        let bad = br#"{"id":"ep_1","account_id":"a","url":"https://e.com",
            "secrets":"whsec_TOPSECRETVALUE"}"#;
        let err = decode_endpoint(bad).unwrap_err();
        let shown = err.redacted().to_string();
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(shown.contains("line 2"), "{shown}");
        let avro = decode_endpoint(&[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap_err();
        assert!(matches!(avro, EndpointError::Avro(_)));
        assert!(!avro.redacted().to_string().is_empty());
    }
}
