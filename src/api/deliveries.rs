//! Delivery routes: the delivery log of an endpoint (newest first, filtered, paged), "send
//! test event" and "retry now". Both of the latter write a delivery envelope to the requests
//! topic, which the delivery core sends like a due retry: signed, rate-limited, retried and
//! logged like any other delivery.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rdkafka::producer::FutureRecord;
use serde::Serialize;

use crate::delivery::{DeliveryOutcome, delivery_id, now_ms};
use crate::ids::EventId;
use crate::records::AttemptRecord;
use crate::records::envelope::{AttemptSummary, DeliveryEnvelope};
use crate::subscriptions::Endpoint;

use super::auth::Caller;
use super::endpoints::{ApiErrors, lookup, require_deliverable};
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::log::{LogQuery, Position};
use super::model::{AttemptList, AttemptView, AttemptsQuery, QueuedDelivery, TestEventRequest};
use super::{ApiState, parse_time, rfc3339};

/// The type of the event "send test event" sends.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Why a delivery was put on the requests topic (label of
/// `hookrelay_api_redeliveries_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redelivery {
    Test,
    Retry,
    Replay,
}

impl Redelivery {
    pub const ALL: [Redelivery; 3] = [Redelivery::Test, Redelivery::Retry, Redelivery::Replay];

    pub fn as_str(self) -> &'static str {
        match self {
            Redelivery::Test => "test",
            Redelivery::Retry => "retry",
            Redelivery::Replay => "replay",
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}/attempts",
    operation_id = "list_attempts",
    tag = "deliveries",
    summary = "The delivery log",
    description = "Every attempt (and decision) for the endpoint, newest first: what was sent, what came back. Kept for the log's retention (7 days by default).",
    params(("id" = String, Path, description = "The endpoint id (ep_…)"), AttemptsQuery),
    responses((status = 200, description = "A page of attempts, newest first", body = AttemptList), ApiErrors),
    security(("bearer" = []))
)]
pub async fn attempts(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> Result<Json<AttemptList>, ApiError> {
    let endpoint = lookup(&state, &caller, &id)?;
    if let Some(o) = &q.outcome
        && !DeliveryOutcome::ALL.iter().any(|known| known.as_str() == o)
    {
        return Err(ApiError::bad(
            "outcome",
            "outcome: one of delivered, retry_scheduled, dead_lettered, dropped",
        ));
    }
    let since_ms = q
        .since
        .as_deref()
        .map(|t| parse_time("since", t))
        .transpose()?;
    let until_ms = q
        .until
        .as_deref()
        .map(|t| parse_time("until", t))
        .transpose()?;
    if let (Some(s), Some(u)) = (since_ms, until_ms)
        && s > u
    {
        return Err(ApiError::bad("since", "since: must not be after until"));
    }
    let limit = match q.limit {
        None => 20,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(ApiError::bad("limit", "limit: must be 1 to 100")),
    };
    let after = match &q.cursor {
        None => None,
        Some(c) => Some(
            Position::from_cursor(c)
                .ok_or_else(|| ApiError::bad("cursor", "cursor: not a cursor this API returned"))?,
        ),
    };
    let query = LogQuery {
        since_ms,
        until_ms,
        outcome: q.outcome,
        event_type: q.event_type,
        delivery_id: q.delivery_id,
        account_id: Some(endpoint.account_id.to_string()),
        after,
        limit,
    };
    let api = state.api.clone();
    let endpoint_id = endpoint.id.to_string();
    let page = tokio::task::spawn_blocking(move || api.store().attempts(&endpoint_id, &query))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(AttemptList {
        data: page
            .entries
            .into_iter()
            .map(|(_, r)| attempt_view(r))
            .collect(),
        next_cursor: page.next.map(|p| p.to_cursor()),
    }))
}

fn attempt_view(r: AttemptRecord) -> AttemptView {
    AttemptView {
        delivery_id: r.delivery_id,
        event_ids: r.event_ids,
        event_types: r.event_types,
        batch: r.batch,
        attempt: r.attempt,
        at: rfc3339(r.at_ms),
        at_ms: r.at_ms,
        outcome: r.outcome,
        status: r.status,
        latency_ms: r.latency_ms,
        error: r.error,
        error_class: r.error_class,
        dead_letter_reason: r.dead_letter_reason,
        next_attempt_at: r.next_attempt_at_ms.map(rfc3339),
        tier: r.tier,
        response_snippet: r.response_snippet,
        request_body: r.request_body,
    }
}

