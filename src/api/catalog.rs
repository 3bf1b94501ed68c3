//! What a customer needs to know besides their endpoints: the event types with a JSON
//! Schema of each body (derived from the event contract in [`crate::event`]), the addresses
//! deliveries come from, and which key they are using.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::event::EventType;

use super::ApiState;
use super::auth::{Caller, Scope};
use super::deliveries::TEST_EVENT_TYPE;
use super::endpoints::ApiErrors;
use super::error::ApiError;
use super::model::{EgressIps, EventTypeList, EventTypeView, Me};

/// When each type is sent and what a receiver usually does (the design's table).
fn describe(t: EventType) -> (&'static str, &'static str) {
    match t {
        EventType::LicenseCreated => (
            "A new license was provisioned.",
            "Configure the application, enable features.",
        ),
        EventType::LicenseActivated => (
            "A license was activated on a domain.",
            "Log the activation, update records.",
        ),
        EventType::LicenseExpiring => ("A license expires in 7 days.", "Show a renewal prompt."),
        EventType::LicenseExpired => ("A license expired.", "Disable premium features."),
        EventType::LicenseRenewed => (
            "A payment was processed and the license extended.",
            "Re-enable features.",
        ),
        EventType::LicenseRevoked => (
            "A license was revoked, manually or automatically.",
            "Disable all features now.",
        ),
        EventType::LicenseUpgraded => (
            "The license's plan tier changed.",
            "Enable new features, adjust limits.",
        ),
        EventType::DomainAdded => (
            "A new domain was authorized.",
            "Update the domain allowlist.",
        ),
        EventType::DomainRemoved => (
            "A domain was de-authorized.",
            "Revoke access for that domain.",
        ),
        EventType::PaymentFailed => (
            "A subscription payment failed.",
            "Show a payment update prompt.",
        ),
    }
}

const RFC3339: &str = "date-time";

/// The JSON Schema (2020-12) of a body of `event_type` whose `data` is `data`.
fn body_schema(event_type: &str, data: Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["id", "type", "created", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^evt_", "description": "Stable through every retry: dedupe on it"},
            "type": {"const": event_type},
            "created": {"type": "string", "format": RFC3339, "description": "RFC 3339, UTC"},
            "data": data,
        },
    })
}

/// The schema of a license event's `data` for `t`: the fields every event carries plus the
/// ones this type requires ([`EventType::required_fields`]).
pub fn data_schema(t: EventType) -> Value {
    let mut required: Vec<&str> = vec![
        "licenseKey",
        "plan",
        "activationsUsed",
        "activationLimit",
        "features",
    ];
    required.extend_from_slice(t.required_fields());
    json!({
        "type": "object",
        "required": required,
        "properties": {
            "licenseKey": {"type": "string", "description": "Masked: all but the last group, e.g. TO-****-****-****-F6A8"},
            "plan": {"type": "string"},
            "domain": {"type": "string"},
            "activationsUsed": {"type": "integer", "minimum": 0},
            "activationLimit": {"type": "integer", "minimum": 0},
            "expiresAt": {"type": "string", "format": RFC3339},
            "features": {"type": "array", "items": {"type": "string"}},
            "previousPlan": {"type": "string", "description": "The plan before an upgrade"},
            "reason": {"type": "string", "description": "Why (revocations, failed payments)"},
            "amount": {"type": "integer", "description": "Minor units (cents) of currency"},
            "currency": {"type": "string", "description": "ISO 4217"},
        },
    })
}

/// Every event type customers can receive, with descriptions and schemas.
pub fn event_type_list() -> Vec<EventTypeView> {
    let mut out: Vec<EventTypeView> = EventType::ALL
        .into_iter()
        .map(|t| {
            let (description, action) = describe(t);
            EventTypeView {
                event_type: t.as_str().to_owned(),
                description: description.to_owned(),
                customer_action: action.to_owned(),
                subscribable: true,
                schema: body_schema(t.as_str(), data_schema(t)),
            }
        })
        .collect();
    out.push(EventTypeView {
        event_type: TEST_EVENT_TYPE.to_owned(),
        description: "Sent when you press \"send test event\" (POST /v1/endpoints/{id}/test)."
            .to_owned(),
        customer_action: "Check that it arrives and its signature verifies; nothing else."
            .to_owned(),
        subscribable: false,
        schema: body_schema(
            TEST_EVENT_TYPE,
            json!({
                "type": "object",
                "required": ["endpointId", "message"],
                "properties": {
                    "endpointId": {"type": "string"},
                    "message": {"type": "string"},
                },
            }),
        ),
    });
    out
}

