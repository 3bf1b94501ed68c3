//! The Standard Webhooks verifier's properties ([`verify`]), checked against an independent
//! HMAC computation and against the signer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::ids::Secret;
use crate::sign::{SigningKey, TIMESTAMP_TOLERANCE_SECS, VerifyError, signature_header, verify};

use super::Verdict;

/// Target `signature_verify`: six fields separated by newlines, the last taking the rest of
/// the input: the secret (`whsec_…`), the `webhook-id`, the `webhook-timestamp`, the
/// `webhook-signature` header, the receiver's clock (Unix seconds; anything else means "the
/// timestamp itself") and the body. Missing fields are empty; bytes that are not UTF-8 in the
/// first five become U+FFFD. The Standard Webhooks test vector is such a file.
///
/// `verify` accepts only when the timestamp is digits within 5 minutes of the clock and some
/// `v1,` entry is the HMAC-SHA256 of `id.timestamp.body` under the secret's key bytes,
/// computed here without the signer's code. With a usable secret, what the signer writes
/// verifies, and fails with another secret (one bit of the key flipped), another body or
/// another id, or a clock just past the tolerance.
pub fn signature_verify(data: &[u8]) -> Verdict {
    let mut fields = data.splitn(6, |&b| b == b'\n');
    let mut text = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (secret, id, timestamp, header, clock) = (text(), text(), text(), text(), text());
    let body = fields.next().unwrap_or_default();
    let secret = Secret::new(secret);
    let parsed = timestamp.parse::<i64>().ok();
    let now = clock.parse::<i64>().ok().or(parsed).unwrap_or(0);

    let result = verify(&secret, &id, &timestamp, &header, body, now);
    if result.is_ok() {
        let key = key_bytes(&secret).expect("verify accepted a secret that does not decode");
        assert!(
            !timestamp.is_empty() && timestamp.bytes().all(|b| b.is_ascii_digit()),
            "verify accepted a timestamp that is not digits"
        );
        let age = now.saturating_sub(parsed.expect("digits parse"));
        assert!(
            age.abs() <= TIMESTAMP_TOLERANCE_SECS,
            "accepted {age} s off"
        );
        let tag = hmac_tag(&key, &id, &timestamp, body);
        assert!(
            header
                .split(' ')
                .filter_map(|e| e.strip_prefix("v1,"))
                .any(|sig| STANDARD.decode(sig).is_ok_and(|s| s == tag)),
            "verify accepted a header with no v1 signature of this content under this secret"
        );
    }

    if let Ok(signer) = SigningKey::from_secret(&secret) {
        // The signer writes the time of the attempt: never before 1970.
        let signed_at = [parsed, Some(now)].into_iter().flatten().find(|t| *t >= 0);
        check_signer(&secret, &signer, &id, signed_at.unwrap_or(0), body);
    }
    match result {
        Ok(()) => Verdict::Accepted,
        Err(e) => Verdict::rejected(label(&e)),
    }
}

/// The signer and the verifier agree, and nothing but the signing secret and content passes.
fn check_signer(secret: &Secret, signer: &SigningKey, id: &str, timestamp: i64, body: &[u8]) {
    let header = signature_header(id, timestamp, body, std::slice::from_ref(signer));
    let ts = timestamp.to_string();
    let check = |secret: &Secret, id: &str, body: &[u8], now: i64| {
        verify(secret, id, &ts, &header, body, now)
    };
    assert_eq!(check(secret, id, body, timestamp), Ok(()), "own signature");
    if let Some(now) = timestamp.checked_add(TIMESTAMP_TOLERANCE_SECS) {
        assert_eq!(check(secret, id, body, now), Ok(()), "at the tolerance");
    }
    if let Some(now) = timestamp.checked_add(TIMESTAMP_TOLERANCE_SECS + 1) {
        assert!(
            matches!(
                check(secret, id, body, now),
                Err(VerifyError::TooOld { .. })
            ),
            "just past the tolerance"
        );
    }

    let mut other_body = body.to_vec();
    other_body.push(b' ');
    assert_eq!(
        check(secret, id, &other_body, timestamp),
        Err(VerifyError::Mismatch),
        "another body"
    );
    let other_id = format!("{id}x");
    assert_eq!(
        check(secret, &other_id, body, timestamp),
        Err(VerifyError::Mismatch),
        "another id"
    );

    // Another secret: the same key with one bit flipped, at a place the content picks. HMAC
    // keys that differ only in trailing zero bytes are the same key, so the flip is within
    // the key bytes, where it always changes the key block.
    let mut key = key_bytes(secret).expect("the signer decoded it");
    let at = body.len() % key.len();
    key[at] ^= 1 << (id.len() % 8);
    let other = Secret::new(format!("{}{}", Secret::PREFIX, STANDARD.encode(&key)));
    assert_eq!(
        check(&other, id, body, timestamp),
        Err(VerifyError::Mismatch),
        "another secret"
    );
    // During a rotation the header carries both; either secret verifies it.
    let both = [
        SigningKey::from_secret(&other).expect("the flipped key is a key"),
        signer.clone(),
    ];
    let rotated = signature_header(id, timestamp, body, &both);
    assert_eq!(verify(secret, id, &ts, &rotated, body, timestamp), Ok(()));
    assert_eq!(verify(&other, id, &ts, &rotated, body, timestamp), Ok(()));
}

/// The key bytes after `whsec_`, decoded as the secret's base64 (padding optional).
fn key_bytes(secret: &Secret) -> Option<Vec<u8>> {
    let encoded = secret.expose().strip_prefix(Secret::PREFIX)?;
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    lenient.decode(encoded).ok().filter(|k| !k.is_empty())
}

/// HMAC-SHA256 over `id.timestamp.body`, straight from the `hmac` crate.
fn hmac_tag(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn label(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Secret(_) => "secret",
        VerifyError::InvalidTimestamp => "invalid_timestamp",
        VerifyError::TooOld { .. } => "too_old",
        VerifyError::TooNew { .. } => "too_new",
        VerifyError::NoSignature => "no_signature",
        VerifyError::Mismatch => "mismatch",
    }
}
