//! What every stage needs to know about the process as a whole, kept below them all: the
//! shutdown signal and the readiness flags that `/readyz` reports. Any stage may use these
//! without importing the stage that wires it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it before the future completes.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What `/readyz` checks. Each flag is set by the part it describes.
#[derive(Debug, Default)]
pub struct Readiness {
    /// The subscriptions table caught up and its follower is running.
    pub subscriptions_ready: AtomicBool,
    /// The input consumer holds an assignment from its group.
    pub consumer_assigned: AtomicBool,
    /// The producer has no fatal error.
    pub producer_healthy: AtomicBool,
    /// At least one broker is reachable (from librdkafka's statistics and its "all brokers
    /// down" error): false during a broker outage, so `/readyz` shows it.
    pub brokers_reachable: AtomicBool,
    /// Why the subscriptions table stopped, when it did: shown by `/readyz`.
    subscriptions_failure: Mutex<Option<String>>,
}

impl Readiness {
    /// The subscriptions table stopped following its topic (a storage error): not ready
    /// until restarted, and `/readyz` says why.
    pub fn subscriptions_failed(&self, why: String) {
        self.subscriptions_ready.store(false, Ordering::Release);
        *self
            .subscriptions_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// Whether every check passes, and one line per check for people.
    pub fn report(&self) -> (bool, String) {
        let failure = self
            .subscriptions_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let checks = [
            (
                "subscriptions",
                self.subscriptions_ready.load(Ordering::Acquire),
                failure,
            ),
            (
                "consumer",
                self.consumer_assigned.load(Ordering::Acquire),
                None,
            ),
            (
                "producer",
                self.producer_healthy.load(Ordering::Acquire),
                None,
            ),
            (
                "brokers",
                self.brokers_reachable.load(Ordering::Acquire),
                None,
            ),
        ];
        let ready = checks.iter().all(|(_, ok, _)| *ok);
        let text = checks
            .iter()
            .map(|(name, ok, why)| match (ok, why) {
                (true, _) => format!("{name}: ok\n"),
                (false, Some(why)) => format!("{name}: failed: {why}\n"),
                (false, None) if *name == "brokers" => format!("{name}: unreachable\n"),
                (false, None) => format!("{name}: not ready\n"),
            })
            .collect();
        (ready, text)
    }
}
