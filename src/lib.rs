//! hookrelay: license events from Kafka to signed, retried, observable webhook deliveries.
//!
//! The modules follow the data flow: [`event`] (decode and validate input records) →
//! [`subscriptions`] (the materialized endpoint table and the fan-out join) → [`batch`]
//! (per-endpoint batching and limits) → [`sign`] → [`dispatch`] (HTTP) → [`retry`]
//! (delay tiers, dead letters, circuit breaker). [`ingest`] owns the input consumer and
//! offset bookkeeping; [`admin`] and [`telemetry`] serve operators; [`notify`] e-mails the
//! owners of disabled endpoints.

pub mod admin;
pub mod app;
pub mod batch;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod dispatch;
pub mod event;
pub mod ids;
pub mod ingest;
pub mod kafka;
pub mod notify;
pub mod records;
pub mod retry;
pub mod sign;
pub mod subscriptions;
pub mod telemetry;
