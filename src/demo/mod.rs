//! `hookrelay demo`: the whole pipeline in one process, with nothing to install: an
//! in-process Kafka (librdkafka's mock cluster), sample receivers on loopback, a stream of
//! license events with a burst, and live progress read from the Prometheus registry.
//!
//! The receivers show each path a delivery can take: one healthy, one that fails every
//! other request (retries), one slow (isolation: it does not hold the others back) and one
//! that is down (retries, the circuit breaker disabling it, dead letters). The retry tiers
//! are scaled to seconds so all of that happens within a minute.
//!
//! When the config names Kafka brokers (a `--config` file or
//! `HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS`), the demo runs there instead, on topics and a
//! consumer group of its own that it deletes at the end.

mod cluster;
mod common;
mod endpoints;
mod feed;
mod mail;
mod progress;
mod receivers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use prometheus::Registry;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::watch;

use crate::kafka::topics::topic_specs;
use crate::subscriptions::{SubscriptionTable, publish};

use cluster::{admin_listen, create_external_topics, create_mock_topics, delete_external_topics};
pub use common::DemoError;
use common::kafka;
use endpoints::demo_endpoints;
use feed::{Feed, Produced};
use mail::show_owner_emails;
use progress::{print_summary, show_progress, tiers_label};
use receivers::start_receivers;

pub use cluster::adapt_config;
pub use endpoints::{account_of, subscribed_types};
pub use feed::{Encoding, burst_event, stream_event};
pub use progress::{Snapshot, progress_line};
pub use receivers::{Role, events_in_body};

/// Options of `hookrelay demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Stop after this long (e.g. `45s`, `2m`); without it the demo runs until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// A config file. If it (or HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS) names Kafka brokers, the
    /// demo runs there on topics of its own, deleted at the end; otherwise it runs on an
    /// in-process mock Kafka cluster.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Address of the admin server (/metrics, /healthz, /readyz). Without it: the config's
    /// admin.listen (127.0.0.1:8080), or a free port on that address when it is taken.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// License events per second in the steady stream.
    #[arg(long, default_value_t = 4.0)]
    pub rate: f64,
    /// Events in the bulk import for one account, five seconds in (0: none).
    #[arg(long, default_value_t = 2000)]
    pub burst: usize,
}

