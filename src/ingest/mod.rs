//! Intake: the consumer-group member that reads input, retry and request records, joins
//! them to endpoints and hands them to dispatch, without ever blocking its poll loop; and the
//! [`pauses`] bookkeeping that holds partitions in Kafka while they cannot be taken, and
//! [`resting`], which fetches quiet partitions (retry tiers, requests) only now and then.
pub mod consumer;
pub mod pauses;
pub mod registry;
pub mod resting;
