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

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ipnet::IpNet;
use prometheus::Registry;
use prometheus::proto::MetricFamily;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord, Producer};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, RetryTier};
use crate::delivery::now_ms;
use crate::event::{
    EventType, LicenseEvent, current_schema_name, encode_avro, encode_confluent, encode_json,
};
use crate::ids::{AccountId, EndpointId, EventId, Secret};
use crate::kafka::topics::{TopicSpec, ensure_topics, topic_specs};
use crate::sign::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, generate_secret, verify};
use crate::subscriptions::{Endpoint, SubscriptionTable, publish};

/// The retry schedule of the demo: the production tiers (1m, 5m, 30m, 2h, 24h) scaled down
/// so a delivery runs through all of them in half a minute.
const DEMO_TIERS_SECS: [u64; 5] = [2, 4, 6, 8, 10];
/// How long the slow receiver takes to answer: slower than everything else, well within
/// the 5 s request timeout.
const SLOW_ANSWER: Duration = Duration::from_millis(1500);
/// When the bulk import starts, counted from the moment the service is running.
const BURST_AFTER: Duration = Duration::from_secs(5);
/// Bound on producing one record (the mock cluster answers in milliseconds).
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(10);
/// The schema registry id the demo's Confluent-framed records carry; the config maps it to
/// the current license event schema, as an operator without a registry would.
const DEMO_SCHEMA_ID: u32 = 1;
/// Path every sample receiver listens on.
const RECEIVER_PATH: &str = "/webhook";

/// The two sample customers.
const ACME: &str = "acct_acme";
const GLOBEX: &str = "acct_globex";

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

