//! Commit metadata that remembers what settled past the committed offset. Pure.
//!
//! A partition can only be committed up to its lowest unsettled record, yet deliveries settle
//! out of order: a slow endpoint holds offset 100 while the records after it are long
//! delivered. After a crash or a rebalance the next owner starts at 100 and, without more to
//! go on, sends 101… again. So every commit carries, in Kafka's per-partition commit
//! metadata, the highest offset read and which offsets after the committed one are still
//! unsettled; the next owner reads it back ([`Resume`]) and skips every other offset up to
//! that highest one. Duplicates after a crash shrink to what settled since the last commit.
//!
//! Format: `hr1.` then unpadded URL-safe base64 of varints: `last - committed`, the number
//! `n` of unsettled offsets listed, then each listed offset as the gap from the previous one
//! (the first from `committed`). It is kept under [`MAX_LEN`] characters (brokers refuse
//! commit metadata over `offset.metadata.max.bytes`, 4096 by default): when the list does not
//! fit, `last` is lowered to just before the first offset left out, so what is claimed
//! stays true.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Prefix of hookrelay's commit metadata; anything else (another tool's) is ignored.
const PREFIX: &str = "hr1.";

/// Longest metadata written, in characters, well under the broker default of 4096.
pub const MAX_LEN: usize = 3_000;

/// What a previous owner settled past its committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    committed: i64,
    last: i64,
    /// Increasing, each in `(committed, last]`.
    unsettled: Vec<i64>,
}

impl Resume {
    /// True when `offset` is known to be settled: after the committed offset, at most the
    /// last one read, and not listed as unsettled.
    pub fn is_settled(&self, offset: i64) -> bool {
        offset > self.committed
            && offset <= self.last
            && self.unsettled.binary_search(&offset).is_err()
    }

    /// The highest offset this resume knows about; nothing past it is skipped.
    pub fn last(&self) -> i64 {
        self.last
    }
}

/// Encodes the state of a partition whose lowest unsettled offset is `committed`: `last` is
/// the highest offset read, `unsettled` the offsets after `committed` that still have
/// unsettled deliveries (increasing). Empty when nothing past `committed` is settled.
pub fn encode(committed: i64, last: i64, unsettled: impl IntoIterator<Item = i64>) -> String {
    if last <= committed {
        return String::new();
    }
    let mut listed: Vec<i64> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut claimed_last = last;
    let mut previous = committed;
    // Bytes of base64 we may use: 4 characters per 3 bytes.
    let budget = (MAX_LEN - PREFIX.len()) / 4 * 3 - 2 * 10;
    for offset in unsettled {
        if offset <= previous || offset > last {
            continue;
        }
        let before = body.len();
        put_varint(&mut body, (offset - previous) as u64);
        if body.len() > budget {
            body.truncate(before);
            // Claim nothing from the first offset that did not fit.
            claimed_last = offset - 1;
            break;
        }
        listed.push(offset);
        previous = offset;
    }
    let span = claimed_last - committed;
    if span <= 0 || span as usize == listed.len() {
        // Nothing past `committed` is known settled: plain offset commit.
        return String::new();
    }
    let mut head = Vec::with_capacity(20 + body.len());
    put_varint(&mut head, span as u64);
    put_varint(&mut head, listed.len() as u64);
    head.extend_from_slice(&body);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(head))
}

