//! After a failed attempt: the delay tiers, the circuit breaker, the pure [`plan`] of what
//! follows an attempt, and the [`handoff`] that carries plans out (retry tiers, dead letters,
//! the attempts log, disabling).
pub mod breaker;
#[cfg(feature = "service")]
pub mod handoff;
#[cfg(feature = "service")]
pub mod notices;
pub mod plan;
pub mod schedule;

pub use plan::{Plan, RetryAt, Verdict, plan};

/// The tier label used in metrics: "1".."5", so dashboards do not depend on topic names.
pub fn tier_label(index: usize) -> String {
    (index + 1).to_string()
}