/// What can go wrong while setting the demo up. Each names the step.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--rate must be a positive number of events per second, not {0}")]
    Rate(f64),
    #[error("starting a sample receiver on loopback")]
    Receiver(#[source] std::io::Error),
    #[error("building a sample receiver's URL")]
    ReceiverUrl(#[source] url::ParseError),
    #[error("creating the working directory {path}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Kafka: {action}")]
    Kafka {
        action: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("creating topic {topic} on the mock cluster")]
    MockTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("producing to {topic}")]
    Produce {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("encoding a sample event")]
    Encode(#[source] crate::event::CodecError),
}

fn kafka(action: &'static str) -> impl FnOnce(KafkaError) -> DemoError {
    move |source| DemoError::Kafka { action, source }
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

    // A key per sample customer, so the dashboard opens ready to click through.
    let mut demo_keys = Vec::new();
    if config.api.enabled {
        for account in [ACME, GLOBEX] {
            let made = crate::records::ApiKey::generate(
                Some(account.to_owned()),
                Some("hookrelay demo".to_owned()),
                now_ms(),
            );
            crate::api::keys::publish_key(&producer, &config.topics.api_keys, &made.key)
                .await
                .context("creating the demo's API keys")?;
            demo_keys.push((account, made.token));
        }
    }

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
            feed(&producer, &events_topic, &plan, stop).await
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

/// Turns a loaded config into the demo's: tiers in seconds, loopback allowed, a private data
/// dir, terse logs; on a real cluster (`prefix` given) topics and group of its own.
pub fn adapt_config(
    config: &mut Config,
    workdir: &Path,
    prefix: Option<&str>,
) -> anyhow::Result<()> {
    let name = |base: &str| match prefix {
        Some(p) => format!("hookrelay-demo-{p}-{base}"),
        None => base.to_owned(),
    };
    let t = &mut config.topics;
    for topic in [
        &mut t.events,
        &mut t.subscriptions,
        &mut t.invalid,
        &mut t.dead_letter,
        &mut t.attempts,
        &mut t.notifications,
        &mut t.requests,
        &mut t.api_keys,
    ] {
        *topic = name(topic);
    }
    // A demo needs no redundancy; one partition set small enough to read at a glance.
    t.replication_factor = 1;
    t.partitions.events = 3;
    t.partitions.subscriptions = 1;
    t.partitions.invalid = 1;
    t.partitions.retry = 2;
    t.partitions.dead_letter = 1;
    t.partitions.attempts = 2;
    t.partitions.notifications = 1;
    t.partitions.requests = 1;
    t.partitions.api_keys = 1;
    config.retry.tiers = DEMO_TIERS_SECS
        .iter()
        .map(|&s| RetryTier {
            topic: name(&format!("webhook-retry-{s}s")),
            delay: Duration::from_secs(s),
        })
        .collect();
    config.kafka.group_id = match prefix {
        Some(p) => format!("hookrelay-demo-{p}"),
        None => "hookrelay-demo".to_owned(),
    };
    let loopback: IpNet = "127.0.0.0/8".parse().context("the loopback network")?;
    if !config.delivery.ssrf_allowlist.contains(&loopback) {
        config.delivery.ssrf_allowlist.push(loopback);
    }
    config
        .codec
        .confluent_schema_ids
        .insert(DEMO_SCHEMA_ID, current_schema_name()?);
    config.subscriptions.data_dir = workdir.join("subscriptions");
    // The sample receivers are plain http on loopback.
    config.api.https_required = false;
    config.shutdown.drain_timeout = Duration::from_secs(5);
    // Progress goes to stdout; logs only for what needs attention (HOOKRELAY_LOG overrides).
    config.log.filter = "warn".to_owned();
    Ok(())
}

/// The admin address: the one asked for, else the configured one if it is free, else a
/// free port on the same interface.
fn admin_listen(requested: Option<SocketAddr>, configured: SocketAddr) -> SocketAddr {
    if let Some(addr) = requested {
        return addr;
    }
    match std::net::TcpListener::bind(configured) {
        Ok(_) => configured,
        Err(_) => SocketAddr::new(configured.ip(), 0),
    }
}

fn create_mock_topics(
    cluster: &MockCluster<'static, DefaultProducerContext>,
    specs: &[TopicSpec],
) -> Result<(), DemoError> {
    for spec in specs {
        // CreateTopics through the admin API is not implemented by the mock broker.
        cluster
            .create_topic(&spec.name, spec.partitions, 1)
            .map_err(|source| DemoError::MockTopic {
                topic: spec.name.clone(),
                source,
            })?;
    }
    Ok(())
}

fn admin_client(config: &Config) -> Result<AdminClient<DefaultClientContext>, DemoError> {
    crate::kafka::client_config(&config.kafka)
        .create()
        .map_err(kafka("creating the admin client"))
}

async fn create_external_topics(config: &Config, specs: &[TopicSpec]) -> anyhow::Result<()> {
    let admin = admin_client(config)?;
    // As many replicas as the cluster has brokers, up to 3, so the durable producer's
    // acks=all works on a single local broker and on a real cluster alike.
    let brokers = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(15))
        .map_err(kafka("fetching cluster metadata"))?
        .brokers()
        .len();
    let replicas = i32::try_from(brokers.clamp(1, 3)).unwrap_or(1);
    let specs: Vec<TopicSpec> = specs
        .iter()
        .cloned()
        .map(|mut s| {
            s.replication_factor = replicas;
            s
        })
        .collect();
    ensure_topics(&admin, &specs)
        .await
        .context("creating the demo's topics")?;
    Ok(())
}

/// Removes what the demo created on a real cluster: its topics and its consumer group.
async fn delete_external_topics(config: &Config, specs: &[TopicSpec]) {
    let Ok(admin) = admin_client(config) else {
        return;
    };
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    match admin.delete_topics(&names, &opts).await {
        Ok(_) => println!("deleted the demo's {} topics", names.len()),
        Err(e) => eprintln!("demo: could not delete the demo's topics: {e}"),
    }
    for group in [config.kafka.group_id.clone(), config.notify_group_id()] {
        if let Err(e) = admin.delete_groups(&[group.as_str()], &opts).await {
            eprintln!("demo: could not delete consumer group {group}: {e}");
        }
    }
}

/// The owner e-mails: the service's notifier sends to a mail sink on loopback (standing in
/// for an SMTP server), and each e-mail is printed as the endpoint's owner would read it.
/// The sink runs as long as the returned handle lives.
async fn show_owner_emails(config: &mut Config) -> anyhow::Result<crate::notify::sink::MailSink> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = crate::notify::sink::MailSink::start(tx).await?;
    let n = &mut config.notify;
    n.enabled = true;
    n.from = "Licensor webhooks <webhooks@licensor.example>".to_owned();
    n.reenable_url = "https://dashboard.licensor.example/endpoints/{endpoint_id}".to_owned();
    n.retry_initial = Duration::from_millis(500);
    n.retry_max = n.retry_max.max(n.retry_initial);
    n.smtp.host = sink.addr.ip().to_string();
    n.smtp.port = sink.addr.port();
    n.smtp.tls = crate::config::SmtpTls::None;
    n.smtp.username.clear();
    n.smtp.password = crate::config::Password::default();
    tokio::spawn(async move {
        while let Some(mail) = rx.recv().await {
            println!();
            println!(
                "  +-- e-mail to the endpoint's owner <{}>, as the mail server received it",
                mail.rcpt_to.join(", ")
            );
            for line in crate::notify::sink::readable(&mail.data).lines() {
                println!("  | {line}");
            }
            println!("  +--");
            println!();
        }
    });
    Ok(sink)
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

// ---------------------------------------------------------------------------------------
// Sample receivers

/// How a sample receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 200 at once.
    Healthy,
    /// 500 to every other request.
    Flaky,
    /// 200 after [`SLOW_ANSWER`].
    Slow,
    /// Nothing listens at its address.
    Down,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Healthy => "healthy",
            Role::Flaky => "flaky",
            Role::Slow => "slow",
            Role::Down => "down",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Role::Healthy => "answers 200 at once",
            Role::Flaky => "answers 500 to every other request",
            Role::Slow => "answers 200 after 1.5 s",
            Role::Down => "nothing listens there",
        }
    }
}

