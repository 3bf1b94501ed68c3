//! Subscriptions table benchmark against the real broker: bootstrap time into an empty
//! RocksDB, restart time, and fan-out join lookups per second.
//!
//!   scripts/kafka start
//!   HOOKRELAY_BENCH_ENDPOINTS=100000,1000000 \
//!     CARGO_TARGET_DIR=/var/cache/hookrelay/target cargo bench --bench subscriptions
//!
//! HOOKRELAY_TEST_BOOTSTRAP picks the broker (default 127.0.0.1:19092). Each size gets its
//! own topic (6 partitions, compacted), deleted afterwards.

use std::time::{Duration, Instant};

use futures::future::join_all;
use hookrelay::ids::{AccountId, EndpointId, Secret};
use hookrelay::subscriptions::{Endpoint, Store, SubscriptionTable, encode_endpoint};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Endpoints per account on average: most customers register one to a few.
const ENDPOINTS_PER_ACCOUNT: usize = 4;
const PARTITIONS: i32 = 6;
/// How long the lookup loop runs per size.
const LOOKUP_TIME: Duration = Duration::from_secs(3);
const EVENT_TYPES: [&str; 4] = [
    "license.created",
    "license.expired",
    "payment.failed",
    "domain.added",
];

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; under `cargo test --all-targets` the broker-heavy run
    // is skipped.
    if !std::env::args().any(|a| a == "--bench") {
        println!("subscriptions bench: run with `cargo bench --bench subscriptions`");
        return Ok(());
    }
    let sizes: Vec<usize> = std::env::var("HOOKRELAY_BENCH_ENDPOINTS")
        .unwrap_or_else(|_| "100000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse())
        .collect::<Result<_, _>>()?;
    let bootstrap =
        std::env::var("HOOKRELAY_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for n in sizes {
            bench_size(&bootstrap, n).await?;
        }
        Ok(())
    })
}

fn endpoint(n: usize) -> Endpoint {
    let accounts = (n / ENDPOINTS_PER_ACCOUNT).max(1);
    Endpoint {
        description: Some("production license hooks".into()),
        event_types: match n % 3 {
            0 => vec![],
            1 => vec![EVENT_TYPES[n % 4].to_owned()],
            _ => EVENT_TYPES[..2].iter().map(|s| (*s).to_owned()).collect(),
        },
        enabled: !n.is_multiple_of(20),
        created_at_ms: Some(1_760_000_000_000),
        updated_at_ms: Some(1_760_000_000_000),
        ..Endpoint::new(
            EndpointId::new(format!("ep_{n:08}")),
            AccountId::new(format!("acct_{:07}", fastrand(n) % accounts)),
            format!("https://hooks.customer-{n}.example.com/webhooks/license")
                .parse()
                .expect("static URL"),
            Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        )
    }
}

/// A cheap deterministic scramble so accounts are not contiguous in id order.
fn fastrand(n: usize) -> usize {
    let mut x = n as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x as usize
}

async fn bench_size(bootstrap: &str, n: usize) -> anyhow::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let topic = format!("bench-subs-{n}-{:x}", nanos & 0xff_ffff);
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap);
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let new_topic = NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact");
    for r in admin.create_topics([&new_topic], &opts).await? {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }

    let result = run(&client, &topic, n).await;
    for r in admin.delete_topics(&[&topic], &opts).await? {
        r.map_err(|(t, e)| anyhow::anyhow!("deleting {t}: {e}"))?;
    }
    result
}

