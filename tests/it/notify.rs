//! Owner e-mails end to end: notices on the notifications topic (produced directly, as the
//! disabling code writes them, or by the circuit breaker itself) become e-mails on a real
//! SMTP server (aiosmtpd): once each, to the right owner, with the right headers and content;
//! retried while the server is down; sent again with the same Message-ID after a notifier is
//! killed mid-send; over STARTTLS and implicit TLS with authentication.

use std::time::{Duration, Instant};

use hookrelay::config::Config;
use hookrelay::event::EventType;
use hookrelay::records::{ENDPOINT_DISABLED, EndpointNotification};
use hookrelay::subscriptions::Endpoint;
use prometheus::Registry;
use rdkafka::message::Message as _;
use tokio::sync::watch;

use crate::common;
use crate::delivery::produce_events;
use crate::harness::{
    self, RunningApp, endpoint, metric_value, publish_endpoints, secret, test_config,
};
use crate::receiver::{Behavior, Receiver};
use crate::smtp::{SmtpServer, free_port, make_certs};

const FROM: &str = "Licensor Webhooks <webhooks@licensor.example>";
const DOMAIN: &str = "licensor.example";

/// A test config with the notifier on, sending to 127.0.0.1:`smtp_port` without TLS, fast
/// retries, and one notifications partition (so notices are handled in the order produced).
fn notify_config(smtp_port: u16, extra: &[(&str, &str)]) -> (Config, tempfile::TempDir) {
    let port = smtp_port.to_string();
    let mut overrides: Vec<(&str, &str)> = vec![
        ("HOOKRELAY__NOTIFY__ENABLED", "true"),
        ("HOOKRELAY__NOTIFY__FROM", FROM),
        (
            "HOOKRELAY__NOTIFY__REENABLE_URL",
            "https://dashboard.licensor.example/endpoints/{endpoint_id}",
        ),
        ("HOOKRELAY__NOTIFY__RETRY_INITIAL", "200ms"),
        ("HOOKRELAY__NOTIFY__RETRY_MAX", "1s"),
        ("HOOKRELAY__NOTIFY__SMTP__HOST", "127.0.0.1"),
        ("HOOKRELAY__NOTIFY__SMTP__PORT", &port),
        ("HOOKRELAY__NOTIFY__SMTP__TLS", "none"),
        ("HOOKRELAY__NOTIFY__SMTP__TIMEOUT", "20s"),
        ("HOOKRELAY__TOPICS__PARTITIONS__NOTIFICATIONS", "1"),
    ];
    overrides.extend_from_slice(extra);
    test_config(&[60], &overrides)
}

fn now_ms() -> i64 {
    hookrelay::delivery::now_ms()
}

/// An endpoint with `contact` as its owner's address. (The breaker disables it with a
/// status record of its own; the notices below stand for that.)
fn owned(id: &str, account: &str, contact: Option<&str>) -> Endpoint {
    let mut ep = endpoint(
        id,
        account,
        "https://hooks.customer.example/licenses",
        &[],
        &secret(),
    );
    ep.contact_email = contact.map(str::to_owned);
    ep
}

/// An `endpoint.disabled` notice as the disabling code writes it.
fn notice(endpoint: &str, account: &str) -> EndpointNotification {
    EndpointNotification {
        id: common::unique("ntf"),
        kind: ENDPOINT_DISABLED.into(),
        endpoint_id: endpoint.into(),
        account_id: account.into(),
        url: "https://hooks.customer.example/licenses".into(),
        reason: "consecutive_failures".into(),
        disabled_at_ms: now_ms(),
        last_status: Some(503),
        last_error: Some("HTTP 503".into()),
    }
}

fn message_id(n: &EndpointNotification) -> String {
    format!("<{}@{DOMAIN}>", n.id)
}

async fn produce_notice(config: &Config, n: &EndpointNotification) {
    common::produce(
        &common::producer(),
        &config.topics.notifications,
        Some(n.endpoint_id.as_bytes()),
        Some(&n.to_avro().expect("encode notice")),
    )
    .await;
}