/// What a receiver saw. Counted by the receiver itself, independently of hookrelay's metrics.
#[derive(Debug, Default)]
struct ReceiverStats {
    requests: AtomicU64,
    /// Events in the requests it accepted (a batch counts its events).
    events: AtomicU64,
    /// Requests whose Standard Webhooks signature did not verify (answered 401).
    bad_signatures: AtomicU64,
    /// Requests it failed on purpose.
    failed: AtomicU64,
}

struct ReceiverState {
    role: Role,
    secret: Secret,
    stats: ReceiverStats,
}

struct Receiver {
    role: Role,
    /// The URL endpoints point at.
    url: url::Url,
    secret: Secret,
    state: Option<Arc<ReceiverState>>,
    task: JoinHandle<()>,
}

struct Receivers {
    healthy: Receiver,
    flaky: Receiver,
    slow: Receiver,
    down: Receiver,
}

impl Receivers {
    fn all(&self) -> [&Receiver; 4] {
        [&self.healthy, &self.flaky, &self.slow, &self.down]
    }

    fn get(&self, role: Role) -> &Receiver {
        match role {
            Role::Healthy => &self.healthy,
            Role::Flaky => &self.flaky,
            Role::Slow => &self.slow,
            Role::Down => &self.down,
        }
    }
}

async fn start_receivers() -> Result<Receivers, DemoError> {
    Ok(Receivers {
        healthy: start_receiver(Role::Healthy).await?,
        flaky: start_receiver(Role::Flaky).await?,
        slow: start_receiver(Role::Slow).await?,
        down: down_receiver()?,
    })
}

fn receiver_url(addr: SocketAddr) -> Result<url::Url, DemoError> {
    url::Url::parse(&format!("http://{addr}{RECEIVER_PATH}")).map_err(DemoError::ReceiverUrl)
}

