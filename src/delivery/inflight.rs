//! The in-flight bound: how many deliveries are held in memory (queued for an endpoint,
//! being sent, or being written to a retry or dead-letter topic). Each holds an [`InFlight`]
//! guard that counts it until dropped, so no exit path (settled, handed off, dropped on a
//! revoke or at shutdown, a panicking task) can forget to release it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::IntGauge;

/// The shared count behind the guards; intake pauses while it is at its limit.
#[derive(Clone, Debug)]
pub struct InFlightCounter {
    count: Arc<AtomicUsize>,
    gauge: IntGauge,
}

impl InFlightCounter {
    /// A counter mirrored into `gauge` (`hookrelay_in_flight_deliveries`).
    pub fn new(gauge: IntGauge) -> Self {
        gauge.set(0);
        InFlightCounter {
            count: Arc::new(AtomicUsize::new(0)),
            gauge,
        }
    }

    /// Counts one more delivery in memory until the returned guard is dropped.
    pub fn enter(&self) -> InFlight {
        self.count.fetch_add(1, Ordering::AcqRel);
        self.gauge.inc();
        InFlight {
            counter: self.clone(),
        }
    }

    /// Deliveries in memory now.
    pub fn current(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// One delivery counted as in memory; dropping it releases the count.
#[derive(Debug)]
pub struct InFlight {
    counter: InFlightCounter,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counter.count.fetch_sub(1, Ordering::AcqRel);
        self.counter.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guard_releases_its_count_however_it_ends() {
        let gauge = IntGauge::new("g", "g").expect("gauge");
        let counter = InFlightCounter::new(gauge.clone());
        let a = counter.enter();
        let b = counter.enter();
        assert_eq!((counter.current(), gauge.get()), (2, 2));
        drop(a);
        // A guard moved into a task that panics is released by the unwind.
        let handle = std::thread::spawn(move || {
            let _b = b;
            panic!("a task failed");
        });
        assert!(handle.join().is_err());
        assert_eq!((counter.current(), gauge.get()), (0, 0));
    }
}
