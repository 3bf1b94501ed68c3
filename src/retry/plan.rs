//! What follows an attempt: one pure function from what the attempt meant, the attempt
//! number, the retry schedule and the circuit breaker to a [`Plan`]. The I/O shell
//! ([`handoff`](super::handoff) and the dispatch worker) only carries plans out, so every
//! rule about retrying, dead-lettering and disabling is here, and tested here.

use std::time::Duration;

use crate::delivery::{DeadLetterReason, DisableReason, ErrorClass};

use super::breaker::Trip;
use super::schedule::{NextStep, RetrySchedule};

/// What one attempt's result means, decided by the classifier from the HTTP exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx.
    Delivered,
    /// The receiver says the endpoint is gone for good (410 Gone).
    Gone,
    /// Anything else. `not_before` is the receiver's usable `Retry-After`.
    Failed {
        class: ErrorClass,
        not_before: Option<Duration>,
    },
}

/// When and where a failed delivery is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAt {
    /// The retry tier (0-based) it waits in.
    pub tier: usize,
    /// The number the next attempt will have.
    pub attempt: u32,
    pub delay: Duration,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Settled: the endpoint took it.
    Delivered,
    /// Write it to a retry tier.
    Retry(RetryAt),
    /// Dead-letter it; the endpoint stays as it is.
    DeadLetter(DeadLetterReason),
    /// Disable the endpoint, then dead-letter the delivery with `dead_letter`. If the
    /// endpoint could not be disabled (the write failed, or it was re-enabled meanwhile), the
    /// delivery is not given up on: it retries at `otherwise`, or is dead-lettered with
    /// `dead_letter` when no retry is left.
    Disable {
        reason: DisableReason,
        dead_letter: DeadLetterReason,
        otherwise: Option<RetryAt>,
    },
}