async fn start_receiver(role: Role) -> Result<Receiver, DemoError> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(DemoError::Receiver)?;
    let addr = listener.local_addr().map_err(DemoError::Receiver)?;
    let secret = generate_secret();
    let state = Arc::new(ReceiverState {
        role,
        secret: secret.clone(),
        stats: ReceiverStats::default(),
    });
    let app = Router::new()
        .route(RECEIVER_PATH, post(receive))
        .with_state(state.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "a demo receiver stopped");
        }
    });
    Ok(Receiver {
        role,
        url: receiver_url(addr)?,
        secret,
        state: Some(state),
        task,
    })
}

/// A URL on loopback where nothing listens: a port the OS just handed out and took back.
fn down_receiver() -> Result<Receiver, DemoError> {
    let addr = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(DemoError::Receiver)?;
    Ok(Receiver {
        role: Role::Down,
        url: receiver_url(addr)?,
        secret: generate_secret(),
        state: None,
        task: tokio::spawn(async {}),
    })
}

/// One request to a sample receiver: verify the signature as a real receiver must, then
/// answer as its role says.
async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let stats = &state.stats;
    let n = stats.requests.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let now = unix_secs();
    if verify(
        &state.secret,
        header(WEBHOOK_ID),
        header(WEBHOOK_TIMESTAMP),
        header(WEBHOOK_SIGNATURE),
        &body,
        now,
    )
    .is_err()
    {
        stats.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    match state.role {
        // Every other request, not at random: random failures would now and then string
        // ten together and trip the circuit breaker, which is the down receiver's part.
        Role::Flaky if n % 2 == 1 => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        Role::Slow => tokio::time::sleep(SLOW_ANSWER).await,
        _ => {}
    }
    stats
        .events
        .fetch_add(events_in_body(&body), Ordering::Relaxed);
    StatusCode::OK
}

/// Events in a webhook body: the length of `data.events` for a batch, else one.
pub fn events_in_body(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    if value["type"] == "batch" {
        value["data"]["events"]
            .as_array()
            .map_or(0, |events| events.len() as u64)
    } else {
        1
    }
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Endpoints and events

/// A sample endpoint and the receiver behind it.
struct DemoEndpoint {
    role: Role,
    endpoint: Endpoint,
}

/// The event types each sample endpoint subscribes to (empty: all).
pub fn subscribed_types(role: Role) -> Vec<EventType> {
    match role {
        Role::Healthy | Role::Down => Vec::new(),
        Role::Flaky => vec![
            EventType::LicenseActivated,
            EventType::LicenseRevoked,
            EventType::LicenseUpgraded,
            EventType::DomainAdded,
            EventType::DomainRemoved,
            EventType::PaymentFailed,
        ],
        // Not license.created: the bulk import stays off the slow endpoint.
        Role::Slow => vec![
            EventType::LicenseExpiring,
            EventType::LicenseExpired,
            EventType::LicenseRenewed,
            EventType::PaymentFailed,
        ],
    }
}

/// The account each sample endpoint belongs to: Acme has the healthy and slow ones and gets
/// the bulk import; Globex has the flaky and down ones.
pub fn account_of(role: Role) -> &'static str {
    match role {
        Role::Healthy | Role::Slow => ACME,
        Role::Flaky | Role::Down => GLOBEX,
    }
}

fn demo_endpoints(receivers: &Receivers) -> Vec<DemoEndpoint> {
    let now = now_ms();
    [Role::Healthy, Role::Slow, Role::Flaky, Role::Down]
        .into_iter()
        .map(|role| {
            let r = receivers.get(role);
            DemoEndpoint {
                role,
                endpoint: Endpoint {
                    description: Some(format!("demo receiver: {}", role.describe())),
                    event_types: subscribed_types(role)
                        .iter()
                        .map(|t| t.as_str().to_owned())
                        .collect(),
                    created_at_ms: Some(now),
                    updated_at_ms: Some(now),
                    contact_email: Some(format!(
                        "webhooks@{}.example",
                        account_of(role).trim_start_matches("acct_")
                    )),
                    ..Endpoint::new(
                        EndpointId::new(format!("ep_demo_{}", role.name())),
                        AccountId::from(account_of(role)),
                        r.url.clone(),
                        r.secret.clone(),
                    )
                },
            }
        })
        .collect()
}

