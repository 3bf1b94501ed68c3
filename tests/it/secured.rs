//! hookrelay against the broker's SASL_SSL listener (`scripts/kafka start` runs one next to
//! the plain listener, with a generated CA and SCRAM users): the pipeline end to end over TLS
//! and SCRAM-SHA-512, every SASL mechanism the build supports, and start-up failing at once,
//! with a message that names the settings to fix, for a wrong password and for a broker
//! certificate the client does not trust.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hookrelay::config::Config;
use hookrelay::event::{EventType, encode_avro};
use hookrelay::kafka::topics::{ensure_topics, topic_specs};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::delivery::event;
use crate::harness::{RunningApp, endpoint, secret, test_config};
use crate::receiver::{Behavior, Receiver};

/// The broker's SASL_SSL listener as `scripts/kafka start` reports it.
struct Listener {
    bootstrap: String,
    tls_dir: PathBuf,
    username: String,
    password: String,
}

fn listener() -> Listener {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: run the tests through scripts/test, or `eval \"$(scripts/kafka start)\"` \
                 first (a broker started by an older scripts/kafka has no SASL_SSL listener: restart it)"
            )
        })
    };
    Listener {
        bootstrap: var("HOOKRELAY_TEST_SASL_BOOTSTRAP"),
        tls_dir: PathBuf::from(var("HOOKRELAY_TEST_KAFKA_TLS")),
        username: var("HOOKRELAY_TEST_SASL_USERNAME"),
        password: var("HOOKRELAY_TEST_SASL_PASSWORD"),
    }
}

