//! The admin HTTP server: Prometheus `/metrics`, `/healthz` (alive) and `/readyz`
//! (subscriptions caught up, consumer joined its group, producer healthy), and the routes
//! mounted once the service is up (the customer API and dashboard, see [`LateRoutes`]).
//!
//! The router is built in one function and bound in another, so routes are tested without
//! a socket.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::Registry;
use tokio::sync::watch;

use crate::lifecycle::Readiness;
use crate::telemetry::metrics::render;

#[derive(Clone)]
pub struct AdminState {
    pub registry: Registry,
    pub readiness: Arc<Readiness>,
    pub late: LateRoutes,
}

/// Routes that exist only once the parts they serve are up: the admin server answers
/// `/healthz` and `/readyz` from the first moment, the customer API only after the
/// subscriptions table caught up. Until [`LateRoutes::set`], their paths answer 503.
#[derive(Clone, Default)]
pub struct LateRoutes(Arc<OnceLock<Router>>);

impl LateRoutes {
    /// Nothing to mount later: what the admin server does not serve is a 404 at once.
    pub fn none() -> Self {
        let late = LateRoutes::default();
        late.set(Router::new());
        late
    }

    /// Mounts `router` (once; a second call is ignored).
    pub fn set(&self, router: Router) {
        let _ = self.0.set(router);
    }
}

pub fn router(state: AdminState) -> Router {
    let late = state.late.clone();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .fallback(move |request: Request| forward(late.clone(), request))
        .with_state(state)
}

async fn forward(late: LateRoutes, request: Request) -> axum::response::Response {
    use tower::ServiceExt as _;
    match late.0.get() {
        Some(router) => match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "starting\n",
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&state.registry),
    )
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let (ready, text) = state.readiness.report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, text)
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("binding the admin server to {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the admin server (port 0 picks a free port) and serves it until `shutdown` turns
/// true. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SocketAddr, AdminError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AdminError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AdminError::Bind { addr, source })?;
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn state() -> AdminState {
        AdminState {
            registry: Registry::new(),
            readiness: Arc::new(Readiness::default()),
            late: LateRoutes::default(),
        }
    }

    async fn get_status(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readyz_reports_each_check_until_all_pass() {
        let s = state();
        let (status, body) = get_status(router(s.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("subscriptions: not ready"), "{body}");
        s.readiness
            .subscriptions_ready
            .store(true, Ordering::Release);
        s.readiness.consumer_assigned.store(true, Ordering::Release);
        s.readiness.producer_healthy.store(true, Ordering::Release);
        s.readiness.brokers_reachable.store(true, Ordering::Release);
        let (status, _) = get_status(router(s.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = get_status(router(s), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn late_routes_answer_503_until_mounted() {
        let s = state();
        let (status, _) = get_status(router(s.clone()), "/v1/me").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        s.late
            .set(Router::new().route("/v1/me", get(|| async { "me" })));
        let (status, body) = get_status(router(s.clone()), "/v1/me").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "me"));
        let (status, _) = get_status(router(s), "/elsewhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the mounted router decides");
    }

    #[tokio::test]
    async fn metrics_are_served_in_text_format() {
        let s = state();
        let m = crate::telemetry::Metrics::new(&s.registry).expect("metrics");
        m.events_consumed.inc();
        let (status, body) = get_status(router(s), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("hookrelay_events_consumed_total 1"), "{body}");
    }
}
