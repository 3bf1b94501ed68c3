//! The retry schedule: after a failed attempt, which delay tier the delivery goes to next, or
//! whether it goes to the dead-letter topic.
//!
//! Attempt 1 is immediate; attempt k+1 waits in tier k. Each tier is one delay topic in which
//! every record shares the same delay, so due times within a partition stay in order.

use std::time::Duration;

/// A schedule that cannot work as a sequence of delay topics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Backoff that shrinks is almost certainly a typo in the configuration, and would make
    /// a Retry-After skip to a later tier that is in fact sooner.
    #[error("retry tier {index} ({shorter:?}) is shorter than the tier before it ({previous:?})")]
    Decreasing {
        index: usize,
        previous: Duration,
        shorter: Duration,
    },
}

/// The delays of the retry tiers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    tiers: Vec<Duration>,
}

/// Where a failed delivery goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Into retry tier `index` (0-based), to be tried as attempt `attempt` after `delay`.
    Tier {
        index: usize,
        attempt: u32,
        delay: Duration,
    },
    /// No tier is left: dead-letter it.
    DeadLetter,
}

impl Default for RetrySchedule {
    /// 1 min, 5 min, 30 min, 2 h, 24 h: six attempts over about 26.5 hours, long enough to
    /// ride out a receiver's overnight outage.
    fn default() -> Self {
        Self {
            tiers: [60, 5 * 60, 30 * 60, 2 * 3600, 24 * 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        }
    }
}

impl RetrySchedule {
    /// A schedule with these tier delays. Tests use seconds; production the default.
    /// An empty list is allowed and means "never retry".
    pub fn new(tiers: Vec<Duration>) -> Result<Self, ScheduleError> {
        if let Some(index) = tiers.windows(2).position(|w| w[1] < w[0]) {
            return Err(ScheduleError::Decreasing {
                index: index + 1,
                previous: tiers[index],
                shorter: tiers[index + 1],
            });
        }
        Ok(Self { tiers })
    }

    pub fn tiers(&self) -> &[Duration] {
        &self.tiers
    }

    /// How many attempts a delivery gets in all: the first plus one per tier.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.tiers.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The next step after attempt `failed_attempt` (1-based) failed. `not_before` is the
    /// receiver's Retry-After: the delivery skips ahead to the first remaining tier at least
    /// that late, and its attempt number follows the tier, so the header always tells how
    /// many tiers it has passed. A Retry-After later than every remaining tier waits in the
    /// last one: the receiver asked for patience, not to be given up on, so only the final
    /// scheduled attempt failing (or the circuit breaker) ends the delivery.
    ///
    /// Attempt 0 does not exist; it is treated as attempt 1 rather than panicking.
    pub fn after_failure(&self, failed_attempt: u32, not_before: Option<Duration>) -> NextStep {
        let first = usize::try_from(failed_attempt.max(1) - 1).unwrap_or(usize::MAX);
        let remaining = self.tiers.get(first..).unwrap_or_default();
        let offset = match not_before {
            None => 0,
            Some(at_least) => remaining
                .iter()
                .position(|&delay| delay >= at_least)
                .unwrap_or(remaining.len().saturating_sub(1)),
        };
        match remaining.get(offset) {
            Some(&delay) => {
                let index = first + offset;
                NextStep::Tier {
                    index,
                    attempt: u32::try_from(index).unwrap_or(u32::MAX).saturating_add(2),
                    delay,
                }
            }
            None => NextStep::DeadLetter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;

    fn tier(index: usize, attempt: u32, secs: u64) -> NextStep {
        NextStep::Tier {
            index,
            attempt,
            delay: Duration::from_secs(secs),
        }
    }

    #[test]
    fn every_attempt_of_the_default_schedule() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 6);
        let expected = [
            (1, tier(0, 2, MIN)),
            (2, tier(1, 3, 5 * MIN)),
            (3, tier(2, 4, 30 * MIN)),
            (4, tier(3, 5, 2 * HOUR)),
            (5, tier(4, 6, 24 * HOUR)),
            (6, NextStep::DeadLetter),
            (7, NextStep::DeadLetter),
            (u32::MAX, NextStep::DeadLetter),
        ];
        for (failed, want) in expected {
            assert_eq!(
                s.after_failure(failed, None),
                want,
                "after attempt {failed}"
            );
        }
    }

