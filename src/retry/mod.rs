//! Retry tiers, dead letters and the circuit breaker.
pub mod breaker;
pub mod handoff;
pub mod schedule;
