//! Configuration validation: each class of error fails at start-up with a message that
//! names the key, and `config check` prints the effective config with secrets masked.

use std::path::Path;
use std::process::Output;

fn check(contents: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hookrelay.toml");
    std::fs::write(&file, contents).expect("write");
    check_file(&file)
}

fn check_file(file: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["config", "check"])
        .arg(file)
        .env_remove("HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS")
        .output()
        .expect("run hookrelay")
}

fn assert_fails_naming(out: &Output, needles: &[&str]) {
    assert!(!out.status.success(), "should fail: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in needles {
        assert!(err.contains(needle), "stderr should name {needle:?}: {err}");
    }
}

#[test]
fn valid_file_prints_effective_config_with_secrets_masked() {
    let out = check(
        r#"
[kafka]
bootstrap_servers = "127.0.0.1:19092"
[kafka.properties]
"sasl.password" = "hunter2"
[delivery]
timeout = "3s"
"#,
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("timeout = \"3s\""), "{stdout}");
    assert!(stdout.contains("127.0.0.1:19092"));
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(stdout.contains("***"));
}

#[test]
fn smtp_and_kafka_passwords_from_the_environment_are_masked() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["config", "check"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/secured-cluster.toml"))
        .env(
            "HOOKRELAY__KAFKA__PROPERTIES__SASL_PASSWORD",
            "kafka-pass-31",
        )
        .env("HOOKRELAY__NOTIFY__SMTP__PASSWORD", "smtp-pass-42")
        .output()
        .expect("run hookrelay");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("kafka-pass-31"), "{stdout}");
    assert!(!stdout.contains("smtp-pass-42"), "{stdout}");
    assert!(stdout.contains("\"sasl.password\" = \"***\""), "{stdout}");
    assert!(stdout.contains("password = \"***\""), "{stdout}");
}

#[test]
fn the_shipped_config_files_are_valid() {
    for file in [
        "config/local.toml",
        "config/defaults.toml",
        "config/secured-cluster.toml",
    ] {
        // As documented in secured-cluster.toml, its passwords come from the environment.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(["config", "check"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .env_remove("HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS")
            .env("HOOKRELAY__KAFKA__PROPERTIES__SASL_PASSWORD", "x")
            .env("HOOKRELAY__NOTIFY__SMTP__PASSWORD", "y")
            .output()
            .expect("run hookrelay");
        assert!(out.status.success(), "{file}: {out:?}");
    }
}

#[test]
fn unknown_key_is_named() {
    assert_fails_naming(&check("[delivery]\ntimeout_ms = 5000\n"), &["timeout_ms"]);
    assert_fails_naming(&check("[deliveryy]\ntimeout = \"5s\"\n"), &["deliveryy"]);
}

#[test]
fn wrong_type_is_named() {
    assert_fails_naming(&check("[delivery]\ntimeout = \"soon\"\n"), &["timeout"]);
    assert_fails_naming(
        &check("[delivery]\nendpoint_concurrency = \"four\"\n"),
        &["endpoint_concurrency"],
    );
    assert_fails_naming(
        &check("[admin]\nlisten = \"not an address\"\n"),
        &["listen"],
    );
    assert_fails_naming(
        &check("[delivery]\nssrf_allowlist = [\"10.0.0.0/33\"]\n"),
        &["ssrf_allowlist"],
    );
}

#[test]
fn out_of_range_value_is_named() {
    assert_fails_naming(
        &check("[delivery.batch]\nmax_events = 0\n"),
        &["delivery.batch.max_events"],
    );
    assert_fails_naming(
        &check(
            "[retry]\ntiers = [{ topic = \"a\", delay = \"5m\" }, { topic = \"b\", delay = \"1m\" }]\n",
        ),
        &["retry.tiers"],
    );
    assert_fails_naming(
        &check("[topics]\nevents = \"bad topic!\"\n"),
        &["topics.events"],
    );
    assert_fails_naming(
        &check("[topics]\ndead_letter = \"license-events\"\n"),
        &["topics.dead_letter", "used twice"],
    );
}

#[test]
fn malformed_toml_and_missing_file_are_reported() {
    assert_fails_naming(&check("[delivery\ntimeout = 1"), &["delivery"]);
    let out = check_file(Path::new("/nonexistent/hookrelay.toml"));
    assert_fails_naming(&out, &["/nonexistent/hookrelay.toml"]);
}

#[test]
fn environment_override_with_bad_value_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, "").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["config", "check"])
        .arg(&file)
        .env("HOOKRELAY__DELIVERY__MAX_IN_FLIGHT", "lots")
        .output()
        .expect("run");
    assert_fails_naming(&out, &["max_in_flight"]);
}
