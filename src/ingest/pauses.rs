//! Why intake holds each partition, and which pause/resume calls bring the consumer in line.
//! Pure: the consumer loop sets and clears reasons and applies [`Pauses::changes`].
//!
//! A partition is held while it has any reason of its own (its retry head is not due, or it
//! waits for an endpoint with a full backlog) or intake as a whole has one (the in-flight
//! limit, a stopped subscriptions table, shutdown). The poll loop never blocks on any of
//! these: it keeps polling, so the group keeps the member and rebalances are served.

use std::collections::{BTreeMap, BTreeSet};

use crate::offsets::TopicPartition;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PauseReason {
    /// The head of a retry partition is not due yet.
    RetryNotDue,
    /// A record waits for an endpoint whose backlog is full (it drains soon).
    EndpointFull,
    /// Deliveries in memory reached `delivery.max_in_flight`.
    InFlightLimit,
    /// The subscriptions table stopped following its topic: joining on it would deliver
    /// from a stale view.
    TableStopped,
    /// A record's writer schema is being fetched from the schema registry (which may be
    /// down: the partition waits as long as it takes).
    SchemaRegistry,
    /// Shutting down.
    Stopping,
    /// A retry tier or requests partition that yielded nothing for a while, between looks
    /// (see [`super::resting`]).
    Resting,
}

impl PauseReason {
    pub const ALL: &'static [PauseReason] = &[
        PauseReason::RetryNotDue,
        PauseReason::EndpointFull,
        PauseReason::InFlightLimit,
        PauseReason::TableStopped,
        PauseReason::SchemaRegistry,
        PauseReason::Stopping,
        PauseReason::Resting,
    ];

    /// The label of `hookrelay_paused_partitions`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PauseReason::RetryNotDue => "retry_not_due",
            PauseReason::EndpointFull => "endpoint_full",
            PauseReason::InFlightLimit => "in_flight_limit",
            PauseReason::TableStopped => "table_stopped",
            PauseReason::SchemaRegistry => "schema_registry",
            PauseReason::Stopping => "stopping",
            PauseReason::Resting => "resting",
        }
    }
}

/// The pause state of every assigned partition.
#[derive(Debug, Default)]
pub struct Pauses {
    assigned: BTreeSet<TopicPartition>,
    global: BTreeSet<PauseReason>,
    local: BTreeMap<TopicPartition, BTreeSet<PauseReason>>,
    /// Partitions the consumer holds paused, as far as we told it.
    applied: BTreeSet<TopicPartition>,
    /// Partitions whose consumer state is unknown (just assigned: librdkafka may keep a
    /// pause across a rebalance): the next [`Pauses::changes`] states them explicitly.
    unknown: BTreeSet<TopicPartition>,
}

/// Calls to make on the consumer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub pause: Vec<TopicPartition>,
    pub resume: Vec<TopicPartition>,
}

impl Pauses {
    pub fn assign(&mut self, tps: impl IntoIterator<Item = TopicPartition>) {
        for tp in tps {
            self.assigned.insert(tp.clone());
            self.applied.remove(&tp);
            self.unknown.insert(tp);
        }
    }

