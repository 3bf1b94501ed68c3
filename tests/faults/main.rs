//! The fault suite: hookrelay processes on a real broker under steady load while faults are
//! injected (instances killed, the broker restarted, the group scaled down and up, malformed
//! input, hostile endpoints, a full disk), counted at the receivers by a ledger that nothing
//! in hookrelay writes. Every scenario ends by waiting until the ledger holds every expected
//! (endpoint, event) pair, then prints delivered/expected, duplicates and the time to recover,
//! and appends that line to `$CARGO_TARGET_DIR/faults-report.md`.
//!
//! Sizes are small by default so CI stays within its time; `FAULTS_SCALE=4` runs four times
//! the load for four times as long. `soak` (ignored by default) runs for hours at a fixed
//! rate and prints the ledger and memory every minute:
//!
//!   FAULTS_SOAK_MINUTES=600 FAULTS_SOAK_RATE=500 cargo test --release --test faults -- --ignored soak --nocapture

mod cluster;
#[path = "../support/isolated_env.rs"]
mod isolated_env;
mod ledger;
mod load;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hookrelay::sign::generate_secret;
use hookrelay::subscriptions::{Endpoint, publish};
use rdkafka::Message;
use rdkafka::message::Headers;

use cluster::{Fleet, PrivateBroker, config, create_topics, shared_bootstrap};
use ledger::{Behavior, Count, Ledger};
use load::{Account, Produced, produce};

