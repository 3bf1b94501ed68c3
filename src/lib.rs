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

pub mod admin;
pub mod api;
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
pub mod lifecycle;
pub mod notify;
pub mod offsets;
pub mod records;
pub mod retry;
pub mod sign;
pub mod subscriptions;
pub mod telemetry;
