//! The endpoint status record: whether the circuit breaker has disabled an endpoint, as its
//! own record on `webhook-subscriptions` under the key `status:<endpoint id>`. Pure.
//!
//! The endpoint record (key `<endpoint id>`) belongs to its owner and operators; the status
//! record belongs to the breaker and to whoever re-enables. Keeping them apart means a
//! disabling never overwrites a concurrent change to the endpoint (a secret rotation), and a
//! disabling that lands after a deletion never re-creates the endpoint: a status without an
//! endpoint is inert. Each status carries an `epoch`; disabling and re-enabling each write
//! `epoch + 1`, the highest epoch wins and of two records with one epoch the first wins, so
//! every instance agrees which of two simultaneous disablings happened.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::ids::EndpointId;
use crate::records::avro::{AvroError, VersionedSchema};

/// Why a status record was rejected. Never carries record content.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("endpoint id {id} in a status record is not well-formed")]
    InvalidId { id: EndpointId },
    #[error("a status epoch must not be negative")]
    NegativeEpoch,
    #[error("JSON status record does not decode")]
    Json(#[source] serde_json::Error),
    #[error("Avro status record does not decode or encode")]
    Avro(#[source] Box<AvroError>),
    /// The embedded status schema is unusable: a build defect, caught by the unit tests.
    #[error("the built-in endpoint status schema is unusable")]
    Schema(#[source] &'static AvroError),
}

/// The key prefix of status records.
pub const STATUS_KEY_PREFIX: &str = "status:";

static STATUS_SCHEMA: LazyLock<Result<VersionedSchema, AvroError>> = LazyLock::new(|| {
    VersionedSchema::new(
        "endpoint_status",
        &[(1, include_str!("../../schemas/endpoint_status.v1.avsc"))],
    )
});

pub(crate) fn status_schema() -> Result<&'static VersionedSchema, StatusError> {
    STATUS_SCHEMA.as_ref().map_err(StatusError::Schema)
}

/// The breaker's view of one endpoint (schema `endpoint_status`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub endpoint_id: EndpointId,
    /// 0 for an endpoint that was never disabled; +1 per disabling or re-enabling.
    pub epoch: i64,
    pub enabled: bool,
    #[serde(default)]
    pub reason: Option<String>,
    pub at_ms: i64,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub last_status: Option<i32>,
    #[serde(default)]
    pub last_error: Option<String>,
}

impl EndpointStatus {
    /// The status of an endpoint that has no status record: enabled, epoch 0.
    pub fn initial(endpoint_id: EndpointId) -> Self {
        EndpointStatus {
            endpoint_id,
            epoch: 0,
            enabled: true,
            reason: None,
            at_ms: 0,
            by: None,
            last_status: None,
            last_error: None,
        }
    }

    /// The status that disables the endpoint after this one.
    pub fn disabled_after(
        &self,
        reason: &str,
        at_ms: i64,
        by: &str,
        last_status: Option<u16>,
        last_error: Option<String>,
    ) -> Self {
        EndpointStatus {
            endpoint_id: self.endpoint_id.clone(),
            epoch: self.epoch + 1,
            enabled: false,
            reason: Some(reason.to_owned()),
            at_ms,
            by: Some(by.to_owned()),
            last_status: last_status.map(i32::from),
            last_error,
        }
    }

    /// The status that re-enables the endpoint after this one.
    pub fn enabled_after(&self, at_ms: i64, by: &str) -> Self {
        EndpointStatus {
            endpoint_id: self.endpoint_id.clone(),
            epoch: self.epoch + 1,
            enabled: true,
            reason: Some("re_enabled".to_owned()),
            at_ms,
            by: Some(by.to_owned()),
            last_status: None,
            last_error: None,
        }
    }

    /// True when `self` (already stored) keeps its place against `incoming`: a lower epoch
    /// never replaces a higher one, and of two records with one epoch the first stays.
    pub fn supersedes(&self, incoming: &EndpointStatus) -> bool {
        incoming.epoch <= self.epoch
    }
}

