//! Quiet partitions rest between looks. Pure: the consumer loop reports records and the clock,
//! and pauses or resumes what [`Resting::due`] says.
//!
//! librdkafka 2.12 keeps no fetch session, so every fetch request lists every partition the
//! member fetches, and the broker reads each one, every `fetch.wait.max.ms`. Most of those
//! partitions are retry tiers and the requests topic, which are empty nearly all the time:
//! with the shipped layout 66 of 78. A partition of such a topic that yielded nothing for a
//! look is paused for its topic's rest and then fetched again.
//!
//! A look lasts long enough for a fetch to come back: [`IDLE`], or three of the slowest
//! broker's round trips when they are slower (a slow broker must not keep a tier unread by
//! answering only after each look ended).
//!
//! What resting costs: a record written to a resting partition is read up to one rest later.
//! A retry tier rests a tenth of its delay (at most [`MAX_TIER_REST`]), so its records are
//! still read long before they are due and none goes out later for it; tiers under two
//! seconds do not rest. The requests topic (test events, retries and replays the API asks
//! for) rests [`REQUESTS_REST`], which is what such a request may wait for it. A partition
//! with records keeps yielding them and never rests; one paused for another reason (a held
//! retry head, a full endpoint) is not idle and starts a fresh look when that ends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::offsets::TopicPartition;

/// How long a quiet partition may yield nothing before it rests: many fetches at the
/// shipped `fetch.wait.max.ms` of 5 ms.
pub const IDLE: Duration = Duration::from_millis(200);
/// The longest rest of a retry tier (the 1m tier's: a tenth of a minute would be 6 s).
pub const MAX_TIER_REST: Duration = Duration::from_secs(5);
/// Rests shorter than this are not worth the pause and resume (the loop ticks every 100 ms).
const MIN_REST: Duration = Duration::from_millis(200);
/// The rest of the requests topic: a customer's test event waits at most this for it.
pub const REQUESTS_REST: Duration = Duration::from_millis(250);

/// How long a quiet partition is looked at, given the slowest broker's recent round trip (a
/// fetch's included).
pub fn look_for(slowest_round_trip: Duration) -> Duration {
    IDLE.max(slowest_round_trip.saturating_mul(3))
}

