//! License keys as they leave hookrelay: masked to at most their last 4 characters and a
//! known product prefix. Pure.

/// Product prefixes a masked license key may keep (`TO-****-…`). Fixed on purpose: only a
/// known product code is shown, never an arbitrary first group of a customer's key.
pub const LICENSE_KEY_PREFIXES: &[&str] = &["TO"];

/// What a license key looks like once it leaves hookrelay: at most its last 4 characters,
/// plus its product prefix when that is one of [`LICENSE_KEY_PREFIXES`] and the key has at
/// least three dash-separated groups. Every other group becomes `****` (fixed width, so the
/// length does not leak), and a last group longer than 4 keeps only its last 4 behind
/// `****`. A key without dashes keeps its last 4 characters (none when it has 4 or fewer).
///
/// `TO-8F3A-22C1-9B7E-F6A8` → `TO-****-****-****-F6A8`; `8F3A-F6A8` → `****-F6A8`;
/// `ABCDEFGH1234` → `****1234`; `XX-1234-5678-ABCDEF` → `****-****-****-****CDEF`.
pub fn mask_license_key(key: &str) -> String {
    fn tail(s: &str, n: usize) -> &str {
        let count = s.chars().count();
        if count <= n {
            return s;
        }
        let start = s.char_indices().nth(count - n).map_or(0, |(i, _)| i);
        &s[start..]
    }
    let groups: Vec<&str> = key.split('-').collect();
    let Some((last, rest)) = groups.split_last() else {
        return "****".to_owned();
    };
    if rest.is_empty() {
        let n = last.chars().count();
        return if n > 4 {
            format!("****{}", tail(last, 4))
        } else {
            "****".to_owned()
        };
    }
    let mut out = String::with_capacity(key.len() + 8);
    for (i, g) in rest.iter().enumerate() {
        let product_prefix = i == 0 && groups.len() >= 3 && LICENSE_KEY_PREFIXES.contains(g);
        out.push_str(if product_prefix { g } else { "****" });
        out.push('-');
    }
    if last.chars().count() > 4 {
        out.push_str("****");
    }
    out.push_str(tail(last, 4));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever the key, the masked form shows nothing but `*`, `-`, a listed product
        /// prefix and at most the key's last 4 characters.
        #[test]
        fn a_masked_key_reveals_at_most_its_last_four_and_a_known_prefix(
            key in "[A-Za-z0-9Ä-]{0,40}",
        ) {
            let masked = mask_license_key(&key);
            let shown = LICENSE_KEY_PREFIXES
                .iter()
                .find_map(|p| masked.strip_prefix(&format!("{p}-")))
                .unwrap_or(&masked);
            let revealed: String = shown.chars().filter(|c| *c != '*' && *c != '-').collect();
            proptest::prop_assert!(revealed.chars().count() <= 4, "{} -> {}", key, masked);
            let key_without_dashes: String = key.chars().filter(|c| *c != '-').collect();
            proptest::prop_assert!(key_without_dashes.ends_with(&revealed), "{} -> {}", key, masked);
        }
    }

    #[test]
    fn license_keys_are_masked() {
        assert_eq!(
            mask_license_key("TO-8F3A-22C1-9B7E-F6A8"),
            "TO-****-****-****-F6A8"
        );
        assert_eq!(
            mask_license_key("8F3A-22C1-9B7E-F6A8"),
            "****-****-****-F6A8"
        );
        assert_eq!(mask_license_key("TO-F6A8"), "****-F6A8");
        assert_eq!(mask_license_key("ABCDEFGH1234"), "****1234");
        assert_eq!(mask_license_key("ABCD"), "****");
        assert_eq!(mask_license_key(""), "****");
        assert_eq!(
            mask_license_key("A-B-ABCDEFGHIJKLMNOP"),
            "****-****-****MNOP"
        );
        assert_eq!(mask_license_key("TO-1-ABCDEFGH"), "TO-****-****EFGH");
        assert_eq!(
            mask_license_key("XX-1234-5678-ABCDEF"),
            "****-****-****-****CDEF"
        );
        assert_eq!(mask_license_key("ÄÖÜßé12"), "****ßé12");
    }
}
