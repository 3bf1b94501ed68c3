//! The fan-out join: which endpoints one event goes to. Pure, so it is property-tested
//! without Kafka or RocksDB.

use std::collections::HashSet;

use crate::ids::AccountId;

use super::endpoint::Endpoint;

/// The endpoints an event of `event_type` for `account` is for: those of that account that
/// their owner has not paused (`enabled`) and that subscribe to the type (empty
/// `event_types` means all), in input order, each id once (the first occurrence wins) so one
/// event never produces two deliveries to one endpoint.
///
/// An endpoint the circuit breaker disabled is still returned: its deliveries are kept on
/// the dead-letter topic (reason `endpoint_disabled`) so re-enabling can replay them. A
/// paused endpoint gets nothing: its owner asked for nothing.
///
/// The account check is part of the join, not left to the caller, so a lookup that returned
/// too much can never leak one customer's events to another's endpoint.
pub fn fan_out<'a>(
    account: &'a AccountId,
    event_type: &'a str,
    endpoints: &'a [Endpoint],
) -> impl Iterator<Item = &'a Endpoint> + 'a {
    let mut seen = HashSet::new();
    endpoints.iter().filter(move |e| {
        e.enabled && e.account_id == *account && e.subscribes_to(event_type) && seen.insert(&e.id)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ids::EndpointId;
    use crate::subscriptions::endpoint::tests::endpoint;

    const TYPES: &[&str] = &[
        "license.created",
        "license.activated",
        "license.expired",
        "payment.failed",
    ];

    fn arb_endpoint() -> impl Strategy<Value = Endpoint> {
        (
            0..6u8,
            0..3u8,
            any::<bool>(),
            proptest::collection::vec(proptest::sample::select(TYPES), 0..3),
        )
            .prop_map(|(id, account, enabled, types)| {
                let mut e = endpoint(&format!("ep_{id}"), &format!("acct_{account}"));
                e.enabled = enabled;
                e.event_types = types.into_iter().map(str::to_owned).collect();
                e
            })
    }

    proptest! {
        #[test]
        fn returns_exactly_the_enabled_subscribed_endpoints_of_the_account(
            endpoints in proptest::collection::vec(arb_endpoint(), 0..12),
            account in 0..3u8,
            event_type in proptest::sample::select(TYPES),
        ) {
            let account = AccountId::new(format!("acct_{account}"));
            let got: Vec<&Endpoint> = fan_out(&account, event_type, &endpoints).collect();

            for e in &got {
                prop_assert!(e.enabled, "never a disabled endpoint");
                prop_assert_eq!(&e.account_id, &account, "never another account's endpoint");
                prop_assert!(e.event_types.is_empty() || e.event_types.iter().any(|t| t == event_type));
            }
            let ids: HashSet<&EndpointId> = got.iter().map(|e| &e.id).collect();
            prop_assert_eq!(ids.len(), got.len(), "no endpoint twice");

            // Exactly: every id that has a qualifying first occurrence is present.
            let mut expected = Vec::new();
            let mut seen = HashSet::new();
            for e in &endpoints {
                let qualifies = e.enabled
                    && e.account_id == account
                    && (e.event_types.is_empty() || e.event_types.iter().any(|t| t == event_type));
                if qualifies && seen.insert(e.id.clone()) {
                    expected.push(e);
                }
            }
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn disabled_and_foreign_endpoints_get_nothing() {
        let acct = AccountId::from("acct_1");
        let mut off = endpoint("ep_off", "acct_1");
        off.enabled = false;
        let other = endpoint("ep_other", "acct_2");
        let mut narrow = endpoint("ep_narrow", "acct_1");
        narrow.event_types = vec!["payment.failed".into()];
        let all = endpoint("ep_all", "acct_1");
        let eps = [off, other, narrow, all];
        let ids = |t| {
            fan_out(&acct, t, &eps)
                .map(|e| e.id.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("license.created"), ["ep_all"]);
        assert_eq!(ids("payment.failed"), ["ep_narrow", "ep_all"]);
    }
}