/// Decides what follows attempt number `attempt` of a delivery. `trip` is the circuit
/// breaker's answer to this failure, recorded by the caller before planning (ignored for a
/// 2xx or a 410), so the plan depends on nothing but its arguments. `requested`: a person
/// asked for this delivery (a test event, a retry, a replay); when it runs out of retries it
/// is dead-lettered without disabling the endpoint, since a manual retry of an old failure
/// says nothing new about the endpoint (its failures still count in the breaker).
pub fn plan(
    verdict: Verdict,
    attempt: u32,
    schedule: &RetrySchedule,
    trip: Trip,
    requested: bool,
) -> Plan {
    let not_before = match verdict {
        Verdict::Delivered => return Plan::Delivered,
        Verdict::Gone => {
            return Plan::Disable {
                reason: DisableReason::EndpointGone,
                dead_letter: DeadLetterReason::EndpointGone,
                otherwise: None,
            };
        }
        Verdict::Failed { not_before, .. } => not_before,
    };
    let next = match schedule.after_failure(attempt, not_before) {
        NextStep::Tier {
            index,
            attempt,
            delay,
        } => Some(RetryAt {
            tier: index,
            attempt,
            delay,
        }),
        NextStep::DeadLetter => None,
    };
    match (next, trip) {
        (Some(at), Trip::Open) => Plan::Disable {
            reason: DisableReason::ConsecutiveFailures,
            dead_letter: DeadLetterReason::EndpointDisabled,
            otherwise: Some(at),
        },
        (Some(at), Trip::Closed { .. }) => Plan::Retry(at),
        (None, Trip::Open) if requested => Plan::Disable {
            reason: DisableReason::ConsecutiveFailures,
            dead_letter: DeadLetterReason::EndpointDisabled,
            otherwise: None,
        },
        (None, Trip::Closed { .. }) if requested => {
            Plan::DeadLetter(DeadLetterReason::RetriesExhausted)
        }
        (None, _) => Plan::Disable {
            reason: DisableReason::RetriesExhausted,
            dead_letter: DeadLetterReason::RetriesExhausted,
            otherwise: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn schedule() -> RetrySchedule {
        RetrySchedule::new([2, 4, 6, 8, 10].map(Duration::from_secs).to_vec()).unwrap()
    }

    fn failed(class: ErrorClass, retry_after: Option<u64>) -> Verdict {
        Verdict::Failed {
            class,
            not_before: retry_after.map(Duration::from_secs),
        }
    }

    const CLOSED: Trip = Trip::Closed {
        consecutive_failures: 1,
    };

    fn at(tier: usize, secs: u64) -> RetryAt {
        RetryAt {
            tier,
            attempt: tier as u32 + 2,
            delay: Duration::from_secs(secs),
        }
    }

    #[test]
    fn the_table_of_decisions() {
        let s = schedule();
        let timeout = failed(ErrorClass::Timeout, None);
        let cases = [
            (Verdict::Delivered, 1, Trip::Open, Plan::Delivered),
            (timeout, 1, CLOSED, Plan::Retry(at(0, 2))),
            (timeout, 5, CLOSED, Plan::Retry(at(4, 10))),
            (
                timeout,
                6,
                CLOSED,
                Plan::Disable {
                    reason: DisableReason::RetriesExhausted,
                    dead_letter: DeadLetterReason::RetriesExhausted,
                    otherwise: None,
                },
            ),
            (
                timeout,
                2,
                Trip::Open,
                Plan::Disable {
                    reason: DisableReason::ConsecutiveFailures,
                    dead_letter: DeadLetterReason::EndpointDisabled,
                    otherwise: Some(at(1, 4)),
                },
            ),
            (
                Verdict::Gone,
                3,
                CLOSED,
                Plan::Disable {
                    reason: DisableReason::EndpointGone,
                    dead_letter: DeadLetterReason::EndpointGone,
                    otherwise: None,
                },
            ),
            // A 503 asking for 25 s when the tiers end at 10 s waits in the last tier: it
            // neither disables nor dead-letters on the first attempt.
            (
                failed(ErrorClass::Http5xx, Some(25)),
                1,
                CLOSED,
                Plan::Retry(at(4, 10)),
            ),
            (
                failed(ErrorClass::Http429, Some(90_000)),
                1,
                CLOSED,
                Plan::Retry(at(4, 10)),
            ),
            (
                failed(ErrorClass::Http429, Some(5)),
                1,
                CLOSED,
                Plan::Retry(at(2, 6)),
            ),
        ];
        for (verdict, attempt, trip, want) in cases {
            assert_eq!(
                plan(verdict, attempt, &s, trip, false),
                want,
                "{verdict:?} after attempt {attempt} with {trip:?}"
            );
        }
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![
            Just(Verdict::Delivered),
            Just(Verdict::Gone),
            (
                proptest::sample::select(ErrorClass::ALL),
                proptest::option::of(0u64..200)
            )
                .prop_map(|(class, s)| failed(class, s)),
        ]
    }

    fn trip() -> impl Strategy<Value = Trip> {
        prop_oneof![
            Just(Trip::Open),
            (1u32..20).prop_map(|n| Trip::Closed {
                consecutive_failures: n
            })
        ]
    }

    proptest! {
        /// The promises the README makes, for every input.
        #[test]
        fn plans_keep_the_documented_promises(
            v in verdict(),
            attempt in 1u32..10,
            t in trip(),
            requested in any::<bool>(),
        ) {
            let s = schedule();
            let p = plan(v, attempt, &s, t, requested);
            match p {
                Plan::Delivered => prop_assert_eq!(v, Verdict::Delivered),
                Plan::Retry(at) => {
                    // Retries only while tiers are left, forward, and never past the last.
                    let failed = matches!(v, Verdict::Failed { .. });
                    prop_assert!(failed, "only a failure retries");
                    prop_assert!(at.attempt > attempt && (at.attempt as usize) <= s.tiers().len() + 1);
                    prop_assert_eq!(at.delay, s.tiers()[at.tier]);
                    let closed = matches!(t, Trip::Closed { .. });
                    prop_assert!(closed, "an open breaker never just retries");
                }
                Plan::DeadLetter(reason) => {
                    // Only a requested delivery that ran out of retries, breaker closed.
                    prop_assert!(requested);
                    prop_assert_eq!(reason, DeadLetterReason::RetriesExhausted);
                    prop_assert!(attempt as usize > s.tiers().len());
                    let closed = matches!(t, Trip::Closed { .. });
                    prop_assert!(closed);
                }
                Plan::Disable { reason, dead_letter, otherwise } => {
                    match reason {
                        // A disabling for failures in a row only comes from an open breaker,
                        // and keeps the delivery's retry in case the disabling does not happen.
                        DisableReason::ConsecutiveFailures => {
                            prop_assert_eq!(t, Trip::Open);
                            prop_assert!(otherwise.is_some() || requested);
                            prop_assert_eq!(dead_letter, DeadLetterReason::EndpointDisabled);
                        }
                        // Exhaustion only when no tier is left, whatever the Retry-After.
                        DisableReason::RetriesExhausted => {
                            prop_assert!(attempt as usize > s.tiers().len());
                            prop_assert!(otherwise.is_none());
                            let closed = matches!(t, Trip::Closed { .. });
                            prop_assert!(!requested || !closed, "a person's retry never disables by exhaustion");
                        }
                        DisableReason::EndpointGone => prop_assert_eq!(v, Verdict::Gone),
                    }
                }
            }
        }
    }
}
