//! Every Prometheus metric hookrelay exports, defined once and registered into a registry
//! that is passed in. Labels are bounded sets (outcome, reason, tier, status class,
//! partition); endpoint, account and event ids go in log spans, never in labels.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::delivery::{DeadLetterReason, DeliveryOutcome, DisableReason, ErrorClass, SlowReason};

/// The names of every metric, for documentation and for the dashboard/alert tests.
pub const METRIC_NAMES: &[&str] = &[
    "hookrelay_events_consumed_total",
    "hookrelay_events_invalid_total",
    "hookrelay_deliveries_total",
    "hookrelay_attempts_total",
    "hookrelay_request_duration_seconds",
    "hookrelay_end_to_end_latency_seconds",
    "hookrelay_batch_size",
    "hookrelay_retry_scheduled_total",
    "hookrelay_retry_waiting",
    "hookrelay_retry_overdue",
    "hookrelay_dead_lettered_total",
    "hookrelay_endpoints_disabled_total",
    "hookrelay_endpoints_slow_total",
    "hookrelay_in_flight_deliveries",
    "hookrelay_consumer_lag",
    "hookrelay_subscriptions_endpoints",
    "hookrelay_subscriptions_ready",
    "hookrelay_subscriptions_failures_total",
    "hookrelay_paused_partitions",
    "hookrelay_oversize_records_total",
    "hookrelay_commit_failures_total",
    "hookrelay_notices_pending",
    "hookrelay_api_requests_total",
    "hookrelay_api_request_duration_seconds",
    "hookrelay_api_rate_limited_total",
    "hookrelay_api_redeliveries_total",
    "hookrelay_notifications_total",
    "hookrelay_notification_smtp_attempts_total",
];

/// How the notifier finished with a notice (`hookrelay_notifications_total{outcome}`): sent,
/// or skipped for good (each skip is logged with its reason).
pub const NOTIFICATION_OUTCOMES: &[&str] = &[
    "sent",
    "no_recipient",
    "rejected",
    "superseded",
    "unsupported",
    "undecodable",
];

/// Results of one SMTP attempt (`hookrelay_notification_smtp_attempts_total{outcome}`):
/// accepted by the server, failed and retried later, or rejected for good.
pub const SMTP_ATTEMPT_OUTCOMES: &[&str] = &["accepted", "failed", "rejected"];

/// Why intake holds a partition (label of `hookrelay_paused_partitions`).
pub const PAUSE_REASONS: &[&str] = &[
    "retry_not_due",
    "endpoint_full",
    "in_flight_limit",
    "table_stopped",
    "schema_registry",
    "stopping",
    "resting",
];

/// Why the customer API queued a delivery (label of `hookrelay_api_redeliveries_total`).
pub const API_REDELIVERY_KINDS: &[&str] = &["test", "retry", "replay"];

/// Where an oversize record was going (label of `hookrelay_oversize_records_total`).
pub const OVERSIZE_DESTINATIONS: &[&str] = &["invalid", "retry", "dead_letter"];