    #[test]
    fn attempt_zero_is_read_as_the_first() {
        let s = RetrySchedule::default();
        assert_eq!(s.after_failure(0, None), tier(0, 2, MIN));
    }

    #[test]
    fn retry_after_skips_to_a_late_enough_tier() {
        let s = RetrySchedule::default();
        let secs = |n| Some(Duration::from_secs(n));
        let cases = [
            // Within the next tier's delay: no skipping.
            (1, secs(0), tier(0, 2, MIN)),
            (1, secs(60), tier(0, 2, MIN)),
            // Just over: the 5-minute tier, as attempt 3.
            (1, secs(61), tier(1, 3, 5 * MIN)),
            (1, secs(3600), tier(3, 5, 2 * HOUR)),
            (1, secs(24 * HOUR), tier(4, 6, 24 * HOUR)),
            // Later tiers only look forward from where the delivery is.
            (3, secs(10), tier(2, 4, 30 * MIN)),
            (4, secs(3 * HOUR), tier(4, 6, 24 * HOUR)),
            // Later than any tier: wait in the last one, never give up early.
            (1, secs(24 * HOUR + 1), tier(4, 6, 24 * HOUR)),
            (5, secs(25 * HOUR), tier(4, 6, 24 * HOUR)),
            (1, Some(Duration::MAX), tier(4, 6, 24 * HOUR)),
            // Only when no tier is left does it end.
            (6, secs(0), NextStep::DeadLetter),
            (6, secs(25 * HOUR), NextStep::DeadLetter),
        ];
        for (failed, not_before, want) in cases {
            assert_eq!(
                s.after_failure(failed, not_before),
                want,
                "after attempt {failed} with Retry-After {not_before:?}"
            );
        }
    }

    proptest::proptest! {
        /// A Retry-After never ends a delivery while a tier is left, never makes it wait in a
        /// tier sooner than asked unless it is the last, and never goes backwards.
        #[test]
        fn retry_after_only_ever_waits_longer(failed in 1u32..9, secs in 0u64..200_000) {
            let s = RetrySchedule::default();
            let plain = s.after_failure(failed, None);
            let asked = Duration::from_secs(secs);
            match (plain, s.after_failure(failed, Some(asked))) {
                (NextStep::DeadLetter, step) => proptest::prop_assert_eq!(step, NextStep::DeadLetter),
                (NextStep::Tier { index: i0, .. }, NextStep::Tier { index, delay, attempt }) => {
                    proptest::prop_assert!(index >= i0);
                    proptest::prop_assert!(delay >= asked || index == s.tiers().len() - 1);
                    proptest::prop_assert_eq!(attempt as usize, index + 2);
                }
                (NextStep::Tier { .. }, NextStep::DeadLetter) => {
                    proptest::prop_assert!(false, "Retry-After {}s ended a delivery with tiers left", secs);
                }
            }
        }
    }

    #[test]
    fn custom_schedules_for_tests_and_no_retries() {
        let s = RetrySchedule::new(vec![Duration::from_secs(1), Duration::from_secs(2)]).unwrap();
        assert_eq!(s.max_attempts(), 3);
        assert_eq!(s.after_failure(2, None), tier(1, 3, 2));
        assert_eq!(s.after_failure(3, None), NextStep::DeadLetter);

        let never = RetrySchedule::new(Vec::new()).unwrap();
        assert_eq!(never.max_attempts(), 1);
        assert_eq!(never.after_failure(1, None), NextStep::DeadLetter);
    }

    #[test]
    fn shrinking_tiers_are_rejected() {
        let err = RetrySchedule::new(vec![
            Duration::from_secs(60),
            Duration::from_secs(300),
            Duration::from_secs(30),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            ScheduleError::Decreasing {
                index: 2,
                previous: Duration::from_secs(300),
                shorter: Duration::from_secs(30)
            }
        );
        // Equal neighbours are fine.
        assert!(RetrySchedule::new(vec![Duration::from_secs(5); 3]).is_ok());
    }
}
