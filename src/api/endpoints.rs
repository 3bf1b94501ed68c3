//! Endpoint routes: create, read, list, update, delete, the signing secret and its rotation,
//! and re-enabling. Every change is a record on `webhook-subscriptions` with the next
//! version; the answer is sent once this instance's table has applied it, and if another
//! writer's record of that version was applied first, the change lost: 409.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use rdkafka::producer::FutureRecord;
use url::Url;
use utoipa::IntoResponses;

use crate::delivery::now_ms;
use crate::event::EventType;
use crate::ids::{AccountId, EndpointId, Secret};
use crate::subscriptions::{
    Endpoint, EndpointError, EndpointSecret, Published, SubscriptionError, publish, publish_status,
    status_key,
};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery};
use super::model::{
    BatchingInput, BatchingView, CreateEndpoint, DisabledView, EnableEndpoint, EnableResult,
    EndpointList, EndpointState, EndpointView, ListEndpointsQuery, RotateSecret, RotatingSecret,
    SecretView, UpdateEndpoint,
};
use super::{ApiState, created, rfc3339};

/// Secrets an endpoint keeps at most (the current one and those still signing).
const MAX_SECRETS: usize = 5;
/// Standard Webhooks: secrets of 24 to 64 bytes.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
const MAX_URL_LEN: usize = 2048;
const MAX_DESCRIPTION_LEN: usize = 1024;
const MAX_EVENT_TYPES: usize = 50;
const MAX_ACCOUNT_LEN: usize = 255;
/// How long resolving an endpoint's host may take at creation.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Every error answer the API documents. Listed on each route, so a client (and the
/// fuzzer that checks responses against the document) knows every status it may see.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ApiErrors {
    /// The request is malformed or a value is not acceptable; `field` names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No valid API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Unknown, or another account's.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The change lost to a concurrent one, or does not apply to the current state.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is too large.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The key's request rate (or the running replays) is at its limit; see `Retry-After`.
    #[response(status = 429)]
    TooMany(ErrorBody),
    /// Not ready yet, or Kafka did not confirm a write in time; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// An endpoint as the API shows it.
pub fn view(e: &Endpoint) -> EndpointView {
    let disabled = e
        .status
        .as_ref()
        .filter(|s| !s.enabled)
        .map(|s| DisabledView {
            reason: s.reason.clone(),
            at: rfc3339(s.at_ms),
            last_status: s.last_status,
            last_error: s.last_error.clone(),
        });
    let state = if disabled.is_some() {
        EndpointState::Disabled
    } else if !e.enabled {
        EndpointState::Paused
    } else {
        EndpointState::Active
    };
    EndpointView {
        id: e.id.to_string(),
        account_id: e.account_id.to_string(),
        url: e.url.to_string(),
        description: e.description.clone(),
        event_types: e.event_types.clone(),
        enabled: e.enabled,
        state,
        disabled,
        rate_limit_per_sec: e.rate_limit_per_sec.map(NonZeroU32::get),
        max_concurrency: e.max_concurrency.map(NonZeroU32::get),
        batching: BatchingView {
            enabled: e.batching.enabled,
            max_events: e.batching.max_events.map(NonZeroU32::get),
            max_bytes: e.batching.max_bytes.map(NonZeroU32::get),
            linger_ms: e.batching.linger_ms,
        },
        contact_email: e.contact_email.clone(),
        version: e.version,
        created_at: e.created_at_ms.map(rfc3339),
        updated_at: e.updated_at_ms.map(rfc3339),
    }
}

/// The endpoint `id` if it exists and the caller may see it; 404 otherwise (the same
/// answer for both, so ids of other accounts cannot be probed).
pub fn lookup(state: &ApiState, caller: &Caller, id: &str) -> Result<Endpoint, ApiError> {
    let not_found = ApiError::NotFound { what: "endpoint" };
    let id = EndpointId::from(id);
    if !id.is_well_formed() {
        return Err(not_found);
    }
    match state.table.get(&id).map_err(ApiError::internal)? {
        Some(endpoint) if caller.may_access(&endpoint) => Ok(endpoint),
        _ => Err(not_found),
    }
}

