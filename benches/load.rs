//! Load scenario against the real broker and loopback sinks: how fast hookrelay delivers
//! signed webhooks, compared with a bare pooled HTTP client posting to the same sinks, and
//! how much healthy endpoints slow down when 20% of endpoints hang. hookrelay runs with its
//! shipped delivery defaults (`endpoint_concurrency` 4: 50 endpoints, at most 200 requests in
//! flight), apart from what each scenario names.
//!
//!   eval "$(scripts/kafka start)"
//!   CARGO_TARGET_DIR=/var/cache/hookrelay/target cargo bench --bench load
//!
//! Settings (environment): LOAD_EVENTS (default 40000), LOAD_ENDPOINTS (default 50),
//! LOAD_REPEAT (throughput and isolation rounds, default 3), LOAD_BARE_REQUESTS (requests the
//! bare client makes per round, default 300000), LOAD_SCENARIOS (comma-separated subset of
//! `throughput,isolation,crash,latency,scale`; default the first three: `latency` takes
//! minutes and has settings of its own, see `load/latency.rs`; `scale` drains a backlog with
//! one and with two processes in one group), LOAD_BINARY (the hookrelay binary the crash
//! and latency scenarios run; default this build's, another path measures an older build).
//! `HOOKRELAY__…` variables in the environment override the scenarios' hookrelay settings.
//! Each scenario uses fresh topics. Prints one line per scenario and the ratios.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::routing::post;
use hookrelay::config::Config;
use hookrelay::event::{EventType, LicenseEvent, encode_avro};
use hookrelay::ids::{AccountId, EndpointId, EventId};
use hookrelay::kafka::topics::{ensure_topics, topic_specs};
use hookrelay::subscriptions::Endpoint;
use prometheus::Registry;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::watch;

#[path = "../tests/support/isolated_env.rs"]
mod isolated_env;
use isolated_env::isolated_env;
#[path = "load/latency.rs"]
mod latency;
#[path = "load/timeline.rs"]
mod timeline;

// The allocator the hookrelay binary uses, for the in-process scenarios and the bare client
// alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bootstrap() -> String {
    std::env::var("HOOKRELAY_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".to_owned())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Counts requests per sink path; `hang/...` paths never answer.
#[derive(Clone, Default)]
struct Sinks {
    healthy: Arc<AtomicU64>,
    healthy_events: Arc<AtomicU64>,
}

