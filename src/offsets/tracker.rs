//! At-least-once offset bookkeeping for one input partition.
//!
//! An input record fans out into zero or more deliveries that settle out of order (many
//! endpoints, batching, retries handed to delay topics). The partition may only be committed
//! up to the lowest record that still has an unsettled delivery, so a crash re-reads that
//! record instead of losing it. This tracker answers "what may be committed now?".

use std::collections::VecDeque;

/// A mistake in how the tracker was driven. Neither corrupts the tracker: the call is
/// rejected and the state is as before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    /// Offsets must be tracked in increasing order, as the consumer reads them. A lower one
    /// means the partition was re-seeked (e.g. after a rebalance) and its tracker should have
    /// been replaced.
    #[error("offset {offset} tracked after {last}; offsets must increase")]
    NotIncreasing { offset: i64, last: i64 },
    /// Settling an offset that has no unsettled delivery: never tracked, already fully
    /// settled, or settled more times than it had deliveries.
    #[error("offset {offset} has no unsettled delivery")]
    NotInFlight { offset: i64 },
}

/// Tracks which offsets of one partition still have unsettled deliveries.
///
/// Offsets arrive in increasing order, so the unsettled ones form a sorted queue: settling
/// is a binary search (O(log n)), and the committable offset is the queue's head (O(1)).
/// Entries that reach zero in the middle stay until they reach the head, where they are
/// popped (amortized O(1) per offset).
#[derive(Debug, Default, Clone)]
pub struct PartitionOffsets {
    /// (offset, deliveries still unsettled), increasing by offset. Offsets tracked with no
    /// deliveries are never stored; the head always has deliveries pending.
    pending: VecDeque<(i64, u32)>,
    /// The highest offset tracked, settled or not.
    last: Option<i64>,
    /// How many stored entries still have deliveries pending (zeros wait to be popped).
    unsettled: usize,
}

