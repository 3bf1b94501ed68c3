//! The e-mail an endpoint's owner receives when the endpoint is disabled: headers, a plain
//! text and an HTML body saying which endpoint, why, the last error and how to re-enable it.
//! Pure: the same notice always yields the same headers and text (only `Date` and the MIME
//! boundary differ between two sends), and the notice id is the `Message-ID`, so a resent
//! notice is recognisably the same message.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::delivery::DisableReason;
use crate::records::EndpointNotification;

use super::recipient::Source;

/// What every e-mail carries besides the notice: from the `[notify]` config.
#[derive(Debug, Clone)]
pub struct Letterhead {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// Right-hand side of the Message-ID.
    pub message_id_domain: String,
    /// With `{endpoint_id}` and `{account_id}` placeholders.
    pub reenable_url: Option<String>,
}

/// Header naming the notice, for filters and for support looking a message up.
pub const NOTIFICATION_ID_HEADER: &str = "X-Hookrelay-Notification-Id";
/// Header naming the endpoint.
pub const ENDPOINT_ID_HEADER: &str = "X-Hookrelay-Endpoint-Id";

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("building the e-mail")]
    Build(#[source] lettre::error::Error),
}

/// The `Message-ID` of a notice: `<ntf_…@domain>`. Characters an RFC 5322 dot-atom may not
/// hold become `-`, so any id yields a valid header, and the same id always the same one.
pub fn message_id(notice_id: &str, domain: &str) -> String {
    let local: String = notice_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let local = local.trim_matches('.');
    let local = if local.is_empty() { "notice" } else { local };
    format!("<{local}@{domain}>")
}

/// Why the endpoint was disabled, in the owner's words.
pub fn reason_text(reason: &str) -> String {
    match DisableReason::parse(reason) {
        Some(DisableReason::ConsecutiveFailures) => {
            "too many deliveries to it failed in a row".to_owned()
        }
        Some(DisableReason::RetriesExhausted) => {
            "a delivery to it still failed after its last retry".to_owned()
        }
        Some(DisableReason::EndpointGone) => {
            "it answered 410 Gone, which asks us to stop sending".to_owned()
        }
        // A reason a newer build wrote: shown as written.
        None => format!("of {reason}"),
    }
}

/// The last error as one line: status and error text, whichever the notice has.
fn last_error(notice: &EndpointNotification) -> String {
    match (notice.last_status, notice.last_error.as_deref()) {
        (Some(status), Some(error)) if error == format!("HTTP {status}") => error.to_owned(),
        (Some(status), Some(error)) => format!("HTTP {status}: {error}"),
        (Some(status), None) => format!("HTTP {status}"),
        (None, Some(error)) => error.to_owned(),
        (None, None) => "not recorded".to_owned(),
    }
}

fn utc(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms after the Unix epoch"))
}

fn reenable_link(letterhead: &Letterhead, notice: &EndpointNotification) -> Option<String> {
    letterhead.reenable_url.as_ref().map(|template| {
        template
            .replace("{endpoint_id}", &notice.endpoint_id)
            .replace("{account_id}", &notice.account_id)
    })
}

/// The subject line.
pub fn subject(notice: &EndpointNotification) -> String {
    format!(
        "Webhook endpoint {} disabled: deliveries stopped",
        notice.endpoint_id
    )
}

/// The plain-text body, wrapped to 72 columns so it travels as plain 7-bit text (a long
/// URL may still make one line longer).
pub fn text_body(notice: &EndpointNotification, letterhead: &Letterhead, source: Source) -> String {
    let mut out = String::new();
    out.push_str("Hello,\n\n");
    out.push_str(&wrap(
        &format!(
            "we stopped sending webhooks to your endpoint {}, because {}.",
            notice.endpoint_id,
            reason_text(&notice.reason)
        ),
        "",
        "",
    ));
    out.push('\n');
    for (label, value) in facts(notice) {
        out.push_str(&format!("  {label:<12} {value}\n"));
    }
    out.push('\n');
    out.push_str(&wrap(
        "While it is disabled, events for this endpoint are not sent to it: they are set \
         aside (dead-lettered) and can be replayed once it is enabled again.",
        "",
        "",
    ));
    out.push_str("\nTo enable it again:\n");
    out.push_str(&wrap(
        &format!(
            "1. Make sure {} answers a signed POST with a 2xx status within 5 seconds.",
            notice.url
        ),
        "  ",
        "     ",
    ));
    let step2 = match reenable_link(letterhead, notice) {
        Some(link) => format!("2. Re-enable the endpoint here: {link}"),
        None => "2. Re-enable the endpoint: update it with \"enabled\": true (and a higher \
                 \"version\"), or reply to this e-mail and we will do it for you."
            .to_owned(),
    };
    out.push_str(&wrap(&step2, "  ", "     "));
    out.push('\n');
    out.push_str(&wrap(&footer(notice, source), "", ""));
    out
}

