//! The adaptive batching decision for one endpoint: when a send slot is free, how many of
//! the waiting events go in the next request, or how long to wait for more.
//!
//! Adaptive means batching costs nothing when traffic is light: a lone event goes out at once,
//! alone. Batches form only when events pile up behind busy send slots, which is exactly when
//! fewer, larger requests help the receiver. Pure: the queue and the clock are passed in.

use std::time::{Duration, Instant};

/// Limits for one endpoint's batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Endpoints can opt out: every request then carries exactly one event.
    pub enabled: bool,
    /// Most events in one request; receivers iterate `data.events`, keep it reviewable.
    pub max_events: usize,
    /// Most body bytes in one request, summed over the events (the batch envelope adds a
    /// few dozen bytes). Bounds receivers' request-size limits and our memory per request.
    pub max_bytes: usize,
    /// Longest an event waits for company once several are waiting, counted from the oldest
    /// waiting event's enqueue time, so batching never adds more than this to any event.
    pub linger: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            max_events: 100,
            max_bytes: 256 * 1024,
            linger: Duration::from_millis(10),
        }
    }
}

/// What to do now that a send slot is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the first `count` waiting events (at least one) as one request.
    Send { count: usize },
    /// Not full yet: decide again at this instant, or earlier if more events arrive.
    WaitUntil(Instant),
    /// Nothing is waiting.
    Idle,
}

