//! Per-endpoint batching policy, rate limits and queues.
pub mod policy;
pub mod queue;
pub mod ratelimit;