/// Wraps `text` at word boundaries to lines of at most 72 characters (a longer word keeps
/// a line of its own). The first line starts with `first`, the others with `rest`; the
/// result ends with a newline.
pub fn wrap(text: &str, first: &str, rest: &str) -> String {
    const WIDTH: usize = 72;
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    if !empty {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The HTML body: the same content, every value escaped.
pub fn html_body(notice: &EndpointNotification, letterhead: &Letterhead, source: Source) -> String {
    let e = escape;
    let mut rows = String::new();
    for (label, value) in facts(notice) {
        rows.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding:2px 12px 2px 0\">{}</th><td><code>{}</code></td></tr>\n",
            e(label.trim_end_matches(':')),
            e(&value)
        ));
    }
    let step2 = match reenable_link(letterhead, notice) {
        Some(link) => format!(
            "Re-enable the endpoint here: <a href=\"{0}\">{0}</a>",
            e(&link)
        ),
        None => "Re-enable the endpoint: update it with <code>\"enabled\": true</code> (and a \
                 higher <code>\"version\"</code>), or reply to this e-mail and we will do it \
                 for you."
            .to_owned(),
    };
    format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n\
         <p>Hello,</p>\n\
         <p>we stopped sending webhooks to your endpoint <code>{id}</code>, because {why}.</p>\n\
         <table>\n{rows}</table>\n\
         <p>While it is disabled, events for this endpoint are not sent to it: they are set \
         aside (dead-lettered) and can be replayed once it is enabled again.</p>\n\
         <p>To enable it again:</p>\n<ol>\n\
         <li>Make sure <code>{url}</code> answers a signed POST with a 2xx status within 5 seconds.</li>\n\
         <li>{step2}</li>\n</ol>\n\
         <p style=\"color:#666;font-size:small\">{footer}</p>\n</body></html>\n",
        id = e(&notice.endpoint_id),
        why = e(&reason_text(&notice.reason)),
        url = e(&notice.url),
        footer = e(&footer(notice, source)),
    )
}

/// The facts table, shared by both bodies.
fn facts(notice: &EndpointNotification) -> Vec<(&'static str, String)> {
    vec![
        ("Endpoint:", notice.endpoint_id.clone()),
        ("URL:", notice.url.clone()),
        ("Account:", notice.account_id.clone()),
        ("Disabled at:", utc(notice.disabled_at_ms)),
        ("Reason:", notice.reason.clone()),
        ("Last error:", last_error(notice)),
    ]
}

fn footer(notice: &EndpointNotification, source: Source) -> String {
    let why_you = match source {
        Source::Endpoint => "it is the contact address of this endpoint",
        Source::Account => "it is the contact address of this account's endpoints",
        Source::Operator => "no contact address is set for this endpoint or its account",
    };
    format!(
        "You receive this automated message because {why_you}. Notice {}.",
        notice.id
    )
}

