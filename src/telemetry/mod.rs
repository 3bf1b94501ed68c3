//! Operator telemetry: Prometheus metrics (defined in one place) and logging set-up.

pub mod logging;
#[cfg(feature = "service")]
pub mod metrics;

#[cfg(feature = "service")]
pub use metrics::Metrics;

/// Displays an error with its causes on one line (`a: b: c`), for log fields.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
