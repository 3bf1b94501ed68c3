//! Who is told about a notice, decided at send time from the subscriptions table. Pure: the
//! caller looks the endpoints up and passes them in.
//!
//! The order, first match wins:
//!
//! 1. the endpoint's own `contact_email`;
//! 2. the account's default: the `contact_email` of the account's other endpoints (the most
//!    recently updated one that has one), so an owner who set it once is reached for every
//!    endpoint of the account;
//! 3. the operator's `notify.fallback_to`;
//! 4. nobody: the notice is skipped (logged and counted), since retrying cannot conjure an
//!    address.
//!
//! A notice whose endpoint was re-enabled after it was disabled (its status record says
//! enabled, written after the disabling) is skipped as superseded: "your endpoint was
//! disabled" would be wrong by the time it arrives. A table that has not yet applied the
//! disabling shows an older status, so that case is not mistaken for a re-enable.

use lettre::message::Mailbox;

use crate::records::{ENDPOINT_DISABLED, EndpointNotification};
use crate::subscriptions::Endpoint;

/// Where the address came from, for logs and the e-mail's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Endpoint,
    Account,
    Operator,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Endpoint => "endpoint",
            Source::Account => "account",
            Source::Operator => "operator",
        }
    }
}

/// Why a notice is not sent. Each is final: the offset is committed after it is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Neither the endpoint, its account nor the operator has an address.
    NoRecipient,
    /// The endpoint was enabled again after this notice was written.
    Superseded,
    /// A notice type this build does not e-mail about.
    Unsupported(String),
}

impl Skip {
    /// The metric label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Skip::NoRecipient => "no_recipient",
            Skip::Superseded => "superseded",
            Skip::Unsupported(_) => "unsupported",
        }
    }
}

/// What to do with one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Send { to: Mailbox, source: Source },
    Skip(Skip),
}

/// Decides the recipient of `notice`. `endpoint` is the endpoint as the table has it now
/// (`None` if deleted), `account` every endpoint of the notice's account.
pub fn decide(
    notice: &EndpointNotification,
    endpoint: Option<&Endpoint>,
    account: &[Endpoint],
    fallback: Option<&Mailbox>,
) -> Decision {
    if notice.kind != ENDPOINT_DISABLED {
        return Decision::Skip(Skip::Unsupported(notice.kind.clone()));
    }
    if let Some(ep) = endpoint
        && ep
            .status
            .as_ref()
            .is_some_and(|s| s.enabled && s.at_ms > notice.disabled_at_ms)
    {
        return Decision::Skip(Skip::Superseded);
    }
    if let Some(to) = endpoint.and_then(contact) {
        return Decision::Send {
            to,
            source: Source::Endpoint,
        };
    }
    let account_default = account
        .iter()
        .filter(|ep| ep.account_id.as_str() == notice.account_id)
        .filter_map(|ep| contact(ep).map(|to| (ep, to)))
        .max_by(|(a, _), (b, _)| {
            (a.updated_at_ms, a.version, a.id.as_str()).cmp(&(
                b.updated_at_ms,
                b.version,
                b.id.as_str(),
            ))
        });
    if let Some((_, to)) = account_default {
        return Decision::Send {
            to,
            source: Source::Account,
        };
    }
    match fallback {
        Some(to) => Decision::Send {
            to: to.clone(),
            source: Source::Operator,
        },
        None => Decision::Skip(Skip::NoRecipient),
    }
}

