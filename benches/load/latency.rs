//! The latency scenario (`LOAD_SCENARIOS=latency`): a producer paced at a fixed rate, fan-out
//! 3, hookrelay running as its own process so its CPU can be told apart from the broker's.
//! Each event id carries the microsecond it was handed to the producer; the sink reads it
//! back, so the latency is produce → the sink's 2xx (the time the response is written).
//!
//! Before the timed window, one untimed event per account goes through (the consumer
//! assigned, the sinks' connections open: a service that has been running) and the time it
//! took is printed apart; LOAD_WARM_ROUNDS (default 1) sends that many per account at once,
//! which leaves about that many pooled connections per endpoint. After each run, `timeline`
//! prints where the deliveries slower than 30 ms were produced, second by second, beside
//! what the machine, hookrelay and the broker did in those seconds.
//!
//! Settings: LOAD_RATES (events/s, default `1000,3000,5000`), LOAD_SECONDS (per run, default
//! 60), LOAD_BATCHING (`off,on`), LOAD_ACCOUNTS (default 50; each has 3 endpoints),
//! LOAD_PRODUCE_ONLY (set: no hookrelay, to measure what the input producer alone costs the
//! broker). Broker CPU is the whole JVM's: run against a broker nobody else uses
//! (`KAFKA_PORT=39092 scripts/kafka start`, `HOOKRELAY_TEST_BOOTSTRAP=127.0.0.1:39092`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use hookrelay::config::Config;
use hookrelay::event::encode_avro;
use hookrelay::ids::{AccountId, EventId};
use rdkafka::ClientConfig;
use rdkafka::producer::FutureRecord;

use super::{bootstrap, config_env, create_topics, publish_endpoints};

const FAN_OUT: usize = 3;

/// Microseconds since the harness started; the clock both producer and sink read.
fn micros() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

#[derive(Clone, Default)]
struct Sink {
    deliveries: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    /// Deliveries of the warm-up round (ids `evt_w…`), which are not timed.
    warm_up: Arc<AtomicU64>,
    /// (the harness second it was produced in, produce → 2xx in microseconds), one per
    /// delivered event.
    latencies: Arc<Mutex<Vec<(u32, u32)>>>,
}

