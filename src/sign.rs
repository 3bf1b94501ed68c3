//! Standard Webhooks signing for outgoing deliveries, and the verifier receivers can use.
//!
//! Every delivery carries `webhook-id`, `webhook-timestamp` and `webhook-signature`, as the
//! [Standard Webhooks](https://www.standardwebhooks.com/) specification defines them, so any of
//! that specification's receiver libraries verifies hookrelay's deliveries:
//!
//! - the signed content is `"{webhook-id}.{webhook-timestamp}.{body}"`, the body byte for byte;
//! - the key is the bytes base64-encoded after the `whsec_` prefix of the secret;
//! - the header is `v1,<base64 HMAC-SHA256>`, one entry per secret, space-separated, so during
//!   a secret rotation a receiver holding either the old or the new secret accepts the delivery.
//!
//! Receivers written against the seed article instead check `X-Signature-SHA256`, a hex HMAC of
//! the raw body alone; [`seed_signature`] computes it and [`SignedHeaders`] carries both.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::digest::Key;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::ids::Secret;

type HmacSha256 = Hmac<Sha256>;

/// How far a `webhook-timestamp` may be from the receiver's clock, either way, before
/// [`verify`] rejects it. Five minutes is the specification's recommendation: wide enough for
/// clock skew and a slow request, narrow enough that a captured delivery cannot be replayed
/// later.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// Header carrying the message id receivers deduplicate on.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the unix time (seconds) of this attempt.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// Header of the seed article's scheme: hex HMAC-SHA256 of the raw body.
pub const X_SIGNATURE_SHA256: &str = "X-Signature-SHA256";

/// Secrets' key bytes are read leniently about `=` padding: some tools strip it, and a
/// missing pad character says nothing about the key.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a secret could not be turned into a signing key, or headers could not be built.
///
/// No variant carries the secret or the base64 decoder's message: that message quotes the
/// offending character and its position, which is a piece of the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("signing secret does not start with `whsec_`")]
    MissingPrefix,
    #[error("signing secret is not valid base64 after `whsec_`")]
    InvalidBase64,
    #[error("signing secret has no key bytes after `whsec_`")]
    EmptyKey,
    #[error("no signing secret given")]
    NoSecrets,
    #[error("signing secret has {bytes} key bytes; at least {MIN_SECRET_BYTES} are required")]
    TooShort { bytes: usize },
}

/// The shortest key Standard Webhooks allows (its recommendation is 24 to 64 bytes).
pub const MIN_SECRET_BYTES: usize = 24;

/// Checks that a secret is usable for a new or changed endpoint: `whsec_`, base64 (padded or
/// not, read exactly as signing reads it) and at least [`MIN_SECRET_BYTES`] key bytes.
/// Returns the key length. The error never carries the secret.
pub fn check_secret(secret: &Secret) -> Result<usize, SignError> {
    let key = decode_secret(secret)?;
    if key.len() < MIN_SECRET_BYTES {
        return Err(SignError::TooShort { bytes: key.len() });
    }
    Ok(key.len())
}

fn decode_secret(secret: &Secret) -> Result<Vec<u8>, SignError> {
    let encoded = secret
        .expose()
        .strip_prefix(Secret::PREFIX)
        .ok_or(SignError::MissingPrefix)?;
    let key = SECRET_BASE64
        .decode(encoded)
        .map_err(|_| SignError::InvalidBase64)?;
    if key.is_empty() {
        return Err(SignError::EmptyKey);
    }
    Ok(key)
}

/// Why [`verify`] rejected a delivery. Every variant means "answer 401 and do not process".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the verifying secret is unusable: {0}")]
    Secret(#[from] SignError),
    #[error("webhook-timestamp is not a unix time in seconds")]
    InvalidTimestamp,
    #[error(
        "webhook-timestamp is {age_secs} s old, more than the {} s tolerated",
        TIMESTAMP_TOLERANCE_SECS
    )]
    TooOld { age_secs: i64 },
    #[error(
        "webhook-timestamp is {ahead_secs} s in the future, more than the {} s tolerated",
        TIMESTAMP_TOLERANCE_SECS
    )]
    TooNew { ahead_secs: i64 },
    #[error("webhook-signature has no v1 signature")]
    NoSignature,
    #[error("no v1 signature in webhook-signature matches")]
    Mismatch,
}

