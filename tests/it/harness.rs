//! Runs hookrelay inside the test process against the real broker: a config with topics
//! unique to the test, retry tiers scaled to seconds, the admin server on port 0, and a
//! private RocksDB directory; plus helpers to register endpoints and produce events.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hookrelay::config::Config;
use hookrelay::ids::{AccountId, EndpointId, Secret};
use hookrelay::kafka::topics::{ensure_topics, topic_specs};
use hookrelay::subscriptions::{Endpoint, SubscriptionTable};
use prometheus::Registry;
use rdkafka::producer::FutureProducer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::{self, unique};
use crate::isolated_env::isolated_env;

/// A config for one test: unique topic names and group, tiers in seconds.
pub fn test_config(tiers_secs: &[u64], overrides: &[(&str, &str)]) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let delays: Vec<String> = tiers_secs.iter().map(|s| format!("{s}s")).collect();
    let mut env = isolated_env(&unique("hr"), &common::bootstrap(), &delays);
    env.extend(
        [
            ("HOOKRELAY__TOPICS__PARTITIONS__EVENTS", "4".to_owned()),
            (
                "HOOKRELAY__TOPICS__PARTITIONS__SUBSCRIPTIONS",
                "2".to_owned(),
            ),
            ("HOOKRELAY__TOPICS__PARTITIONS__RETRY", "2".to_owned()),
            ("HOOKRELAY__ADMIN__LISTEN", "127.0.0.1:0".to_owned()),
            ("HOOKRELAY__SHUTDOWN__DRAIN_TIMEOUT", "5s".to_owned()),
            (
                "HOOKRELAY__SUBSCRIPTIONS__DATA_DIR",
                dir.path().join("subs").display().to_string(),
            ),
            // Test receivers are plain http on loopback.
            ("HOOKRELAY__API__HTTPS_REQUIRED", "false".to_owned()),
        ]
        .into_iter()
        .chain(overrides.iter().map(|(k, v)| (*k, (*v).to_owned())))
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let config = Config::load_from(None, &env).expect("test config is valid");
    (config, dir)
}

pub async fn create_topics(config: &Config) {
    ensure_topics(&common::admin(), &topic_specs(config))
        .await
        .expect("create topics");
}

/// hookrelay running in this process.
pub struct RunningApp {
    pub admin: SocketAddr,
    /// Where the customer API answers (the admin address unless `api.listen` is set).
    pub api: Option<SocketAddr>,
    pub registry: Registry,
    pub table: Arc<SubscriptionTable>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    pub async fn start(config: Config) -> RunningApp {
        let registry = Registry::new();
        let (stop, stop_rx) = watch::channel(false);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let reg = registry.clone();
        let handle = tokio::spawn(async move {
            hookrelay::app::run(config, reg, stop_rx, move |s| {
                let _ = started_tx.send((s.admin_addr, s.api_addr, s.table.clone()));
            })
            .await
        });
        let (admin, api, table) = match tokio::time::timeout(Duration::from_secs(60), started_rx)
            .await
            .expect("hookrelay started within 60 s")
        {
            Ok(started) => started,
            Err(_) => match handle.await {
                Ok(Err(e)) => panic!("hookrelay failed to start: {e:#}"),
                other => panic!("hookrelay failed to start: {other:?}"),
            },
        };
        RunningApp {
            admin,
            api,
            registry,
            table,
            stop,
            handle,
        }
    }

    /// Graceful stop, as on SIGTERM; returns what `run` returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(60), self.handle)
            .await
            .expect("stopped within 60 s")
            .expect("run task panicked")
    }

    pub fn metrics_text(&self) -> String {
        hookrelay::telemetry::metrics::render(&self.registry)
    }

    /// The value of a counter or gauge series (summed over labels matching `labels`).
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        metric_value(&self.metrics_text(), name, labels)
    }
}

/// Sums the samples of `name` whose label set contains `labels` (e.g. `outcome="delivered"`).
pub fn metric_value(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name)
                && l[name.len()..].starts_with(['{', ' '])
                && (labels.is_empty() || l.contains(labels))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn secret() -> Secret {
    hookrelay::sign::generate_secret()
}

/// An enabled endpoint subscribed to `types` (empty = all).
pub fn endpoint(id: &str, account: &str, url: &str, types: &[&str], secret: &Secret) -> Endpoint {
    let mut ep = Endpoint::new(
        EndpointId::from(id),
        AccountId::from(account),
        url.parse().expect("url"),
        secret.clone(),
    );
    ep.event_types = types.iter().map(|t| (*t).to_owned()).collect();
    ep
}

pub async fn publish_endpoints(config: &Config, endpoints: &[Endpoint]) {
    let producer: FutureProducer = common::producer();
    for ep in endpoints {
        hookrelay::subscriptions::publish(&producer, &config.topics.subscriptions, ep)
            .await
            .expect("publish endpoint");
    }
}