impl PartitionOffsets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `offset` produced `pending` deliveries. Zero (no subscriber, or an
    /// invalid record already routed elsewhere) settles it at once.
    pub fn track(&mut self, offset: i64, pending: u32) -> Result<(), OffsetError> {
        if let Some(last) = self.last
            && offset <= last
        {
            return Err(OffsetError::NotIncreasing { offset, last });
        }
        self.last = Some(offset);
        if pending > 0 {
            self.pending.push_back((offset, pending));
            self.unsettled += 1;
        }
        Ok(())
    }

    /// Records that one delivery of `offset` settled (2xx, or durably handed to a retry or
    /// dead-letter topic).
    pub fn settle(&mut self, offset: i64) -> Result<(), OffsetError> {
        let index = self
            .pending
            .binary_search_by_key(&offset, |&(o, _)| o)
            .map_err(|_| OffsetError::NotInFlight { offset })?;
        let Some(entry) = self.pending.get_mut(index) else {
            return Err(OffsetError::NotInFlight { offset });
        };
        if entry.1 == 0 {
            return Err(OffsetError::NotInFlight { offset });
        }
        entry.1 -= 1;
        if entry.1 == 0 {
            self.unsettled -= 1;
            while self.pending.front().is_some_and(|&(_, n)| n == 0) {
                self.pending.pop_front();
            }
        }
        Ok(())
    }

    /// The offset to commit, in Kafka's sense (the next offset to read): the lowest offset
    /// with an unsettled delivery, or one past the last tracked offset when all are settled.
    /// `None` until something is tracked.
    pub fn committable(&self) -> Option<i64> {
        match self.pending.front() {
            Some(&(offset, _)) => Some(offset),
            None => self.last.map(|last| last.saturating_add(1)),
        }
    }

    /// How many offsets still have unsettled deliveries.
    pub fn in_flight(&self) -> usize {
        self.unsettled
    }

    /// The highest offset tracked so far.
    pub fn last_tracked(&self) -> Option<i64> {
        self.last
    }

    /// The offsets after the committable one that still have unsettled deliveries, in
    /// increasing order (for the commit metadata, see [`super::metadata`]).
    pub fn unsettled_after_committable(&self) -> impl Iterator<Item = i64> + '_ {
        self.pending
            .iter()
            .skip(1)
            .filter(|&&(_, n)| n > 0)
            .map(|&(o, _)| o)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn nothing_tracked_commits_nothing() {
        let t = PartitionOffsets::new();
        assert_eq!(t.committable(), None);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn commits_up_to_the_lowest_unsettled_offset() {
        let mut t = PartitionOffsets::new();
        t.track(10, 1).unwrap();
        t.track(11, 2).unwrap();
        t.track(12, 1).unwrap();
        assert_eq!(t.committable(), Some(10));
        assert_eq!(t.in_flight(), 3);

        // Later offsets settling first move nothing.
        t.settle(12).unwrap();
        t.settle(11).unwrap();
        assert_eq!(t.committable(), Some(10));

        // The head settles: 11 still has a delivery out.
        t.settle(10).unwrap();
        assert_eq!(t.committable(), Some(11));
        t.settle(11).unwrap();
        assert_eq!(t.committable(), Some(13));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn lists_what_is_unsettled_behind_the_committable_offset() {
        let mut t = PartitionOffsets::new();
        for o in 10..15 {
            t.track(o, 1).unwrap();
        }
        t.settle(11).unwrap();
        t.settle(13).unwrap();
        assert_eq!(t.committable(), Some(10));
        assert_eq!(
            t.unsettled_after_committable().collect::<Vec<_>>(),
            vec![12, 14]
        );
    }

    #[test]
    fn offsets_without_deliveries_settle_at_once() {
        let mut t = PartitionOffsets::new();
        t.track(5, 0).unwrap();
        assert_eq!(t.committable(), Some(6));
        t.track(6, 1).unwrap();
        t.track(7, 0).unwrap();
        assert_eq!(t.committable(), Some(6));
        t.settle(6).unwrap();
        assert_eq!(t.committable(), Some(8));
    }

    #[test]
    fn gaps_between_offsets_are_fine() {
        // Compaction and transaction markers leave gaps in a partition's offsets.
        let mut t = PartitionOffsets::new();
        t.track(100, 1).unwrap();
        t.track(250, 1).unwrap();
        t.settle(100).unwrap();
        assert_eq!(t.committable(), Some(250));
        t.settle(250).unwrap();
        assert_eq!(t.committable(), Some(251));
    }

    #[test]
    fn misuse_is_an_error_and_changes_nothing() {
        let mut t = PartitionOffsets::new();
        t.track(3, 1).unwrap();
        assert_eq!(
            t.track(3, 1),
            Err(OffsetError::NotIncreasing { offset: 3, last: 3 })
        );
        assert_eq!(
            t.track(2, 1),
            Err(OffsetError::NotIncreasing { offset: 2, last: 3 })
        );
        assert_eq!(t.settle(4), Err(OffsetError::NotInFlight { offset: 4 }));
        t.track(4, 2).unwrap();
        t.settle(4).unwrap();
        t.settle(4).unwrap();
        // Settled more often than it had deliveries, while still stored behind offset 3.
        assert_eq!(t.settle(4), Err(OffsetError::NotInFlight { offset: 4 }));
        assert_eq!(t.committable(), Some(3));
        assert_eq!(t.in_flight(), 1);
        t.settle(3).unwrap();
        assert_eq!(t.settle(3), Err(OffsetError::NotInFlight { offset: 3 }));
        assert_eq!(t.committable(), Some(5));
    }

    #[test]
    fn many_in_flight_offsets_settle_quickly() {
        // Half a million offsets settled newest first: quadratic work would take minutes.
        let mut t = PartitionOffsets::new();
        let n = 500_000;
        for o in 0..n {
            t.track(o, 1).unwrap();
        }
        for o in (1..n).rev() {
            t.settle(o).unwrap();
        }
        assert_eq!(t.committable(), Some(0));
        t.settle(0).unwrap();
        assert_eq!(t.committable(), Some(n));
    }

    /// A run: offsets with gaps and delivery counts, and an order to settle the deliveries in.
    fn run() -> impl Strategy<Value = (Vec<(i64, u32)>, Vec<usize>)> {
        prop::collection::vec((1i64..4, 0u32..4), 1..60).prop_flat_map(|steps| {
            let mut offset = 0;
            let tracked: Vec<(i64, u32)> = steps
                .into_iter()
                .map(|(gap, n)| {
                    offset += gap;
                    (offset, n)
                })
                .collect();
            // One settle token per delivery, naming its record by index.
            let tokens: Vec<usize> = tracked
                .iter()
                .enumerate()
                .flat_map(|(i, &(_, n))| std::iter::repeat_n(i, n as usize))
                .collect();
            (Just(tracked), Just(tokens).prop_shuffle())
        })
    }

    proptest! {
        /// Records are tracked lazily, just before their first settle, so tracking and
        /// settling interleave; every state is compared against a plain model.
        #[test]
        fn committable_is_the_lowest_unsettled_offset((tracked, order) in run()) {
            let mut t = PartitionOffsets::new();
            let mut model: BTreeMap<i64, u32> = BTreeMap::new();
            let mut next = 0;
            let mut previous: Option<i64> = None;

            let mut check = |t: &PartitionOffsets, model: &BTreeMap<i64, u32>, last: i64| {
                let lowest = model.iter().find(|&(_, &n)| n > 0).map(|(&o, _)| o);
                let c = t.committable().expect("something is tracked");
                // Never past an unsettled offset, and exactly the lowest one.
                prop_assert_eq!(c, lowest.unwrap_or(last + 1));
                prop_assert_eq!(t.in_flight(), model.values().filter(|&&n| n > 0).count());
                if let Some(p) = previous {
                    prop_assert!(c >= p, "committable went back from {} to {}", p, c);
                }
                previous = Some(c);
                Ok(())
            };

            for i in order {
                while next <= i {
                    let (offset, n) = tracked[next];
                    t.track(offset, n).unwrap();
                    model.insert(offset, n);
                    check(&t, &model, offset)?;
                    next += 1;
                }
                let offset = tracked[i].0;
                t.settle(offset).unwrap();
                if let Some(n) = model.get_mut(&offset) {
                    *n -= 1;
                }
                check(&t, &model, tracked[next - 1].0)?;
            }
            for &(offset, n) in &tracked[next..] {
                t.track(offset, n).unwrap();
                model.insert(offset, n);
            }
            let last = tracked[tracked.len() - 1].0;
            prop_assert_eq!(t.committable(), Some(last + 1));
            prop_assert_eq!(t.in_flight(), 0);
        }
    }
}