/// 409 unless the endpoint takes deliveries now (sending to it would only dead-letter or
/// drop them).
pub fn require_deliverable(endpoint: &Endpoint) -> Result<(), ApiError> {
    if endpoint.breaker_disabled() {
        return Err(ApiError::conflict(
            "the endpoint is disabled by the circuit breaker; re-enable it first (POST /v1/endpoints/{id}/enable)",
        ));
    }
    if !endpoint.enabled {
        return Err(ApiError::conflict(
            "the endpoint is paused; resume it first (PATCH with \"enabled\": true)",
        ));
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/v1/endpoints",
    operation_id = "list_endpoints",
    tag = "endpoints",
    summary = "List an account's endpoints",
    params(ListEndpointsQuery),
    responses((status = 200, description = "A page of endpoints, by id", body = EndpointList), ApiErrors),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListEndpointsQuery>,
) -> Result<Json<EndpointList>, ApiError> {
    let account = caller.account_for(query.account_id.as_deref(), "account_id")?;
    let limit = match query.limit {
        None => 50,
        Some(n @ 1..=200) => n as usize,
        Some(_) => return Err(ApiError::bad("limit", "limit: must be 1 to 200")),
    };
    let after = match &query.cursor {
        None => None,
        Some(c) => Some(decode_id_cursor(c)?),
    };
    let all = state
        .table
        .endpoints_of_account(&account)
        .map_err(ApiError::internal)?;
    let mut page: Vec<&Endpoint> = all
        .iter()
        .filter(|e| after.as_deref().is_none_or(|a| e.id.as_str() > a))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next_cursor = more
        .then(|| page.last().map(|e| encode_id_cursor(e.id.as_str())))
        .flatten();
    Ok(Json(EndpointList {
        data: page.into_iter().map(view).collect(),
        next_cursor,
    }))
}

fn encode_id_cursor(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_id_cursor(cursor: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad("cursor", "cursor: not a cursor this API returned"))
}

#[utoipa::path(
    post,
    path = "/v1/endpoints",
    operation_id = "create_endpoint",
    tag = "endpoints",
    summary = "Create an endpoint",
    description = "Checks the URL (https unless the operator allows http; the SSRF guard refuses loopback, private and metadata addresses), generates a signing secret unless one is given, and answers once the endpoint is in this instance's table, so a GET right after sees it.",
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Created", body = EndpointView,
            headers(("Location" = String, description = "The endpoint's URL in this API"))),
        ApiErrors
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<Response, ApiError> {
    let account = caller.account_for(body.account_id.as_deref(), "account_id")?;
    check_account(&account)?;
    let url = check_url(&state, &body.url, "url").await?;
    let secret = match &body.secret {
        Some(s) => parse_secret(s, "secret")?,
        None => crate::sign::generate_secret(),
    };
    let id = EndpointId::new(format!("ep_{}", hex::encode(rand::random::<[u8; 12]>())));
    let mut endpoint = Endpoint::new(id, account, url, secret);
    endpoint.description = check_description(body.description)?;
    endpoint.event_types = check_event_types(body.event_types, "event_types")?;
    endpoint.enabled = body.enabled;
    endpoint.rate_limit_per_sec =
        check_limit(body.rate_limit_per_sec, 10_000, "rate_limit_per_sec")?;
    endpoint.max_concurrency = check_limit(body.max_concurrency, 1_000, "max_concurrency")?;
    if let Some(b) = body.batching {
        apply_batching(&mut endpoint, b)?;
    }
    endpoint.contact_email = body.contact_email.filter(|c| !c.trim().is_empty());
    let now = now_ms();
    endpoint.created_at_ms = Some(now);
    endpoint.updated_at_ms = Some(now);
    check_record(&endpoint)?;
    let stored = write(&state, &endpoint).await?;
    tracing::info!(endpoint_id = %stored.id, account_id = %stored.account_id, key_id = %caller.key_id, "endpoint created");
    Ok(created(
        format!("/v1/endpoints/{}", stored.id),
        view(&stored),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}",
    operation_id = "get_endpoint",
    tag = "endpoints",
    summary = "Read an endpoint",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    responses((status = 200, description = "The endpoint", body = EndpointView), ApiErrors),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json(view(&lookup(&state, &caller, &id)?)))
}

