//! The batching policy and the per-endpoint rate limit: pure decisions over plain data,
//! used by the dispatch worker.
pub mod policy;
pub mod ratelimit;