async fn start_sinks(sinks: Sinks) -> std::net::SocketAddr {
    let s = sinks.clone();
    let app = Router::new()
        .route(
            "/ok/{n}",
            post(move |Path(_n): Path<u32>, body: axum::body::Bytes| {
                let s = s.clone();
                async move {
                    s.healthy.fetch_add(1, Ordering::Relaxed);
                    // A batch body carries several events; count them without parsing JSON.
                    let events = count_occurrences(&body, b"\"id\":\"evt_").max(1);
                    s.healthy_events.fetch_add(events as u64, Ordering::Relaxed);
                    "ok"
                }
            }),
        )
        .route(
            "/hang/{n}",
            post(|Path(_n): Path<u32>| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sinks");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// How many times `needle` occurs in `hay` (the needles counted here cannot overlap).
fn count_occurrences(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn config(batching: bool) -> (Config, tempfile::TempDir) {
    let (env, dir) = config_env(batching);
    (Config::load_from(None, &env).expect("config"), dir)
}

/// The settings of one scenario as `HOOKRELAY__…` variables, with a fresh topic prefix.
fn config_env(batching: bool) -> (Vec<(String, String)>, tempfile::TempDir) {
    let p = format!(
        "load-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_u32()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = isolated_env(&p, &bootstrap(), &["1h".to_owned()]);
    env.extend(
        [
            ("HOOKRELAY__TOPICS__PARTITIONS__EVENTS", "4".to_owned()),
            ("HOOKRELAY__TOPICS__PARTITIONS__RETRY", "2".to_owned()),
            (
                "HOOKRELAY__DELIVERY__BATCH__MAX_EVENTS",
                if batching { "100" } else { "1" }.to_owned(),
            ),
            ("HOOKRELAY__ADMIN__LISTEN", "127.0.0.1:0".to_owned()),
            ("HOOKRELAY__LOG__FILTER", "warn".to_owned()),
            // The load measured is delivery's; the customer API is not part of it.
            ("HOOKRELAY__API__ENABLED", "false".to_owned()),
            (
                "HOOKRELAY__SUBSCRIPTIONS__DATA_DIR",
                dir.path().display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        // Settings to try (`HOOKRELAY__KAFKA__PROPERTIES__LINGER_MS=5 cargo bench …`) override.
        .chain(std::env::vars().filter(|(k, _)| k.starts_with("HOOKRELAY__"))),
    );
    (env, dir)
}

/// Queues a record without waiting for it; when the producer's local queue is full, lets it
/// drain a moment and tries again.
fn queue<K, P>(producer: &FutureProducer, mut record: FutureRecord<'_, K, P>)
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    while let Err((_, returned)) = producer.send_result(record) {
        record = returned;
        producer.poll(Duration::from_millis(1));
    }
}

/// Waits until the ledger has a first delivery (hookrelay started and is sending) and returns
/// when that was: rates are timed from there, since process start-up is not delivery.
async fn first_delivery(ledger: &Ledger) -> Instant {
    let waiting = Instant::now();
    while ledger.total.load(Ordering::Relaxed) == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(120),
            "nothing delivered within 2 minutes: did hookrelay start?"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Instant::now()
}

fn rand_u32() -> u128 {
    u128::from(rand::random::<u32>())
}

fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "10")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer")
}

fn sample_event(i: usize, account: &str) -> LicenseEvent {
    let t = EventType::ALL[i % EventType::ALL.len()];
    hookrelay::event::sample(
        EventId::new(format!("evt_load{i:08}")),
        t,
        AccountId::from(account),
    )
}

struct Outcome {
    healthy_requests: u64,
    healthy_events: u64,
    elapsed: Duration,
    /// CPU seconds this process (hookrelay and the sinks) and the broker used meanwhile.
    cpu: f64,
}

/// CPU seconds used so far by this process and by the test broker's JVM.
fn cpu_seconds() -> f64 {
    let own = latency::cpu_and_peak(std::process::id()).0;
    own + latency::broker_pid().map_or(0.0, |pid| latency::cpu_and_peak(pid).0)
}

/// Runs one scenario: `endpoints` endpoints on one account, `hanging` of them hang; produces
/// `events` events and measures until the healthy endpoints got all of theirs.
async fn scenario(events: usize, endpoints: usize, hanging: usize, batching: bool) -> Outcome {
    let sinks = Sinks::default();
    let addr = start_sinks(sinks.clone()).await;
    let (config, _dir) = config(batching);
    create_topics(&config).await;
    let producer = producer();
    let secret = hookrelay::sign::generate_secret();
    for n in 0..endpoints {
        let kind = if n < hanging { "hang" } else { "ok" };
        let ep = Endpoint::new(
            EndpointId::new(format!("ep_load{n}")),
            AccountId::from("acc_load"),
            format!("http://{addr}/{kind}/{n}").parse().expect("url"),
            secret.clone(),
        );
        hookrelay::subscriptions::publish(&producer, &config.topics.subscriptions, &ep)
            .await
            .expect("publish endpoint");
    }
    // Produce everything first, so the scenario measures delivery, not the producer.
    let payloads: Vec<Vec<u8>> = (0..events)
        .map(|i| encode_avro(&sample_event(i, "acc_load")).expect("encode"))
        .collect();
    for (i, p) in payloads.iter().enumerate() {
        let key = format!("k{}", i % 64);
        queue(
            &producer,
            FutureRecord::to(&config.topics.events).key(&key).payload(p),
        );
    }
    producer.flush(Duration::from_secs(60)).expect("flush");

    let registry = Registry::new();
    let (stop, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(hookrelay::app::run(
        config.clone(),
        registry.clone(),
        stop_rx,
        move |_| {
            let _ = ready_tx.send(());
        },
    ));
    ready_rx.await.expect("started");
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let want = (events * (endpoints - hanging)) as u64;
    let deadline = started + Duration::from_secs(env_usize("LOAD_DEADLINE_SECS", 600) as u64);
    // Time intake spent holding partitions, by reason (sampled), for the report below.
    let mut held: HashMap<String, Duration> = HashMap::new();
    let mut last = Instant::now();
    let verbose = std::env::var_os("LOAD_VERBOSE").is_some();
    while sinks.healthy_events.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if !verbose {
            continue;
        }
        let text = hookrelay::telemetry::metrics::render(&registry);
        for line in text
            .lines()
            .filter(|l| l.starts_with("hookrelay_paused_partitions{"))
        {
            if !line.ends_with(" 0")
                && let Some(reason) = line.split('"').nth(1)
            {
                *held.entry(reason.to_owned()).or_default() += last.elapsed();
            }
        }
        last = Instant::now();
    }
    if std::env::var_os("LOAD_VERBOSE").is_some() {
        let text = hookrelay::telemetry::metrics::render(&registry);
        let shed = text
            .lines()
            .find(|l| l.starts_with("hookrelay_deliveries_total{outcome=\"retry_scheduled\"}"))
            .unwrap_or_default()
            .to_owned();
        eprintln!("  held partitions: {held:?}; {shed}");
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    if sinks.healthy_events.load(Ordering::Relaxed) < want {
        // Say where the missing deliveries are, from hookrelay's own accounting.
        let text = hookrelay::telemetry::metrics::render(&registry);
        eprintln!(
            "scenario missed its target: {} of {want} healthy deliveries; hookrelay says:",
            sinks.healthy_events.load(Ordering::Relaxed)
        );
        for line in text.lines().filter(|l| {
            !l.starts_with('#')
                && (l.starts_with("hookrelay_deliveries_total")
                    || l.starts_with("hookrelay_in_flight")
                    || l.starts_with("hookrelay_endpoints_slow")
                    || l.starts_with("hookrelay_paused")
                    || l.starts_with("hookrelay_events_consumed")
                    || l.starts_with("hookrelay_attempts_total{outcome=\"failure\"")
                    || l.starts_with("hookrelay_retry_scheduled"))
                && !l.ends_with(" 0")
        }) {
            eprintln!("  {line}");
        }
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
    delete_topics(&config).await;
    Outcome {
        healthy_requests: sinks.healthy.load(Ordering::Relaxed),
        healthy_events: sinks.healthy_events.load(Ordering::Relaxed),
        elapsed,
        cpu,
    }
}

/// A bare pooled reqwest client posting a 600-byte body to the same kind of sink, 64 in flight.
/// Returns requests per second and CPU microseconds per request (this process and the broker).
async fn bare_client(requests: usize) -> (f64, f64) {
    let sinks = Sinks::default();
    let addr = start_sinks(sinks.clone()).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let body = bytes::Bytes::from(vec![b'x'; 600]);
    let url = format!("http://{addr}/ok/0");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, body, url, next) = (client.clone(), body.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < requests as u64 {
                let _ = client.post(&url).body(body.clone()).send().await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let cpu = cpu_seconds() - cpu_before;
    (
        requests as f64 / started.elapsed().as_secs_f64(),
        cpu * 1e6 / requests as f64,
    )
}

/// Sinks that remember how often each (event, endpoint) pair arrived.
#[derive(Clone, Default)]
struct Ledger {
    pairs: Arc<Mutex<HashMap<(String, u32), u32>>>,
    total: Arc<AtomicU64>,
}

async fn start_ledger(ledger: Ledger) -> std::net::SocketAddr {
    let app = Router::new().route(
        "/ok/{n}",
        post(move |Path(n): Path<u32>, body: axum::body::Bytes| {
            let ledger = ledger.clone();
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let ids: Vec<String> = if v["type"] == "batch" {
                    v["data"]["events"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                } else {
                    v["id"].as_str().map(str::to_owned).into_iter().collect()
                };
                let mut pairs = ledger.pairs.lock().unwrap_or_else(|e| e.into_inner());
                for id in ids {
                    *pairs.entry((id, n)).or_default() += 1;
                    ledger.total.fetch_add(1, Ordering::Relaxed);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind ledger");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Creates every topic `config` names on the test broker.
async fn create_topics(config: &Config) {
    let admin: rdkafka::admin::AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin");
    ensure_topics(&admin, &topic_specs(config))
        .await
        .expect("topics");
}

/// Deletes the topics of a finished round, so that rounds do not pile partitions up on the
/// broker whose CPU the next round measures (`scripts/kafka sweep` catches what a killed run
/// leaves).
async fn delete_topics(config: &Config) {
    let admin: rdkafka::admin::AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin");
    let names: Vec<String> = topic_specs(config).into_iter().map(|t| t.name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Err(e) = admin
        .delete_topics(&names, &rdkafka::admin::AdminOptions::new())
        .await
    {
        eprintln!("could not delete this round's topics ({e}); `scripts/kafka sweep` will");
    }
}

/// Publishes `accounts` × `per_account` endpoints `ep_<name><n>` of accounts
/// `acc_<name><n / per_account>`, each posting to `http://{addr}/{path}/{n}`, one secret.
async fn publish_endpoints(
    producer: &FutureProducer,
    config: &Config,
    addr: std::net::SocketAddr,
    path: &str,
    name: &str,
    accounts: usize,
    per_account: usize,
) {
    let secret = hookrelay::sign::generate_secret();
    for n in 0..accounts * per_account {
        let ep = Endpoint::new(
            EndpointId::new(format!("ep_{name}{n}")),
            AccountId::new(format!("acc_{name}{}", n / per_account)),
            format!("http://{addr}/{path}/{n}").parse().expect("url"),
            secret.clone(),
        );
        hookrelay::subscriptions::publish(producer, &config.topics.subscriptions, &ep)
            .await
            .expect("publish endpoint");
    }
}

/// Produces `events` sample events keyed by account (`acc_<name><i % accounts>`), as the
/// licensing system does, and waits until the broker has them all.
fn produce_backlog(
    producer: &FutureProducer,
    config: &Config,
    name: &str,
    events: usize,
    accounts: usize,
) {
    for i in 0..events {
        let account = format!("acc_{name}{}", i % accounts);
        let p = encode_avro(&sample_event(i, &account)).expect("encode");
        queue(
            producer,
            FutureRecord::to(&config.topics.events)
                .key(&account)
                .payload(&p),
        );
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

/// Starts `binary run` with `env` (logging errors only).
fn spawn_hookrelay(binary: &str, env: &[(String, String)]) -> std::process::Child {
    std::process::Command::new(binary)
        .arg("run")
        .envs(env.iter().cloned())
        .env("HOOKRELAY_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn hookrelay")
}

/// SIGKILLs the hookrelay binary once 40% of the deliveries arrived, restarts it, and counts
/// the deliveries that arrived twice. `accounts` accounts with `per_account` endpoints each;
/// events are keyed by account, as the licensing system produces them, so each partition
/// carries several accounts. Returns (duplicates, expected, deliveries/s before the kill).
async fn crash(events: usize, accounts: usize, per_account: usize) -> (u64, u64, f64) {
    let ledger = Ledger::default();
    let addr = start_ledger(ledger.clone()).await;
    let (env, dir) = config_env(true);
    let config = Config::load_from(None, &env).expect("config");
    let binary =
        std::env::var("LOAD_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hookrelay").to_owned());
    // An older build may not know the requests topic.
    let child_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| {
            std::env::var_os("LOAD_BINARY").is_none()
                || !(k == "HOOKRELAY__TOPICS__REQUESTS"
                    || k == "HOOKRELAY__TOPICS__API_KEYS"
                    || k.starts_with("HOOKRELAY__API__"))
        })
        .cloned()
        .collect();
    create_topics(&config).await;
    let producer = producer();
    publish_endpoints(
        &producer,
        &config,
        addr,
        "ok",
        "crash",
        accounts,
        per_account,
    )
    .await;
    produce_backlog(&producer, &config, "crash", events, accounts);
    let spawn = |env: &[(String, String)]| spawn_hookrelay(&binary, env);
    let expected = (events * per_account) as u64;
    let mut child = spawn(&child_env);
    let started = first_delivery(&ledger).await;
    while ledger.total.load(Ordering::Relaxed) < expected * 2 / 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = ledger.total.load(Ordering::Relaxed);
    let rate = before as f64 / started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let mut child = spawn(&child_env);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let unique = ledger.pairs.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        if unique >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = child.kill();
    let _ = child.wait();
    drop(dir);
    delete_topics(&config).await;
    let total = ledger.total.load(Ordering::Relaxed);
    let unique = ledger.pairs.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
    (total - unique, expected, rate)
}

/// The drain of a backlog by `processes` hookrelay processes in one group (batching off):
/// `accounts` accounts × 3 endpoints, events keyed by account. Returns deliveries/s from the
/// first delivery to the last.
async fn scale(events: usize, accounts: usize, processes: usize) -> f64 {
    let ledger = Ledger::default();
    let addr = start_ledger(ledger.clone()).await;
    let (env, dir) = config_env(false);
    let config = Config::load_from(None, &env).expect("config");
    create_topics(&config).await;
    let producer = producer();
    let per_account = 3;
    publish_endpoints(
        &producer,
        &config,
        addr,
        "ok",
        "scale",
        accounts,
        per_account,
    )
    .await;
    produce_backlog(&producer, &config, "scale", events, accounts);
    let data_dirs: Vec<tempfile::TempDir> = (0..processes)
        .map(|_| tempfile::tempdir().expect("data dir"))
        .collect();
    let mut children: Vec<_> = data_dirs
        .iter()
        .map(|data| {
            let mut env = env.clone();
            env.push((
                "HOOKRELAY__SUBSCRIPTIONS__DATA_DIR".to_owned(),
                data.path().display().to_string(),
            ));
            spawn_hookrelay(env!("CARGO_BIN_EXE_hookrelay"), &env)
        })
        .collect();
    let expected = (events * per_account) as u64;
    let started = first_delivery(&ledger).await;
    let deadline = started + Duration::from_secs(600);
    while ledger.total.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = ledger.total.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    drop(dir);
    delete_topics(&config).await;
    rate
}

fn main() {
    let events = env_usize("LOAD_EVENTS", 40_000);
    let endpoints = env_usize("LOAD_ENDPOINTS", 50);
    let scenarios =
        std::env::var("LOAD_SCENARIOS").unwrap_or_else(|_| "throughput,isolation,crash".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if scenarios.contains("latency") {
            latency::scenario().await;
        }
        if scenarios.contains("scale") {
            // One and two processes in one group drain the same backlog (batching off). The
            // second process joins a group whose first member may already run: both start
            // together, so the first rebalance splits the 4 input partitions.
            for processes in [1, 2] {
                let rate = scale(events / 2, 50, processes).await;
                println!(
                    "scale: {processes} process(es), batching off, 50 accounts x 3 endpoints: {rate:>7.0} deliveries/s"
                );
            }
        }
        if scenarios.contains("crash") {
            let (duplicates, expected, rate) = crash(events / 4, 10, 3).await;
            println!(
                "crash: SIGKILL at 40% of {expected} deliveries (10 accounts x 3 endpoints), \
                 restart: {duplicates} delivered twice = {:.2} s of deliveries at the pre-kill \
                 rate of {rate:.0}/s",
                duplicates as f64 / rate
            );
        }
        if !scenarios.contains("throughput") && !scenarios.contains("isolation") {
            return;
        }
        if scenarios.contains("throughput") {
            // The bare client and hookrelay alternate, LOAD_REPEAT rounds: one pair on 2 shared
            // cores is noisy, and the bare client alone varies by a third between runs.
            let per_endpoint = events / endpoints;
            let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
            for round in 0..env_usize("LOAD_REPEAT", 3) {
                let (bare, bare_cpu) = bare_client(env_usize("LOAD_BARE_REQUESTS", 300_000)).await;
                let run = scenario(per_endpoint * endpoints / 4, endpoints, 0, false).await;
                let rate = run.healthy_requests as f64 / run.elapsed.as_secs_f64();
                let cpu = run.cpu * 1e6 / run.healthy_requests.max(1) as f64;
                println!(
                    "round {round}: bare reqwest (64 in flight, 600 B) {bare:>7.0} req/s, {bare_cpu:.1} µs CPU each; \
                     hookrelay, batching off, {endpoints} endpoints: {rate:>7.0} signed req/s ({} requests in {:.1} s), {cpu:.1} µs CPU each; \
                     ratio {:.2} by rate, {:.2} by CPU",
                    run.healthy_requests,
                    run.elapsed.as_secs_f64(),
                    rate / bare,
                    bare_cpu / cpu
                );
                ratios.push(rate / bare);
                cpu_ratios.push(bare_cpu / cpu);
            }
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
            };
            println!(
                "unbatched signed requests: {:.2} of the bare client's rate, {:.2} of its CPU per request (medians of {} rounds; CPU: this process and the broker)",
                median(ratios),
                median(cpu_ratios.clone()),
                cpu_ratios.len()
            );
        }
        if !scenarios.contains("isolation") {
            return;
        }

        // Isolation: healthy endpoints' delivery rate with none hanging versus with 20%
        // hanging, alternated LOAD_REPEAT times because one pair on 2 shared cores is noisy.
        let hanging = endpoints / 5;
        let mut ratios = Vec::new();
        for round in 0..env_usize("LOAD_REPEAT", 3) {
            let healthy = scenario(events / 10, endpoints, 0, true).await;
            let healthy_rate = healthy.healthy_events as f64 / healthy.elapsed.as_secs_f64();
            let slowed = scenario(events / 10, endpoints, hanging, true).await;
            let slowed_rate = slowed.healthy_events as f64 / slowed.elapsed.as_secs_f64();
            // Per healthy endpoint: with 20% hanging there are fewer healthy ones.
            let ratio = (slowed_rate / (endpoints - hanging) as f64)
                / (healthy_rate / endpoints as f64);
            println!(
                "round {round}: batching on, none hanging {healthy_rate:>7.0} deliveries/s ({} events in {} requests, {:.1} s); \
                 {hanging} of {endpoints} hanging {slowed_rate:>7.0} deliveries/s to healthy ones ({:.1} s): {:.0}% per healthy endpoint",
                healthy.healthy_events,
                healthy.healthy_requests,
                healthy.elapsed.as_secs_f64(),
                slowed.elapsed.as_secs_f64(),
                100.0 * ratio
            );
            ratios.push(ratio);
        }
        ratios.sort_by(f64::total_cmp);
        if let Some(median) = ratios.get(ratios.len() / 2) {
            println!(
                "healthy endpoints keep {:.0}% (median of {}) of their delivery rate with 20% of endpoints hanging",
                100.0 * median,
                ratios.len()
            );
        }
    });
}