/// How an input record is encoded; the service accepts all three on the same topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Avro single-object encoding (schema fingerprint in the record).
    Avro,
    /// Avro in the Confluent wire format (schema registry id in the record).
    Confluent,
    /// JSON of the same shape, as a person would produce by hand.
    Json,
}

impl Encoding {
    fn encode(self, event: &LicenseEvent) -> Result<Vec<u8>, DemoError> {
        match self {
            Encoding::Avro => encode_avro(event).map_err(DemoError::Encode),
            Encoding::Confluent => {
                encode_confluent(event, DEMO_SCHEMA_ID).map_err(DemoError::Encode)
            }
            Encoding::Json => Ok(encode_json(event)),
        }
    }
}

/// Event `i` of the steady stream: accounts alternate, every type comes up for both within
/// twenty events, and the three encodings take turns.
pub fn stream_event(run_id: &str, i: u64, created: OffsetDateTime) -> (LicenseEvent, Encoding) {
    let account = if i.is_multiple_of(2) { ACME } else { GLOBEX };
    let event_type = EventType::ALL[((i / 2) % EventType::ALL.len() as u64) as usize];
    let event = sample_event(
        EventId::new(format!("evt_demo{run_id}s{i:06}")),
        event_type,
        account,
        i,
        created,
    );
    let encoding = match i % 3 {
        0 => Encoding::Json,
        1 => Encoding::Avro,
        _ => Encoding::Confluent,
    };
    (event, encoding)
}

/// Event `i` of the bulk import: a license created for Acme.
pub fn burst_event(run_id: &str, i: u64, created: OffsetDateTime) -> LicenseEvent {
    sample_event(
        EventId::new(format!("evt_demo{run_id}b{i:06}")),
        EventType::LicenseCreated,
        ACME,
        i,
        created,
    )
}

fn sample_event(
    id: EventId,
    event_type: EventType,
    account: &str,
    i: u64,
    created: OffsetDateTime,
) -> LicenseEvent {
    let mut event = crate::event::sample(id, event_type, AccountId::from(account));
    // Truncated to milliseconds, the resolution of the Avro timestamp.
    event.created = created
        .replace_nanosecond(created.millisecond() as u32 * 1_000_000)
        .unwrap_or(created);
    let n = i.wrapping_mul(0x9E37_79B9) & 0xffff_ffff;
    event.data.license_key = format!(
        "TO-{:04X}-{:04X}-{:04X}-{:04X}",
        (n >> 16) & 0xffff,
        n & 0xffff,
        (i >> 16) & 0xffff,
        i & 0xffff
    );
    let host = if account == ACME { "acme" } else { "globex" };
    event.data.domain = Some(format!("app{}.{host}.example", i % 7));
    event
}

/// What the event stream produced.
#[derive(Debug, Clone, Copy, Default)]
struct Produced {
    steady: u64,
    burst: u64,
}

struct Feed {
    run_id: String,
    rate: f64,
    burst: usize,
}

/// Produces the steady stream until `stop`, and the burst once, [`BURST_AFTER`] in.
async fn feed(
    producer: &FutureProducer,
    topic: &str,
    plan: &Feed,
    mut stop: watch::Receiver<bool>,
) -> Result<Produced, DemoError> {
    let mut produced = Produced::default();
    let start = Instant::now();
    let mut burst_pending = plan.burst > 0;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(produced),
            _ = tick.tick() => {}
        }
        let (event, encoding) =
            stream_event(&plan.run_id, produced.steady, OffsetDateTime::now_utc());
        let payload = encoding.encode(&event)?;
        let record = FutureRecord::to(topic)
            .key(event.account_id.as_str())
            .payload(&payload);
        producer
            .send(record, PRODUCE_TIMEOUT)
            .await
            .map_err(|(source, _)| DemoError::Produce {
                topic: topic.to_owned(),
                source,
            })?;
        produced.steady += 1;

        if burst_pending && start.elapsed() >= BURST_AFTER {
            burst_pending = false;
            produced.burst = produce_burst(producer, topic, plan).await?;
        }
    }
}