#[utoipa::path(
    patch,
    path = "/v1/endpoints/{id}",
    operation_id = "update_endpoint",
    tag = "endpoints",
    summary = "Change an endpoint",
    description = "Fields left out stay as they are. Send the `version` you read to refuse overwriting a change you have not seen (409). `enabled: false` pauses deliveries; the circuit breaker's disabling is undone with POST …/enable instead.",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    request_body = UpdateEndpoint,
    responses((status = 200, description = "The endpoint as changed", body = EndpointView), ApiErrors),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateEndpoint>,
) -> Result<Json<EndpointView>, ApiError> {
    let current = lookup(&state, &caller, &id)?;
    if let Some(version) = body.version
        && version != current.version
    {
        return Err(ApiError::conflict(format!(
            "the endpoint changed since version {version} (it is at {}): read it again and retry",
            current.version
        )));
    }
    let mut next = current.clone();
    next.status = None;
    if let Some(url) = &body.url {
        next.url = check_url(&state, url, "url").await?;
    }
    if let Some(description) = body.description {
        next.description = check_description(description)?;
    }
    if let Some(types) = body.event_types {
        next.event_types = check_event_types(types, "event_types")?;
    }
    if let Some(enabled) = body.enabled {
        next.enabled = enabled;
        if enabled {
            next.disabled_reason = None;
            next.disabled_at_ms = None;
            next.disabled_by = None;
        } else if current.enabled {
            next.disabled_reason = Some("paused".to_owned());
            next.disabled_at_ms = Some(now_ms());
            next.disabled_by = Some(caller.by());
        }
    }
    if let Some(rate) = body.rate_limit_per_sec {
        next.rate_limit_per_sec = check_limit(rate, 10_000, "rate_limit_per_sec")?;
    }
    if let Some(concurrency) = body.max_concurrency {
        next.max_concurrency = check_limit(concurrency, 1_000, "max_concurrency")?;
    }
    if let Some(b) = body.batching {
        apply_batching(&mut next, b)?;
    }
    if let Some(contact) = body.contact_email {
        next.contact_email = contact.filter(|c| !c.trim().is_empty());
    }
    check_record(&next)?;
    let mut unchanged = current.clone();
    unchanged.status = None;
    if next == unchanged {
        return Ok(Json(view(&current)));
    }
    next.version = current.version + 1;
    next.updated_at_ms = Some(now_ms());
    let stored = write(&state, &next).await?;
    tracing::info!(endpoint_id = %stored.id, version = stored.version, key_id = %caller.key_id, "endpoint updated");
    Ok(Json(view(&stored)))
}

#[utoipa::path(
    delete,
    path = "/v1/endpoints/{id}",
    operation_id = "delete_endpoint",
    tag = "endpoints",
    summary = "Delete an endpoint",
    description = "Deliveries to it stop; ones already waiting for a retry are dropped. Its delivery log expires with the log's retention.",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    responses((status = 204, description = "Deleted"), ApiErrors),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let endpoint = lookup(&state, &caller, &id)?;
    // The status record goes too, so an endpoint later created with this id does not start
    // out disabled.
    let status = send_tombstone(&state, &status_key(&endpoint.id)).await?;
    let record = send_tombstone(&state, endpoint.id.as_str()).await?;
    wait_applied(&state, status).await?;
    wait_applied(&state, record).await?;
    tracing::info!(endpoint_id = %endpoint.id, key_id = %caller.key_id, "endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}/secret",
    operation_id = "get_secret",
    tag = "endpoints",
    summary = "Reveal the signing secret",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    responses((status = 200, description = "The current secret and those still signing", body = SecretView), ApiErrors),
    security(("bearer" = []))
)]
pub async fn secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let endpoint = lookup(&state, &caller, &id)?;
    tracing::info!(endpoint_id = %endpoint.id, key_id = %caller.key_id, "endpoint secret revealed");
    Ok(Json(secret_view(&endpoint, now_ms())))
}

fn secret_view(endpoint: &Endpoint, now: i64) -> SecretView {
    let active: Vec<&EndpointSecret> = endpoint
        .secrets
        .iter()
        .filter(|s| s.expires_at_ms.is_none_or(|at| at > now))
        .collect();
    let current = active
        .iter()
        .position(|s| s.expires_at_ms.is_none())
        .or((!active.is_empty()).then_some(0));
    SecretView {
        secret: current
            .and_then(|i| active.get(i))
            .map(|s| s.secret.expose().to_owned())
            .unwrap_or_default(),
        rotating: active
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != current)
            .filter_map(|(_, s)| {
                s.expires_at_ms.map(|at| RotatingSecret {
                    secret: s.secret.expose().to_owned(),
                    expires_at: rfc3339(at),
                })
            })
            .collect(),
    }
}

