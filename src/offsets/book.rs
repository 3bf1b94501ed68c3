//! The offset book: for every assigned partition of every topic hookrelay consumes (the
//! input topic, the retry tiers and the requests topic), which offsets are still unsettled,
//! the offset it is safe to commit, and the commit metadata that lets the next owner skip
//! what already settled past it (see [`metadata`](super::metadata)).
//!
//! Deliveries carry a [`Settle`] handle. The book is plain bookkeeping behind a mutex; the
//! consumer commits [`OffsetBook::snapshot`]s (periodically, on revoke and at shutdown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::metadata::{self, Resume};
use super::tracker::PartitionOffsets;

/// One assignment of one partition to this process. Revoking the partition cancels the
/// lease: settlements of deliveries read under it are then ignored, and requests it owns
/// stop (the partition's new owner reads those records again).
#[derive(Debug, Default)]
pub struct Lease {
    revoked: CancellationToken,
}

impl Lease {
    fn new() -> Arc<Self> {
        Arc::new(Lease::default())
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.is_cancelled()
    }

    /// Resolves when the partition is revoked.
    pub fn revoked(&self) -> WaitForCancellationFuture<'_> {
        self.revoked.cancelled()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> Self {
        TopicPartition {
            topic: Arc::from(topic),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

struct Slot {
    lease: Arc<Lease>,
    offsets: PartitionOffsets,
    /// What the previous owner settled past its commit; consulted for offsets up to its
    /// `last`, then dropped.
    resume: Option<Resume>,
}

/// What a partition may be committed at: the offset (Kafka's "next to read") and the
/// metadata for its next owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitPoint {
    pub offset: i64,
    pub metadata: String,
}

/// What [`OffsetBook::admit`] says about a record just read.
#[derive(Debug)]
pub enum Admit {
    /// Handle it; track it with [`OffsetBook::track`].
    New,
    /// The previous owner settled it (see [`Resume`]); it was tracked as settled: skip it.
    AlreadySettled,
    /// Not ours (partition not assigned, or read twice): drop it untracked.
    NotOurs,
}

#[derive(Default)]
pub struct OffsetBook {
    slots: Mutex<HashMap<TopicPartition, Slot>>,
}

impl OffsetBook {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TopicPartition, Slot>> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A partition was assigned: start a fresh lease. `resume` is what the committed
    /// offset's metadata says the previous owner settled past it.
    pub fn assign(&self, tp: TopicPartition, resume: Option<Resume>) -> Arc<Lease> {
        let lease = Lease::new();
        let old = self.lock().insert(
            tp,
            Slot {
                lease: lease.clone(),
                offsets: PartitionOffsets::new(),
                resume,
            },
        );
        if let Some(old) = old {
            old.lease.revoked.cancel();
        }
        lease
    }

    /// A partition was revoked: returns its commit point (to commit now) and cancels the
    /// lease, so later settlements for it are ignored and its requests stop.
    pub fn revoke(&self, tp: &TopicPartition) -> Option<CommitPoint> {
        let slot = self.lock().remove(tp)?;
        slot.lease.revoked.cancel();
        commit_point(&slot)
    }

    /// Shutdown's drain timed out: ends every lease, so requests still in flight stop
    /// (unsettled: their records are read again by the next owner), but keeps the
    /// partitions, so the final commit still covers everything settled before.
    pub fn abandon_all(&self) {
        for slot in self.lock().values() {
            slot.lease.revoked.cancel();
        }
    }

    /// Revokes every partition (the consumer is closing).
    pub fn revoke_all(&self) {
        for (_, slot) in self.lock().drain() {
            slot.lease.revoked.cancel();
        }
    }

    /// The current lease of a partition, if assigned.
    pub fn lease(&self, tp: &TopicPartition) -> Option<Arc<Lease>> {
        self.lock().get(tp).map(|s| s.lease.clone())
    }

    /// Decides what to do with a record just read at `offset`.
    pub fn admit(&self, tp: &TopicPartition, offset: i64) -> Admit {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(tp) else {
            return Admit::NotOurs;
        };
        if slot
            .offsets
            .last_tracked()
            .is_some_and(|last| offset <= last)
        {
            // Read twice within one assignment (a seek back, a fetch reset): the first read
            // is still tracked and settles it.
            return Admit::NotOurs;
        }
        let Some(resume) = &slot.resume else {
            return Admit::New;
        };
        if offset > resume.last() {
            slot.resume = None;
            return Admit::New;
        }
        if resume.is_settled(offset) {
            // Offsets increase, so this cannot fail; if it did the record is simply handled.
            if slot.offsets.track(offset, 0).is_ok() {
                return Admit::AlreadySettled;
            }
        }
        Admit::New
    }

    /// Records that `offset` produced `pending` deliveries. Returns the handle each of them
    /// settles with, or `None` if the partition is not (or no longer) assigned or the offset
    /// is already tracked: the caller then drops the record.
    pub fn track(
        self: &Arc<Self>,
        tp: &TopicPartition,
        offset: i64,
        pending: u32,
    ) -> Option<Settle> {
        let mut slots = self.lock();
        let slot = slots.get_mut(tp)?;
        if let Err(e) = slot.offsets.track(offset, pending) {
            tracing::debug!(%tp, offset, error = %e, "skipping a record read again");
            return None;
        }
        Some(Settle {
            book: self.clone(),
            tp: tp.clone(),
            lease: slot.lease.clone(),
            offset,
        })
    }

    fn settle(&self, tp: &TopicPartition, lease: &Arc<Lease>, offset: i64) {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(tp) else {
            return;
        };
        if !Arc::ptr_eq(&slot.lease, lease) {
            return;
        }
        if let Err(e) = slot.offsets.settle(offset) {
            tracing::warn!(%tp, offset, error = %e, "settling an offset the book does not track");
        }
    }

    /// The commit point of every assigned partition that has one.
    pub fn snapshot(&self) -> Vec<(TopicPartition, CommitPoint)> {
        self.lock()
            .iter()
            .filter_map(|(tp, slot)| commit_point(slot).map(|c| (tp.clone(), c)))
            .collect()
    }

    /// Offsets read but not yet settled, over all partitions.
    pub fn unsettled(&self) -> usize {
        self.lock().values().map(|s| s.offsets.in_flight()).sum()
    }
}

fn commit_point(slot: &Slot) -> Option<CommitPoint> {
    let offset = slot.offsets.committable()?;
    let last = slot.offsets.last_tracked()?;
    Some(CommitPoint {
        offset,
        metadata: metadata::encode(offset, last, slot.offsets.unsettled_after_committable()),
    })
}

/// Settles one delivery of one input offset. Settling is explicit: a delivery that is
/// dropped without settling keeps its offset uncommitted (so it is read again), which is the
/// safe failure.
#[derive(Clone)]
pub struct Settle {
    book: Arc<OffsetBook>,
    tp: TopicPartition,
    lease: Arc<Lease>,
    offset: i64,
}

impl std::fmt::Debug for Settle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Settle({}@{})", self.tp, self.offset)
    }
}