/// The rest of a retry tier with this delay, if it rests at all.
pub fn tier_rest(delay: Duration) -> Option<Duration> {
    let rest = (delay / 10).min(MAX_TIER_REST);
    (rest >= MIN_REST).then_some(rest)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Fetched; nothing yielded since `since` (a record, an assignment or the end of a rest
    /// or of another pause).
    Looking {
        since: Instant,
    },
    Resting {
        until: Instant,
    },
}

/// Which quiet partitions rest.
#[derive(Debug, Default)]
pub struct Resting {
    /// Topics whose partitions rest when idle, with how long.
    rests: HashMap<String, Duration>,
    partitions: HashMap<TopicPartition, State>,
}

impl Resting {
    pub fn new(rests: impl IntoIterator<Item = (String, Duration)>) -> Self {
        Resting {
            rests: rests.into_iter().collect(),
            partitions: HashMap::new(),
        }
    }

    pub fn assign(&mut self, tps: &[TopicPartition], now: Instant) {
        for tp in tps {
            if self.rests.contains_key(&*tp.topic) {
                self.partitions
                    .insert(tp.clone(), State::Looking { since: now });
            }
        }
    }

    pub fn revoke(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.partitions.remove(tp);
        }
    }

    /// A record of `tp` arrived. True if the partition was resting: it is looking again and
    /// the caller resumes it.
    pub fn saw_record(&mut self, tp: &TopicPartition, now: Instant) -> bool {
        match self.partitions.get_mut(tp) {
            Some(state) => {
                let was_resting = matches!(state, State::Resting { .. });
                *state = State::Looking { since: now };
                was_resting
            }
            None => false,
        }
    }

    /// Advances the clock. A partition that yielded nothing for `look` rests; `held` says
    /// which partitions are paused for another reason (they are not idle, only waiting).
    /// Returns the partitions to rest (`true`) and to fetch again (`false`).
    pub fn due(
        &mut self,
        now: Instant,
        look: Duration,
        held: impl Fn(&TopicPartition) -> bool,
    ) -> Vec<(TopicPartition, bool)> {
        let mut out = Vec::new();
        for (tp, state) in &mut self.partitions {
            match *state {
                State::Resting { until } if now >= until => {
                    *state = State::Looking { since: now };
                    out.push((tp.clone(), false));
                }
                State::Resting { .. } => {}
                State::Looking { .. } if held(tp) => *state = State::Looking { since: now },
                State::Looking { since } if now.duration_since(since) >= look => {
                    let rest = self.rests.get(&*tp.topic).copied().unwrap_or_default();
                    *state = State::Resting { until: now + rest };
                    out.push((tp.clone(), true));
                }
                State::Looking { .. } => {}
            }
        }
        out
    }

    /// Partitions resting now (the gauge counts them through [`super::pauses::Pauses`]).
    #[cfg(test)]
    fn resting(&self) -> usize {
        self.partitions
            .values()
            .filter(|s| matches!(s, State::Resting { .. }))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, p: i32) -> TopicPartition {
        TopicPartition::new(topic, p)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn resting() -> (Resting, Instant) {
        let mut r = Resting::new([("tier".to_owned(), ms(1000))]);
        let t0 = Instant::now();
        r.assign(&[tp("tier", 0), tp("tier", 1), tp("events", 0)], t0);
        (r, t0)
    }

    fn sorted(mut v: Vec<(TopicPartition, bool)>) -> Vec<(TopicPartition, bool)> {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn an_idle_quiet_partition_rests_then_looks_again() {
        let (mut r, t0) = resting();
        assert!(
            r.due(t0 + ms(150), IDLE, |_| false).is_empty(),
            "not idle yet"
        );
        assert_eq!(
            sorted(r.due(t0 + IDLE, IDLE, |_| false)),
            vec![(tp("tier", 0), true), (tp("tier", 1), true)],
            "only the quiet topic's partitions rest"
        );
        assert_eq!(r.resting(), 2);
        assert!(r.due(t0 + IDLE + ms(999), IDLE, |_| false).is_empty());
        let back = t0 + IDLE + ms(1000);
        assert_eq!(
            sorted(r.due(back, IDLE, |_| false)),
            vec![(tp("tier", 0), false), (tp("tier", 1), false)]
        );
        assert!(
            r.due(back + IDLE - ms(1), IDLE, |_| false).is_empty(),
            "each look lasts a whole idle window"
        );
        assert_eq!(r.due(back + IDLE, IDLE, |_| false).len(), 2);
    }

    #[test]
    fn a_partition_with_records_keeps_being_fetched() {
        let (mut r, t0) = resting();
        for step in 1..=20 {
            assert!(!r.saw_record(&tp("tier", 0), t0 + ms(100 * step)));
            let changes = r.due(t0 + ms(100 * step + 50), IDLE, |_| false);
            assert!(
                !changes.contains(&(tp("tier", 0), true)),
                "rested at step {step} though records kept coming"
            );
        }
    }

    #[test]
    fn a_record_wakes_a_resting_partition() {
        let (mut r, t0) = resting();
        r.due(t0 + IDLE, IDLE, |_| false);
        assert!(r.saw_record(&tp("tier", 1), t0 + IDLE + ms(10)));
        assert_eq!(r.resting(), 1);
        assert!(
            r.due(t0 + IDLE + ms(100), IDLE, |_| false).is_empty(),
            "the woken partition looks for a whole idle window"
        );
        assert_eq!(
            sorted(r.due(t0 + IDLE + ms(1000), IDLE, |_| false)),
            vec![(tp("tier", 0), false), (tp("tier", 1), true)]
        );
    }

    #[test]
    fn a_partition_paused_for_another_reason_is_not_idle() {
        let (mut r, t0) = resting();
        let held = |t: &TopicPartition| *t == tp("tier", 1);
        assert_eq!(
            r.due(t0 + ms(5000), IDLE, held),
            vec![(tp("tier", 0), true)]
        );
        // Its head went out at 5 s: it gets a whole look from then.
        assert!(r.due(t0 + ms(5100), IDLE, |_| false).is_empty());
        assert_eq!(
            r.due(t0 + ms(5000) + IDLE, IDLE, |_| false),
            vec![(tp("tier", 1), true)]
        );
    }

    #[test]
    fn revoked_partitions_are_forgotten_and_reassigned_ones_look_first() {
        let (mut r, t0) = resting();
        r.due(t0 + IDLE, IDLE, |_| false);
        r.revoke(&[tp("tier", 0)]);
        assert_eq!(r.resting(), 1);
        let later = t0 + ms(600);
        r.assign(&[tp("tier", 0)], later);
        assert!(r.due(later + ms(100), IDLE, |_| false).is_empty());
        assert!(!r.saw_record(&tp("events", 0), later), "events never rest");
    }

    #[test]
    fn a_slow_broker_gets_longer_looks() {
        assert_eq!(
            look_for(ms(4)),
            IDLE,
            "a healthy broker answers well within it"
        );
        assert_eq!(look_for(ms(400)), ms(1200));
        let (mut r, t0) = resting();
        let look = look_for(ms(400));
        assert!(
            r.due(t0 + ms(1100), look, |_| false).is_empty(),
            "a fetch may still be on its way"
        );
        assert_eq!(r.due(t0 + ms(1200), look, |_| false).len(), 2);
    }

    #[test]
    fn tiers_rest_a_tenth_of_their_delay_within_bounds() {
        assert_eq!(tier_rest(Duration::from_secs(1)), None, "too short to rest");
        assert_eq!(tier_rest(Duration::from_secs(2)), Some(ms(200)));
        assert_eq!(tier_rest(Duration::from_secs(15)), Some(ms(1500)));
        assert_eq!(tier_rest(Duration::from_secs(60)), Some(MAX_TIER_REST));
        assert_eq!(tier_rest(Duration::from_secs(86_400)), Some(MAX_TIER_REST));
        for secs in 2..=120 {
            let delay = Duration::from_secs(secs);
            let rest = tier_rest(delay).expect("rests");
            assert!(
                rest <= delay / 10,
                "a record is read before a tenth of its wait"
            );
        }
    }
}
