//! The subscriptions table against a real broker: bootstrap, restart without re-reading,
//! tombstones, live updates, stale versions and malformed records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use hookrelay::ids::{AccountId, EndpointId, Secret};
use hookrelay::subscriptions::{
    Endpoint, FollowerState, Store, SubscriptionError, SubscriptionTable, publish,
    publish_tombstone,
};
use rdkafka::producer::FutureProducer;
use tokio::task::JoinHandle;

use crate::common;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn endpoint(n: usize, account: &str) -> Endpoint {
    Endpoint::new(
        EndpointId::new(format!("ep_{n:06}")),
        AccountId::from(account),
        format!("https://hooks.example.com/{n}").parse().unwrap(),
        Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    )
}

async fn compacted_topic(prefix: &str) -> String {
    let topic = common::unique(prefix);
    common::create_topic(&topic, 3, &[("cleanup.policy", "compact")]).await;
    topic
}

async fn start(topic: &str, dir: &std::path::Path) -> (Arc<SubscriptionTable>, JoinHandle<()>) {
    let store = Store::open(dir, topic).unwrap();
    let (table, handle) = SubscriptionTable::start(common::client_config(), topic, store)
        .await
        .unwrap();
    tokio::time::timeout(READY_TIMEOUT, table.wait_ready())
        .await
        .expect("table ready in time")
        .expect("follower running");
    (table, handle)
}

async fn stop(table: Arc<SubscriptionTable>, handle: JoinHandle<()>) {
    table.shutdown();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("follower stops promptly")
        .unwrap();
    assert_eq!(table.state(), FollowerState::Stopped);
    drop(table);
}

/// Publishes concurrently (one round trip per chunk rather than per record).
async fn publish_all(producer: &FutureProducer, topic: &str, endpoints: &[Endpoint]) {
    for chunk in endpoints.chunks(2_000) {
        for r in join_all(chunk.iter().map(|e| publish(producer, topic, e))).await {
            r.unwrap();
        }
    }
}

/// Polls `check` until it holds or `within` passes; returns how long it took.
async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "not visible within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

fn ids(endpoints: &[Endpoint]) -> Vec<&str> {
    endpoints.iter().map(|e| e.id.as_str()).collect()
}

#[tokio::test]
async fn bootstraps_10k_endpoints_and_restarts_without_rereading() {
    let topic = compacted_topic("subs-boot").await;
    let producer = common::producer();
    let endpoints: Vec<Endpoint> = (0..10_000)
        .map(|n| endpoint(n, &format!("acct_{}", n % 500)))
        .collect();
    publish_all(&producer, &topic, &endpoints).await;
    let dir = tempfile::tempdir().unwrap();

    let (table, handle) = start(&topic, dir.path()).await;
    assert_eq!(table.len(), 10_000);
    assert_eq!(table.records_applied(), 10_000);
    let offsets_sum: i64 = table.positions().values().sum();
    assert_eq!(offsets_sum, 10_000, "every partition read to its end");
    let acct_7 = table
        .endpoints_for(&AccountId::from("acct_7"), "license.created")
        .unwrap();
    assert_eq!(acct_7.len(), 20);
    assert!(acct_7.iter().all(|e| e.account_id.as_str() == "acct_7"));
    stop(table, handle).await;

    // Same directory: ready from RocksDB alone, nothing read again.
    let (table, handle) = start(&topic, dir.path()).await;
    assert_eq!(
        table.records_applied(),
        0,
        "a restart must not re-read the topic"
    );
    assert_eq!(table.len(), 10_000);
    for e in endpoints.iter().step_by(997) {
        assert_eq!(table.get(&e.id).unwrap().as_ref(), Some(e));
    }
    stop(table, handle).await;

    // Changes written while it was down: exactly those are read on the next start.
    let later: Vec<Endpoint> = (10_000..10_005).map(|n| endpoint(n, "acct_new")).collect();
    publish_all(&producer, &topic, &later).await;
    let (table, handle) = start(&topic, dir.path()).await;
    assert_eq!(table.records_applied(), 5);
    assert_eq!(table.len(), 10_005);
    assert_eq!(
        ids(&table
            .endpoints_for(&AccountId::from("acct_new"), "x")
            .unwrap()),
        [
            "ep_010000",
            "ep_010001",
            "ep_010002",
            "ep_010003",
            "ep_010004"
        ]
    );
    stop(table, handle).await;
}

