//! Decoding input records into [`LicenseEvent`]s, whatever their encoding, and the encoders
//! producers, tests and the demo use.
//!
//! The encoding is detected per record from its first bytes:
//!
//! | first bytes | encoding | writer schema found by |
//! |---|---|---|
//! | `C3 01` | Avro single-object | the 8-byte Rabin fingerprint after the marker |
//! | `00` + 4 bytes | Avro, Confluent wire format | the big-endian schema id, via [`CodecConfig`] |
//! | `{` (after optional whitespace) | JSON of the same shape | — |
//!
//! None of these can be mistaken for another: an Avro datum never starts a record in this
//! scheme, and JSON never starts with `00` or `C3`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::records::avro::{AvroError, VersionedSchema};

use super::invalid::InvalidRecord;
use super::model::LicenseEvent;
use super::registry::{RegistryEntry, RegistrySchemas, SchemaRegistryConfig};
use super::wire::{AvroEvent, JsonEvent, SCHEMA};

/// The Confluent wire format's magic byte.
const CONFLUENT_MAGIC: u8 = 0;
const CONFLUENT_HEADER_LEN: usize = 5;

/// How input records are decoded (`[codec]` in the configuration).
#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct CodecConfig {
    /// Confluent-framed records (magic byte 0 + 4-byte schema id) name their writer schema
    /// by a registry id; this maps ids producers use to a shipped schema version, e.g.
    /// `{ 7 = "license_event.v1" }`, with no registry asked. The schema registered under
    /// that id must be that version's schema (same canonical form): the datum is read with
    /// it, unchecked. Ids not mapped here are asked of `schema_registry`, if set.
    #[serde(
        default,
        serialize_with = "ids_as_strings",
        deserialize_with = "ids_from_strings_or_numbers"
    )]
    pub confluent_schema_ids: BTreeMap<u32, String>,
    /// A Confluent-compatible schema registry for the ids `confluent_schema_ids` does not
    /// map (see [`super::registry`]).
    #[serde(default)]
    pub schema_registry: SchemaRegistryConfig,
}

/// Configuration file formats and environment variables carry map keys as text.
fn ids_as_strings<S: Serializer>(map: &BTreeMap<u32, String>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, v)| (k.to_string(), v)))
}

fn ids_from_strings_or_numbers<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<u32, String>, D::Error> {
    struct Key(u32);
    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a schema id (an unsigned 32-bit number)")
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                    u32::try_from(v)
                        .map(Key)
                        .map_err(|_| E::custom("schema id larger than 4294967295"))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                    u32::try_from(v)
                        .map(Key)
                        .map_err(|_| E::custom("schema id must be 0..=4294967295"))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                    v.trim()
                        .parse()
                        .map(Key)
                        .map_err(|_| E::custom(format!("schema id {v:?} is not a number")))
                }
            }
            d.deserialize_any(V)
        }
    }
    struct M;
    impl<'de> Visitor<'de> for M {
        type Value = BTreeMap<u32, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of schema id = \"license_event.vN\"")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((Key(k), v)) = m.next_entry::<Key, String>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(M)
}