/// A secret's HMAC key, ready to sign. Keyed once so signing a delivery hashes only the
/// content, not the key again.
#[derive(Clone)]
pub struct SigningKey {
    mac: HmacSha256,
}

impl SigningKey {
    /// Decodes `whsec_<base64>` into the key bytes. The whole text must be well formed: a key
    /// silently built from part of a mistyped secret would sign deliveries nobody can verify.
    pub fn from_secret(secret: &Secret) -> Result<Self, SignError> {
        let key = decode_secret(secret)?;
        Ok(Self {
            mac: keyed_mac(&key),
        })
    }

    /// The MAC over the signed content, before encoding.
    fn mac_content(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// Builds an HMAC-SHA256 keyed with `key`, with no failure path.
///
/// HMAC accepts keys of any length (RFC 2104 §2): a key longer than the 64-byte block is
/// replaced by its SHA-256 digest, a shorter one is zero-padded to the block. Doing that here
/// and handing the block to the infallible [`KeyInit::new`] gives exactly the MAC that
/// `new_from_slice` would, without an `Err` arm that cannot happen.
fn keyed_mac(key: &[u8]) -> HmacSha256 {
    let mut block = Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    HmacSha256::new(&block)
}

/// The `webhook-signature` value: one `v1,<base64>` entry per key, in the order given,
/// separated by single spaces.
pub fn signature_header(msg_id: &str, timestamp: i64, body: &[u8], keys: &[SigningKey]) -> String {
    // "v1," + 44 base64 characters for 32 bytes, plus the separating space.
    let mut header = String::with_capacity(keys.len() * 48);
    push_signatures(
        &mut header,
        msg_id,
        &timestamp.to_string(),
        body,
        keys.iter(),
    );
    header
}

/// Appends one `v1,<base64>` entry per key to `header`, space-separated.
fn push_signatures<'k>(
    header: &mut String,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
    keys: impl Iterator<Item = &'k SigningKey>,
) {
    for (i, key) in keys.enumerate() {
        if i > 0 {
            header.push(' ');
        }
        header.push_str("v1,");
        let tag = key.mac_content(msg_id, timestamp, body).finalize();
        STANDARD.encode_string(tag.into_bytes(), header);
    }
}

/// The seed article's `X-Signature-SHA256`: lowercase hex HMAC-SHA256 of the raw body.
///
/// The key is the secret text exactly as the customer holds it, `whsec_…` included, as UTF-8
/// bytes, because that is what the article's receiver does:
/// `crypto.createHmac('sha256', process.env.WEBHOOK_SECRET)` with the environment variable set
/// to the secret shown in the dashboard. This header signs neither the id nor the timestamp,
/// so it does not protect against replay; receivers that can should verify
/// `webhook-signature` with [`verify`] instead.
pub fn seed_signature(secret: &Secret, body: &[u8]) -> String {
    seed_with(&keyed_mac(secret.expose().as_bytes()), body)
}

/// [`seed_signature`] with the secret's text already keyed.
fn seed_with(key: &HmacSha256, body: &[u8]) -> String {
    let mut mac = key.clone();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a secret that stops signing at `expires_at_ms` (`None`: the current secret, which
/// never does) signs a request made at `now_ms`. The one rule for which secrets sign.
pub fn still_signs(expires_at_ms: Option<i64>, now_ms: i64) -> bool {
    expires_at_ms.is_none_or(|at| at > now_ms)
}

/// The four signature headers of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
    pub x_signature_sha256: String,
}

impl SignedHeaders {
    /// Signs one attempt. `secrets` are the endpoint's unexpired secrets, newest first: every
    /// one signs `webhook-signature` (so receivers mid-rotation accept it), while the seed
    /// header, which has room for one signature only, uses the newest.
    ///
    /// `timestamp` is the time of this attempt, not of the event: receivers reject deliveries
    /// whose timestamp is more than five minutes from their clock, and retries come much later.
    pub fn new(
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
        secrets: &[Secret],
    ) -> Result<Self, SignError> {
        Signer::new(secrets.iter().map(|s| (s, None))).sign_at(msg_id, timestamp, i64::MIN, body)
    }

    /// The headers as (name, value) pairs, ready to add to a request.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (WEBHOOK_ID, self.webhook_id.as_str()),
            (WEBHOOK_TIMESTAMP, self.webhook_timestamp.as_str()),
            (WEBHOOK_SIGNATURE, self.webhook_signature.as_str()),
            (X_SIGNATURE_SHA256, self.x_signature_sha256.as_str()),
        ]
        .into_iter()
    }
}