/// Minimal HTML escaping for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole e-mail for `notice`, to `to`, dated `now`.
pub fn compose(
    notice: &EndpointNotification,
    to: &Mailbox,
    source: Source,
    letterhead: &Letterhead,
    now: SystemTime,
) -> Result<Message, MessageError> {
    let mut builder = Message::builder()
        .from(letterhead.from.clone())
        .to(to.clone())
        .subject(subject(notice))
        .date(now)
        .message_id(Some(message_id(&notice.id, &letterhead.message_id_domain)))
        // RFC 3834: machine-written, so vacation responders stay quiet.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(NOTIFICATION_ID_HEADER),
            notice.id.clone(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(ENDPOINT_ID_HEADER),
            notice.endpoint_id.clone(),
        ));
    if let Some(reply_to) = &letterhead.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            text_body(notice, letterhead, source),
            html_body(notice, letterhead, source),
        ))
        .map_err(MessageError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ENDPOINT_DISABLED;

    fn notice() -> EndpointNotification {
        EndpointNotification {
            id: "ntf_3f2a9c".into(),
            kind: ENDPOINT_DISABLED.into(),
            endpoint_id: "ep_billing".into(),
            account_id: "acct_42".into(),
            url: "https://hooks.customer.example/licenses?x=<1>&y=2".into(),
            reason: "consecutive_failures".into(),
            disabled_at_ms: 1_773_585_060_000,
            last_status: Some(503),
            last_error: Some("HTTP 503".into()),
        }
    }

    fn letterhead(url: Option<&str>) -> Letterhead {
        Letterhead {
            from: "Licensor Webhooks <webhooks@licensor.example>"
                .parse()
                .unwrap(),
            reply_to: Some("support@licensor.example".parse().unwrap()),
            message_id_domain: "licensor.example".into(),
            reenable_url: url.map(str::to_owned),
        }
    }

    fn render(n: &EndpointNotification, l: &Letterhead) -> String {
        let m = compose(
            n,
            &"owner@customer.example".parse().unwrap(),
            Source::Endpoint,
            l,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_773_585_061),
        )
        .unwrap();
        String::from_utf8(m.formatted()).unwrap()
    }

    #[test]
    fn headers_name_the_notice_and_the_endpoint() {
        let raw = render(&notice(), &letterhead(None));
        for expected in [
            "Message-ID: <ntf_3f2a9c@licensor.example>",
            "From: \"Licensor Webhooks\" <webhooks@licensor.example>",
            "To: owner@customer.example",
            "Reply-To: support@licensor.example",
            "Subject: Webhook endpoint ep_billing disabled: deliveries stopped",
            "Auto-Submitted: auto-generated",
            "X-Hookrelay-Notification-Id: ntf_3f2a9c",
            "X-Hookrelay-Endpoint-Id: ep_billing",
            "Content-Type: multipart/alternative",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
        ] {
            assert!(raw.contains(expected), "{expected:?} missing from\n{raw}");
        }
    }

    #[test]
    fn the_text_says_which_endpoint_why_the_last_error_and_how_to_re_enable() {
        let n = notice();
        let text = text_body(&n, &letterhead(None), Source::Endpoint);
        for expected in [
            "  URL:         https://hooks.customer.example/licenses?x=<1>&y=2\n",
            "  Account:     acct_42\n",
            "  Disabled at: 2026-03-15 14:31:00 UTC\n",
            "  Reason:      consecutive_failures\n",
            "  Last error:  HTTP 503\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        // Sentences may wrap anywhere between words.
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for expected in [
            "your endpoint ep_billing, because too many deliveries to it failed in a row.",
            "answers a signed POST with a 2xx status within 5 seconds",
            "update it with \"enabled\": true",
            "Notice ntf_3f2a9c.",
        ] {
            assert!(flat.contains(expected), "{expected:?} missing from\n{text}");
        }
        let linked = text_body(
            &n,
            &letterhead(Some(
                "https://dash.licensor.example/a/{account_id}/e/{endpoint_id}",
            )),
            Source::Account,
        );
        assert!(
            linked.contains("https://dash.licensor.example/a/acct_42/e/ep_billing"),
            "{linked}"
        );
        let flat = linked.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("contact address of this account"), "{linked}");
    }

    #[test]
    fn html_escapes_every_value() {
        let mut n = notice();
        n.last_error = Some("<script>alert(1)</script>".into());
        n.last_status = None;
        let html = html_body(&n, &letterhead(None), Source::Operator);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("x=&lt;1&gt;&amp;y=2"));
        assert!(html.contains("Disabled at</th>"));
    }

    #[test]
    fn last_error_combines_what_is_known() {
        let mut n = notice();
        assert_eq!(last_error(&n), "HTTP 503");
        n.last_error = Some("timed out".into());
        assert_eq!(last_error(&n), "HTTP 503: timed out");
        n.last_status = None;
        assert_eq!(last_error(&n), "timed out");
        n.last_error = None;
        assert_eq!(last_error(&n), "not recorded");
    }

    #[test]
    fn the_plain_text_travels_unencoded() {
        let mut n = notice();
        n.url = "https://hooks.customer.example/licenses".into();
        let text = text_body(&n, &letterhead(None), Source::Endpoint);
        for line in text.lines() {
            assert!(line.len() < 76, "{line:?} is too long for 7-bit transport");
        }
        let raw = render(&n, &letterhead(None));
        assert!(raw.contains("Content-Transfer-Encoding: 7bit"), "{raw}");
    }

    #[test]
    fn wrap_keeps_words_whole() {
        let long = "word ".repeat(40);
        let wrapped = wrap(&long, "", "");
        assert!(wrapped.lines().all(|l| l.len() <= 72), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().count(), 40);
        let listed = wrap(&format!("1. {long}"), "  ", "     ");
        let lines: Vec<&str> = listed.lines().collect();
        assert!(lines[0].starts_with("  1. word"), "{listed}");
        assert!(lines[1].starts_with("     word"), "{listed}");
        let unbroken = "x".repeat(100);
        assert_eq!(wrap(&unbroken, "", ""), format!("{unbroken}\n"));
    }

    #[test]
    fn message_ids_are_stable_and_well_formed() {
        assert_eq!(message_id("ntf_ab12", "x.example"), "<ntf_ab12@x.example>");
        assert_eq!(
            message_id("ntf ab@12>", "x.example"),
            "<ntf-ab-12-@x.example>"
        );
        assert_eq!(message_id("", "x.example"), "<notice@x.example>");
        assert_eq!(message_id("ntf_1", "d"), message_id("ntf_1", "d"));
    }

    #[test]
    fn every_reason_reads_as_a_sentence() {
        for r in DisableReason::ALL {
            assert!(
                !reason_text(r.as_str()).starts_with("of "),
                "{r} has its own wording"
            );
        }
        assert_eq!(reason_text("manual"), "of manual");
    }
}
