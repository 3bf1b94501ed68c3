//! The circuit breaker: an endpoint that fails many attempts in a row is disabled, so a dead
//! receiver stops consuming send slots and retry capacity until its owner re-enables it.
//!
//! Pure bookkeeping; the caller disables the endpoint (writes it back to the subscriptions
//! topic and sends the `endpoint.disabled` notice) when told [`Trip::Open`].

use std::collections::HashMap;
use std::num::NonZeroU32;

use crate::ids::EndpointId;

/// What one more failure did to the endpoint's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// The run of failures has reached the threshold: disable the endpoint. Reported for
    /// every failure from there on until the run ends (a success, [`CircuitBreaker::forget`],
    /// or a new status epoch), so a disabling that did not happen (another writer won, the
    /// endpoint was re-enabled, the write failed) is tried again by the next failure.
    Open,
    /// Still below the threshold.
    Closed { consecutive_failures: u32 },
}

/// Ten consecutive failures: with the default retry tiers that is several deliveries' worth
/// of failures, not one unlucky delivery.
pub const DEFAULT_THRESHOLD: NonZeroU32 = match NonZeroU32::new(10) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Consecutive failed attempts per endpoint, within one status epoch.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: NonZeroU32,
    /// Only endpoints whose latest attempt failed have an entry, so the map stays as small as
    /// the set of currently failing endpoints. The epoch is the endpoint's status epoch the
    /// count belongs to: re-enabling (or any other status change) starts a new count.
    failures: HashMap<EndpointId, (i64, u32)>,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD)
    }
}

impl CircuitBreaker {
    pub fn new(threshold: NonZeroU32) -> Self {
        Self {
            threshold,
            failures: HashMap::new(),
        }
    }

    pub fn threshold(&self) -> NonZeroU32 {
        self.threshold
    }

    /// A 2xx from the endpoint: its run of failures is over.
    pub fn record_success(&mut self, id: &EndpointId) {
        self.failures.remove(id);
    }

    /// One more failed attempt at an endpoint whose status epoch is `epoch`.
    pub fn record_failure(&mut self, id: &EndpointId, epoch: i64) -> Trip {
        let entry = self.failures.entry(id.clone()).or_insert((epoch, 0));
        if entry.0 != epoch {
            *entry = (epoch, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 >= self.threshold.get() {
            Trip::Open
        } else {
            Trip::Closed {
                consecutive_failures: entry.1,
            }
        }
    }

    /// Drops the endpoint's count: after a disabling was attempted (whatever its result:
    /// disabled, lost to another writer, endpoint deleted, write failed), so counting starts
    /// over.
    pub fn forget(&mut self, id: &EndpointId) {
        self.failures.remove(id);
    }

    /// The endpoint's current run of failures.
    pub fn consecutive_failures(&self, id: &EndpointId) -> u32 {
        self.failures.get(id).map_or(0, |&(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opens(breaker: &mut CircuitBreaker, id: &EndpointId, failures: u32) -> Vec<u32> {
        (1..=failures)
            .filter(|_| breaker.record_failure(id, 0) == Trip::Open)
            .collect()
    }

    #[test]
    fn ten_failures_trip_once() {
        let mut b = CircuitBreaker::default();
        let id = EndpointId::from("ep_a");
        for n in 1..10 {
            assert_eq!(
                b.record_failure(&id, 0),
                Trip::Closed {
                    consecutive_failures: n
                }
            );
        }
        assert_eq!(b.record_failure(&id, 0), Trip::Open);
        assert_eq!(b.consecutive_failures(&id), 10);
    }

    #[test]
    fn stays_open_until_the_disabling_is_done_so_a_lost_one_is_retried() {
        let mut b = CircuitBreaker::new(NonZeroU32::new(3).unwrap());
        let id = EndpointId::from("ep_a");
        assert_eq!(opens(&mut b, &id, 5), vec![3, 4, 5]);
        // The caller attempted the disabling: counting starts over, whatever its result.
        b.forget(&id);
        assert_eq!(opens(&mut b, &id, 3), vec![3]);
    }

    #[test]
    fn a_new_status_epoch_starts_a_new_count() {
        let mut b = CircuitBreaker::new(NonZeroU32::new(3).unwrap());
        let id = EndpointId::from("ep_a");
        b.record_failure(&id, 0);
        b.record_failure(&id, 0);
        // Disabled and re-enabled meanwhile (epoch 2): the old run does not carry over.
        assert_eq!(
            b.record_failure(&id, 2),
            Trip::Closed {
                consecutive_failures: 1
            }
        );
        assert_eq!(
            b.record_failure(&id, 2),
            Trip::Closed {
                consecutive_failures: 2
            }
        );
        assert_eq!(b.record_failure(&id, 2), Trip::Open);
    }

    #[test]
    fn a_success_in_between_resets_the_count() {
        let mut b = CircuitBreaker::default();
        let id = EndpointId::from("ep_a");
        assert!(opens(&mut b, &id, 9).is_empty());
        b.record_success(&id);
        assert_eq!(b.consecutive_failures(&id), 0);
        assert!(
            opens(&mut b, &id, 9).is_empty(),
            "18 failures, but not 10 in a row"
        );
        assert_eq!(opens(&mut b, &id, 1).len(), 1);
    }

    #[test]
    fn endpoints_are_counted_separately() {
        let mut b = CircuitBreaker::default();
        let a = EndpointId::from("ep_a");
        let other = EndpointId::from("ep_b");
        assert!(opens(&mut b, &a, 5).is_empty());
        assert!(opens(&mut b, &other, 9).is_empty());
        b.record_success(&a);
        assert_eq!(
            opens(&mut b, &other, 1).len(),
            1,
            "a's success does not reset b"
        );
    }

    #[test]
    fn forgetting_starts_afresh_after_re_enabling() {
        let mut b = CircuitBreaker::new(NonZeroU32::new(3).unwrap());
        let id = EndpointId::from("ep_a");
        assert_eq!(opens(&mut b, &id, 3), vec![3]);
        b.forget(&id);
        // Re-enabled: it may trip again, after another full run.
        assert_eq!(opens(&mut b, &id, 3), vec![3]);
    }

    #[test]
    fn a_threshold_of_one_trips_on_the_first_failure() {
        let mut b = CircuitBreaker::new(NonZeroU32::MIN);
        assert_eq!(b.record_failure(&EndpointId::from("ep_a"), 0), Trip::Open);
    }
}
