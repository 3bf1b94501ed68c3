//! Newtype identifiers and the signing secret, so ids cannot be mixed up and a secret
//! never prints.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every well-formed id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// True when the id starts with its prefix and has something after it.
            pub fn is_well_formed(&self) -> bool {
                self.0.len() > Self::PREFIX.len() && self.0.starts_with(Self::PREFIX)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A license event id, `evt_…`. Stable through every retry; receivers dedupe on it.
    EventId,
    "evt_"
);
string_id!(
    /// A webhook endpoint (subscription) id, `ep_…`; the key of `webhook-subscriptions`.
    EndpointId,
    "ep_"
);
string_id!(
    /// The customer account an event belongs to and endpoints are registered under:
    /// the fan-out join key. No prefix is imposed on account ids.
    AccountId,
    ""
);

/// A signing secret as customers see it: `whsec_<base64 key bytes>`.
///
/// `Debug` and `Display` print `whsec_***` so a secret never reaches a log line.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret as written, for the places that must show it to its owner (the API).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(format!("{s:?} {s}"), "whsec_*** whsec_***");
    }

    #[test]
    fn ids_check_their_prefix() {
        assert!(EventId::from("evt_1").is_well_formed());
        assert!(!EventId::from("evt_").is_well_formed());
        assert!(!EventId::from("ep_1").is_well_formed());
        assert!(EndpointId::from("ep_x").is_well_formed());
    }
}