#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/secret/rotate",
    operation_id = "rotate_secret",
    tag = "endpoints",
    summary = "Rotate the signing secret",
    description = "The new secret signs at once; the current one keeps signing next to it for `overlap_secs` (default 24 h), so receivers can switch without rejecting a request.",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    request_body = RotateSecret,
    responses((status = 200, description = "The new secret and those still signing", body = SecretView), ApiErrors),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> Result<Json<SecretView>, ApiError> {
    let current = lookup(&state, &caller, &id)?;
    let overlap = match body.overlap_secs {
        None => state.settings.rotation_overlap,
        Some(secs) => {
            let d = Duration::from_secs(secs);
            if d > state.settings.max_rotation_overlap {
                return Err(ApiError::bad(
                    "overlap_secs",
                    format!(
                        "overlap_secs: at most {} seconds",
                        state.settings.max_rotation_overlap.as_secs()
                    ),
                ));
            }
            d
        }
    };
    let new_secret = match &body.secret {
        Some(s) => parse_secret(s, "secret")?,
        None => crate::sign::generate_secret(),
    };
    let now = now_ms();
    let mut next = current.clone();
    next.status = None;
    next.secrets = rotated(&current.secrets, new_secret, now, overlap);
    next.version = current.version + 1;
    next.updated_at_ms = Some(now);
    let stored = write(&state, &next).await?;
    tracing::info!(endpoint_id = %stored.id, overlap_secs = overlap.as_secs(), key_id = %caller.key_id, "endpoint secret rotated");
    Ok(Json(secret_view(&stored, now)))
}

/// The secrets after a rotation at `now`: the new one first, then every secret still
/// signing, none past `now + overlap` (expired ones are dropped), at most [`MAX_SECRETS`].
pub fn rotated(
    secrets: &[EndpointSecret],
    new: Secret,
    now: i64,
    overlap: Duration,
) -> Vec<EndpointSecret> {
    let until = now.saturating_add(i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX));
    let mut out = vec![EndpointSecret {
        secret: new,
        expires_at_ms: None,
    }];
    for s in secrets {
        let expires = s.expires_at_ms.unwrap_or(i64::MAX).min(until);
        if expires > now && out.len() < MAX_SECRETS && s.secret != out[0].secret {
            out.push(EndpointSecret {
                secret: s.secret.clone(),
                expires_at_ms: Some(expires),
            });
        }
    }
    out
}

#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/enable",
    operation_id = "enable_endpoint",
    tag = "endpoints",
    summary = "Re-enable an endpoint",
    description = "Undoes the circuit breaker's disabling (and resumes a paused endpoint). With `replay: true`, also re-sends what was dead-lettered while it was disabled (reason `endpoint_disabled`), keeping each delivery's webhook-id.",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    request_body = EnableEndpoint,
    responses((status = 200, description = "The endpoint, enabled, and the replay if one started", body = EnableResult), ApiErrors),
    security(("bearer" = []))
)]
pub async fn enable(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EnableEndpoint>,
) -> Result<Json<EnableResult>, ApiError> {
    let mut endpoint = lookup(&state, &caller, &id)?;
    let disabled_since = endpoint
        .status
        .as_ref()
        .filter(|s| !s.enabled)
        .map(|s| s.at_ms);
    if !endpoint.enabled {
        let mut next = endpoint.clone();
        next.status = None;
        next.enabled = true;
        next.disabled_reason = None;
        next.disabled_at_ms = None;
        next.disabled_by = None;
        next.version = endpoint.version + 1;
        next.updated_at_ms = Some(now_ms());
        endpoint = write(&state, &next).await?;
    }
    if endpoint.breaker_disabled() {
        let status = endpoint
            .current_status()
            .enabled_after(now_ms(), &caller.by());
        let published = publish_status(
            &state.producer,
            &state.settings.subscriptions_topic,
            &status,
        )
        .await
        .map_err(publish_error)?;
        wait_applied(&state, published).await?;
        match state
            .table
            .status(&endpoint.id)
            .map_err(ApiError::internal)?
        {
            Some(now) if now == status => {}
            _ => {
                return Err(ApiError::conflict(
                    "the endpoint's state changed at the same time (disabled again, or re-enabled by someone else); read it again",
                ));
            }
        }
        tracing::info!(endpoint_id = %endpoint.id, epoch = status.epoch, key_id = %caller.key_id, "endpoint re-enabled");
    }
    let endpoint = lookup(&state, &caller, &id)?;
    let replay = match (body.replay, disabled_since) {
        (true, Some(since)) => Some(super::replay::start_job(
            &state,
            &endpoint,
            super::replay::ReplaySpec {
                // Deliveries dead-lettered as the breaker tripped may be written a moment
                // before the status record's time.
                since_ms: since.saturating_sub(60_000),
                until_ms: now_ms(),
                reason: Some(
                    crate::delivery::DeadLetterReason::EndpointDisabled
                        .as_str()
                        .to_owned(),
                ),
                max: state.settings.replay_max,
            },
        )?),
        _ => None,
    };
    Ok(Json(EnableResult {
        endpoint: view(&endpoint),
        replay,
    }))
}