/// One endpoint's secrets, keyed once, ready to sign many requests: signing then hashes
/// only the content, not each key again (a worker keeps one per endpoint and rebuilds it
/// when it re-reads the endpoint).
#[derive(Clone)]
pub struct Signer {
    /// Newest first, as the endpoint lists them.
    secrets: Vec<PreparedSecret>,
}

#[derive(Clone)]
struct PreparedSecret {
    /// Unix ms after which it no longer signs; `None` for the current secret.
    expires_at_ms: Option<i64>,
    /// The Standard Webhooks key and the seed header's key (the secret's text), or why the
    /// secret is unusable. An unusable secret fails only the requests it would sign.
    keys: Result<(SigningKey, HmacSha256), SignError>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({} secrets, ***)", self.secrets.len())
    }
}

impl Signer {
    /// `secrets`: each secret with the unix ms after which it stops signing, newest first.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a Secret, Option<i64>)>) -> Self {
        let secrets = secrets
            .into_iter()
            .map(|(secret, expires_at_ms)| PreparedSecret {
                expires_at_ms,
                keys: SigningKey::from_secret(secret)
                    .map(|key| (key, keyed_mac(secret.expose().as_bytes()))),
            })
            .collect();
        Self { secrets }
    }

    /// Signs one attempt made at `now_ms` with every secret that [`still_signs`] then, as
    /// [`SignedHeaders::new`] does with those secrets.
    pub fn sign(&self, msg_id: &str, now_ms: i64, body: &[u8]) -> Result<SignedHeaders, SignError> {
        self.sign_at(msg_id, now_ms.div_euclid(1000), now_ms, body)
    }

    /// Signs with `timestamp` (unix seconds) in the headers and the secrets active at
    /// `now_ms`. An unusable active secret fails the request; an expired one does not.
    fn sign_at(
        &self,
        msg_id: &str,
        timestamp: i64,
        now_ms: i64,
        body: &[u8],
    ) -> Result<SignedHeaders, SignError> {
        let active = || {
            self.secrets
                .iter()
                .filter(move |s| still_signs(s.expires_at_ms, now_ms))
        };
        let mut newest = None;
        for secret in active() {
            let keys = secret.keys.as_ref().map_err(Clone::clone)?;
            newest.get_or_insert(keys);
        }
        // The seed header has room for one signature: the newest secret's.
        let (_, seed_key) = newest.ok_or(SignError::NoSecrets)?;
        let timestamp = timestamp.to_string();
        let mut signature = String::with_capacity(48);
        let keys = active().filter_map(|s| s.keys.as_ref().ok().map(|(key, _)| key));
        push_signatures(&mut signature, msg_id, &timestamp, body, keys);
        Ok(SignedHeaders {
            webhook_id: msg_id.to_owned(),
            webhook_timestamp: timestamp,
            webhook_signature: signature,
            x_signature_sha256: seed_with(seed_key, body),
        })
    }
}

