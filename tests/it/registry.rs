//! The schema registry (`codec.schema_registry`) on the real broker: Confluent-framed license
//! events whose ids `codec.confluent_schema_ids` does not map are decoded with the writer
//! schema a registry gives (over TLS with a private CA and basic authentication), including a
//! producer's newer compatible schema written by fastavro; while the registry is down or
//! answers errors, nothing is delivered, refused or committed past the waiting records, and
//! they all go through once it answers; the registry's definite refusals (not found, not
//! Avro) send records to the invalid-records topic with their reason.
//!
//! No schema registry server can be installed from the registries this project may use:
//! Confluent's is not on Maven Central, Karapace is not on PyPI, and Apicurio Registry 3.3.3's
//! application cannot be assembled from Maven Central (its dependency
//! `io.apicurio:apicurio-registry-schema-util-provider` is not served there; tried). So the
//! registry is `tests/registry_server.py`: the schema-by-id endpoint of the Confluent API,
//! answering in that API's documented format (the same that Apicurio's ccompat API, Karapace
//! and Redpanda serve), written from the documentation rather than recorded from a server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hookrelay::event::{EventType, customer_body, encode_confluent, sample};
use hookrelay::ids::{AccountId, EventId};
use rdkafka::Message;
use rdkafka::message::Headers;
use serde_json::{Value, json};

use crate::common;
use crate::harness::{RunningApp, create_topics, endpoint, publish_endpoints, secret, test_config};
use crate::interop::{ACCOUNT, Library, case, check_body, schema_dir};
use crate::pyserver::PyServer;
use crate::receiver::{Behavior, Receiver};
use crate::smtp::make_certs;

struct Registry {
    port: u16,
    server: PyServer,
}

impl Registry {
    async fn start(answers: &std::path::Path, flags: &[&str]) -> Registry {
        let args: Vec<String> = ["--answers", &answers.display().to_string()]
            .into_iter()
            .chain(flags.iter().copied())
            .map(str::to_owned)
            .collect();
        let server = PyServer::spawn("registry_server.py", &args, "");
        let listening = server
            .wait_event(Duration::from_secs(30), "the registry listening", |e| {
                e["event"] == "listening"
            })
            .await;
        let port = listening["port"].as_u64().expect("the port it listens on") as u16;
        Registry { port, server }
    }

    async fn mode(&mut self, mode: &str) {
        self.server.send_line(mode).await;
    }

    fn requests(&self) -> Vec<Value> {
        self.server
            .events()
            .into_iter()
            .filter(|e| e["event"] == "request")
            .collect()
    }
}

