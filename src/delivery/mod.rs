//! The unit of work after the fan-out join: one event for one endpoint, with everything
//! needed to send it, retry it and settle the input offset it came from; and the
//! vocabulary of what becomes of it ([`outcome`]) and the in-memory bound ([`inflight`]).
//! Every stage after the join uses these; they import nothing above the offset book.

pub mod inflight;
pub mod outcome;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::ids::{AccountId, EndpointId, EventId};
use crate::offsets::{Lease, Settle};
use crate::records::envelope::{AttemptSummary, DeliveryEnvelope};

pub use inflight::{InFlight, InFlightCounter};
pub use outcome::{
    DeadLetterReason, DeliveryOutcome, DisableReason, DropReason, ErrorClass, SlowReason,
};

/// The events inside a body that is already a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMembers {
    pub event_ids: Vec<String>,
    pub event_types: Vec<String>,
}

/// Where the input record a delivery came from was read; kept through every retry, so a
/// dead letter still points at the original event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// One event on its way to one endpoint.
#[derive(Debug)]
pub struct Delivery {
    /// The `webhook-id` of this delivery: derived from endpoint and event, so a redelivery
    /// after a crash or a rebalance carries the same id and receivers can dedupe on it.
    pub id: String,
    pub endpoint_id: EndpointId,
    pub account_id: AccountId,
    pub event_id: EventId,
    pub event_type: String,
    /// The exact JSON body a customer receives for this event (shared between endpoints).
    pub body: Bytes,
    /// The event's `created` time, for the end-to-end latency metric.
    pub event_created_ms: i64,
    /// The number of the attempt this send will be (1 = first).
    pub attempt: u32,
    /// True for a delivery a person asked for (read from the requests topic: a test event,
    /// a retry, a replay). It is sent alone, and running out of retries dead-letters it
    /// without disabling the endpoint.
    pub requested: bool,
    /// The events of a body that is already a batch (a batch re-sent as it was), in body
    /// order; `None` for one event. `event_id` and `event_type` are the first of them.
    pub members: Option<Box<BatchMembers>>,
    pub first_attempt_ms: Option<i64>,
    /// Earlier attempts, newest last; carried into retry and dead-letter records.
    pub history: Vec<AttemptSummary>,
    /// The input record this delivery comes from.
    pub origin: Origin,
    /// The record this delivery was read from now (the input record, or a retry record),
    /// and how to settle it.
    pub settle: Settle,
    /// Counts the delivery as in memory until it is dropped.
    pub in_flight: InFlight,
}

impl Delivery {
    /// Settles the input record's share for this delivery and releases its in-flight count.
    pub fn settle(self) {
        self.settle.settle();
    }

    /// True when its partition was revoked (sending it would only duplicate what the new
    /// owner sends).
    pub fn is_stale(&self) -> bool {
        self.settle.is_revoked()
    }

    /// The assignment the delivery was read under.
    pub fn lease(&self) -> &std::sync::Arc<Lease> {
        self.settle.lease()
    }
}

/// The stable id of the delivery of `event` to `endpoint`: `msg_` + 32 hex digits.
pub fn delivery_id(endpoint: &EndpointId, event: &EventId) -> String {
    let digest = Sha256::new()
        .chain_update(endpoint.as_str().as_bytes())
        .chain_update(b"\0")
        .chain_update(event.as_str().as_bytes())
        .finalize();
    format!("msg_{}", hex::encode(&digest[..16]))
}

