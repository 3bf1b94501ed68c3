//! The event contract from the outside: the exact bytes customers receive (golden files in
//! `tests/golden/`, one per event type plus a batch), and, on the real broker, every input
//! encoding reaching a receiver while undecodable records land on the invalid-records topic
//! unchanged, with headers saying why and where from.
//!
//! Regenerate the golden files after an intended change with
//! `HOOKRELAY_UPDATE_GOLDEN=1 cargo test --release --test it contract::` and review the diff:
//! every change there is a change customers see.

use std::path::PathBuf;
use std::time::Duration;

use hookrelay::event::{
    EventType, HEADER_INVALID_DETAIL, HEADER_INVALID_REASON, HEADER_ORIGIN_OFFSET,
    HEADER_ORIGIN_PARTITION, HEADER_ORIGIN_TOPIC, LicenseEvent, batch_body, customer_body,
    encode_avro, encode_confluent, encode_json, sample,
};
use hookrelay::ids::{AccountId, EventId};
use rdkafka::Message;
use rdkafka::message::Headers;

use crate::common;
use crate::harness::{RunningApp, create_topics, endpoint, publish_endpoints, secret, test_config};
use crate::receiver::{Behavior, Receiver};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file (which holds the body plus a final newline), or
/// rewrites the file when HOOKRELAY_UPDATE_GOLDEN is set.
fn check_golden(file: &str, actual: &[u8]) {
    let path = golden_dir().join(file);
    let mut expected_file = actual.to_vec();
    expected_file.push(b'\n');
    if std::env::var_os("HOOKRELAY_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("golden dir");
        std::fs::write(&path, &expected_file).expect("write golden");
        return;
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set HOOKRELAY_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        golden == expected_file,
        "{file} changed: customers would see a different body.\nexpected: {}\nactual:   {}",
        String::from_utf8_lossy(&golden).trim_end(),
        String::from_utf8_lossy(actual)
    );
}

fn event(t: EventType) -> LicenseEvent {
    sample(
        EventId::from("evt_a1b2c3d4e5f6"),
        t,
        AccountId::from("acc_7Hq2"),
    )
}

#[test]
fn every_event_type_renders_its_golden_body() {
    for t in EventType::ALL {
        let body = customer_body(&event(t));
        check_golden(&format!("{}.json", t.as_str()), &body);
        // Every golden body is JSON with the consistent top-level shape.
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4, "{t}: {keys:?}");
        assert_eq!(v["type"], t.as_str());
        assert!(
            !String::from_utf8_lossy(&body).contains("8F3A-22C1-9B7E"),
            "{t}: key leaked"
        );
    }
}

#[test]
fn a_batch_renders_its_golden_body() {
    let a = customer_body(&event(EventType::DomainAdded));
    let b = customer_body(&event(EventType::LicenseActivated));
    let created = time::macros::datetime!(2026-03-15 14:30:02.5 UTC);
    let batch = batch_body("bat_5f0c1e2d3a4b", created, &[&a, &b]);
    check_golden("batch.json", &batch);
    let v: serde_json::Value = serde_json::from_slice(&batch).expect("JSON");
    let events = v["data"]["events"].as_array().expect("events");
    assert_eq!(
        events[0],
        serde_json::from_slice::<serde_json::Value>(&a).expect("a")
    );
    assert_eq!(
        events[1],
        serde_json::from_slice::<serde_json::Value>(&b).expect("b")
    );
}