async fn run(client: &ClientConfig, topic: &str, n: usize) -> anyhow::Result<()> {
    println!("== {n} endpoints, topic {topic} ({PARTITIONS} partitions)");
    let started = Instant::now();
    let bytes = produce(client, topic, n).await?;
    let took = started.elapsed();
    println!(
        "produce:   {n} records, {:.1} MB, {:.1} s, {:.0} records/s",
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let cpu = cpu_seconds("self");
    let store = Store::open(dir.path(), topic)?;
    let (table, handle) = SubscriptionTable::start(client.clone(), topic, store).await?;
    table.wait_ready().await?;
    let took = started.elapsed();
    let cpu = cpu_seconds("self") - cpu;
    anyhow::ensure!(table.len() == n as u64, "table has {} of {n}", table.len());
    println!(
        "bootstrap: {n} records into empty RocksDB, {:.2} s, {:.0} records/s ({cpu:.1} CPU s in this process)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );

    lookups(&table, n);

    table.shutdown();
    handle.await?;
    drop(table);
    let started = Instant::now();
    let store = Store::open(dir.path(), topic)?;
    let (table, handle) = SubscriptionTable::start(client.clone(), topic, store).await?;
    table.wait_ready().await?;
    println!(
        "restart:   ready in {:.3} s, {} records re-read",
        started.elapsed().as_secs_f64(),
        table.records_applied()
    );
    let size: u64 = walk_size(dir.path());
    println!("rocksdb:   {:.1} MB on disk", size as f64 / 1e6);
    table.shutdown();
    handle.await?;
    Ok(())
}

/// Produces `n` endpoints, enqueueing in chunks and awaiting each chunk's acknowledgements.
async fn produce(client: &ClientConfig, topic: &str, n: usize) -> anyhow::Result<usize> {
    let producer: FutureProducer = client
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut bytes = 0;
    for start in (0..n).step_by(20_000) {
        let chunk: Vec<(String, Vec<u8>)> = (start..n.min(start + 20_000))
            .map(|i| {
                let e = endpoint(i);
                encode_endpoint(&e).map(|v| (e.id.as_str().to_owned(), v))
            })
            .collect::<Result<_, _>>()?;
        bytes += chunk.iter().map(|(_, v)| v.len()).sum::<usize>();
        let sends = chunk.iter().map(|(k, v)| {
            producer.send(
                FutureRecord::<str, [u8]>::to(topic).key(k).payload(v),
                Duration::from_secs(60),
            )
        });
        for r in join_all(sends).await {
            r.map_err(|(e, _)| e)?;
        }
    }
    Ok(bytes)
}

fn lookups(table: &SubscriptionTable, n: usize) {
    let accounts = (n / ENDPOINTS_PER_ACCOUNT).max(1);
    let started = Instant::now();
    let cpu = cpu_seconds("thread-self");
    let mut done = 0usize;
    let mut matched = 0usize;
    while started.elapsed() < LOOKUP_TIME {
        for _ in 0..1_000 {
            let account = AccountId::new(format!("acct_{:07}", fastrand(done) % accounts));
            let event_type = EVENT_TYPES[done % EVENT_TYPES.len()];
            matched += table
                .endpoints_for(&account, event_type)
                .map(|v| v.len())
                .unwrap_or(0);
            done += 1;
        }
    }
    let took = started.elapsed();
    let cpu = cpu_seconds("thread-self") - cpu;
    println!(
        "join:      {done} endpoints_for lookups in {:.2} s, {:.0} lookups/s ({:.0} per CPU s), {:.2} endpoints per event, 1 thread",
        took.as_secs_f64(),
        done as f64 / took.as_secs_f64(),
        done as f64 / cpu,
        matched as f64 / done as f64
    );

    let started = Instant::now();
    let cpu = cpu_seconds("thread-self");
    let mut found = 0usize;
    let mut gets = 0usize;
    while started.elapsed() < LOOKUP_TIME {
        for _ in 0..1_000 {
            let id = EndpointId::new(format!("ep_{:08}", fastrand(gets) % n));
            found += usize::from(matches!(table.get(&id), Ok(Some(_))));
            gets += 1;
        }
    }
    let took = started.elapsed();
    let cpu = cpu_seconds("thread-self") - cpu;
    println!(
        "get:       {gets} point lookups in {:.2} s, {:.0} gets/s ({:.0} per CPU s, {found} found), 1 thread",
        took.as_secs_f64(),
        gets as f64 / took.as_secs_f64(),
        gets as f64 / cpu
    );
}

/// CPU seconds used so far by this thread (`thread-self`) or process (`self`), from
/// /proc: the machine is shared, so wall time alone overstates the cost under contention.
fn cpu_seconds(which: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{which}/stat")).unwrap_or_default();
    // Fields after the parenthesized command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn walk_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
