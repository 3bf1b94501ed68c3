//! The customer API (`/v1`, JSON, described by the OpenAPI 3.1 document at
//! `/v1/openapi.json`) and the dashboard page, served by the admin server or on an address
//! of their own. Kafka-native like the rest: every write is a record on a topic, every read
//! comes from a table this instance materializes.
//!
//! - [`auth`]: bearer API keys (records on `webhook-api-keys`), scopes, per-key rate limit.
//! - [`endpoints`]: endpoint CRUD, secrets and their rotation, re-enabling; writes go to
//!   `webhook-subscriptions` with the next version and are answered once applied here.
//! - [`deliveries`]: the delivery log (`webhook-attempts` materialized by [`store`] and
//!   [`follower`], keyed per [`log`]), "send test event" and "retry now", both written to the
//!   requests topic the delivery core sends from.
//! - [`replay`]: re-sending an endpoint's dead letters in a time range, with progress.
//! - [`catalog`]: event types with their JSON Schemas, egress IPs, the caller's own key.
//! - [`dashboard`]: the page, its script and style, embedded in the binary.
//! - [`keys`]: creating and revoking keys (`hookrelay api-key`).

pub mod auth;
pub mod catalog;
pub mod dashboard;
pub mod deliveries;
pub mod endpoints;
pub mod error;
pub mod extract;
pub mod follower;
pub mod keys;
pub mod log;
pub mod model;
pub mod replay;
pub mod store;

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::dispatch::ssrf::SsrfGuard;
use crate::subscriptions::SubscriptionTable;
use crate::telemetry::Metrics;

pub use follower::ApiTable;

use self::auth::RateLimiter;
use self::error::ApiError;
use self::replay::Replays;

/// What the handlers need from the configuration.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub subscriptions_topic: String,
    pub requests_topic: String,
    pub dead_letter_topic: String,
    pub https_required: bool,
    pub allowed_url_hosts: Vec<String>,
    pub rotation_overlap: Duration,
    pub max_rotation_overlap: Duration,
    pub max_body_bytes: usize,
    pub replay_max: u32,
    pub replays_running_max: usize,
    pub egress_ips: Vec<String>,
    pub dashboard: bool,
    /// How long a write may take to come back through this instance's table before the
    /// request is answered 503 (the write may still apply).
    pub apply_timeout: Duration,
}

impl ApiSettings {
    pub fn from_config(config: &Config) -> Self {
        let a = &config.api;
        ApiSettings {
            subscriptions_topic: config.topics.subscriptions.clone(),
            requests_topic: config.topics.requests.clone(),
            dead_letter_topic: config.topics.dead_letter.clone(),
            https_required: a.https_required,
            allowed_url_hosts: a.allowed_url_hosts.clone(),
            rotation_overlap: a.secret_rotation_overlap,
            max_rotation_overlap: a.max_secret_rotation_overlap,
            max_body_bytes: a.max_body_bytes,
            replay_max: a.replay_max,
            replays_running_max: a.replays_running_max,
            egress_ips: a.egress_ips.clone(),
            dashboard: a.dashboard,
            apply_timeout: Duration::from_secs(15),
        }
    }
}

/// Everything a handler reaches. Cheap to clone.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

pub struct Inner {
    pub settings: ApiSettings,
    pub table: Arc<SubscriptionTable>,
    pub api: Arc<ApiTable>,
    /// The durable (idempotent, acks=all) producer: endpoint changes and requests.
    pub producer: FutureProducer,
    /// Brokers and security settings, for the consumers replays create.
    pub client: ClientConfig,
    pub guard: SsrfGuard,
    pub limiter: RateLimiter,
    pub replays: Replays,
    pub metrics: Metrics,
}

impl Deref for ApiState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The parts an [`ApiState`] is built from.
pub struct ApiParts {
    pub config: Config,
    pub table: Arc<SubscriptionTable>,
    pub api: Arc<ApiTable>,
    pub producer: FutureProducer,
    pub metrics: Metrics,
}

impl ApiState {
    pub fn new(parts: ApiParts) -> Self {
        let ApiParts {
            config,
            table,
            api,
            producer,
            metrics,
        } = parts;
        ApiState(Arc::new(Inner {
            settings: ApiSettings::from_config(&config),
            table,
            api,
            producer,
            client: crate::kafka::client_config(&config.kafka),
            guard: SsrfGuard::new(config.delivery.ssrf_allowlist.clone()),
            limiter: RateLimiter::new(config.api.rate_limit_per_key, config.api.rate_limit_burst),
            replays: Replays::default(),
            metrics,
        }))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookrelay customer API",
        description = "Manage webhook endpoints, their signing secrets and deliveries: the delivery log, test events, retries, dead-letter replays and re-enabling. Authenticate with `Authorization: Bearer hrk_…` (an API key scoped to one account, or an operator key). Errors are `{\"error\":{\"code\",\"message\",\"field\"}}`.",
        license(name = "Apache-2.0")
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "endpoints", description = "Webhook endpoints and their secrets"),
        (name = "deliveries", description = "The delivery log, test events, retries and replays"),
        (name = "catalog", description = "Event types, egress IPs and the caller's key"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hrk_…")
                    .build(),
            ),
        );
    }
}

