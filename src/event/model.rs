//! The license event as the rest of hookrelay sees it: typed, validated, UTC.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::ids::{AccountId, EventId};

use super::body::mask_license_key;
use super::invalid::InvalidRecord;

/// The ten event types the licensing system emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    LicenseCreated,
    LicenseActivated,
    LicenseExpiring,
    LicenseExpired,
    LicenseRenewed,
    LicenseRevoked,
    LicenseUpgraded,
    DomainAdded,
    DomainRemoved,
    PaymentFailed,
}

impl EventType {
    /// Every type, in the order of the design's table.
    pub const ALL: [EventType; 10] = [
        EventType::LicenseCreated,
        EventType::LicenseActivated,
        EventType::LicenseExpiring,
        EventType::LicenseExpired,
        EventType::LicenseRenewed,
        EventType::LicenseRevoked,
        EventType::LicenseUpgraded,
        EventType::DomainAdded,
        EventType::DomainRemoved,
        EventType::PaymentFailed,
    ];

    /// The wire name customers see and subscribe to, e.g. `license.activated`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::LicenseCreated => "license.created",
            EventType::LicenseActivated => "license.activated",
            EventType::LicenseExpiring => "license.expiring",
            EventType::LicenseExpired => "license.expired",
            EventType::LicenseRenewed => "license.renewed",
            EventType::LicenseRevoked => "license.revoked",
            EventType::LicenseUpgraded => "license.upgraded",
            EventType::DomainAdded => "domain.added",
            EventType::DomainRemoved => "domain.removed",
            EventType::PaymentFailed => "payment.failed",
        }
    }

    /// The `data` fields (customer JSON names) this type needs beyond those every event has.
    /// See [`LicenseEvent::validate`] for the table and the reasons.
    pub const fn required_fields(self) -> &'static [&'static str] {
        match self {
            EventType::LicenseActivated | EventType::DomainAdded | EventType::DomainRemoved => {
                &["domain"]
            }
            EventType::LicenseExpiring | EventType::LicenseExpired | EventType::LicenseRenewed => {
                &["expiresAt"]
            }
            EventType::LicenseUpgraded => &["previousPlan"],
            EventType::LicenseCreated | EventType::LicenseRevoked | EventType::PaymentFailed => &[],
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names none of the ten event types.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

/// A money amount in minor units (cents) of an ISO 4217 currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Amount {
    pub minor_units: i64,
    pub currency: String,
}

/// The event payload; customers receive it as `data` (camelCase names there).
///
/// `Debug` masks the license key like the customer body does, so an event can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct EventData {
    /// The full key; [`customer_body`](super::customer_body) masks it.
    pub license_key: String,
    /// The plan tier after this event.
    pub plan: String,
    pub domain: Option<String>,
    pub activations_used: u32,
    pub activation_limit: u32,
    /// `None` for a license that does not expire.
    pub expires_at: Option<OffsetDateTime>,
    pub features: Vec<String>,
    /// The plan before a `license.upgraded` change.
    pub previous_plan: Option<String>,
    /// Why: the revocation reason, the payment decline reason (schema v2).
    pub reason: Option<String>,
    /// The amount charged or due (schema v2).
    pub amount: Option<Amount>,
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventData")
            .field("license_key", &mask_license_key(&self.license_key))
            .field("plan", &self.plan)
            .field("domain", &self.domain)
            .field("activations_used", &self.activations_used)
            .field("activation_limit", &self.activation_limit)
            .field("expires_at", &self.expires_at)
            .field("features", &self.features)
            .field("previous_plan", &self.previous_plan)
            .field("reason", &self.reason)
            .field("amount", &self.amount)
            .finish()
    }
}

/// A decoded, validated license event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseEvent {
    /// `evt_…`; receivers dedupe on it.
    pub id: EventId,
    pub event_type: EventType,
    /// UTC, millisecond precision (the Avro `timestamp-millis` resolution).
    pub created: OffsetDateTime,
    /// The customer; the fan-out join key.
    pub account_id: AccountId,
    pub data: EventData,
}

/// The earliest and latest instants an event may carry: the RFC 3339 range, so every
/// timestamp renders as a four-digit year.
fn in_rfc3339_range(t: OffsetDateTime) -> bool {
    (0..=9999).contains(&t.year())
}

/// The largest count the Avro `int` fields can carry.
const MAX_COUNT: u32 = i32::MAX as u32;