/// Verifies a delivery as a receiver should: the timestamp is within
/// [`TIMESTAMP_TOLERANCE_SECS`] of `now_unix`, and at least one `v1` signature in the
/// `webhook-signature` header matches `secret`.
///
/// Pass the header values exactly as received and the raw body bytes, before any JSON
/// parsing: re-serializing the body changes the bytes and breaks the signature. Signatures of
/// other versions, and entries that do not decode, are skipped rather than failing the whole
/// header, so a sender may add new schemes alongside `v1`. Comparison is constant-time.
///
/// ```
/// use hookrelay::ids::Secret;
/// use hookrelay::sign::{verify, SignedHeaders};
///
/// let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
/// let body = br#"{"id":"evt_1","type":"license.created"}"#;
/// let now = 1_700_000_000;
///
/// // What hookrelay sends...
/// let headers = SignedHeaders::new("evt_1", now, body, &[secret.clone()]).unwrap();
///
/// // ...and what a receiver checks, with the header values as received.
/// verify(
///     &secret,
///     &headers.webhook_id,
///     &headers.webhook_timestamp,
///     &headers.webhook_signature,
///     body,
///     now + 2,
/// )
/// .expect("authentic delivery");
///
/// // A changed body is rejected.
/// assert!(verify(
///     &secret,
///     &headers.webhook_id,
///     &headers.webhook_timestamp,
///     &headers.webhook_signature,
///     br#"{"id":"evt_1","type":"license.revoked"}"#,
///     now + 2,
/// )
/// .is_err());
/// ```
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    let key = SigningKey::from_secret(secret)?;

    // Digits only: `i64::from_str` would also take "+17…", which signs differently.
    if timestamp_header.is_empty() || !timestamp_header.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    let timestamp: i64 = timestamp_header
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let age = now_unix.saturating_sub(timestamp);
    if age > TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::TooOld { age_secs: age });
    }
    if age < -TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::TooNew {
            ahead_secs: age.saturating_neg(),
        });
    }

    let mac = key.mac_content(msg_id, timestamp_header, body);
    let mut saw_v1 = false;
    for entry in signature_header.split(' ').filter(|e| !e.is_empty()) {
        let Some(("v1", encoded)) = entry.split_once(',') else {
            continue;
        };
        saw_v1 = true;
        let Ok(candidate) = STANDARD.decode(encoded) else {
            continue;
        };
        if mac.clone().verify_slice(&candidate).is_ok() {
            return Ok(());
        }
    }
    Err(if saw_v1 {
        VerifyError::Mismatch
    } else {
        VerifyError::NoSignature
    })
}