/// The bulk import: every record queued at once, then all acknowledgements awaited.
async fn produce_burst(
    producer: &FutureProducer,
    topic: &str,
    plan: &Feed,
) -> Result<u64, DemoError> {
    let created = OffsetDateTime::now_utc();
    let payloads = (0..plan.burst as u64)
        .map(|i| encode_avro(&burst_event(&plan.run_id, i, created)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(DemoError::Encode)?;
    let produce_error = |source| DemoError::Produce {
        topic: topic.to_owned(),
        source,
    };
    let mut pending = Vec::with_capacity(payloads.len());
    for payload in &payloads {
        let record = FutureRecord::to(topic).key(ACME).payload(payload);
        let future = producer
            .send_result(record)
            .map_err(|(source, _)| produce_error(source))?;
        pending.push(future);
    }
    let mut acknowledged = 0;
    for outcome in futures::future::join_all(pending).await {
        match outcome {
            Ok(Ok(_)) => acknowledged += 1,
            Ok(Err((source, _))) => return Err(produce_error(source)),
            Err(_) => return Err(produce_error(KafkaError::Canceled)),
        }
    }
    Ok(acknowledged)
}

// ---------------------------------------------------------------------------------------
// Progress

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
    fn retries_by_tier(&self, tiers: usize) -> String {
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
fn progress_header(tiers: usize) -> String {
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
fn retry_column(tiers: usize) -> usize {
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

async fn show_progress(
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

fn tiers_label(tiers: &[RetryTier]) -> String {
    tiers
        .iter()
        .map(|t| humantime::format_duration(t.delay).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn by_reason(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!(" ({})", parts.join(", "))
}

fn print_summary(
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
    use super::*;
    use crate::telemetry::Metrics;
    use std::net::IpAddr;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-03-15 14:30:00.123456 UTC)
    }

    #[test]
    fn the_stream_covers_every_type_for_both_accounts_in_every_encoding() {
        let mut seen = std::collections::BTreeSet::new();
        let mut encodings = std::collections::BTreeSet::new();
        for i in 0..20 {
            let (e, enc) = stream_event("r1", i, at());
            assert_eq!(e.validate(), Ok(()), "event {i} is valid");
            seen.insert((e.account_id.to_string(), e.event_type));
            encodings.insert(format!("{enc:?}/{}", e.account_id));
        }
        assert_eq!(seen.len(), 20, "10 types x 2 accounts in 20 events");
        assert_eq!(encodings.len(), 6, "three encodings for both accounts");
    }

    #[test]
    fn events_are_unique_per_run_and_index_and_round_trip_the_codecs() {
        let (a, _) = stream_event("r1", 1, at());
        let (b, _) = stream_event("r1", 2, at());
        let (c, _) = stream_event("r2", 1, at());
        let d = burst_event("r1", 1, at());
        let ids = [&a.id, &b.id, &c.id, &d.id];
        for (i, x) in ids.iter().enumerate() {
            for y in &ids[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(a.created.nanosecond(), 123_000_000, "millisecond precision");
        assert_eq!(d.event_type, EventType::LicenseCreated);
        assert_eq!(d.account_id.as_str(), ACME);
    }

    #[test]
    fn the_service_decodes_every_record_the_demo_produces() {
        let mut c = Config::load_from(None, &[]).expect("defaults");
        adapt_config(&mut c, Path::new("/tmp/hookrelay-demo-test"), None).expect("adapt");
        let decoder = crate::event::EventDecoder::new(&c.codec).expect("decoder");
        let mut records: Vec<(LicenseEvent, Encoding)> =
            (0..20).map(|i| stream_event("r1", i, at())).collect();
        records.push((burst_event("r1", 7, at()), Encoding::Avro));
        for (event, encoding) in records {
            let bytes = encoding.encode(&event).expect("encode");
            let decoded = decoder
                .decode(&bytes)
                .unwrap_or_else(|e| panic!("{encoding:?} {}: {e}", event.event_type));
            assert_eq!(decoded, event, "{encoding:?} round trip");
        }
    }

    #[test]
    fn the_bulk_import_reaches_only_the_fast_endpoint() {
        let created = EventType::LicenseCreated;
        for role in [Role::Healthy, Role::Slow] {
            assert_eq!(account_of(role), ACME);
        }
        let subscribes = |role| {
            let types = subscribed_types(role);
            types.is_empty() || types.contains(&created)
        };
        assert!(subscribes(Role::Healthy));
        assert!(
            !subscribes(Role::Slow),
            "the slow endpoint sits the burst out"
        );
    }

    #[test]
    fn each_endpoint_gets_part_of_the_stream() {
        for role in [Role::Healthy, Role::Flaky, Role::Slow, Role::Down] {
            let hits = (0..20)
                .map(|i| stream_event("r", i, at()).0)
                .filter(|e| e.account_id.as_str() == account_of(role))
                .filter(|e| {
                    let t = subscribed_types(role);
                    t.is_empty() || t.contains(&e.event_type)
                })
                .count();
            assert!(hits >= 4, "{role:?} gets {hits} of 20 events");
        }
    }

    #[test]
    fn batch_bodies_count_their_events() {
        assert_eq!(
            events_in_body(br#"{"id":"evt_1","type":"license.created"}"#),
            1
        );
        assert_eq!(
            events_in_body(
                br#"{"id":"bat_1","type":"batch","data":{"events":[{"id":"evt_1"},{"id":"evt_2"}]}}"#
            ),
            2
        );
        assert_eq!(events_in_body(b"not json"), 0);
    }

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

    #[test]
    fn demo_config_scales_retries_and_isolates_a_real_cluster_run() {
        let dir = Path::new("/tmp/hookrelay-demo-test");
        let mut c = Config::load_from(None, &[]).expect("defaults");
        adapt_config(&mut c, dir, None).expect("adapt");
        c.validate().expect("the mock-cluster config is valid");
        let delays: Vec<u64> = c.retry.tiers.iter().map(|t| t.delay.as_secs()).collect();
        assert_eq!(delays, DEMO_TIERS_SECS);
        assert_eq!(c.topics.events, "license-events");
        assert!(
            c.delivery
                .ssrf_allowlist
                .iter()
                .any(|n| n.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)))
        );
        assert!(c.subscriptions.data_dir.starts_with(dir));

        let mut c = Config::load_from(None, &[]).expect("defaults");
        adapt_config(&mut c, dir, Some("abc")).expect("adapt");
        c.validate().expect("the real-cluster config is valid");
        let specs = topic_specs(&c);
        assert!(
            specs
                .iter()
                .all(|s| s.name.starts_with("hookrelay-demo-abc-")),
            "every topic is the run's own: {specs:?}"
        );
        assert_eq!(c.kafka.group_id, "hookrelay-demo-abc");
    }

    #[test]
    fn a_busy_admin_port_falls_back_to_a_free_one() {
        let taken = std::net::TcpListener::bind((LOOPBACK, 0)).expect("bind");
        let addr = taken.local_addr().expect("addr");
        assert_eq!(admin_listen(None, addr), SocketAddr::new(LOOPBACK, 0));
        assert_eq!(
            admin_listen(Some(addr), addr),
            addr,
            "an explicit address is kept"
        );
        drop(taken);
        assert_eq!(
            admin_listen(None, addr),
            addr,
            "a free configured port is used"
        );
    }
}