/// Reads metadata written by [`encode`] for a commit at `committed`. Anything else (empty,
/// another tool's, corrupt) gives `None`: the partition is then simply read from the
/// committed offset.
pub fn decode(committed: i64, metadata: &str) -> Option<Resume> {
    let encoded = metadata.strip_prefix(PREFIX)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let mut cursor = bytes.as_slice();
    let span = i64::try_from(get_varint(&mut cursor)?).ok()?;
    let count = usize::try_from(get_varint(&mut cursor)?).ok()?;
    let last = committed.checked_add(span)?;
    // Each listed offset takes at least one byte: a count beyond that is corrupt.
    if count > cursor.len() {
        return None;
    }
    let mut unsettled = Vec::with_capacity(count);
    let mut previous = committed;
    for _ in 0..count {
        let gap = i64::try_from(get_varint(&mut cursor)?).ok()?;
        if gap == 0 {
            return None;
        }
        let offset = previous.checked_add(gap)?;
        if offset > last {
            return None;
        }
        unsettled.push(offset);
        previous = offset;
    }
    if !cursor.is_empty() {
        return None;
    }
    Some(Resume {
        committed,
        last,
        unsettled,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(cursor: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = cursor.split_first()?;
        *cursor = rest;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn nothing_settled_past_the_commit_needs_no_metadata() {
        assert_eq!(encode(10, 9, []), "");
        assert_eq!(encode(10, 10, []), "");
        // Everything after 10 is still unsettled too.
        assert_eq!(encode(10, 12, [11, 12]), "");
    }

    #[test]
    fn settled_offsets_past_the_commit_are_skipped_and_nothing_else() {
        let m = encode(100, 105, [102, 104]);
        assert!(m.starts_with("hr1."), "{m}");
        let r = decode(100, &m).expect("decodes");
        let settled: Vec<i64> = (95..110).filter(|&o| r.is_settled(o)).collect();
        assert_eq!(settled, vec![101, 103, 105]);
        assert_eq!(r.last(), 105);
    }

    #[test]
    fn foreign_or_corrupt_metadata_is_ignored() {
        for m in ["", "hello", "hr1.", "hr1.!!!", "hr2.AAA", "hr1.gA"] {
            assert_eq!(decode(5, m), None, "{m:?}");
        }
        // Valid base64 whose count promises more than it holds.
        let mut b = Vec::new();
        put_varint(&mut b, 10);
        put_varint(&mut b, 50);
        assert_eq!(
            decode(0, &format!("hr1.{}", URL_SAFE_NO_PAD.encode(&b))),
            None
        );
    }

    #[test]
    fn a_list_too_long_for_the_broker_keeps_only_true_claims() {
        // Every other offset unsettled over a long span: far too many to list.
        let unsettled: Vec<i64> = (0..20_000).map(|i| 1_000 + 2 * i).collect();
        let m = encode(999, 41_000, unsettled.iter().copied());
        assert!(m.len() <= MAX_LEN, "{} characters", m.len());
        let r = decode(999, &m).expect("decodes");
        assert!(r.last() < 41_000, "the claim is cut short");
        for o in 999..=41_000 {
            if r.is_settled(o) {
                assert!(o % 2 == 1, "{o} is unsettled but claimed settled");
            }
        }
        assert!(
            r.is_settled(1_001),
            "the start of the range is still skipped"
        );
    }

    proptest! {
        /// Whatever the state, a decoded resume never calls an unsettled (or unread) offset
        /// settled, and within what it claims it calls every settled one settled.
        #[test]
        fn resume_claims_exactly_the_settled_offsets(
            committed in 0i64..1_000_000,
            span in 0i64..5_000,
            unsettled_mask in prop::collection::vec(any::<bool>(), 0..5_000),
        ) {
            let last = committed + span;
            let unsettled: BTreeSet<i64> = unsettled_mask
                .iter()
                .enumerate()
                .filter(|&(_, &u)| u)
                .map(|(i, _)| committed + 1 + i as i64)
                .filter(|&o| o <= last)
                .collect();
            let m = encode(committed, last, unsettled.iter().copied());
            prop_assert!(m.len() <= MAX_LEN);
            match decode(committed, &m) {
                None => prop_assert!(m.is_empty()),
                Some(r) => {
                    prop_assert!(r.last() <= last);
                    for o in committed - 2..=last + 2 {
                        let truly = o > committed && o <= last && !unsettled.contains(&o);
                        if r.is_settled(o) {
                            prop_assert!(truly, "offset {} claimed settled", o);
                        } else if o <= r.last() {
                            prop_assert!(!truly || o <= committed, "offset {} settled but not claimed", o);
                        }
                    }
                }
            }
        }
    }
}
