//! The delivery engine end to end, on the real broker with real HTTP receivers on loopback:
//! fan-out to every subscribed endpoint, signatures an independent Standard Webhooks
//! implementation accepts, committed offsets, consumer-group fail-over, crash recovery, and
//! the SSRF guard.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use hookrelay::event::{EventType, encode_avro, encode_json};
use hookrelay::ids::{AccountId, EventId, Secret};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common;
use crate::harness::{self, RunningApp, endpoint, publish_endpoints, secret, test_config};
use crate::receiver::{Behavior, Received, Receiver};

pub fn event(i: usize, account: &str, t: EventType) -> hookrelay::event::LicenseEvent {
    hookrelay::event::sample(
        EventId::new(format!("evt_{i:07}")),
        t,
        AccountId::from(account),
    )
}

/// Produces `events` as (account, type) with Avro and JSON mixed; returns (event id, account, type).
pub async fn produce_events(
    topic: &str,
    specs: impl Iterator<Item = (usize, String, EventType)>,
) -> Vec<(String, String, EventType)> {
    let producer: FutureProducer = common::producer();
    let mut out = Vec::new();
    for (i, account, t) in specs {
        let e = event(i, &account, t);
        let payload = if i % 2 == 0 {
            encode_avro(&e).expect("avro")
        } else {
            encode_json(&e)
        };
        loop {
            let record = FutureRecord::to(topic)
                .key(account.as_str())
                .payload(&payload);
            match producer.send_result(record) {
                Ok(_) => break,
                Err(_) => {
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        out.push((e.id.to_string(), account, t));
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    out
}

/// Writes the requests to a JSON-lines file and verifies them with the reference Python
/// Standard Webhooks library (installed by scripts/test). Returns its "N passed" line.
fn verify_with_reference_library(
    received: &[Received],
    secrets: &HashMap<String, Secret>,
) -> String {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("requests.jsonl");
    let mut lines = String::new();
    for r in received {
        let name = r.path.trim_start_matches("/ep/");
        let line = serde_json::json!({
            "secrets": [secrets[name].expose()],
            "headers": {
                "webhook-id": r.webhook_id,
                "webhook-timestamp": r.webhook_timestamp,
                "webhook-signature": r.webhook_signature,
            },
            "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body),
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(&file, lines).expect("write requests");
    let python = std::env::var("HOOKRELAY_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/verify_standardwebhooks.py"
    );
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("running {python} (run scripts/test, which installs the verifier): {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "reference verifier rejected requests: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The committed offsets of `group` on `topic`, summed, and the topic's end offsets, summed.
pub fn committed_and_end(group: &str, topic: &str) -> (i64, i64) {
    let consumer: BaseConsumer = common::client_config()
        .set("group.id", group)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    let mut end = 0;
    for p in 0..partitions {
        tpl.add_partition(topic, p);
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        end += high;
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    let sum = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum();
    (sum, end)
}

pub async fn wait_committed(group: &str, topic: &str, timeout: Duration) -> (i64, i64) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (committed, end) = committed_and_end(group, topic);
        if committed >= end || std::time::Instant::now() > deadline {
            return (committed, end);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the consumer group is stable with `members` members that all have partitions.
async fn wait_for_members(group: &str, members: usize) {
    let consumer: BaseConsumer = common::client_config().create().expect("client");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list = consumer
            .fetch_group_list(Some(group), Duration::from_secs(5))
            .expect("group list");
        let stable = list.groups().iter().any(|g| {
            g.state() == "Stable"
                && g.members().len() == members
                && g.members()
                    .iter()
                    .all(|m| m.assignment().is_some_and(|a| a.len() > 8))
        });
        if stable {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "group {group} never had {members} members with partitions"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Which types endpoint `n` subscribes to: every third gets all, the rest three types.
fn subscribed_types(n: usize) -> Vec<EventType> {
    if n.is_multiple_of(3) {
        return Vec::new();
    }
    let all = EventType::ALL;
    vec![all[n % 10], all[(n + 3) % 10], all[(n + 7) % 10]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fans_out_20000_events_to_50_endpoints_and_every_request_verifies() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[60, 120], &[]);
    harness::create_topics(&config).await;

    let accounts = ["acc_a", "acc_b", "acc_c"];
    let mut endpoints = Vec::new();
    let mut secrets = HashMap::new();
    let mut subscriptions: Vec<(String, String, Vec<EventType>)> = Vec::new();
    for n in 0..50 {
        let name = format!("e{n}");
        let account = accounts[n % 3];
        let types = subscribed_types(n);
        let type_names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        let s = secret();
        let url = receiver.endpoint(&name, Behavior::Healthy);
        endpoints.push(endpoint(
            &format!("ep_{name}"),
            account,
            &url,
            &type_names,
            &s,
        ));
        secrets.insert(name.clone(), s);
        subscriptions.push((name, account.to_owned(), types));
    }
    publish_endpoints(&config, &endpoints).await;
    let app = RunningApp::start(config.clone()).await;

    let produced = produce_events(
        &config.topics.events,
        (0..20_000).map(|i| (i, accounts[i % 3].to_owned(), EventType::ALL[(i / 3) % 10])),
    )
    .await;
    let mut expected = BTreeSet::new();
    for (id, account, t) in &produced {
        for (name, acc, types) in &subscriptions {
            if acc == account && (types.is_empty() || types.contains(t)) {
                expected.insert((id.clone(), name.clone()));
            }
        }
    }
    assert!(
        expected.len() > 60_000,
        "a meaningful fan-out: {}",
        expected.len()
    );

    receiver
        .wait_for_pairs(Duration::from_secs(180), &expected)
        .await;
    let received = receiver.received();
    let got = receiver.pairs();
    let unexpected: Vec<_> = got
        .keys()
        .filter(|p| !expected.contains(*p))
        .take(5)
        .collect();
    assert!(
        unexpected.is_empty(),
        "deliveries nobody subscribed to: {unexpected:?}"
    );
    assert!(
        received.len() < expected.len(),
        "bursts were batched: {} requests for {} deliveries",
        received.len(),
        expected.len()
    );
    assert!(
        received
            .iter()
            .all(|r| r.user_agent.starts_with("hookrelay/"))
    );

    let verdict = verify_with_reference_library(&received, &secrets);
    assert!(
        verdict.contains(&format!("{} passed, 0 failed", received.len())),
        "{verdict}"
    );

    let (committed, end) = wait_committed(
        &config.kafka.group_id,
        &config.topics.events,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        committed, end,
        "the committed offsets pass every settled record"
    );
    assert!(
        app.metric("hookrelay_deliveries_total", "outcome=\"delivered\"") >= expected.len() as f64
    );
    app.stop().await.expect("clean stop");
}

/// Runs the hookrelay binary with `config` (written to a file in `dir`).
fn spawn_binary(
    config: &hookrelay::config::Config,
    dir: &std::path::Path,
    admin_port: u16,
) -> std::process::Child {
    let file = dir.join("hookrelay.toml");
    std::fs::write(&file, config.to_masked_toml()).expect("write config");
    std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["run", "--config"])
        .arg(&file)
        .env(
            "HOOKRELAY__ADMIN__LISTEN",
            format!("127.0.0.1:{admin_port}"),
        )
        .env(
            "HOOKRELAY_LOG",
            std::env::var("HOOKRELAY_CHILD_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn hookrelay")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_duplicates_keep_their_webhook_id() {
    let receiver = Receiver::start().await;
    // Unbatched, so each redelivered event comes with the webhook-id of its first delivery.
    let (config, dir) = test_config(&[60], &[("HOOKRELAY__DELIVERY__BATCH__MAX_EVENTS", "1")]);
    harness::create_topics(&config).await;
    let mut endpoints = Vec::new();
    for n in 0..5 {
        let url = receiver.endpoint(&format!("k{n}"), Behavior::Healthy);
        endpoints.push(endpoint(&format!("ep_k{n}"), "acc_k", &url, &[], &secret()));
    }
    publish_endpoints(&config, &endpoints).await;
    let produced = produce_events(
        &config.topics.events,
        (0..6_000).map(|i| (i, "acc_k".to_owned(), EventType::ALL[i % 10])),
    )
    .await;
    let expected: BTreeSet<(String, String)> = produced
        .iter()
        .flat_map(|(id, _, _)| (0..5).map(move |n| (id.clone(), format!("k{n}"))))
        .collect();

    let mut child = spawn_binary(&config, dir.path(), 0);
    receiver
        .wait_for(Duration::from_secs(60), "a part of the stream", |r| {
            r.len() >= 3_000
        })
        .await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before_restart = receiver.received().len();
    assert!(before_restart < expected.len(), "killed mid-stream");

    let mut child = spawn_binary(&config, dir.path(), 0);
    receiver
        .wait_for_pairs(Duration::from_secs(120), &expected)
        .await;
    let got = receiver.pairs();
    let duplicates: Vec<_> = got.iter().filter(|(_, ids)| ids.len() > 1).collect();
    eprintln!(
        "SIGKILL after {before_restart} requests: {} pairs delivered more than once out of {}",
        duplicates.len(),
        expected.len()
    );
    for (pair, ids) in &duplicates {
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "{pair:?} came with different webhook-ids: {ids:?}"
        );
    }
    // SIGTERM: a clean stop.
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_partitions_and_one_takes_over_when_the_other_stops() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[60], &[]);
    harness::create_topics(&config).await;
    // Records are keyed by account: eight accounts spread over the four partitions.
    let accounts: Vec<String> = (0..8).map(|a| format!("acc_g{a}")).collect();
    let mut endpoints = Vec::new();
    for a in &accounts {
        let url = receiver.endpoint(a, Behavior::Healthy);
        endpoints.push(endpoint(&format!("ep_{a}"), a, &url, &[], &secret()));
    }
    publish_endpoints(&config, &endpoints).await;

    let mut second_config = config.clone();
    let second_dir = tempfile::tempdir().expect("tempdir");
    second_config.subscriptions.data_dir = second_dir.path().join("subs");
    let first = RunningApp::start(config.clone()).await;
    let second = RunningApp::start(second_config).await;
    wait_for_members(&config.kafka.group_id, 2).await;

    let batch = |range: std::ops::Range<usize>| {
        let accounts = accounts.clone();
        range.map(move |i| (i, accounts[i % 8].clone(), EventType::ALL[i % 10]))
    };
    let mut produced = produce_events(&config.topics.events, batch(0..8_000)).await;
    let first_part: BTreeSet<(String, String)> = produced
        .iter()
        .map(|(id, account, _)| (id.clone(), account.clone()))
        .collect();
    receiver
        .wait_for_pairs(Duration::from_secs(60), &first_part)
        .await;
    let consumed_first = first.metric("hookrelay_events_consumed_total", "");
    let consumed_second = second.metric("hookrelay_events_consumed_total", "");
    eprintln!("first consumed {consumed_first}, second {consumed_second}");
    assert!(
        consumed_first > 0.0 && consumed_second > 0.0,
        "both instances own partitions: {consumed_first} / {consumed_second}"
    );
    first.stop().await.expect("first stops cleanly");

    produced.extend(produce_events(&config.topics.events, batch(8_000..12_000)).await);
    let expected: BTreeSet<(String, String)> = produced
        .iter()
        .map(|(id, account, _)| (id.clone(), account.clone()))
        .collect();
    receiver
        .wait_for_pairs(Duration::from_secs(90), &expected)
        .await;
    assert!(second.metric("hookrelay_events_consumed_total", "") > consumed_second);
    second.stop().await.expect("second stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_without_the_allowlist_and_nothing_is_sent() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[60], &[("HOOKRELAY__DELIVERY__SSRF_ALLOWLIST", "[]")]);
    harness::create_topics(&config).await;
    let url = receiver.endpoint("s", Behavior::Healthy);
    publish_endpoints(&config, &[endpoint("ep_s", "acc_s", &url, &[], &secret())]).await;
    let app = RunningApp::start(config.clone()).await;
    produce_events(
        &config.topics.events,
        (0..3).map(|i| (i, "acc_s".to_owned(), EventType::ALL[i])),
    )
    .await;

    // Refused deliveries are retried later (the allowlist may change), so they settle: wait
    // for the retry writes themselves, not for the attempt that precedes them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.metric("hookrelay_retry_scheduled_total", "") < 3.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "refused deliveries did not go to the first retry tier"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        app.metric(
            "hookrelay_attempts_total",
            "error_class=\"refused_by_policy\""
        ) >= 1.0,
        "the attempts were recorded as refused by policy"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scraped_after_a_real_broker_run_include_every_documented_metric() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[1, 2], &[]);
    harness::create_topics(&config).await;
    let url = receiver.endpoint(
        "m",
        Behavior::FailTimes {
            times: 1,
            status: 500,
        },
    );
    publish_endpoints(&config, &[endpoint("ep_m", "acc_m", &url, &[], &secret())]).await;
    let app = RunningApp::start(config.clone()).await;
    produce_events(
        &config.topics.events,
        (0..20).map(|i| (i, "acc_m".to_owned(), EventType::ALL[i % 10])),
    )
    .await;
    receiver
        .wait_for(Duration::from_secs(30), "a retry delivered", |r| {
            r.len() >= 2
        })
        .await;
    // The API's request counter has a series once the API has answered something.
    let doc = reqwest::get(format!("http://{}/v1/openapi.json", app.admin))
        .await
        .expect("GET /v1/openapi.json");
    assert_eq!(doc.status(), 200);
    // Consumer lag comes from librdkafka statistics, emitted every 5 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = reqwest::get(format!("http://{}/metrics", app.admin))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("body");
        if text.contains("hookrelay_consumer_lag{") || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    for name in hookrelay::telemetry::metrics::METRIC_NAMES {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} is not in the scrape"
        );
        let short = name.trim_start_matches("hookrelay_");
        assert!(
            readme.contains(short),
            "{name} is not documented in the README"
        );
    }
    assert!(
        crate::harness::metric_value(&text, "hookrelay_deliveries_total", "outcome=\"delivered\"")
            >= 20.0
    );
    let ready = reqwest::get(format!("http://{}/readyz", app.admin))
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status(), 200);
    app.stop().await.expect("clean stop");
}
