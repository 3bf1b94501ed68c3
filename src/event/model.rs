//! The license event as the rest of hookrelay sees it: typed, validated, UTC.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::ids::{AccountId, EventId};

use super::mask::mask_license_key;

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
    fn debug_never_shows_the_license_key() {
        let e = event(EventType::LicenseCreated);
        let printed = format!("{e:?}");
        assert!(!printed.contains(&e.data.license_key), "{printed}");
        assert!(printed.contains("TO-****-****-****-F6A8"), "{printed}");
    }
}
