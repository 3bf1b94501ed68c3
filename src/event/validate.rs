//! What the decoder cannot express in types: [`LicenseEvent::validate`], the checks every
//! decoded event passes before it is delivered, and what each type requires.

use time::OffsetDateTime;

use super::invalid::{InvalidRecord, excerpt};
use super::model::LicenseEvent;

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
                id: excerpt(self.id.as_str()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, sample};
    use crate::ids::{AccountId, EventId};

    fn event(t: EventType) -> LicenseEvent {
        sample(
            EventId::from("evt_a1b2c3d4e5f6"),
            t,
            AccountId::from("acc_1"),
        )
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
}