impl LicenseEvent {
    /// Checks what the decoder cannot express in types. Every event needs a well-formed `evt_`
    /// id, a non-empty account id, license key and plan, counts that fit an Avro `int`, and
    /// timestamps in years 0000–9999. On top of that, per type:
    ///
    /// | type | also requires | because the customer action needs it |
    /// |---|---|---|
    /// | `license.created` | — | |
    /// | `license.activated` | `domain` | log the activation against a domain |
    /// | `license.expiring` | `expiresAt` | show when it expires |
    /// | `license.expired` | `expiresAt` | show when it expired |
    /// | `license.renewed` | `expiresAt` | the new expiry |
    /// | `license.revoked` | — (`reason` optional) | |
    /// | `license.upgraded` | `previousPlan` | tell the change apart from the new state |
    /// | `domain.added` | `domain` | update the allowlist |
    /// | `domain.removed` | `domain` | revoke that domain |
    /// | `payment.failed` | — (`reason`, `amount` optional) | v1 producers cannot send them |
    ///
    /// `reason` and `amount` are not required anywhere because schema v1 has no such fields:
    /// requiring them would reject every event from a producer still on v1.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        if !self.id.is_well_formed() {
            return Err(InvalidRecord::BadId {
                id: super::invalid::excerpt(self.id.as_str()),
            });
        }
        let missing = |field: &'static str| InvalidRecord::MissingField {
            event_type: self.event_type,
            field,
        };
        if self.account_id.as_str().trim().is_empty() {
            return Err(missing("account_id"));
        }
        let d = &self.data;
        if d.license_key.trim().is_empty() {
            return Err(missing("licenseKey"));
        }
        if d.plan.trim().is_empty() {
            return Err(missing("plan"));
        }
        let bad =
            |field: &'static str, problem: &'static str| InvalidRecord::BadField { field, problem };
        if !in_rfc3339_range(self.created) {
            return Err(bad("created", "outside years 0000-9999"));
        }
        if d.expires_at.is_some_and(|t| !in_rfc3339_range(t)) {
            return Err(bad("expiresAt", "outside years 0000-9999"));
        }
        if d.activations_used > MAX_COUNT {
            return Err(bad("activationsUsed", "larger than 2147483647"));
        }
        if d.activation_limit > MAX_COUNT {
            return Err(bad("activationLimit", "larger than 2147483647"));
        }
        if d.amount.as_ref().is_some_and(|a| a.currency.is_empty()) {
            return Err(bad("currency", "empty"));
        }
        for &field in self.event_type.required_fields() {
            let present = match field {
                "domain" => d.domain.as_deref().is_some_and(|s| !s.trim().is_empty()),
                "expiresAt" => d.expires_at.is_some(),
                "previousPlan" => d
                    .previous_plan
                    .as_deref()
                    .is_some_and(|s| !s.trim().is_empty()),
                _ => true,
            };
            if !present {
                return Err(missing(field));
            }
        }
        Ok(())
    }
}

