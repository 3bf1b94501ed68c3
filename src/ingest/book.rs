//! The offset book: for every assigned partition of every topic hookrelay consumes (the
//! input topic and the retry tiers), which offsets are still unsettled, and the offset it is
//! safe to commit. Deliveries carry a [`Settle`] handle; settling the last delivery of an
//! offset may move the partition's committable offset, which is then stored with
//! librdkafka (`enable.auto.offset.store=false`) and committed by its auto-commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::{Offset, TopicPartitionList};

use crate::ingest::offsets::PartitionOffsets;

/// One assignment of one partition to this process. A rebalance that revokes the
/// partition marks the lease revoked; settlements of deliveries read under an older lease
/// are then ignored (the partition's new owner will read them again).
#[derive(Debug)]
pub struct Lease {
    revoked: AtomicBool,
}

impl Lease {
    fn new() -> Arc<Self> {
        Arc::new(Lease {
            revoked: AtomicBool::new(false),
        })
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

struct Slot {
    lease: Arc<Lease>,
    offsets: PartitionOffsets,
    stored: Option<i64>,
}

/// Stores an offset with the consumer. Abstracted so the book is tested without Kafka.
pub trait OffsetStore: Send + Sync {
    fn store(&self, tpl: &TopicPartitionList);
}

#[derive(Default)]
pub struct OffsetBook {
    slots: Mutex<HashMap<TopicPartition, Slot>>,
    store: std::sync::OnceLock<Arc<dyn OffsetStore>>,
}

impl OffsetBook {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Where committable offsets go; set once the consumer exists.
    pub fn set_store(&self, store: Arc<dyn OffsetStore>) {
        let _ = self.store.set(store);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TopicPartition, Slot>> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A partition was assigned: start a fresh lease.
    pub fn assign(&self, tp: TopicPartition) -> Arc<Lease> {
        let lease = Lease::new();
        let old = self.lock().insert(
            tp,
            Slot {
                lease: lease.clone(),
                offsets: PartitionOffsets::new(),
                stored: None,
            },
        );
        if let Some(old) = old {
            old.lease.revoked.store(true, Ordering::Release);
        }
        lease
    }

    /// A partition was revoked: returns its committable offset (to commit now) and ends the
    /// lease, so later settlements for it are ignored.
    pub fn revoke(&self, tp: &TopicPartition) -> Option<i64> {
        let slot = self.lock().remove(tp)?;
        slot.lease.revoked.store(true, Ordering::Release);
        slot.offsets.committable()
    }

    /// The current lease of a partition, if assigned.
    pub fn lease(&self, tp: &TopicPartition) -> Option<Arc<Lease>> {
        self.lock().get(tp).map(|s| s.lease.clone())
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
            // Read twice within one assignment (e.g. after a fetch reset): the first read
            // is still in flight and settles it.
            tracing::debug!(topic = %tp.topic, partition = tp.partition, offset, error = %e, "skipping a record read again");
            return None;
        }
        let lease = slot.lease.clone();
        let settled = pending == 0;
        let handle = Settle {
            book: self.clone(),
            tp: tp.clone(),
            lease,
            offset,
        };
        if settled {
            self.store_if_moved(tp, slot);
        }
        Some(handle)
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
            tracing::warn!(topic = %tp.topic, partition = tp.partition, offset, error = %e, "settling an offset the book does not track");
            return;
        }
        self.store_if_moved(tp, slot);
    }

    fn store_if_moved(&self, tp: &TopicPartition, slot: &mut Slot) {
        let Some(committable) = slot.offsets.committable() else {
            return;
        };
        if slot.stored == Some(committable) {
            return;
        }
        slot.stored = Some(committable);
        if let Some(store) = self.store.get() {
            let mut tpl = TopicPartitionList::new();
            if tpl
                .add_partition_offset(&tp.topic, tp.partition, Offset::Offset(committable))
                .is_ok()
            {
                store.store(&tpl);
            }
        }
    }

    /// The committable offsets of every assigned partition (for the final commit).
    pub fn committable(&self) -> Vec<(TopicPartition, i64)> {
        self.lock()
            .iter()
            .filter_map(|(tp, slot)| slot.offsets.committable().map(|o| (tp.clone(), o)))
            .collect()
    }

    /// Offsets read but not yet settled, over all partitions.
    pub fn unsettled(&self) -> usize {
        self.lock().values().map(|s| s.offsets.in_flight()).sum()
    }
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
        write!(
            f,
            "Settle({}:{}@{})",
            self.tp.topic, self.tp.partition, self.offset
        )
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

    pub fn origin(&self) -> (&str, i32, i64) {
        (&self.tp.topic, self.tp.partition, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, i32, i64)>>);

    impl OffsetStore for Recorder {
        fn store(&self, tpl: &TopicPartitionList) {
            let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            for e in tpl.elements() {
                if let Offset::Offset(o) = e.offset() {
                    v.push((e.topic().to_owned(), e.partition(), o));
                }
            }
        }
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition {
            topic: Arc::from("t"),
            partition: p,
        }
    }

    #[test]
    fn stores_the_lowest_unsettled_offset_as_deliveries_complete_out_of_order() {
        let book = OffsetBook::new();
        let rec = Arc::new(Recorder::default());
        book.set_store(rec.clone());
        book.assign(tp(0));
        let a = book.track(&tp(0), 10, 2).expect("assigned");
        let b = book.track(&tp(0), 11, 1).expect("assigned");
        let _empty = book.track(&tp(0), 12, 0).expect("assigned");
        b.settle();
        assert!(
            rec.0.lock().expect("lock").iter().all(|(_, _, o)| *o <= 10),
            "nothing past the unsettled offset 10 is stored"
        );
        a.clone().settle();
        a.settle();
        assert_eq!(
            rec.0.lock().expect("lock").last(),
            Some(&("t".to_owned(), 0, 13))
        );
    }

    #[test]
    fn settlements_after_a_revoke_are_ignored() {
        let book = OffsetBook::new();
        let rec = Arc::new(Recorder::default());
        book.set_store(rec.clone());
        book.assign(tp(1));
        let s = book.track(&tp(1), 5, 1).expect("assigned");
        assert_eq!(book.revoke(&tp(1)), Some(5));
        assert!(s.is_revoked());
        book.assign(tp(1));
        s.settle();
        assert!(rec.0.lock().expect("lock").is_empty());
        assert!(book.track(&tp(2), 1, 1).is_none(), "unassigned partition");
    }
}
