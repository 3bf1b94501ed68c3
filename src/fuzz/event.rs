//! The input decoder's properties ([`EventDecoder::decode`]), for any record bytes and for Avro
//! datums behind a valid header.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value as Json;

use crate::event::{
    CodecConfig, EventDecoder, InvalidRecord, LicenseEvent, batch_body, customer_body, encode_avro,
    encode_avro_v1, encode_confluent, encode_json, invalid_headers, mask_license_key,
};
use crate::records::avro::SINGLE_OBJECT_MAGIC;

use super::Verdict;

/// The decoder every check uses: Confluent schema id N is mapped to `license_event.vN` for
/// every version this build ships (ids 1 and 2 today), so any other id is an unknown one.
fn decoder() -> &'static EventDecoder {
    static DECODER: OnceLock<EventDecoder> = OnceLock::new();
    DECODER.get_or_init(|| {
        let schema = crate::event::schema()
            .get()
            .expect("the shipped schemas load");
        let confluent_schema_ids: BTreeMap<u32, String> = schema
            .versions()
            .map(|(v, _, _)| (v, format!("{}.v{v}", schema.name())))
            .collect();
        EventDecoder::new(&CodecConfig {
            confluent_schema_ids,
            ..CodecConfig::default()
        })
        .expect("every shipped version maps")
    })
}

/// Target `event_record`: the bytes are one input record value, in any encoding.
///
/// An accepted event re-validates, survives every encoder and back unchanged (Avro, Confluent,
/// JSON, and Avro v1 when it has no v2-only field), and renders a customer body that is JSON
/// with the license key masked. A refusal has a listed reason and a message that does not
/// contain the record's license key.
pub fn event_record(data: &[u8]) -> Verdict {
    match decoder().decode(data) {
        Ok(event) => {
            check_event(&event);
            Verdict::Accepted
        }
        Err(invalid) => {
            check_refusal(data, &invalid);
            Verdict::rejected(invalid.reason())
        }
    }
}

/// Target `event_avro`: the first byte picks a framing and writer version (even: single-object
/// with the fingerprint of version `versions[(b / 2) % n]`; odd: Confluent with the schema id
/// mapped to that version), the rest is the Avro datum. Random bytes rarely form a valid
/// header; this lets the fuzzer spend its time in the datum decoder. Then as `event_record`.
pub fn event_avro(data: &[u8]) -> Verdict {
    let Some((&selector, datum)) = data.split_first() else {
        return event_record(data);
    };
    let schema = crate::event::schema()
        .get()
        .expect("the shipped schemas load");
    let versions: Vec<_> = schema.versions().map(|(v, _, fp)| (v, fp)).collect();
    let (version, fingerprint) = versions[usize::from(selector / 2) % versions.len()];
    let mut record = Vec::with_capacity(datum.len() + 10);
    if selector % 2 == 0 {
        record.extend_from_slice(&SINGLE_OBJECT_MAGIC);
        record.extend_from_slice(&fingerprint.0);
    } else {
        record.push(0);
        record.extend_from_slice(&version.to_be_bytes());
    }
    record.extend_from_slice(datum);
    event_record(&record)
}

