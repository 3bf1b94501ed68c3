//! The subscriptions table and the fan-out join.
//!
//! `webhook-subscriptions` is a compacted topic keyed by endpoint id; every instance
//! materializes all of it into its own RocksDB directory, like a Kafka Streams
//! GlobalKTable:
//!
//! - [`endpoint`]: the record (Avro single-object or JSON), its validation. Pure.
//! - [`status`]: the circuit breaker's record of an endpoint (disabled/re-enabled). Pure.
//! - [`join`]: which endpoints an event goes to. Pure.
//! - [`store`]: RocksDB: endpoints, the account index and the topic offsets, written
//!   together so a restart resumes exactly where the data is.
//! - [`follower`]: the consumer that keeps the store current, readiness, and the writer the
//!   admin API and circuit breaker use (changes go to the topic, never straight to RocksDB).

pub mod endpoint;
#[cfg(feature = "service")]
pub mod follower;
pub mod join;
pub mod status;
#[cfg(feature = "service")]
pub mod store;

pub use endpoint::{
    Batching, Endpoint, EndpointError, EndpointSecret, Op, decode_endpoint, decode_record,
    encode_endpoint,
};
#[cfg(feature = "service")]
pub use follower::{
    FollowerState, FollowerStats, Published, SubscriptionError, SubscriptionTable, publish,
    publish_status, publish_tombstone,
};
pub use join::fan_out;
pub use status::{EndpointStatus, StatusError, status_key};
#[cfg(feature = "service")]
pub use store::{ApplyStats, Change, Store, StoreError};