#[derive(Serialize)]
struct TestBody<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'static str,
    created: String,
    data: TestData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TestData<'a> {
    endpoint_id: &'a str,
    message: &'static str,
}

/// The body of a test event: the shape of every event, type `webhook.test`.
pub fn test_body(event_id: &str, endpoint: &Endpoint, now: i64) -> String {
    let body = TestBody {
        id: event_id,
        event_type: TEST_EVENT_TYPE,
        created: rfc3339(now),
        data: TestData {
            endpoint_id: endpoint.id.as_str(),
            message: "A test event from hookrelay: if you can read this, your endpoint receives and can verify webhooks.",
        },
    };
    serde_json::to_string(&body).unwrap_or_default()
}

#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/test",
    operation_id = "send_test_event",
    tag = "deliveries",
    summary = "Send a test event",
    description = "Sends a signed `webhook.test` event to the endpoint through the normal delivery path, whatever its event-type filter. The delivery log shows the result under the returned delivery id.",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    request_body = TestEventRequest,
    responses((status = 202, description = "Queued", body = QueuedDelivery), ApiErrors),
    security(("bearer" = []))
)]
pub async fn send_test(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(_body): ApiJson<TestEventRequest>,
) -> Result<(StatusCode, Json<QueuedDelivery>), ApiError> {
    let endpoint = lookup(&state, &caller, &id)?;
    require_deliverable(&endpoint)?;
    let now = now_ms();
    let event_id = EventId::new(format!(
        "evt_test_{}",
        hex::encode(rand::random::<[u8; 12]>())
    ));
    let envelope = DeliveryEnvelope {
        delivery_id: delivery_id(&endpoint.id, &event_id),
        endpoint_id: endpoint.id.to_string(),
        account_id: endpoint.account_id.to_string(),
        event_ids: vec![event_id.to_string()],
        event_types: vec![TEST_EVENT_TYPE.to_owned()],
        batch: false,
        body: test_body(event_id.as_str(), &endpoint, now),
        attempt: 1,
        first_attempt_at_ms: now,
        due_at_ms: now,
        last_status: None,
        last_error: None,
        origin_topic: "api:test".to_owned(),
        origin_partition: -1,
        origin_offset: -1,
        history: Vec::new(),
        dead_letter_reason: None,
    };
    enqueue(&state, &envelope, Redelivery::Test).await?;
    tracing::info!(endpoint_id = %endpoint.id, delivery_id = %envelope.delivery_id, key_id = %caller.key_id, "test event queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedDelivery {
            delivery_id: envelope.delivery_id,
            event_ids: envelope.event_ids,
            attempt: envelope.attempt,
        }),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/deliveries/{delivery_id}/retry",
    operation_id = "retry_delivery",
    tag = "deliveries",
    summary = "Retry one delivery now",
    description = "Sends the delivery again at once, with the exact body it was last sent with and the same webhook-id (receivers dedupe on it), as its next attempt. A retry already scheduled still happens.",
    params(
        ("id" = String, Path, description = "The endpoint id (ep_…)"),
        ("delivery_id" = String, Path, description = "The delivery's webhook-id (msg_… or bat_…)")
    ),
    request_body = TestEventRequest,
    responses((status = 202, description = "Queued", body = QueuedDelivery), ApiErrors),
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, delivery)): Path<(String, String)>,
    ApiJson(_body): ApiJson<TestEventRequest>,
) -> Result<(StatusCode, Json<QueuedDelivery>), ApiError> {
    let endpoint = lookup(&state, &caller, &id)?;
    let api = state.api.clone();
    let (endpoint_id, account, wanted) = (
        endpoint.id.to_string(),
        endpoint.account_id.to_string(),
        delivery.clone(),
    );
    let records = tokio::task::spawn_blocking(move || {
        api.store().delivery(&endpoint_id, &wanted, Some(&account))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    if records.is_empty() {
        return Err(ApiError::NotFound { what: "delivery" });
    }
    require_deliverable(&endpoint)?;
    let envelope = retry_envelope(&records, now_ms()).ok_or_else(|| {
        ApiError::conflict(
            "no complete request body is recorded for this delivery (it was never sent, or its body was too large to log); replay it from the dead-letter queue instead",
        )
    })?;
    enqueue(&state, &envelope, Redelivery::Retry).await?;
    tracing::info!(endpoint_id = %endpoint.id, delivery_id = %envelope.delivery_id, attempt = envelope.attempt, key_id = %caller.key_id, "delivery retry queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedDelivery {
            delivery_id: envelope.delivery_id,
            event_ids: envelope.event_ids,
            attempt: envelope.attempt,
        }),
    ))
}

