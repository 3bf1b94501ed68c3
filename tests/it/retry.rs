//! Retry tiers, dead letters and the circuit breaker on the real broker, with the schedule
//! scaled to seconds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookrelay::event::EventType;
use hookrelay::ids::EndpointId;
use hookrelay::records::EndpointNotification;
use hookrelay::records::envelope::DeliveryEnvelope;
use rdkafka::Message;

use crate::common;
use crate::delivery::produce_events;
use crate::harness::{self, RunningApp, endpoint, publish_endpoints, secret, test_config};
use crate::receiver::{Behavior, Received, Receiver};

/// Attempt times per webhook-id, in order.
fn attempts_by_id(received: &[Received]) -> HashMap<String, Vec<Instant>> {
    let mut map: HashMap<String, Vec<Instant>> = HashMap::new();
    for r in received {
        map.entry(r.webhook_id.clone()).or_default().push(r.at);
    }
    map
}

/// Each attempt k+1 came no earlier than tier k's delay after attempt k, and at most
/// `late` after it. Returns the lateness of each gap.
fn check_gaps(times: &[Instant], tiers: &[u64], late: Duration) -> Vec<Duration> {
    let mut lateness = Vec::new();
    for (k, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let due = Duration::from_secs(tiers[k]);
        assert!(
            gap >= due,
            "attempt {} came {gap:?} after attempt {}, before its delay {due:?}",
            k + 2,
            k + 1
        );
        assert!(
            gap <= due + late,
            "attempt {} came {:?} late",
            k + 2,
            gap - due
        );
        lateness.push(gap - due);
    }
    lateness
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_attempts_at_the_tier_times_and_the_input_settles_early() {
    let tiers = [3, 5, 7, 9, 11];
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&tiers, &[]);
    harness::create_topics(&config).await;
    let url = receiver.endpoint(
        "f",
        Behavior::FailTimes {
            times: 2,
            status: 503,
        },
    );
    publish_endpoints(&config, &[endpoint("ep_f", "acc_f", &url, &[], &secret())]).await;
    let app = RunningApp::start(config.clone()).await;
    produce_events(
        &config.topics.events,
        std::iter::once((1, "acc_f".to_owned(), EventType::LicenseActivated)),
    )
    .await;

    receiver
        .wait_for(Duration::from_secs(30), "the first attempt", |r| {
            !r.is_empty()
        })
        .await;
    let first_at = receiver.received()[0].at;
    // The input offset settles once the first retry record is written, long before attempt 2.
    let deadline = first_at + Duration::from_millis(2_500);
    loop {
        let (committed, end) =
            crate::delivery::committed_and_end(&config.kafka.group_id, &config.topics.events);
        if committed == end {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "input offset not committed before the first retry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(receiver.received().len(), 1, "attempt 2 waits for its tier");

    receiver
        .wait_for(Duration::from_secs(30), "three attempts", |r| r.len() >= 3)
        .await;
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let ids: Vec<&str> = received.iter().map(|r| r.webhook_id.as_str()).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id through every retry: {ids:?}"
    );
    assert!(
        received[2].webhook_timestamp > received[0].webhook_timestamp,
        "re-signed with a fresh timestamp"
    );
    check_gaps(
        &received.iter().map(|r| r.at).collect::<Vec<_>>(),
        &tiers,
        Duration::from_secs(1),
    );
    assert_eq!(
        app.metric("hookrelay_deliveries_total", "outcome=\"delivered\""),
        1.0
    );
    // The attempts above kept their schedule although the tiers' idle partitions rest
    // between fetches (a tenth of each delay here); they do rest.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.metric("hookrelay_paused_partitions", "reason=\"resting\"") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no idle tier partition rests: {}",
            app.metrics_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_always_fails_gets_six_attempts_then_dead_letter_disable_and_one_notice() {
    let tiers = [1, 2, 3, 4, 5];
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(&tiers, &[]);
    harness::create_topics(&config).await;
    let url = receiver.endpoint("x", Behavior::Status(500));
    publish_endpoints(&config, &[endpoint("ep_x", "acc_x", &url, &[], &secret())]).await;
    let app = RunningApp::start(config.clone()).await;
    produce_events(
        &config.topics.events,
        std::iter::once((7, "acc_x".to_owned(), EventType::PaymentFailed)),
    )
    .await;

    let id = EndpointId::from("ep_x");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let disabled = app
            .table
            .get(&id)
            .expect("table")
            .is_some_and(|ep| ep.breaker_disabled());
        if disabled && app.metric("hookrelay_dead_lettered_total", "") >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "endpoint not disabled / nothing dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let received = receiver.received();
    assert_eq!(received.len(), 6, "six attempts in all");
    check_gaps(
        &received.iter().map(|r| r.at).collect::<Vec<_>>(),
        &tiers,
        Duration::from_secs(1),
    );

    let dlq = common::read_all(&config.topics.dead_letter);
    assert_eq!(dlq.len(), 1, "one dead-letter record");
    let envelope = DeliveryEnvelope::from_avro(dlq[0].payload().expect("value")).expect("envelope");
    assert_eq!(
        envelope.history.len(),
        6,
        "the attempt history travels with it"
    );
    assert_eq!(
        envelope.dead_letter_reason.as_deref(),
        Some("retries_exhausted")
    );
    assert!(!envelope.body.is_empty(), "the delivery itself, for replay");

    let notices = common::read_all_at_least(&config.topics.notifications, 1);
    assert_eq!(notices.len(), 1, "one endpoint.disabled notification");
    let notice =
        EndpointNotification::from_avro(notices[0].payload().expect("value")).expect("notice");
    assert_eq!(notice.endpoint_id, "ep_x");
    assert_eq!(notice.kind, "endpoint.disabled");
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_records_wait_in_every_tier_loses_nothing_and_sends_nothing_early() {
    let tiers = [3, 6, 9, 12, 15];
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(
        &tiers,
        &[
            ("HOOKRELAY__RETRY__BREAKER_THRESHOLD", "1000"),
            ("HOOKRELAY__DELIVERY__BATCH__MAX_EVENTS", "1"),
        ],
    );
    harness::create_topics(&config).await;
    let url = receiver.endpoint("r", Behavior::Status(500));
    publish_endpoints(&config, &[endpoint("ep_r", "acc_r", &url, &[], &secret())]).await;
    let app = RunningApp::start(config.clone()).await;
    // One event every 3 s: by the time the last is produced the first has moved through
    // several tiers, so records wait in different tiers.
    for i in 0..5 {
        produce_events(
            &config.topics.events,
            std::iter::once((100 + i, "acc_r".to_owned(), EventType::ALL[i])),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let tiers_used = (1..=4)
        .filter(|t| app.metric("hookrelay_retry_scheduled_total", &format!("tier=\"{t}\"")) > 0.0)
        .count();
    assert!(
        tiers_used >= 4,
        "records were written to at least four tiers before the restart"
    );
    app.stop().await.expect("clean stop");

    receiver.endpoint("r", Behavior::Healthy);
    let app = RunningApp::start(config.clone()).await;
    receiver
        .wait_for(Duration::from_secs(60), "all five events delivered", |r| {
            let ok: std::collections::HashSet<_> = r.iter().map(|x| x.webhook_id.clone()).collect();
            ok.len() == 5 && attempts_by_id(r).values().all(|t| t.len() >= 2)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (id, times) in attempts_by_id(&receiver.received()) {
        // Lateness is unbounded across the restart itself; earliness never is.
        let mut gaps_ok = true;
        for (k, pair) in times.windows(2).enumerate() {
            if pair[1] - pair[0] < Duration::from_secs(tiers[k]) {
                gaps_ok = false;
            }
        }
        assert!(
            gaps_ok,
            "{id}: an attempt came before its due time: {times:?}"
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_consecutive_failures_disable_the_endpoint_and_a_success_resets_the_count() {
    let receiver = Receiver::start().await;
    let (config, _dir) = test_config(
        &[600],
        &[
            ("HOOKRELAY__DELIVERY__BATCH__MAX_EVENTS", "1"),
            ("HOOKRELAY__DELIVERY__ENDPOINT_CONCURRENCY", "1"),
        ],
    );
    harness::create_topics(&config).await;
    let mut script = vec![500; 9];
    script.push(200);
    script.extend(vec![500; 10]);
    let url = receiver.endpoint("b", Behavior::Script(script));
    publish_endpoints(&config, &[endpoint("ep_b", "acc_b", &url, &[], &secret())]).await;
    let app = RunningApp::start(config.clone()).await;
    let id = EndpointId::from("ep_b");

    produce_events(
        &config.topics.events,
        (0..19).map(|i| (i, "acc_b".to_owned(), EventType::ALL[i % 10])),
    )
    .await;
    receiver
        .wait_for(Duration::from_secs(30), "19 requests", |r| r.len() >= 19)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !app.table
            .get(&id)
            .expect("table")
            .expect("endpoint")
            .breaker_disabled(),
        "9 failures, a success, 9 failures: never 10 in a row"
    );

    produce_events(
        &config.topics.events,
        std::iter::once((19, "acc_b".to_owned(), EventType::LicenseCreated)),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app
        .table
        .get(&id)
        .expect("table")
        .expect("endpoint")
        .breaker_disabled()
    {
        assert!(
            Instant::now() < deadline,
            "the 10th consecutive failure disables the endpoint"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ep = app.table.get(&id).expect("table").expect("endpoint");
    let status = ep.status.expect("a status record");
    assert_eq!(status.reason.as_deref(), Some("consecutive_failures"));
    assert!(ep.enabled, "the endpoint's own record is untouched");
    let notices = common::read_all_at_least(&config.topics.notifications, 1);
    assert_eq!(notices.len(), 1, "one notification");
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_disabling_one_endpoint_at_once_send_one_notification() {
    use hookrelay::delivery::{DisableReason, ErrorClass};
    use hookrelay::retry::handoff::{Disabling, Failure, Handoff};
    use hookrelay::retry::notices::write_owed_notices;
    use hookrelay::subscriptions::{Store, SubscriptionTable};

    let (config, dir) = test_config(&[60], &[]);
    harness::create_topics(&config).await;
    let ep = endpoint("ep_race", "acc_race", "http://127.0.0.1:9/", &[], &secret());
    publish_endpoints(&config, std::slice::from_ref(&ep)).await;

    // Two instances: each its own table (RocksDB directory) and handoff.
    let (_running, running_rx) = tokio::sync::watch::channel(false);
    let mut instances = Vec::new();
    for n in 0..2 {
        let store = Store::open(
            dir.path().join(format!("race-{n}")),
            &config.topics.subscriptions,
        )
        .expect("store");
        let (table, _follower) =
            SubscriptionTable::start(common::client_config(), &config.topics.subscriptions, store)
                .await
                .expect("table");
        table.wait_ready().await.expect("ready");
        let handoff = Handoff::new(
            common::producer(),
            &config,
            table.clone(),
            hookrelay::telemetry::Metrics::unregistered(),
        );
        // Each instance writes the notices it owes, as `run` does.
        tokio::spawn(write_owed_notices(
            table.clone(),
            common::producer(),
            config.topics.notifications.clone(),
            hookrelay::telemetry::Metrics::unregistered(),
            running_rx.clone(),
        ));
        instances.push((table, handoff));
    }
    let failure = Failure::local(ErrorClass::Timeout);
    let (a, b) = tokio::join!(
        instances[0]
            .1
            .disable(&ep, DisableReason::ConsecutiveFailures, &failure),
        instances[1]
            .1
            .disable(&ep, DisableReason::ConsecutiveFailures, &failure),
    );
    assert_eq!((a, b), (Disabling::Disabled, Disabling::Disabled));
    for (table, _) in &instances {
        let stored = table.get(&ep.id).expect("table").expect("endpoint");
        assert!(stored.breaker_disabled());
        assert_eq!(stored.status_epoch(), 1, "one disabling, whoever wrote it");
        assert_eq!(
            stored.version, ep.version,
            "the endpoint's own record is untouched"
        );
    }
    let notices = common::read_all_at_least(&config.topics.notifications, 1);
    assert_eq!(
        notices.len(),
        1,
        "one notification per disabling, whoever won the race"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_retry_record_is_kept_on_the_dead_letter_topic_byte_for_byte() {
    let (config, _dir) = test_config(&[1], &[]);
    harness::create_topics(&config).await;
    let app = RunningApp::start(config.clone()).await;
    let garbage = b"\xc3\x01not an envelope".to_vec();
    common::produce(
        &common::producer(),
        &config.retry.tiers[0].topic,
        Some(b"ep_unknown"),
        Some(&garbage),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let dlq = loop {
        let dlq = common::read_all(&config.topics.dead_letter);
        if !dlq.is_empty() || Instant::now() > deadline {
            break dlq;
        }
    };
    assert_eq!(dlq.len(), 1, "the record is kept, not dropped");
    assert_eq!(dlq[0].payload(), Some(garbage.as_slice()));
    assert_eq!(dlq[0].key(), Some(b"ep_unknown".as_slice()));
    let reason = dlq[0].headers().and_then(|h| {
        use rdkafka::message::Headers;
        h.iter()
            .find(|h| h.key == "hookrelay-dead-letter-reason")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    });
    assert_eq!(reason.as_deref(), Some("undecodable_retry_record"));
    let (committed, end) = crate::delivery::wait_committed(
        &config.kafka.group_id,
        &config.retry.tiers[0].topic,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(committed, end, "its offset is settled");
    app.stop().await.expect("clean stop");
}

/// Idle tier partitions rest and are looked at again now and then; a broker that answers a
/// fetch only after such a look would end must still have the tier read. The broker is
/// librdkafka's mock cluster: the one broker here that can be made slow on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_broker_still_has_resting_tiers_read() {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let cluster = MockCluster::new(1).expect("mock cluster");
    let tiers = [5];
    let (mut config, _dir) = test_config(&tiers, &[]);
    config.kafka.bootstrap_servers = cluster.bootstrap_servers();
    for spec in hookrelay::kafka::topics::topic_specs(&config) {
        cluster
            .create_topic(&spec.name, spec.partitions, 1)
            .expect("mock topic");
    }
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .expect("producer");
    let receiver = Receiver::start().await;
    let url = receiver.endpoint(
        "s",
        Behavior::FailTimes {
            times: 1,
            status: 503,
        },
    );
    let ep = endpoint("ep_s", "acc_s", &url, &[], &secret());
    hookrelay::subscriptions::publish(&producer, &config.topics.subscriptions, &ep)
        .await
        .expect("publish endpoint");
    let app = RunningApp::start(config.clone()).await;
    // Every answer now takes 400 ms: twice the look a healthy broker gets.
    cluster
        .broker_round_trip_time(1, Duration::from_millis(400))
        .expect("slow broker");
    // The retry below must meet a resting tier.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.metric("hookrelay_paused_partitions", "reason=\"resting\"") < 1.0 {
        if Instant::now() >= deadline {
            app.stop().await.expect("clean stop");
            panic!("the tier never rested, so this would prove nothing");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let payload = hookrelay::event::encode_json(&crate::delivery::event(
        1,
        "acc_s",
        EventType::LicenseActivated,
    ));
    producer
        .send(
            FutureRecord::to(&config.topics.events)
                .key("acc_s")
                .payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .expect("produce");

    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.received().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = receiver.received();
    // Stopped before asserting: a mock cluster dropped under a running client never returns.
    app.stop().await.expect("clean stop");
    assert_eq!(
        received.len(),
        2,
        "the retry was not read from its tier within a minute"
    );
    check_gaps(
        &[received[0].at, received[1].at],
        &tiers,
        Duration::from_secs(5),
    );
}