/// Runs the demo until Ctrl-C/SIGTERM or `--duration`, then prints a summary.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    if !(options.rate.is_finite() && options.rate > 0.0) {
        return Err(DemoError::Rate(options.rate).into());
    }
    let mut config = crate::config::Config::load(options.config.as_deref())?;
    let run_id = run_id();
    let workdir = WorkDir::create(&run_id)?;
    let external = config.kafka_configured();
    adapt_config(
        &mut config,
        &workdir.path,
        external.then_some(run_id.as_str()),
    )?;
    config.admin.listen = admin_listen(options.listen, config.admin.listen);
    config.validate()?;
    if !external {
        // The in-process broker goes away with the demo while clients of the stopped service
        // may still hold connections: librdkafka's own reports about that are noise here.
        config.log.filter = "warn,librdkafka=off,rdkafka=off".to_owned();
    }
    crate::telemetry::logging::init(&config.log);

    let receivers = start_receivers().await?;
    let endpoints = demo_endpoints(&receivers);
    let _mail_sink = show_owner_emails(&mut config).await?;

    // The mock cluster lives until the end of this function: every client of the run
    // (ours and the service's) talks to it.
    let cluster = if external {
        None
    } else {
        let cluster = MockCluster::new(1).map_err(kafka("starting the mock cluster"))?;
        config.kafka.bootstrap_servers = cluster.bootstrap_servers();
        Some(cluster)
    };
    let specs = topic_specs(&config);
    match &cluster {
        Some(cluster) => create_mock_topics(cluster, &specs)?,
        None => create_external_topics(&config, &specs).await?,
    }

    println!("hookrelay demo");
    match &cluster {
        Some(_) => println!(
            "  kafka      in-process mock cluster at {}",
            config.kafka.bootstrap_servers
        ),
        None => println!(
            "  kafka      {} (topics and group prefixed hookrelay-demo-{run_id}, deleted at the end)",
            config.kafka.bootstrap_servers
        ),
    }
    println!(
        "  retries    after {} then the dead-letter topic",
        tiers_label(&config.retry.tiers)
    );
    for ep in &endpoints {
        println!(
            "  endpoint   {:<16} {:<8} {:<12} {}",
            ep.endpoint.id.as_str(),
            ep.role.name(),
            ep.endpoint.account_id.as_str(),
            ep.endpoint.url
        );
    }

    let producer: FutureProducer = crate::kafka::client_config(&config.kafka)
        .set("linger.ms", "5")
        .create()
        .map_err(kafka("creating the demo producer"))?;
    for ep in &endpoints {
        publish(&producer, &config.topics.subscriptions, &ep.endpoint)
            .await
            .context("registering a sample endpoint")?;
    }
    let demo_keys = create_demo_keys(&config, &producer).await?;

    let (stop_tx, stop) = watch::channel(false);
    let stopper = tokio::spawn(stop_when(
        crate::app::shutdown_on_signals(),
        options.duration,
        stop_tx,
    ));
    let (started_tx, mut started_rx) = watch::channel::<Option<Arc<SubscriptionTable>>>(None);
    let registry = Registry::new();
    let begun = Instant::now();
    let events_topic = config.topics.events.clone();
    let feeder = {
        let producer = producer.clone();
        let stop = stop.clone();
        let plan = Feed {
            run_id: run_id.clone(),
            rate: options.rate,
            burst: options.burst,
        };
        tokio::spawn(async move {
            // Events start once the service is up, so the burst lands five seconds in. If the
            // service stops first (or fails to start), there is nothing to feed.
            let started = async { started_rx.wait_for(Option::is_some).await.is_ok() };
            let mut stopped = stop.clone();
            tokio::select! {
                ok = started => if !ok { return Ok(Produced::default()) },
                _ = stopped.wait_for(|s| *s) => return Ok(Produced::default()),
            }
            feed::feed(&producer, &events_topic, &plan, stop).await
        })
    };
    let progress = tokio::spawn(show_progress(
        registry.clone(),
        config.retry.tiers.len(),
        begun,
        started_tx.subscribe(),
        stop.clone(),
    ));

    let result = crate::app::run(config.clone(), registry.clone(), stop.clone(), |started| {
        let base = format!("http://{}", started.admin_addr);
        println!("  metrics    {base}/metrics");
        println!("  health     {base}/healthz");
        println!("  ready      {base}/readyz");
        if let Some(api) = started.api_addr {
            for (account, token) in &demo_keys {
                println!("  dashboard  http://{api}/dashboard#key={token}  (account {account})");
            }
        }
        println!("  stop       Ctrl-C (or --duration)");
        println!();
        let _ = started_tx.send(Some(started.table.clone()));
    })
    .await;

    // The service stopped (asked to, or failed): stop the rest.
    stopper.abort();
    let produced = match feeder.await {
        Ok(Ok(produced)) => produced,
        Ok(Err(e)) => {
            eprintln!("demo: the event stream stopped early: {e:#}");
            Produced::default()
        }
        Err(_) => Produced::default(),
    };
    progress.abort();
    let _ = producer.flush(Duration::from_secs(5));
    let table = started_tx.borrow().clone();
    // Without a start there is nothing to sum up; the error says what went wrong.
    if table.is_some() {
        let snapshot = Snapshot::from_families(&registry.gather());
        print_summary(
            begun.elapsed(),
            &produced,
            &snapshot,
            &config.retry.tiers,
            &endpoints,
            &receivers,
            table.as_deref(),
        );
    }
    drop(table);
    for r in &receivers.all() {
        r.task.abort();
    }
    if cluster.is_none() {
        delete_external_topics(&config, &specs).await;
    }
    drop(producer);
    drop(cluster);
    drop(workdir);
    result
}

/// A short id unique to this run: names the working directory and, on a real cluster, the
/// topics and group.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", (nanos / 1_000_000) & 0xff_ffff_ffff)
}

/// The demo's own directory under the system temp dir, removed when dropped.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(run_id: &str) -> Result<Self, DemoError> {
        let path = std::env::temp_dir().join(format!("hookrelay-demo-{run_id}"));
        std::fs::create_dir_all(&path).map_err(|source| DemoError::WorkDir {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Turns the shutdown watch true on Ctrl-C/SIGTERM or after `duration`.
async fn stop_when(
    mut signals: watch::Receiver<bool>,
    duration: Option<Duration>,
    stop: watch::Sender<bool>,
) {
    let bound = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let why = tokio::select! {
        Ok(_) = signals.wait_for(|s| *s) => "interrupted",
        () = bound => "--duration reached",
    };
    println!("stopping ({why}): draining in-flight deliveries, committing offsets");
    let _ = stop.send(true);
}

/// A customer API key per sample account, so the dashboard opens ready to click through:
/// `(account, token)`.
async fn create_demo_keys(
    config: &crate::config::Config,
    producer: &FutureProducer,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut keys = Vec::new();
    if !config.api.enabled {
        return Ok(keys);
    }
    for account in [common::ACME, common::GLOBEX] {
        let made = crate::records::ApiKey::generate(
            Some(account.to_owned()),
            Some("hookrelay demo".to_owned()),
            crate::delivery::now_ms(),
        );
        crate::api::keys::publish_key(producer, &config.topics.api_keys, &made.key)
            .await
            .context("creating the demo's API keys")?;
        keys.push((account, made.token));
    }
    Ok(keys)
}