/// A new random secret, `whsec_` and 32 key bytes, for endpoint creation and rotation.
///
/// 32 bytes is within the 24 to 64 the specification recommends and matches SHA-256's output.
pub fn generate_secret() -> Secret {
    let key: [u8; 32] = rand::random();
    Secret::new(format!("{}{}", Secret::PREFIX, STANDARD.encode(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks test vector, published in the specification's reference
    // libraries' tests.
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector_key() -> SigningKey {
        SigningKey::from_secret(&Secret::new(VECTOR_SECRET)).unwrap()
    }

    fn verify_vector(secret: &str, sig: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
        verify(
            &Secret::new(secret),
            VECTOR_ID,
            &VECTOR_TS.to_string(),
            sig,
            body,
            now,
        )
    }

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let header = signature_header(VECTOR_ID, VECTOR_TS, VECTOR_BODY, &[vector_key()]);
        assert_eq!(header, VECTOR_SIG);
    }

    #[test]
    fn verifies_the_standard_webhooks_test_vector() {
        assert_eq!(
            verify_vector(VECTOR_SECRET, VECTOR_SIG, VECTOR_BODY, VECTOR_TS),
            Ok(())
        );
    }

    #[test]
    fn rotation_signs_with_every_key_in_order_and_either_secret_verifies() {
        let new = generate_secret();
        let old = Secret::new(VECTOR_SECRET);
        let headers = SignedHeaders::new(
            VECTOR_ID,
            VECTOR_TS,
            VECTOR_BODY,
            &[new.clone(), old.clone()],
        )
        .unwrap();
        let entries: Vec<&str> = headers.webhook_signature.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1], VECTOR_SIG, "old key's entry comes second");
        for secret in [&new, &old] {
            assert_eq!(
                verify(
                    secret,
                    &headers.webhook_id,
                    &headers.webhook_timestamp,
                    &headers.webhook_signature,
                    VECTOR_BODY,
                    VECTOR_TS,
                ),
                Ok(())
            );
        }
        // The seed header has room for one signature: the newest secret's.
        assert_eq!(
            headers.x_signature_sha256,
            seed_signature(&new, VECTOR_BODY)
        );
    }

    #[test]
    fn tampered_body_is_rejected() {
        assert_eq!(
            verify_vector(
                VECTOR_SECRET,
                VECTOR_SIG,
                br#"{"test": 2432232315}"#,
                VECTOR_TS
            ),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn changed_id_or_timestamp_is_rejected() {
        let secret = Secret::new(VECTOR_SECRET);
        let ts = VECTOR_TS.to_string();
        assert_eq!(
            verify(
                &secret,
                "msg_other",
                &ts,
                VECTOR_SIG,
                VECTOR_BODY,
                VECTOR_TS
            ),
            Err(VerifyError::Mismatch)
        );
        let later = (VECTOR_TS + 1).to_string();
        assert_eq!(
            verify(
                &secret,
                VECTOR_ID,
                &later,
                VECTOR_SIG,
                VECTOR_BODY,
                VECTOR_TS
            ),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let other = generate_secret();
        assert_eq!(
            verify_vector(other.expose(), VECTOR_SIG, VECTOR_BODY, VECTOR_TS),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn timestamps_outside_five_minutes_are_rejected_either_way() {
        let edge = TIMESTAMP_TOLERANCE_SECS;
        assert_eq!(
            verify_vector(VECTOR_SECRET, VECTOR_SIG, VECTOR_BODY, VECTOR_TS + edge),
            Ok(())
        );
        assert_eq!(
            verify_vector(VECTOR_SECRET, VECTOR_SIG, VECTOR_BODY, VECTOR_TS - edge),
            Ok(())
        );
        assert_eq!(
            verify_vector(VECTOR_SECRET, VECTOR_SIG, VECTOR_BODY, VECTOR_TS + edge + 1),
            Err(VerifyError::TooOld { age_secs: edge + 1 })
        );
        assert_eq!(
            verify_vector(VECTOR_SECRET, VECTOR_SIG, VECTOR_BODY, VECTOR_TS - edge - 1),
            Err(VerifyError::TooNew {
                ahead_secs: edge + 1
            })
        );
    }

    #[test]
    fn any_matching_v1_entry_is_enough_and_others_are_skipped() {
        let header = format!("v2,abc v1,not-base64!! v1,AAAA {VECTOR_SIG} v1a,xyz");
        assert_eq!(
            verify_vector(VECTOR_SECRET, &header, VECTOR_BODY, VECTOR_TS),
            Ok(())
        );
    }

    #[test]
    fn header_without_v1_or_with_bad_timestamp_is_rejected() {
        assert_eq!(
            verify_vector(VECTOR_SECRET, "v2,abc", VECTOR_BODY, VECTOR_TS),
            Err(VerifyError::NoSignature)
        );
        assert_eq!(
            verify_vector(VECTOR_SECRET, "", VECTOR_BODY, VECTOR_TS),
            Err(VerifyError::NoSignature)
        );
        for ts in [
            "",
            "+1614265330",
            "1614265330.0",
            "-5",
            "99999999999999999999",
        ] {
            assert_eq!(
                verify(
                    &Secret::new(VECTOR_SECRET),
                    VECTOR_ID,
                    ts,
                    VECTOR_SIG,
                    VECTOR_BODY,
                    VECTOR_TS
                ),
                Err(VerifyError::InvalidTimestamp),
                "timestamp {ts:?}"
            );
        }
    }

    #[test]
    fn malformed_secrets_are_errors_not_keys() {
        let cases = [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SignError::MissingPrefix),
            ("whsec_not base64!", SignError::InvalidBase64),
            ("whsec_", SignError::EmptyKey),
        ];
        for (text, want) in cases {
            assert_eq!(
                SigningKey::from_secret(&Secret::new(text)).err(),
                Some(want.clone()),
                "secret {text:?}"
            );
            // The verifier reports the same instead of panicking or accepting.
            assert_eq!(
                verify_vector(text, VECTOR_SIG, VECTOR_BODY, VECTOR_TS),
                Err(VerifyError::Secret(want))
            );
        }
        assert_eq!(
            SignedHeaders::new(VECTOR_ID, VECTOR_TS, VECTOR_BODY, &[]),
            Err(SignError::NoSecrets)
        );
    }

    #[test]
    fn secret_padding_is_optional() {
        // 32 random bytes encode to 44 characters ending in one '='.
        let padded = generate_secret();
        let unpadded = Secret::new(padded.expose().trim_end_matches('='));
        assert_ne!(padded.expose(), unpadded.expose());
        let a = signature_header("m", 1, b"x", &[SigningKey::from_secret(&padded).unwrap()]);
        let b = signature_header("m", 1, b"x", &[SigningKey::from_secret(&unpadded).unwrap()]);
        assert_eq!(a, b);
    }

    #[test]
    fn signing_key_debug_prints_no_key() {
        assert_eq!(format!("{:?}", vector_key()), "SigningKey(***)");
    }

    #[test]
    fn seed_signature_matches_the_articles_receiver() {
        // The article's receiver: createHmac('sha256', WEBHOOK_SECRET).update(rawBody)
        // .digest('hex'), with WEBHOOK_SECRET the whole `whsec_…` text.
        let secret = Secret::new(VECTOR_SECRET);
        let mut mac = HmacSha256::new_from_slice(VECTOR_SECRET.as_bytes()).unwrap();
        mac.update(VECTOR_BODY);
        let expected = hex::encode(mac.finalize().into_bytes());
        let got = seed_signature(&secret, VECTOR_BODY);
        assert_eq!(got, expected);
        assert_eq!(got.len(), 64);
        assert!(got.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }

    #[test]
    fn keyed_mac_equals_hmac_for_every_key_length() {
        // Covers both sides of the 64-byte block: zero-padding and hashing long keys.
        for len in [0, 1, 31, 32, 63, 64, 65, 100, 200] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut ours = keyed_mac(&key);
            let mut reference = HmacSha256::new_from_slice(&key).unwrap();
            ours.update(b"content");
            reference.update(b"content");
            assert_eq!(
                ours.finalize().into_bytes(),
                reference.finalize().into_bytes(),
                "key length {len}"
            );
        }
    }

    #[test]
    fn generated_secrets_are_distinct_and_usable() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("whsec_"));
        assert!(SigningKey::from_secret(&a).is_ok());
    }

    #[test]
    fn a_signer_signs_as_signed_headers_does_with_the_active_secrets() {
        let (new, old) = (generate_secret(), generate_secret());
        let body = br#"{"type":"license.created"}"#;
        let now_ms = 1_773_585_060_123;
        let signer = Signer::new([(&new, None), (&old, Some(now_ms + 1))]);
        // Both active: both sign, the newest first; the seed header uses the newest.
        assert_eq!(
            signer.sign("msg_1", now_ms, body),
            SignedHeaders::new("msg_1", now_ms / 1000, body, &[new.clone(), old.clone()])
        );
        // The old one expired: only the new one signs.
        assert_eq!(
            signer.sign("msg_1", now_ms + 1, body),
            SignedHeaders::new(
                "msg_1",
                (now_ms + 1) / 1000,
                body,
                std::slice::from_ref(&new)
            )
        );
        // Nothing active, or an active secret unusable: the same errors.
        let expired = Signer::new([(&new, Some(now_ms))]);
        assert_eq!(
            expired.sign("msg_1", now_ms, body),
            Err(SignError::NoSecrets)
        );
        let broken = Secret::new("whsec_not base64!");
        let with_broken = Signer::new([(&broken, Some(now_ms + 1)), (&new, None)]);
        assert_eq!(
            with_broken.sign("msg_1", now_ms, body),
            Err(SignError::InvalidBase64)
        );
        // Once the unusable one has expired it no longer matters.
        assert!(with_broken.sign("msg_1", now_ms + 1, body).is_ok());
        assert!(!format!("{with_broken:?}").contains("whsec_"));
    }

    #[test]
    fn headers_iterate_under_their_wire_names() {
        let headers = SignedHeaders::new(
            VECTOR_ID,
            VECTOR_TS,
            VECTOR_BODY,
            &[Secret::new(VECTOR_SECRET)],
        )
        .unwrap();
        let pairs: Vec<_> = headers.iter().collect();
        assert_eq!(pairs[0], ("webhook-id", VECTOR_ID));
        assert_eq!(pairs[1], ("webhook-timestamp", "1614265330"));
        assert_eq!(pairs[2], ("webhook-signature", VECTOR_SIG));
        assert_eq!(pairs[3].0, "X-Signature-SHA256");
    }
}
