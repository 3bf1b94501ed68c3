//! The delivery core under pressure, on the real broker: a throttled or slow endpoint never
//! stalls other accounts, a graceful stop is quick and commits what settled, a storage failure
//! stops delivery, `Retry-After` never disables early, an oversize record never freezes its
//! partition, revoked work stops everywhere, the breaker and operators do not race, disabled
//! endpoints keep their events, and a delivery only ever goes to its own account.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hookrelay::event::{EventType, encode_json};
use hookrelay::ids::EndpointId;
use hookrelay::records::envelope::DeliveryEnvelope;
use hookrelay::records::{AttemptRecord, EndpointNotification};
use hookrelay::subscriptions::{EndpointStatus, publish, publish_status, publish_tombstone};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::common;
use crate::delivery::event;
use crate::harness::{self, RunningApp, endpoint, publish_endpoints, secret, test_config};
use crate::receiver::{Behavior, Receiver};

/// Produces events for `account` to one partition, as JSON; returns their ids.
async fn produce_to(
    topic: &str,
    partition: i32,
    account: &str,
    ids: impl Iterator<Item = usize>,
) -> Vec<String> {
    let producer = common::producer();
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for i in ids {
        let e = event(i, account, EventType::ALL[i % 10]);
        let payload = encode_json(&e);
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(account)
            .payload(&payload);
        pending.push(
            producer
                .send_result(record)
                .unwrap_or_else(|(e, _)| panic!("queue: {e}")),
        );
        out.push(e.id.to_string());
        if pending.len() >= 1000 {
            for p in pending.drain(..) {
                p.await.expect("delivered").expect("acked");
            }
        }
    }
    for p in pending {
        p.await.expect("delivered").expect("acked");
    }
    out
}

/// The committed offset of `group` on one partition (0 when nothing is committed).
fn committed(group: &str, topic: &str, partition: i32) -> i64 {
    let consumer: BaseConsumer = common::client_config()
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let c = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    match c.elements().first().map(|e| e.offset()) {
        Some(Offset::Offset(o)) => o,
        _ => 0,
    }
}