#[utoipa::path(
    get,
    path = "/v1/event-types",
    operation_id = "list_event_types",
    tag = "catalog",
    summary = "Event types",
    description = "Every event type, when it is sent, and the JSON Schema of its body. Bursts arrive as a batch: `{\"id\":\"bat_…\",\"type\":\"batch\",\"created\":…,\"data\":{\"events\":[…]}}` of such bodies (unless the endpoint opts out).",
    responses((status = 200, description = "The event types", body = EventTypeList), ApiErrors),
    security(("bearer" = []))
)]
pub async fn event_types(_caller: Caller) -> Json<EventTypeList> {
    Json(EventTypeList {
        data: event_type_list(),
    })
}

#[utoipa::path(
    get,
    path = "/v1/egress-ips",
    operation_id = "get_egress_ips",
    tag = "catalog",
    summary = "Where deliveries come from",
    description = "The source addresses of webhook requests, to allowlist in a firewall.",
    responses((status = 200, description = "The addresses", body = EgressIps), ApiErrors),
    security(("bearer" = []))
)]
pub async fn egress_ips(State(state): State<ApiState>, _caller: Caller) -> Json<EgressIps> {
    Json(EgressIps {
        ips: state.settings.egress_ips.clone(),
    })
}

#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "get_me",
    tag = "catalog",
    summary = "The key in use",
    responses((status = 200, description = "The caller's key and scope", body = Me), ApiErrors),
    security(("bearer" = []))
)]
pub async fn me(caller: Caller) -> Result<Json<Me>, ApiError> {
    let (scope, account_id) = match caller.scope {
        Scope::Account(a) => ("account", Some(a.to_string())),
        Scope::Operator => ("operator", None),
    };
    Ok(Json(Me {
        key_id: caller.key_id,
        scope: scope.to_owned(),
        account_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_listed_with_its_required_fields() {
        let list = event_type_list();
        assert_eq!(list.len(), EventType::ALL.len() + 1);
        let upgraded = list
            .iter()
            .find(|t| t.event_type == "license.upgraded")
            .unwrap();
        let required = &upgraded.schema["properties"]["data"]["required"];
        assert!(
            required
                .as_array()
                .unwrap()
                .contains(&json!("previousPlan"))
        );
        assert_eq!(
            upgraded.schema["properties"]["type"]["const"],
            "license.upgraded"
        );
        assert!(
            list.iter()
                .any(|t| t.event_type == "webhook.test" && !t.subscribable)
        );
    }

    #[test]
    fn a_real_body_has_every_field_its_schema_requires() {
        for t in EventType::ALL {
            let event = crate::event::sample(
                crate::ids::EventId::from("evt_1"),
                t,
                crate::ids::AccountId::from("a"),
            );
            let body: Value = serde_json::from_slice(&crate::event::customer_body(&event)).unwrap();
            let schema = body_schema(t.as_str(), data_schema(t));
            for field in schema["required"].as_array().unwrap() {
                assert!(body.get(field.as_str().unwrap()).is_some(), "{t}: {field}");
            }
            for field in schema["properties"]["data"]["required"].as_array().unwrap() {
                assert!(
                    body["data"].get(field.as_str().unwrap()).is_some(),
                    "{t}: data.{field}"
                );
            }
            for key in body["data"].as_object().unwrap().keys() {
                assert!(
                    schema["properties"]["data"]["properties"]
                        .get(key)
                        .is_some(),
                    "{t}: data.{key} is not in the schema"
                );
            }
        }
    }
}
