//! The unit of work after the fan-out join: one event for one endpoint, with everything
//! needed to send it, retry it and settle the input offset it came from.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;

use crate::ids::{AccountId, EndpointId, EventId};
use crate::ingest::book::Settle;
use crate::records::envelope::{AttemptSummary, DeliveryEnvelope};

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
    pub first_attempt_ms: Option<i64>,
    /// Earlier attempts, newest last; carried into retry and dead-letter records.
    pub history: Vec<AttemptSummary>,
    /// Where the record that produced this delivery was read, and how to settle it.
    pub settle: Settle,
    /// Held while the delivery is in memory; bounds the work in flight.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Delivery {
    /// Settles the input record's share for this delivery and releases its in-flight slot.
    pub fn settle(self) {
        self.settle.settle();
    }

    /// True when its partition was revoked (sending it would only duplicate what the new
    /// owner sends).
    pub fn is_stale(&self) -> bool {
        self.settle.is_revoked()
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
        dead_letter_reason: Option<String>,
    ) -> DeliveryEnvelope {
        let (topic, partition, offset) = self.settle.origin();
        DeliveryEnvelope {
            delivery_id: self.id.clone(),
            endpoint_id: self.endpoint_id.to_string(),
            account_id: self.account_id.to_string(),
            event_ids: vec![self.event_id.to_string()],
            event_types: vec![self.event_type.clone()],
            batch: false,
            body: String::from_utf8_lossy(&self.body).into_owned(),
            attempt: self.attempt as i32,
            first_attempt_at_ms: self.first_attempt_ms.unwrap_or(0),
            due_at_ms,
            last_status: last_status.map(i32::from),
            last_error,
            origin_topic: topic.to_owned(),
            origin_partition: partition,
            origin_offset: offset,
            history: self.history.clone(),
            dead_letter_reason,
        }
    }

    /// A delivery read back from a retry tier. `settle` settles the retry record itself.
    pub fn from_envelope(
        envelope: DeliveryEnvelope,
        settle: Settle,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Delivery {
        let event_created_ms =
            created_ms_of(&envelope.body).unwrap_or(envelope.first_attempt_at_ms);
        Delivery {
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
            permit,
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
