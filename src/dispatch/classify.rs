//! What one HTTP attempt's result means: delivered, gone, or failed with an error class and
//! a `Retry-After`. Pure: the HTTP client turns a reqwest result into an [`AttemptResult`];
//! [`classify`] decides, with the clock passed in; the [`plan`](crate::retry::plan) decides
//! what follows.

use std::time::{Duration, SystemTime};

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::delivery::ErrorClass;
use crate::retry::Verdict;

/// What happened when one request was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered. `retry_after` is the raw `Retry-After` header, if any.
    Response {
        status: u16,
        retry_after: Option<String>,
    },
    /// No usable response; the class says why (timeout, refused, TLS, our SSRF guard…).
    NoResponse(ErrorClass),
}

impl AttemptResult {
    /// The HTTP status, when a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            AttemptResult::Response { status, .. } => Some(*status),
            AttemptResult::NoResponse(_) => None,
        }
    }
}

/// Classifies one attempt. Only a 2xx delivers: a response arriving is not success.
///
/// Everything that is neither 2xx nor 410 fails and is retried, including 4xx other than 410:
/// a receiver's 401 after a secret rotation or 404 during a deploy is usually temporary, and
/// the retry tiers and the circuit breaker bound the cost of retrying a permanent one.
/// Redirects (3xx) are not followed, so they are failures too. `Retry-After` is honoured on
/// 429 and 503 only, where HTTP defines it as "come back later".
pub fn classify(result: &AttemptResult, now: SystemTime) -> Verdict {
    match result {
        AttemptResult::Response { status, .. } if (200..300).contains(status) => Verdict::Delivered,
        AttemptResult::Response { status: 410, .. } => Verdict::Gone,
        AttemptResult::Response {
            status,
            retry_after,
        } => Verdict::Failed {
            class: ErrorClass::of_status(*status),
            not_before: match (status, retry_after) {
                (429 | 503, Some(value)) => parse_retry_after(value, now),
                _ => None,
            },
        },
        AttemptResult::NoResponse(class) => Verdict::Failed {
            class: *class,
            not_before: None,
        },
    }
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delta-seconds, or an HTTP-date measured
/// from `now`. A date in the past means "now" (zero). Unparseable values give `None`, so the
/// ordinary schedule applies rather than a guess.
///
/// A delta too large for a `u64` saturates: the receiver clearly means "not for a long time".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            value
                .parse::<u64>()
                .map_or(Duration::MAX, Duration::from_secs),
        );
    }
    let now = OffsetDateTime::from(now);
    let at = parse_http_date(value, now)?;
    // Negative (a past date) does not convert: retry as soon as the schedule allows.
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

/// The three HTTP-date forms recipients must accept (RFC 9110 §5.6.7), all in GMT.
fn parse_http_date(value: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    // IMF-fixdate, the one senders should use: "Sun, 06 Nov 1994 08:49:37 GMT".
    let imf = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    // asctime: "Sun Nov  6 08:49:37 1994".
    let asctime = format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    PrimitiveDateTime::parse(value, imf)
        .or_else(|_| PrimitiveDateTime::parse(value, asctime))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
        .or_else(|| parse_rfc850(value, now))
}

/// The obsolete RFC 850 form, "Sunday, 06-Nov-94 08:49:37 GMT". Its two-digit year is read as
/// RFC 9110 says: the year in this century, unless that is more than 50 years ahead, in which
/// case the one a century earlier.
fn parse_rfc850(value: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let (_weekday, rest) = value.split_once(", ")?;
    let (date, clock) = rest.split_once(' ')?;
    let mut parts = date.split('-');
    let (day, month, yy) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || yy.len() != 2 || !yy.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = yy.parse().ok()?;
    let mut year = now.year() - now.year().rem_euclid(100) + yy;
    if year > now.year() + 50 {
        year -= 100;
    }
    let expanded = format!("{day} {month} {year} {clock}");
    let form = format_description!("[day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
    PrimitiveDateTime::parse(&expanded, form)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06T08:49:07Z, thirty seconds before the RFC's example date.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_747)
    }

    fn response(status: u16, retry_after: Option<&str>) -> AttemptResult {
        AttemptResult::Response {
            status,
            retry_after: retry_after.map(str::to_owned),
        }
    }

    fn retry_after_secs(verdict: &Verdict) -> Option<Option<u64>> {
        match verdict {
            Verdict::Failed { not_before, .. } => Some(not_before.map(|d| d.as_secs())),
            _ => None,
        }
    }

    #[test]
    fn responses_classify_by_status() {
        for status in [200, 201, 204, 299] {
            assert_eq!(classify(&response(status, None), now()), Verdict::Delivered);
        }
        assert_eq!(classify(&response(410, None), now()), Verdict::Gone);
        for status in [
            100, 199, 300, 301, 302, 304, 400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504,
            599,
        ] {
            assert_eq!(
                classify(&response(status, None), now()),
                Verdict::Failed {
                    class: ErrorClass::of_status(status),
                    not_before: None
                },
                "status {status}"
            );
        }
    }

    #[test]
    fn transport_failures_keep_their_class() {
        for class in ErrorClass::ALL {
            assert_eq!(
                classify(&AttemptResult::NoResponse(*class), now()),
                Verdict::Failed {
                    class: *class,
                    not_before: None
                }
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        let cases: &[(u16, &str, Option<u64>)] = &[
            (429, "120", Some(120)),
            (503, "0", Some(0)),
            (503, " 7 ", Some(7)),
            (429, "Sun, 06 Nov 1994 08:49:37 GMT", Some(30)),
            (503, "Sunday, 06-Nov-94 08:49:37 GMT", Some(30)),
            (429, "Sun Nov  6 08:49:37 1994", Some(30)),
            // A date already past means "now".
            (429, "Sun, 06 Nov 1994 08:00:00 GMT", Some(0)),
            // Unusable values fall back to the ordinary schedule.
            (429, "soon", None),
            (429, "-5", None),
            (429, "1.5", None),
            (429, "", None),
            (429, "Sun, 06 Nov 1994 08:49:37 UTC", None),
            // Other statuses ignore the header.
            (500, "120", None),
            (301, "120", None),
        ];
        for (status, header, want) in cases {
            assert_eq!(
                retry_after_secs(&classify(&response(*status, Some(header)), now())),
                Some(*want),
                "{status} with Retry-After {header:?}"
            );
        }
    }

    #[test]
    fn enormous_retry_after_saturates_instead_of_failing() {
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn rfc850_two_digit_years_pick_the_right_century() {
        // From 2026, "94" is 1994 (2094 is more than 50 years ahead) and "30" is 2030.
        let now_2026 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now_2026),
            Some(Duration::ZERO)
        );
        let in_2030 = parse_retry_after("Tuesday, 01-Jan-30 00:00:00 GMT", now_2026);
        assert_eq!(
            in_2030,
            Some(Duration::from_secs(4 * 365 * 86_400 + 86_400))
        );
    }
}
