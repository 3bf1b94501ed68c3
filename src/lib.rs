//! hookrelay: license events from Kafka to signed, retried, observable webhook deliveries.
//!
//! The modules follow the data flow: [`ingest`] (the consumer and its pauses) → [`event`]
//! (decode and validate input records) → [`subscriptions`] (the materialized endpoint table
//! and the fan-out join) → [`delivery`] (the unit of work and the words for its results) →
//! [`dispatch`] (per-endpoint workers, [`batch`]ing and limits, [`sign`]ing, HTTP) →
//! [`retry`] (the plan after an attempt, delay tiers, dead letters, circuit breaker).
//! Below them all: [`offsets`] (at-least-once bookkeeping) and [`lifecycle`] (shutdown and
//! readiness). [`admin`] and [`telemetry`] serve operators, [`api`] customers (the `/v1` API
//! and the dashboard); [`notify`] e-mails the owners of disabled endpoints; [`app`] wires it
//! together.
//!
//! The cargo feature `service` (on by default) gates every module and dependency that does
//! I/O: Kafka, RocksDB, HTTP, SMTP, the command line. Without it the crate is the pure core
//! (decoders, signing, the config loader, batching, retry and offset decisions), which the
//! fuzz targets in `fuzz/` build in seconds (see the README, "Running the tests"); the module
//! `fuzz` (for tests and with the `fuzzing` feature) holds the properties they check.

#[cfg(feature = "service")]
pub mod admin;
#[cfg(feature = "service")]
pub mod api;
#[cfg(feature = "service")]
pub mod app;
pub mod batch;
#[cfg(feature = "service")]
pub mod cli;
pub mod config;
pub mod delivery;
#[cfg(feature = "service")]
pub mod demo;
#[cfg(feature = "service")]
pub mod dispatch;
pub mod event;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod ids;
#[cfg(feature = "service")]
pub mod ingest;
#[cfg(feature = "service")]
pub mod kafka;
pub mod lifecycle;
#[cfg(feature = "service")]
pub mod notify;
pub mod offsets;
pub mod records;
pub mod retry;
pub mod sign;
pub mod subscriptions;
pub mod telemetry;