/// The customer API of a running instance.
pub struct RunningApi {
    pub table: Arc<ApiTable>,
    pub follower: tokio::task::JoinHandle<()>,
    pub router: Router,
}

/// Opens the API's store, follows the attempts and keys topics into it, waits until the keys
/// are loaded, and builds the router. Called by [`crate::app::run`] once the subscriptions
/// table is ready.
pub async fn start(
    config: &Config,
    table: Arc<SubscriptionTable>,
    producer: FutureProducer,
    metrics: Metrics,
) -> anyhow::Result<RunningApi> {
    use anyhow::Context as _;
    let data_dir = config.api_data_dir();
    let store = store::ApiStore::open(&data_dir, config.api.attempts_retention)
        .with_context(|| format!("opening the API store in {}", data_dir.display()))?;
    let (api, follower) = ApiTable::start(
        crate::kafka::client_config(&config.kafka),
        &config.topics.attempts,
        &config.topics.api_keys,
        store,
    )
    .await
    .context("following the attempts and API keys topics")?;
    api.wait_keys_ready()
        .await
        .context("loading the API keys")?;
    let state = ApiState::new(ApiParts {
        config: config.clone(),
        table,
        api: Arc::clone(&api),
        producer,
        metrics,
    });
    Ok(RunningApi {
        table: api,
        follower,
        router: router(state),
    })
}

/// The `/v1` routes with their OpenAPI document.
fn api_routes() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(endpoints::list, endpoints::create))
        .routes(routes!(
            endpoints::get,
            endpoints::update,
            endpoints::delete
        ))
        .routes(routes!(endpoints::secret))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(endpoints::enable))
        .routes(routes!(deliveries::attempts))
        .routes(routes!(deliveries::send_test))
        .routes(routes!(deliveries::retry))
        .routes(routes!(replay::start, replay::list))
        .routes(routes!(replay::get))
        .routes(routes!(catalog::event_types))
        .routes(routes!(catalog::egress_ips))
        .routes(routes!(catalog::me))
        .split_for_parts()
}

/// The OpenAPI document, as served at `/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// The API and dashboard router, ready to merge into the admin router (or serve alone).
pub fn router(state: ApiState) -> Router {
    let (routes, doc) = api_routes();
    let doc = Arc::new(doc.to_pretty_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document does not serialize");
        "{}".to_owned()
    }));
    let dashboard = state.settings.dashboard;
    let limit = state.settings.max_body_bytes;
    let mut router = routes
        .route(
            "/v1/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { ([(header::CONTENT_TYPE, "application/json")], (*doc).clone()) }
            }),
        )
        .route("/v1", get(not_found))
        .route(
            "/v1/{*rest}",
            get(not_found)
                .post(not_found)
                .patch(not_found)
                .delete(not_found)
                .put(not_found),
        );
    if dashboard {
        router = router.merge(dashboard::routes());
    }
    router
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound { what: "route" }
}

/// Counts every API request by route template and status, and times it.
async fn observe(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .api_request(&route, response.status(), started.elapsed());
    response
}

/// The status a handler returns for a created resource.
pub(crate) fn created<T: serde::Serialize>(location: String, body: T) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response()
}

/// The RFC 3339 form of a Unix ms time, as every API time is shown.
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    crate::event::format_timestamp(t)
}

/// Reads an RFC 3339 time given in `field` as Unix ms.
pub(crate) fn parse_time(field: &'static str, text: &str) -> Result<i64, ApiError> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::bad(
                field,
                format!("{field}: not an RFC 3339 time like 2026-03-15T14:30:00Z"),
            )
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::bad(field, format!("{field}: out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_describes_every_route() {
        let doc: serde_json::Value =
            serde_json::from_str(&openapi().to_pretty_json().unwrap()).unwrap();
        if let Ok(path) = std::env::var("HOOKRELAY_WRITE_OPENAPI") {
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        }
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for p in [
            "/v1/endpoints",
            "/v1/endpoints/{id}",
            "/v1/endpoints/{id}/secret",
            "/v1/endpoints/{id}/secret/rotate",
            "/v1/endpoints/{id}/enable",
            "/v1/endpoints/{id}/attempts",
            "/v1/endpoints/{id}/test",
            "/v1/endpoints/{id}/deliveries/{delivery_id}/retry",
            "/v1/endpoints/{id}/replays",
            "/v1/replays/{replay_id}",
            "/v1/event-types",
            "/v1/egress-ips",
            "/v1/me",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                for status in ["400", "401", "404", "429"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} documents no {status}"
                    );
                }
                assert_eq!(
                    op["security"][0]["bearer"],
                    serde_json::json!([]),
                    "{method} {path}"
                );
                assert!(
                    ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                    "{method} {path}: operationId is not unique"
                );
            }
        }
    }
}
