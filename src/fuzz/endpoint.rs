//! The `webhook-subscriptions` record decoder's properties ([`decode_record`]): endpoint and
//! status records, their tombstones, and the refusals.

use serde_json::Value as Json;

use crate::ids::Secret;
use crate::subscriptions::endpoint::endpoint_schema;
use crate::subscriptions::status::encode_status;
use crate::subscriptions::{
    Endpoint, EndpointError, Op, decode_record, encode_endpoint, status_key,
};

use super::{Verdict, split_once};

/// Target `endpoint_record`: the record key, a NUL byte, then the value. Without a NUL the
/// whole input is the key of a tombstone (null value); an empty key stands for a record
/// without a key. (Keys holding NUL are lost to the format; the decoder refuses them anyway,
/// as control characters.)
///
/// An accepted endpoint re-validates, matches its key, survives Avro and JSON encoding and
/// back unchanged, and its `Debug` shows no secret; a status record survives the same; a
/// tombstone deletes the key it came with. A refusal's message and its redacted form quote
/// no secret of the value: no text under `secrets` that goes away when that secret is
/// overwritten.
pub fn endpoint_record(data: &[u8]) -> Verdict {
    let (key, value) = split_once(data, 0);
    let key = (!key.is_empty()).then_some(key);
    match decode_record(key, value) {
        Ok(op) => {
            check_op(key.unwrap_or_default(), value.is_some(), &op);
            Verdict::Accepted
        }
        Err(e) => {
            check_refusal(key, value, &e);
            Verdict::rejected(label(&e))
        }
    }
}

fn check_op(key: &[u8], has_value: bool, op: &Op) {
    let again = |what: &str, value: &[u8]| match decode_record(Some(key), Some(value)) {
        Ok(back) => assert_eq!(&back, op, "{what} round trip changed the record"),
        Err(e) => panic!("{what} encoding of a decoded record does not decode: {e}"),
    };
    match op {
        Op::Upsert(endpoint) => {
            assert!(has_value, "an upsert needs a value");
            assert_eq!(endpoint.id.as_str().as_bytes(), key, "the key is the id");
            endpoint
                .validate()
                .expect("a decoded endpoint re-validates");
            assert!(endpoint.status.is_none(), "records carry no status");
            check_debug_hides_secrets(endpoint);
            let avro = encode_endpoint(endpoint).expect("a decoded endpoint encodes");
            again("Avro", &avro);
            let json = serde_json::to_vec(endpoint).expect("an endpoint serializes");
            again("JSON", &json);
        }
        Op::Status(status) => {
            assert!(has_value, "a status needs a value");
            assert_eq!(status_key(&status.endpoint_id).as_bytes(), key);
            assert!(status.epoch >= 0, "epochs are never negative");
            let avro = encode_status(status).expect("a decoded status encodes");
            again("Avro", &avro);
            let json = serde_json::to_vec(status).expect("a status serializes");
            again("JSON", &json);
        }
        Op::Delete(id) => {
            assert!(!has_value, "only a null value deletes");
            assert_eq!(id.as_str().as_bytes(), key);
        }
        Op::DeleteStatus(id) => {
            assert!(!has_value, "only a null value deletes");
            assert_eq!(status_key(id).as_bytes(), key);
        }
    }
}

/// `Debug` of an endpoint (what logs show) never contains one of its secrets, unless another
/// field (the URL, the description) contains that text too.
fn check_debug_hides_secrets(endpoint: &Endpoint) {
    let shown = format!("{endpoint:?}");
    let mut without = endpoint.clone();
    for s in &mut without.secrets {
        s.secret = Secret::new("");
    }
    let elsewhere = format!("{without:?}");
    for s in &endpoint.secrets {
        let secret = s.secret.expose();
        if secret.len() > Secret::PREFIX.len() && !elsewhere.contains(secret) {
            assert!(!shown.contains(secret), "Debug shows a secret");
        }
    }
}

fn check_refusal(key: Option<&[u8]>, value: Option<&[u8]>, e: &EndpointError) {
    let message = e.to_string();
    let redacted = e.redacted().to_string();
    let value = value.unwrap_or_default();
    let key_text = String::from_utf8_lossy(key.unwrap_or_default());
    for secret in secrets_in(value) {
        if key_text.contains(&secret) || (!message.contains(&secret) && !redacted.contains(&secret))
        {
            continue;
        }
        // A message contains the secret's text: a leak, unless that text is there without the
        // secret too (the message's own words: a secret of 't record does not decode' is in
        // 'JSON endpoint record does not decode'). Overwrite the secret in place, same length
        // so the framing holds, and refuse again: a leak is what goes away with the secret.
        let Some(without) = overwritten(value, &secret) else {
            continue;
        };
        let (message_without, redacted_without) = match decode_record(key, Some(&without)) {
            Ok(_) => (String::new(), String::new()),
            Err(e) => (e.to_string(), e.redacted().to_string()),
        };
        assert!(
            !message.contains(&secret) || message_without.contains(&secret),
            "the error quotes a secret: {message}"
        );
        assert!(
            !redacted.contains(&secret) || redacted_without.contains(&secret),
            "the redacted error quotes a secret: {redacted}"
        );
    }
}

