//! Operator telemetry: Prometheus metrics (defined in one place) and logging set-up.

pub mod logging;
pub mod metrics;

pub use metrics::Metrics;