fn check_event(event: &LicenseEvent) {
    assert_eq!(event.validate(), Ok(()), "a decoded event re-validates");
    let d = decoder();
    let again = |encoding: &str, bytes: Vec<u8>| match d.decode(&bytes) {
        Ok(back) => assert_eq!(&back, event, "{encoding} round trip changed the event"),
        Err(e) => panic!("{encoding} encoding of a decoded event does not decode: {e}"),
    };
    again(
        "Avro",
        encode_avro(event).expect("a valid event encodes as Avro"),
    );
    let current = crate::event::schema()
        .get()
        .expect("the shipped schemas load")
        .current_version();
    again(
        "Confluent",
        encode_confluent(event, current).expect("a valid event encodes as Confluent"),
    );
    again("JSON", encode_json(event));
    if event.data.reason.is_none() && event.data.amount.is_none() {
        again(
            "Avro v1",
            encode_avro_v1(event).expect("an event without v2 fields encodes as v1"),
        );
    }

    let key = &event.data.license_key;
    let masked = mask_license_key(key);
    let body = customer_body(event);
    let json: Json = serde_json::from_slice(&body).expect("the customer body is JSON");
    assert_eq!(json["id"].as_str(), Some(event.id.as_str()));
    assert_eq!(json["type"].as_str(), Some(event.event_type.as_str()));
    assert_eq!(json["data"]["licenseKey"].as_str(), Some(masked.as_str()));
    let batch = batch_body("bat_fuzz", event.created, &[&body, &body]);
    let batch: Json = serde_json::from_slice(&batch).expect("a batch body is JSON");
    assert_eq!(
        batch["data"]["events"][1], json,
        "a batch carries the body verbatim"
    );

    // The full key leaves in neither the body nor `Debug`, unless the masked form is the key
    // itself (4 characters or fewer) or another field happens to contain it.
    let mut without_key = event.clone();
    without_key.data.license_key = "-".into();
    let elsewhere = String::from_utf8_lossy(&customer_body(&without_key)).contains(key.as_str())
        || format!("{without_key:?}").contains(key.as_str());
    if !masked.contains(key.as_str()) && !elsewhere {
        assert!(
            !String::from_utf8_lossy(&body).contains(key.as_str()),
            "the customer body contains the full license key"
        );
        assert!(
            !format!("{event:?}").contains(key.as_str()),
            "Debug shows the full license key"
        );
    }
}

fn check_refusal(data: &[u8], invalid: &InvalidRecord) {
    let reason = invalid.reason();
    assert!(
        InvalidRecord::REASONS.contains(&reason),
        "reason {reason} is not in InvalidRecord::REASONS"
    );
    let message = invalid.to_string();
    let headers = invalid_headers(reason, &message, "t", 0, 0);
    for (name, value) in &headers {
        assert!(
            std::str::from_utf8(value).is_ok(),
            "header {name} is not UTF-8"
        );
    }
    let Some(key) = license_key_of(data) else {
        return;
    };
    if key.chars().count() <= 4 || !message.contains(&key) {
        return;
    }
    // The message contains the key's text: a leak, unless that text comes from elsewhere (the
    // message's own words, another field). Overwrite the key in place, same length so the
    // framing holds, and refuse again: a leak is what disappears with the key.
    let Some(at) = data.windows(key.len()).position(|w| w == key.as_bytes()) else {
        return;
    };
    let mut without = data.to_vec();
    without[at..at + key.len()].fill(b'#');
    let message_without = decoder()
        .decode(&without)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message_without.contains(&key),
        "the refusal message quotes the license key: {message}"
    );
}

/// The license key of a record that did not decode, when it can be read at all (JSON that
/// parses, or Avro that decodes generically) and it occurs once in the record, so a message
/// quoting another field (an id excerpt) that contains it is not mistaken for a leak.
/// Confluent-framed records are read through the equivalent single-object header.
fn license_key_of(data: &[u8]) -> Option<String> {
    let schema = crate::event::schema().get().ok()?;
    let record: Json = if data.starts_with(&SINGLE_OBJECT_MAGIC) {
        Json::try_from(schema.decode_value(data).ok()?).ok()?
    } else if let Some((&[0, a, b, c, d], datum)) = data.split_first_chunk::<5>() {
        let version = u32::from_be_bytes([a, b, c, d]);
        let mut single = SINGLE_OBJECT_MAGIC.to_vec();
        single.extend_from_slice(&schema.fingerprint(version)?.0);
        single.extend_from_slice(datum);
        Json::try_from(schema.decode_value(&single).ok()?).ok()?
    } else {
        serde_json::from_slice(data).ok()?
    };
    let key = record.get("data")?.get("licenseKey")?.as_str()?.to_owned();
    let text = record.to_string();
    (!key.is_empty() && text.matches(key.as_str()).count() == 1).then_some(key)
}
