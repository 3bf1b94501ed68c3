//! Schema evolution tests over every file in `schemas/`: data written with any released
//! version must read with the current one (backward-transitive compatibility).
//!
//! The tests discover versions from the directory (`<name>.v<N>.avsc`), so a new version is
//! covered the moment its file exists; a second test checks that each record type embeds
//! exactly the versions on disk, so a new file cannot be forgotten in `include_str!`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;

use super::avro::{EmbeddedSchema, SINGLE_OBJECT_MAGIC, VersionedSchema};

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// `name → [(version, json)]`, ascending, from the files in `schemas/`.
fn schemas_on_disk() -> BTreeMap<String, Vec<(u32, String)>> {
    let mut out: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = file.strip_suffix(".avsc") else {
            continue;
        };
        let (name, version) = stem
            .rsplit_once(".v")
            .unwrap_or_else(|| panic!("{file}: schema files are named <name>.v<N>.avsc"));
        let version: u32 = version
            .parse()
            .unwrap_or_else(|_| panic!("{file}: version is not a number"));
        let json = std::fs::read_to_string(&path).unwrap();
        out.entry(name.to_owned())
            .or_default()
            .push((version, json));
    }
    for versions in out.values_mut() {
        versions.sort_by_key(|(v, _)| *v);
    }
    out
}

/// A value of `schema`. `variant` 0 takes the first union branch (null, for optional
/// fields) and empty collections; 1 takes the last branch and two-element collections; other
/// variants vary the scalars.
fn sample(schema: &Schema, names: &HashMap<Name, &Schema>, variant: u32) -> Value {
    let n = i64::from(variant);
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(variant % 2 == 1),
        Schema::Int => Value::Int(7 + variant as i32),
        Schema::Long => Value::Long(1_773_585_000_000 + n),
        Schema::Float => Value::Float(1.5),
        Schema::Double => Value::Double(2.5),
        Schema::Bytes => Value::Bytes(vec![1, 2, variant as u8]),
        Schema::String => Value::String(format!("s{variant}")),
        Schema::Array(a) => Value::Array(if variant == 0 {
            vec![]
        } else {
            vec![
                sample(&a.items, names, variant),
                sample(&a.items, names, variant + 1),
            ]
        }),
        Schema::Map(m) => Value::Map(if variant == 0 {
            HashMap::new()
        } else {
            HashMap::from([("k".to_owned(), sample(&m.types, names, variant))])
        }),
        Schema::Union(u) => {
            let idx = if variant == 0 {
                0
            } else {
                u.variants().len() - 1
            };
            Value::Union(
                idx as u32,
                Box::new(sample(&u.variants()[idx], names, variant)),
            )
        }
        Schema::Record(r) => Value::Record(
            r.fields
                .iter()
                .map(|f| (f.name.clone(), sample(&f.schema, names, variant)))
                .collect(),
        ),
        Schema::Enum(e) => {
            let idx = variant as usize % e.symbols.len();
            Value::Enum(idx as u32, e.symbols[idx].clone())
        }
        Schema::Fixed(f) => Value::Fixed(f.size, vec![variant as u8; f.size]),
        Schema::Date => Value::Date(20_000),
        Schema::TimeMillis => Value::TimeMillis(1_000),
        Schema::TimeMicros => Value::TimeMicros(1_000),
        Schema::TimestampMillis => Value::TimestampMillis(1_773_585_000_000 + n),
        Schema::TimestampMicros => Value::TimestampMicros(1_773_585_000_000_000 + n),
        Schema::TimestampNanos => Value::TimestampNanos(1_773_585_000_000_000_000 + n),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(1_773_585_000_000 + n),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(1_773_585_000_000_000 + n),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(1_773_585_000_000_000_000 + n),
        Schema::Ref { name } => {
            let target = names
                .get(name)
                .unwrap_or_else(|| panic!("unresolved reference {name:?}"));
            sample(target, names, variant)
        }
        other => panic!("the evolution test cannot generate {other:?} yet; extend `sample`"),
    }
}

