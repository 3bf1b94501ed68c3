//! The JSON bodies customers receive: the one serializer for a single event and the batch
//! wrapper around already-rendered event bodies.
//!
//! Shape, for every type (optional fields are omitted when absent, never `null`):
//!
//! ```json
//! {"id":"evt_a1b2c3d4e5f6","type":"license.activated","created":"2026-03-15T14:30:00Z",
//!  "data":{"licenseKey":"TO-****-****-****-F6A8","plan":"professional","domain":"app.customer.com",
//!          "activationsUsed":3,"activationLimit":10,"expiresAt":"2027-03-15T00:00:00Z",
//!          "features":["analytics","api-access","custom-domains"]}}
//! ```
//!
//! then, when present, `previousPlan`, `reason`, `amount` (minor units) and `currency`.
//! Timestamps are RFC 3339 in UTC with `Z`: whole seconds when the millisecond part is zero
//! (`2026-03-15T14:30:00Z`), else exactly three fractional digits (`2026-03-15T14:30:00.120Z`),
//! the precision events carry.

use std::fmt;

use serde::{Serialize, Serializer};
use time::{OffsetDateTime, UtcOffset};

use super::mask::mask_license_key;
use super::model::LicenseEvent;

/// Renders an instant as RFC 3339 UTC (see the module docs for the precision rule).
#[derive(Clone, Copy)]
pub(crate) struct Rfc3339(pub OffsetDateTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0.to_offset(UtcOffset::UTC);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        let ms = t.millisecond();
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Formats an instant the way customer bodies do.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    Rfc3339(t).to_string()
}

#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'static str,
    created: Rfc3339,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    license_key: String,
    plan: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
    activations_used: u32,
    activation_limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Rfc3339>,
    features: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_plan: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
}

/// The JSON body a customer receives for one event (see the module docs). The license key is
/// masked with [`mask_license_key`]; the full key never leaves.
pub fn customer_body(event: &LicenseEvent) -> Vec<u8> {
    let d = &event.data;
    let body = Body {
        id: event.id.as_str(),
        event_type: event.event_type.as_str(),
        created: Rfc3339(event.created),
        data: Data {
            license_key: mask_license_key(&d.license_key),
            plan: &d.plan,
            domain: d.domain.as_deref(),
            activations_used: d.activations_used,
            activation_limit: d.activation_limit,
            expires_at: d.expires_at.map(Rfc3339),
            features: &d.features,
            previous_plan: d.previous_plan.as_deref(),
            reason: d.reason.as_deref(),
            amount: d.amount.as_ref().map(|a| a.minor_units),
            currency: d.amount.as_ref().map(|a| a.currency.as_str()),
        },
    };
    let mut out = Vec::with_capacity(320);
    write_json(&mut out, &body);
    out
}

/// A burst sent as one request:
/// `{"id":"bat_…","type":"batch","created":…,"data":{"events":[…]}}`, each element one
/// event body exactly as [`customer_body`] rendered it (copied verbatim, not re-parsed).
pub fn batch_body(batch_id: &str, created: OffsetDateTime, event_bodies: &[&[u8]]) -> Vec<u8> {
    let len: usize = event_bodies.iter().map(|b| b.len() + 1).sum();
    let mut out = Vec::with_capacity(len + batch_id.len() + 96);
    out.extend_from_slice(b"{\"id\":");
    write_json(&mut out, batch_id);
    out.extend_from_slice(b",\"type\":\"batch\",\"created\":\"");
    out.extend_from_slice(Rfc3339(created).to_string().as_bytes());
    out.extend_from_slice(b"\",\"data\":{\"events\":[");
    for (i, body) in event_bodies.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(body);
    }
    out.extend_from_slice(b"]}}");
    out
}

/// Appends `value` as JSON. Only for this crate's own body and record structs: writing
/// into a Vec cannot fail, and they hold strings, integers and sequences whose `Serialize`
/// impls never return an error (every map key is a field name), so the `expect` below is
/// unreachable whatever the event's contents.
pub(crate) fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("serializing strings and integers into a Vec");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::model::{EventType, sample};
    use crate::ids::{AccountId, EventId};
    use time::macros::datetime;

    #[test]
    fn matches_the_documented_example() {
        let e = sample(
            EventId::from("evt_a1b2c3d4e5f6"),
            EventType::LicenseActivated,
            AccountId::from("acc_1"),
        );
        let body = String::from_utf8(customer_body(&e)).unwrap();
        assert_eq!(
            body,
            r#"{"id":"evt_a1b2c3d4e5f6","type":"license.activated","created":"2026-03-15T14:30:00Z","data":{"licenseKey":"TO-****-****-****-F6A8","plan":"professional","domain":"app.customer.com","activationsUsed":3,"activationLimit":10,"expiresAt":"2027-03-15T00:00:00Z","features":["analytics","api-access","custom-domains"]}}"#
        );
    }

    #[test]
    fn timestamps_are_utc_z_with_millis_only_when_present() {
        let t = datetime!(2026-03-15 14:30:00 UTC);
        assert_eq!(format_timestamp(t), "2026-03-15T14:30:00Z");
        let t = datetime!(2026-03-15 14:30:00.12 UTC);
        assert_eq!(format_timestamp(t), "2026-03-15T14:30:00.120Z");
        // Below a millisecond is not carried.
        let t = datetime!(2026-03-15 14:30:00.000_9 UTC);
        assert_eq!(format_timestamp(t), "2026-03-15T14:30:00Z");
        // Other offsets are converted, not relabelled.
        let t = datetime!(2026-03-15 16:30:00 +02:00);
        assert_eq!(format_timestamp(t), "2026-03-15T14:30:00Z");
        let t = datetime!(0099-01-02 03:04:05 UTC);
        assert_eq!(format_timestamp(t), "0099-01-02T03:04:05Z");
    }

    #[test]
    fn optional_fields_are_omitted_not_null() {
        let mut e = sample(
            EventId::from("evt_1"),
            EventType::LicenseCreated,
            AccountId::from("acc_1"),
        );
        e.data.domain = None;
        e.data.expires_at = None;
        let body = String::from_utf8(customer_body(&e)).unwrap();
        assert!(!body.contains("null"), "{body}");
        assert!(
            !body.contains("\"domain\"") && !body.contains("\"expiresAt\""),
            "{body}"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let mut e = sample(
            EventId::from("evt_1"),
            EventType::LicenseCreated,
            AccountId::from("acc_1"),
        );
        e.data.plan = "pro \"plus\"\n\u{1}".into();
        let body = customer_body(&e);
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["data"]["plan"], "pro \"plus\"\n\u{1}");
    }

    #[test]
    fn batches_wrap_bodies_verbatim() {
        let a = br#"{"id":"evt_1","x":1}"#;
        let b = br#"{"id":"evt_2", "y" : [ ] }"#;
        let body = batch_body("bat_1", datetime!(2026-03-15 14:30:00.5 UTC), &[a, b]);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"id":"bat_1","type":"batch","created":"2026-03-15T14:30:00.500Z","data":{"events":[{"id":"evt_1","x":1},{"id":"evt_2", "y" : [ ] }]}}"#
        );
        let empty = batch_body("bat_\"", datetime!(2026-03-15 14:30:00 UTC), &[]);
        let parsed: serde_json::Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(parsed["id"], "bat_\"");
        assert_eq!(parsed["data"]["events"], serde_json::json!([]));
    }
}
