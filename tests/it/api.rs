//! The customer API on the real broker: every route, read-your-writes, optimistic versions,
//! secret rotation, the delivery log, test events, retries, dead-letter replays, re-enabling,
//! bad input, rate limits, keys (CLI and revocation), and the authorization matrix: one
//! account's key can neither see nor change another account's endpoints through any route.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hookrelay::config::Config;
use hookrelay::delivery::delivery_id;
use hookrelay::event::EventType;
use hookrelay::ids::{EndpointId, EventId, Secret};
use hookrelay::records::ApiKey;
use hookrelay::records::envelope::DeliveryEnvelope;
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common;
use crate::delivery::produce_events;
use crate::harness::{self, RunningApp, test_config};
use crate::receiver::{Behavior, Receiver};

/// A running instance with three keys: accounts A and B, and an operator.
pub struct ApiEnv {
    pub app: RunningApp,
    pub config: Config,
    pub base: String,
    pub http: reqwest::Client,
    pub receiver: Receiver,
    pub a: String,
    pub b: String,
    pub op: String,
    _dir: tempfile::TempDir,
}

pub const ACCOUNT_A: &str = "acct_a";
pub const ACCOUNT_B: &str = "acct_b";

/// Writes a key record to the config's keys topic; returns the token. A topic created a
/// moment ago may not be in the producer's metadata yet (unknown partition): ask again.
pub async fn new_key(config: &Config, account: Option<&str>) -> (String, String) {
    let made = ApiKey::generate(account.map(str::to_owned), Some("test".into()), 1);
    let producer = common::producer();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match hookrelay::api::keys::publish_key(&producer, &config.topics.api_keys, &made.key).await
        {
            Ok(()) => return (made.key.id, made.token),
            Err(e) if Instant::now() < deadline => {
                eprintln!("publishing a test key: {e:?}; trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("publish key: {e:?}"),
        }
    }
}

impl ApiEnv {
    /// `tiers` are the retry delays in seconds (long ones keep automatic retries out of a
    /// test's way).
    pub async fn start(tiers: &[u64], overrides: &[(&str, &str)]) -> ApiEnv {
        let (config, dir) = test_config(tiers, overrides);
        harness::create_topics(&config).await;
        // Keys written before the start are loaded before the API answers.
        let (_, a) = new_key(&config, Some(ACCOUNT_A)).await;
        let (_, b) = new_key(&config, Some(ACCOUNT_B)).await;
        let (_, op) = new_key(&config, None).await;
        let receiver = Receiver::start().await;
        let app = RunningApp::start(config.clone()).await;
        let base = format!("http://{}", app.api.expect("the API is enabled"));
        ApiEnv {
            app,
            config,
            base,
            http: reqwest::Client::new(),
            receiver,
            a,
            b,
            op,
            _dir: dir,
        }
    }

    /// One request; returns the status and the JSON body (`null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).expect("json"));
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{path}: not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// Creates an endpoint at the receiver path `name`, answering as `behavior`.
    pub async fn endpoint(&self, key: &str, name: &str, behavior: Behavior) -> Value {
        let url = self.receiver.endpoint(name, behavior);
        let (status, body) = self
            .post(
                "/v1/endpoints",
                key,
                json!({ "url": url, "description": name }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Polls the endpoint's log until `pred` holds for its first page.
    pub async fn wait_log(
        &self,
        key: &str,
        endpoint: &str,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self
                .get(&format!("/v1/endpoints/{endpoint}/attempts?limit=100"), key)
                .await;
            assert_eq!(status, 200, "{body}");
            let data = body["data"].as_array().cloned().unwrap_or_default();
            if pred(&data) {
                return data;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log: {data:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn secret_of(&self, key: &str, endpoint: &str) -> String {
        let (status, body) = self
            .get(&format!("/v1/endpoints/{endpoint}/secret"), key)
            .await;
        assert_eq!(status, 200, "{body}");
        body["secret"].as_str().expect("secret").to_owned()
    }
}

fn id_of(endpoint: &Value) -> String {
    endpoint["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn endpoints_are_created_read_listed_changed_and_deleted() {
    let env = ApiEnv::start(&[3600], &[]).await;
    let (status, created) = env
        .post(
            "/v1/endpoints",
            &env.a,
            json!({
                "url": env.receiver.endpoint("crud", Behavior::Healthy),
                "description": "billing",
                "event_types": ["license.created", "payment.failed"],
                "rate_limit_per_sec": 5,
                "batching": {"enabled": false},
                "contact_email": "webhooks@customer.example",
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = id_of(&created);
    assert!(id.starts_with("ep_"));
    assert_eq!(created["account_id"], ACCOUNT_A);
    assert_eq!(created["state"], "active");
    assert_eq!(created["version"], 1);
    assert_eq!(created["batching"]["enabled"], false);
    assert_eq!(created["contact_email"], "webhooks@customer.example");

    // Read-your-writes: the answer came after the table applied it.
    let (status, read) = env.get(&format!("/v1/endpoints/{id}"), &env.a).await;
    assert_eq!((status, &read), (200, &created));
    let (_, list) = env.get("/v1/endpoints", &env.a).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str())
    );

    // A change with the version read; then one with a stale version.
    let (status, changed) = env
        .call(
            Method::PATCH,
            &format!("/v1/endpoints/{id}"),
            Some(&env.a),
            Some(json!({"version": 1, "description": null, "event_types": [], "enabled": false, "contact_email": null})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["event_types"], json!([]));
    assert_eq!(changed["state"], "paused");
    assert_eq!(changed["contact_email"], Value::Null);
    assert_eq!(changed["rate_limit_per_sec"], 5, "untouched fields stay");
    let (status, stale) = env
        .call(
            Method::PATCH,
            &format!("/v1/endpoints/{id}"),
            Some(&env.a),
            Some(json!({"version": 1, "description": "lost update"})),
        )
        .await;
    assert_eq!(status, 409, "{stale}");
    let (_, read) = env.get(&format!("/v1/endpoints/{id}"), &env.a).await;
    assert_eq!(
        read["description"],
        Value::Null,
        "the stale change was not applied"
    );

    // A paused endpoint takes no test event.
    let (status, _) = env
        .post(&format!("/v1/endpoints/{id}/test"), &env.a, json!({}))
        .await;
    assert_eq!(status, 409);

    let (status, _) = env
        .call(
            Method::DELETE,
            &format!("/v1/endpoints/{id}"),
            Some(&env.a),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = env.get(&format!("/v1/endpoints/{id}"), &env.a).await;
    assert_eq!(status, 404, "gone at once on this instance");
    let (_, list) = env.get("/v1/endpoints", &env.a).await;
    assert!(
        !list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str())
    );
    let status_key = hookrelay::subscriptions::status_key(&EndpointId::from(id.as_str()));
    let topic = env.config.topics.subscriptions.clone();
    let records = tokio::task::spawn_blocking(move || common::read_all_at_least(&topic, 4))
        .await
        .unwrap();
    let tombstones: Vec<_> = records
        .into_iter()
        .filter(|m| {
            use rdkafka::Message;
            m.payload().is_none() && m.key() == Some(status_key.as_bytes())
        })
        .collect();
    assert_eq!(
        tombstones.len(),
        1,
        "the status record is deleted with the endpoint"
    );
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn lists_are_paged_by_cursor() {
    let env = ApiEnv::start(&[3600], &[]).await;
    let mut ids = BTreeSet::new();
    for i in 0..5 {
        ids.insert(id_of(
            &env.endpoint(&env.b, &format!("page{i}"), Behavior::Healthy)
                .await,
        ));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/endpoints?limit=2&cursor={c}"),
            None => "/v1/endpoints?limit=2".to_owned(),
        };
        let (status, page) = env.get(&path, &env.b).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), ids);
    assert_eq!(seen.len(), 5, "no endpoint twice");
    // The operator lists any account, but must name it.
    let (status, page) = env
        .get(&format!("/v1/endpoints?account_id={ACCOUNT_B}"), &env.op)
        .await;
    assert_eq!((status, page["data"].as_array().unwrap().len()), (200, 5));
    let (status, body) = env.get("/v1/endpoints", &env.op).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("account_id"))
    );
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_test_event_is_delivered_signed_and_shows_in_the_log() {
    let env = ApiEnv::start(&[3600], &[]).await;
    let ep = env.endpoint(&env.a, "test-event", Behavior::Healthy).await;
    let id = id_of(&ep);
    let (status, queued) = env
        .post(&format!("/v1/endpoints/{id}/test"), &env.a, json!({}))
        .await;
    assert_eq!(status, 202, "{queued}");
    let delivery = queued["delivery_id"].as_str().unwrap().to_owned();
    let event = queued["event_ids"][0].as_str().unwrap().to_owned();
    assert_eq!(
        delivery,
        delivery_id(
            &EndpointId::from(id.as_str()),
            &EventId::from(event.as_str())
        )
    );

    env.receiver
        .wait_for(Duration::from_secs(30), "the test event", |r| {
            r.iter().any(|r| r.webhook_id == delivery)
        })
        .await;
    let got = env
        .receiver
        .received_by("test-event")
        .into_iter()
        .find(|r| r.webhook_id == delivery)
        .unwrap();
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["id"], event.as_str());
    let secret = Secret::new(env.secret_of(&env.a, &id).await);
    hookrelay::sign::verify(
        &secret,
        &got.webhook_id,
        &got.webhook_timestamp,
        &got.webhook_signature,
        &got.body,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .expect("signed with the endpoint's secret");

    let log = env
        .wait_log(&env.a, &id, "a delivered attempt", |log| {
            log.iter().any(|a| a["outcome"] == "delivered")
        })
        .await;
    let attempt = log
        .iter()
        .find(|a| a["delivery_id"] == delivery.as_str())
        .unwrap();
    assert_eq!(attempt["status"], 200);
    assert_eq!(attempt["attempt"], 1);
    assert_eq!(attempt["event_types"], json!(["webhook.test"]));
    assert_eq!(attempt["error_class"], Value::Null);
    assert_eq!(
        attempt["request_body"].as_str().unwrap().as_bytes(),
        &got.body[..],
        "the log shows the exact body sent"
    );
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_failed_delivery_is_retried_now_with_its_webhook_id_and_the_log_filters() {
    let env = ApiEnv::start(&[3600], &[]).await;
    let ep = env
        .endpoint(
            &env.a,
            "flaky",
            Behavior::FailTimes {
                times: 1,
                status: 503,
            },
        )
        .await;
    let id = id_of(&ep);
    let (_, queued) = env
        .post(&format!("/v1/endpoints/{id}/test"), &env.a, json!({}))
        .await;
    let delivery = queued["delivery_id"].as_str().unwrap().to_owned();
    let log = env
        .wait_log(&env.a, &id, "the failed first attempt", |log| {
            log.iter().any(|a| a["outcome"] == "retry_scheduled")
        })
        .await;
    let failed = &log[0];
    assert_eq!(failed["status"], 503);
    assert_eq!(failed["error_class"], "http_5xx");
    assert_eq!(failed["error"], "HTTP 503");
    assert!(failed["next_attempt_at"].is_string(), "{failed}");

    let (status, retried) = env
        .post(
            &format!("/v1/endpoints/{id}/deliveries/{delivery}/retry"),
            &env.a,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{retried}");
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["delivery_id"], delivery.as_str());
    env.wait_log(&env.a, &id, "the retry delivered", |log| {
        log.iter()
            .any(|a| a["outcome"] == "delivered" && a["attempt"] == 2)
    })
    .await;
    let got = env.receiver.received_by("flaky");
    assert_eq!(got.len(), 2);
    assert!(
        got.iter().all(|r| r.webhook_id == delivery),
        "same webhook-id"
    );
    assert_eq!(got[0].body, got[1].body, "the same bytes");

    // Filters and pages.
    let path = |q: &str| format!("/v1/endpoints/{id}/attempts?{q}");
    let (_, delivered) = env.get(&path("outcome=delivered"), &env.a).await;
    assert_eq!(delivered["data"].as_array().unwrap().len(), 1);
    let (_, by_type) = env.get(&path("event_type=license.created"), &env.a).await;
    assert!(by_type["data"].as_array().unwrap().is_empty());
    let (_, first) = env.get(&path("limit=1"), &env.a).await;
    assert_eq!(first["data"][0]["attempt"], 2, "newest first");
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = env
        .get(&path(&format!("limit=1&cursor={cursor}")), &env.a)
        .await;
    assert_eq!(second["data"][0]["attempt"], 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let future = "2999-01-01T00:00:00Z";
    let (_, none) = env.get(&path(&format!("since={future}")), &env.a).await;
    assert!(none["data"].as_array().unwrap().is_empty());
    let (status, bad) = env.get(&path("since=yesterday"), &env.a).await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (400, Some("since"))
    );
    let (status, bad) = env.get(&path("outcome=exploded"), &env.a).await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (400, Some("outcome"))
    );
    let (status, bad) = env.get(&path("cursor=nonsense"), &env.a).await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (400, Some("cursor"))
    );
    let (status, _) = env
        .post(
            &format!("/v1/endpoints/{id}/deliveries/msg_unknown/retry"),
            &env.a,
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_rotated_secret_signs_next_to_the_old_one_for_the_overlap() {
    let env = ApiEnv::start(&[3600], &[]).await;
    let id = id_of(&env.endpoint(&env.a, "rotate", Behavior::Healthy).await);
    let old = env.secret_of(&env.a, &id).await;
    let (status, rotated) = env
        .post(
            &format!("/v1/endpoints/{id}/secret/rotate"),
            &env.a,
            json!({"overlap_secs": 3600}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with("whsec_"));
    assert_eq!(rotated["rotating"][0]["secret"], old.as_str());
    assert_eq!(env.secret_of(&env.a, &id).await, new, "read back at once");

    let (_, queued) = env
        .post(&format!("/v1/endpoints/{id}/test"), &env.a, json!({}))
        .await;
    let delivery = queued["delivery_id"].as_str().unwrap().to_owned();
    env.receiver
        .wait_for(Duration::from_secs(30), "the test event", |r| {
            r.iter().any(|r| r.webhook_id == delivery)
        })
        .await;
    let got = env.receiver.received_by("rotate").pop().unwrap();
    assert_eq!(
        got.webhook_signature.split(' ').count(),
        2,
        "both secrets sign"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for secret in [&old, &new] {
        hookrelay::sign::verify(
            &Secret::new(secret.as_str()),
            &got.webhook_id,
            &got.webhook_timestamp,
            &got.webhook_signature,
            &got.body,
            now,
        )
        .expect("either secret verifies");
    }
    // Overlap 0: the old one stops at once; a secret of our own is taken if well-formed.
    use base64::Engine;
    let mine = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let (status, rotated) = env
        .post(
            &format!("/v1/endpoints/{id}/secret/rotate"),
            &env.a,
            json!({"overlap_secs": 0, "secret": mine}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["secret"], mine.as_str());
    assert_eq!(rotated["rotating"], json!([]));
    let short = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 16])
    );
    let (status, body) = env
        .post(
            &format!("/v1/endpoints/{id}/secret/rotate"),
            &env.a,
            json!({"secret": short}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("secret"))
    );
    let (status, body) = env
        .post(
            &format!("/v1/endpoints/{id}/secret/rotate"),
            &env.a,
            json!({"overlap_secs": 99999999}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("overlap_secs"))
    );
    env.app.stop().await.expect("clean stop");
}

/// Writes a dead letter for `endpoint` straight to the dead-letter topic, as the delivery core
/// does, with the record timestamp `at_ms`.
async fn dead_letter(
    producer: &FutureProducer,
    config: &Config,
    endpoint: &str,
    account: &str,
    event: &str,
    reason: &str,
    at_ms: i64,
) -> String {
    let delivery = delivery_id(&EndpointId::from(endpoint), &EventId::from(event));
    let body = json!({"id": event, "type": "license.created", "created": "2026-03-15T14:30:00Z",
        "data": {"licenseKey": "TO-****-F6A8", "plan": "pro", "activationsUsed": 1, "activationLimit": 2, "features": []}});
    let envelope = DeliveryEnvelope {
        delivery_id: delivery.clone(),
        endpoint_id: endpoint.to_owned(),
        account_id: account.to_owned(),
        event_ids: vec![event.to_owned()],
        event_types: vec!["license.created".to_owned()],
        batch: false,
        body: body.to_string(),
        attempt: 2,
        first_attempt_at_ms: at_ms - 1000,
        due_at_ms: at_ms,
        last_status: Some(500),
        last_error: Some("HTTP 500".into()),
        origin_topic: config.topics.events.clone(),
        origin_partition: 0,
        origin_offset: 1,
        history: vec![],
        dead_letter_reason: Some(reason.to_owned()),
    };
    let bytes = envelope.to_avro().unwrap();
    producer
        .send(
            FutureRecord::to(&config.topics.dead_letter)
                .key(endpoint)
                .payload(&bytes)
                .timestamp(at_ms),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("dead letter");
    delivery
}

async fn wait_replay(env: &ApiEnv, key: &str, replay: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, view) = env.get(&format!("/v1/replays/{replay}"), key).await;
        assert_eq!(status, 200, "{view}");
        if view["state"] != "running" {
            return view;
        }
        assert!(Instant::now() < deadline, "replay still running: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn dead_letters_in_a_range_are_replayed_with_their_webhook_ids_capped_and_resumable() {
    let env = ApiEnv::start(&[3600], &[]).await;
    let id = id_of(&env.endpoint(&env.a, "replayed", Behavior::Healthy).await);
    let other = id_of(&env.endpoint(&env.a, "other", Behavior::Healthy).await);
    let producer = common::producer();
    let now = hookrelay::delivery::now_ms();
    let t0 = now - 60 * 60_000;
    let mut in_range = Vec::new();
    let letter = |event: &'static str, endpoint: &str, reason: &'static str, at: i64| {
        let (producer, config, endpoint) =
            (producer.clone(), env.config.clone(), endpoint.to_owned());
        async move { dead_letter(&producer, &config, &endpoint, ACCOUNT_A, event, reason, at).await }
    };
    in_range.push(letter("evt_r0", &id, "retries_exhausted", t0).await);
    in_range.push(letter("evt_r1", &id, "retries_exhausted", t0 + 60_000).await);
    // The same delivery dead-lettered twice is re-sent once.
    letter("evt_r0", &id, "retries_exhausted", t0 + 90_000).await;
    in_range.push(letter("evt_r2", &id, "retries_exhausted", t0 + 120_000).await);
    in_range.push(letter("evt_r3", &id, "retries_exhausted", t0 + 180_000).await);
    // Out of range, another reason, another endpoint: none of these.
    letter("evt_old", &id, "retries_exhausted", t0 - 3_600_000).await;
    letter("evt_gone", &id, "endpoint_gone", t0 + 60_000).await;
    letter("evt_x", &other, "retries_exhausted", t0 + 60_000).await;

    let since = hookrelay::event::format_timestamp(
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t0 - 1000) * 1_000_000).unwrap(),
    );
    let (status, started) = env
        .post(
            &format!("/v1/endpoints/{id}/replays"),
            &env.a,
            json!({"since": since, "reason": "retries_exhausted", "max": 3}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let done = wait_replay(&env, &env.a, started["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["replayed"], 3);
    assert_eq!(done["duplicates"], 1);
    assert_eq!(done["capped"], true);
    let resume = done["resume_since"]
        .as_str()
        .expect("where to continue")
        .to_owned();
    let (status, rest) = env
        .post(
            &format!("/v1/endpoints/{id}/replays"),
            &env.a,
            json!({"since": resume, "reason": "retries_exhausted"}),
        )
        .await;
    assert_eq!(status, 202, "{rest}");
    let rest = wait_replay(&env, &env.a, rest["id"].as_str().unwrap()).await;
    assert_eq!(
        (rest["replayed"].as_u64(), rest["capped"].as_bool()),
        (Some(1), Some(false)),
        "{rest}"
    );
    assert_eq!(rest["duplicates"], 0);

    let expected: BTreeSet<String> = in_range.iter().cloned().collect();
    env.receiver
        .wait_for(Duration::from_secs(30), "the replayed deliveries", |r| {
            let got: BTreeSet<String> = r
                .iter()
                .filter(|r| r.path == "/ep/replayed")
                .map(|r| r.webhook_id.clone())
                .collect();
            got == expected
        })
        .await;
    assert!(env.receiver.received_by("other").is_empty());
    let (_, list) = env
        .get(&format!("/v1/endpoints/{id}/replays"), &env.a)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let (status, body) = env
        .post(
            &format!("/v1/endpoints/{id}/replays"),
            &env.a,
            json!({"since": "not a time"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("since"))
    );
    let (status, body) = env
        .post(
            &format!("/v1/endpoints/{id}/replays"),
            &env.a,
            json!({"since": since, "reason": "boredom"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("reason"))
    );
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn re_enabling_replays_what_was_dead_lettered_while_disabled() {
    // One failure disables; retries far away.
    let env = ApiEnv::start(&[3600], &[("HOOKRELAY__RETRY__BREAKER_THRESHOLD", "1")]).await;
    let ep = env.endpoint(&env.a, "broken", Behavior::Status(500)).await;
    let id = id_of(&ep);
    let (_, queued) = env
        .post(&format!("/v1/endpoints/{id}/test"), &env.a, json!({}))
        .await;
    assert!(queued["delivery_id"].is_string(), "{queued}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, e) = env.get(&format!("/v1/endpoints/{id}"), &env.a).await;
        if e["state"] == "disabled" {
            assert_eq!(e["disabled"]["reason"], "consecutive_failures");
            break;
        }
        assert!(Instant::now() < deadline, "not disabled: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = env
        .post(&format!("/v1/endpoints/{id}/test"), &env.a, json!({}))
        .await;
    assert_eq!(status, 409, "a disabled endpoint takes no test event");

    // Events while disabled are dead-lettered (reason endpoint_disabled).
    let events = produce_events(
        &env.config.topics.events,
        (0..3).map(|i| (900 + i, ACCOUNT_A.to_owned(), EventType::LicenseCreated)),
    )
    .await;
    let expected: BTreeSet<String> = events
        .iter()
        .map(|(event, _, _)| {
            delivery_id(
                &EndpointId::from(id.as_str()),
                &EventId::from(event.as_str()),
            )
        })
        .collect();
    env.wait_log(
        &env.a,
        &id,
        "the events dead-lettered while disabled",
        |log| {
            let dead: BTreeSet<String> = log
                .iter()
                .filter(|a| a["dead_letter_reason"] == "endpoint_disabled")
                .map(|a| a["delivery_id"].as_str().unwrap().to_owned())
                .collect();
            expected.is_subset(&dead)
        },
    )
    .await;

    // Fixed: re-enable and replay.
    env.receiver.endpoint("broken", Behavior::Healthy);
    let (status, enabled) = env
        .post(
            &format!("/v1/endpoints/{id}/enable"),
            &env.a,
            json!({"replay": true}),
        )
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["endpoint"]["state"], "active");
    let replay = enabled["replay"]["id"]
        .as_str()
        .expect("a replay started")
        .to_owned();
    let done = wait_replay(&env, &env.a, &replay).await;
    assert_eq!(done["state"], "done", "{done}");
    env.receiver
        .wait_for(Duration::from_secs(30), "the replayed events", |r| {
            let got: BTreeSet<String> = r
                .iter()
                .filter(|r| r.path == "/ep/broken")
                .map(|r| r.webhook_id.clone())
                .collect();
            expected.is_subset(&got)
        })
        .await;
    // Re-enabling an enabled endpoint changes nothing.
    let (status, again) = env
        .post(&format!("/v1/endpoints/{id}/enable"), &env.a, json!({}))
        .await;
    assert_eq!((status, &again["replay"]), (200, &Value::Null));
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_input_is_a_4xx_that_names_the_field() {
    let env = ApiEnv::start(
        &[3600],
        &[
            ("HOOKRELAY__API__HTTPS_REQUIRED", "true"),
            ("HOOKRELAY__API__MAX_BODY_BYTES", "4096"),
        ],
    )
    .await;
    let e = &env;
    let create = move |body: Value| async move { e.post("/v1/endpoints", &e.a, body).await };
    let field = |r: &(u16, Value)| (r.0, r.1["error"]["field"].as_str().map(str::to_owned));
    let bad = |f: &str| (400, Some(f.to_owned()));
    assert_eq!(field(&create(json!({})).await), bad("url"));
    assert_eq!(
        field(&create(json!({"url": "http://hooks.example.com/x"})).await),
        bad("url"),
        "https required"
    );
    assert_eq!(
        field(&create(json!({"url": "not a url"})).await),
        bad("url")
    );
    assert_eq!(
        field(&create(json!({"url": "https://user:pw@hooks.example.com/"})).await),
        bad("url")
    );
    // The SSRF guard's verdict, without the address.
    let (status, body) = create(json!({"url": "https://169.254.169.254/latest"})).await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cloud-metadata") && !message.contains("169.254"),
        "{message}"
    );
    assert_eq!(
        field(&create(json!({"url": "https://10.1.2.3/"})).await),
        bad("url")
    );
    let ok_url = "https://127.0.0.1:9/hook";
    assert_eq!(
        field(&create(json!({"url": ok_url, "event_types": ["license.created", "nope"]})).await),
        bad("event_types[1]")
    );
    assert_eq!(
        field(&create(json!({"url": ok_url, "rate_limit_per_sec": 0})).await),
        bad("rate_limit_per_sec")
    );
    assert_eq!(
        field(&create(json!({"url": ok_url, "batching": {"max_events": "ten"}})).await),
        bad("batching.max_events")
    );
    assert_eq!(
        field(&create(json!({"url": ok_url, "colour": "blue"})).await),
        bad("colour")
    );
    assert_eq!(
        field(&create(json!({"url": ok_url, "account_id": ACCOUNT_B})).await),
        bad("account_id")
    );
    assert_eq!(
        field(&create(json!({"url": ok_url, "secret": "hunter2"})).await),
        bad("secret")
    );
    assert_eq!(
        field(&create(json!({"url": ok_url, "contact_email": "a@b.example c@d.example"})).await),
        bad("contact_email")
    );

    // Not JSON, too large, no key, a wrong key.
    let raw = |body: &'static str| {
        env.http
            .post(format!("{}/v1/endpoints", env.base))
            .bearer_auth(&env.a)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let response = raw("{\"url\": ").await.unwrap();
    assert_eq!(response.status(), 400);
    let big = env
        .http
        .post(format!("{}/v1/endpoints", env.base))
        .bearer_auth(&env.a)
        .body(format!(
            "{{\"url\":\"{ok_url}\",\"description\":\"{}\"}}",
            "x".repeat(8000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let (status, body) = env.call(Method::GET, "/v1/endpoints", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let forged = "hrk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(env.get("/v1/endpoints", forged).await.0, 401);
    let tampered = format!("{}x", env.a);
    assert_eq!(env.get("/v1/endpoints", &tampered).await.0, 401);
    assert_eq!(env.get("/v1/endpoints?limit=0", &env.a).await.0, 400);
    assert_eq!(
        env.get("/v1/endpoints?limit=abc", &env.a).await.1["error"]["field"],
        "limit"
    );
    assert_eq!(env.get("/v1/nothing-here", &env.a).await.0, 404);
    let created = create(json!({"url": ok_url})).await;
    assert_eq!(created.0, 201, "{}", created.1);
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_and_other_keys_do_not() {
    let env = ApiEnv::start(
        &[3600],
        &[
            ("HOOKRELAY__API__RATE_LIMIT_PER_KEY", "0.5"),
            ("HOOKRELAY__API__RATE_LIMIT_BURST", "3"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = env
            .http
            .get(format!("{}/v1/me", env.base))
            .bearer_auth(&env.a)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let wait: u64 = retry_after
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(
        env.get("/v1/me", &env.b).await.0,
        200,
        "B has its own budget"
    );
    assert!(env.app.metric("hookrelay_api_rate_limited_total", "") >= 2.0);
    env.app.stop().await.expect("clean stop");
}

/// Every route with an endpoint in it, as (method, path template, body).
fn endpoint_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/v1/endpoints/{id}", None),
        (
            Method::PATCH,
            "/v1/endpoints/{id}",
            Some(json!({"description": "mine now"})),
        ),
        (Method::DELETE, "/v1/endpoints/{id}", None),
        (Method::GET, "/v1/endpoints/{id}/secret", None),
        (
            Method::POST,
            "/v1/endpoints/{id}/secret/rotate",
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/endpoints/{id}/enable",
            Some(json!({"replay": true})),
        ),
        (Method::GET, "/v1/endpoints/{id}/attempts", None),
        (Method::POST, "/v1/endpoints/{id}/test", Some(json!({}))),
        (
            Method::POST,
            "/v1/endpoints/{id}/deliveries/{delivery}/retry",
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/endpoints/{id}/replays",
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (Method::GET, "/v1/endpoints/{id}/replays", None),
    ]
}

#[tokio::test]
async fn one_accounts_key_cannot_see_or_change_another_accounts_anything() {
    let env = ApiEnv::start(&[3600], &[]).await;
    // B's endpoint, with a delivery in its log and a replay.
    let b_ep = env.endpoint(&env.b, "b-owned", Behavior::Healthy).await;
    let b_id = id_of(&b_ep);
    let (_, queued) = env
        .post(&format!("/v1/endpoints/{b_id}/test"), &env.b, json!({}))
        .await;
    let b_delivery = queued["delivery_id"].as_str().unwrap().to_owned();
    env.wait_log(&env.b, &b_id, "B's delivery", |l| !l.is_empty())
        .await;
    let (_, replay) = env
        .post(
            &format!("/v1/endpoints/{b_id}/replays"),
            &env.b,
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    let b_replay = replay["id"].as_str().expect("replay id").to_owned();
    let b_secret = env.secret_of(&env.b, &b_id).await;
    let received_before = env.receiver.received_by("b-owned").len();

    for (method, template, body) in endpoint_routes() {
        let path = template
            .replace("{id}", &b_id)
            .replace("{delivery}", &b_delivery);
        let (status, answer) = env
            .call(method.clone(), &path, Some(&env.a), body.clone())
            .await;
        assert_eq!(status, 404, "A's key on {method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found", "{method} {path}");
        // An unknown id answers exactly the same: B's ids cannot be probed.
        let unknown = template
            .replace("{id}", "ep_doesnotexist")
            .replace("{delivery}", &b_delivery);
        let (status2, answer2) = env
            .call(method.clone(), &unknown, Some(&env.a), body.clone())
            .await;
        assert_eq!((status2, &answer2), (404, &answer), "{method} {unknown}");
        // No key at all: 401 before anything else.
        assert_eq!(
            env.call(method.clone(), &path, None, body).await.0,
            401,
            "{method} {path}"
        );
    }
    let (status, _) = env.get(&format!("/v1/replays/{b_replay}"), &env.a).await;
    assert_eq!(status, 404, "A cannot read B's replay");
    let (status, list) = env
        .get(&format!("/v1/endpoints?account_id={ACCOUNT_B}"), &env.a)
        .await;
    assert_eq!(
        (status, list["error"]["field"].as_str()),
        (400, Some("account_id"))
    );
    let (_, own) = env.get("/v1/endpoints", &env.a).await;
    assert!(
        own["data"].as_array().unwrap().is_empty(),
        "A lists only its own"
    );

    // Nothing of B's changed: same version, same secret, no extra request, still there.
    let (status, after) = env.get(&format!("/v1/endpoints/{b_id}"), &env.b).await;
    assert_eq!(status, 200);
    assert_eq!(after["version"], b_ep["version"]);
    assert_eq!(after["description"], b_ep["description"]);
    assert_eq!(env.secret_of(&env.b, &b_id).await, b_secret);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.receiver.received_by("b-owned").len(), received_before);
    assert_eq!(
        env.get(&format!("/v1/replays/{b_replay}"), &env.b).await.0,
        200
    );

    // The operator sees and acts on every account.
    assert_eq!(
        env.get(&format!("/v1/endpoints/{b_id}"), &env.op).await.0,
        200
    );
    assert_eq!(
        env.get(&format!("/v1/endpoints/{b_id}/attempts"), &env.op)
            .await
            .0,
        200
    );
    assert_eq!(
        env.get(&format!("/v1/replays/{b_replay}"), &env.op).await.0,
        200
    );
    let (status, made) = env
        .post("/v1/endpoints", &env.op, json!({"url": env.receiver.endpoint("op-made", Behavior::Healthy), "account_id": ACCOUNT_B}))
        .await;
    assert_eq!(
        (status, made["account_id"].as_str()),
        (201, Some(ACCOUNT_B))
    );
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn keys_are_created_and_revoked_with_the_cli() {
    let env = ApiEnv::start(&[3600], &[]).await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(args)
            .env("HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS", common::bootstrap())
            .env("HOOKRELAY__TOPICS__API_KEYS", &env.config.topics.api_keys)
            .output()
            .expect("run hookrelay");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let printed = cli(&[
        "api-key",
        "create",
        "--account",
        "acct_cli",
        "--description",
        "ci",
    ]);
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {printed}"))
    };
    let (key_id, token) = (field("key id"), field("secret"));
    assert!(token.starts_with("hrk_"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, me) = env.get("/v1/me", &token).await;
        if status == 200 {
            assert_eq!(
                (me["scope"].as_str(), me["account_id"].as_str()),
                (Some("account"), Some("acct_cli"))
            );
            assert_eq!(me["key_id"], key_id.as_str());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new key never worked: {status} {me}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Only a digest is on the topic, never the token.
    let topic = env.config.topics.api_keys.clone();
    let records = tokio::task::spawn_blocking(move || common::read_all(&topic))
        .await
        .unwrap();
    assert!(records.iter().all(|m| {
        use rdkafka::Message;
        !String::from_utf8_lossy(m.payload().unwrap_or_default()).contains(&token[20..])
    }));
    cli(&["api-key", "revoke", &key_id]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.get("/v1/me", &token).await.0 != 401 {
        assert!(Instant::now() < deadline, "the revoked key still works");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_document_the_catalog_and_the_dashboard_are_served() {
    let env = ApiEnv::start(
        &[3600],
        &[(
            "HOOKRELAY__API__EGRESS_IPS",
            r#"["203.0.113.7", "198.51.100.0/28"]"#,
        )],
    )
    .await;
    let (status, doc) = env.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
    let (_, types) = env.get("/v1/event-types", &env.a).await;
    let names: Vec<&str> = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    for t in EventType::ALL {
        assert!(names.contains(&t.as_str()), "{t}");
    }
    assert!(types["data"][0]["schema"]["properties"]["data"].is_object());
    let (_, ips) = env.get("/v1/egress-ips", &env.a).await;
    assert_eq!(ips["ips"], json!(["203.0.113.7", "198.51.100.0/28"]));
    let (_, me) = env.get("/v1/me", &env.op).await;
    assert_eq!(me["scope"], "operator");
    for (path, kind) in [
        ("/dashboard", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
    ] {
        let response = env
            .http
            .get(format!("{}{path}", env.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        let text = response.text().await.unwrap();
        for remote in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "fetch('http",
            "fetch(\"http",
            "//cdn",
        ] {
            assert!(
                !text.contains(remote),
                "{path} loads something from elsewhere ({remote})"
            );
        }
    }
    assert!(
        env.app
            .metric("hookrelay_api_requests_total", "route=\"/v1/me\"")
            >= 1.0
    );
    env.app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_api_can_listen_on_an_address_of_its_own() {
    let env = ApiEnv::start(&[3600], &[("HOOKRELAY__API__LISTEN", "127.0.0.1:0")]).await;
    let api = env.app.api.expect("API address");
    assert_ne!(api, env.app.admin);
    assert_eq!(
        env.get("/v1/me", &env.a).await.0,
        200,
        "the API answers on its address"
    );
    let on_admin = env
        .http
        .get(format!("http://{}/v1/me", env.app.admin))
        .bearer_auth(&env.a)
        .send()
        .await
        .unwrap();
    assert_eq!(on_admin.status(), 404, "and not on the admin server's");
    let metrics = env
        .http
        .get(format!("http://{}/metrics", env.app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200, "/metrics stays on the admin server");
    env.app.stop().await.expect("clean stop");
}