/// Single-object bytes of `value` written with `schema`.
fn write(schema: &Schema, value: Value) -> Vec<u8> {
    let fp = schema.fingerprint::<apache_avro::rabin::Rabin>();
    let mut out = SINGLE_OBJECT_MAGIC.to_vec();
    out.extend_from_slice(&fp.bytes);
    let datum = GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap();
    out.extend_from_slice(&datum);
    out
}

#[test]
fn every_released_version_reads_with_the_current_schema() {
    let on_disk = schemas_on_disk();
    assert!(
        on_disk.contains_key("license_event"),
        "{:?}",
        on_disk.keys()
    );
    for (name, versions) in on_disk {
        // VersionedSchema wants 'static text, as embedded schemas are; a test can leak.
        let name: &'static str = Box::leak(name.into_boxed_str());
        let sources: Vec<(u32, &'static str)> = versions
            .into_iter()
            .map(|(v, json)| (v, &*Box::leak(json.into_boxed_str())))
            .collect();
        let set = VersionedSchema::new(name, &sources)
            .unwrap_or_else(|e| panic!("{name}: {e} ({:?})", std::error::Error::source(&e)));
        for (version, schema, _) in set.versions() {
            let resolved = ResolvedSchema::new(schema).unwrap();
            for variant in 0..3 {
                let value = sample(schema, resolved.get_names(), variant);
                let bytes = write(schema, value);
                let read = set.decode_value(&bytes).unwrap_or_else(|e| {
                    panic!("{name} v{version} (variant {variant}) does not read: {e:?}")
                });
                assert!(
                    read.validate(set.current()),
                    "{name} v{version} resolved to a value the current schema rejects"
                );
            }
        }
    }
}

/// Every record type this crate reads, as embedded in the binary. (The endpoint schema is
/// covered by the directory-driven test above.)
fn embedded() -> Vec<&'static EmbeddedSchema> {
    vec![
        crate::event::schema(),
        super::DeliveryEnvelope::schema(),
        super::AttemptRecord::schema(),
        super::EndpointNotification::schema(),
        super::ApiKey::schema(),
    ]
}

#[test]
fn embedded_versions_match_the_files() {
    let on_disk = schemas_on_disk();
    for e in embedded() {
        let files = on_disk
            .get(e.name())
            .unwrap_or_else(|| panic!("no schemas/{}.vN.avsc", e.name()));
        let embedded: Vec<(u32, &str)> = e.sources().to_vec();
        let files: Vec<(u32, &str)> = files.iter().map(|(v, s)| (*v, s.as_str())).collect();
        assert_eq!(
            embedded,
            files,
            "{}: the include_str! list must name every schemas/{}.vN.avsc",
            e.name(),
            e.name()
        );
        e.get().unwrap();
    }
}

#[test]
fn old_typed_records_decode_into_the_current_rust_types() {
    // The generic test above proves resolution; this one proves the Rust types accept what
    // resolution yields, including every default.
    for e in embedded() {
        let set = e.get().unwrap();
        for (version, schema, _) in set.versions() {
            let resolved = ResolvedSchema::new(schema).unwrap();
            for variant in 0..3 {
                let bytes = write(schema, sample(schema, resolved.get_names(), variant));
                let ok = match e.name() {
                    "license_event" => set
                        .decode::<crate::event::wire::AvroEvent<'static>>(&bytes)
                        .map(drop),
                    "delivery_envelope" => super::DeliveryEnvelope::from_avro(&bytes).map(drop),
                    "attempt" => super::AttemptRecord::from_avro(&bytes).map(drop),
                    "endpoint_notification" => {
                        super::EndpointNotification::from_avro(&bytes).map(drop)
                    }
                    "api_key" => super::ApiKey::from_avro(&bytes).map(drop),
                    other => panic!("add a typed decode for {other}"),
                };
                ok.unwrap_or_else(|err| {
                    panic!("{} v{version} variant {variant}: {err:?}", e.name())
                });
            }
        }
    }
}