/// Decides for a free send slot, given the waiting events in queue order as
/// (body bytes, enqueue time).
///
/// - Nothing waiting: [`Decision::Idle`].
/// - Batching off, or one event waiting: send one, at once.
/// - Several waiting and the head of the queue fills a batch (by count or bytes): send it.
/// - Several waiting, not full: wait until the oldest has waited `linger`, then send what
///   is there.
///
/// An event larger than `max_bytes` on its own still goes out, alone; a limit of zero is
/// treated as one so a send always makes progress.
pub fn decide(policy: &BatchPolicy, waiting: &[(usize, Instant)], now: Instant) -> Decision {
    if waiting.is_empty() {
        return Decision::Idle;
    }
    let max_events = policy.max_events.max(1);
    if !policy.enabled || max_events == 1 || waiting.len() == 1 {
        return Decision::Send { count: 1 };
    }

    // The longest prefix within both limits; always at least the head.
    let mut count = 0;
    let mut bytes = 0usize;
    for &(size, _) in waiting.iter().take(max_events) {
        let total = bytes.saturating_add(size);
        if count > 0 && total > policy.max_bytes {
            break;
        }
        count += 1;
        bytes = total;
    }
    let full = count == max_events || count < waiting.len();
    if full {
        return Decision::Send { count };
    }

    // Everything waiting fits: linger for company, bounded by the oldest event's wait.
    let oldest = waiting.iter().map(|&(_, at)| at).min().unwrap_or(now);
    match oldest.checked_add(policy.linger) {
        Some(deadline) if deadline > now => Decision::WaitUntil(deadline),
        _ => Decision::Send { count },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn empty_queue_is_idle() {
        assert_eq!(
            decide(&BatchPolicy::default(), &[], Instant::now()),
            Decision::Idle
        );
    }

    #[test]
    fn a_lone_event_goes_at_once() {
        let now = Instant::now();
        assert_eq!(
            decide(&BatchPolicy::default(), &[(600, now)], now),
            Decision::Send { count: 1 }
        );
    }

    #[test]
    fn several_waiting_linger_from_the_oldest() {
        let t0 = Instant::now();
        let policy = BatchPolicy::default();
        let waiting = [(600, t0), (600, t0 + ms(4))];
        assert_eq!(
            decide(&policy, &waiting, t0 + ms(5)),
            Decision::WaitUntil(t0 + ms(10))
        );
        assert_eq!(
            decide(&policy, &waiting, t0 + ms(10)),
            Decision::Send { count: 2 }
        );
        // The oldest has already waited longer than linger (it waited for a slot): no delay.
        assert_eq!(
            decide(&policy, &waiting, t0 + ms(50)),
            Decision::Send { count: 2 }
        );
    }

    #[test]
    fn a_full_batch_goes_at_once() {
        let t0 = Instant::now();
        let policy = BatchPolicy {
            max_events: 3,
            ..BatchPolicy::default()
        };
        let waiting = [(10, t0); 5];
        assert_eq!(decide(&policy, &waiting, t0), Decision::Send { count: 3 });

        let by_bytes = BatchPolicy {
            max_bytes: 25,
            ..BatchPolicy::default()
        };
        assert_eq!(decide(&by_bytes, &waiting, t0), Decision::Send { count: 2 });
    }

    #[test]
    fn an_oversize_event_goes_alone() {
        let t0 = Instant::now();
        let policy = BatchPolicy {
            max_bytes: 100,
            ..BatchPolicy::default()
        };
        let waiting = [(1_000, t0), (10, t0)];
        assert_eq!(decide(&policy, &waiting, t0), Decision::Send { count: 1 });
    }

    #[test]
    fn disabled_batching_sends_one_at_a_time() {
        let t0 = Instant::now();
        let policy = BatchPolicy {
            enabled: false,
            ..BatchPolicy::default()
        };
        assert_eq!(
            decide(&policy, &[(10, t0); 50], t0),
            Decision::Send { count: 1 }
        );
    }

    #[test]
    fn zero_limits_still_make_progress() {
        let t0 = Instant::now();
        let policy = BatchPolicy {
            max_events: 0,
            max_bytes: 0,
            ..BatchPolicy::default()
        };
        assert_eq!(
            decide(&policy, &[(10, t0); 3], t0),
            Decision::Send { count: 1 }
        );
    }

    /// Drains a queue through `decide` with one send slot, returning the batch sizes.
    fn drain(policy: &BatchPolicy, sizes: &[usize], now: Instant) -> Vec<usize> {
        let mut queue: Vec<(usize, Instant)> = sizes.iter().map(|&s| (s, now)).collect();
        let mut sends = Vec::new();
        let mut clock = now;
        loop {
            match decide(policy, &queue, clock) {
                Decision::Send { count } => {
                    sends.push(count);
                    queue.drain(..count);
                }
                Decision::WaitUntil(t) => clock = t,
                Decision::Idle => return sends,
            }
        }
    }

    #[test]
    fn a_backlog_of_ten_thousand_becomes_a_hundred_requests() {
        let sends = drain(&BatchPolicy::default(), &[600; 10_000], Instant::now());
        assert_eq!(sends.len(), 100);
        assert!(sends.iter().all(|&n| n == 100));

        // 3 KB events hit the byte limit first: 87 fit in 256 KiB.
        let sends = drain(&BatchPolicy::default(), &[3_000; 10_000], Instant::now());
        assert_eq!(sends[0], 87);
        assert_eq!(sends.len(), 10_000usize.div_ceil(87));
    }

    fn policies() -> impl Strategy<Value = BatchPolicy> {
        (any::<bool>(), 0usize..20, 0usize..5_000, 0u64..50).prop_map(
            |(enabled, max_events, max_bytes, linger)| BatchPolicy {
                enabled,
                max_events,
                max_bytes,
                linger: ms(linger),
            },
        )
    }

    proptest! {
        #[test]
        fn decisions_respect_the_limits(
            policy in policies(),
            items in prop::collection::vec((0usize..2_000, 0u64..100), 0..40),
            now_offset in 0u64..200,
        ) {
            let t0 = Instant::now();
            // Enqueue times in queue order, as a FIFO queue has them.
            let mut at = 0;
            let waiting: Vec<(usize, Instant)> = items
                .iter()
                .map(|&(size, gap)| {
                    at += gap;
                    (size, t0 + ms(at))
                })
                .collect();
            let now = t0 + ms(now_offset);
            let oldest = waiting.first().map(|&(_, t)| t);

            match decide(&policy, &waiting, now) {
                Decision::Idle => prop_assert!(waiting.is_empty()),
                Decision::Send { count } => {
                    prop_assert!((1..=waiting.len()).contains(&count));
                    if !policy.enabled {
                        prop_assert_eq!(count, 1);
                    }
                    prop_assert!(count <= policy.max_events.max(1));
                    let bytes: usize = waiting[..count].iter().map(|&(s, _)| s).sum();
                    prop_assert!(count == 1 || bytes <= policy.max_bytes,
                        "{} events of {} bytes over {}", count, bytes, policy.max_bytes);
                }
                Decision::WaitUntil(t) => {
                    let oldest = oldest.expect("waiting implies a queue");
                    prop_assert!(waiting.len() > 1);
                    prop_assert!(t > now, "waiting for the past");
                    prop_assert!(t <= oldest + policy.linger, "waits past oldest + linger");
                }
            }
        }

        #[test]
        fn once_linger_has_passed_something_is_sent(
            policy in policies(),
            sizes in prop::collection::vec(0usize..2_000, 1..40),
        ) {
            let t0 = Instant::now();
            let waiting: Vec<(usize, Instant)> = sizes.iter().map(|&s| (s, t0)).collect();
            let decision = decide(&policy, &waiting, t0 + policy.linger);
            prop_assert!(matches!(decision, Decision::Send { .. }), "{:?}", decision);
        }
    }
}
