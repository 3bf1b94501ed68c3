//! `hookrelay demo` as a person runs it: the built binary, bounded with `--duration`, on the
//! in-process Kafka. While it runs, its /metrics must show every path a delivery can take
//! (delivered, batched, retried, dead-lettered, endpoint disabled); it must print the e-mail
//! the disabled endpoint's owner receives; then it must stop by itself, print its summary and
//! exit 0.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::oneshot;

/// The demo's bound; long enough for the down endpoint to trip the breaker and for retries
/// to come back through the 2 s and 4 s tiers.
const DURATION: &str = "45s";
/// The bound plus start-up, the drain (5 s) and slack for a loaded machine.
const EXIT_WITHIN: Duration = Duration::from_secs(120);

/// Sums the samples of `name` in a Prometheus text exposition whose labels include every
/// pair of `labels`.
fn sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let found: BTreeMap<&str, &str> = label_text
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k, v.trim_matches('"')))
                .collect();
            labels
                .iter()
                .all(|(k, v)| found.get(k) == Some(v))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

#[test]
fn the_exposition_parser_sums_matching_series() {
    let text = "# HELP x\nhookrelay_deliveries_total{outcome=\"delivered\"} 5\n\
                hookrelay_deliveries_total{outcome=\"dead_lettered\"} 2\n\
                hookrelay_batch_size_bucket{le=\"1\"} 3\nhookrelay_events_consumed_total 7\n";
    assert_eq!(sum(text, "hookrelay_deliveries_total", &[]), 7.0);
    assert_eq!(
        sum(
            text,
            "hookrelay_deliveries_total",
            &[("outcome", "delivered")]
        ),
        5.0
    );
    assert_eq!(
        sum(text, "hookrelay_batch_size_bucket", &[("le", "1")]),
        3.0
    );
    assert_eq!(sum(text, "hookrelay_events_consumed_total", &[]), 7.0);
    assert_eq!(sum(text, "hookrelay_missing", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_every_delivery_outcome_and_exits_cleanly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["demo", "--duration", DURATION, "--listen", "127.0.0.1:0"])
        // The demo must pick the in-process Kafka, whatever the environment says.
        .env_remove("HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start `hookrelay demo`");

    // stdout: remember everything, and hand over the /metrics address as soon as it is printed.
    let (url_tx, url_rx) = oneshot::channel::<String>();
    let (dashboard_tx, dashboard_rx) = oneshot::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    let out_task = tokio::spawn(async move {
        let mut url_tx = Some(url_tx);
        let mut dashboard_tx = Some(dashboard_tx);
        let mut all = String::new();
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line
                .split_whitespace()
                .find(|w| w.starts_with("http://") && w.ends_with("/metrics"))
                && let Some(tx) = url_tx.take()
            {
                let _ = tx.send(url.to_owned());
            }
            if let Some(url) = line
                .split_whitespace()
                .find(|w| w.starts_with("http://") && w.contains("/dashboard#key="))
                && let Some(tx) = dashboard_tx.take()
            {
                let _ = tx.send(url.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let err_task = tokio::spawn(async move {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all).await;
        all
    });

    let metrics_url = tokio::time::timeout(Duration::from_secs(60), url_rx)
        .await
        .expect("the demo prints its /metrics address within a minute")
        .expect("the demo printed its /metrics address");
    let base = metrics_url.trim_end_matches("/metrics").to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("http client");

    // The dashboard line carries a key for a sample account that the API accepts.
    let dashboard = tokio::time::timeout(Duration::from_secs(10), dashboard_rx)
        .await
        .expect("the demo prints its dashboard address")
        .expect("the demo printed its dashboard address");
    let (page, key) = dashboard
        .split_once("#key=")
        .expect("a key in the fragment");
    assert_eq!(
        http.get(page)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok(),
        Some(200),
        "the dashboard page is served"
    );
    let endpoints = http
        .get(format!("{base}/v1/endpoints"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET /v1/endpoints with the demo key");
    assert_eq!(endpoints.status(), 200, "the demo key works");
    let listed = endpoints.text().await.unwrap_or_default();
    assert!(listed.contains("acct_acme"), "{listed}");

    let started = Instant::now();
    let mut last_scrape = String::new();
    let mut scrapes = 0;
    let (mut healthy, mut ready) = (false, false);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.expect("wait for the demo"),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        assert!(
            started.elapsed() < EXIT_WITHIN,
            "the demo did not stop within {EXIT_WITHIN:?} of --duration {DURATION}"
        );
        if let Ok(r) = http.get(&metrics_url).send().await
            && r.status().is_success()
            && let Ok(text) = r.text().await
        {
            last_scrape = text;
            scrapes += 1;
        }
        for (path, seen) in [("/healthz", &mut healthy), ("/readyz", &mut ready)] {
            if !*seen {
                *seen = http
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
            }
        }
    };
    let stdout = out_task.await.expect("stdout reader");
    let stderr = err_task.await.expect("stderr reader");
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");

    assert!(
        status.success(),
        "the demo exits 0, got {status}\n{context}"
    );
    assert!(
        scrapes > 10,
        "/metrics answered while the demo ran\n{context}"
    );
    assert!(healthy, "/healthz answered 200\n{context}");
    assert!(
        ready,
        "/readyz answered 200 once the service was up\n{context}"
    );

    let m = |name: &str, labels: &[(&str, &str)]| sum(&last_scrape, name, labels);
    let consumed = m("hookrelay_events_consumed_total", &[]);
    assert!(
        consumed >= 2_000.0,
        "the steady stream and the 2,000-event bulk import were consumed: {consumed}\n{context}"
    );
    assert_eq!(
        m("hookrelay_events_invalid_total", &[]),
        0.0,
        "every record the demo produces (Avro, Confluent-framed, JSON) decodes\n{context}"
    );
    let delivered = m("hookrelay_deliveries_total", &[("outcome", "delivered")]);
    assert!(
        delivered >= 2_000.0,
        "deliveries reached the healthy receivers: {delivered}\n{context}"
    );
    let batched =
        m("hookrelay_batch_size_count", &[]) - m("hookrelay_batch_size_bucket", &[("le", "1")]);
    assert!(
        batched >= 1.0,
        "the burst went out in batch requests\n{context}"
    );
    let retried = m("hookrelay_retry_scheduled_total", &[]);
    assert!(retried >= 1.0, "failed attempts were retried\n{context}");
    assert!(
        m("hookrelay_retry_scheduled_total", &[("tier", "2")]) >= 1.0,
        "a retry that failed again moved on to the next tier\n{context}"
    );
    assert!(
        m("hookrelay_dead_lettered_total", &[]) >= 1.0,
        "at least one delivery was dead-lettered\n{context}"
    );
    assert!(
        m("hookrelay_endpoints_disabled_total", &[]) >= 1.0,
        "the endpoint that is down was disabled\n{context}"
    );

    assert!(
        stdout.contains("summary after"),
        "a final summary is printed\n{context}"
    );
    assert!(
        stdout.contains("DISABLED (consecutive_failures)"),
        "the summary names the disabled endpoint and why\n{context}"
    );
    // The e-mail the disabled endpoint's owner receives, printed as it reached the demo's
    // mail server.
    for expected in [
        "e-mail to the endpoint's owner <webhooks@globex.example>",
        "| Subject: Webhook endpoint ep_demo_down disabled: deliveries stopped",
        "| Message-ID: <ntf_",
        "|   Last error:",
        "https://dashboard.licensor.example/endpoints/ep_demo_down",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing: the demo shows the owner's e-mail\n{context}"
        );
    }
    let receivers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("bad signatures"))
        .collect();
    assert_eq!(receivers.len(), 3, "three live receivers report\n{context}");
    assert!(
        receivers.iter().all(|l| l.contains(", 0 bad signatures")),
        "the receivers verified every signature\n{context}"
    );
    assert!(!stderr.contains("panicked"), "no panic\n{context}");
}