#[derive(Clone)]
pub struct Metrics {
    /// Input records read from the events topic.
    pub events_consumed: IntCounter,
    /// Input records dead-ended on the invalid-records topic, by reason.
    pub events_invalid: IntCounterVec,
    /// Deliveries (one per event and endpoint, before batching) by final outcome of this
    /// process's handling: delivered, retry_scheduled, dead_lettered, dropped.
    pub deliveries: IntCounterVec,
    /// `deliveries{outcome="delivered"}` and `attempts{outcome="success"}`, resolved once:
    /// they count every request, and a label lookup hashes the label values each time.
    delivered: IntCounter,
    attempt_successes: IntCounter,
    /// HTTP attempts by outcome (success, failure, refused) and status class (2xx..5xx,
    /// timeout, connect, other).
    pub attempts: IntCounterVec,
    pub request_duration: Histogram,
    /// Event `created` to the 2xx that delivered it.
    pub end_to_end_latency: Histogram,
    /// Events per request.
    pub batch_size: Histogram,
    pub retry_scheduled: IntCounterVec,
    /// Records held by a tier worker waiting for their due time, by tier.
    pub retry_waiting: IntGaugeVec,
    /// Records held past their due time by more than a second (a stuck or overloaded worker).
    pub retry_overdue: IntGaugeVec,
    pub dead_lettered: IntCounterVec,
    pub endpoints_disabled: IntCounterVec,
    /// Times a worker judged its endpoint slow, by reason (the excess then goes to a retry
    /// tier instead of waiting).
    pub endpoints_slow: IntCounterVec,
    pub in_flight: IntGauge,
    /// Consumer lag per topic partition, from librdkafka statistics.
    pub consumer_lag: IntGaugeVec,
    pub subscriptions_endpoints: IntGauge,
    pub subscriptions_ready: IntGauge,
    /// The subscriptions table stopped following its topic (a storage error).
    pub subscriptions_failures: IntCounter,
    /// Partitions intake holds, by why (see [`PAUSE_REASONS`]).
    pub paused_partitions: IntGaugeVec,
    /// Records too large for the broker, written in a smaller form instead, by destination.
    pub oversize_records: IntCounterVec,
    /// Offset commits the broker did not take (they are retried by the next commit).
    pub commit_failures: IntCounter,
    /// `endpoint.disabled` notices this instance owes and has not yet written.
    pub notices_pending: IntGauge,
    /// Customer API requests by route template (`/v1/endpoints/{id}`) and HTTP status.
    pub api_requests: IntCounterVec,
    pub api_request_duration: Histogram,
    /// API requests refused because their key exceeded its request rate.
    pub api_rate_limited: IntCounter,
    /// Deliveries the API put on the requests topic, by why: test, retry, replay.
    pub api_redeliveries: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them. Fails only if the names clash with metrics
    /// already in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let deliveries = counter_vec(
            "hookrelay_deliveries_total",
            "Deliveries (event x endpoint) by outcome.",
            &["outcome"],
        )?;
        let attempts = counter_vec(
            "hookrelay_attempts_total",
            "HTTP attempts by outcome (success, failure) and error class (none on success).",
            &["outcome", "error_class"],
        )?;
        let m = Metrics {
            events_consumed: IntCounter::new(
                "hookrelay_events_consumed_total",
                "Input records read from the events topic.",
            )?,
            events_invalid: counter_vec(
                "hookrelay_events_invalid_total",
                "Input records sent to the invalid-records topic, by reason.",
                &["reason"],
            )?,
            delivered: deliveries.with_label_values(&[DeliveryOutcome::Delivered.as_str()]),
            attempt_successes: attempts.with_label_values(&["success", "none"]),
            deliveries,
            attempts,
            request_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "hookrelay_request_duration_seconds",
                    "Time from sending a webhook request to its response or failure.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            )?,
            end_to_end_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "hookrelay_end_to_end_latency_seconds",
                    "Time from an event's created timestamp to the 2xx that delivered it.",
                )
                .buckets(vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0, 7200.0,
                    86400.0,
                ]),
            )?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("hookrelay_batch_size", "Events per webhook request.")
                    .buckets(vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0]),
            )?,
            retry_scheduled: counter_vec(
                "hookrelay_retry_scheduled_total",
                "Deliveries written to a retry tier, by tier.",
                &["tier"],
            )?,
            retry_waiting: IntGaugeVec::new(
                Opts::new(
                    "hookrelay_retry_waiting",
                    "Retry records held until their due time, by tier.",
                ),
                &["tier"],
            )?,
            retry_overdue: IntGaugeVec::new(
                Opts::new(
                    "hookrelay_retry_overdue",
                    "Retry records more than a second past their due time, by tier.",
                ),
                &["tier"],
            )?,
            dead_lettered: counter_vec(
                "hookrelay_dead_lettered_total",
                "Deliveries written to the dead-letter topic, by reason.",
                &["reason"],
            )?,
            endpoints_disabled: counter_vec(
                "hookrelay_endpoints_disabled_total",
                "Endpoints this process disabled, by reason.",
                &["reason"],
            )?,
            endpoints_slow: counter_vec(
                "hookrelay_endpoints_slow_total",
                "Times an endpoint was judged slow (what does not fit its queue goes to a retry tier), by reason.",
                &["reason"],
            )?,
            in_flight: IntGauge::new(
                "hookrelay_in_flight_deliveries",
                "Deliveries held in memory: queued or being sent.",
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "hookrelay_consumer_lag",
                    "Records between the committed offset and the high watermark.",
                ),
                &["topic", "partition"],
            )?,
            subscriptions_endpoints: IntGauge::new(
                "hookrelay_subscriptions_endpoints",
                "Endpoints in the local subscriptions table.",
            )?,
            subscriptions_ready: IntGauge::new(
                "hookrelay_subscriptions_ready",
                "1 while the subscriptions table is caught up and following its topic.",
            )?,
            subscriptions_failures: IntCounter::new(
                "hookrelay_subscriptions_failures_total",
                "Times the subscriptions table stopped following its topic (storage errors).",
            )?,
            paused_partitions: IntGaugeVec::new(
                Opts::new(
                    "hookrelay_paused_partitions",
                    "Partitions intake holds, by reason.",
                ),
                &["reason"],
            )?,
            oversize_records: counter_vec(
                "hookrelay_oversize_records_total",
                "Records too large for the broker, written in a smaller form, by destination.",
                &["destination"],
            )?,
            commit_failures: IntCounter::new(
                "hookrelay_commit_failures_total",
                "Offset commits that failed (the next commit carries the same offsets).",
            )?,
            notices_pending: IntGauge::new(
                "hookrelay_notices_pending",
                "endpoint.disabled notices this instance owes and has not yet written.",
            )?,
            api_requests: counter_vec(
                "hookrelay_api_requests_total",
                "Customer API requests by route template and HTTP status.",
                &["route", "status"],
            )?,
            api_request_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "hookrelay_api_request_duration_seconds",
                    "Time to answer a customer API request.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
                ]),
            )?,
            api_rate_limited: IntCounter::new(
                "hookrelay_api_rate_limited_total",
                "Customer API requests refused (429) because their key exceeded its rate.",
            )?,
            api_redeliveries: counter_vec(
                "hookrelay_api_redeliveries_total",
                "Deliveries the customer API queued on the requests topic, by kind (test, retry, replay).",
                &["kind"],
            )?,
        };
        registry.register(Box::new(m.events_consumed.clone()))?;
        registry.register(Box::new(m.events_invalid.clone()))?;
        registry.register(Box::new(m.deliveries.clone()))?;
        registry.register(Box::new(m.attempts.clone()))?;
        registry.register(Box::new(m.request_duration.clone()))?;
        registry.register(Box::new(m.end_to_end_latency.clone()))?;
        registry.register(Box::new(m.batch_size.clone()))?;
        registry.register(Box::new(m.retry_scheduled.clone()))?;
        registry.register(Box::new(m.retry_waiting.clone()))?;
        registry.register(Box::new(m.retry_overdue.clone()))?;
        registry.register(Box::new(m.dead_lettered.clone()))?;
        registry.register(Box::new(m.endpoints_disabled.clone()))?;
        registry.register(Box::new(m.endpoints_slow.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        registry.register(Box::new(m.consumer_lag.clone()))?;
        registry.register(Box::new(m.subscriptions_endpoints.clone()))?;
        registry.register(Box::new(m.subscriptions_ready.clone()))?;
        registry.register(Box::new(m.subscriptions_failures.clone()))?;
        registry.register(Box::new(m.paused_partitions.clone()))?;
        registry.register(Box::new(m.oversize_records.clone()))?;
        registry.register(Box::new(m.commit_failures.clone()))?;
        registry.register(Box::new(m.notices_pending.clone()))?;
        registry.register(Box::new(m.api_requests.clone()))?;
        registry.register(Box::new(m.api_request_duration.clone()))?;
        registry.register(Box::new(m.api_rate_limited.clone()))?;
        registry.register(Box::new(m.api_redeliveries.clone()))?;
        m.zero_known_series();
        Ok(m)
    }

    /// Creates the series whose label values are known in advance at zero, so they are
    /// scraped (and `increase()` sees their first increment) before anything happens.
    fn zero_known_series(&self) {
        for reason in crate::event::InvalidRecord::REASONS {
            self.events_invalid.with_label_values(&[reason]);
        }
        for outcome in DeliveryOutcome::ALL {
            self.deliveries.with_label_values(&[outcome.as_str()]);
        }
        for class in ErrorClass::ALL {
            self.attempts
                .with_label_values(&["failure", class.as_str()]);
        }
        self.attempts.with_label_values(&["success", "none"]);
        for reason in DeadLetterReason::ALL {
            self.dead_lettered.with_label_values(&[reason.as_str()]);
        }
        for reason in DisableReason::ALL {
            self.endpoints_disabled
                .with_label_values(&[reason.as_str()]);
        }
        for reason in SlowReason::ALL {
            self.endpoints_slow.with_label_values(&[reason.as_str()]);
        }
        for reason in PAUSE_REASONS {
            self.paused_partitions.with_label_values(&[reason]).set(0);
        }
        for destination in OVERSIZE_DESTINATIONS {
            self.oversize_records.with_label_values(&[destination]);
        }
        for kind in API_REDELIVERY_KINDS {
            self.api_redeliveries.with_label_values(&[kind]);
        }
    }

    /// One customer API request was answered.
    pub fn api_request(
        &self,
        route: &str,
        status: axum::http::StatusCode,
        elapsed: std::time::Duration,
    ) {
        self.api_requests
            .with_label_values(&[route, status.as_str()])
            .inc();
        self.api_request_duration.observe(elapsed.as_secs_f64());
    }

    /// The API queued a delivery on the requests topic (`kind`: one of
    /// [`API_REDELIVERY_KINDS`]).
    pub fn api_redelivery(&self, kind: &str) {
        self.api_redeliveries.with_label_values(&[kind]).inc();
    }

    /// One delivery reached `outcome`.
    pub fn delivery(&self, outcome: DeliveryOutcome, count: usize) {
        if outcome == DeliveryOutcome::Delivered {
            self.delivered.inc_by(count as u64);
            return;
        }
        self.deliveries
            .with_label_values(&[outcome.as_str()])
            .inc_by(count as u64);
    }

    /// One HTTP attempt finished: `None` for a 2xx, else the class of its failure.
    pub fn attempt(&self, failure: Option<ErrorClass>) {
        match failure {
            None => self.attempt_successes.inc(),
            Some(class) => self
                .attempts
                .with_label_values(&["failure", class.as_str()])
                .inc(),
        }
    }

    /// One delivery went to the dead-letter topic.
    pub fn dead_letter(&self, reason: DeadLetterReason) {
        self.dead_lettered
            .with_label_values(&[reason.as_str()])
            .inc();
        self.delivery(DeliveryOutcome::DeadLettered, 1);
    }

    /// Creates the per-tier series for `tiers` retry tiers.
    pub fn init_tiers(&self, tiers: usize) {
        for i in 1..=tiers {
            let tier = i.to_string();
            self.retry_scheduled.with_label_values(&[&tier]);
            self.retry_waiting.with_label_values(&[&tier]).set(0);
            self.retry_overdue.with_label_values(&[&tier]).set(0);
        }
    }

    /// A private registry with the metrics in it, for tests and benches.
    pub fn unregistered() -> Self {
        // Registering into a fresh registry cannot clash.
        Self::new(&Registry::new()).unwrap_or_else(|e| unreachable!("fresh registry: {e}"))
    }
}

