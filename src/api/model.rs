//! The API's request and response bodies and query parameters. Their Rust definitions are
//! the OpenAPI document's schemas (derived with utoipa), so the document cannot drift from
//! what the handlers read and write.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Reads a present field as `Some(value)` (including `Some(None)` for `null`), so a PATCH
/// can tell "set to null" from "left out" (`None`, via `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn yes() -> bool {
    true
}

/// Delivery state of an endpoint, combining its owner's switch and the circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointState {
    /// Receives events.
    Active,
    /// Its owner switched it off (`enabled: false`): events meanwhile are dropped.
    Paused,
    /// The circuit breaker disabled it: events meanwhile are dead-lettered, to be replayed
    /// after re-enabling.
    Disabled,
}

/// Why and when the circuit breaker disabled an endpoint.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisabledView {
    /// `consecutive_failures`, `retries_exhausted` or `endpoint_gone`.
    pub reason: Option<String>,
    /// RFC 3339.
    pub at: String,
    /// The HTTP status of the failure that disabled it, when a response arrived.
    pub last_status: Option<i32>,
    /// A description of that failure.
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BatchingView {
    /// False: every event goes in a request of its own.
    pub enabled: bool,
    /// Null: the service default.
    pub max_events: Option<u32>,
    pub max_bytes: Option<u32>,
    pub linger_ms: Option<u32>,
}

/// An endpoint. Its signing secret is not shown here: see `GET /v1/endpoints/{id}/secret`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// `ep_…`
    pub id: String,
    pub account_id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered here; empty means every type.
    pub event_types: Vec<String>,
    /// The owner's switch; false pauses deliveries.
    pub enabled: bool,
    pub state: EndpointState,
    /// Set while the circuit breaker holds the endpoint disabled.
    pub disabled: Option<DisabledView>,
    /// Requests per second; null: the service default.
    pub rate_limit_per_sec: Option<u32>,
    /// Requests at once; null: the service default.
    pub max_concurrency: Option<u32>,
    pub batching: BatchingView,
    /// Who is e-mailed when the endpoint is disabled; null: the account's default contact, or
    /// the operator's address.
    pub contact_email: Option<String>,
    /// Grows with every change; send it back in an update to refuse overwriting a change
    /// you have not seen (409).
    pub version: i64,
    /// RFC 3339.
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// Batching options; fields left out keep their current value (or the default).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchingInput {
    pub enabled: Option<bool>,
    #[schema(minimum = 1, maximum = 10000)]
    pub max_events: Option<u32>,
    #[schema(minimum = 1024, maximum = 10485760)]
    pub max_bytes: Option<u32>,
    #[schema(maximum = 60000)]
    pub linger_ms: Option<u32>,
}

/// A new endpoint.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// Where events are posted: `https://…` (plain `http` only where the operator allows it).
    #[schema(max_length = 2048)]
    pub url: String,
    /// Only with an operator key, which must name the account; an account key creates in
    /// its own account.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// Event types to receive (see `GET /v1/event-types`); empty or left out: all.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub event_types: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub batching: Option<BatchingInput>,
    /// Who is e-mailed when the endpoint is disabled (one address).
    #[serde(default)]
    #[schema(max_length = 254)]
    pub contact_email: Option<String>,
    /// A signing secret to use (`whsec_` + base64 of 24 to 64 bytes); left out, one is
    /// generated.
    #[serde(default)]
    pub secret: Option<String>,
}

/// Changes to an endpoint; fields left out stay as they are, `null` clears a nullable one.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    /// The version you last read: the update is refused (409) if the endpoint changed since.
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub description: Option<Option<String>>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub event_types: Option<Vec<String>>,
    /// False pauses deliveries (events meanwhile are dropped); true resumes them.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub max_concurrency: Option<Option<u32>>,
    #[serde(default)]
    pub batching: Option<BatchingInput>,
    /// Who is e-mailed when the endpoint is disabled; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 254)]
    pub contact_email: Option<Option<String>>,
}

/// A page of endpoints, by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListEndpointsQuery {
    /// Required with an operator key; an account key lists its own account.
    pub account_id: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A signing secret that still signs during a rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatingSecret {
    pub secret: String,
    /// RFC 3339: when it stops signing.
    pub expires_at: String,
}

/// The endpoint's signing secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    /// The current secret: `whsec_` + base64. Verify with it (and, until they expire, with
    /// the rotating ones).
    pub secret: String,
    /// Earlier secrets that still sign, newest first.
    pub rotating: Vec<RotatingSecret>,
}

/// A secret rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the current secret keeps signing next to the new one, in seconds (default:
    /// the service's, 24 h unless configured; 0 stops it at once).
    #[schema(maximum = 2592000)]
    pub overlap_secs: Option<u64>,
    /// The new secret (`whsec_` + base64 of 24 to 64 bytes); left out, one is generated.
    pub secret: Option<String>,
}

