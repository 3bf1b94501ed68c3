//! Schemathesis (a property-based fuzzer driven by the OpenAPI document) against a live
//! instance on the real broker, with a bounded number of cases per operation: no request may
//! get a 5xx, and every status, content type, header and body must be what the document
//! says. The instance only accepts endpoint URLs on loopback, so nothing the fuzzer creates
//! can make hookrelay send a request off this machine.

use std::time::Duration;

use serde_json::json;

use crate::api::ApiEnv;
use crate::receiver::Behavior;

/// Cases per operation and phase: tens of seconds in all.
const MAX_EXAMPLES: &str = "40";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_every_generated_request_as_its_document_says() {
    let schemathesis = std::env::var("HOOKRELAY_TEST_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "HOOKRELAY_TEST_SCHEMATHESIS is not set: run scripts/test, which installs schemathesis"
        )
    });
    let env = ApiEnv::start(
        &[3600],
        &[
            ("HOOKRELAY__API__ALLOWED_URL_HOSTS", r#"["127.0.0.1"]"#),
            ("HOOKRELAY__API__RATE_LIMIT_PER_KEY", "10000"),
            ("HOOKRELAY__API__RATE_LIMIT_BURST", "10000"),
        ],
    )
    .await;
    // Real ids for the path parameters, so the generated requests reach the handlers instead
    // of stopping at 404: an endpoint with a delivery in its log, and a replay.
    let endpoint = env.endpoint(&env.a, "fuzzed", Behavior::Healthy).await;
    let id = endpoint["id"].as_str().expect("id").to_owned();
    let (_, queued) = env
        .post(&format!("/v1/endpoints/{id}/test"), &env.a, json!({}))
        .await;
    let delivery = queued["delivery_id"].as_str().expect("delivery").to_owned();
    env.wait_log(&env.a, &id, "the test delivery", |log| !log.is_empty())
        .await;
    let (_, replay) = env
        .post(
            &format!("/v1/endpoints/{id}/replays"),
            &env.a,
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    let replay = replay["id"].as_str().expect("replay").to_owned();
    let report = tempfile::tempdir().expect("tempdir");
    let config = report.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\"path.id\" = \"{id}\"\n\"path.delivery_id\" = \"{delivery}\"\n\"path.replay_id\" = \"{replay}\"\n"
        ),
    )
    .expect("write schemathesis.toml");
    let run = tokio::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/v1/openapi.json", env.base))
        .args(["--header", &format!("Authorization: Bearer {}", env.a)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        // One worker: hypothesis's lambda-source cache is not thread-safe and two workers have
        // failed on it (a tool error, not a finding).
        .args(["--workers", "1", "--seed", "1", "--no-color"])
        .args(["--request-timeout", "20", "--max-failures", "20"])
        .args(["--generation-database", "none"])
        .arg("--report-dir")
        .arg(report.path())
        .current_dir(report.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finished within 5 minutes")
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found responses that break the document\n{stdout}\n{stderr}"
    );
    // It really exercised the API: requests reached the handlers with the key.
    let answered = env
        .app
        .metric("hookrelay_api_requests_total", "status=\"200\"")
        + env
            .app
            .metric("hookrelay_api_requests_total", "status=\"201\"");
    assert!(
        answered >= 20.0,
        "only {answered} successful API requests\n{stdout}"
    );
    let server_errors: f64 = ["500", "502", "503"]
        .iter()
        .map(|s| {
            env.app
                .metric("hookrelay_api_requests_total", &format!("status=\"{s}\""))
        })
        .sum();
    assert_eq!(
        server_errors, 0.0,
        "the API answered a generated request with a 5xx"
    );
    env.app.stop().await.expect("clean stop");
}