async fn start_sink(sink: Sink) -> std::net::SocketAddr {
    let app = Router::new().route(
        "/lat/{n}",
        post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let now = micros();
                let mut found = 0;
                let mut samples = Vec::new();
                let mut rest = &body[..];
                // Ids look like evt_t<micros>n<index>; a batch body has several.
                while let Some(at) = find(rest, b"\"id\":\"evt_t") {
                    rest = &rest[at + 11..];
                    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                    let sent: u64 = std::str::from_utf8(&rest[..digits])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(now);
                    let latency = now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
                    samples.push(((sent / 1_000_000) as u32, latency));
                    found += 1;
                }
                let warm = super::count_occurrences(&body, b"\"id\":\"evt_w");
                sink.warm_up.fetch_add(warm as u64, Ordering::Relaxed);
                sink.requests.fetch_add(1, Ordering::Relaxed);
                sink.deliveries.fetch_add(found, Ordering::Relaxed);
                sink.latencies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(samples);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sink");
    let addr = listener.local_addr().expect("sink addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// (user + system CPU seconds, peak RSS KiB) of a process, from /proc.
pub(super) fn cpu_and_peak(pid: u32) -> (f64, u64) {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start at ')'.
            let after = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let utime: u64 = after.get(11)?.parse().ok()?;
            let stime: u64 = after.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(0);
    let peak = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    // Linux reports CPU time in clock ticks of 1/100 s.
    (ticks as f64 / 100.0, peak)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The test broker's JVM, from the pid file `scripts/kafka` keeps.
pub(super) fn broker_pid() -> Option<u32> {
    let cache = std::env::var("HOOKRELAY_CACHE").unwrap_or_else(|_| "/var/cache/hookrelay".into());
    let port = bootstrap().rsplit(':').next().unwrap_or("19092").to_owned();
    std::fs::read_to_string(format!("{cache}/kafka-run-{port}/kafka.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Queues one event of account `acc_lat<account>`; `index` picks its type.
fn send(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    id: String,
    account: usize,
    index: usize,
) {
    let account = format!("acc_lat{account}");
    let t = hookrelay::event::EventType::ALL[index % hookrelay::event::EventType::ALL.len()];
    let event = hookrelay::event::sample(EventId::new(id), t, AccountId::new(account.clone()));
    let payload = encode_avro(&event).expect("encode");
    super::queue(
        producer,
        FutureRecord::to(topic).key(&account).payload(&payload),
    );
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// One paced run; prints one table row.
async fn run(rate: f64, seconds: u64, batching: bool, accounts: usize) {
    let sink = Sink::default();
    let addr = start_sink(sink.clone()).await;
    let (mut env, dir) = config_env(batching);
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    env.retain(|(k, _)| k != "HOOKRELAY__ADMIN__LISTEN");
    env.push((
        "HOOKRELAY__ADMIN__LISTEN".to_owned(),
        format!("127.0.0.1:{admin_port}"),
    ));
    let config = Config::load_from(None, &env).expect("config");
    create_topics(&config).await;
    // Sends within a millisecond: the input producer's linger would be part of the latency.
    let producer: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    publish_endpoints(&producer, &config, addr, "lat", "lat", accounts, FAN_OUT).await;
    // A licensing system's producer knows where the events topic lives long before this
    // run; without the lookup, the first events wait for it (about 100 ms).
    rdkafka::producer::Producer::client(&producer)
        .fetch_metadata(Some(&config.topics.events), Duration::from_secs(10))
        .expect("events topic metadata");
    let produce_only = std::env::var_os("LOAD_PRODUCE_ONLY").is_some();
    // `LOAD_BINARY` runs another build (an A/B against the one just built).
    let built =
        std::env::var("LOAD_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hookrelay").to_owned());
    let binary = if produce_only {
        "sleep"
    } else {
        built.as_str()
    };
    let mut child = std::process::Command::new(binary)
        .arg(if produce_only { "3600" } else { "run" })
        .envs(env.iter().cloned())
        .env("HOOKRELAY_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn hookrelay");
    let pid = child.id();
    let ready_url = format!("http://127.0.0.1:{admin_port}/readyz");
    let waiting = Instant::now();
    loop {
        let ready = produce_only
            || reqwest::get(&ready_url)
                .await
                .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(120),
            "hookrelay not ready within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !produce_only {
        // Untimed: one event per account (per round), so the timed window starts with the
        // consumer assigned and the sinks' connections open, as in a service that has been
        // running. What the warm-up waits for is printed apart.
        let ready_at = Instant::now();
        let warm_up = accounts * FAN_OUT * super::env_usize("LOAD_WARM_ROUNDS", 1);
        for i in 0..warm_up / FAN_OUT {
            let account = i % accounts;
            send(
                &producer,
                &config.topics.events,
                format!("evt_w{i}"),
                account,
                account,
            );
        }
        while sink.warm_up.load(Ordering::Relaxed) < warm_up as u64 {
            assert!(
                ready_at.elapsed() < Duration::from_secs(60),
                "the warm-up round was not delivered within a minute"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!(
            "  start-up: the warm-up ({warm_up} deliveries, untimed below) arrived {} ms after /readyz",
            ready_at.elapsed().as_millis()
        );
    }
    let broker = broker_pid();
    let meter = super::timeline::Meter::start(micros, pid, broker);
    let (cpu0, _) = cpu_and_peak(pid);
    let broker_cpu0 = broker.map_or(0.0, |b| cpu_and_peak(b).0);
    let started = Instant::now();
    let window = Duration::from_secs(seconds);
    let mut sent = 0usize;
    let mut rss_by_minute = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while started.elapsed() < window {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        while sent < due {
            let id = format!("evt_t{}n{sent}", micros());
            send(&producer, &config.topics.events, id, sent % accounts, sent);
            sent += 1;
        }
        let minute = started.elapsed().as_secs() / 60;
        if minute as usize > rss_by_minute.len() {
            rss_by_minute.push(rss_kib(pid));
        }
    }
    let expected = if produce_only {
        0
    } else {
        (sent * FAN_OUT) as u64
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.deliveries.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let (cpu1, peak) = cpu_and_peak(pid);
    let broker_cpu1 = broker.map_or(0.0, |b| cpu_and_peak(b).0);
    let machine = meter.finish();
    let _ = child.kill();
    let _ = child.wait();
    drop(dir);
    super::delete_topics(&config).await;
    let delivered = sink.deliveries.load(Ordering::Relaxed);
    let requests = sink.requests.load(Ordering::Relaxed);
    let samples = std::mem::take(&mut *sink.latencies.lock().unwrap_or_else(|e| e.into_inner()));
    let mut lat: Vec<u32> = samples.iter().map(|&(_, l)| l).collect();
    lat.sort_unstable();
    let per_k = |cpu: f64| 1000.0 * cpu / delivered.max(1) as f64;
    println!(
        "| {rate:.0} | {} | {delivered}/{expected} ({requests} requests) | {:.0} | {:.1} / {:.1} / {:.1} | {:.3} / {:.3} ({:.1} s / {:.1} s in {:.0} s) | {} |{}",
        if batching { "on" } else { "off" },
        delivered as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        per_k(cpu1 - cpu0),
        per_k(broker_cpu1 - broker_cpu0),
        cpu1 - cpu0,
        broker_cpu1 - broker_cpu0,
        elapsed.as_secs_f64(),
        peak / 1024,
        if rss_by_minute.len() > 1 {
            format!(
                " RSS by minute (MiB): {}",
                rss_by_minute
                    .iter()
                    .map(|k| (k / 1024).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        }
    );
    let wall_at_zero = std::time::SystemTime::now() - Duration::from_micros(micros());
    super::timeline::report(&samples, &machine, 30, wall_at_zero);
}

pub async fn scenario() {
    let rates: Vec<f64> = std::env::var("LOAD_RATES")
        .unwrap_or_else(|_| "1000,3000,5000".to_owned())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let seconds = super::env_usize("LOAD_SECONDS", 60) as u64;
    let accounts = super::env_usize("LOAD_ACCOUNTS", 50);
    let batching: Vec<bool> = std::env::var("LOAD_BATCHING")
        .unwrap_or_else(|_| "off,on".to_owned())
        .split(',')
        .map(|b| b.trim() == "on")
        .collect();
    println!(
        "latency: {seconds} s per run, {accounts} accounts x {FAN_OUT} endpoints; produce -> 2xx"
    );
    println!(
        "| events/s | batching | delivered/expected | deliveries/s | p50 / p99 / p99.9 ms | CPU s per 1,000 deliveries: hookrelay / broker | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &rate in &rates {
        for &b in &batching {
            run(rate, seconds, b, accounts).await;
        }
    }
}