/// Why a decoder could not be built or an event not encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// `codec.confluent_schema_ids` names a schema this build does not ship.
    #[error(
        "codec.confluent_schema_ids: schema id {id} maps to {name:?}, which is not a known schema (known: {known})"
    )]
    UnknownSchemaName {
        id: u32,
        name: String,
        known: String,
    },
    /// The embedded schemas failed to load, or the event does not fit the schema.
    #[error(transparent)]
    Avro(#[from] AvroError),
    /// A count above the Avro `int` range (2^31 - 1).
    #[error("{0} is too large for the Avro int it is written as")]
    CountTooLarge(&'static str),
}

/// Turns input record values into validated events. Build once, share freely (it is cheap
/// to clone and `Sync`).
#[derive(Clone, Debug)]
pub struct EventDecoder {
    schema: &'static VersionedSchema,
    /// Confluent schema id → license_event schema version.
    confluent: HashMap<u32, u32>,
    /// Writer schemas fetched from `codec.schema_registry`, when one is configured.
    registry: Option<Arc<RegistrySchemas>>,
}

impl EventDecoder {
    /// Checks every Confluent id mapping against the shipped schemas.
    pub fn new(config: &CodecConfig) -> Result<Self, CodecError> {
        let schema = SCHEMA.get()?;
        let known = || {
            schema
                .versions()
                .map(|(v, _, _)| format!("{}.v{v}", schema.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut confluent = HashMap::with_capacity(config.confluent_schema_ids.len());
        for (&id, name) in &config.confluent_schema_ids {
            let version = name
                .strip_prefix(schema.name())
                .and_then(|rest| rest.strip_prefix(".v"))
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|v| schema.fingerprint(*v).is_some())
                .ok_or_else(|| CodecError::UnknownSchemaName {
                    id,
                    name: name.clone(),
                    known: known(),
                })?;
            confluent.insert(id, version);
        }
        let registry = config
            .schema_registry
            .enabled()
            .then(|| Arc::new(RegistrySchemas::default()));
        Ok(Self {
            schema,
            confluent,
            registry,
        })
    }

    /// The cache of registry answers this decoder reads, which the consumer fills; `None`
    /// without `codec.schema_registry.url`.
    pub fn registry_schemas(&self) -> Option<&Arc<RegistrySchemas>> {
        self.registry.as_ref()
    }

    /// The schema records are resolved into, for interpreting registry answers.
    pub fn reader_schema(&self) -> &apache_avro::Schema {
        self.schema.current()
    }

    /// Decodes and validates one record value (see the module docs for the encodings).
    pub fn decode(&self, bytes: &[u8]) -> Result<LicenseEvent, InvalidRecord> {
        let Some(&first) = bytes.first() else {
            return Err(InvalidRecord::Empty);
        };
        if bytes.starts_with(&crate::records::avro::SINGLE_OBJECT_MAGIC) {
            let wire: AvroEvent<'static> =
                self.schema.decode(bytes).map_err(InvalidRecord::Avro)?;
            return wire.into_event();
        }
        if first == CONFLUENT_MAGIC {
            let Some((header, datum)) = bytes.split_first_chunk::<CONFLUENT_HEADER_LEN>() else {
                return Err(InvalidRecord::ConfluentHeader);
            };
            let schema_id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            let wire: AvroEvent<'static> = if let Some(&version) = self.confluent.get(&schema_id) {
                self.schema.decode_datum(version, datum)
            } else if let Some(registry) = &self.registry {
                match registry.get(schema_id) {
                    Some(RegistryEntry::Usable(writer)) => {
                        self.schema.decode_with_writer(schema_id, &writer, datum)
                    }
                    Some(RegistryEntry::Unusable(why)) => {
                        return Err(InvalidRecord::Registry(why));
                    }
                    None => return Err(InvalidRecord::SchemaPending { schema_id }),
                }
            } else {
                return Err(InvalidRecord::UnmappedSchemaId { schema_id });
            }
            .map_err(InvalidRecord::Avro)?;
            return wire.into_event();
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {
                let wire: JsonEvent<'_> =
                    serde_json::from_slice(bytes).map_err(InvalidRecord::json)?;
                wire.into_event()
            }
            Some(_) => Err(InvalidRecord::UnknownEncoding { first }),
            None => Err(InvalidRecord::Empty),
        }
    }
}

/// Avro single-object encoding with the current schema: what the licensing system
/// produces.
pub fn encode_avro(event: &LicenseEvent) -> Result<Vec<u8>, CodecError> {
    let wire = AvroEvent::from_event(event).map_err(|e| CodecError::CountTooLarge(e.0))?;
    Ok(SCHEMA.get()?.encode(&wire)?)
}

/// The Confluent wire format (magic 0, big-endian `schema_id`, datum) with the current
/// schema; the decoder must map `schema_id` to the current version.
pub fn encode_confluent(event: &LicenseEvent, schema_id: u32) -> Result<Vec<u8>, CodecError> {
    let wire = AvroEvent::from_event(event).map_err(|e| CodecError::CountTooLarge(e.0))?;
    let datum = SCHEMA.get()?.encode_datum(&wire)?;
    let mut out = Vec::with_capacity(CONFLUENT_HEADER_LEN + datum.len());
    out.push(CONFLUENT_MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(&datum);
    Ok(out)
}

/// The JSON record of the same shape (RFC 3339 timestamps, absent optionals omitted): what a
/// person produces by hand.
pub fn encode_json(event: &LicenseEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(384);
    super::body::write_json(&mut out, &JsonEvent::from_event(event));
    out
}

/// Avro single-object encoding with schema v1 (`license_event.v1.avsc`): what a producer
/// not yet upgraded writes. Fields v1 lacks (`reason`, `amount`) are left out. For
/// compatibility tests, benches and tools that must speak to v1 readers.
pub fn encode_avro_v1(event: &LicenseEvent) -> Result<Vec<u8>, CodecError> {
    #[derive(serde::Serialize)]
    #[serde(rename = "LicenseData", rename_all = "camelCase")]
    struct DataV1<'a> {
        license_key: &'a str,
        plan: &'a str,
        domain: Option<&'a str>,
        activations_used: i32,
        activation_limit: i32,
        expires_at: Option<i64>,
        features: &'a [String],
        previous_plan: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    #[serde(rename = "LicenseEvent")]
    struct EventV1<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        created: i64,
        account_id: &'a str,
        data: DataV1<'a>,
    }
    let count = |n: u32, field| i32::try_from(n).map_err(|_| CodecError::CountTooLarge(field));
    let d = &event.data;
    let v1 = EventV1 {
        id: event.id.as_str(),
        event_type: event.event_type.as_str(),
        created: super::wire::to_millis(event.created),
        account_id: event.account_id.as_str(),
        data: DataV1 {
            license_key: &d.license_key,
            plan: &d.plan,
            domain: d.domain.as_deref(),
            activations_used: count(d.activations_used, "activationsUsed")?,
            activation_limit: count(d.activation_limit, "activationLimit")?,
            expires_at: d.expires_at.map(super::wire::to_millis),
            features: &d.features,
            previous_plan: d.previous_plan.as_deref(),
        },
    };
    Ok(SCHEMA.get()?.encode_version(1, &v1)?)
}

/// The name and current version of the license event schema, e.g. for the demo's
/// Confluent mapping (`license_event.v2`).
pub fn current_schema_name() -> Result<String, CodecError> {
    let s = SCHEMA.get()?;
    Ok(format!("{}.v{}", s.name(), s.current_version()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use time::OffsetDateTime;

    use super::*;
    use crate::event::model::{Amount, EventData, EventType, sample};
    use crate::ids::{AccountId, EventId};

    fn decoder() -> EventDecoder {
        EventDecoder::new(&CodecConfig {
            confluent_schema_ids: BTreeMap::from([
                (7, "license_event.v2".to_owned()),
                (3, "license_event.v1".to_owned()),
            ]),
            ..CodecConfig::default()
        })
        .unwrap()
    }

    fn event(t: EventType) -> LicenseEvent {
        sample(
            EventId::from("evt_a1b2c3d4e5f6"),
            t,
            AccountId::from("acc_42"),
        )
    }

    #[test]
    fn all_three_encodings_decode_to_the_same_event() {
        let d = decoder();
        for t in EventType::ALL {
            let e = event(t);
            assert_eq!(d.decode(&encode_avro(&e).unwrap()).unwrap(), e, "avro {t}");
            assert_eq!(
                d.decode(&encode_confluent(&e, 7).unwrap()).unwrap(),
                e,
                "confluent {t}"
            );
            assert_eq!(d.decode(&encode_json(&e)).unwrap(), e, "json {t}");
        }
    }

    #[test]
    fn hand_written_json_is_accepted() {
        let json = br#"
          {"id":"evt_hand1","type":"license.activated","created":"2026-03-15T16:30:00.250+02:00",
           "account_id":"acc_1",
           "data":{"licenseKey":"TO-1111-2222-3333-4444","plan":"starter","domain":"a.example",
                   "activationsUsed":1,"activationLimit":3,"expiresAt":1805068800000}}
        "#;
        let e = decoder().decode(json).unwrap();
        assert_eq!(e.event_type, EventType::LicenseActivated);
        assert_eq!(
            e.created,
            time::macros::datetime!(2026-03-15 14:30:00.25 UTC)
        );
        assert_eq!(
            e.data.expires_at,
            Some(time::macros::datetime!(2027-03-15 00:00:00 UTC))
        );
        assert!(e.data.features.is_empty());
        assert_eq!(e.data.amount, None);
    }

    #[test]
    fn v1_records_decode_with_v2_defaults() {
        // A v1 producer: single-object with the v1 fingerprint, and Confluent id 3 → v1.
        let mut old = event(EventType::LicenseUpgraded);
        old.created = time::macros::datetime!(2026-03-15 14:30:00 UTC);
        old.data.reason = None;
        old.data.amount = None;
        let bytes = encode_avro_v1(&old).unwrap();
        assert_eq!(
            &bytes[2..10],
            &SCHEMA.get().unwrap().fingerprint(1).unwrap().0
        );
        let d = decoder();
        let e = d.decode(&bytes).unwrap();
        assert_eq!(e.data.previous_plan.as_deref(), Some("professional"));
        assert_eq!((e.data.reason.clone(), e.data.amount.clone()), (None, None));
        assert_eq!(e, old);

        let mut confluent = vec![0, 0, 0, 0, 3];
        confluent.extend_from_slice(&bytes[10..]);
        assert_eq!(d.decode(&confluent).unwrap(), e);
    }

    #[test]
    fn fingerprints_are_the_ones_java_and_python_producers_write() {
        // Printed by Apache Avro for Java 1.12 (SchemaNormalization.parsingFingerprint64, see
        // fuzz/producers/java) and equal to fastavro's; single-object headers carry them
        // little-endian. fuzz/corpus/event_record/ok-java-* and ok-fastavro-* are such records.
        let s = SCHEMA.get().unwrap();
        assert_eq!(
            s.fingerprint(1).unwrap().0,
            0x1f38_27e5_d118_0cd0u64.to_le_bytes()
        );
        assert_eq!(
            s.fingerprint(2).unwrap().0,
            0x93a7_5284_9c61_bf91u64.to_le_bytes()
        );
        let e = event(EventType::LicenseRenewed);
        assert_eq!(encode_avro(&e).unwrap()[2..10], s.fingerprint(2).unwrap().0);
    }

    #[test]
    fn refusals_carry_stable_reasons() {
        let d = decoder();
        let reason = |bytes: &[u8]| d.decode(bytes).unwrap_err().reason();
        assert_eq!(reason(b""), "empty");
        assert_eq!(reason(b"  \n"), "empty");
        assert_eq!(reason(b"hello"), "unknown_encoding");
        assert_eq!(reason(b"[1,2]"), "unknown_encoding");
        assert_eq!(reason(b"{\"id\":"), "json_malformed");
        // Parses, but lacks the fields every event has.
        assert_eq!(reason(b"{\"id\":\"evt_1\"}"), "missing_field");
        assert_eq!(reason(&[0, 0, 0]), "avro_truncated");
        assert_eq!(reason(&[0, 0, 0, 0, 99, 1, 2]), "unknown_schema");

        let avro = encode_avro(&event(EventType::LicenseCreated)).unwrap();
        let mut other = avro.clone();
        other[3] ^= 1;
        assert_eq!(reason(&other), "unknown_schema");
        assert_eq!(reason(&avro[..avro.len() - 2]), "avro_truncated");
        assert_eq!(reason(&avro[..4]), "avro_truncated");

        let mut e = event(EventType::LicenseActivated);
        e.data.domain = None;
        assert_eq!(reason(&encode_avro(&e).unwrap()), "missing_field");
        assert_eq!(reason(&encode_json(&e)), "missing_field");
        let mut e = event(EventType::LicenseCreated);
        e.id = EventId::from("1234");
        assert_eq!(reason(&encode_avro(&e).unwrap()), "bad_id");

        let json = String::from_utf8(encode_json(&event(EventType::LicenseActivated))).unwrap();
        assert!(json.contains("\"activationsUsed\":3"), "{json}");
        let unknown = json.replace("license.activated", "license.exploded");
        assert_eq!(reason(unknown.as_bytes()), "unknown_type");
        let negative = json.replace("\"activationsUsed\":3", "\"activationsUsed\":-3");
        assert_eq!(reason(negative.as_bytes()), "bad_field");
        let half_amount = json.replace("\"plan\"", "\"amount\":5,\"plan\"");
        assert_eq!(reason(half_amount.as_bytes()), "bad_field");
    }

    #[test]
    fn refusal_messages_never_contain_the_license_key() {
        let d = decoder();
        let mut e = event(EventType::LicenseActivated);
        e.data.license_key = "SECRETKEY-0000-1111".into();
        e.data.domain = None;
        let mut broken_json = String::from_utf8(encode_json(&e)).unwrap().replace(
            "\"activationLimit\":10",
            "\"activationLimit\":\"SECRETKEY-0000-1111\"",
        );
        for bytes in [encode_avro(&e).unwrap(), encode_json(&e), {
            broken_json.push(' ');
            broken_json.clone().into_bytes()
        }] {
            let err = d.decode(&bytes).unwrap_err();
            assert!(!err.to_string().contains("SECRETKEY"), "{err}");
        }
    }

    #[test]
    fn unknown_confluent_mappings_fail_the_decoder() {
        for name in [
            "license_event.v9",
            "endpoint.v1",
            "license_event",
            "license_event.vx",
        ] {
            let err = EventDecoder::new(&CodecConfig {
                confluent_schema_ids: BTreeMap::from([(1, name.to_owned())]),
                ..CodecConfig::default()
            })
            .unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(name) && msg.contains("license_event.v1"),
                "{msg}"
            );
        }
        assert!(EventDecoder::new(&CodecConfig::default()).is_ok());
    }

    #[test]
    fn config_accepts_schema_ids_as_table_keys() {
        let c: CodecConfig =
            toml::from_str("confluent_schema_ids = { 7 = \"license_event.v1\" }").unwrap();
        assert_eq!(
            c.confluent_schema_ids.get(&7).map(String::as_str),
            Some("license_event.v1")
        );
        let c: CodecConfig = figment::Figment::from(figment::providers::Serialized::defaults(&c))
            .extract()
            .unwrap();
        assert_eq!(c.confluent_schema_ids.len(), 1);
        assert!(toml::from_str::<CodecConfig>("confluent_schema_ids = { x = \"a\" }").is_err());
        assert!(toml::from_str::<CodecConfig>("other = 1").is_err());
        assert!(toml::to_string(&c).unwrap().contains("license_event.v1"));
    }

    fn text() -> impl Strategy<Value = String> {
        // Quotes, backslashes, control characters and non-ASCII exercise both encoders.
        proptest::string::string_regex("[a-zA-Z0-9 _.\\-\"\\\\\u{1}\u{e9}\u{1F600}]{1,24}").unwrap()
    }

    fn instant() -> impl Strategy<Value = OffsetDateTime> {
        // Years 0000..=9999, millisecond precision (what every encoding carries).
        (-62_167_219_200_000i64..=253_402_300_799_999i64).prop_map(|ms| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
        })
    }

    prop_compose! {
        fn valid_event()(
            t in proptest::sample::select(EventType::ALL.to_vec()),
            id in "[a-zA-Z0-9]{1,20}",
            account in text(),
            key in text(),
            plan in text(),
            domain in text(),
            used in 0u32..=i32::MAX as u32,
            limit in 0u32..=i32::MAX as u32,
            created in instant(),
            expires in proptest::option::of(instant()),
            features in proptest::collection::vec(text(), 0..4),
            previous in proptest::option::of(text()),
            reason in proptest::option::of(text()),
            amount in proptest::option::of((any::<i64>(), "[A-Z]{3}")),
            with_domain in any::<bool>(),
        ) -> LicenseEvent {
            let needs = t.required_fields();
            LicenseEvent {
                id: EventId::new(format!("evt_{id}")),
                event_type: t,
                created,
                account_id: AccountId::new(format!("a{account}")),
                data: EventData {
                    license_key: format!("k{key}"),
                    plan: format!("p{plan}"),
                    domain: (with_domain || needs.contains(&"domain")).then(|| format!("d{domain}")),
                    activations_used: used,
                    activation_limit: limit,
                    expires_at: if needs.contains(&"expiresAt") { Some(expires.unwrap_or(created)) } else { expires },
                    features,
                    previous_plan: if needs.contains(&"previousPlan") { Some(format!("q{}", previous.unwrap_or_default())) } else { previous },
                    reason,
                    amount: amount.map(|(minor_units, currency)| Amount { minor_units, currency }),
                },
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn valid_events_round_trip_through_every_encoding(e in valid_event()) {
            prop_assert_eq!(e.validate(), Ok(()));
            let d = decoder();
            prop_assert_eq!(&d.decode(&encode_avro(&e).unwrap()).unwrap(), &e);
            prop_assert_eq!(&d.decode(&encode_confluent(&e, 7).unwrap()).unwrap(), &e);
            prop_assert_eq!(&d.decode(&encode_json(&e)).unwrap(), &e);
        }

        #[test]
        fn the_full_license_key_never_reaches_the_body(
            e in valid_event(),
            key in "[A-Z0-9]{2,6}(-[A-Z0-9]{2,10}){0,5}",
        ) {
            let mut e = e;
            e.data.license_key = format!("LK{key}");
            // The other fields must not contain the key by chance.
            let mut without_key = e.clone();
            without_key.data.license_key = "x".into();
            let other = String::from_utf8(crate::event::customer_body(&without_key)).unwrap();
            prop_assume!(!other.contains(&e.data.license_key));
            let body = String::from_utf8(crate::event::customer_body(&e)).unwrap();
            prop_assert!(!body.contains(&e.data.license_key), "{}", body);
        }

        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decoder().decode(&bytes);
        }

        #[test]
        fn corrupted_avro_never_panics(e in valid_event(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), prefix in 0usize..10) {
            // Random bytes rarely get past the header; corrupt real records instead.
            let d = decoder();
            for mut bytes in [encode_avro(&e).unwrap(), encode_confluent(&e, 7).unwrap(), encode_json(&e)] {
                for (i, b) in &flips {
                    let at = prefix.max(i.index(bytes.len())).min(bytes.len() - 1);
                    bytes[at] = *b;
                }
                let _ = d.decode(&bytes);
            }
        }
    }
}