/// `value` with the first occurrence of `secret` overwritten by as many `#`, found verbatim or
/// as serde_json escapes it; `None` when it is written otherwise (other `\u` escapes), which
/// leaves that secret unchecked, as the event check does for license keys.
fn overwritten(value: &[u8], secret: &str) -> Option<Vec<u8>> {
    let escaped = serde_json::to_string(secret).ok()?;
    let escaped = escaped.get(1..escaped.len().saturating_sub(1))?;
    [secret, escaped].into_iter().find_map(|text| {
        let text = text.as_bytes();
        let at = value.windows(text.len()).position(|w| w == text)?;
        let mut without = value.to_vec();
        without[at..at + text.len()].fill(b'#');
        Some(without)
    })
}

/// The strings under `secrets` of a record value that can be read (JSON that parses, or Avro
/// that decodes generically), each only when it occurs once in the record: a secret copied
/// into the id or the URL is shown there legitimately.
fn secrets_in(value: &[u8]) -> Vec<String> {
    let record: Option<Json> = if value.starts_with(&crate::records::avro::SINGLE_OBJECT_MAGIC) {
        endpoint_schema()
            .ok()
            .and_then(|s| s.decode_value(value).ok())
            .and_then(|v| Json::try_from(v).ok())
    } else {
        serde_json::from_slice(value).ok()
    };
    let Some(record) = record else {
        return Vec::new();
    };
    let mut strings = Vec::new();
    if let Some(secrets) = record.get("secrets") {
        collect_strings(secrets, &mut strings);
    }
    let text = record.to_string();
    strings
        .into_iter()
        .filter(|s| s.len() > Secret::PREFIX.len() + 3)
        .filter(|s| text.matches(s.as_str()).count() == 1)
        .collect()
}

fn collect_strings(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::String(s) => out.push(s.clone()),
        Json::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Json::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// A short label per refusal, for the replay test's file names.
fn label(e: &EndpointError) -> &'static str {
    match e {
        EndpointError::MissingKey => "missing_key",
        EndpointError::InvalidKey => "invalid_key",
        EndpointError::InvalidId { .. } => "invalid_id",
        EndpointError::KeyMismatch { .. } => "key_mismatch",
        EndpointError::InvalidAccountId => "invalid_account_id",
        EndpointError::UrlScheme { .. } => "url_scheme",
        EndpointError::UrlWithoutHost => "url_without_host",
        EndpointError::NoSecret => "no_secret",
        EndpointError::SecretPrefix { .. } => "secret_prefix",
        EndpointError::SecretNotBase64 { .. } => "secret_not_base64",
        EndpointError::SecretTooShort { .. } => "secret_too_short",
        EndpointError::EmptyEventType { .. } => "empty_event_type",
        EndpointError::NegativeVersion => "negative_version",
        EndpointError::ContactEmail => "contact_email",
        EndpointError::Json(_) => "json",
        EndpointError::Avro(_) => "avro",
        EndpointError::Status(_) => "status",
        EndpointError::Schema(_) => "schema",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &[u8] = br#"{"id":"ep_1","account_id":"a","url":"ftp://e.com","secrets":[{"secret":"whsec_TOPSECRETVALUE123"}]}"#;

    /// The check still fails on a real leak: an error that names the secret, which is gone
    /// once the secret is overwritten.
    #[test]
    #[should_panic(expected = "the error quotes a secret")]
    fn a_message_naming_the_secret_fails_the_check() {
        let leaking = EndpointError::UrlScheme {
            scheme: "whsec_TOPSECRETVALUE123".into(),
        };
        check_refusal(Some(b"ep_1"), Some(VALUE), &leaking);
    }

    #[test]
    fn secrets_are_overwritten_verbatim_or_as_serde_json_escapes_them() {
        let without = overwritten(VALUE, "whsec_TOPSECRETVALUE123").expect("found");
        let hashes = "#".repeat("whsec_TOPSECRETVALUE123".len());
        assert!(String::from_utf8_lossy(&without).contains(&format!(r#""secret":"{hashes}""#)));
        let escaped = br#"{"secrets":[{"secret":"whsec_a\"b\\c\nd"}]}"#;
        let without = overwritten(escaped, "whsec_a\"b\\c\nd").expect("found escaped");
        let hashes = "#".repeat(r#"whsec_a\"b\\c\nd"#.len());
        let expected = format!(r#"{{"secrets":[{{"secret":"{hashes}"}}]}}"#);
        assert_eq!(String::from_utf8_lossy(&without), expected);
        assert_eq!(
            overwritten(br#"{"secret":"\u0077hsec_x"}"#, "whsec_x"),
            None
        );
    }
}
