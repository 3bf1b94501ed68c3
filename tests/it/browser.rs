//! The dashboard in headless Chromium against hookrelay on the real broker: a customer
//! creates an endpoint, sends a test event and sees it delivered, rotates the secret, sees a
//! failed delivery and retries it (tests/browser/dashboard.cjs, driven by Playwright). What
//! the page showed is then checked against the API and against what the receiver got.
//! Screenshots go to `target/tmp/dashboard-screenshots`.

use std::path::PathBuf;
use std::time::Duration;

use hookrelay::ids::Secret;
use serde_json::Value;

use crate::api::ApiEnv;
use crate::receiver::Behavior;

fn tool(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/test, which installs Chromium and playwright-core")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_drives_the_dashboard_in_chromium() {
    let playwright = tool("HOOKRELAY_TEST_PLAYWRIGHT");
    let chromium = tool("HOOKRELAY_TEST_CHROMIUM");
    let env = ApiEnv::start(&[3600], &[]).await;
    let healthy = env.receiver.endpoint("browser-healthy", Behavior::Healthy);
    let flaky = env.receiver.endpoint(
        "browser-flaky",
        Behavior::FailTimes {
            times: 1,
            status: 500,
        },
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.cjs");
    let run = tokio::process::Command::new("node")
        .arg(script)
        .env("HOOKRELAY_PLAYWRIGHT", &playwright)
        .env("HOOKRELAY_CHROMIUM", &chromium)
        .env("DASHBOARD", format!("{}/dashboard", env.base))
        .env("API_KEY", &env.a)
        .env("HEALTHY_URL", &healthy)
        .env("FLAKY_URL", &flaky)
        .env("SCREENSHOTS", &shots)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser run finished within 3 minutes")
        .expect("run node (run scripts/test, which installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let context = format!(
        "stdout:\n{stdout}\nstderr:\n{stderr}\nscreenshots: {}",
        shots.display()
    );
    assert!(out.status.success(), "the browser run failed\n{context}");
    let seen: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no result line\n{context}"));
    eprintln!("dashboard screenshots: {}", shots.display());

    assert_eq!(
        seen["key_left_url"], "no",
        "the key is taken out of the address bar"
    );
    for name in [
        "1-test-event-delivered",
        "2-secret-rotated",
        "3-failed-delivery",
        "4-retried",
    ] {
        assert!(
            shots.join(format!("{name}.png")).is_file(),
            "{name}.png\n{context}"
        );
    }

    // The endpoints the page created exist, as entered.
    let (_, list) = env.get("/v1/endpoints", &env.a).await;
    let endpoints = list["data"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 2, "{list}");
    let billing = endpoints
        .iter()
        .find(|e| e["description"] == "Billing system")
        .expect("the endpoint created in the page");
    assert_eq!(billing["url"], healthy.as_str());
    assert_eq!(
        billing["event_types"],
        serde_json::json!(["license.created"])
    );
    let billing_id = billing["id"].as_str().unwrap();

    // The test event the page showed delivered is the one the receiver got, and it was
    // signed with the secret the page revealed before rotating.
    let test_delivery = seen["test_delivery"].as_str().expect("test delivery");
    let got = env.receiver.received_by("browser-healthy");
    assert_eq!(got.len(), 1, "one test event");
    assert_eq!(got[0].webhook_id, test_delivery);
    let shown_body: Value = serde_json::from_str(seen["test_body"].as_str().unwrap()).unwrap();
    assert_eq!(
        shown_body,
        serde_json::from_slice::<Value>(&got[0].body).unwrap()
    );
    let before = seen["secret_before"].as_str().unwrap();
    hookrelay::sign::verify(
        &Secret::new(before),
        &got[0].webhook_id,
        &got[0].webhook_timestamp,
        &got[0].webhook_signature,
        &got[0].body,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .expect("signed with the secret the page revealed");
    let after = seen["secret_after"].as_str().unwrap();
    assert_ne!(before, after);
    assert_eq!(
        env.secret_of(&env.a, billing_id).await,
        after,
        "the page shows the current secret"
    );
    assert!(
        seen["rotating"].as_str().unwrap().contains(before),
        "the old secret is listed as still signing"
    );
    assert_eq!(
        seen["other_secret_hidden"], true,
        "another endpoint's page does not show this secret"
    );

    // The failed delivery and its retry: two requests with one webhook-id, the second accepted.
    let failed = seen["failed_delivery"].as_str().expect("failed delivery");
    assert!(
        seen["failed_row"].as_str().unwrap().contains("500"),
        "{seen}"
    );
    let flaky_got = env.receiver.received_by("browser-flaky");
    assert_eq!(flaky_got.len(), 2, "the failed attempt and the retry");
    assert!(flaky_got.iter().all(|r| r.webhook_id == failed));
    assert!(
        seen["retried_row"].as_str().unwrap().contains("delivered"),
        "{seen}"
    );
    env.app.stop().await.expect("clean stop");
}