fn header(m: &rdkafka::message::OwnedMessage, name: &str) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_records_are_decoded_with_the_registrys_schemas_and_wait_out_its_outages() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    // The producer's registry: v2 as shipped (id 100), a newer compatible schema with one
    // more field (101), a Protobuf schema (102); 103 is unknown to it.
    let v2 = std::fs::read_to_string(schema_dir().join("license_event.v2.avsc")).expect("v2");
    let mut v3: Value = serde_json::from_str(&v2).expect("JSON");
    v3["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "source", "type": ["null", "string"], "default": null}));
    let producer_schemas = dir.path().join("producer-schemas");
    std::fs::create_dir_all(&producer_schemas).expect("dir");
    std::fs::write(
        producer_schemas.join("license_event.v3.avsc"),
        v3.to_string(),
    )
    .expect("v3");
    let answers = json!({
        "100": {"status": 200, "body": {"schema": v2}},
        "101": {"status": 200, "body": {"schema": v3.to_string()}},
        "102": {"status": 200, "body": {"schemaType": "PROTOBUF", "schema": "syntax = \"proto3\"; message M {}"}},
    });
    let answers_file = dir.path().join("answers.json");
    std::fs::write(&answers_file, answers.to_string()).expect("answers");
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let mut registry = Registry::start(
        &answers_file,
        &[
            "--prefix",
            "/apis/ccompat/v7",
            "--basic",
            "registry-user:registry-pass-9f2",
            "--cert",
            cert.to_str().expect("path"),
            "--key",
            key.to_str().expect("path"),
            "--mode",
            "503",
        ],
    )
    .await;

    let ca = dir.path().join("ca.pem");
    let url = format!("https://localhost:{}/apis/ccompat/v7", registry.port);
    let (config, _data) = test_config(
        &[1],
        &[
            ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__URL", &url),
            (
                "HOOKRELAY__CODEC__SCHEMA_REGISTRY__USERNAME",
                "registry-user",
            ),
            (
                "HOOKRELAY__CODEC__SCHEMA_REGISTRY__PASSWORD",
                "registry-pass-9f2",
            ),
            (
                "HOOKRELAY__CODEC__SCHEMA_REGISTRY__CA_FILE",
                ca.to_str().expect("path"),
            ),
            ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__RETRY_INITIAL", "100ms"),
            ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__RETRY_MAX", "500ms"),
        ],
    );
    assert!(
        !format!("{config:?}").contains("registry-pass-9f2")
            && !config.to_masked_toml().contains("registry-pass-9f2"),
        "the registry password shows in the config's Debug or config check output"
    );
    create_topics(&config).await;
    let receiver = Receiver::start().await;
    let hook = receiver.endpoint("registry", Behavior::Healthy);
    let mut ep = endpoint("ep_registry", ACCOUNT, &hook, &[], &secret());
    ep.batching.enabled = false;
    publish_endpoints(&config, &[ep]).await;
    let app = RunningApp::start(config.clone()).await;

    // hookrelay-style v2 datums under id 100; fastavro's v3 datum (with `source` set) under 101.
    let ev = |n: u32, t: EventType| {
        sample(
            EventId::new(format!("evt_registry{n}")),
            t,
            AccountId::from(ACCOUNT),
        )
    };
    let by_v2 = [
        ev(1, EventType::LicenseActivated),
        ev(2, EventType::PaymentFailed),
    ];
    let mut v3_case = case(
        "evt_registry3",
        EventType::LicenseRenewed,
        2,
        false,
        "confluent",
    );
    let mut line: Value = serde_json::from_str(&v3_case.line).expect("case");
    line["schema"] = json!("license_event.v3");
    line["confluent_id"] = json!(101);
    line["record"]["source"] = json!("crm");
    v3_case.line = line.to_string();
    let cases_file = dir.path().join("v3.jsonl");
    std::fs::write(&cases_file, format!("{}\n", v3_case.line)).expect("cases");
    let encoded = Library::Fastavro.run(
        &[
            "encode",
            producer_schemas.to_str().expect("path"),
            cases_file.to_str().expect("path"),
        ],
        "",
    );
    let v3_value = hex::decode(encoded.trim().split_once(' ').expect("KEY VALUE").1).expect("hex");
    let proto = encode_confluent(&ev(4, EventType::LicenseCreated), 102).expect("encode");
    let unknown = encode_confluent(&ev(5, EventType::LicenseCreated), 103).expect("encode");

    let producer = common::producer();
    let mut values: Vec<Vec<u8>> = by_v2
        .iter()
        .map(|e| encode_confluent(e, 100).expect("encode"))
        .collect();
    values.extend([v3_value, proto.clone(), unknown.clone()]);
    for value in &values {
        common::produce(
            &producer,
            &config.topics.events,
            Some(ACCOUNT.as_bytes()),
            Some(value),
        )
        .await;
    }

    // The registry answers 503: everything waits in Kafka, nothing is refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry.requests().len() < 3
        || app.metric("hookrelay_paused_partitions", "reason=\"schema_registry\"") < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "no retried registry requests / no partition waiting for the registry: {:?}",
            registry.requests()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        receiver.received().is_empty(),
        "delivered during the outage"
    );
    assert_eq!(
        app.metric("hookrelay_events_invalid_total", ""),
        0.0,
        "refused during the outage"
    );
    // Then it drops connections: still nothing lost.
    registry.mode("drop").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.received().is_empty());
    assert_eq!(app.metric("hookrelay_events_invalid_total", ""), 0.0);

    registry.mode("up").await;
    let want = ["evt_registry1", "evt_registry2", "evt_registry3"];
    receiver
        .wait_for(
            Duration::from_secs(60),
            "the three decodable events",
            |got| {
                let ids: Vec<String> = got.iter().flat_map(|r| r.event_ids()).collect();
                want.iter().all(|w| ids.iter().any(|i| i == w))
            },
        )
        .await;
    let received = receiver.received();
    for e in &by_v2 {
        let body = received
            .iter()
            .find(|r| r.event_ids() == [e.id.to_string()])
            .expect("delivered");
        assert_eq!(body.body.as_ref(), customer_body(e).as_slice(), "{}", e.id);
    }
    let v3_body = received
        .iter()
        .find(|r| r.event_ids() == ["evt_registry3"])
        .expect("delivered");
    check_body(&v3_case, &v3_body.body);

    let invalid = common::read_all_at_least(&config.topics.invalid, 2);
    let reasons: BTreeMap<Vec<u8>, String> = invalid
        .iter()
        .map(|m| {
            (
                m.payload().unwrap_or_default().to_vec(),
                header(m, "hookrelay-invalid-reason").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[&proto], "unusable_schema");
    assert_eq!(reasons[&unknown], "unknown_schema");
    let detail = invalid
        .iter()
        .find(|m| m.payload() == Some(unknown.as_slice()))
        .and_then(|m| header(m, "hookrelay-invalid-detail"))
        .unwrap_or_default();
    assert!(detail.contains("103"), "{detail}");

    let requests = registry.requests();
    assert!(
        requests.iter().all(|r| r["authorized"] == true),
        "every request carried the credentials: {requests:?}"
    );
    assert!(
        requests.iter().all(|r| r["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/apis/ccompat/v7/schemas/ids/"))),
        "{requests:?}"
    );
    // Answers are cached: a second record with id 100 asks nothing more.
    let asked_100 = |r: &[Value]| {
        r.iter()
            .filter(|r| {
                r["path"].as_str().is_some_and(|p| p.ends_with("/100")) && r["status"] == 200
            })
            .count()
    };
    assert_eq!(asked_100(&requests), 1, "{requests:?}");
    common::produce(
        &producer,
        &config.topics.events,
        Some(ACCOUNT.as_bytes()),
        Some(&encode_confluent(&ev(6, EventType::DomainAdded), 100).expect("encode")),
    )
    .await;
    receiver
        .wait_for(Duration::from_secs(30), "a later id-100 event", |got| {
            got.iter().any(|r| r.event_ids() == ["evt_registry6"])
        })
        .await;
    assert_eq!(asked_100(&registry.requests()), 1);

    let (committed, end) = crate::delivery::wait_committed(
        &config.kafka.group_id,
        &config.topics.events,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(committed, end, "everything settled and committed");
    app.stop().await.expect("clean stop");
}

#[test]
fn registry_settings_are_checked_and_secrets_masked() {
    use hookrelay::config::Config;
    let load = |pairs: &[(&str, &str)]| {
        let env: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load_from(None, &env)
    };
    let err = |pairs: &[(&str, &str)]| load(pairs).expect_err("refused").to_string();
    let url = (
        "HOOKRELAY__CODEC__SCHEMA_REGISTRY__URL",
        "https://sr.example.com",
    );
    assert!(
        err(&[("HOOKRELAY__CODEC__SCHEMA_REGISTRY__URL", "sr.example.com")])
            .contains("codec.schema_registry.url")
    );
    assert!(
        err(&[(
            "HOOKRELAY__CODEC__SCHEMA_REGISTRY__URL",
            "https://u:p@sr.example.com"
        )])
        .contains("credentials")
    );
    assert!(
        err(&[
            (
                "HOOKRELAY__CODEC__SCHEMA_REGISTRY__URL",
                "http://sr.example.com"
            ),
            ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__BEARER_TOKEN", "tok"),
        ])
        .contains("unencrypted")
    );
    assert!(
        err(&[
            url,
            ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__USERNAME", "u"),
            ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__BEARER_TOKEN", "tok"),
        ])
        .contains("codec.schema_registry.bearer_token")
    );
    assert!(
        err(&[url, ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__PASSWORD", "p")])
            .contains("codec.schema_registry.password")
    );
    assert!(
        err(&[
            url,
            (
                "HOOKRELAY__CODEC__SCHEMA_REGISTRY__CA_FILE",
                "/nonexistent.pem"
            )
        ])
        .contains("codec.schema_registry.ca_file")
    );
    assert!(
        err(&[url, ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__TIMEOUT", "0s")])
            .contains("codec.schema_registry.timeout")
    );

    let config = load(&[
        url,
        (
            "HOOKRELAY__CODEC__SCHEMA_REGISTRY__BEARER_TOKEN",
            "tok-very-secret",
        ),
    ])
    .expect("valid");
    let shown = config.to_masked_toml();
    assert!(!shown.contains("tok-very-secret"), "{shown}");
    assert!(shown.contains("[codec.schema_registry]"), "{shown}");
    assert!(!format!("{config:?}").contains("tok-very-secret"));
    // Plain http with credentials is fine on loopback (a sidecar registry).
    load(&[
        (
            "HOOKRELAY__CODEC__SCHEMA_REGISTRY__URL",
            "http://127.0.0.1:8081",
        ),
        ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__USERNAME", "u"),
        ("HOOKRELAY__CODEC__SCHEMA_REGISTRY__PASSWORD", "p"),
    ])
    .expect("loopback http with credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sends_a_bearer_token_and_a_refused_one_only_delays() {
    use hookrelay::config::Password;
    use hookrelay::event::registry::{RegistryEntry, SchemaRegistryConfig};
    use hookrelay::ingest::registry::RegistryClient;

    let dir = tempfile::tempdir().expect("tempdir");
    let v2 = std::fs::read_to_string(schema_dir().join("license_event.v2.avsc")).expect("v2");
    let answers = dir.path().join("answers.json");
    std::fs::write(
        &answers,
        json!({"7": {"status": 200, "body": {"schema": v2}}}).to_string(),
    )
    .expect("answers");
    let registry = Registry::start(&answers, &["--bearer", "tok-3c1d"]).await;
    let reader = apache_avro::Schema::parse_str(&v2).expect("reader");
    let client = |token: &str| {
        RegistryClient::new(&SchemaRegistryConfig {
            url: format!("http://127.0.0.1:{}", registry.port),
            bearer_token: Password::new(token),
            timeout: Duration::from_secs(5),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            ..SchemaRegistryConfig::default()
        })
        .expect("client")
    };
    let good = client("tok-3c1d");
    assert!(format!("{good:?}").contains("127.0.0.1") && !format!("{good:?}").contains("tok-3c1d"));
    assert!(matches!(
        good.fetch_once(7, &reader).await,
        Ok(RegistryEntry::Usable(_))
    ));
    let refused = client("wrong")
        .fetch_once(7, &reader)
        .await
        .expect_err("transient");
    assert!(refused.to_string().contains("401"), "{refused}");
    assert!(!refused.to_string().contains("wrong"), "{refused}");
    // The server reports each request on its stdout, which a task reads: wait for both.
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.requests().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        registry
            .requests()
            .iter()
            .map(|r| r["authorized"] == true)
            .collect::<Vec<_>>(),
        [true, false]
    );
}
