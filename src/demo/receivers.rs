//! The sample receivers on loopback: healthy, flaky, slow and down, each verifying every
//! signature it gets and counting requests and events.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::task::JoinHandle;

use crate::ids::Secret;
use crate::sign::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, generate_secret, verify};

use super::common::{DemoError, RECEIVER_PATH, SLOW_ANSWER};

/// How a sample receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 200 at once.
    Healthy,
    /// 500 to every other request.
    Flaky,
    /// 200 after [`SLOW_ANSWER`].
    Slow,
    /// Nothing listens at its address.
    Down,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Healthy => "healthy",
            Role::Flaky => "flaky",
            Role::Slow => "slow",
            Role::Down => "down",
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Role::Healthy => "answers 200 at once",
            Role::Flaky => "answers 500 to every other request",
            Role::Slow => "answers 200 after 1.5 s",
            Role::Down => "nothing listens there",
        }
    }
}

/// What a receiver saw. Counted by the receiver itself, independently of hookrelay's metrics.
#[derive(Debug, Default)]
pub(super) struct ReceiverStats {
    pub(super) requests: AtomicU64,
    /// Events in the requests it accepted (a batch counts its events).
    pub(super) events: AtomicU64,
    /// Requests whose Standard Webhooks signature did not verify (answered 401).
    pub(super) bad_signatures: AtomicU64,
    /// Requests it failed on purpose.
    pub(super) failed: AtomicU64,
}

pub(super) struct ReceiverState {
    pub(super) role: Role,
    pub(super) secret: Secret,
    pub(super) stats: ReceiverStats,
}

pub(super) struct Receiver {
    pub(super) role: Role,
    /// The URL endpoints point at.
    pub(super) url: url::Url,
    pub(super) secret: Secret,
    pub(super) state: Option<Arc<ReceiverState>>,
    pub(super) task: JoinHandle<()>,
}

pub(super) struct Receivers {
    pub(super) healthy: Receiver,
    pub(super) flaky: Receiver,
    pub(super) slow: Receiver,
    pub(super) down: Receiver,
}

impl Receivers {
    pub(super) fn all(&self) -> [&Receiver; 4] {
        [&self.healthy, &self.flaky, &self.slow, &self.down]
    }

    pub(super) fn get(&self, role: Role) -> &Receiver {
        match role {
            Role::Healthy => &self.healthy,
            Role::Flaky => &self.flaky,
            Role::Slow => &self.slow,
            Role::Down => &self.down,
        }
    }
}

pub(super) async fn start_receivers() -> Result<Receivers, DemoError> {
    Ok(Receivers {
        healthy: start_receiver(Role::Healthy).await?,
        flaky: start_receiver(Role::Flaky).await?,
        slow: start_receiver(Role::Slow).await?,
        down: down_receiver()?,
    })
}

pub(super) fn receiver_url(addr: SocketAddr) -> Result<url::Url, DemoError> {
    url::Url::parse(&format!("http://{addr}{RECEIVER_PATH}")).map_err(DemoError::ReceiverUrl)
}

pub(super) async fn start_receiver(role: Role) -> Result<Receiver, DemoError> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(DemoError::Receiver)?;
    let addr = listener.local_addr().map_err(DemoError::Receiver)?;
    let secret = generate_secret();
    let state = Arc::new(ReceiverState {
        role,
        secret: secret.clone(),
        stats: ReceiverStats::default(),
    });
    let app = Router::new()
        .route(RECEIVER_PATH, post(receive))
        .with_state(state.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "a demo receiver stopped");
        }
    });
    Ok(Receiver {
        role,
        url: receiver_url(addr)?,
        secret,
        state: Some(state),
        task,
    })
}

/// A URL on loopback where nothing listens: a port the OS just handed out and took back.
pub(super) fn down_receiver() -> Result<Receiver, DemoError> {
    let addr = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(DemoError::Receiver)?;
    Ok(Receiver {
        role: Role::Down,
        url: receiver_url(addr)?,
        secret: generate_secret(),
        state: None,
        task: tokio::spawn(async {}),
    })
}

/// One request to a sample receiver: verify the signature as a real receiver must, then
/// answer as its role says.
pub(super) async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let stats = &state.stats;
    let n = stats.requests.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let now = unix_secs();
    if verify(
        &state.secret,
        header(WEBHOOK_ID),
        header(WEBHOOK_TIMESTAMP),
        header(WEBHOOK_SIGNATURE),
        &body,
        now,
    )
    .is_err()
    {
        stats.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    match state.role {
        // Every other request, not at random: random failures would now and then string
        // ten together and trip the circuit breaker, which is the down receiver's part.
        Role::Flaky if n % 2 == 1 => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        Role::Slow => tokio::time::sleep(SLOW_ANSWER).await,
        _ => {}
    }
    stats
        .events
        .fetch_add(events_in_body(&body), Ordering::Relaxed);
    StatusCode::OK
}

/// Events in a webhook body: the length of `data.events` for a batch, else one.
pub fn events_in_body(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    if value["type"] == "batch" {
        value["data"]["events"]
            .as_array()
            .map_or(0, |events| events.len() as u64)
    } else {
        1
    }
}

pub(super) fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_bodies_count_their_events() {
        assert_eq!(
            events_in_body(br#"{"id":"evt_1","type":"license.created"}"#),
            1
        );
        assert_eq!(
            events_in_body(
                br#"{"id":"bat_1","type":"batch","data":{"events":[{"id":"evt_1"},{"id":"evt_2"}]}}"#
            ),
            2
        );
        assert_eq!(events_in_body(b"not json"), 0);
    }
}