impl Settle {
    pub fn settle(self) {
        self.book.settle(&self.tp, &self.lease, self.offset);
    }

    /// True once the partition this delivery was read from has been revoked: its new owner
    /// will deliver it, so sending it here would only duplicate.
    pub fn is_revoked(&self) -> bool {
        self.lease.is_revoked()
    }

    /// The lease the delivery was read under.
    pub fn lease(&self) -> &Arc<Lease> {
        &self.lease
    }

    pub fn origin(&self) -> (&str, i32, i64) {
        (&self.tp.topic, self.tp.partition, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn commits_the_lowest_unsettled_offset_and_names_what_settled_past_it() {
        let book = OffsetBook::new();
        book.assign(tp(0), None);
        let a = book.track(&tp(0), 10, 2).expect("assigned");
        let b = book.track(&tp(0), 11, 1).expect("assigned");
        let _empty = book.track(&tp(0), 12, 0).expect("assigned");
        let c = book.track(&tp(0), 13, 1).expect("assigned");
        b.settle();
        let (_, point) = book.snapshot().pop().expect("a commit point");
        assert_eq!(point.offset, 10);
        // 11 and 12 are settled, 13 is not: the next owner may skip 11 and 12 only.
        let resume = metadata::decode(10, &point.metadata).expect("metadata");
        assert!(resume.is_settled(11) && resume.is_settled(12) && !resume.is_settled(13));
        a.clone().settle();
        a.settle();
        c.settle();
        let (_, point) = book.snapshot().pop().expect("a commit point");
        assert_eq!(
            point,
            CommitPoint {
                offset: 14,
                metadata: String::new()
            }
        );
    }

    #[test]
    fn a_new_owner_skips_what_the_old_one_settled() {
        let old = OffsetBook::new();
        old.assign(tp(0), None);
        let held = old.track(&tp(0), 5, 1).expect("assigned");
        for o in 6..9 {
            old.track(&tp(0), o, 1).expect("assigned").settle();
        }
        let (_, point) = old.revoke(&tp(0)).map(|p| (tp(0), p)).expect("point");
        assert!(held.is_revoked());

        let new = OffsetBook::new();
        new.assign(tp(0), metadata::decode(point.offset, &point.metadata));
        assert!(matches!(new.admit(&tp(0), 5), Admit::New));
        new.track(&tp(0), 5, 1).expect("assigned");
        for o in 6..9 {
            assert!(
                matches!(new.admit(&tp(0), o), Admit::AlreadySettled),
                "offset {o}"
            );
        }
        assert!(matches!(new.admit(&tp(0), 9), Admit::New));
        assert!(matches!(new.admit(&tp(0), 7), Admit::NotOurs), "read twice");
    }

    #[test]
    fn settlements_after_a_revoke_are_ignored() {
        let book = OffsetBook::new();
        book.assign(tp(1), None);
        let s = book.track(&tp(1), 5, 1).expect("assigned");
        assert_eq!(book.revoke(&tp(1)).map(|p| p.offset), Some(5));
        assert!(s.is_revoked());
        book.assign(tp(1), None);
        s.settle();
        assert!(
            book.snapshot().is_empty(),
            "nothing tracked under the new lease"
        );
        assert!(book.track(&tp(2), 1, 1).is_none(), "unassigned partition");
    }

    #[test]
    fn abandoning_ends_leases_but_still_commits_what_settled_before() {
        let book = OffsetBook::new();
        book.assign(tp(4), None);
        book.track(&tp(4), 7, 1).expect("assigned").settle();
        let in_flight = book.track(&tp(4), 8, 1).expect("assigned");
        book.abandon_all();
        assert!(
            in_flight.is_revoked(),
            "requests in flight see the lease end and stop"
        );
        let (_, point) = book.snapshot().pop().expect("the partition is still ours");
        assert_eq!(point.offset, 8, "7 settled before; 8 is read again");
    }

    #[tokio::test]
    async fn revoking_wakes_whoever_waits_on_the_lease() {
        let book = OffsetBook::new();
        let lease = book.assign(tp(3), None);
        let waiter = tokio::spawn(async move { lease.revoked().await });
        book.revoke_all();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
