//! Interop with the Avro libraries licensing systems and consumers really use, so a record a
//! JVM or Python service writes is never again refused as "unknown schema" (issue 13):
//!
//! - the fingerprint of every file in `schemas/`, as Apache Avro for Java and fastavro compute
//!   it, equals hookrelay's;
//! - license events written by Java (`BinaryMessageEncoder` single-object, and plain datums
//!   after a Confluent header, produced with the Kafka Java client) and by fastavro, for every
//!   event type, every schema version, optional fields given and left out, reach a receiver
//!   as exactly the golden body of that event; and 500 Java single-object events, 500/500;
//! - every kind of record hookrelay writes (retry and dead-letter envelopes, attempts,
//!   notifications, endpoint and status records, API keys), taken from the real topics, is
//!   read by Java's `BinaryMessageDecoder` and by fastavro with the shipped schemas, to the
//!   same values hookrelay reads.
//!
//! The third-party programs are `tests/interop/java/Interop.java` and
//! `tests/interop/python/interop.py`; they read `schemas/` and nothing of hookrelay's.
//! `scripts/interop-tools` (run by `scripts/test`) prepares them and sets
//! HOOKRELAY_TEST_INTEROP_JAVA_CP and HOOKRELAY_TEST_PYTHON.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hookrelay::event::{EventType, LicenseEvent, sample};
use hookrelay::ids::{AccountId, EndpointId, EventId};
use hookrelay::records::canonical::parsing_canonical_form;
use rdkafka::Message;
use serde_json::{Value, json};

use crate::common;
use crate::harness::{RunningApp, create_topics, endpoint, publish_endpoints, secret, test_config};
use crate::receiver::{Behavior, Receiver};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn schema_dir() -> PathBuf {
    repo().join("schemas")
}

/// The program of one library, with its arguments before the command's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Library {
    Java,
    Fastavro,
}

impl Library {
    fn command(self) -> Command {
        match self {
            Library::Java => {
                let cp = std::env::var("HOOKRELAY_TEST_INTEROP_JAVA_CP").unwrap_or_else(|_| {
                    panic!(
                        "HOOKRELAY_TEST_INTEROP_JAVA_CP is not set: run scripts/test, or \
                         eval \"$(scripts/interop-tools)\" first"
                    )
                });
                let mut c = Command::new("java");
                // A short-lived tool: no JIT warm-up worth paying for.
                c.args(["-XX:TieredStopAtLevel=1", "-cp", &cp, "Interop"]);
                c
            }
            Library::Fastavro => {
                let python = std::env::var("HOOKRELAY_TEST_PYTHON").unwrap_or_else(|_| {
                    panic!(
                        "HOOKRELAY_TEST_PYTHON is not set: run scripts/test, or \
                         eval \"$(scripts/interop-tools)\" first"
                    )
                });
                let mut c = Command::new(python);
                c.arg(repo().join("tests/interop/python/interop.py"));
                c
            }
        }
    }

