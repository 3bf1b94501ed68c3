//! The delivery log's key layout and queries, pure: how attempt records are keyed so one
//! endpoint's attempts are a range scan newest first, the opaque page cursor, and which
//! records a query keeps. [`super::store`] runs these over RocksDB.
//!
//! Keys (all integers big-endian):
//!
//! - attempts: `u16 len | endpoint id | !at_ms | !offset | partition`
//! - by delivery: `u16 len | endpoint id | u16 len | delivery id | !at_ms | !offset | partition`
//!
//! `!x` is `u64::MAX - x`, so newer attempts sort first. The length prefix keeps one
//! endpoint's keys together whatever its id contains, and the Kafka position makes each key
//! unique (two attempts in one millisecond).

use base64::Engine as _;

use crate::records::AttemptRecord;

/// Bytes after an endpoint's prefix in an attempt key: `!at_ms`, `!offset`, partition.
pub const POSITION_LEN: usize = 8 + 8 + 4;

/// Where an attempt sits in its endpoint's log; a page cursor is the last one returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    inverted_at: u64,
    inverted_offset: u64,
    partition: i32,
}

impl Position {
    pub fn new(at_ms: i64, partition: i32, offset: i64) -> Self {
        Position {
            inverted_at: invert(at_ms),
            inverted_offset: invert(offset),
            partition,
        }
    }

    /// The attempt's time (Unix ms).
    pub fn at_ms(&self) -> i64 {
        (u64::MAX - self.inverted_at).min(i64::MAX as u64) as i64
    }

    fn bytes(&self) -> [u8; POSITION_LEN] {
        let mut out = [0u8; POSITION_LEN];
        out[..8].copy_from_slice(&self.inverted_at.to_be_bytes());
        out[8..16].copy_from_slice(&self.inverted_offset.to_be_bytes());
        out[16..].copy_from_slice(&self.partition.to_be_bytes());
        out
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != POSITION_LEN {
            return None;
        }
        Some(Position {
            inverted_at: u64::from_be_bytes(b[..8].try_into().ok()?),
            inverted_offset: u64::from_be_bytes(b[8..16].try_into().ok()?),
            partition: i32::from_be_bytes(b[16..].try_into().ok()?),
        })
    }

    /// The opaque cursor clients send back for the next page.
    pub fn to_cursor(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.bytes())
    }

    /// Reads a cursor made by [`Position::to_cursor`]; `None` for anything else.
    pub fn from_cursor(cursor: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()?;
        Self::from_bytes(&bytes)
    }
}

/// Negative times and offsets do not occur; they sort as 0.
fn invert(x: i64) -> u64 {
    u64::MAX - x.max(0) as u64
}

/// Length-prefixed bytes; `None` when longer than a u16 can say (never for valid ids).
fn prefixed(out: &mut Vec<u8>, s: &str) -> Option<()> {
    let len = u16::try_from(s.len()).ok()?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Some(())
}

/// What every attempt key of `endpoint` starts with.
pub fn endpoint_prefix(endpoint: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(2 + endpoint.len() + POSITION_LEN);
    prefixed(&mut out, endpoint)?;
    Some(out)
}

/// The key of one attempt in the attempts column family.
pub fn attempt_key(endpoint: &str, position: Position) -> Option<Vec<u8>> {
    let mut key = endpoint_prefix(endpoint)?;
    key.extend_from_slice(&position.bytes());
    Some(key)
}

/// What every by-delivery key of one delivery of `endpoint` starts with.
pub fn delivery_prefix(endpoint: &str, delivery: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(4 + endpoint.len() + delivery.len() + POSITION_LEN);
    prefixed(&mut out, endpoint)?;
    prefixed(&mut out, delivery)?;
    Some(out)
}

/// The key of one attempt in the by-delivery index.
pub fn delivery_key(endpoint: &str, delivery: &str, position: Position) -> Option<Vec<u8>> {
    let mut key = delivery_prefix(endpoint, delivery)?;
    key.extend_from_slice(&position.bytes());
    Some(key)
}

/// The position at the end of any key of either layout.
pub fn position_of_key(key: &[u8]) -> Option<Position> {
    let start = key.len().checked_sub(POSITION_LEN)?;
    Position::from_bytes(&key[start..])
}

/// A key just past every key of the prefix (keys of one prefix are exactly
/// `prefix.len() + POSITION_LEN` long): an iterator's upper bound.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.extend_from_slice(&[0xFF; POSITION_LEN + 1]);
    end
}

/// The first key after `position` under `prefix` (for resuming after a cursor).
pub fn key_after(prefix: &[u8], position: Position) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&position.bytes());
    key.push(0);
    key
}