/// Publishes `endpoint` (the next version of an existing one, or version 1 of a new one),
/// waits until this instance's table applied it, and checks that it is what the table now
/// holds: if another writer's record of the same version came first, 409.
pub async fn write(state: &ApiState, endpoint: &Endpoint) -> Result<Endpoint, ApiError> {
    let published = publish(
        &state.producer,
        &state.settings.subscriptions_topic,
        endpoint,
    )
    .await
    .map_err(publish_error)?;
    wait_applied(state, published).await?;
    let stored = state.table.get(&endpoint.id).map_err(ApiError::internal)?;
    match stored {
        Some(s) if without_status(&s) == *endpoint => Ok(s),
        _ => Err(ApiError::conflict(
            "the endpoint was changed by someone else at the same time; read it again and retry",
        )),
    }
}

fn without_status(e: &Endpoint) -> Endpoint {
    let mut e = e.clone();
    e.status = None;
    e
}

fn publish_error(e: SubscriptionError) -> ApiError {
    match e {
        SubscriptionError::Endpoint(e) => ApiError::bad("body", e.redacted().to_string()),
        other => {
            tracing::error!(error = %crate::telemetry::ErrorChain(&other), "could not write an endpoint change");
            ApiError::unavailable("Kafka did not take the change; retry")
        }
    }
}

async fn wait_applied(state: &ApiState, published: Published) -> Result<(), ApiError> {
    match tokio::time::timeout(
        state.settings.apply_timeout,
        state.table.wait_applied(published),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(_) => Err(ApiError::unavailable(
            "the change was written but this instance has not applied it yet; read it again shortly",
        )),
    }
}

async fn send_tombstone(state: &ApiState, key: &str) -> Result<Published, ApiError> {
    let record: FutureRecord<'_, str, [u8]> =
        FutureRecord::to(&state.settings.subscriptions_topic).key(key);
    state
        .producer
        .send(record, Duration::from_secs(10))
        .await
        .map(|d| Published {
            partition: d.partition,
            offset: d.offset,
        })
        .map_err(|(e, _)| {
            tracing::error!(error = %e, "could not write a tombstone");
            ApiError::unavailable("Kafka did not take the change; retry")
        })
}

/// What the record's own validation refuses that the checks above do not cover, named.
fn check_record(endpoint: &Endpoint) -> Result<(), ApiError> {
    match endpoint.validate() {
        Ok(()) => Ok(()),
        Err(EndpointError::ContactEmail) => Err(ApiError::bad(
            "contact_email",
            "contact_email: one address like owner@example.com",
        )),
        Err(e) => Err(ApiError::bad("body", e.redacted().to_string())),
    }
}

fn check_account(account: &AccountId) -> Result<(), ApiError> {
    let a = account.as_str();
    if a.is_empty() || a.len() > MAX_ACCOUNT_LEN || a.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "account_id",
            "account_id: 1 to 255 characters without control characters",
        ));
    }
    Ok(())
}

