//! A webhook receiver for the tests: an HTTP server on loopback that records every request
//! (headers and raw body) and answers per endpoint path as the test scripts it: healthy,
//! failing N times, answering a fixed status, or hanging past the client's timeout.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// How one endpoint path answers.
#[derive(Debug, Clone)]
pub enum Behavior {
    Healthy,
    /// Answers `status` to the first `times` requests, then 200.
    FailTimes {
        times: u32,
        status: u16,
    },
    /// Always answers this status.
    Status(u16),
    /// Never answers (until the test ends).
    Hang,
    /// Answers these statuses to successive requests, then 200.
    Script(Vec<u16>),
    /// Answers `status` after `delay` (a slow endpoint, healthy with 200).
    Slow {
        delay: Duration,
        status: u16,
    },
    /// Answers the `nth` request (from 1) with 200 after `delay`, every other one after
    /// `others`.
    StallOnce {
        nth: u32,
        delay: Duration,
        others: Duration,
    },
    /// Answers `status` with this `Retry-After` value to the first `times` requests, then 200.
    RetryAfter {
        status: u16,
        value: String,
        times: u32,
    },
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
    pub x_signature_sha256: String,
    pub user_agent: String,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    /// The event ids in this request: one for a single event, several for a batch.
    pub fn event_ids(&self) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("JSON body");
        if v["type"] == "batch" {
            v["data"]["events"]
                .as_array()
                .expect("events array")
                .iter()
                .map(|e| e["id"].as_str().expect("id").to_owned())
                .collect()
        } else {
            vec![v["id"].as_str().expect("id").to_owned()]
        }
    }
}

#[derive(Default)]
struct Inner {
    behaviors: HashMap<String, Behavior>,
    counts: HashMap<String, u32>,
    received: Vec<Received>,
    /// (event id, endpoint name) -> the webhook-ids it came with, kept as requests arrive
    /// so waiting on a large test stays cheap.
    pairs: HashMap<(String, String), Vec<String>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/ep/{name}", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, inner }
    }

    /// The URL of endpoint `name` on this receiver, answering as `behavior`.
    pub fn endpoint(&self, name: &str, behavior: Behavior) -> String {
        self.inner
            .lock()
            .expect("lock")
            .behaviors
            .insert(name.to_owned(), behavior);
        format!("http://{}/ep/{name}", self.addr)
    }

    /// Every (event id, endpoint name) pair received, with the webhook-id of each arrival.
    pub fn pairs(&self) -> HashMap<(String, String), Vec<String>> {
        self.inner.lock().expect("lock").pairs.clone()
    }

    /// Waits until every pair in `expected` has arrived, or panics after `timeout`.
    pub async fn wait_for_pairs(
        &self,
        timeout: Duration,
        expected: &std::collections::BTreeSet<(String, String)>,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = {
                let inner = self.inner.lock().expect("lock");
                expected
                    .iter()
                    .filter(|p| !inner.pairs.contains_key(*p))
                    .count()
            };
            if missing == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out: {missing} of {} pairs missing",
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("lock").received.clone()
    }

    pub fn received_by(&self, name: &str) -> Vec<Received> {
        let path = format!("/ep/{name}");
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `pred` holds for what was received, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.inner.lock().expect("lock").received) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let behavior = {
        let mut inner = inner.lock().expect("lock");
        let webhook_id = header("webhook-id");
        let received = Received {
            path: format!("/ep/{name}"),
            webhook_id: webhook_id.clone(),
            webhook_timestamp: header("webhook-timestamp"),
            webhook_signature: header("webhook-signature"),
            x_signature_sha256: header("x-signature-sha256"),
            user_agent: header("user-agent"),
            body,
            at: Instant::now(),
        };
        for id in received.event_ids() {
            inner
                .pairs
                .entry((id, name.clone()))
                .or_default()
                .push(webhook_id.clone());
        }
        inner.received.push(received);
        let count = inner.counts.entry(name.clone()).or_default();
        *count += 1;
        let n = *count;
        match inner
            .behaviors
            .get(&name)
            .cloned()
            .unwrap_or(Behavior::Healthy)
        {
            Behavior::FailTimes { times, status } if n <= times => Behavior::Status(status),
            Behavior::FailTimes { .. } => Behavior::Healthy,
            Behavior::RetryAfter { times, .. } if n > times => Behavior::Healthy,
            Behavior::StallOnce { nth, delay, .. } if n == nth => {
                Behavior::Slow { delay, status: 200 }
            }
            Behavior::StallOnce { others, .. } => Behavior::Slow {
                delay: others,
                status: 200,
            },
            Behavior::Script(statuses) => statuses
                .get(n as usize - 1)
                .map_or(Behavior::Healthy, |s| Behavior::Status(*s)),
            other => other,
        }
    };
    let status = |s: u16| StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match behavior {
        Behavior::Healthy
        | Behavior::FailTimes { .. }
        | Behavior::Script(_)
        | Behavior::StallOnce { .. } => StatusCode::OK.into_response(),
        Behavior::Status(s) => status(s).into_response(),
        Behavior::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Behavior::Slow { delay, status: s } => {
            tokio::time::sleep(delay).await;
            status(s).into_response()
        }
        Behavior::RetryAfter {
            status: s, value, ..
        } => (status(s), [("retry-after", value)]).into_response(),
    }
}
