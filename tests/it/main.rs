//! Integration tests against a real Apache Kafka broker (`scripts/kafka start`).
//!
//! One test binary (not one per file) so the statically linked RocksDB and librdkafka are
//! linked once. Each test uses its own uniquely named topics.

mod common;
mod harness;
#[path = "../support/isolated_env.rs"]
mod isolated_env;
mod pyserver;
mod receiver;
mod smtp;

mod api;
mod browser;
mod config_check;
mod contract;
mod dashboards;
mod delivery;
mod demo;
mod fuzz;
mod interop;
mod notify;
mod pressure;
mod registry;
mod retry;
mod secured;
mod subscriptions;
mod topics;
