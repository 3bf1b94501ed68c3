//! What the demo shows: snapshots of the service's Prometheus registry, the live progress
//! lines and the summary at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use prometheus::Registry;
use prometheus::proto::MetricFamily;
use tokio::sync::watch;

use crate::config::RetryTier;
use crate::subscriptions::SubscriptionTable;

use super::endpoints::DemoEndpoint;
use super::feed::Produced;
use super::receivers::Receivers;

/// The numbers the demo shows, read from the service's Prometheus registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Input records read.
    pub events_in: u64,
    /// Input records that did not decode or validate.
    pub invalid: u64,
    /// Deliveries (event x endpoint) that got a 2xx.
    pub delivered: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Requests that did not get a 2xx.
    pub failed_requests: u64,
    /// Requests carrying more than one event.
    pub batches: u64,
    /// Deliveries handed to each retry tier, by tier label ("1".."5").
    pub retries: BTreeMap<String, u64>,
    /// Deliveries written to the dead-letter topic, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Endpoints disabled, by reason.
    pub disabled: BTreeMap<String, u64>,
    /// Deliveries held in memory.
    pub in_flight: i64,
}

impl Snapshot {
    pub fn from_families(families: &[MetricFamily]) -> Self {
        let mut s = Snapshot::default();
        for family in families {
            for metric in family.get_metric() {
                let label = |name: &str| {
                    metric
                        .get_label()
                        .iter()
                        .find(|l| l.name() == name)
                        .map(|l| l.value().to_owned())
                        .unwrap_or_default()
                };
                let counter = metric.get_counter().get_value() as u64;
                match family.name() {
                    "hookrelay_events_consumed_total" => s.events_in += counter,
                    "hookrelay_events_invalid_total" => s.invalid += counter,
                    "hookrelay_deliveries_total" if label("outcome") == "delivered" => {
                        s.delivered += counter;
                    }
                    "hookrelay_attempts_total" => {
                        s.requests += counter;
                        if label("outcome") != "success" {
                            s.failed_requests += counter;
                        }
                    }
                    "hookrelay_batch_size" => {
                        let h = metric.get_histogram();
                        let single = h
                            .get_bucket()
                            .iter()
                            .find(|b| b.upper_bound() >= 1.0)
                            .map_or(0, |b| b.cumulative_count());
                        s.batches += h.get_sample_count().saturating_sub(single);
                    }
                    "hookrelay_retry_scheduled_total" => {
                        *s.retries.entry(label("tier")).or_default() += counter;
                    }
                    "hookrelay_dead_lettered_total" => {
                        *s.dead_lettered.entry(label("reason")).or_default() += counter;
                    }
                    "hookrelay_endpoints_disabled_total" => {
                        *s.disabled.entry(label("reason")).or_default() += counter;
                    }
                    "hookrelay_in_flight_deliveries" => {
                        s.in_flight += metric.get_gauge().get_value() as i64;
                    }
                    _ => {}
                }
            }
        }
        s
    }

    pub fn retries_total(&self) -> u64 {
        self.retries.values().sum()
    }

    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    pub fn disabled_total(&self) -> u64 {
        self.disabled.values().sum()
    }