/// Checks an endpoint URL: parseable, http(s) (https unless allowed), a host, no user info,
/// an allowed host, and an address the SSRF guard admits (checked on what the host resolves
/// to now; the guard checks again on every delivery).
pub async fn check_url(state: &ApiState, text: &str, field: &'static str) -> Result<Url, ApiError> {
    let bad = |m: &str| ApiError::bad(field, format!("{field}: {m}"));
    if text.len() > MAX_URL_LEN {
        return Err(bad("at most 2048 characters"));
    }
    let url = Url::parse(text.trim()).map_err(|_| bad("not a valid absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if !state.settings.https_required => {}
        "http" => return Err(bad("must be https")),
        _ => return Err(bad("must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("has no host"))?
        .to_owned();
    if !host_allowed(&state.settings.allowed_url_hosts, &host) {
        return Err(bad("this host is not allowed here"));
    }
    state
        .guard
        .check_url(&url)
        .map_err(|r| bad(&refusal_text(&r)))?;
    if let Some(url::Host::Domain(domain)) = url.host() {
        match tokio::time::timeout(RESOLVE_TIMEOUT, state.guard.resolve(domain)).await {
            Ok(Err(refusal)) if refusal.is_policy() => return Err(bad(&refusal_text(&refusal))),
            // A name that does not resolve (yet) is not refused: deliveries will say so.
            Ok(_) | Err(_) => {}
        }
    }
    Ok(url)
}

/// The SSRF guard's refusal in words for the URL's owner: the class of address, never the
/// address (it may be internal).
fn refusal_text(refusal: &crate::dispatch::ssrf::Refusal) -> String {
    use crate::dispatch::ssrf::Refusal;
    match refusal {
        Refusal::Address { class, .. } => format!(
            "points to a {class} address; deliveries to loopback, private, link-local and metadata addresses are refused"
        ),
        Refusal::AllAddresses { first, .. } => refusal_text(first),
        Refusal::NoHost => "has no host".to_owned(),
        Refusal::Lookup { .. } | Refusal::NoAddress { .. } => {
            "the host does not resolve".to_owned()
        }
    }
}

/// True when `host` is allowed by `allowed` (empty: every host; `.example.com`: it and its
/// subdomains; otherwise the exact name).
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        match a.strip_prefix('.') {
            Some(domain) => host == domain || host.ends_with(&format!(".{domain}")),
            None => host == a,
        }
    })
}

/// `whsec_` + base64 of 24 to 64 bytes, read exactly as signing reads it.
pub fn parse_secret(text: &str, field: &'static str) -> Result<Secret, ApiError> {
    let secret = Secret::new(text);
    let bytes = crate::sign::check_secret(&secret).map_err(|e| match e {
        crate::sign::SignError::TooShort { bytes } => ApiError::bad(
            field,
            format!("{field}: the key must be 24 to 64 bytes (it is {bytes})"),
        ),
        _ => ApiError::bad(field, format!("{field}: must be whsec_ followed by base64")),
    })?;
    if !SECRET_BYTES.contains(&bytes) {
        return Err(ApiError::bad(
            field,
            format!("{field}: the key must be 24 to 64 bytes (it is {bytes})"),
        ));
    }
    Ok(secret)
}

fn check_description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => Err(ApiError::bad(
            "description",
            "description: at most 1024 characters",
        )),
        Some(d) if d.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Known event types, each once, at most [`MAX_EVENT_TYPES`].
pub fn check_event_types(types: Vec<String>, field: &'static str) -> Result<Vec<String>, ApiError> {
    if types.len() > MAX_EVENT_TYPES {
        return Err(ApiError::bad(field, format!("{field}: at most 50")));
    }
    let mut seen = BTreeSet::new();
    for (i, t) in types.iter().enumerate() {
        if t.parse::<EventType>().is_err() {
            return Err(ApiError::bad(
                format!("{field}[{i}]"),
                format!("{field}[{i}]: unknown event type {t:?} (see GET /v1/event-types)"),
            ));
        }
        if !seen.insert(t.as_str()) {
            return Err(ApiError::bad(
                format!("{field}[{i}]"),
                format!("{field}[{i}]: {t:?} is listed twice"),
            ));
        }
    }
    Ok(types)
}

fn check_limit(
    value: Option<u32>,
    max: u32,
    field: &'static str,
) -> Result<Option<NonZeroU32>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if (1..=max).contains(&v) => Ok(NonZeroU32::new(v)),
        Some(_) => Err(ApiError::bad(field, format!("{field}: must be 1 to {max}"))),
    }
}

