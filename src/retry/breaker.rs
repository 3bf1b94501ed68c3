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
    /// This failure reached the threshold: disable the endpoint now. Reported once per run of
    /// failures, so the endpoint is disabled (and its owner notified) once.
    Open,
    /// Still below the threshold.
    Closed { consecutive_failures: u32 },
    /// Already past the threshold, e.g. attempts that were in flight when it tripped.
    AlreadyOpen,
}

/// Ten consecutive failures: with the default retry tiers that is several deliveries' worth
/// of failures, not one unlucky delivery.
pub const DEFAULT_THRESHOLD: NonZeroU32 = match NonZeroU32::new(10) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Consecutive failed attempts per endpoint.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: NonZeroU32,
    /// Only endpoints whose latest attempt failed have an entry, so the map stays as small as
    /// the set of currently failing endpoints.
    failures: HashMap<EndpointId, u32>,
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

    /// One more failed attempt.
    pub fn record_failure(&mut self, id: &EndpointId) -> Trip {
        let count = self.failures.entry(id.clone()).or_insert(0);
        *count = count.saturating_add(1);
        match (*count).cmp(&self.threshold.get()) {
            std::cmp::Ordering::Less => Trip::Closed {
                consecutive_failures: *count,
            },
            std::cmp::Ordering::Equal => Trip::Open,
            std::cmp::Ordering::Greater => Trip::AlreadyOpen,
        }
    }

    /// Drops the endpoint's count: after it was disabled (its remaining failures are moot) or
    /// re-enabled (it starts afresh), or deleted.
    pub fn forget(&mut self, id: &EndpointId) {
        self.failures.remove(id);
    }

    /// The endpoint's current run of failures.
    pub fn consecutive_failures(&self, id: &EndpointId) -> u32 {
        self.failures.get(id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opens(breaker: &mut CircuitBreaker, id: &EndpointId, failures: u32) -> Vec<u32> {
        (1..=failures)
            .filter(|_| breaker.record_failure(id) == Trip::Open)
            .collect()
    }

    #[test]
    fn ten_failures_trip_once() {
        let mut b = CircuitBreaker::default();
        let id = EndpointId::from("ep_a");
        for n in 1..10 {
            assert_eq!(
                b.record_failure(&id),
                Trip::Closed {
                    consecutive_failures: n
                }
            );
        }
        assert_eq!(b.record_failure(&id), Trip::Open);
        assert_eq!(b.consecutive_failures(&id), 10);
    }

    #[test]
    fn twenty_failures_trip_once() {
        let mut b = CircuitBreaker::default();
        let id = EndpointId::from("ep_a");
        let mut trips = 0;
        for n in 1..=20 {
            match b.record_failure(&id) {
                Trip::Open => {
                    assert_eq!(n, 10);
                    trips += 1;
                }
                Trip::AlreadyOpen => assert!(n > 10),
                Trip::Closed { .. } => assert!(n < 10),
            }
        }
        assert_eq!(trips, 1);
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
        assert_eq!(opens(&mut b, &id, 5), vec![3]);
    }

    #[test]
    fn a_threshold_of_one_trips_on_the_first_failure() {
        let mut b = CircuitBreaker::new(NonZeroU32::MIN);
        assert_eq!(b.record_failure(&EndpointId::from("ep_a")), Trip::Open);
    }
}