/// The first key under `prefix` whose attempt is at or before `until_ms`.
pub fn key_at_or_before(prefix: &[u8], until_ms: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&invert(until_ms).to_be_bytes());
    key
}

/// One page request on an endpoint's log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only attempts at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Only attempts at or before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// Only this outcome (`delivered`, `retry_scheduled`, …).
    pub outcome: Option<String>,
    /// Only attempts whose request carried an event of this type.
    pub event_type: Option<String>,
    /// Only attempts of this delivery (`msg_…`/`bat_…`).
    pub delivery_id: Option<String>,
    /// Only records of this account: an endpoint id that moved accounts keeps the old
    /// account's attempts out of the new owner's log.
    pub account_id: Option<String>,
    /// Resume after this position (the previous page's cursor).
    pub after: Option<Position>,
    pub limit: usize,
}

impl LogQuery {
    /// True when `record` belongs on the page (time bounds are applied by the scan).
    pub fn keeps(&self, record: &AttemptRecord) -> bool {
        self.outcome.as_ref().is_none_or(|o| *o == record.outcome)
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| record.event_types.iter().any(|rt| rt == t))
            && self
                .delivery_id
                .as_ref()
                .is_none_or(|d| *d == record.delivery_id)
            && self
                .account_id
                .as_ref()
                .is_none_or(|a| *a == record.account_id)
    }
}

/// One page of the log, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPage {
    pub entries: Vec<(Position, AttemptRecord)>,
    /// Where the next page starts, when there may be more.
    pub next: Option<Position>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_attempts_sort_first_and_endpoints_stay_apart() {
        let a_old = attempt_key("ep_a", Position::new(1_000, 0, 5)).unwrap();
        let a_new = attempt_key("ep_a", Position::new(2_000, 0, 6)).unwrap();
        let a_same_ms_later = attempt_key("ep_a", Position::new(2_000, 0, 7)).unwrap();
        assert!(a_new < a_old);
        assert!(
            a_same_ms_later < a_new,
            "later offset first within a millisecond"
        );
        let prefix = endpoint_prefix("ep_a").unwrap();
        let end = prefix_end(&prefix);
        for other in ["ep_", "ep_b", "ep_a\u{0}", "ep_ab", "ep_\u{ff}"] {
            let k = attempt_key(other, Position::new(1_500, 0, 1)).unwrap();
            assert!(
                !(k >= prefix && k < end),
                "{other:?} falls inside ep_a's range"
            );
        }
        assert!(a_old >= prefix && a_old < end);
    }

    #[test]
    fn positions_round_trip_through_keys_and_cursors() {
        let p = Position::new(1_773_585_000_123, 3, 42);
        assert_eq!(p.at_ms(), 1_773_585_000_123);
        let key = delivery_key("ep_1", "msg_1", p).unwrap();
        assert_eq!(position_of_key(&key), Some(p));
        assert_eq!(Position::from_cursor(&p.to_cursor()), Some(p));
        assert_eq!(Position::from_cursor("not a cursor!"), None);
        assert_eq!(Position::from_cursor("AAAA"), None, "wrong length");
        assert!(key_after(&endpoint_prefix("ep_1").unwrap(), p) > attempt_key("ep_1", p).unwrap());
    }

    #[test]
    fn until_starts_the_scan_at_that_time() {
        let prefix = endpoint_prefix("ep_1").unwrap();
        let start = key_at_or_before(&prefix, 2_000);
        assert!(attempt_key("ep_1", Position::new(2_001, 0, 0)).unwrap() < start);
        assert!(attempt_key("ep_1", Position::new(2_000, 0, 0)).unwrap() >= start);
        assert!(attempt_key("ep_1", Position::new(1_999, 0, 0)).unwrap() >= start);
    }

    #[test]
    fn queries_filter_on_outcome_type_delivery_and_account() {
        let r = crate::records::attempt::tests::sample();
        let q = |f: &dyn Fn(&mut LogQuery)| {
            let mut q = LogQuery::default();
            f(&mut q);
            q.keeps(&r)
        };
        assert!(q(&|_| {}));
        assert!(q(&|q| q.outcome = Some("retry_scheduled".into())));
        assert!(!q(&|q| q.outcome = Some("delivered".into())));
        assert!(q(&|q| q.event_type = Some("license.created".into())));
        assert!(!q(&|q| q.event_type = Some("payment.failed".into())));
        assert!(q(&|q| q.delivery_id = Some("msg_1".into())));
        assert!(!q(&|q| q.delivery_id = Some("msg_2".into())));
        assert!(!q(&|q| q.account_id = Some("acc_other".into())));
    }
}