fn apply_batching(endpoint: &mut Endpoint, b: BatchingInput) -> Result<(), ApiError> {
    if let Some(enabled) = b.enabled {
        endpoint.batching.enabled = enabled;
    }
    if b.max_events.is_some() {
        endpoint.batching.max_events = check_limit(b.max_events, 10_000, "batching.max_events")?;
    }
    if let Some(bytes) = b.max_bytes {
        if !(1024..=10 << 20).contains(&bytes) {
            return Err(ApiError::bad(
                "batching.max_bytes",
                "batching.max_bytes: must be 1024 to 10485760",
            ));
        }
        endpoint.batching.max_bytes = NonZeroU32::new(bytes);
    }
    if let Some(linger) = b.linger_ms {
        if linger > 60_000 {
            return Err(ApiError::bad(
                "batching.linger_ms",
                "batching.linger_ms: at most 60000",
            ));
        }
        endpoint.batching.linger_ms = Some(linger);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(n: u8) -> Secret {
        Secret::new(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([n; 32])
        ))
    }

    #[test]
    fn a_rotation_keeps_the_old_secret_for_the_overlap_only() {
        let now = 1_000_000;
        let old = vec![EndpointSecret {
            secret: secret(1),
            expires_at_ms: None,
        }];
        let after = rotated(&old, secret(2), now, Duration::from_secs(60));
        assert_eq!(after.len(), 2);
        assert_eq!(after[0].secret, secret(2));
        assert_eq!(after[0].expires_at_ms, None);
        assert_eq!(after[1].expires_at_ms, Some(now + 60_000));
        // A second rotation inside the overlap: the first secret's expiry does not grow.
        let again = rotated(&after, secret(3), now + 1_000, Duration::from_secs(3600));
        assert_eq!(again.len(), 3);
        assert_eq!(again[2].expires_at_ms, Some(now + 60_000));
        // Overlap 0: only the new secret signs.
        assert_eq!(rotated(&old, secret(2), now, Duration::ZERO).len(), 1);
        // Expired ones are dropped; never more than five.
        let many: Vec<EndpointSecret> = (0..9)
            .map(|i| EndpointSecret {
                secret: secret(10 + i),
                expires_at_ms: Some(now + 5_000),
            })
            .collect();
        assert_eq!(
            rotated(&many, secret(2), now, Duration::from_secs(60)).len(),
            MAX_SECRETS
        );
        assert_eq!(
            rotated(&many, secret(2), now + 5_000, Duration::from_secs(60)).len(),
            1
        );
    }

    #[test]
    fn the_secret_view_shows_current_then_rotating() {
        let mut e = crate::subscriptions::endpoint::tests::endpoint("ep_1", "a");
        e.secrets = rotated(
            &[EndpointSecret {
                secret: secret(1),
                expires_at_ms: None,
            }],
            secret(2),
            0,
            Duration::from_secs(10),
        );
        let v = secret_view(&e, 5);
        assert_eq!(v.secret, secret(2).expose());
        assert_eq!(v.rotating.len(), 1);
        assert_eq!(v.rotating[0].secret, secret(1).expose());
        assert!(secret_view(&e, 10_000).rotating.is_empty(), "expired");
    }

    #[test]
    fn secrets_must_be_standard_webhooks_sized() {
        assert!(parse_secret(secret(1).expose(), "secret").is_ok());
        let short = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([1u8; 16])
        );
        assert!(parse_secret(&short, "secret").is_err());
        assert!(parse_secret("sk_live_x", "secret").is_err());
        assert!(parse_secret("whsec_not base64", "secret").is_err());
    }

    #[test]
    fn event_type_lists_name_the_bad_entry() {
        assert!(check_event_types(vec!["license.created".into()], "event_types").is_ok());
        let err = check_event_types(vec!["license.created".into(), "nope".into()], "event_types")
            .unwrap_err();
        assert!(
            matches!(err, ApiError::BadRequest { field: Some(f), .. } if f == "event_types[1]")
        );
        let dup = check_event_types(
            vec!["domain.added".into(), "domain.added".into()],
            "event_types",
        );
        assert!(dup.is_err());
    }

    #[test]
    fn allowed_hosts_match_exactly_or_as_a_domain() {
        assert!(host_allowed(&[], "anything.example"));
        let allowed = vec!["127.0.0.1".to_owned(), ".example.com".to_owned()];
        assert!(host_allowed(&allowed, "127.0.0.1"));
        assert!(host_allowed(&allowed, "hooks.example.com"));
        assert!(host_allowed(&allowed, "EXAMPLE.com."));
        assert!(!host_allowed(&allowed, "evil-example.com"));
        assert!(!host_allowed(&allowed, "1.1.1.1"));
    }
}