/// The envelope that re-sends a delivery whose attempts are `records` (newest first): the
/// newest complete body sent, as the attempt after the highest so far. `None` when no
/// complete body was recorded.
pub fn retry_envelope(records: &[AttemptRecord], now: i64) -> Option<DeliveryEnvelope> {
    let sent = records.iter().find(|r| {
        r.request_body
            .as_deref()
            .is_some_and(|b| serde_json::from_str::<serde::de::IgnoredAny>(b).is_ok())
    })?;
    let newest = records.first()?;
    let mut history: Vec<AttemptSummary> = records
        .iter()
        .filter(|r| r.request_body.is_some())
        .map(|r| AttemptSummary {
            attempt: r.attempt,
            at_ms: r.at_ms,
            status: r.status,
            error: r.error.clone(),
            latency_ms: r.latency_ms,
        })
        .collect();
    history.reverse();
    Some(DeliveryEnvelope {
        delivery_id: sent.delivery_id.clone(),
        endpoint_id: sent.endpoint_id.clone(),
        account_id: sent.account_id.clone(),
        event_ids: sent.event_ids.clone(),
        event_types: sent.event_types.clone(),
        batch: sent.batch,
        body: sent.request_body.clone().unwrap_or_default(),
        attempt: records.iter().map(|r| r.attempt).max().unwrap_or(0) + 1,
        first_attempt_at_ms: records.iter().map(|r| r.at_ms).min().unwrap_or(now),
        due_at_ms: now,
        last_status: newest.status,
        last_error: newest.error.clone(),
        origin_topic: "api:retry".to_owned(),
        origin_partition: -1,
        origin_offset: -1,
        history,
        dead_letter_reason: None,
    })
}

/// Writes a delivery envelope to the requests topic (keyed by endpoint id, like every
/// delivery record) and waits for the broker's acknowledgement.
pub async fn enqueue(
    state: &ApiState,
    envelope: &DeliveryEnvelope,
    why: Redelivery,
) -> Result<(), ApiError> {
    let bytes = envelope.to_avro().map_err(ApiError::internal)?;
    let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&state.settings.requests_topic)
        .key(envelope.endpoint_id.as_str())
        .payload(&bytes);
    state
        .producer
        .send(record, std::time::Duration::from_secs(10))
        .await
        .map_err(|(e, _)| {
            tracing::error!(error = %e, topic = %state.settings.requests_topic, "could not queue a delivery");
            ApiError::unavailable("Kafka did not take the delivery; retry")
        })?;
    state.metrics.api_redelivery(why.as_str());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(attempt: i32, at_ms: i64, body: Option<&str>) -> AttemptRecord {
        AttemptRecord {
            attempt,
            at_ms,
            request_body: body.map(str::to_owned),
            ..crate::records::attempt::tests::sample()
        }
    }

    #[test]
    fn a_retry_resends_the_last_complete_body_as_the_next_attempt() {
        let records = vec![
            record(3, 300, None),
            record(2, 200, Some(r#"{"id":"evt_1","v":2}"#)),
            record(1, 100, Some(r#"{"id":"evt_1","v":1}"#)),
        ];
        let e = retry_envelope(&records, 1_000).unwrap();
        assert_eq!(e.body, r#"{"id":"evt_1","v":2}"#);
        assert_eq!(e.attempt, 4);
        assert_eq!(e.delivery_id, "msg_1", "same webhook-id");
        assert_eq!(e.first_attempt_at_ms, 100);
        assert_eq!(e.due_at_ms, 1_000);
        assert_eq!(
            e.history.iter().map(|h| h.attempt).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(e.dead_letter_reason, None);
    }

    #[test]
    fn no_retry_without_a_complete_body() {
        assert!(retry_envelope(&[record(1, 1, None)], 5).is_none());
        assert!(
            retry_envelope(&[record(1, 1, Some(r#"{"id":"evt_1","cut"#))], 5).is_none(),
            "a truncated body is not resent"
        );
    }

    #[test]
    fn a_test_body_has_the_event_shape() {
        let e = crate::subscriptions::endpoint::tests::endpoint("ep_1", "a");
        let body: serde_json::Value =
            serde_json::from_str(&test_body("evt_test_1", &e, 1_773_585_000_000)).unwrap();
        assert_eq!(body["id"], "evt_test_1");
        assert_eq!(body["type"], "webhook.test");
        assert_eq!(body["created"], "2026-03-15T14:30:00Z");
        assert_eq!(body["data"]["endpointId"], "ep_1");
    }
}