/// Environment overrides that point hookrelay at the SASL_SSL listener, written the way the
/// README tells operators to (`_` for `.` in property names).
fn secured_env(l: &Listener, mechanism: &str, password: &str, ca: &str) -> Vec<(String, String)> {
    [
        ("HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS", l.bootstrap.clone()),
        (
            "HOOKRELAY__KAFKA__PROPERTIES__SECURITY_PROTOCOL",
            "SASL_SSL".to_owned(),
        ),
        (
            "HOOKRELAY__KAFKA__PROPERTIES__SASL_MECHANISM",
            mechanism.to_owned(),
        ),
        (
            "HOOKRELAY__KAFKA__PROPERTIES__SASL_USERNAME",
            l.username.clone(),
        ),
        (
            "HOOKRELAY__KAFKA__PROPERTIES__SASL_PASSWORD",
            password.to_owned(),
        ),
        (
            "HOOKRELAY__KAFKA__PROPERTIES__SSL_CA_LOCATION",
            l.tls_dir.join(ca).display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn secured_config(mechanism: &str) -> (Config, tempfile::TempDir) {
    let l = listener();
    let env = secured_env(&l, mechanism, &l.password, "ca.pem");
    let overrides: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    test_config(&[1, 2], &overrides)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_end_to_end_over_sasl_ssl() {
    let receiver = Receiver::start().await;
    let (config, _dir) = secured_config("SCRAM-SHA-512");
    // Every client below speaks SASL_SSL: topic administration, the test's producer, and
    // hookrelay's own consumers and producers.
    let admin: AdminClient<DefaultClientContext> = hookrelay::kafka::client_config(&config.kafka)
        .create()
        .expect("admin client over SASL_SSL");
    ensure_topics(&admin, &topic_specs(&config))
        .await
        .expect("topics created over SASL_SSL");
    let producer: FutureProducer = hookrelay::kafka::client_config(&config.kafka)
        .set("acks", "all")
        .create()
        .expect("producer over SASL_SSL");
    let url = receiver.endpoint(
        "sec",
        Behavior::FailTimes {
            times: 1,
            status: 500,
        },
    );
    let ep = endpoint("ep_sec", "acc_sec", &url, &[], &secret());
    hookrelay::subscriptions::publish(&producer, &config.topics.subscriptions, &ep)
        .await
        .expect("endpoint published over SASL_SSL");

    let app = RunningApp::start(config.clone()).await;
    let mut expected = BTreeSet::new();
    for (i, t) in [
        EventType::LicenseCreated,
        EventType::LicenseActivated,
        EventType::PaymentFailed,
    ]
    .into_iter()
    .enumerate()
    {
        let e = event(9_100 + i, "acc_sec", t);
        let payload = encode_avro(&e).expect("avro");
        producer
            .send(
                FutureRecord::to(&config.topics.events)
                    .key("acc_sec")
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .expect("event produced over SASL_SSL");
        expected.insert((e.id.to_string(), "sec".to_owned()));
    }
    // The first request fails, so one delivery also goes through a retry tier and back.
    receiver
        .wait_for_pairs(Duration::from_secs(60), &expected)
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.metric("hookrelay_deliveries_total", "outcome=\"delivered\"") < 3.0 {
        assert!(Instant::now() < deadline, "three deliveries settled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        app.metric("hookrelay_retry_scheduled_total", "") >= 1.0,
        "the failed attempt went through a retry tier"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supported_sasl_mechanism_connects() {
    let l = listener();
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] {
        let mut env = secured_env(&l, mechanism, &l.password, "ca.pem");
        if mechanism == "OAUTHBEARER" {
            // librdkafka's built-in unsecured JWTs: no identity provider involved.
            env.retain(|(k, _)| !k.contains("SASL_USERNAME") && !k.contains("SASL_PASSWORD"));
            env.push((
                "HOOKRELAY__KAFKA__PROPERTIES__ENABLE_SASL_OAUTHBEARER_UNSECURE_JWT".into(),
                "true".into(),
            ));
            env.push((
                "HOOKRELAY__KAFKA__PROPERTIES__SASL_OAUTHBEARER_CONFIG".into(),
                format!("principal={}", l.username),
            ));
        }
        let mut kafka = Config::load_from(None, &env).expect("valid config").kafka;
        kafka.connect_timeout = Duration::from_secs(20);
        let seen = hookrelay::kafka::check_connection(&kafka)
            .await
            .unwrap_or_else(|e| panic!("{mechanism}: {:#}", anyhow::Error::new(e)));
        assert_eq!(seen.brokers, 1, "{mechanism}");
    }
}

/// Runs `hookrelay run` with `env` and returns its exit status, stderr and how long it took.
async fn run_binary(env: &[(String, String)]) -> (std::process::ExitStatus, String, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .arg("run")
        .envs(env.iter().cloned())
        .env("HOOKRELAY__ADMIN__LISTEN", "127.0.0.1:0")
        .env(
            "HOOKRELAY__SUBSCRIPTIONS__DATA_DIR",
            dir.path().join("subs").display().to_string(),
        )
        .env("HOOKRELAY__TOPICS__REPLICATION_FACTOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start hookrelay");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("hookrelay exits by itself")
        .expect("wait for hookrelay");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_start_up_at_once_naming_the_sasl_settings() {
    let l = listener();
    let wrong = "not-the-password-7f3a";
    let env = secured_env(&l, "SCRAM-SHA-512", wrong, "ca.pem");
    let (status, stderr, took) = run_binary(&env).await;
    assert_eq!(status.code(), Some(2), "start-up fails\n{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "fails fast, not after the 30 s connect timeout: {took:?}\n{stderr}"
    );
    for expected in [
        "rejected the credentials",
        "Authentication failed",
        "SCRAM-SHA-512",
        "sasl.password",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from\n{stderr}"
        );
    }
    assert!(
        !stderr.contains(wrong),
        "the password is never printed\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_broker_certificate_stops_start_up_at_once_naming_the_ca_setting() {
    let l = listener();
    // A CA that signed nothing the broker presents.
    let env = secured_env(&l, "SCRAM-SHA-512", &l.password, "other-ca.pem");
    let (status, stderr, took) = run_binary(&env).await;
    assert_eq!(status.code(), Some(2), "start-up fails\n{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "fails fast: {took:?}\n{stderr}"
    );
    for expected in [
        "TLS with Kafka",
        "certificate verify failed",
        "ssl.ca.location",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from\n{stderr}"
        );
    }
}