#[tokio::test]
async fn updates_and_tombstones_are_visible_within_a_second() {
    let topic = compacted_topic("subs-live").await;
    let producer = common::producer();
    let mut a = endpoint(1, "acct_live");
    let b = endpoint(2, "acct_live");
    publish_all(&producer, &topic, &[a.clone(), b.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let (table, handle) = start(&topic, dir.path()).await;
    let account = AccountId::from("acct_live");
    assert_eq!(
        ids(&table.endpoints_for(&account, "payment.failed").unwrap()),
        ["ep_000001", "ep_000002"]
    );

    // Narrow a's event types: it stops receiving payment.failed.
    a.event_types = vec!["license.created".into()];
    a.version = 2;
    publish(&producer, &topic, &a).await.unwrap();
    let took = eventually(Duration::from_secs(1), || {
        ids(&table.endpoints_for(&account, "payment.failed").unwrap()) == ["ep_000002"]
    })
    .await;
    eprintln!("update visible after {took:?}");
    assert_eq!(
        ids(&table.endpoints_for(&account, "license.created").unwrap()),
        ["ep_000001", "ep_000002"]
    );

    // Disabling takes an endpoint out of the join but keeps it readable.
    a.enabled = false;
    a.disabled_reason = Some("disabled by test".into());
    a.version = 3;
    let published = publish(&producer, &topic, &a).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), table.wait_applied(published))
        .await
        .expect("applied within a second")
        .unwrap();
    assert_eq!(
        ids(&table.endpoints_for(&account, "license.created").unwrap()),
        ["ep_000002"]
    );
    assert!(!table.get(&a.id).unwrap().unwrap().enabled);

    // A tombstone deletes.
    publish_tombstone(&producer, &topic, &b.id).await.unwrap();
    eventually(Duration::from_secs(1), || {
        table.get(&b.id).unwrap().is_none()
    })
    .await;
    assert!(
        table
            .endpoints_for(&account, "license.created")
            .unwrap()
            .is_empty()
    );
    assert_eq!(table.len(), 1);
    stop(table, handle).await;
}

#[tokio::test]
async fn a_stale_update_does_not_overwrite() {
    let topic = compacted_topic("subs-stale").await;
    let producer = common::producer();
    let dir = tempfile::tempdir().unwrap();
    let (table, handle) = start(&topic, dir.path()).await;

    let mut current = endpoint(1, "acct_s");
    current.version = 5;
    current.url = "https://new.example.com/hook".parse().unwrap();
    let mut stale = endpoint(1, "acct_s");
    stale.version = 4;
    stale.url = "https://old.example.com/hook".parse().unwrap();

    publish(&producer, &topic, &current).await.unwrap();
    let last = publish(&producer, &topic, &stale).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), table.wait_applied(last))
        .await
        .expect("applied in time")
        .unwrap();
    let got = table.get(&current.id).unwrap().unwrap();
    assert_eq!(got.version, 5);
    assert_eq!(got.url.as_str(), "https://new.example.com/hook");
    assert_eq!(table.stats().stale_ignored, 1);
    stop(table, handle).await;
}

#[tokio::test]
async fn malformed_records_are_skipped_and_the_follower_goes_on() {
    let topic = compacted_topic("subs-bad").await;
    let producer = common::producer();
    // Before start: undecodable bytes, a value whose id differs from its key, a key that is
    // no endpoint id, and an invalid secret. (A compacted topic refuses keyless records.)
    common::produce(
        &producer,
        &topic,
        Some(b"ep_bad1"),
        Some(b"\xC3\x01garbage"),
    )
    .await;
    let other = serde_json::to_vec(&endpoint(9, "acct_b")).unwrap();
    common::produce(&producer, &topic, Some(b"ep_bad2"), Some(&other)).await;
    common::produce(&producer, &topic, Some(b"acct_b"), Some(&other)).await;
    let mut bad_secret = serde_json::to_value(endpoint(3, "acct_b")).unwrap();
    bad_secret["secrets"][0]["secret"] = "sk_plain".into();
    let bad_secret = serde_json::to_vec(&bad_secret).unwrap();
    common::produce(&producer, &topic, Some(b"ep_000003"), Some(&bad_secret)).await;
    // A hand-written JSON record is accepted.
    let json = br#" {"id":"ep_json","account_id":"acct_b","url":"http://127.0.0.1:9/h",
        "secrets":[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}"#;
    common::produce(&producer, &topic, Some(b"ep_json"), Some(json)).await;

    let dir = tempfile::tempdir().unwrap();
    let (table, handle) = start(&topic, dir.path()).await;
    assert_eq!(table.records_skipped(), 4);
    assert_eq!(table.len(), 1);
    assert!(table.get(&EndpointId::from("ep_json")).unwrap().is_some());

    // While following: another bad record, then a good one, which still arrives.
    common::produce(&producer, &topic, Some(b"ep_bad3"), Some(b"{not json")).await;
    let good = publish(&producer, &topic, &endpoint(4, "acct_b"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), table.wait_applied(good))
        .await
        .expect("applied in time")
        .unwrap();
    assert_eq!(table.records_skipped(), 5);
    assert_eq!(table.state(), FollowerState::Ready);
    assert_eq!(
        ids(&table
            .endpoints_for(&AccountId::from("acct_b"), "x")
            .unwrap()),
        ["ep_000004", "ep_json"]
    );
    stop(table, handle).await;
}

#[tokio::test]
async fn an_empty_topic_is_ready_at_once_and_a_missing_one_is_an_error() {
    let topic = compacted_topic("subs-empty").await;
    let dir = tempfile::tempdir().unwrap();
    let (table, handle) = start(&topic, dir.path()).await;
    assert!(table.is_empty());
    stop(table, handle).await;

    let missing = common::unique("subs-missing");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &missing).unwrap();
    let err = SubscriptionTable::start(common::client_config(), &missing, store)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SubscriptionError::TopicMissing { .. }),
        "{err}"
    );
}