/// `ntf_` + a digest of the endpoint and the epoch that disabled it: stable for one
/// disabling, so a notice written twice (a crash after writing it, before forgetting it)
/// carries one id that e-mail and paging services dedupe on.
pub fn notice_id(endpoint: &EndpointId, epoch: i64) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::new()
        .chain_update(endpoint.as_str().as_bytes())
        .chain_update(epoch.to_be_bytes())
        .finalize();
    format!("ntf_{}", hex::encode(&d[..12]))
}

/// `status:<endpoint id>`: the key of an endpoint's status record.
pub fn status_key(id: &EndpointId) -> String {
    format!("{STATUS_KEY_PREFIX}{id}")
}

/// The endpoint id of a status key, if `key` is one.
pub fn parse_status_key(key: &str) -> Option<EndpointId> {
    key.strip_prefix(STATUS_KEY_PREFIX).map(EndpointId::from)
}

/// Encodes a status record as the topic carries it (Avro single-object encoding).
pub fn encode_status(status: &EndpointStatus) -> Result<Vec<u8>, StatusError> {
    if !status.endpoint_id.is_well_formed() {
        return Err(StatusError::InvalidId {
            id: status.endpoint_id.clone(),
        });
    }
    status_schema()?
        .encode(status)
        .map_err(|e| StatusError::Avro(Box::new(e)))
}

/// Decodes a status record value: JSON when it starts with `{` (for people writing one by
/// hand), Avro otherwise.
pub fn decode_status(bytes: &[u8]) -> Result<EndpointStatus, StatusError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let status: EndpointStatus = if first == Some(&b'{') {
        serde_json::from_slice(bytes).map_err(StatusError::Json)?
    } else {
        status_schema()?
            .decode(bytes)
            .map_err(|e| StatusError::Avro(Box::new(e)))?
    };
    if status.epoch < 0 {
        return Err(StatusError::NegativeEpoch);
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disabled(epoch: i64) -> EndpointStatus {
        EndpointStatus {
            epoch,
            ..EndpointStatus::initial(EndpointId::from("ep_1")).disabled_after(
                "consecutive_failures",
                5,
                "inst_a",
                Some(503),
                Some("HTTP 503".into()),
            )
        }
    }

    #[test]
    fn notice_ids_are_stable_per_disabling() {
        let id = EndpointId::from("ep_1");
        assert_eq!(notice_id(&id, 3), notice_id(&id, 3));
        assert_ne!(notice_id(&id, 3), notice_id(&id, 4));
        assert_ne!(notice_id(&id, 3), notice_id(&EndpointId::from("ep_2"), 3));
    }

    #[test]
    fn keys_round_trip_and_never_look_like_endpoint_ids() {
        let id = EndpointId::from("ep_1");
        let key = status_key(&id);
        assert_eq!(key, "status:ep_1");
        assert_eq!(parse_status_key(&key), Some(id));
        assert_eq!(parse_status_key("ep_1"), None);
        assert!(!EndpointId::from(key.as_str()).is_well_formed());
    }

    #[test]
    fn avro_and_json_decode_to_the_same_status() {
        let s = disabled(3);
        assert_eq!(decode_status(&encode_status(&s).unwrap()).unwrap(), s);
        let json = br#"{"endpoint_id":"ep_1","epoch":4,"enabled":true,"at_ms":9}"#;
        let by_hand = decode_status(json).unwrap();
        assert_eq!(by_hand.epoch, 4);
        assert!(by_hand.enabled);
        assert!(
            decode_status(br#"{"endpoint_id":"ep_1","epoch":-1,"enabled":true,"at_ms":9}"#)
                .is_err()
        );
        assert!(decode_status(b"\x00garbage").is_err());
    }

    #[test]
    fn higher_epochs_win_and_the_first_of_an_epoch_stays() {
        let initial = EndpointStatus::initial(EndpointId::from("ep_1"));
        let first = initial.disabled_after("consecutive_failures", 1, "inst_a", None, None);
        let rival = initial.disabled_after("retries_exhausted", 2, "inst_b", None, None);
        assert_eq!(first.epoch, 1);
        assert!(!initial.supersedes(&first));
        assert!(first.supersedes(&rival), "same epoch: the first stays");
        let re_enabled = first.enabled_after(3, "operator");
        assert!(!first.supersedes(&re_enabled));
        assert!(re_enabled.supersedes(&first));
        assert!(re_enabled.enabled && re_enabled.epoch == 2);
    }
}