    pub fn revoke(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.assigned.remove(tp);
            self.local.remove(tp);
            self.applied.remove(tp);
            self.unknown.remove(tp);
        }
    }

    pub fn set_global(&mut self, reason: PauseReason, on: bool) {
        if on {
            self.global.insert(reason);
        } else {
            self.global.remove(&reason);
        }
    }

    pub fn has_global(&self, reason: PauseReason) -> bool {
        self.global.contains(&reason)
    }

    pub fn set(&mut self, tp: &TopicPartition, reason: PauseReason, on: bool) {
        if on {
            if self.assigned.contains(tp) {
                self.local.entry(tp.clone()).or_default().insert(reason);
            }
        } else if let Some(reasons) = self.local.get_mut(tp) {
            reasons.remove(&reason);
            if reasons.is_empty() {
                self.local.remove(tp);
            }
        }
    }

    pub fn has(&self, tp: &TopicPartition, reason: PauseReason) -> bool {
        self.local.get(tp).is_some_and(|r| r.contains(&reason))
    }

    /// Whether the partition should be held.
    pub fn is_paused(&self, tp: &TopicPartition) -> bool {
        !self.global.is_empty() || self.local.get(tp).is_some_and(|r| !r.is_empty())
    }

    /// Whether the partition should be held for a reason other than `reason`.
    pub fn is_paused_except(&self, tp: &TopicPartition, reason: PauseReason) -> bool {
        !self.global.is_empty()
            || self
                .local
                .get(tp)
                .is_some_and(|r| r.iter().any(|&other| other != reason))
    }

    /// The calls that bring the consumer to the wanted state; records them as made.
    pub fn changes(&mut self) -> Changes {
        let mut out = Changes::default();
        for tp in &self.assigned {
            let want = self.is_paused(tp);
            let known = !self.unknown.contains(tp);
            let have = self.applied.contains(tp);
            if known && want == have {
                continue;
            }
            if want {
                out.pause.push(tp.clone());
            } else {
                out.resume.push(tp.clone());
            }
        }
        for tp in &out.pause {
            self.applied.insert(tp.clone());
        }
        for tp in &out.resume {
            self.applied.remove(tp);
        }
        self.unknown.clear();
        out
    }

    /// Partitions held, per reason (a global reason counts every assigned partition).
    pub fn counts(&self) -> Vec<(PauseReason, usize)> {
        PauseReason::ALL
            .iter()
            .map(|&reason| {
                let n = if self.global.contains(&reason) {
                    self.assigned.len()
                } else {
                    self.local.values().filter(|r| r.contains(&reason)).count()
                };
                (reason, n)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn new_partitions_are_stated_explicitly_then_only_changes_are_made() {
        let mut p = Pauses::default();
        p.assign([tp(0), tp(1)]);
        p.set(&tp(1), PauseReason::RetryNotDue, true);
        assert_eq!(
            p.changes(),
            Changes {
                pause: vec![tp(1)],
                resume: vec![tp(0)]
            }
        );
        assert_eq!(p.changes(), Changes::default(), "nothing changed");
        p.set(&tp(1), PauseReason::RetryNotDue, false);
        assert_eq!(
            p.changes(),
            Changes {
                pause: vec![],
                resume: vec![tp(1)]
            }
        );
    }

    #[test]
    fn every_reason_has_its_metric_label() {
        let labels: Vec<&str> = PauseReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels, crate::telemetry::metrics::PAUSE_REASONS);
    }

    #[test]
    fn a_partition_resumes_only_when_every_reason_is_gone() {
        let mut p = Pauses::default();
        p.assign([tp(0), tp(1)]);
        p.changes();
        p.set(&tp(0), PauseReason::EndpointFull, true);
        p.set_global(PauseReason::InFlightLimit, true);
        assert_eq!(p.changes().pause, vec![tp(0), tp(1)]);
        p.set_global(PauseReason::InFlightLimit, false);
        assert_eq!(
            p.changes().resume,
            vec![tp(1)],
            "tp 0 still waits for its endpoint"
        );
        assert!(p.is_paused(&tp(0)));
        assert_eq!(
            p.counts(),
            vec![
                (PauseReason::RetryNotDue, 0),
                (PauseReason::EndpointFull, 1),
                (PauseReason::InFlightLimit, 0),
                (PauseReason::TableStopped, 0),
                (PauseReason::SchemaRegistry, 0),
                (PauseReason::Stopping, 0),
                (PauseReason::Resting, 0),
            ]
        );
        assert!(p.is_paused_except(&tp(0), PauseReason::Resting));
        p.set(&tp(1), PauseReason::Resting, true);
        assert!(
            !p.is_paused_except(&tp(1), PauseReason::Resting),
            "resting is its only reason"
        );
        p.set_global(PauseReason::Stopping, true);
        assert!(p.is_paused_except(&tp(1), PauseReason::Resting));
    }

    #[test]
    fn revoked_partitions_are_forgotten_and_reasons_for_unassigned_ones_ignored() {
        let mut p = Pauses::default();
        p.assign([tp(0)]);
        p.set(&tp(0), PauseReason::EndpointFull, true);
        p.changes();
        p.revoke(&[tp(0)]);
        p.set(&tp(5), PauseReason::EndpointFull, true);
        assert!(!p.has(&tp(5), PauseReason::EndpointFull));
        assert_eq!(p.changes(), Changes::default());
        // Assigned again: stated again, whatever the consumer kept.
        p.assign([tp(0)]);
        assert_eq!(p.changes().resume, vec![tp(0)]);
    }
}