/// Waits until `name{labels}` in `registry` reaches `at_least`.
async fn wait_metric(
    registry: &Registry,
    name: &str,
    labels: &str,
    at_least: f64,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let text = hookrelay::telemetry::metrics::render(registry);
        if metric_value(&text, name, labels) >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{{{labels}}} did not reach {at_least}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the notifier counted `n` e-mails sent, then checks it counted no more.
async fn wait_sent(registry: &Registry, n: f64) {
    let sent = "outcome=\"sent\"";
    wait_metric(
        registry,
        "hookrelay_notifications_total",
        sent,
        n,
        Duration::from_secs(10),
    )
    .await;
    let text = hookrelay::telemetry::metrics::render(registry);
    assert_eq!(
        metric_value(&text, "hookrelay_notifications_total", sent),
        n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_notice_becomes_one_e_mail_to_the_owner_with_what_happened_and_how_to_fix_it() {
    let smtp = SmtpServer::start(free_port(), &[]).await;
    let (config, _dir) = notify_config(
        smtp.port,
        &[(
            "HOOKRELAY__NOTIFY__FALLBACK_TO",
            "Support <support@licensor.example>",
        )],
    );
    harness::create_topics(&config).await;
    publish_endpoints(
        &config,
        &[
            owned("ep_owned", "acct_a", Some("owner@customer.example")),
            // No contact of its own: the account's default (its other endpoint's contact).
            owned("ep_shared", "acct_a", None),
            // No contact anywhere in its account: the operator's fallback.
            owned("ep_orphan", "acct_b", None),
        ],
    )
    .await;
    let app = RunningApp::start(config.clone()).await;

    let owned = notice("ep_owned", "acct_a");
    let shared = notice("ep_shared", "acct_a");
    let orphan = notice("ep_orphan", "acct_b");
    for n in [&owned, &shared, &orphan] {
        produce_notice(&config, n).await;
    }
    let mail = smtp
        .wait_mail(Duration::from_secs(60), &message_id(&owned))
        .await;
    let to_shared = smtp
        .wait_mail(Duration::from_secs(30), &message_id(&shared))
        .await;
    let to_orphan = smtp
        .wait_mail(Duration::from_secs(30), &message_id(&orphan))
        .await;

    // The envelope and the headers.
    assert_eq!(mail.rcpt_tos, vec!["owner@customer.example".to_owned()]);
    assert_eq!(mail.mail_from, "webhooks@licensor.example");
    assert_eq!(mail.header("To").as_deref(), Some("owner@customer.example"));
    assert_eq!(
        mail.header("From").as_deref(),
        Some("\"Licensor Webhooks\" <webhooks@licensor.example>")
    );
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Webhook endpoint ep_owned disabled: deliveries stopped")
    );
    assert_eq!(mail.header("Message-ID"), Some(message_id(&owned)));
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        mail.header("X-Hookrelay-Notification-Id").as_deref(),
        Some(owned.id.as_str())
    );
    assert!(mail.header("Date").is_some(), "{}", mail.data);
    let content_type = mail.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    assert!(
        mail.data.contains("Content-Type: text/plain"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("Content-Type: text/html"),
        "{}",
        mail.data
    );
    // The plain-text part says which endpoint, why, the last error and how to re-enable it.
    let flat = mail.flat();
    for expected in [
        "your endpoint ep_owned, because too many deliveries to it failed in a row",
        "URL: https://hooks.customer.example/licenses",
        "Reason: consecutive_failures",
        "Last error: HTTP 503",
        "Re-enable the endpoint here: https://dashboard.licensor.example/endpoints/ep_owned",
    ] {
        assert!(
            flat.contains(expected),
            "{expected:?} missing from\n{}",
            mail.data
        );
    }

    assert_eq!(
        to_shared.rcpt_tos,
        vec!["owner@customer.example".to_owned()]
    );
    assert!(
        to_shared.flat().contains("contact address of this account"),
        "{}",
        to_shared.data
    );
    assert_eq!(
        to_orphan.rcpt_tos,
        vec!["support@licensor.example".to_owned()]
    );

    // Once each: a later notice on the same partition arrives after them, and nothing was
    // sent twice meanwhile.
    let marker = notice("ep_owned", "acct_a");
    produce_notice(&config, &marker).await;
    smtp.wait_mail(Duration::from_secs(30), &message_id(&marker))
        .await;
    for n in [&owned, &shared, &orphan, &marker] {
        assert_eq!(smtp.mails_with_id(&message_id(n)).len(), 1, "{} once", n.id);
    }
    assert_eq!(smtp.mails().len(), 4);
    // The server reports a message before its 250 reaches the notifier, which counts after.
    wait_sent(&app.registry, 4.0).await;
    assert_eq!(
        app.metric(
            "hookrelay_notification_smtp_attempts_total",
            "outcome=\"accepted\""
        ),
        4.0
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_without_a_recipient_or_refused_for_good_is_skipped_and_counted_not_retried() {
    let smtp = SmtpServer::start(free_port(), &["--reject-rcpt", "gone@customer.example"]).await;
    let (config, _dir) = notify_config(smtp.port, &[]);
    harness::create_topics(&config).await;
    publish_endpoints(
        &config,
        &[
            owned("ep_bounce", "acct_c", Some("gone@customer.example")),
            owned("ep_nobody", "acct_d", None),
            owned("ep_fine", "acct_e", Some("fine@customer.example")),
        ],
    )
    .await;
    let app = RunningApp::start(config.clone()).await;
    let bounce = notice("ep_bounce", "acct_c");
    let nobody = notice("ep_nobody", "acct_d");
    let fine = notice("ep_fine", "acct_e");
    for n in [&bounce, &nobody, &fine] {
        produce_notice(&config, n).await;
    }
    // The last one arrives, so the two before it were dealt with and did not block it.
    let mail = smtp
        .wait_mail(Duration::from_secs(60), &message_id(&fine))
        .await;
    assert_eq!(mail.rcpt_tos, vec!["fine@customer.example".to_owned()]);
    assert_eq!(smtp.mails().len(), 1, "nothing else was accepted");
    assert_eq!(
        smtp.count("rejected"),
        1,
        "the refused recipient was tried once"
    );
    wait_sent(&app.registry, 1.0).await;
    let m = |labels| app.metric("hookrelay_notifications_total", labels);
    assert_eq!(m("outcome=\"rejected\""), 1.0);
    assert_eq!(m("outcome=\"no_recipient\""), 1.0);
    assert_eq!(m("outcome=\"sent\""), 1.0);
    assert_eq!(
        app.metric(
            "hookrelay_notification_smtp_attempts_total",
            "outcome=\"failed\""
        ),
        0.0,
        "a permanent refusal is not retried"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_smtp_server_is_down_the_notice_is_retried_and_sent_once_it_is_back() {
    let port = free_port();
    let (config, _dir) = notify_config(port, &[]);
    harness::create_topics(&config).await;
    publish_endpoints(
        &config,
        &[owned("ep_wait", "acct_w", Some("owner@customer.example"))],
    )
    .await;
    let app = RunningApp::start(config.clone()).await;
    let n = notice("ep_wait", "acct_w");
    produce_notice(&config, &n).await;

    // Nothing listens: attempts fail and are retried.
    wait_metric(
        &app.registry,
        "hookrelay_notification_smtp_attempts_total",
        "outcome=\"failed\"",
        3.0,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        app.metric("hookrelay_notifications_total", ""),
        0.0,
        "not given up on"
    );

    // The server comes back, first answering 451 (try later) once, then accepting.
    let smtp = SmtpServer::start(port, &["--tempfail", "1"]).await;
    let mail = smtp
        .wait_mail(Duration::from_secs(30), &message_id(&n))
        .await;
    assert_eq!(mail.rcpt_tos, vec!["owner@customer.example".to_owned()]);
    assert_eq!(smtp.count("tempfail"), 1, "a 451 is retried as well");

    let marker = notice("ep_wait", "acct_w");
    produce_notice(&config, &marker).await;
    smtp.wait_mail(Duration::from_secs(30), &message_id(&marker))
        .await;
    assert_eq!(
        smtp.mails_with_id(&message_id(&n)).len(),
        1,
        "accepted once"
    );
    wait_sent(&app.registry, 2.0).await;
    app.stop().await.expect("clean stop");
}

/// `hookrelay notify` as an operator runs it, from a config file.
fn spawn_notify(config: &Config, dir: &std::path::Path) -> tokio::process::Child {
    let file = dir.join("notify.toml");
    std::fs::write(&file, config.to_masked_toml()).expect("write config");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["notify", "--config"])
        .arg(&file)
        .env("HOOKRELAY__ADMIN__LISTEN", "127.0.0.1:0")
        .env(
            "HOOKRELAY_LOG",
            std::env::var("HOOKRELAY_CHILD_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn hookrelay notify")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_killed_mid_send_loses_nothing_and_resends_with_the_same_message_id() {
    // The server holds its answer to the first message's data for a while.
    let smtp = SmtpServer::start(free_port(), &["--hold-first", "10"]).await;
    let (config, dir) = notify_config(smtp.port, &[("HOOKRELAY__NOTIFY__ENABLED", "false")]);
    harness::create_topics(&config).await;
    publish_endpoints(
        &config,
        &[owned("ep_kill", "acct_k", Some("owner@customer.example"))],
    )
    .await;
    let n = notice("ep_kill", "acct_k");
    produce_notice(&config, &n).await;

    let mut first = spawn_notify(&config, dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !smtp.saw_data(&message_id(&n)) {
        assert!(Instant::now() < deadline, "the notifier started sending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Killed while the server has the message but has not said 250 yet.
    first.kill().await.expect("SIGKILL the notifier");
    assert_eq!(
        smtp.mails_with_id(&message_id(&n)).len(),
        0,
        "not yet accepted when killed"
    );

    let mut second = spawn_notify(&config, dir.path());
    // The restarted notifier sends the uncommitted notice again: accepted this time.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !smtp.mails_with_id(&message_id(&n)).iter().any(|m| m.n >= 2) {
        assert!(
            Instant::now() < deadline,
            "resent after the restart: {:?}",
            smtp.mails()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let copies = smtp.mails_with_id(&message_id(&n));
    assert!(
        copies
            .iter()
            .all(|m| m.header("Message-ID") == Some(message_id(&n))),
        "every copy carries the notice id as its Message-ID, so a mail system can drop the duplicate"
    );
    assert!(
        copies
            .iter()
            .all(|m| m.header("Subject") == copies[0].header("Subject")),
        "the same e-mail"
    );

    // Committed now: a graceful restart does not send it a third time.
    let marker = notice("ep_kill", "acct_k");
    produce_notice(&config, &marker).await;
    smtp.wait_mail(Duration::from_secs(30), &message_id(&marker))
        .await;
    let pid = second.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), second.wait())
        .await
        .expect("stops on SIGTERM")
        .expect("wait");
    assert!(exit.success(), "graceful stop exits 0: {exit}");
    let mut third = spawn_notify(&config, dir.path());
    let last = notice("ep_kill", "acct_k");
    produce_notice(&config, &last).await;
    smtp.wait_mail(Duration::from_secs(60), &message_id(&last))
        .await;
    assert_eq!(
        smtp.mails_with_id(&message_id(&marker)).len(),
        1,
        "committed notices stay sent"
    );
    assert!(smtp.mails_with_id(&message_id(&n)).len() <= 2);
    third.kill().await.expect("stop the notifier");
}

/// Runs the notifier alone in this process (`hookrelay notify`'s code path).
async fn run_notifier(
    config: Config,
) -> (
    Registry,
    watch::Sender<bool>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let registry = Registry::new();
    let (stop, stop_rx) = watch::channel(false);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let reg = registry.clone();
    let handle = tokio::spawn(async move {
        hookrelay::app::notify(config, reg, stop_rx, move |_| {
            let _ = started_tx.send(());
        })
        .await
    });
    tokio::time::timeout(Duration::from_secs(60), started_rx)
        .await
        .expect("the notifier started within 60 s")
        .expect("the notifier started");
    (registry, stop, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_mails_go_over_starttls_and_implicit_tls_with_authentication() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path());
    let cert = certs.path().join("server.pem").display().to_string();
    let key = certs.path().join("server.key").display().to_string();
    let ca = certs.path().join("ca.pem").display().to_string();
    for (mode, port_hint) in [("starttls", "587"), ("implicit", "465")] {
        let smtp = SmtpServer::start(
            free_port(),
            &[
                "--tls",
                mode,
                "--cert",
                &cert,
                "--key",
                &key,
                "--auth",
                "mailer:s3cret-pass",
            ],
        )
        .await;
        let port = smtp.port.to_string();
        let (config, _dir) = notify_config(
            smtp.port,
            &[
                ("HOOKRELAY__NOTIFY__SMTP__TLS", mode),
                ("HOOKRELAY__NOTIFY__SMTP__PORT", &port),
                ("HOOKRELAY__NOTIFY__SMTP__CA_FILE", &ca),
                ("HOOKRELAY__NOTIFY__SMTP__USERNAME", "mailer"),
                ("HOOKRELAY__NOTIFY__SMTP__PASSWORD", "s3cret-pass"),
            ],
        );
        harness::create_topics(&config).await;
        publish_endpoints(
            &config,
            &[owned("ep_tls", "acct_t", Some("owner@customer.example"))],
        )
        .await;
        let (registry, stop, handle) = run_notifier(config.clone()).await;
        let n = notice("ep_tls", "acct_t");
        produce_notice(&config, &n).await;
        let mail = smtp
            .wait_mail(Duration::from_secs(60), &message_id(&n))
            .await;
        assert!(
            mail.tls,
            "{mode} (usually port {port_hint}): the message crossed TLS"
        );
        assert_eq!(
            mail.auth_user.as_deref(),
            Some("mailer"),
            "{mode}: authenticated"
        );
        assert_eq!(mail.rcpt_tos, vec!["owner@customer.example".to_owned()]);
        wait_sent(&registry, 1.0).await;
        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("stops")
            .expect("no panic")
            .expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_the_breaker_disables_gets_its_owner_an_e_mail() {
    let smtp = SmtpServer::start(free_port(), &[]).await;
    let receiver = Receiver::start().await;
    let (config, _dir) = notify_config(smtp.port, &[("HOOKRELAY__RETRY__BREAKER_THRESHOLD", "3")]);
    harness::create_topics(&config).await;
    let url = receiver.endpoint("down", Behavior::Status(500));
    let mut ep = endpoint("ep_down", "acct_down", &url, &[], &secret());
    ep.contact_email = Some("oncall@customer.example".into());
    publish_endpoints(&config, &[ep]).await;
    let app = RunningApp::start(config.clone()).await;
    produce_events(
        &config.topics.events,
        (0..3).map(|i| (8_000 + i, "acct_down".to_owned(), EventType::PaymentFailed)),
    )
    .await;

    smtp.wait_event(Duration::from_secs(90), "the owner's e-mail", |e| {
        e["event"] == "message"
    })
    .await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.rcpt_tos, vec!["oncall@customer.example".to_owned()]);
    let flat = mail.flat();
    for expected in [
        "Subject: Webhook endpoint ep_down disabled",
        "Reason: consecutive_failures",
        "Last error: HTTP 500",
        &format!("URL: {url}"),
    ] {
        assert!(
            flat.contains(expected),
            "{expected:?} missing from\n{}",
            mail.data
        );
    }
    // The Message-ID is the id of the notice the breaker wrote.
    let notices = common::read_all(&config.topics.notifications);
    assert_eq!(notices.len(), 1);
    let written =
        EndpointNotification::from_avro(notices[0].payload().expect("value")).expect("notice");
    assert_eq!(mail.message_id, message_id(&written));
    app.stop().await.expect("clean stop");
}
