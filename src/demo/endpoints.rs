//! The demo's accounts and endpoints: which receiver each endpoint points at and which
//! event types it subscribes to.

use super::common::{ACME, GLOBEX};
use super::receivers::{Receivers, Role};

use crate::delivery::now_ms;
use crate::event::EventType;
use crate::ids::{AccountId, EndpointId};
use crate::subscriptions::Endpoint;

/// A sample endpoint and the receiver behind it.
pub(super) struct DemoEndpoint {
    pub(super) role: Role,
    pub(super) endpoint: Endpoint,
}

/// The event types each sample endpoint subscribes to (empty: all).
pub fn subscribed_types(role: Role) -> Vec<EventType> {
    match role {
        Role::Healthy | Role::Down => Vec::new(),
        Role::Flaky => vec![
            EventType::LicenseActivated,
            EventType::LicenseRevoked,
            EventType::LicenseUpgraded,
            EventType::DomainAdded,
            EventType::DomainRemoved,
            EventType::PaymentFailed,
        ],
        // Not license.created: the bulk import stays off the slow endpoint.
        Role::Slow => vec![
            EventType::LicenseExpiring,
            EventType::LicenseExpired,
            EventType::LicenseRenewed,
            EventType::PaymentFailed,
        ],
    }
}

/// The account each sample endpoint belongs to: Acme has the healthy and slow ones and gets
/// the bulk import; Globex has the flaky and down ones.
pub fn account_of(role: Role) -> &'static str {
    match role {
        Role::Healthy | Role::Slow => ACME,
        Role::Flaky | Role::Down => GLOBEX,
    }
}

pub(super) fn demo_endpoints(receivers: &Receivers) -> Vec<DemoEndpoint> {
    let now = now_ms();
    [Role::Healthy, Role::Slow, Role::Flaky, Role::Down]
        .into_iter()
        .map(|role| {
            let r = receivers.get(role);
            DemoEndpoint {
                role,
                endpoint: Endpoint {
                    description: Some(format!("demo receiver: {}", role.describe())),
                    event_types: subscribed_types(role)
                        .iter()
                        .map(|t| t.as_str().to_owned())
                        .collect(),
                    created_at_ms: Some(now),
                    updated_at_ms: Some(now),
                    contact_email: Some(format!(
                        "webhooks@{}.example",
                        account_of(role).trim_start_matches("acct_")
                    )),
                    ..Endpoint::new(
                        EndpointId::new(format!("ep_demo_{}", role.name())),
                        AccountId::from(account_of(role)),
                        r.url.clone(),
                        r.secret.clone(),
                    )
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::demo::feed::stream_event;
    use crate::event::EventType;

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-03-15 14:30:00.123456 UTC)
    }

    #[test]
    fn the_bulk_import_reaches_only_the_fast_endpoint() {
        let created = EventType::LicenseCreated;
        for role in [Role::Healthy, Role::Slow] {
            assert_eq!(account_of(role), ACME);
        }
        let subscribes = |role| {
            let types = subscribed_types(role);
            types.is_empty() || types.contains(&created)
        };
        assert!(subscribes(Role::Healthy));
        assert!(
            !subscribes(Role::Slow),
            "the slow endpoint sits the burst out"
        );
    }

    #[test]
    fn each_endpoint_gets_part_of_the_stream() {
        for role in [Role::Healthy, Role::Flaky, Role::Slow, Role::Down] {
            let hits = (0..20)
                .map(|i| stream_event("r", i, at()).0)
                .filter(|e| e.account_id.as_str() == account_of(role))
                .filter(|e| {
                    let t = subscribed_types(role);
                    t.is_empty() || t.contains(&e.event_type)
                })
                .count();
            assert!(hits >= 4, "{role:?} gets {hits} of 20 events");
        }
    }
}