    /// Runs `args`, feeding `stdin`; returns stdout, panicking with stderr on failure.
    pub fn run(self, args: &[&str], stdin: &str) -> String {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {self:?} interop program: {e}"));
        let mut input = child.stdin.take().expect("stdin");
        let stdin = stdin.to_owned();
        let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
        let out = child.wait_with_output().expect("interop program output");
        writer.join().expect("stdin writer").expect("write stdin");
        assert!(
            out.status.success(),
            "{self:?} {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }
}

const LIBRARIES: [Library; 2] = [Library::Java, Library::Fastavro];

#[test]
fn every_shipped_schema_has_the_fingerprint_java_and_fastavro_compute() {
    let dir = schema_dir();
    let dir = dir.to_str().expect("UTF-8 path");
    let ours: BTreeMap<String, (u64, &'static str)> = hookrelay::records::shipped_schemas()
        .expect("schemas load")
        .into_iter()
        .flat_map(|set| {
            set.released()
                .map(|v| {
                    (
                        format!("{}.v{}.avsc", set.name(), v.number),
                        (v.fingerprint.to_u64(), v.json),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("schemas/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".avsc"))
        .collect();
    assert_eq!(
        ours.keys().cloned().collect::<BTreeSet<_>>(),
        on_disk,
        "every schema file is shipped, and only those"
    );
    for library in LIBRARIES {
        let out = library.run(&["fingerprints", dir], "");
        let mut seen = BTreeSet::new();
        for line in out.lines() {
            let mut parts = line.splitn(3, ' ');
            let (Some(file), Some(hex), Some(form)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("{library:?} printed {line:?}");
            };
            let theirs = u64::from_str_radix(hex, 16).expect("hex fingerprint");
            let (fingerprint, json) = ours[file];
            assert_eq!(
                parsing_canonical_form(json).expect("canonical form"),
                form,
                "{file}: canonical form differs from {library:?}'s"
            );
            assert_eq!(
                fingerprint, theirs,
                "{file}: hookrelay {fingerprint:016x}, {library:?} {theirs:016x}"
            );
            seen.insert(file.to_owned());
        }
        assert_eq!(seen, on_disk, "{library:?} saw every schema file");
    }
}

// ---- license events written by Java and fastavro ----

pub const ACCOUNT: &str = "acc_interop";
/// Confluent schema ids the test maps, as a producer's registry would have assigned them.
const CONFLUENT_V1: u32 = 41;
const CONFLUENT_V2: u32 = 42;

/// The optional `data` fields; `minimal` cases leave out those a type does not require.
const OPTIONAL: [&str; 6] = [
    "domain",
    "expiresAt",
    "previousPlan",
    "reason",
    "amount",
    "currency",
];
/// Fields schema v1 does not have.
const V2_ONLY: [&str; 3] = ["reason", "amount", "currency"];

/// One record a third-party library writes, and what the customer must receive for it.
pub struct Case {
    pub id: String,
    event_type: EventType,
    /// The JSON line the library's program reads.
    pub line: String,
    /// `data` keys the golden body has that this record does not carry.
    absent: Vec<&'static str>,
    /// True when `features` was left out (its default, an empty list, applies).
    no_features: bool,
}

/// The Avro record (plain JSON: field names of the schema, nulls, epoch milliseconds) of the
/// golden event of type `t`, as schema `version` holds it; `minimal` leaves out every field
/// with a default that `t` does not require.
pub fn case(id: &str, t: EventType, version: u32, minimal: bool, framing: &str) -> Case {
    let e: LicenseEvent = sample(EventId::new(id.to_owned()), t, AccountId::from(ACCOUNT));
    let millis = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    let d = &e.data;
    let mut data = json!({
        "licenseKey": d.license_key,
        "plan": d.plan,
        "domain": d.domain,
        "activationsUsed": d.activations_used,
        "activationLimit": d.activation_limit,
        "expiresAt": d.expires_at.map(millis),
        "features": d.features,
        "previousPlan": d.previous_plan,
        "reason": d.reason,
        "amount": d.amount.as_ref().map(|a| a.minor_units),
        "currency": d.amount.as_ref().map(|a| a.currency.clone()),
    });
    let data_obj = data.as_object_mut().expect("object");
    let mut absent = Vec::new();
    if version == 1 {
        for k in V2_ONLY {
            data_obj.remove(k);
            absent.push(k);
        }
    }
    if minimal {
        for k in OPTIONAL {
            if !t.required_fields().contains(&k) && data_obj.remove(k).is_some() {
                absent.push(k);
            }
        }
        data_obj.remove("features");
    }
    let record = json!({
        "id": id,
        "type": t.as_str(),
        "created": millis(e.created),
        "account_id": ACCOUNT,
        "data": data,
    });
    let line = json!({
        "schema": format!("license_event.v{version}"),
        "framing": framing,
        "confluent_id": if version == 1 { CONFLUENT_V1 } else { CONFLUENT_V2 },
        "key": ACCOUNT,
        "record": record,
    });
    Case {
        id: id.to_owned(),
        event_type: t,
        line: line.to_string(),
        absent,
        no_features: minimal,
    }
}

/// Every type × schema version × full/minimal × framing, ids prefixed by `library`.
fn matrix(library: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for (n, t) in EventType::ALL.into_iter().enumerate() {
        for version in [1, 2] {
            for minimal in [false, true] {
                for framing in ["single", "confluent"] {
                    let id = format!(
                        "evt_{library}_{}_v{version}_{}_{n}",
                        &framing[..1],
                        if minimal { "min" } else { "full" }
                    );
                    cases.push(case(&id, t, version, minimal, framing));
                }
            }
        }
    }
    cases
}

fn golden(t: EventType) -> String {
    let path = repo().join(format!("tests/golden/{}.json", t.as_str()));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim_end()
        .to_owned()
}

/// The golden body of the case's type, with the case's id: exactly what must arrive.
fn golden_with_id(c: &Case) -> String {
    let body = golden(c.event_type);
    assert!(body.contains("\"id\":\"evt_a1b2c3d4e5f6\""), "golden id");
    body.replacen("evt_a1b2c3d4e5f6", &c.id, 1)
}

/// Checks one received body against the case: byte for byte when the record carried every
/// field of the golden event, else the golden body less the fields the record left out.
pub fn check_body(c: &Case, body: &[u8]) {
    let expected_text = golden_with_id(c);
    if c.absent.is_empty() && !c.no_features {
        assert_eq!(
            String::from_utf8_lossy(body),
            expected_text,
            "{}: not the golden body",
            c.id
        );
        return;
    }
    let mut expected: Value = serde_json::from_str(&expected_text).expect("golden JSON");
    let data = expected["data"].as_object_mut().expect("data");
    for k in &c.absent {
        data.remove(*k);
    }
    if c.no_features {
        data.insert("features".to_owned(), json!([]));
    }
    let got: Value = serde_json::from_slice(body).expect("JSON body");
    assert_eq!(
        got, expected,
        "{}: not the golden body less its absent fields",
        c.id
    );
}

fn write_cases(dir: &Path, name: &str, cases: &[Case]) -> String {
    let path = dir.join(name);
    let text: String = cases.iter().map(|c| format!("{}\n", c.line)).collect();
    std::fs::write(&path, text).expect("write cases");
    path.to_str().expect("UTF-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_by_java_and_fastavro_reach_customers_as_the_golden_bodies() {
    let (config, dir) = test_config(
        &[1],
        &[(
            "HOOKRELAY__CODEC__CONFLUENT_SCHEMA_IDS",
            &format!(r#"{{{CONFLUENT_V1}="license_event.v1",{CONFLUENT_V2}="license_event.v2"}}"#),
        )],
    );
    create_topics(&config).await;
    let receiver = Receiver::start().await;
    let url = receiver.endpoint("interop", Behavior::Healthy);
    let mut ep = endpoint("ep_interop", ACCOUNT, &url, &[], &secret());
    // One event per request, so each body is one case's.
    ep.batching.enabled = false;
    publish_endpoints(&config, &[ep]).await;
    let app = RunningApp::start(config.clone()).await;

    let java = matrix("java");
    // The issue's report: 500 events, Java single-object with schema v2, every type.
    let java500: Vec<Case> = (0..500)
        .map(|n| {
            let t = EventType::ALL[n % EventType::ALL.len()];
            case(&format!("evt_java500_{n}"), t, 2, false, "single")
        })
        .collect();
    let fastavro = matrix("py");

    // Java produces its records itself, with the Kafka Java client.
    let bootstrap = common::bootstrap();
    let schemas = schema_dir();
    let schemas = schemas.to_str().expect("UTF-8 path");
    for (name, cases) in [("java.jsonl", &java), ("java500.jsonl", &java500)] {
        let file = write_cases(dir.path(), name, cases);
        let out = Library::Java.run(
            &["produce", &bootstrap, &config.topics.events, schemas, &file],
            "",
        );
        assert_eq!(
            out.trim(),
            cases.len().to_string(),
            "Java produced every case"
        );
    }
    // fastavro writes the records; they go to Kafka as they are.
    let file = write_cases(dir.path(), "fastavro.jsonl", &fastavro);
    let encoded = Library::Fastavro.run(&["encode", schemas, &file], "");
    let producer = common::producer();
    let mut produced = 0;
    for line in encoded.lines() {
        let (key, value) = line.split_once(' ').expect("KEY VALUE");
        let key = hex::decode(key).expect("hex key");
        let value = hex::decode(value).expect("hex value");
        common::produce(&producer, &config.topics.events, Some(&key), Some(&value)).await;
        produced += 1;
    }
    assert_eq!(produced, fastavro.len(), "fastavro wrote every case");

    let all: HashMap<&str, &Case> = java
        .iter()
        .chain(&java500)
        .chain(&fastavro)
        .map(|c| (c.id.as_str(), c))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got: BTreeSet<String> = receiver
            .received()
            .iter()
            .flat_map(|r| r.event_ids())
            .collect();
        if all.keys().all(|id| got.contains(*id)) {
            break;
        }
        if Instant::now() > deadline {
            let invalid = common::read_all(&config.topics.invalid);
            let reasons: Vec<String> = invalid
                .iter()
                .take(5)
                .map(|m| {
                    m.headers()
                        .map(|h| {
                            use rdkafka::message::Headers;
                            h.iter()
                                .filter_map(|h| {
                                    Some(format!("{}={}", h.key, String::from_utf8_lossy(h.value?)))
                                })
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default()
                })
                .collect();
            panic!(
                "{} of {} events arrived; {} records went to the invalid topic, e.g. {reasons:#?}",
                all.keys().filter(|id| got.contains(**id)).count(),
                all.len(),
                invalid.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut checked = 0;
    for r in receiver.received() {
        let ids = r.event_ids();
        assert_eq!(ids.len(), 1, "batching is off");
        let case = all[ids[0].as_str()];
        check_body(case, &r.body);
        checked += 1;
    }
    assert!(checked >= all.len());
    assert!(
        common::read_all(&config.topics.invalid).is_empty(),
        "nothing was refused"
    );
    app.stop().await.expect("clean stop");
}

// ---- what hookrelay writes, read by Java and fastavro ----

/// The schema (file name prefix) of a record hookrelay wrote to `topic` under `key`.
fn schema_of(config: &hookrelay::config::Config, topic: &str, key: &[u8]) -> &'static str {
    let t = &config.topics;
    if topic == t.attempts {
        "attempt"
    } else if topic == t.notifications {
        "endpoint_notification"
    } else if topic == t.api_keys {
        "api_key"
    } else if topic == t.subscriptions {
        if key.starts_with(b"status:") {
            "endpoint_status"
        } else {
            "endpoint"
        }
    } else {
        // Retry tiers and the dead-letter topic.
        "delivery_envelope"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_hookrelay_writes_are_read_by_java_and_fastavro_with_the_shipped_schemas() {
    let (config, _dir) = test_config(&[1], &[]);
    create_topics(&config).await;
    let receiver = Receiver::start().await;
    let url = receiver.endpoint("down", Behavior::Status(503));
    let mut ep = endpoint("ep_down", ACCOUNT, &url, &[], &secret());
    ep.contact_email = Some("owner@customer.example".to_owned());
    ep.description = Some("Ünïcode \"quoted\" description".to_owned());
    publish_endpoints(&config, &[ep]).await;
    let app = RunningApp::start(config.clone()).await;
    hookrelay::api::keys::create(
        &config,
        Some(ACCOUNT.to_owned()),
        Some("interop".to_owned()),
    )
    .await
    .expect("API key");
    let event = sample(
        EventId::from("evt_reverse1"),
        EventType::PaymentFailed,
        AccountId::from(ACCOUNT),
    );
    common::produce(
        &common::producer(),
        &config.topics.events,
        Some(ACCOUNT.as_bytes()),
        Some(&hookrelay::event::encode_avro(&event).expect("encode")),
    )
    .await;
    // Attempt 1 fails (retry tier), attempt 2 fails: dead letter, endpoint disabled (a status
    // record) and a notification.
    let id = EndpointId::from("ep_down");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(app
        .table
        .get(&id)
        .expect("table")
        .is_some_and(|ep| ep.breaker_disabled())
        && app.metric("hookrelay_dead_lettered_total", "") >= 1.0)
    {
        assert!(Instant::now() < deadline, "endpoint not disabled in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let t = &config.topics;
    let mut topics = vec![
        t.attempts.clone(),
        t.notifications.clone(),
        t.api_keys.clone(),
        t.subscriptions.clone(),
        t.dead_letter.clone(),
    ];
    topics.extend(config.retry.tiers.iter().map(|tier| tier.topic.clone()));
    let mut input = String::new();
    let mut ours = Vec::new();
    for topic in &topics {
        for m in common::read_all_at_least(topic, 1) {
            let Some(value) = m.payload() else { continue };
            let name = schema_of(&config, topic, m.key().unwrap_or_default());
            input.push_str(&format!("{name} {}\n", hex::encode(value)));
            ours.push((topic.clone(), name, hookrelay_reads(name, value)));
        }
    }
    let kinds: BTreeSet<&str> = ours.iter().map(|(_, name, _)| *name).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "api_key",
            "attempt",
            "delivery_envelope",
            "endpoint",
            "endpoint_notification",
            "endpoint_status"
        ]),
        "every kind of record hookrelay writes is covered"
    );
    let schemas = schema_dir();
    let schemas = schemas.to_str().expect("UTF-8 path");
    for library in LIBRARIES {
        let out = library.run(&["read", schemas], &input);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), ours.len(), "{library:?}: one line per record");
        for ((topic, name, expected), line) in ours.iter().zip(lines) {
            let theirs: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{library:?} printed {line:?}: {e}"));
            assert_eq!(
                &theirs, expected,
                "{library:?} reads a {name} record from {topic} differently"
            );
        }
    }
    app.stop().await.expect("clean stop");
}

/// What hookrelay itself reads from a record of schema `name`, as JSON.
fn hookrelay_reads(name: &str, value: &[u8]) -> Value {
    let set = hookrelay::records::shipped_schemas()
        .expect("schemas")
        .into_iter()
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("no shipped schema {name}"));
    let avro = set
        .decode_value(value)
        .unwrap_or_else(|e| panic!("hookrelay cannot read its own {name} record: {e}"));
    Value::try_from(avro).expect("Avro value as JSON")
}