/// Two scenarios at a time: each spends most of its time pacing a producer and waiting, so
/// two fit the machine's two cores and halve the suite's wall time in CI.
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn scale() -> f64 {
    std::env::var("FAULTS_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

/// `secs` seconds, scaled.
fn window(secs: f64) -> Duration {
    Duration::from_secs_f64(secs * scale())
}

/// Registers `accounts` accounts with `per_account` endpoints each on the ledger, all
/// answering `behavior`, and publishes them; returns the accounts for the producer.
/// A scenario's receivers, configuration (see [`config`]) and topics.
async fn prepare(
    bootstrap: &str,
    tiers_secs: &[u64],
    overrides: &[(&str, &str)],
) -> (Ledger, hookrelay::config::Config, tempfile::TempDir) {
    let ledger = Ledger::start().await;
    let (config, dir) = config(bootstrap, tiers_secs, overrides);
    create_topics(&config).await;
    (ledger, config, dir)
}

async fn healthy_accounts(
    config: &hookrelay::config::Config,
    ledger: &Ledger,
    prefix: &str,
    accounts: usize,
    per_account: usize,
) -> Vec<Account> {
    let mut out = Vec::new();
    let mut endpoints = Vec::new();
    for a in 0..accounts {
        let account = format!("acc_{prefix}{a}");
        let mut accepting = Vec::new();
        for e in 0..per_account {
            let name = format!("{prefix}{a}x{e}");
            endpoints.push(register(ledger, &account, &name, Behavior::Healthy));
            accepting.push(name);
        }
        out.push(Account {
            id: account,
            accepting,
        });
    }
    publish_all(config, &endpoints).await;
    out
}

fn register(ledger: &Ledger, account: &str, name: &str, behavior: Behavior) -> Endpoint {
    let secret = generate_secret();
    let url = ledger.endpoint(name, behavior, &secret);
    Endpoint::new(
        format!("ep_{name}").as_str().into(),
        account.into(),
        url.parse().expect("url"),
        secret,
    )
}

async fn publish_all(config: &hookrelay::config::Config, endpoints: &[Endpoint]) {
    let producer = load::producer(&config.kafka.bootstrap_servers);
    for ep in endpoints {
        publish(&producer, &config.topics.subscriptions, ep)
            .await
            .expect("publish endpoint");
    }
}

/// One row of the report.
struct Row {
    scenario: &'static str,
    load: String,
    faults: String,
    count: Count,
    recovered: Duration,
}

fn report(row: &Row) {
    let line = format!(
        "| {} | {} | {} | {}/{} | {} | {:.1} s |",
        row.scenario,
        row.load,
        row.faults,
        row.count.delivered,
        row.count.expected,
        row.count.duplicates,
        row.recovered.as_secs_f64()
    );
    println!("{line}");
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::path::Path::new(&dir).join("faults-report.md"))
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Starts the producer in the background: `rate` events/s for `duration`.
fn start_producing(
    config: &hookrelay::config::Config,
    accounts: Vec<Account>,
    rate: f64,
    duration: Duration,
    poison_every: Option<usize>,
) -> (tokio::task::JoinHandle<Produced>, Arc<AtomicBool>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (bootstrap, topic, s) = (
        config.kafka.bootstrap_servers.clone(),
        config.topics.events.clone(),
        stop.clone(),
    );
    let handle = tokio::spawn(async move {
        produce(
            &bootstrap,
            &topic,
            &accounts,
            rate,
            duration,
            poison_every,
            s,
        )
        .await
    });
    (handle, stop)
}

/// Waits for the ledger to hold every expected pair; returns how long that took.
async fn settle(ledger: &Ledger, produced: &Produced, within: Duration) -> Duration {
    let started = Instant::now();
    let complete = ledger.wait_complete(&produced.expected, within).await;
    let count = ledger.count(&produced.expected);
    assert!(
        complete,
        "{} of {} expected deliveries arrived",
        count.delivered, count.expected
    );
    assert_eq!(ledger.bad_signatures(), 0, "every request verifies");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_loop() {
    let _slot = SLOTS.acquire().await.expect("never closed");
    let (ledger, config, dir) = prepare(&shared_bootstrap(), &[2, 4], &[]).await;
    let accounts = healthy_accounts(&config, &ledger, "k", 12, 3).await;
    let mut fleet = Fleet::new(&config, dir.path(), 3);
    fleet.start_all_ready().await;
    let rate = 100.0;
    let duration = window(30.0);
    let (producing, _) = start_producing(&config, accounts, rate, duration, None);
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let victim = rand::random::<u32>() as usize % fleet.len();
        fleet.kill(victim);
        kills += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
        fleet.start(victim);
    }
    let produced = producing.await.expect("producer");
    let recovered = settle(&ledger, &produced, Duration::from_secs(180)).await;
    report(&Row {
        scenario: "kill loop",
        load: format!(
            "{rate:.0} events/s x 3 endpoints, {:.0} s, 3 instances",
            duration.as_secs_f64()
        ),
        faults: format!("{kills} SIGKILLs (one every 4 s, restarted after 0.5 s)"),
        count: ledger.count(&produced.expected),
        recovered,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_three_to_one_to_three() {
    let _slot = SLOTS.acquire().await.expect("never closed");
    let (ledger, config, dir) = prepare(&shared_bootstrap(), &[2, 4], &[]).await;
    let accounts = healthy_accounts(&config, &ledger, "s", 12, 3).await;
    let mut fleet = Fleet::new(&config, dir.path(), 3);
    fleet.start_all_ready().await;
    let rate = 100.0;
    let duration = window(30.0);
    let (producing, _) = start_producing(&config, accounts, rate, duration, None);
    tokio::time::sleep(duration / 3).await;
    assert!(fleet.stop(1) && fleet.stop(2), "graceful stops exit 0");
    tokio::time::sleep(duration / 3).await;
    fleet.start(1);
    fleet.start(2);
    let produced = producing.await.expect("producer");
    let recovered = settle(&ledger, &produced, Duration::from_secs(180)).await;
    report(&Row {
        scenario: "scale 3 -> 1 -> 3",
        load: format!(
            "{rate:.0} events/s x 3 endpoints, {:.0} s",
            duration.as_secs_f64()
        ),
        faults: "two of three instances stopped (SIGTERM) for a third of the run, then started"
            .to_owned(),
        count: ledger.count(&produced.expected),
        recovered,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart() {
    let _slot = SLOTS.acquire().await.expect("never closed");
    let broker = PrivateBroker::start(29_092);
    let (ledger, config, dir) = prepare(
        &broker.bootstrap(),
        &[1, 2, 3, 4, 60],
        &[("HOOKRELAY__RETRY__BREAKER_THRESHOLD", "100000")],
    )
    .await;
    let mut accounts = healthy_accounts(&config, &ledger, "b", 6, 2).await;
    // One endpoint fails until the broker is back, so records wait in every retry tier.
    let flaky = register(&ledger, "acc_b0", "bflaky", Behavior::Status(503));
    publish_all(&config, std::slice::from_ref(&flaky)).await;
    accounts[0].accepting.push("bflaky".to_owned());
    // Warnings too: how readiness went and came back ("no broker is reachable", "a broker
    // is reachable again", client errors) is what a failure here needs to be read.
    let mut fleet = Fleet::new(&config, dir.path(), 1).logging("warn");
    fleet.start_all_ready().await;
    let rate = 50.0;
    let duration = window(40.0);
    let (producing, _) = start_producing(&config, accounts, rate, duration, None);
    tokio::time::sleep(window(12.0)).await;
    let metrics = reqwest::get(format!(
        "http://{}/metrics",
        fleet_admin(&config, dir.path())
    ))
    .await;
    let waiting: Vec<String> = match metrics {
        Ok(r) => r
            .text()
            .await
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("hookrelay_retry_waiting{") && !l.ends_with(" 0"))
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    };
    broker.stop();
    let outage = Instant::now();
    let mut saw_unready = false;
    let mut last = String::new();
    while outage.elapsed() < Duration::from_secs(12) {
        let (status, text) = fleet.readyz(0).await;
        if status == 503 && text.contains("brokers: unreachable") {
            saw_unready = true;
        }
        last = format!("{status}: {text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    broker.resume();
    let back = Instant::now();
    assert!(
        saw_unready,
        "/readyz never showed the outage; last answer {last}"
    );
    if !fleet.wait_ready(0, Duration::from_secs(60)).await {
        let (status, text) = fleet.readyz(0).await;
        panic!("not ready 60 s after the broker came back; /readyz {status}: {text}");
    }
    ledger.set("bflaky", Behavior::Healthy);
    let produced = producing.await.expect("producer");
    settle(&ledger, &produced, Duration::from_secs(240)).await;
    report(&Row {
        scenario: "broker restart",
        load: format!(
            "{rate:.0} events/s x 2-3 endpoints, {:.0} s, 1 instance",
            duration.as_secs_f64()
        ),
        faults: format!(
            "broker stopped for 12 s with {} retry tiers holding records, then resumed; /readyz 503 meanwhile",
            waiting.len()
        ),
        count: ledger.count(&produced.expected),
        recovered: back.elapsed(),
    });
}

/// The admin address of a one-instance fleet (read back from its config file).
fn fleet_admin(config: &hookrelay::config::Config, dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("instance-0.toml")).unwrap_or_default();
    text.lines()
        .find(|l| l.trim_start().starts_with("listen"))
        .and_then(|l| l.split('"').nth(1))
        .map(str::to_owned)
        .unwrap_or_else(|| config.admin.listen.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison() {
    let _slot = SLOTS.acquire().await.expect("never closed");
    let (ledger, config, dir) = prepare(&shared_bootstrap(), &[2, 4], &[]).await;
    let accounts = healthy_accounts(&config, &ledger, "p", 8, 3).await;
    let mut fleet = Fleet::new(&config, dir.path(), 1);
    fleet.start_all_ready().await;
    let rate = 100.0;
    let duration = window(20.0);
    let (producing, _) = start_producing(&config, accounts, rate, duration, Some(100));
    let produced = producing.await.expect("producer");
    let recovered = settle(&ledger, &produced, Duration::from_secs(120)).await;
    // Every malformed record is on the invalid-records topic with the decoder's reason.
    let mut want: Vec<String> = produced.poison.iter().map(|(_, _, r)| r.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got: Vec<String>;
    loop {
        got = read_reasons(&config);
        if got.len() >= want.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    want.sort();
    got.sort();
    assert_eq!(got, want, "each malformed record kept with its reason");
    let kinds: std::collections::BTreeSet<String> = produced
        .poison
        .iter()
        .map(|(k, _, _)| format!("{k:?}"))
        .collect();
    assert_eq!(kinds.len(), load::Poison::ALL.len(), "every kind was sent");
    report(&Row {
        scenario: "poison",
        load: format!(
            "{rate:.0} records/s x 3 endpoints, {:.0} s",
            duration.as_secs_f64()
        ),
        faults: format!(
            "{} malformed records (1%): {}",
            produced.poison.len(),
            kinds.into_iter().collect::<Vec<_>>().join(", ")
        ),
        count: ledger.count(&produced.expected),
        recovered,
    });
}

/// The `hookrelay-invalid-reason` header of every record on the invalid-records topic.
fn read_reasons(config: &hookrelay::config::Config) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .set("group.id", cluster::unique("reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[&config.topics.invalid])
        .expect("subscribe");
    let mut out = Vec::new();
    let mut idle = Instant::now();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                idle = Instant::now();
                let reason = m.headers().and_then(|h| {
                    h.iter()
                        .find(|x| x.key == "hookrelay-invalid-reason")
                        .and_then(|x| x.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                });
                out.push(reason.unwrap_or_default());
            }
            _ => {
                if !out.is_empty() && idle.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_endpoints() {
    let _slot = SLOTS.acquire().await.expect("never closed");
    let (ledger, config, dir) = prepare(&shared_bootstrap(), &[1, 2], &[]).await;
    let mut accounts = healthy_accounts(&config, &ledger, "h", 4, 3).await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let hostile: Vec<(&str, Behavior)> = vec![
        ("hang", Behavior::Hang),
        ("reset", Behavior::ResetMidResponse),
        ("refused", Behavior::Status(0)),
        ("fail500", Behavior::Status(500)),
        ("throttle", Behavior::Throttle { times: 3, secs: 1 }),
        ("huge", Behavior::HugeBody(100 << 20)),
        ("redirect", Behavior::RedirectInternal),
        ("slow", Behavior::Slow(Duration::from_millis(800))),
    ];
    let mut endpoints = Vec::new();
    let mut accepting = Vec::new();
    for (name, behavior) in &hostile {
        let mut ep = register(&ledger, "acc_hostile", name, behavior.clone());
        if *name == "refused" {
            ep.url = format!("http://127.0.0.1:{refused}/refused")
                .parse()
                .expect("url");
        }
        if behavior.accepts() {
            accepting.push((*name).to_owned());
        }
        endpoints.push(ep);
    }
    publish_all(&config, &endpoints).await;
    accounts.push(Account {
        id: "acc_hostile".to_owned(),
        accepting,
    });
    let healthy: Vec<String> = accounts[..4]
        .iter()
        .flat_map(|a| a.accepting.clone())
        .collect();
    let mut fleet = Fleet::new(&config, dir.path(), 1);
    fleet.start_all_ready().await;
    let rate = 50.0;
    let duration = window(20.0);
    let (producing, _) = start_producing(&config, accounts, rate, duration, None);
    let mut peak_rss = 0;
    while !producing.is_finished() {
        peak_rss = peak_rss.max(fleet.rss_kib(0).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let produced = producing.await.expect("producer");
    let done = Instant::now();
    // Healthy endpoints keep up: their events are all in shortly after the last is produced.
    let healthy_expected: Vec<(String, String)> = produced
        .expected
        .iter()
        .filter(|(e, _)| healthy.contains(e))
        .cloned()
        .collect();
    assert!(
        ledger
            .wait_complete(&healthy_expected, Duration::from_secs(10))
            .await,
        "healthy endpoints fell behind hostile ones"
    );
    let healthy_lag = done.elapsed();
    let recovered = settle(&ledger, &produced, Duration::from_secs(120)).await;
    for name in ["hang", "reset", "fail500", "redirect"] {
        assert!(ledger.requests(name) > 0, "{name} was tried");
    }
    assert!(
        peak_rss < 400 * 1024,
        "resident memory reached {peak_rss} KiB: a 100 MB answer must not be buffered"
    );
    report(&Row {
        scenario: "hostile endpoints",
        load: format!(
            "{rate:.0} events/s, 4 healthy accounts x 3 endpoints and 1 hostile account, {:.0} s",
            duration.as_secs_f64()
        ),
        faults: format!(
            "hang, reset mid-response, refused, 500, 429 + Retry-After, 100 MB body, 301 to 169.254.169.254, 0.8 s answers; healthy endpoints done {:.1} s after the last event; peak RSS {} MiB",
            healthy_lag.as_secs_f64(),
            peak_rss / 1024
        ),
        count: ledger.count(&produced.expected),
        recovered,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_then_restart_with_space() {
    let _slot = SLOTS.acquire().await.expect("never closed");
    let mount = tempfile::tempdir().expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(mount.path())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "this scenario mounts a small tmpfs for the data directory (needs root, as in CI)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mount.path().to_owned());
    let (ledger, config, _dir) = prepare(&shared_bootstrap(), &[2, 4], &[]).await;
    let accounts = healthy_accounts(&config, &ledger, "d", 6, 3).await;
    let mut fleet = Fleet::new(&config, mount.path(), 1);
    fleet.start_all_ready().await;
    let rate = 50.0;
    let duration = window(20.0);
    let (producing, _) = start_producing(&config, accounts, rate, duration, None);
    tokio::time::sleep(duration / 4).await;
    // Fill the disk, then change endpoints until the table cannot write.
    let filler = mount.path().join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let mut n = 0;
    let failed_at = loop {
        let mut e = register(&ledger, "acc_fill", &format!("fill{n}"), Behavior::Healthy);
        e.description = Some("x".repeat(4000));
        publish_all(&config, &[e]).await;
        n += 1;
        let (status, text) = fleet.readyz(0).await;
        if status == 503 && text.contains("subscriptions: failed") {
            break Instant::now();
        }
        assert!(n < 20_000, "the table never failed to write");
    };
    // Delivery stopped: nothing more arrives while the process runs on a full disk.
    let before = ledger.accepted_pairs();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        ledger.accepted_pairs(),
        before,
        "nothing delivered from a frozen table"
    );
    fleet.kill(0);
    std::fs::remove_file(&filler).expect("free the space");
    fleet.start(0);
    assert!(
        fleet.wait_ready(0, Duration::from_secs(60)).await,
        "ready after a restart with space"
    );
    let produced = producing.await.expect("producer");
    settle(&ledger, &produced, Duration::from_secs(120)).await;
    report(&Row {
        scenario: "disk full",
        load: format!(
            "{rate:.0} events/s x 3 endpoints, {:.0} s, 1 instance",
            duration.as_secs_f64()
        ),
        faults: "the data directory's tmpfs filled mid-run (readyz 503 with the RocksDB error), then the instance restarted with space".to_owned(),
        count: ledger.count(&produced.expected),
        recovered: failed_at.elapsed(),
    });
}

/// Hours at a fixed rate, printing the ledger and memory every minute. Ignored by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak runs for minutes to hours: cargo test --release --test faults -- --ignored soak"]
async fn soak() {
    let minutes: u64 = std::env::var("FAULTS_SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rate: f64 = std::env::var("FAULTS_SOAK_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500.0);
    let (ledger, config, dir) = prepare(&shared_bootstrap(), &[5, 10], &[]).await;
    let accounts = healthy_accounts(&config, &ledger, "soak", 50, 3).await;
    let mut fleet = Fleet::new(&config, dir.path(), 1);
    fleet.start_all_ready().await;
    let duration = Duration::from_secs(minutes * 60);
    let stop = Arc::new(AtomicBool::new(false));
    let (bootstrap, topic, s, accs) = (
        config.kafka.bootstrap_servers.clone(),
        config.topics.events.clone(),
        stop.clone(),
        accounts.clone(),
    );
    let producing =
        tokio::spawn(
            async move { produce(&bootstrap, &topic, &accs, rate, duration, None, s).await },
        );
    let started = Instant::now();
    let mut rss = Vec::new();
    println!("minute | delivered (ledger) | duplicates | bad signatures | RSS MiB");
    while !producing.is_finished() {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let kib = fleet.rss_kib(0).unwrap_or(0);
        rss.push(kib);
        let count = ledger.count(&[]);
        println!(
            "{:>6} | {:>18} | {:>10} | {:>14} | {:>7.1}",
            started.elapsed().as_secs() / 60,
            ledger_total(&ledger),
            count.duplicates,
            ledger.bad_signatures(),
            kib as f64 / 1024.0
        );
    }
    stop.store(true, Ordering::Release);
    let produced = producing.await.expect("producer");
    let recovered = settle(&ledger, &produced, Duration::from_secs(300)).await;
    let (first, last) = (
        rss.first().copied().unwrap_or(0),
        rss.last().copied().unwrap_or(0),
    );
    report(&Row {
        scenario: "soak",
        load: format!("{rate:.0} events/s x 3 endpoints, {minutes} min, 1 instance"),
        faults: format!(
            "none; RSS first minute {} MiB, last minute {} MiB",
            first / 1024,
            last / 1024
        ),
        count: ledger.count(&produced.expected),
        recovered,
    });
    assert!(
        last <= first + first / 2 + 32 * 1024,
        "memory grew from {first} KiB to {last} KiB"
    );
}

/// Pairs accepted so far (each counted once).
fn ledger_total(ledger: &Ledger) -> usize {
    ledger.accepted_pairs()
}
