//! The value of `webhook-api-keys` records: one customer API key, holding a digest of its
//! secret (never the secret), and the token format its holder presents.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::avro::EmbeddedSchema;

static SCHEMA: EmbeddedSchema = EmbeddedSchema::new(
    "api_key",
    &[(1, include_str!("../../schemas/api_key.v1.avsc"))],
);

/// The prefix of key ids.
pub const KEY_ID_PREFIX: &str = "key_";
/// The prefix of tokens, so a leaked one is recognisable (secret scanners match on it).
pub const TOKEN_PREFIX: &str = "hrk_";
/// Hex digits after [`KEY_ID_PREFIX`] in a key id.
const KEY_ID_HEX: usize = 16;

/// One API key (schema `api_key`). `Debug` is safe to log: it holds no secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// `key_` + 16 hex digits; the record key.
    pub id: String,
    /// The one account this key works for; `None` for an operator key (every account).
    pub account_id: Option<String>,
    /// Lowercase hex SHA-256 of the whole token.
    pub secret_sha256: String,
    pub description: Option<String>,
    pub created_at_ms: i64,
}

super::avro::avro_record!(ApiKey, SCHEMA);

/// A newly made key and the token for it: the only time the token exists outside its
/// holder. `Debug` does not print the token.
pub struct NewKey {
    pub key: ApiKey,
    pub token: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("key", &self.key)
            .field("token", &"hrk_***")
            .finish()
    }
}

impl ApiKey {
    /// Makes a key for `account_id` (`None`: an operator key) with a random secret.
    ///
    /// The token is `hrk_<16 hex id digits>_<43 base64url characters>`: 256 random bits, so
    /// a plain SHA-256 digest is enough to store (there is nothing to brute-force, unlike a
    /// password) and checking a request costs a microsecond.
    pub fn generate(
        account_id: Option<String>,
        description: Option<String>,
        now_ms: i64,
    ) -> NewKey {
        use base64::Engine as _;
        let id_bytes: [u8; KEY_ID_HEX / 2] = rand::random();
        let id_hex = hex::encode(id_bytes);
        let secret: [u8; 32] = rand::random();
        let token = format!(
            "{TOKEN_PREFIX}{id_hex}_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        NewKey {
            key: ApiKey {
                id: format!("{KEY_ID_PREFIX}{id_hex}"),
                account_id,
                secret_sha256: token_digest_hex(&token),
                description,
                created_at_ms: now_ms,
            },
            token,
        }
    }

    /// True for an operator key.
    pub fn is_operator(&self) -> bool {
        self.account_id.is_none()
    }

    /// True when `token` is this key's: its digest equals the stored one, compared in
    /// constant time.
    pub fn accepts(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        let Ok(stored) = hex::decode(&self.secret_sha256) else {
            return false;
        };
        let presented = Sha256::digest(token.as_bytes());
        stored.len() == presented.len() && bool::from(presented.as_slice().ct_eq(&stored))
    }
}

/// The key id a token names (`hrk_<hex>_…` → `key_<hex>`), or `None` when the token does not
/// have the shape of one. Says nothing about whether it is valid.
pub fn key_id_of_token(token: &str) -> Option<String> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let hex_part = rest.get(..KEY_ID_HEX)?;
    let after = rest.get(KEY_ID_HEX..)?;
    if !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) || !after.starts_with('_') {
        return None;
    }
    Some(format!("{KEY_ID_PREFIX}{}", hex_part.to_ascii_lowercase()))
}

/// True when `id` has the shape of a key id.
pub fn is_key_id(id: &str) -> bool {
    id.strip_prefix(KEY_ID_PREFIX)
        .is_some_and(|h| h.len() == KEY_ID_HEX && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn token_digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_names_its_key_and_is_accepted_by_it_only() {
        let made = ApiKey::generate(Some("acct_1".into()), None, 5);
        assert!(is_key_id(&made.key.id), "{}", made.key.id);
        assert_eq!(
            key_id_of_token(&made.token).as_deref(),
            Some(made.key.id.as_str())
        );
        assert!(made.key.accepts(&made.token));
        let other = ApiKey::generate(Some("acct_1".into()), None, 5);
        assert!(!made.key.accepts(&other.token));
        assert!(!made.key.accepts(""));
        let mut tampered = made.token.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!made.key.accepts(&tampered));
    }

    #[test]
    fn token_shapes_are_checked_before_any_lookup() {
        assert_eq!(
            key_id_of_token("hrk_0123456789abcdef_x").as_deref(),
            Some("key_0123456789abcdef")
        );
        assert_eq!(
            key_id_of_token("hrk_0123456789abcde_x"),
            None,
            "15 hex digits"
        );
        assert_eq!(
            key_id_of_token("hrk_0123456789abcdefgx"),
            None,
            "no separator"
        );
        assert_eq!(key_id_of_token("Bearer hrk_0123456789abcdef_x"), None);
        assert_eq!(key_id_of_token("hrk_ü123456789abcdef_x"), None);
        assert!(!is_key_id("key_0123"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let made = ApiKey::generate(None, Some("ops".into()), 1);
        let shown = format!("{made:?}");
        assert!(!shown.contains(&made.token), "{shown}");
        assert!(made.key.is_operator());
    }

    #[test]
    fn round_trips_through_avro() {
        let made = ApiKey::generate(Some("acct_1".into()), Some("ci".into()), 7);
        assert_eq!(
            ApiKey::from_avro(&made.key.to_avro().unwrap()).unwrap(),
            made.key
        );
        let op = ApiKey::generate(None, None, 7).key;
        assert_eq!(ApiKey::from_avro(&op.to_avro().unwrap()).unwrap(), op);
    }
}
