//! The vocabulary of delivery results: what an attempt's error was, what became of a
//! delivery, why one was dead-lettered and why an endpoint was disabled.
//!
//! Each is an enum with exactly one string form ([`as_str`](ErrorClass::as_str)), used alike
//! by records (`webhook-attempts`, dead-letter headers, notices), metric labels and log
//! fields. Nothing decides on a string: code matches on the enum, and the string is only
//! ever written. `ALL` lists every value, so metric series are created up front and tests
//! can check every form.

use std::fmt;

/// Defines a fieldless enum with one string form per variant, `as_str`, `ALL` and `Display`.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The one string form: in records, metric labels and logs.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Why an attempt did not get a 2xx, as a class a customer can act on. Never carries an
    /// address or an internal error chain: those stay in operator logs.
    ErrorClass {
        /// No complete response within the request timeout.
        Timeout = "timeout",
        /// The receiver's host refused the TCP connection.
        ConnectionRefused = "connection_refused",
        /// The connection broke (reset, closed) before a complete response.
        ConnectionReset = "connection_reset",
        /// Any other failure to connect (unreachable network, …).
        ConnectionFailed = "connection_failed",
        /// The endpoint's host name did not resolve.
        Dns = "dns",
        /// The TLS handshake failed (untrusted or expired certificate, protocol mismatch).
        Tls = "tls",
        /// The SSRF guard refused the destination address; nothing was sent.
        RefusedByPolicy = "refused_by_policy",
        /// The endpoint answered with a redirect, which is never followed.
        Http3xx = "http_3xx",
        /// The endpoint answered 429 Too Many Requests.
        Http429 = "http_429",
        /// The endpoint answered another 4xx.
        Http4xx = "http_4xx",
        /// The endpoint answered 5xx.
        Http5xx = "http_5xx",
        /// A status outside 200–599 (1xx as a final answer, or nonsense).
        HttpOther = "http_other",
        /// The response was not valid HTTP.
        InvalidResponse = "invalid_response",
        /// The request could not be signed (no usable secret).
        Signing = "signing",
        /// Anything else; details are in the operator log.
        Other = "other",
    }
);

impl ErrorClass {
    /// A short description of a failed attempt that is safe to show the receiver's owner:
    /// the status when a response arrived, else what the class means in words. Never an
    /// address or an error chain.
    pub fn describe(self, status: Option<u16>) -> String {
        if let Some(status) = status {
            return format!("HTTP {status}");
        }
        match self {
            ErrorClass::Timeout => "no response within the request timeout",
            ErrorClass::ConnectionRefused => "connection refused",
            ErrorClass::ConnectionReset => "connection closed before a complete response",
            ErrorClass::ConnectionFailed => "could not connect",
            ErrorClass::Dns => "the host name did not resolve",
            ErrorClass::Tls => "TLS handshake failed",
            ErrorClass::RefusedByPolicy => {
                "refused: the URL resolves to an address deliveries may not go to"
            }
            ErrorClass::InvalidResponse => "the response was not valid HTTP",
            ErrorClass::Signing => "the request could not be signed",
            ErrorClass::Http3xx
            | ErrorClass::Http429
            | ErrorClass::Http4xx
            | ErrorClass::Http5xx
            | ErrorClass::HttpOther
            | ErrorClass::Other => "the request failed",
        }
        .to_owned()
    }

    /// The class of a non-2xx status.
    pub fn of_status(status: u16) -> ErrorClass {
        match status {
            300..=399 => ErrorClass::Http3xx,
            429 => ErrorClass::Http429,
            400..=499 => ErrorClass::Http4xx,
            500..=599 => ErrorClass::Http5xx,
            _ => ErrorClass::HttpOther,
        }
    }
}

string_enum!(
    /// What became of a delivery after one step of handling: the `outcome` of attempt records
    /// and the label of `hookrelay_deliveries_total`.
    DeliveryOutcome {
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Written to a retry tier for a later attempt.
        RetryScheduled = "retry_scheduled",
        /// Written to the dead-letter topic; no further attempt.
        DeadLettered = "dead_lettered",
        /// Dropped on purpose: the endpoint was deleted, so there is nobody to keep it for.
        Dropped = "dropped",
    }
);

