//! The seed inputs hookrelay's own encoders write, and hand-made edge cases, per fuzz target;
//! [`replay::write_seeds`](super::replay) puts them in `fuzz/corpus/`. The shipped config
//! files, the golden bodies and the records other producers' libraries wrote are copied or
//! generated separately (see `fuzz/README.md`).

use std::num::NonZeroU32;

use url::Url;

use crate::event::{
    Amount, EventType, LicenseEvent, encode_avro, encode_avro_v1, encode_confluent, encode_json,
    sample,
};
use crate::ids::{AccountId, EndpointId, EventId, Secret};
use crate::records::avro::SINGLE_OBJECT_HEADER_LEN;
use crate::sign::{SigningKey, signature_header};
use crate::subscriptions::endpoint::endpoint_schema;
use crate::subscriptions::status::encode_status;
use crate::subscriptions::{Batching, Endpoint, EndpointSecret, EndpointStatus, encode_endpoint};

type Seed = (&'static str, String, Vec<u8>);

pub(super) fn all() -> Vec<Seed> {
    let mut seeds = events();
    seeds.extend(endpoints());
    seeds.extend(configs());
    seeds.extend(signatures());
    seeds
}

fn event(t: EventType) -> LicenseEvent {
    sample(
        EventId::from("evt_a1b2c3d4e5f6"),
        t,
        AccountId::from("acc_7Hq2"),
    )
}

/// Every optional field set, non-ASCII text, extreme but valid values.
fn full_event() -> LicenseEvent {
    let mut e = event(EventType::PaymentFailed);
    e.account_id = AccountId::from("acc_é\"\\\u{1F600}");
    e.data.domain = Some("xn--bcher-kva.example".into());
    e.data.previous_plan = Some("starter".into());
    e.data.activations_used = i32::MAX as u32;
    e.data.activation_limit = 0;
    e.data.expires_at = Some(time::macros::datetime!(0000-01-01 00:00:00 UTC));
    e.data.amount = Some(Amount {
        minor_units: i64::MIN,
        currency: "JPY".into(),
    });
    e.created = time::macros::datetime!(9999-12-31 23:59:59.999 UTC);
    e
}

fn events() -> Vec<Seed> {
    let mut out: Vec<Seed> = Vec::new();
    let mut push = |target, name: String, bytes: Vec<u8>| out.push((target, name, bytes));
    let schema = crate::event::schema().get().expect("schemas");
    let current = schema.current_version();
    for t in EventType::ALL {
        let e = event(t);
        push(
            "event_record",
            format!("ok-avro-{t}"),
            encode_avro(&e).expect("avro"),
        );
        push(
            "event_record",
            format!("ok-confluent-{t}"),
            encode_confluent(&e, current).expect("confluent"),
        );
        push("event_record", format!("ok-json-{t}"), encode_json(&e));
        if e.data.reason.is_none() && e.data.amount.is_none() {
            push(
                "event_record",
                format!("ok-avro_v1-{t}"),
                encode_avro_v1(&e).expect("v1"),
            );
        }
    }
    let full = full_event();
    let avro = encode_avro(&full).expect("avro");
    push("event_record", "ok-avro-all_fields".into(), avro.clone());
    push(
        "event_record",
        "ok-json-all_fields".into(),
        encode_json(&full),
    );
    let json = String::from_utf8(encode_json(&event(EventType::LicenseActivated))).expect("utf8");
    push(
        "event_record",
        "ok-json-hand_written".into(),
        br#"
  {"id":"evt_hand1","type":"license.activated","created":"2026-03-15T16:30:00.250+02:00",
   "account_id":"acc_1",
   "data":{"licenseKey":"TO-1111-2222-3333-4444","plan":"starter","domain":"a.example",
           "activationsUsed":1,"activationLimit":3,"expiresAt":1805068800000}}
"#
        .to_vec(),
    );

    // Refusals, one per reason, and the framing edges.
    push(
        "event_record",
        "rejected-empty-zero_bytes".into(),
        Vec::new(),
    );
    push(
        "event_record",
        "rejected-empty-whitespace".into(),
        b" \n\t".to_vec(),
    );
    push(
        "event_record",
        "rejected-unknown_encoding-text".into(),
        b"hello".to_vec(),
    );
    push(
        "event_record",
        "rejected-unknown_encoding-json_array".into(),
        b"[1,2]".to_vec(),
    );
    push(
        "event_record",
        "rejected-avro_truncated-confluent_header".into(),
        vec![0, 0, 0],
    );
    push(
        "event_record",
        "rejected-unknown_schema-confluent_id_99".into(),
        vec![0, 0, 0, 0, 99, 2, b'x'],
    );
    let mut wrong = avro.clone();
    wrong[3] ^= 1;
    push(
        "event_record",
        "rejected-unknown_schema-fingerprint".into(),
        wrong,
    );
    push(
        "event_record",
        "rejected-avro_truncated-magic_only".into(),
        avro[..4].to_vec(),
    );
    push(
        "event_record",
        "rejected-avro_truncated-cut".into(),
        avro[..avro.len() - 3].to_vec(),
    );
    let mut trailing = avro.clone();
    trailing.push(0);
    push(
        "event_record",
        "rejected-avro_malformed-trailing_byte".into(),
        trailing,
    );
    // Length prefixes far beyond the record: the id string claims 2^40 bytes, then 100 MB.
    for (name, len) in [("huge", 1u64 << 40), ("100mb", 100 << 20)] {
        let mut r = avro[..SINGLE_OBJECT_HEADER_LEN].to_vec();
        let mut zz = len << 1; // zigzag of a positive long
        while zz >= 0x80 {
            r.push((zz as u8) | 0x80);
            zz >>= 7;
        }
        r.push(zz as u8);
        r.extend_from_slice(b"evt_");
        let reason = if len > crate::records::avro::MAX_AVRO_ALLOCATION as u64 {
            "avro_malformed"
        } else {
            "avro_truncated"
        };
        push(
            "event_record",
            format!("rejected-{reason}-length_{name}"),
            r,
        );
    }
    push(
        "event_record",
        "rejected-json_malformed-unterminated".into(),
        json.as_bytes()[..json.len() / 2].to_vec(),
    );
    push(
        "event_record",
        "rejected-missing_field-no_account".into(),
        json.replace("\"account_id\":\"acc_7Hq2\",", "")
            .into_bytes(),
    );
    push(
        "event_record",
        "rejected-unknown_type-exploded".into(),
        json.replace("license.activated", "license.exploded")
            .into_bytes(),
    );
    push(
        "event_record",
        "rejected-bad_id-no_prefix".into(),
        json.replace("evt_a1b2c3d4e5f6", "1234").into_bytes(),
    );
    push(
        "event_record",
        "rejected-bad_field-negative_count".into(),
        json.replace("\"activationsUsed\":3", "\"activationsUsed\":-3")
            .into_bytes(),
    );
    let mut no_domain = event(EventType::LicenseActivated);
    no_domain.data.domain = None;
    push(
        "event_record",
        "rejected-missing_field-activated_without_domain".into(),
        encode_avro(&no_domain).expect("avro"),
    );

    // The same events as bare datums behind event_avro's selector byte.
    let versions: Vec<u32> = schema.versions().map(|(v, _, _)| v).collect();
    let index = |v: u32| versions.iter().position(|&n| n == v).expect("shipped") as u8;
    for t in [EventType::LicenseActivated, EventType::LicenseRenewed] {
        let datum = encode_avro(&event(t)).expect("avro")[SINGLE_OBJECT_HEADER_LEN..].to_vec();
        let mut single = vec![index(current) * 2];
        single.extend_from_slice(&datum);
        push("event_avro", format!("ok-single_object-{t}"), single);
        let mut confluent = vec![index(current) * 2 + 1];
        confluent.extend_from_slice(&datum);
        push("event_avro", format!("ok-confluent-{t}"), confluent);
    }
    let v1 = encode_avro_v1(&event(EventType::LicenseUpgraded)).expect("v1");
    let mut single = vec![index(1) * 2];
    single.extend_from_slice(&v1[SINGLE_OBJECT_HEADER_LEN..]);
    push(
        "event_avro",
        "ok-single_object_v1-license.upgraded".into(),
        single.clone(),
    );
    single[0] += 1;
    push(
        "event_avro",
        "ok-confluent_v1-license.upgraded".into(),
        single,
    );
    let mut all = vec![index(current) * 2];
    all.extend_from_slice(&avro[SINGLE_OBJECT_HEADER_LEN..]);
    push("event_avro", "ok-single_object-all_fields".into(), all);
    push(
        "event_avro",
        "rejected-avro_truncated-no_datum".into(),
        vec![index(current) * 2],
    );
    out
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A second secret, padded (25 key bytes).
const OTHER: &str = "whsec_bmV3LXNlY3JldC1ieXRlcy0xMjM0NTY3OA==";

fn endpoint() -> Endpoint {
    Endpoint::new(
        EndpointId::from("ep_1"),
        AccountId::from("acct_1"),
        Url::parse("https://example.com/hooks").expect("url"),
        Secret::new(SECRET),
    )
}

fn full_endpoint() -> Endpoint {
    let mut e = endpoint();
    e.description = Some("billing hooks ü".into());
    e.event_types = vec!["license.created".into(), "payment.failed".into()];
    e.secrets.insert(
        0,
        EndpointSecret {
            secret: Secret::new(OTHER),
            expires_at_ms: None,
        },
    );
    e.secrets[1].expires_at_ms = Some(1_700_000_000_000);
    e.enabled = false;
    e.disabled_reason = Some("10 consecutive failures".into());
    e.disabled_at_ms = Some(1_690_000_000_000);
    e.disabled_by = Some("inst_a".into());
    e.rate_limit_per_sec = NonZeroU32::new(50);
    e.max_concurrency = NonZeroU32::new(u32::MAX);
    e.batching = Batching {
        enabled: false,
        max_events: NonZeroU32::new(10),
        max_bytes: NonZeroU32::new(65536),
        linger_ms: Some(0),
    };
    e.version = i64::MAX;
    e.created_at_ms = Some(i64::MIN);
    e.updated_at_ms = Some(2);
    e.contact_email = Some("ops@example.com".into());
    e
}

fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let mut r = key.as_bytes().to_vec();
    r.push(0);
    r.extend_from_slice(value);
    r
}

fn endpoints() -> Vec<Seed> {
    let t = "endpoint_record";
    let minimal = endpoint();
    let full = full_endpoint();
    let json = serde_json::to_vec(&minimal).expect("json");
    let v1 = endpoint_schema()
        .expect("schema")
        .encode_projected(1, &minimal)
        .expect("v1");
    let status = EndpointStatus::initial(EndpointId::from("ep_1")).disabled_after(
        "consecutive_failures",
        1_700_000_000_000,
        "inst_a",
        Some(503),
        Some("HTTP 503".into()),
    );
    let mut bad_secret = minimal.clone();
    bad_secret.secrets[0].secret = Secret::new("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG0=");
    let json_bad_secret = serde_json::to_vec(&bad_secret).expect("json");
    vec![
        (t, "ok-avro-minimal".into(), record("ep_1", &encode_endpoint(&minimal).expect("avro"))),
        (t, "ok-avro-full_v3".into(), record("ep_1", &encode_endpoint(&full).expect("avro"))),
        (t, "ok-avro_v1-minimal".into(), record("ep_1", &v1)),
        (t, "ok-json-minimal".into(), record("ep_1", &json)),
        (t, "ok-json-full".into(), record("ep_1", &serde_json::to_vec(&full).expect("json"))),
        (
            t,
            "ok-json-hand_written".into(),
            record(
                "ep_1",
                br#"  {"id":"ep_1","account_id":"acct_1","url":"https://example.com/h",
            "secrets":[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}"#,
            ),
        ),
        (t, "ok-tombstone".into(), b"ep_1".to_vec()),
        (t, "ok-status_avro".into(), record("status:ep_1", &encode_status(&status).expect("avro"))),
        (
            t,
            "ok-status_json".into(),
            record("status:ep_1", br#"{"endpoint_id":"ep_1","epoch":4,"enabled":true,"at_ms":9}"#),
        ),
        (t, "ok-status_tombstone".into(), b"status:ep_1".to_vec()),
        (t, "rejected-missing_key-json".into(), record("", &json)),
        (t, "rejected-key_mismatch-json".into(), record("ep_2", &json)),
        (t, "rejected-invalid_key-event_id".into(), b"evt_1".to_vec()),
        (t, "rejected-invalid_key-status_of_nothing".into(), b"status:".to_vec()),
        (t, "rejected-secret_too_short-23_bytes".into(), record("ep_1", &json_bad_secret)),
        (
            t,
            "rejected-json-secret_as_string".into(),
            record(
                "ep_1",
                br#"{"id":"ep_1","account_id":"a","url":"https://e.com","secrets":"whsec_TOPSECRETVALUE"}"#,
            ),
        ),
        (t, "rejected-avro-garbage".into(), record("ep_1", &[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9])),
        (
            t,
            "rejected-status-negative_epoch".into(),
            record("status:ep_1", br#"{"endpoint_id":"ep_1","epoch":-1,"enabled":true,"at_ms":9}"#),
        ),
    ]
}

fn configs() -> Vec<Seed> {
    let t = "config_load";
    let with_env = |file: &str, env: &str| {
        let mut s = file.as_bytes().to_vec();
        s.push(0);
        s.extend_from_slice(env.as_bytes());
        s
    };
    vec![
        (t, "ok-empty".into(), Vec::new()),
        (t, "ok-defaults.toml".into(), crate::config::DEFAULTS.as_bytes().to_vec()),
        (t, "ok-local.toml".into(), include_bytes!("../../config/local.toml").to_vec()),
        (
            t,
            "ok-secured-cluster.toml".into(),
            with_env(
                include_str!("../../config/secured-cluster.toml"),
                "HOOKRELAY__KAFKA__PROPERTIES__SASL_PASSWORD=kafka-secret-1234\n\
                 HOOKRELAY__NOTIFY__SMTP__PASSWORD=smtp-secret-5678\n",
            ),
        ),
        (
            t,
            "ok-env_only".into(),
            with_env(
                "",
                "HOOKRELAY__DELIVERY__TIMEOUT=3s\nHOOKRELAY__DELIVERY__SSRF_ALLOWLIST=[\"10.0.0.0/8\"]\n\
                 HOOKRELAY__CODEC__CONFLUENT_SCHEMA_IDS__7=license_event.v1\nPATH=/usr/bin\n\
                 HOOKRELAY__KAFKA__PROPERTIES__SSL_KEY_PASSWORD=true\n",
            ),
        ),
        (
            t,
            "ok-codec.toml".into(),
            b"[codec]\nconfluent_schema_ids = { 7 = \"license_event.v2\", \"3\" = \"license_event.v1\" }\n".to_vec(),
        ),
        (t, "rejected-load-unknown_key.toml".into(), b"[delivery]\ntimeot = \"5s\"\n".to_vec()),
        (t, "rejected-load-not_toml".into(), b"[delivery\n".to_vec()),
        (t, "rejected-delivery.timeout-zero.toml".into(), b"[delivery]\ntimeout = \"0s\"\n".to_vec()),
        (
            t,
            "rejected-retry.tiers-shrinking.toml".into(),
            b"[retry]\ntiers = [{ topic = \"a\", delay = \"5m\" }, { topic = \"b\", delay = \"1m\" }]\n"
                .to_vec(),
        ),
        (
            t,
            "rejected-topics.events-bad_name".into(),
            with_env("", "HOOKRELAY__TOPICS__EVENTS=a/b"),
        ),
        (
            t,
            "rejected-notify.smtp.host-enabled_without_server.toml".into(),
            b"[notify]\nenabled = true\nfrom = \"a@b.example\"\n".to_vec(),
        ),
        (
            t,
            "rejected-codec.confluent_schema_ids-unknown_version.toml".into(),
            b"[codec]\nconfluent_schema_ids = { 7 = \"license_event.v9\" }\n".to_vec(),
        ),
    ]
}

/// The Standard Webhooks specification's test vector (its reference libraries test it).
const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const VECTOR_TS: &str = "1614265330";
const VECTOR_BODY: &str = r#"{"test": 2432232314}"#;
const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn signature_input(secret: &str, id: &str, ts: &str, sig: &str, now: &str, body: &[u8]) -> Vec<u8> {
    let mut s = format!("{secret}\n{id}\n{ts}\n{sig}\n{now}\n").into_bytes();
    s.extend_from_slice(body);
    s
}

fn signatures() -> Vec<Seed> {
    let t = "signature_verify";
    let vector = |sig: &str, now: &str, body: &str| {
        signature_input(SECRET, VECTOR_ID, VECTOR_TS, sig, now, body.as_bytes())
    };
    let key = SigningKey::from_secret(&Secret::new(SECRET)).expect("key");
    let other = SigningKey::from_secret(&Secret::new(OTHER)).expect("key");
    let body = crate::event::customer_body(&event(EventType::LicenseActivated));
    let ts = 1_700_000_000;
    let rotated = signature_header("msg_rot", ts, &body, &[other.clone(), key.clone()]);
    let padded = signature_header("msg_pad", ts, &body, std::slice::from_ref(&other));
    let own = signature_header("msg_own", ts, &body, &[key]);
    let now = ts.to_string();
    vec![
        (
            t,
            "ok-standard_webhooks_vector".into(),
            vector(VECTOR_SIG, VECTOR_TS, VECTOR_BODY),
        ),
        (
            t,
            "ok-vector_with_v2_and_garbage_entries".into(),
            vector(
                &format!("v2,abc v1,!!! {VECTOR_SIG}"),
                "1614265600",
                VECTOR_BODY,
            ),
        ),
        (
            t,
            "ok-rotation".into(),
            signature_input(SECRET, "msg_rot", &now, &rotated, &now, &body),
        ),
        (
            t,
            "ok-customer_body".into(),
            signature_input(SECRET, "msg_own", &now, &own, &now, &body),
        ),
        (
            t,
            "ok-unpadded_secret".into(),
            signature_input(
                OTHER.trim_end_matches('='),
                "msg_pad",
                &now,
                &padded,
                &now,
                &body,
            ),
        ),
        (
            t,
            "rejected-mismatch-tampered_body".into(),
            vector(VECTOR_SIG, VECTOR_TS, r#"{"test": 2432232315}"#),
        ),
        (
            t,
            "rejected-too_old-301s".into(),
            vector(VECTOR_SIG, "1614265631", VECTOR_BODY),
        ),
        (
            t,
            "rejected-too_new-301s".into(),
            vector(VECTOR_SIG, "1614265029", VECTOR_BODY),
        ),
        (
            t,
            "rejected-invalid_timestamp-plus_sign".into(),
            signature_input(
                SECRET,
                VECTOR_ID,
                "+1614265330",
                VECTOR_SIG,
                VECTOR_TS,
                VECTOR_BODY.as_bytes(),
            ),
        ),
        (
            t,
            "rejected-no_signature-v2_only".into(),
            vector(
                "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                VECTOR_TS,
                VECTOR_BODY,
            ),
        ),
        (
            t,
            "rejected-secret-no_prefix".into(),
            signature_input(
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                VECTOR_ID,
                VECTOR_TS,
                VECTOR_SIG,
                VECTOR_TS,
                VECTOR_BODY.as_bytes(),
            ),
        ),
        (
            t,
            "rejected-mismatch-other_secret".into(),
            signature_input(
                OTHER,
                VECTOR_ID,
                VECTOR_TS,
                VECTOR_SIG,
                VECTOR_TS,
                VECTOR_BODY.as_bytes(),
            ),
        ),
    ]
}