/// The id of a batch request: derived from its members, so the same batch resent has the
/// same id.
pub fn batch_id<'a>(delivery_ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for id in delivery_ids {
        h.update(id.as_bytes());
        h.update(b"\0");
    }
    format!("bat_{}", hex::encode(&h.finalize()[..16]))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Delivery {
    /// The record that carries this delivery through a retry tier or into the dead-letter
    /// topic: the whole delivery (body included), its history and where it came from.
    pub fn to_envelope(
        &self,
        due_at_ms: i64,
        last_status: Option<u16>,
        last_error: Option<String>,
        dead_letter_reason: Option<DeadLetterReason>,
    ) -> DeliveryEnvelope {
        let (event_ids, event_types) = self.event_lists();
        DeliveryEnvelope {
            delivery_id: self.id.clone(),
            endpoint_id: self.endpoint_id.to_string(),
            account_id: self.account_id.to_string(),
            event_ids,
            event_types,
            batch: self.members.is_some(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
            attempt: self.attempt as i32,
            first_attempt_at_ms: self.first_attempt_ms.unwrap_or(0),
            due_at_ms,
            last_status: last_status.map(i32::from),
            last_error,
            origin_topic: self.origin.topic.to_string(),
            origin_partition: self.origin.partition,
            origin_offset: self.origin.offset,
            history: self.history.clone(),
            dead_letter_reason: dead_letter_reason.map(|r| r.as_str().to_owned()),
        }
    }

    /// Every event id and type this delivery carries, in body order.
    pub fn event_lists(&self) -> (Vec<String>, Vec<String>) {
        match &self.members {
            Some(m) => (m.event_ids.clone(), m.event_types.clone()),
            None => (
                vec![self.event_id.to_string()],
                vec![self.event_type.clone()],
            ),
        }
    }

    /// A delivery read back from a retry tier or the requests topic (`requested`). `settle`
    /// settles that record itself.
    pub fn from_envelope(
        envelope: DeliveryEnvelope,
        settle: Settle,
        in_flight: InFlight,
        requested: bool,
    ) -> Delivery {
        let event_created_ms =
            created_ms_of(&envelope.body).unwrap_or(envelope.first_attempt_at_ms);
        let origin = Origin {
            topic: std::sync::Arc::from(envelope.origin_topic.as_str()),
            partition: envelope.origin_partition,
            offset: envelope.origin_offset,
        };
        let members = (envelope.batch || envelope.event_ids.len() > 1).then(|| {
            Box::new(BatchMembers {
                event_ids: envelope.event_ids.clone(),
                event_types: envelope.event_types.clone(),
            })
        });
        Delivery {
            origin,
            requested,
            members,
            id: envelope.delivery_id,
            endpoint_id: EndpointId::new(envelope.endpoint_id),
            account_id: AccountId::new(envelope.account_id),
            event_id: EventId::new(envelope.event_ids.into_iter().next().unwrap_or_default()),
            event_type: envelope.event_types.into_iter().next().unwrap_or_default(),
            body: Bytes::from(envelope.body),
            event_created_ms,
            attempt: envelope.attempt.max(1) as u32,
            first_attempt_ms: Some(envelope.first_attempt_at_ms),
            history: envelope.history,
            settle,
            in_flight,
        }
    }
}

/// The `created` time of a customer body, for the end-to-end latency of retried deliveries.
fn created_ms_of(body: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Created<'a> {
        #[serde(borrow)]
        created: &'a str,
    }
    let c: Created<'_> = serde_json::from_str(body).ok()?;
    let t = time::OffsetDateTime::parse(c.created, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_stable_and_distinct() {
        let a = delivery_id(&EndpointId::from("ep_1"), &EventId::from("evt_1"));
        assert_eq!(
            a,
            delivery_id(&EndpointId::from("ep_1"), &EventId::from("evt_1"))
        );
        assert_ne!(
            a,
            delivery_id(&EndpointId::from("ep_2"), &EventId::from("evt_1"))
        );
        assert_ne!(
            a,
            delivery_id(&EndpointId::from("ep_1"), &EventId::from("evt_2"))
        );
        // The separator keeps ("ep_1", "2evt") and ("ep_12", "evt") apart.
        assert_ne!(
            delivery_id(&EndpointId::from("ep_1"), &EventId::from("2evt")),
            delivery_id(&EndpointId::from("ep_12"), &EventId::from("evt"))
        );
        assert!(a.starts_with("msg_") && a.len() == 4 + 32);
        assert!(batch_id([a.as_str()]).starts_with("bat_"));
    }
}