string_enum!(
    /// Why a delivery went to the dead-letter topic.
    DeadLetterReason {
        /// Every scheduled attempt failed.
        RetriesExhausted = "retries_exhausted",
        /// The endpoint is disabled (by the circuit breaker); kept so re-enabling can replay it.
        EndpointDisabled = "endpoint_disabled",
        /// The endpoint answered 410 Gone.
        EndpointGone = "endpoint_gone",
        /// The endpoint id now belongs to another account than the event's.
        AccountMismatch = "account_mismatch",
        /// The record would exceed the broker's size limit; kept in a smaller form.
        TooLarge = "too_large",
        /// A retry-tier record that does not decode, kept byte for byte.
        UndecodableRetryRecord = "undecodable_retry_record",
    }
);

string_enum!(
    /// Why a delivery was dropped without being kept anywhere.
    DropReason {
        /// The endpoint was deleted: nobody to keep it for.
        EndpointDeleted = "endpoint_deleted",
        /// Its owner paused the endpoint (`enabled = false` on the endpoint record): they
        /// asked for nothing while paused.
        EndpointPaused = "endpoint_paused",
    }
);

string_enum!(
    /// Why the circuit breaker disabled an endpoint.
    DisableReason {
        /// `retry.breaker_threshold` failed attempts in a row.
        ConsecutiveFailures = "consecutive_failures",
        /// A delivery's final scheduled attempt failed.
        RetriesExhausted = "retries_exhausted",
        /// The endpoint answered 410 Gone.
        EndpointGone = "endpoint_gone",
    }
);

impl DisableReason {
    /// The dead-letter reason of the delivery whose failure caused this disabling.
    pub fn dead_letter_reason(self) -> DeadLetterReason {
        match self {
            DisableReason::ConsecutiveFailures => DeadLetterReason::EndpointDisabled,
            DisableReason::RetriesExhausted => DeadLetterReason::RetriesExhausted,
            DisableReason::EndpointGone => DeadLetterReason::EndpointGone,
        }
    }

    /// Reads a reason back from a record written by this or an older build; unknown text
    /// (a newer build's reason) is kept as `None` rather than guessed.
    pub fn parse(text: &str) -> Option<DisableReason> {
        DisableReason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == text)
    }
}

/// Why a worker judged its endpoint slow, so that what does not fit its queue goes to a
/// retry tier (label of `hookrelay_endpoints_slow_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowReason {
    /// Its last request failed.
    Failing,
    /// Every send slot has held a request for a second, far longer than others take.
    Hanging,
    /// Its own rate limit keeps its queue from draining in time.
    Throttled,
    /// Much slower than the other endpoints, too slow to drain its queue in time.
    Lagging,
}

impl SlowReason {
    pub const ALL: [SlowReason; 4] = [
        SlowReason::Failing,
        SlowReason::Hanging,
        SlowReason::Throttled,
        SlowReason::Lagging,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlowReason::Failing => "failing",
            SlowReason::Hanging => "hanging",
            SlowReason::Throttled => "throttled",
            SlowReason::Lagging => "lagging",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn distinct_snake_case(forms: &[&'static str]) {
        let set: HashSet<&str> = forms.iter().copied().collect();
        assert_eq!(set.len(), forms.len(), "duplicate string form in {forms:?}");
        for f in forms {
            assert!(
                !f.is_empty()
                    && f.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{f:?} is not a snake_case label"
            );
        }
    }

    #[test]
    fn every_string_form_is_a_distinct_label() {
        distinct_snake_case(
            &ErrorClass::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        );
        distinct_snake_case(
            &DeliveryOutcome::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        );
        distinct_snake_case(
            &DeadLetterReason::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        );
        distinct_snake_case(
            &DropReason::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        );
        distinct_snake_case(
            &DisableReason::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn statuses_map_to_their_class() {
        let cases = [
            (301, ErrorClass::Http3xx),
            (400, ErrorClass::Http4xx),
            (404, ErrorClass::Http4xx),
            (429, ErrorClass::Http429),
            (500, ErrorClass::Http5xx),
            (599, ErrorClass::Http5xx),
            (100, ErrorClass::HttpOther),
            (600, ErrorClass::HttpOther),
        ];
        for (status, class) in cases {
            assert_eq!(ErrorClass::of_status(status), class, "status {status}");
        }
    }

    #[test]
    fn descriptions_never_carry_more_than_the_status_or_class() {
        assert_eq!(ErrorClass::Http5xx.describe(Some(503)), "HTTP 503");
        for class in ErrorClass::ALL {
            let text = class.describe(None);
            assert!(
                !text.is_empty() && !text.contains(char::is_numeric),
                "{text}"
            );
        }
    }

    #[test]
    fn disable_reasons_read_back() {
        for r in DisableReason::ALL {
            assert_eq!(DisableReason::parse(r.as_str()), Some(*r));
        }
        assert_eq!(DisableReason::parse("from_the_future"), None);
    }
}