#[test]
fn there_is_a_golden_file_for_each_type_and_no_stale_ones() {
    let mut files: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = EventType::ALL
        .iter()
        .map(|t| format!("{}.json", t.as_str()))
        .chain(["batch.json".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(files, expected);
}

fn header(msg: &rdkafka::message::OwnedMessage, name: &str) -> Option<String> {
    let headers = msg.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Licensing systems produce Avro single-object (current and older schema versions),
/// Confluent-framed Avro and hand-written JSON to the same topic; each arrives at the
/// receiver as exactly the body [`customer_body`] renders, and each undecodable record is
/// copied to the invalid-records topic byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_encoding_reaches_customers_and_bad_records_are_set_aside() {
    let (config, _dir) = test_config(
        &[1],
        &[(
            "HOOKRELAY__CODEC__CONFLUENT_SCHEMA_IDS",
            r#"{41="license_event.v1",42="license_event.v2"}"#,
        )],
    );
    create_topics(&config).await;
    let receiver = Receiver::start().await;
    let url = receiver.endpoint("contract", Behavior::Healthy);
    let account = "acc_contract";
    publish_endpoints(
        &config,
        &[endpoint("ep_contract", account, &url, &[], &secret())],
    )
    .await;
    let app = RunningApp::start(config.clone()).await;

    let ev = |n: u32, t: EventType| {
        sample(
            EventId::new(format!("evt_contract{n}")),
            t,
            AccountId::from(account),
        )
    };
    let single = ev(1, EventType::LicenseActivated);
    let confluent = ev(2, EventType::PaymentFailed);
    let json = ev(3, EventType::LicenseUpgraded);
    // A producer still on schema v1: no reason/amount fields at all.
    let mut old = ev(4, EventType::LicenseRevoked);
    old.data.reason = None;
    old.data.amount = None;
    let old_bytes = hookrelay::event::encode_avro_v1(&old).expect("v1 encodes");
    let valid: Vec<(LicenseEvent, Vec<u8>)> = vec![
        (single.clone(), encode_avro(&single).expect("avro")),
        (
            confluent.clone(),
            encode_confluent(&confluent, 42).expect("confluent"),
        ),
        (json.clone(), encode_json(&json)),
        (old.clone(), old_bytes),
    ];
    let mut activation_without_domain = ev(5, EventType::LicenseActivated);
    activation_without_domain.data.domain = None;
    let invalid: Vec<(&str, Vec<u8>)> = vec![
        ("unknown_encoding", b"not an event".to_vec()),
        (
            "json_malformed",
            br#"{"id":"evt_x","type":"license.created""#.to_vec(),
        ),
        (
            "missing_field",
            encode_avro(&activation_without_domain).expect("avro"),
        ),
        // Confluent id 99 is not in codec.confluent_schema_ids.
        (
            "unknown_schema",
            encode_confluent(&single, 99).expect("confluent"),
        ),
        ("avro_truncated", {
            let whole = encode_avro(&single).expect("avro");
            whole[..whole.len() / 2].to_vec()
        }),
        // Random bytes (the first one fixed so the detected encoding is certain).
        ("unknown_encoding", {
            let mut bytes: Vec<u8> = (0..64).map(|_| rand::random::<u8>()).collect();
            bytes[0] = 0x9a;
            bytes
        }),
        (
            "unknown_type",
            String::from_utf8(encode_json(&single))
                .expect("utf8")
                .replace("license.activated", "license.teleported")
                .into_bytes(),
        ),
        ("missing_field", {
            let mut v: serde_json::Value =
                serde_json::from_slice(&encode_json(&single)).expect("json");
            v.as_object_mut().expect("object").remove("account_id");
            serde_json::to_vec(&v).expect("json")
        }),
    ];

    let producer = common::producer();
    for (_, bytes) in &valid {
        common::produce(
            &producer,
            &config.topics.events,
            Some(account.as_bytes()),
            Some(bytes),
        )
        .await;
    }
    for (_, bytes) in &invalid {
        common::produce(
            &producer,
            &config.topics.events,
            Some(account.as_bytes()),
            Some(bytes),
        )
        .await;
    }

    receiver
        .wait_for(Duration::from_secs(60), "all valid events", |got| {
            let ids: Vec<String> = got.iter().flat_map(|r| r.event_ids()).collect();
            valid.iter().all(|(e, _)| ids.contains(&e.id.to_string()))
        })
        .await;
    let bodies: Vec<Vec<u8>> = receiver
        .received()
        .into_iter()
        .map(|r| r.body.to_vec())
        .collect();
    for (e, _) in &valid {
        let expected = customer_body(e);
        assert!(
            bodies
                .iter()
                .any(|b| b.windows(expected.len()).any(|w| w == expected.as_slice())),
            "{} was not delivered as customer_body renders it",
            e.id
        );
        assert!(
            bodies
                .iter()
                .all(|b| !String::from_utf8_lossy(b).contains(&e.data.license_key)),
            "an unmasked license key reached a receiver"
        );
    }

    let mut set_aside = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while set_aside.len() < invalid.len() && std::time::Instant::now() < deadline {
        set_aside = common::read_all(&config.topics.invalid);
    }
    assert_eq!(
        set_aside.len(),
        invalid.len(),
        "one copy per invalid record"
    );
    for (reason, bytes) in &invalid {
        let copy = set_aside
            .iter()
            .find(|m| m.payload() == Some(bytes.as_slice()))
            .unwrap_or_else(|| panic!("the {reason} record was not copied byte for byte"));
        assert_eq!(
            header(copy, HEADER_INVALID_REASON).as_deref(),
            Some(*reason)
        );
        assert!(header(copy, HEADER_INVALID_DETAIL).is_some_and(|d| !d.is_empty()));
        assert_eq!(
            header(copy, HEADER_ORIGIN_TOPIC).as_deref(),
            Some(config.topics.events.as_str())
        );
        assert!(header(copy, HEADER_ORIGIN_PARTITION).is_some_and(|p| p.parse::<i32>().is_ok()));
        assert!(header(copy, HEADER_ORIGIN_OFFSET).is_some_and(|o| o.parse::<i64>().is_ok()));
        assert_eq!(copy.key(), Some(account.as_bytes()), "the key is kept");
    }
    assert_eq!(
        app.metric("hookrelay_events_invalid_total", ""),
        invalid.len() as f64,
        "every refusal is counted"
    );
    let (committed, end) = crate::delivery::wait_committed(
        &config.kafka.group_id,
        &config.topics.events,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        committed, end,
        "the committed offset passes every record, bad ones included"
    );
    app.stop().await.expect("clean stop");
}