/// Re-enabling a disabled or paused endpoint.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableEndpoint {
    /// Also replay what was dead-lettered while the circuit breaker held it disabled.
    #[serde(default)]
    pub replay: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnableResult {
    pub endpoint: EndpointView,
    /// The replay started, when one was asked for and there was a disabled period.
    pub replay: Option<ReplayView>,
}

/// "Send test event" takes no options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEventRequest {}

/// A delivery queued for sending through the normal path (signing, limits, retries).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedDelivery {
    /// The `webhook-id` it is sent with; the delivery log shows its attempts.
    pub delivery_id: String,
    /// The event in it (for a test event, `evt_test_…`).
    pub event_ids: Vec<String>,
    /// The attempt number it will be.
    pub attempt: i32,
}

/// One attempt (or decision) of the delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// The `webhook-id`: `msg_…` for one event, `bat_…` for a batch.
    pub delivery_id: String,
    pub event_ids: Vec<String>,
    pub event_types: Vec<String>,
    pub batch: bool,
    /// 1 = first attempt.
    pub attempt: i32,
    /// RFC 3339: when the attempt finished.
    pub at: String,
    pub at_ms: i64,
    /// `delivered`, `retry_scheduled`, `dead_lettered` or `dropped`.
    pub outcome: String,
    /// The HTTP status; null when no response arrived.
    pub status: Option<i32>,
    pub latency_ms: i64,
    /// What went wrong, in words; null on success.
    pub error: Option<String>,
    /// `timeout`, `connection_refused`, `connection_reset`, `connection_failed`, `dns`,
    /// `tls`, `refused_by_policy`, `http_3xx`, `http_429`, `http_4xx`, `http_5xx`,
    /// `http_other`, `invalid_response`, `signing` or `other`; null on success.
    pub error_class: Option<String>,
    /// Why it was dead-lettered, when it was.
    pub dead_letter_reason: Option<String>,
    /// RFC 3339: when the next automatic attempt is due, when one was scheduled.
    pub next_attempt_at: Option<String>,
    /// The retry tier the attempt was made from (e.g. `5m`); null for a first attempt.
    pub tier: Option<String>,
    /// The start of the response body.
    pub response_snippet: Option<String>,
    /// The exact body sent; null when nothing was sent.
    pub request_body: Option<String>,
}

/// A page of the delivery log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    pub data: Vec<AttemptView>,
    /// Pass as `cursor` for the next page; null when there is no more.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// `delivered`, `retry_scheduled`, `dead_lettered` or `dropped`.
    pub outcome: Option<String>,
    /// Only attempts carrying an event of this type.
    pub event_type: Option<String>,
    /// Only attempts of this delivery.
    pub delivery_id: Option<String>,
    /// RFC 3339: only attempts at or after this time.
    pub since: Option<String>,
    /// RFC 3339: only attempts at or before this time.
    pub until: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A replay of dead letters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// RFC 3339: replay dead letters written at or after this time.
    pub since: String,
    /// RFC 3339: ... and at or before this time (default: now).
    #[serde(default)]
    pub until: Option<String>,
    /// Only dead letters with this reason (`retries_exhausted`, `endpoint_disabled`, …).
    #[serde(default)]
    pub reason: Option<String>,
    /// The most deliveries to re-send (default and ceiling: the service's `replay_max`).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max: Option<u32>,
}

/// Where a replay is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayState {
    Running,
    Done,
    Failed,
}

/// A replay and its progress. Kept by the instance that runs it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReplayView {
    /// `rpl_…`
    pub id: String,
    pub endpoint_id: String,
    pub state: ReplayState,
    pub since: String,
    pub until: String,
    pub reason: Option<String>,
    pub max: u32,
    /// Dead-letter records read so far (every endpoint's).
    pub scanned: u64,
    /// This endpoint's dead letters in range (and of the reason, if given).
    pub matched: u64,
    /// Re-sent (written to the requests topic, keeping their `webhook-id`).
    pub replayed: u64,
    /// Dead letters of a delivery already re-sent by this replay, skipped.
    pub duplicates: u64,
    /// True when it stopped at `max`; continue with `since` = `resume_since`.
    pub capped: bool,
    pub resume_since: Option<String>,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayList {
    pub data: Vec<ReplayView>,
}

/// One event type customers can receive.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    #[serde(rename = "type")]
    pub event_type: String,
    pub description: String,
    /// What a receiver typically does with it.
    pub customer_action: String,
    /// False for types that cannot be subscribed to (`webhook.test` goes to an endpoint
    /// only when asked for).
    pub subscribable: bool,
    /// JSON Schema (2020-12) of the whole body of this type.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub data: Vec<EventTypeView>,
}

/// Where deliveries come from.
#[derive(Debug, Serialize, ToSchema)]
pub struct EgressIps {
    /// Addresses and networks (CIDR) deliveries are sent from; allowlist them in your
    /// firewall. Empty when the operator has not published any.
    pub ips: Vec<String>,
}

/// The key a request was made with.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub key_id: String,
    /// `account` or `operator`.
    pub scope: String,
    /// The account of an account key.
    pub account_id: Option<String>,
}