async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("admin request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Scenario 1. A bulk import bigger than the in-flight limit, for an endpoint limited to
/// 1 request/s and another answering 2xx after 2 s (batching off): another account's events
/// on another partition keep flowing within seconds, and memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_or_slow_endpoint_never_stalls_other_accounts() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(
        &[60],
        &[
            ("HOOKRELAY__DELIVERY__MAX_IN_FLIGHT", "2000"),
            ("HOOKRELAY__DELIVERY__ENDPOINT_BACKLOG", "300"),
        ],
    );
    harness::create_topics(&config).await;
    let mut throttled = endpoint(
        "ep_throttled",
        "acc_throttled",
        &receiver.endpoint("throttled", Behavior::Healthy),
        &[],
        &secret(),
    );
    throttled.rate_limit_per_sec = std::num::NonZeroU32::new(1);
    throttled.batching.enabled = false;
    let mut slow = endpoint(
        "ep_slow",
        "acc_slow",
        &receiver.endpoint(
            "slow",
            Behavior::Slow {
                delay: Duration::from_secs(2),
                status: 200,
            },
        ),
        &[],
        &secret(),
    );
    slow.batching.enabled = false;
    let other = endpoint(
        "ep_other",
        "acc_other",
        &receiver.endpoint("other", Behavior::Healthy),
        &[],
        &secret(),
    );
    publish_endpoints(&config, &[throttled, slow, other]).await;
    let app = RunningApp::start(config.clone()).await;

    // 3,000 bulk events (more than max_in_flight) on partitions 0 and 2.
    produce_to(&config.topics.events, 0, "acc_throttled", 0..1500).await;
    produce_to(&config.topics.events, 2, "acc_slow", 1500..3000).await;
    // Let intake reach the bulk before the other account's events arrive.
    eventually(Duration::from_secs(30), "the bulk import read", || {
        app.metric("hookrelay_events_consumed_total", "") >= 600.0
    })
    .await;
    let produced_at = Instant::now();
    let others: BTreeSet<(String, String)> =
        produce_to(&config.topics.events, 1, "acc_other", 5000..5200)
            .await
            .into_iter()
            .map(|id| (id, "other".to_owned()))
            .collect();
    let mut peak = 0.0f64;
    let deadline = produced_at + Duration::from_secs(30);
    loop {
        peak = peak.max(app.metric("hookrelay_in_flight_deliveries", ""));
        let pairs = receiver.pairs();
        if others.iter().all(|p| pairs.contains_key(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other account got {} of 200 deliveries in 30 s",
            others.iter().filter(|p| pairs.contains_key(*p)).count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = produced_at.elapsed();
    eprintln!(
        "200 events of another account delivered in {took:?} behind a 3,000-event bulk import; peak in flight {peak}"
    );
    assert!(
        took < Duration::from_secs(15),
        "another account waited {took:?} behind a throttled endpoint"
    );
    // Each bulk endpoint holds at most its backlog (300) in memory; the rest waits in a
    // retry tier, so the whole process stays far below 3,000.
    assert!(peak <= 2.0 * 300.0 + 200.0, "peak in flight {peak}");
    // Each was judged slow for its own reason (the rate limit; every slot held for 2 s), and
    // what it could not hold went to a retry tier.
    let slow = |reason: &str| {
        app.metric(
            "hookrelay_endpoints_slow_total",
            &format!("reason=\"{reason}\""),
        )
    };
    eventually(
        Duration::from_secs(30),
        "both bulk endpoints judged slow and their excess in a retry tier",
        || {
            slow("throttled") > 0.0
                && slow("hanging") + slow("lagging") > 0.0
                && app.metric("hookrelay_deliveries_total", "outcome=\"retry_scheduled\"") > 0.0
        },
    )
    .await;
    assert_eq!(slow("failing"), 0.0, "no endpoint failed");
    app.stop().await.expect("clean stop");
}

/// Scenario 1b. One request of an endpoint answering in 2 ms takes 3 s (a retransmitted SYN,
/// a GC pause at the receiver) while a bulk import keeps every send slot busy: the other
/// slots keep turning over, so the endpoint is not judged slow and nothing waits in a retry
/// tier. (Judged by the oldest request in flight, it would have been "hanging" after 1 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stalled_request_does_not_make_an_endpoint_slow() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[60], &[("HOOKRELAY__DELIVERY__ENDPOINT_BACKLOG", "300")]);
    harness::create_topics(&config).await;
    // Well inside the 5 s request timeout, even on a loaded machine.
    let hold = Duration::from_secs(3);
    let mut stalling = endpoint(
        "ep_stall",
        "acc_stall",
        &receiver.endpoint(
            "stall",
            Behavior::StallOnce {
                nth: 10,
                delay: hold,
                others: Duration::from_millis(2),
            },
        ),
        &[],
        &secret(),
    );
    stalling.batching.enabled = false;
    publish_endpoints(&config, &[stalling]).await;
    // A backlog that takes seconds to send, so the endpoint has work queued all the while.
    let ids = produce_to(&config.topics.events, 0, "acc_stall", 0..5000).await;
    let app = RunningApp::start(config.clone()).await;
    let expected: BTreeSet<(String, String)> =
        ids.into_iter().map(|id| (id, "stall".to_owned())).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let slow = app.metric("hookrelay_endpoints_slow_total", "");
        assert_eq!(
            slow,
            0.0,
            "the endpoint was judged slow:\n{}",
            slow_lines(&app)
        );
        // Received by the endpoint, and settled as delivered (the held one too).
        let pairs = receiver.pairs();
        let settled = app.metric("hookrelay_deliveries_total", "outcome=\"delivered\"");
        if expected.iter().all(|p| pairs.contains_key(p)) && settled >= expected.len() as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every event delivered in 60 s ({settled} settled as delivered)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = receiver.received_by("stall");
    let stalled = received.get(9).map(|r| r.at).expect("a 10th request");
    // Past HANG_AFTER (1 s) of the held request, while it was still held.
    let later = received
        .iter()
        .filter(|r| r.at > stalled + Duration::from_millis(1200) && r.at < stalled + hold)
        .count();
    assert!(
        later > 0,
        "the backlog was sent before the held request was 1.2 s old: the test did not load the endpoint"
    );
    assert_eq!(
        app.metric("hookrelay_endpoints_slow_total", ""),
        0.0,
        "{}",
        slow_lines(&app)
    );
    assert_eq!(
        app.metric("hookrelay_deliveries_total", "outcome=\"retry_scheduled\""),
        0.0,
        "an event of a quick endpoint waited in a retry tier"
    );
    app.stop().await.expect("clean stop");
}

/// The `hookrelay_endpoints_slow_total` series, for a failure message.
fn slow_lines(app: &RunningApp) -> String {
    app.metrics_text()
        .lines()
        .filter(|l| l.starts_with("hookrelay_endpoints_slow_total"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Scenario 2. SIGTERM-style stop with a record waiting in a 24 h tier and requests in
/// flight: returns once those requests finish (not after the drain timeout), commits what
/// settled, and the next owner sends only what did not settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_is_quick_commits_what_settled_and_keeps_the_rest() {
    let receiver = Receiver::start().await;
    let (config, dir) = test_config(
        &[1, 86_400],
        &[
            ("HOOKRELAY__SHUTDOWN__DRAIN_TIMEOUT", "30s"),
            ("HOOKRELAY__RETRY__BREAKER_THRESHOLD", "1000"),
        ],
    );
    harness::create_topics(&config).await;
    let mut slow = endpoint(
        "ep_slow",
        "acc_slow",
        &receiver.endpoint(
            "slow",
            Behavior::Slow {
                delay: Duration::from_secs(2),
                status: 200,
            },
        ),
        &[],
        &secret(),
    );
    slow.batching.enabled = false;
    slow.max_concurrency = std::num::NonZeroU32::new(4);
    let failing = endpoint(
        "ep_failing",
        "acc_failing",
        &receiver.endpoint("failing", Behavior::Status(500)),
        &[],
        &secret(),
    );
    publish_endpoints(&config, &[slow, failing]).await;
    let app = RunningApp::start(config.clone()).await;

    // One delivery fails twice and waits in the 24 h tier.
    produce_to(&config.topics.events, 3, "acc_failing", 0..1).await;
    eventually(Duration::from_secs(30), "a record in the 24 h tier", || {
        app.metric("hookrelay_retry_waiting", "tier=\"2\"") >= 1.0
    })
    .await;
    // Eight slow deliveries: four in flight (2 s each), four queued behind them.
    let slow_ids = produce_to(&config.topics.events, 0, "acc_slow", 10..18).await;
    receiver
        .wait_for(Duration::from_secs(30), "four requests in flight", |r| {
            r.iter().filter(|x| x.path == "/ep/slow").count() >= 4
        })
        .await;
    let started = Instant::now();
    app.stop().await.expect("clean stop");
    let took = started.elapsed();
    eprintln!("graceful stop took {took:?} (drain timeout 30 s)");
    assert!(
        took < Duration::from_secs(10),
        "stop waited {took:?}: it should only wait for the requests in flight"
    );
    let sent_before = receiver.received_by("slow").len();
    // What settled is committed: the first slow deliveries settled in the drain.
    let group = &config.kafka.group_id;
    let events_committed = committed(group, &config.topics.events, 0);
    assert!(
        events_committed >= 1,
        "the settled deliveries were committed"
    );
    // The 24 h record is not committed past: the next owner reads it again.
    let tier_topic = &config.retry.tiers[1].topic;
    let tier_end: i64 = (0..2)
        .map(|p| {
            common::client_config()
                .create::<BaseConsumer>()
                .expect("client")
                .fetch_watermarks(tier_topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .sum();
    let tier_committed: i64 = (0..2).map(|p| committed(group, tier_topic, p)).sum();
    assert!(
        tier_committed < tier_end,
        "the waiting retry record stays uncommitted ({tier_committed} of {tier_end})"
    );

    // The next owner sends the rest, and nothing that already settled.
    let app = RunningApp::start(config.clone()).await;
    let expected: BTreeSet<(String, String)> = slow_ids
        .iter()
        .map(|id| (id.clone(), "slow".to_owned()))
        .collect();
    receiver
        .wait_for_pairs(Duration::from_secs(60), &expected)
        .await;
    eventually(
        Duration::from_secs(30),
        "the 24 h record held again",
        || app.metric("hookrelay_retry_waiting", "tier=\"2\"") >= 1.0,
    )
    .await;
    let pairs = receiver.pairs();
    let duplicates: Vec<_> = expected
        .iter()
        .filter(|p| pairs.get(*p).is_some_and(|ids| ids.len() > 1))
        .collect();
    assert!(
        duplicates.is_empty(),
        "{} of {sent_before} deliveries sent before the stop were sent again: {duplicates:?}",
        duplicates.len()
    );
    app.stop().await.expect("clean stop");
    drop(dir);
}

/// Scenario 3. The subscriptions table's disk fills up: the follower stops, `/readyz` fails
/// and says why, intake pauses and nothing more is committed on the frozen table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_subscriptions_table_stops_delivery_and_readiness() {
    let mount = tempfile::tempdir().expect("mount point");
    let size = "48m";
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(mount.path())
        .status()
        .expect("run mount");
    assert!(
        status.success(),
        "this test mounts a small tmpfs for the subscriptions table (needs root, as in CI)"
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

    let receiver = Receiver::start().await;
    let data_dir = mount.path().join("subs");
    let (config, _dir) = test_config(
        &[60],
        &[(
            "HOOKRELAY__SUBSCRIPTIONS__DATA_DIR",
            data_dir.to_str().expect("utf-8 path"),
        )],
    );
    harness::create_topics(&config).await;
    let ep = endpoint(
        "ep_disk",
        "acc_disk",
        &receiver.endpoint("disk", Behavior::Healthy),
        &[],
        &secret(),
    );
    publish_endpoints(&config, std::slice::from_ref(&ep)).await;
    let app = RunningApp::start(config.clone()).await;
    produce_to(&config.topics.events, 0, "acc_disk", 0..5).await;
    receiver
        .wait_for(
            Duration::from_secs(30),
            "deliveries before the disk fills",
            |r| r.len() >= 5,
        )
        .await;

    // Fill the disk, then change endpoints until a table write fails.
    let filler = mount.path().join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let producer = common::producer();
    let admin = format!("http://{}/readyz", app.admin);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        let mut e = endpoint(
            &format!("ep_fill_{n}"),
            "acc_fill",
            "https://example.com/hook",
            &[],
            &secret(),
        );
        e.description = Some("x".repeat(4000));
        publish(&producer, &config.topics.subscriptions, &e)
            .await
            .expect("publish");
        n += 1;
        if n % 50 == 0 && get(&admin).await.0 == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "the table never failed to write");
    }
    let (status, text) = get(&admin).await;
    eprintln!("/readyz after the disk filled:\n{text}");
    assert_eq!(status, 503);
    assert!(text.contains("subscriptions: failed"), "{text}");
    assert_eq!(
        app.metric("hookrelay_subscriptions_failures_total", ""),
        1.0
    );
    eventually(Duration::from_secs(10), "intake paused", || {
        app.metric("hookrelay_paused_partitions", "reason=\"table_stopped\"") >= 1.0
    })
    .await;

    // Events after the failure are neither delivered nor committed.
    let before = receiver.received().len();
    let committed_before = committed(&config.kafka.group_id, &config.topics.events, 0);
    produce_to(&config.topics.events, 0, "acc_disk", 100..105).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        receiver.received().len(),
        before,
        "nothing delivered on a frozen table"
    );
    assert_eq!(
        committed(&config.kafka.group_id, &config.topics.events, 0),
        committed_before,
        "nothing committed on a frozen table"
    );
    app.stop().await.expect("clean stop");
}

/// Scenario 4. `Retry-After` beyond the last tier (seconds, and an HTTP date two days ahead)
/// waits in the last tier: the endpoint is never disabled for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_the_last_tier_waits_there_and_never_disables() {
    let receiver = Receiver::start().await;
    let tiers = [1, 2, 3];
    let (config, _dir) = test_config(&tiers, &[]);
    harness::create_topics(&config).await;
    let two_days = httpdate(std::time::SystemTime::now() + Duration::from_secs(2 * 86_400));
    let seconds = endpoint(
        "ep_seconds",
        "acc_ra",
        &receiver.endpoint(
            "seconds",
            Behavior::RetryAfter {
                status: 503,
                value: "90000".to_owned(),
                times: 1,
            },
        ),
        &[],
        &secret(),
    );
    let date = endpoint(
        "ep_date",
        "acc_ra",
        &receiver.endpoint(
            "date",
            Behavior::RetryAfter {
                status: 429,
                value: two_days,
                times: 1,
            },
        ),
        &[],
        &secret(),
    );
    publish_endpoints(&config, &[seconds, date]).await;
    let app = RunningApp::start(config.clone()).await;
    produce_to(&config.topics.events, 0, "acc_ra", 0..1).await;
    for name in ["seconds", "date"] {
        receiver
            .wait_for(Duration::from_secs(30), "the second attempt", |r| {
                r.iter().filter(|x| x.path == format!("/ep/{name}")).count() >= 2
            })
            .await;
        let at: Vec<Instant> = receiver.received_by(name).iter().map(|r| r.at).collect();
        let gap = at[1] - at[0];
        assert!(
            gap >= Duration::from_secs(3),
            "{name}: retried after {gap:?}, sooner than the last tier"
        );
    }
    eventually(Duration::from_secs(10), "both delivered", || {
        app.metric("hookrelay_deliveries_total", "outcome=\"delivered\"") >= 2.0
    })
    .await;
    for id in ["ep_seconds", "ep_date"] {
        let ep = app
            .table
            .get(&EndpointId::from(id))
            .expect("table")
            .expect("endpoint");
        assert!(!ep.breaker_disabled(), "{id} was disabled");
    }
    assert_eq!(app.metric("hookrelay_endpoints_disabled_total", ""), 0.0);
    assert_eq!(app.metric("hookrelay_dead_lettered_total", ""), 0.0);
    app.stop().await.expect("clean stop");
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(t: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).expect("format")
}

/// Scenario 5. A near-1 MB undecodable record whose copy (with the reason headers) exceeds
/// the producer's size limit: it is dead-ended in a smaller form, its offset settles, the
/// partition goes on, and a metric counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_too_large_to_copy_is_kept_smaller_and_never_freezes_its_partition() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[60], &[]);
    harness::create_topics(&config).await;
    let ep = endpoint(
        "ep_big",
        "acc_big",
        &receiver.endpoint("big", Behavior::Healthy),
        &[],
        &secret(),
    );
    publish_endpoints(&config, &[ep]).await;
    let app = RunningApp::start(config.clone()).await;

    // 999,000 bytes of garbage plus 2 KB of headers: fits the broker, but not a copy with
    // hookrelay's reason headers through a producer limited to 1,000,000 bytes.
    let big: FutureProducer = common::client_config()
        .set("message.max.bytes", "1048576")
        .create()
        .expect("producer");
    let value = vec![b'x'; 999_000];
    let headers = OwnedHeaders::new().insert(Header {
        key: "trace",
        value: Some(&[b'h'; 2_000][..]),
    });
    big.send(
        FutureRecord::to(&config.topics.events)
            .partition(0)
            .key("acc_big")
            .payload(&value)
            .headers(headers),
        Duration::from_secs(30),
    )
    .await
    .expect("produce the big record");
    let after = produce_to(&config.topics.events, 0, "acc_big", 1..3).await;

    let expected: BTreeSet<(String, String)> = after
        .iter()
        .map(|id| (id.clone(), "big".to_owned()))
        .collect();
    receiver
        .wait_for_pairs(Duration::from_secs(30), &expected)
        .await;
    eventually(
        Duration::from_secs(30),
        "the partition committed past it",
        || committed(&config.kafka.group_id, &config.topics.events, 0) >= 3,
    )
    .await;
    assert_eq!(
        app.metric(
            "hookrelay_oversize_records_total",
            "destination=\"invalid\""
        ),
        1.0
    );
    let invalid = common::read_all_at_least(&config.topics.invalid, 1);
    assert_eq!(invalid.len(), 1);
    let kept = &invalid[0];
    assert!(kept.payload().map_or(0, <[u8]>::len) <= 64 * 1024);
    let header = |name: &str| {
        kept.headers().and_then(|h| {
            h.iter()
                .find(|x| x.key == name)
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    assert_eq!(
        header("hookrelay-original-value-bytes").as_deref(),
        Some("999000")
    );
    assert!(header("hookrelay-invalid-reason").is_some());
    app.stop().await.expect("clean stop");
}

/// Scenario 6. Requests in flight when their partition is revoked are abandoned: no retry
/// record and no breaker count from the old owner; the new owner sends them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_partition_stops_its_requests_and_writes_no_retry_for_them() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(
        &[600],
        &[
            ("HOOKRELAY__DELIVERY__TIMEOUT", "20s"),
            ("HOOKRELAY__RETRY__BREAKER_THRESHOLD", "1000"),
        ],
    );
    harness::create_topics(&config).await;
    let mut ep = endpoint(
        "ep_rv",
        "acc_rv",
        &receiver.endpoint(
            "rv",
            Behavior::Slow {
                delay: Duration::from_secs(8),
                status: 500,
            },
        ),
        &[],
        &secret(),
    );
    ep.batching.enabled = false;
    ep.max_concurrency = std::num::NonZeroU32::new(10);
    publish_endpoints(&config, &[ep]).await;
    let a = RunningApp::start(config.clone()).await;
    let ids = produce_to(&config.topics.events, 0, "acc_rv", 0..5).await;
    receiver
        .wait_for(Duration::from_secs(30), "five requests in flight", |r| {
            r.len() >= 5
        })
        .await;
    // A second member: the eager rebalance revokes every partition of the first.
    let mut second = config.clone();
    second.subscriptions.data_dir = _dir.path().join("second");
    let b = RunningApp::start(second).await;
    // The new owner (whichever it is) sends the five again; all ten requests take 8 s.
    receiver
        .wait_for(Duration::from_secs(60), "the new owner's requests", |r| {
            r.len() >= 10
        })
        .await;
    let tier = &config.retry.tiers[0].topic;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut per_delivery: HashMap<String, usize> = HashMap::new();
    while Instant::now() < deadline {
        per_delivery.clear();
        for record in common::read_all(tier) {
            let env =
                DeliveryEnvelope::from_avro(record.payload().expect("value")).expect("envelope");
            *per_delivery.entry(env.event_ids[0].clone()).or_default() += 1;
        }
        if per_delivery.len() == ids.len() {
            // Give a stale completion time to show up if it were written.
            tokio::time::sleep(Duration::from_secs(10)).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    per_delivery.clear();
    for record in common::read_all(tier) {
        let env = DeliveryEnvelope::from_avro(record.payload().expect("value")).expect("envelope");
        *per_delivery.entry(env.event_ids[0].clone()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(
            per_delivery.get(id).copied(),
            Some(1),
            "{id}: one retry record, written by the partition's owner only: {per_delivery:?}"
        );
    }
    a.stop().await.expect("clean stop");
    b.stop().await.expect("clean stop");
}

/// Scenario 7. After an operator re-enables an endpoint the breaker counts from zero and
/// disables it again; each disabling notifies once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_counts_again_after_a_re_enable() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(
        &[600],
        &[
            ("HOOKRELAY__RETRY__BREAKER_THRESHOLD", "3"),
            ("HOOKRELAY__DELIVERY__ENDPOINT_CONCURRENCY", "1"),
        ],
    );
    harness::create_topics(&config).await;
    let mut ep = endpoint(
        "ep_br",
        "acc_br",
        &receiver.endpoint("br", Behavior::Status(500)),
        &[],
        &secret(),
    );
    ep.batching.enabled = false;
    publish_endpoints(&config, std::slice::from_ref(&ep)).await;
    let app = RunningApp::start(config.clone()).await;
    let status = |app: &RunningApp| {
        app.table
            .get(&ep.id)
            .expect("table")
            .expect("endpoint")
            .current_status()
    };
    produce_to(&config.topics.events, 0, "acc_br", 0..3).await;
    eventually(Duration::from_secs(30), "the first disabling", || {
        !status(&app).enabled
    })
    .await;
    assert_eq!(status(&app).epoch, 1);

    // The operator re-enables it.
    let enabled = status(&app).enabled_after(hookrelay::delivery::now_ms(), "operator");
    let published = publish_status(&common::producer(), &config.topics.subscriptions, &enabled)
        .await
        .expect("re-enable");
    app.table.wait_applied(published).await.expect("applied");
    assert!(status(&app).enabled);

    produce_to(&config.topics.events, 0, "acc_br", 3..6).await;
    eventually(Duration::from_secs(30), "the second disabling", || {
        !status(&app).enabled
    })
    .await;
    assert_eq!(status(&app).epoch, 3);
    let notices = common::read_all_at_least(&config.topics.notifications, 2);
    let ids: BTreeSet<String> = notices
        .iter()
        .map(|n| {
            EndpointNotification::from_avro(n.payload().expect("value"))
                .expect("notice")
                .id
        })
        .collect();
    assert_eq!(
        (notices.len(), ids.len()),
        (2, 2),
        "one notice per disabling"
    );
    app.stop().await.expect("clean stop");
}

/// Scenario 8. A disabling never re-creates a deleted endpoint nor loses an operator's
/// concurrent change, and the owed notice survives a crash between disabling and notifying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_does_not_race_operators_and_its_notice_survives_a_crash() {
    let (config, dir) = test_config(&[600], &[]);
    harness::create_topics(&config).await;
    let producer = common::producer();
    let topic = &config.topics.subscriptions;
    let gone = endpoint("ep_gone", "acc_op", "https://example.com/a", &[], &secret());
    let rotated = endpoint("ep_rot", "acc_op", "https://example.com/b", &[], &secret());
    publish_endpoints(&config, &[gone.clone(), rotated.clone()]).await;
    let app = RunningApp::start(config.clone()).await;
    let instance = app.table.instance_id().to_owned();

    // (a) Deleted, then a late disabling lands: the endpoint stays deleted.
    let p = publish_tombstone(&producer, topic, &gone.id)
        .await
        .expect("delete");
    app.table.wait_applied(p).await.expect("applied");
    let late = EndpointStatus::initial(gone.id.clone()).disabled_after(
        "consecutive_failures",
        1,
        "inst_elsewhere",
        Some(500),
        None,
    );
    let p = publish_status(&producer, topic, &late)
        .await
        .expect("late status");
    app.table.wait_applied(p).await.expect("applied");
    assert!(
        app.table.get(&gone.id).expect("table").is_none(),
        "not resurrected"
    );

    // (b) An operator rotates the secret while this instance disables the endpoint: both
    // changes hold.
    let mut v2 = rotated.clone();
    v2.version = 2;
    v2.secrets.insert(
        0,
        hookrelay::subscriptions::EndpointSecret {
            secret: secret(),
            expires_at_ms: None,
        },
    );
    let disabling = EndpointStatus::initial(rotated.id.clone()).disabled_after(
        "consecutive_failures",
        2,
        &instance,
        Some(500),
        Some("HTTP 500".into()),
    );
    // Written while this instance is down, as if it crashed right after its own write:
    // the restart must still send the owner's notice, once.
    app.stop().await.expect("clean stop");
    let (rotation, status) = tokio::join!(
        publish(&producer, topic, &v2),
        publish_status(&producer, topic, &disabling)
    );
    rotation.expect("rotate");
    status.expect("disable");

    let app = RunningApp::start(config.clone()).await;
    let ep = app
        .table
        .get(&rotated.id)
        .expect("table")
        .expect("endpoint");
    assert_eq!(ep.version, 2, "the rotation holds");
    assert_eq!(ep.secrets.len(), 2);
    assert!(ep.breaker_disabled(), "the disabling holds");
    let notices = common::read_all_at_least(&config.topics.notifications, 1);
    assert_eq!(notices.len(), 1, "one notice for the disabling");
    let notice =
        EndpointNotification::from_avro(notices[0].payload().expect("value")).expect("notice");
    assert_eq!(notice.endpoint_id, "ep_rot");
    // Another restart owes nothing more.
    app.stop().await.expect("clean stop");
    let app = RunningApp::start(config.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(common::read_all(&config.topics.notifications).len(), 1);

    // A fresh table, bootstrapped from the topic, agrees.
    let store =
        hookrelay::subscriptions::Store::open(dir.path().join("fresh"), topic).expect("store");
    let (fresh, _f) =
        hookrelay::subscriptions::SubscriptionTable::start(common::client_config(), topic, store)
            .await
            .expect("table");
    fresh.wait_ready().await.expect("ready");
    assert!(fresh.get(&gone.id).expect("table").is_none());
    let ep = fresh.get(&rotated.id).expect("table").expect("endpoint");
    assert!(ep.version == 2 && ep.breaker_disabled());
    app.stop().await.expect("clean stop");
}

/// Scenario 9. Events for an endpoint the breaker disabled are kept on the dead-letter topic
/// with reason `endpoint_disabled`, and logged, never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_a_disabled_endpoint_are_dead_lettered_for_replay() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[600], &[]);
    harness::create_topics(&config).await;
    let ep = endpoint(
        "ep_off",
        "acc_off",
        &receiver.endpoint("off", Behavior::Healthy),
        &[],
        &secret(),
    );
    publish_endpoints(&config, std::slice::from_ref(&ep)).await;
    let disabled = EndpointStatus::initial(ep.id.clone()).disabled_after(
        "consecutive_failures",
        1,
        "inst_test",
        None,
        None,
    );
    publish_status(&common::producer(), &config.topics.subscriptions, &disabled)
        .await
        .expect("disable");
    let app = RunningApp::start(config.clone()).await;
    let ids = produce_to(&config.topics.events, 0, "acc_off", 0..5).await;
    let dlq = common::read_all_at_least(&config.topics.dead_letter, 5);
    let kept: BTreeSet<String> = dlq
        .iter()
        .map(|r| DeliveryEnvelope::from_avro(r.payload().expect("value")).expect("envelope"))
        .inspect(|e| assert_eq!(e.dead_letter_reason.as_deref(), Some("endpoint_disabled")))
        .map(|e| e.event_ids[0].clone())
        .collect();
    assert_eq!(kept, ids.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        receiver.received().is_empty(),
        "nothing sent to a disabled endpoint"
    );
    let log = common::read_all_at_least(&config.topics.attempts, 5);
    assert!(log.iter().all(|r| {
        let a = AttemptRecord::from_avro(r.payload().expect("value")).expect("attempt");
        a.outcome == "dead_lettered" && a.dead_letter_reason.as_deref() == Some("endpoint_disabled")
    }));
    app.stop().await.expect("clean stop");
}

/// Scenario 12. An endpoint id that now belongs to another account never receives the old
/// account's retrying deliveries: they are dead-lettered with reason `account_mismatch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_never_goes_to_an_endpoint_of_another_account() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[2], &[]);
    harness::create_topics(&config).await;
    let ep = endpoint(
        "ep_moved",
        "acc_first",
        &receiver.endpoint(
            "moved",
            Behavior::FailTimes {
                times: 1,
                status: 500,
            },
        ),
        &[],
        &secret(),
    );
    publish_endpoints(&config, std::slice::from_ref(&ep)).await;
    let app = RunningApp::start(config.clone()).await;
    produce_to(&config.topics.events, 0, "acc_first", 0..1).await;
    receiver
        .wait_for(Duration::from_secs(30), "the first attempt", |r| {
            !r.is_empty()
        })
        .await;
    // While the retry waits, the id is given to another account.
    let mut moved = ep.clone();
    moved.account_id = hookrelay::ids::AccountId::from("acc_second");
    moved.version = 2;
    let p = publish(&common::producer(), &config.topics.subscriptions, &moved)
        .await
        .expect("publish");
    app.table.wait_applied(p).await.expect("applied");
    let dlq = common::read_all_at_least(&config.topics.dead_letter, 1);
    assert_eq!(dlq.len(), 1);
    let env = DeliveryEnvelope::from_avro(dlq[0].payload().expect("value")).expect("envelope");
    assert_eq!(env.dead_letter_reason.as_deref(), Some("account_mismatch"));
    assert_eq!(env.account_id, "acc_first");
    assert_eq!(receiver.received().len(), 1, "the retry was never sent");
    app.stop().await.expect("clean stop");
}

/// A delivery a person asked for (here a batch re-sent from the log) that fails with no
/// retry left is dead-lettered again without disabling the endpoint, and the attempts log
/// keeps every event of the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_retry_that_fails_again_never_disables_the_endpoint() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&[1, 2], &[]);
    harness::create_topics(&config).await;
    let ep = endpoint(
        "ep_manual",
        "acc_manual",
        &receiver.endpoint("manual", Behavior::Status(500)),
        &[],
        &secret(),
    );
    publish_endpoints(&config, std::slice::from_ref(&ep)).await;
    let app = RunningApp::start(config.clone()).await;
    let envelope = DeliveryEnvelope {
        delivery_id: "bat_0123456789abcdef0123456789abcdef".into(),
        endpoint_id: "ep_manual".into(),
        account_id: "acc_manual".into(),
        event_ids: vec!["evt_m1".into(), "evt_m2".into()],
        event_types: vec!["license.created".into(), "license.expired".into()],
        batch: true,
        body: r#"{"id":"bat_0123456789abcdef0123456789abcdef","type":"batch","created":"2026-03-15T14:30:00Z","data":{"events":[{"id":"evt_m1"},{"id":"evt_m2"}]}}"#.into(),
        // The schedule has two tiers: attempt 3 is the last one.
        attempt: 3,
        first_attempt_at_ms: 1,
        due_at_ms: hookrelay::delivery::now_ms(),
        last_status: Some(500),
        last_error: Some("HTTP 500".into()),
        origin_topic: "api:retry".into(),
        origin_partition: -1,
        origin_offset: -1,
        history: Vec::new(),
        dead_letter_reason: None,
    };
    common::produce(
        &common::producer(),
        &config.topics.requests,
        Some(b"ep_manual"),
        Some(&envelope.to_avro().expect("encode")),
    )
    .await;
    let dlq = common::read_all_at_least(&config.topics.dead_letter, 1);
    assert_eq!(dlq.len(), 1);
    let kept = DeliveryEnvelope::from_avro(dlq[0].payload().expect("value")).expect("envelope");
    assert_eq!(
        kept.dead_letter_reason.as_deref(),
        Some("retries_exhausted")
    );
    assert_eq!(
        kept.event_ids, envelope.event_ids,
        "the batch is kept whole"
    );
    assert!(kept.batch);
    let stored = app.table.get(&ep.id).expect("table").expect("endpoint");
    assert!(
        !stored.breaker_disabled(),
        "a person's retry does not disable"
    );
    let log = common::read_all_at_least(&config.topics.attempts, 1);
    let entry = AttemptRecord::from_avro(log[0].payload().expect("value")).expect("attempt");
    assert_eq!(entry.event_ids, envelope.event_ids);
    assert_eq!(entry.event_types, envelope.event_types);
    assert!(entry.batch);
    assert_eq!(receiver.received().len(), 1, "sent once, as it was");
    app.stop().await.expect("clean stop");
}