    /// Retries per tier as `a/b/c/d/e`, one number for each of `tiers` tiers.
    pub(super) fn retries_by_tier(&self, tiers: usize) -> String {
        (1..=tiers)
            .map(|t| {
                self.retries
                    .get(&t.to_string())
                    .copied()
                    .unwrap_or(0)
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The column titles of the progress table; `retries` shows one number per tier.
pub(super) fn progress_header(tiers: usize) -> String {
    let retries = format!(
        "retries {}",
        (1..=tiers)
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join("/")
    );
    format!(
        "{:>5} {:>7} {:>9} {:>8} {:>6} {:>7} {:>w$} {:>4} {:>8} {:>9}",
        "time",
        "in",
        "delivered",
        "requests",
        "failed",
        "batched",
        retries,
        "dlq",
        "disabled",
        "in-flight",
        w = retry_column(tiers),
    )
}

/// Wide enough for the title and for counts in the hundreds per tier.
pub(super) fn retry_column(tiers: usize) -> usize {
    (8 + 2 * tiers).max(4 * tiers + 1)
}

/// One line of live progress.
pub fn progress_line(elapsed: Duration, s: &Snapshot, tiers: usize) -> String {
    format!(
        "{:>4}s {:>7} {:>9} {:>8} {:>6} {:>7} {:>w$} {:>4} {:>8} {:>9}",
        elapsed.as_secs(),
        s.events_in,
        s.delivered,
        s.requests,
        s.failed_requests,
        s.batches,
        s.retries_by_tier(tiers),
        s.dead_lettered_total(),
        s.disabled_total(),
        s.in_flight,
        w = retry_column(tiers),
    )
}

pub(super) async fn show_progress(
    registry: Registry,
    tiers: usize,
    begun: Instant,
    mut started: watch::Receiver<Option<Arc<SubscriptionTable>>>,
    mut stop: watch::Receiver<bool>,
) {
    // The table starts below the addresses the service prints once it is up.
    tokio::select! {
        _ = stop.wait_for(|s| *s) => return,
        ok = started.wait_for(Option::is_some) => if ok.is_err() { return },
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut printed = 0u64;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let families = registry.gather();
        // Until the service registered its metrics there is nothing to show.
        if families.is_empty() {
            continue;
        }
        if printed.is_multiple_of(20) {
            println!("{}", progress_header(tiers));
        }
        printed += 1;
        let snapshot = Snapshot::from_families(&families);
        println!("{}", progress_line(begun.elapsed(), &snapshot, tiers));
    }
}

pub(super) fn tiers_label(tiers: &[RetryTier]) -> String {
    tiers
        .iter()
        .map(|t| humantime::format_duration(t.delay).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn by_reason(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!(" ({})", parts.join(", "))
}

pub(super) fn print_summary(
    elapsed: Duration,
    produced: &Produced,
    s: &Snapshot,
    tiers: &[RetryTier],
    endpoints: &[DemoEndpoint],
    receivers: &Receivers,
    table: Option<&SubscriptionTable>,
) {
    println!();
    println!("summary after {}s", elapsed.as_secs());
    println!(
        "  produced       {} events ({} steady, {} in the bulk import)",
        produced.steady + produced.burst,
        produced.steady,
        produced.burst
    );
    println!(
        "  consumed       {} events ({} invalid)",
        s.events_in, s.invalid
    );
    println!(
        "  delivered      {} deliveries in {} requests ({} failed, {} batches of several events)",
        s.delivered, s.requests, s.failed_requests, s.batches
    );
    let per_tier: Vec<String> = tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "{} after {}",
                s.retries.get(&(i + 1).to_string()).copied().unwrap_or(0),
                humantime::format_duration(t.delay)
            )
        })
        .collect();
    println!(
        "  retried        {} ({})",
        s.retries_total(),
        per_tier.join(", ")
    );
    println!(
        "  dead-lettered  {}{}",
        s.dead_lettered_total(),
        by_reason(&s.dead_lettered)
    );
    println!(
        "  disabled       {} endpoint{}{}",
        s.disabled_total(),
        if s.disabled_total() == 1 { "" } else { "s" },
        by_reason(&s.disabled)
    );
    println!("  receivers (as they counted it themselves):");
    for ep in endpoints {
        let r = receivers.get(ep.role);
        let seen = match &r.state {
            Some(state) => {
                let st = &state.stats;
                format!(
                    "{} requests, {} events accepted, {} failed on purpose, {} bad signatures",
                    st.requests.load(Ordering::Relaxed),
                    st.events.load(Ordering::Relaxed),
                    st.failed.load(Ordering::Relaxed),
                    st.bad_signatures.load(Ordering::Relaxed),
                )
            }
            None => "unreachable".to_owned(),
        };
        let status = match table.and_then(|t| t.get(&ep.endpoint.id).ok().flatten()) {
            Some(e) if !e.enabled => "paused by its owner".to_owned(),
            Some(e) if e.breaker_disabled() => format!(
                "DISABLED ({})",
                e.status
                    .as_ref()
                    .and_then(|s| s.reason.as_deref())
                    .unwrap_or("no reason given")
            ),
            Some(_) => "enabled".to_owned(),
            None => "unknown".to_owned(),
        };
        println!("    {:<8} {seen}; endpoint {status}", r.role.name());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus::Registry;

    use super::*;
    use crate::telemetry::Metrics;

    #[test]
    fn snapshot_reads_what_the_service_records() {
        let registry = Registry::new();
        let m = Metrics::new(&registry).expect("register");
        m.events_consumed.inc_by(7);
        m.deliveries.with_label_values(&["delivered"]).inc_by(5);
        m.deliveries
            .with_label_values(&["retry_scheduled"])
            .inc_by(3);
        m.attempts.with_label_values(&["success", "2xx"]).inc_by(4);
        m.attempts.with_label_values(&["failure", "5xx"]).inc_by(2);
        m.attempts
            .with_label_values(&["failure", "connect"])
            .inc_by(1);
        for size in [1.0, 1.0, 3.0, 100.0] {
            m.batch_size.observe(size);
        }
        m.retry_scheduled.with_label_values(&["1"]).inc_by(3);
        m.retry_scheduled.with_label_values(&["3"]).inc();
        m.dead_lettered
            .with_label_values(&["endpoint_disabled"])
            .inc_by(2);
        m.endpoints_disabled
            .with_label_values(&["consecutive_failures"])
            .inc();
        m.in_flight.set(9);

        let s = Snapshot::from_families(&registry.gather());
        assert_eq!(s.events_in, 7);
        assert_eq!(s.delivered, 5, "only the delivered outcome");
        assert_eq!((s.requests, s.failed_requests), (7, 3));
        assert_eq!(s.batches, 2, "requests with more than one event");
        assert_eq!(s.retries_by_tier(5), "3/0/1/0/0");
        assert_eq!(s.retries_total(), 4);
        assert_eq!(s.dead_lettered_total(), 2);
        assert_eq!(s.disabled_total(), 1);
        assert_eq!(s.in_flight, 9);

        let line = progress_line(Duration::from_secs(12), &s, 5);
        let header = progress_header(5);
        assert_eq!(
            line.len(),
            header.len(),
            "columns line up:\n{header}\n{line}"
        );
        assert!(line.contains("3/0/1/0/0"), "{line}");
    }
}