/// An endpoint's contact address, if it has one that parses.
fn contact(endpoint: &Endpoint) -> Option<Mailbox> {
    endpoint
        .contact_email
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, EndpointId, Secret};
    use crate::subscriptions::status::EndpointStatus;

    fn notice(endpoint: &str, account: &str) -> EndpointNotification {
        EndpointNotification {
            id: "ntf_1".into(),
            kind: ENDPOINT_DISABLED.into(),
            endpoint_id: endpoint.into(),
            account_id: account.into(),
            url: "https://hooks.example.com/x".into(),
            reason: "consecutive_failures".into(),
            disabled_at_ms: 1_000,
            last_status: Some(500),
            last_error: Some("HTTP 500".into()),
        }
    }

    fn ep(id: &str, account: &str, contact: Option<&str>, updated: i64) -> Endpoint {
        let mut e = Endpoint::new(
            EndpointId::from(id),
            AccountId::from(account),
            "https://hooks.example.com/x".parse().unwrap(),
            Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        );
        e.contact_email = contact.map(str::to_owned);
        e.updated_at_ms = Some(updated);
        e
    }

    fn mailbox(s: &str) -> Mailbox {
        s.parse().unwrap()
    }

    fn sent_to(d: &Decision) -> (String, Source) {
        match d {
            Decision::Send { to, source } => (to.email.to_string(), *source),
            other => panic!("not sent: {other:?}"),
        }
    }

    #[test]
    fn the_endpoint_contact_comes_first() {
        let me = ep("ep_1", "acct", Some("me@customer.example"), 900);
        let other = ep("ep_2", "acct", Some("other@customer.example"), 950);
        let fallback = mailbox("support@licensor.example");
        let d = decide(
            &notice("ep_1", "acct"),
            Some(&me),
            &[me.clone(), other],
            Some(&fallback),
        );
        assert_eq!(
            sent_to(&d),
            ("me@customer.example".into(), Source::Endpoint)
        );
    }

    #[test]
    fn then_the_account_default_from_its_most_recently_updated_endpoint() {
        let me = ep("ep_1", "acct", None, 900);
        let old = ep("ep_2", "acct", Some("old@customer.example"), 100);
        let new = ep("ep_3", "acct", Some("new@customer.example"), 200);
        let none = ep("ep_4", "acct", None, 300);
        let d = decide(
            &notice("ep_1", "acct"),
            Some(&me),
            &[me.clone(), old, new, none],
            None,
        );
        assert_eq!(
            sent_to(&d),
            ("new@customer.example".into(), Source::Account)
        );
        // Also when the endpoint itself is gone from the table.
        let d = decide(
            &notice("ep_1", "acct"),
            None,
            &[ep("ep_2", "acct", Some("x@customer.example"), 1)],
            None,
        );
        assert_eq!(sent_to(&d), ("x@customer.example".into(), Source::Account));
    }

    #[test]
    fn another_accounts_contact_is_never_used() {
        let stranger = ep("ep_9", "acct_other", Some("stranger@else.example"), 5);
        let d = decide(&notice("ep_1", "acct"), None, &[stranger], None);
        assert_eq!(d, Decision::Skip(Skip::NoRecipient));
    }

    #[test]
    fn then_the_operator_then_nobody() {
        let me = ep("ep_1", "acct", None, 900);
        let fallback = mailbox("Support <support@licensor.example>");
        let d = decide(
            &notice("ep_1", "acct"),
            Some(&me),
            std::slice::from_ref(&me),
            Some(&fallback),
        );
        assert_eq!(
            sent_to(&d),
            ("support@licensor.example".into(), Source::Operator)
        );
        let d = decide(
            &notice("ep_1", "acct"),
            Some(&me),
            std::slice::from_ref(&me),
            None,
        );
        assert_eq!(d, Decision::Skip(Skip::NoRecipient));
    }

    #[test]
    fn a_contact_that_does_not_parse_falls_through() {
        let me = ep("ep_1", "acct", Some("not an address"), 900);
        let d = decide(
            &notice("ep_1", "acct"),
            Some(&me),
            std::slice::from_ref(&me),
            None,
        );
        assert_eq!(d, Decision::Skip(Skip::NoRecipient));
    }

    #[test]
    fn a_re_enabled_endpoint_supersedes_the_notice() {
        let n = notice("ep_1", "acct");
        let initial = EndpointStatus::initial(EndpointId::from("ep_1"));
        let disabled =
            initial.disabled_after("consecutive_failures", n.disabled_at_ms, "i1", None, None);
        let mut me = ep("ep_1", "acct", Some("me@customer.example"), 2_000);
        me.status = Some(disabled.enabled_after(n.disabled_at_ms + 60_000, "operator"));
        let d = decide(&n, Some(&me), std::slice::from_ref(&me), None);
        assert_eq!(d, Decision::Skip(Skip::Superseded));
        // Still disabled: told.
        me.status = Some(disabled);
        let d = decide(&n, Some(&me), std::slice::from_ref(&me), None);
        assert_eq!(
            sent_to(&d),
            ("me@customer.example".into(), Source::Endpoint)
        );
        // A table that has not yet applied the disabling shows the older, enabled status:
        // not a re-enable, the owner is told.
        me.status = Some(EndpointStatus {
            at_ms: n.disabled_at_ms - 5_000,
            ..initial
        });
        let d = decide(&n, Some(&me), std::slice::from_ref(&me), None);
        assert_eq!(
            sent_to(&d),
            ("me@customer.example".into(), Source::Endpoint)
        );
    }

    #[test]
    fn other_notice_types_are_not_e_mailed() {
        let mut n = notice("ep_1", "acct");
        n.kind = "endpoint.rotated".into();
        let d = decide(&n, None, &[], Some(&mailbox("ops@licensor.example")));
        assert_eq!(
            d,
            Decision::Skip(Skip::Unsupported("endpoint.rotated".into()))
        );
        assert_eq!(Skip::Unsupported(String::new()).outcome(), "unsupported");
    }
}