/// The notifier's metrics (owner e-mails): `run` registers them whether or not the notifier
/// runs there (at zero if not), `hookrelay notify` registers only these.
#[derive(Clone)]
pub struct NotifyMetrics {
    /// Notices finished with, by outcome ([`NOTIFICATION_OUTCOMES`]).
    pub notifications: IntCounterVec,
    /// SMTP attempts by outcome ([`SMTP_ATTEMPT_OUTCOMES`]).
    pub smtp_attempts: IntCounterVec,
}

impl NotifyMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = NotifyMetrics {
            notifications: IntCounterVec::new(
                Opts::new(
                    "hookrelay_notifications_total",
                    "Endpoint notices the notifier finished with: e-mailed, or skipped for good, by outcome.",
                ),
                &["outcome"],
            )?,
            smtp_attempts: IntCounterVec::new(
                Opts::new(
                    "hookrelay_notification_smtp_attempts_total",
                    "SMTP attempts to send an owner e-mail, by outcome (accepted, failed and retried, rejected).",
                ),
                &["outcome"],
            )?,
        };
        registry.register(Box::new(m.notifications.clone()))?;
        registry.register(Box::new(m.smtp_attempts.clone()))?;
        for outcome in NOTIFICATION_OUTCOMES {
            m.notifications.with_label_values(&[outcome]);
        }
        for outcome in SMTP_ATTEMPT_OUTCOMES {
            m.smtp_attempts.with_label_values(&[outcome]);
        }
        Ok(m)
    }
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if encoder.encode(&registry.gather(), &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_metric_is_registered() {
        let registry = Registry::new();
        let m = Metrics::new(&registry).expect("register");
        // Vec metrics only appear once a label set is used.
        m.events_invalid.with_label_values(&["x"]).inc();
        m.deliveries.with_label_values(&["x"]).inc();
        m.attempts.with_label_values(&["x", "y"]).inc();
        m.retry_scheduled.with_label_values(&["x"]).inc();
        m.retry_waiting.with_label_values(&["x"]).set(1);
        m.retry_overdue.with_label_values(&["x"]).set(1);
        m.dead_lettered.with_label_values(&["x"]).inc();
        m.endpoints_disabled.with_label_values(&["x"]).inc();
        m.consumer_lag.with_label_values(&["t", "0"]).set(1);
        m.paused_partitions.with_label_values(&["x"]).set(1);
        m.oversize_records.with_label_values(&["x"]).inc();
        m.api_requests.with_label_values(&["x", "200"]).inc();
        m.api_request_duration.observe(0.1);
        m.api_rate_limited.inc();
        m.api_redeliveries.with_label_values(&["x"]).inc();
        NotifyMetrics::new(&registry).expect("register the notifier's");
        let text = render(&registry);
        for name in METRIC_NAMES {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