/// A valid event of type `event_type` with plausible data for that type, for tests,
/// benches, the demo and the "send a test event" button. `license.activated` is exactly the
/// design's example body.
pub fn sample(id: EventId, event_type: EventType, account_id: AccountId) -> LicenseEvent {
    use time::macros::datetime;
    let owned = |s: &str| Some(s.to_owned());
    let created = datetime!(2026-03-15 14:30:00 UTC);
    let mut data = EventData {
        license_key: "TO-8F3A-22C1-9B7E-F6A8".to_owned(),
        plan: "professional".to_owned(),
        domain: owned("app.customer.com"),
        activations_used: 3,
        activation_limit: 10,
        expires_at: Some(datetime!(2027-03-15 00:00:00 UTC)),
        features: ["analytics", "api-access", "custom-domains"]
            .map(str::to_owned)
            .to_vec(),
        previous_plan: None,
        reason: None,
        amount: None,
    };
    let eur = |minor_units| {
        Some(Amount {
            minor_units,
            currency: "EUR".to_owned(),
        })
    };
    match event_type {
        EventType::LicenseCreated => {
            data.domain = None;
            data.activations_used = 0;
        }
        EventType::LicenseActivated => {}
        EventType::LicenseExpiring => {
            data.domain = None;
            data.expires_at = Some(datetime!(2026-03-22 14:30:00 UTC));
        }
        EventType::LicenseExpired => {
            data.domain = None;
            data.expires_at = Some(created);
        }
        EventType::LicenseRenewed => {
            data.domain = None;
            data.expires_at = Some(datetime!(2028-03-15 00:00:00 UTC));
            data.amount = eur(49_900);
        }
        EventType::LicenseRevoked => {
            data.domain = None;
            data.reason = owned("chargeback");
        }
        EventType::LicenseUpgraded => {
            data.domain = None;
            data.plan = "enterprise".to_owned();
            data.previous_plan = owned("professional");
            data.activation_limit = 50;
            data.features.push("sso".to_owned());
        }
        EventType::DomainAdded => {
            data.domain = owned("staging.customer.com");
            data.activations_used = 4;
        }
        EventType::DomainRemoved => {
            data.domain = owned("old.customer.com");
            data.activations_used = 2;
        }
        EventType::PaymentFailed => {
            data.domain = None;
            data.reason = owned("card_declined");
            data.amount = eur(49_900);
        }
    }
    LicenseEvent {
        id,
        event_type,
        created,
        account_id,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: EventType) -> LicenseEvent {
        sample(
            EventId::from("evt_a1b2c3d4e5f6"),
            t,
            AccountId::from("acc_1"),
        )
    }

    #[test]
    fn type_names_round_trip_and_are_distinct() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        let mut names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), 10);
        assert_eq!(
            "license.Created".parse::<EventType>(),
            Err(UnknownEventType("license.Created".into()))
        );
    }

    #[test]
    fn samples_of_every_type_are_valid() {
        for t in EventType::ALL {
            assert_eq!(event(t).validate(), Ok(()), "{t}");
        }
    }

    #[test]
    fn each_type_requires_its_fields() {
        let mut e = event(EventType::LicenseActivated);
        e.data.domain = None;
        assert_eq!(
            e.validate().unwrap_err().reason(),
            "missing_field",
            "activation without domain"
        );
        e.data.domain = Some("  ".into());
        assert!(e.validate().is_err(), "blank domain");
        for t in [EventType::DomainAdded, EventType::DomainRemoved] {
            let mut e = event(t);
            e.data.domain = None;
            assert!(e.validate().is_err(), "{t}");
        }
        for t in [
            EventType::LicenseExpiring,
            EventType::LicenseExpired,
            EventType::LicenseRenewed,
        ] {
            let mut e = event(t);
            e.data.expires_at = None;
            assert!(
                matches!(
                    e.validate(),
                    Err(InvalidRecord::MissingField {
                        field: "expiresAt",
                        ..
                    })
                ),
                "{t}"
            );
        }
        let mut e = event(EventType::LicenseUpgraded);
        e.data.previous_plan = None;
        assert!(matches!(
            e.validate(),
            Err(InvalidRecord::MissingField {
                field: "previousPlan",
                ..
            })
        ));
        // Types without extra requirements accept a minimal payload.
        for t in [
            EventType::LicenseCreated,
            EventType::LicenseRevoked,
            EventType::PaymentFailed,
        ] {
            let mut e = event(t);
            e.data.domain = None;
            e.data.expires_at = None;
            e.data.reason = None;
            e.data.amount = None;
            e.data.features.clear();
            assert_eq!(e.validate(), Ok(()), "{t}");
        }
    }

    #[test]
    fn ids_accounts_and_ranges_are_checked() {
        let mut e = event(EventType::LicenseCreated);
        e.id = EventId::from("ev_1");
        assert_eq!(e.validate().unwrap_err().reason(), "bad_id");
        let mut e = event(EventType::LicenseCreated);
        e.account_id = AccountId::from("");
        assert!(matches!(
            e.validate(),
            Err(InvalidRecord::MissingField {
                field: "account_id",
                ..
            })
        ));
        let mut e = event(EventType::LicenseCreated);
        e.data.activation_limit = u32::MAX;
        assert_eq!(e.validate().unwrap_err().reason(), "bad_field");
        let mut e = event(EventType::LicenseCreated);
        e.created = time::macros::datetime!(-0001-01-01 00:00:00 UTC);
        assert_eq!(e.validate().unwrap_err().reason(), "bad_field");
    }

    #[test]
    fn debug_never_shows_the_license_key() {
        let e = event(EventType::LicenseCreated);
        let printed = format!("{e:?}");
        assert!(!printed.contains(&e.data.license_key), "{printed}");
        assert!(printed.contains("TO-****-****-****-F6A8"), "{printed}");
    }
}
