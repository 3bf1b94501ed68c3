//! The list of every Avro schema this build ships, and its rendering for `hookrelay schemas`.

use std::fmt::Write as _;

use crate::event::CodecConfig;

use super::avro::VersionedSchema;

/// A shipped schema set that does not load: a build defect the unit tests catch.
#[derive(Debug, thiserror::Error)]
pub enum ShippedSchemaError {
    #[error(transparent)]
    Avro(#[from] super::avro::AvroError),
    #[error(transparent)]
    Endpoint(#[from] crate::subscriptions::EndpointError),
    #[error(transparent)]
    Status(#[from] crate::subscriptions::StatusError),
}

/// Every schema set this build ships (`schemas/<name>.vN.avsc`), by name: for
/// `hookrelay schemas`, the interop tests and the teams that produce or consume these records.
pub fn shipped_schemas() -> Result<Vec<&'static VersionedSchema>, ShippedSchemaError> {
    let mut all = vec![
        crate::event::schema().get()?,
        super::DeliveryEnvelope::schema().get()?,
        super::AttemptRecord::schema().get()?,
        super::EndpointNotification::schema().get()?,
        super::ApiKey::schema().get()?,
        crate::subscriptions::endpoint::endpoint_schema()?,
        crate::subscriptions::status::status_schema()?,
    ];
    all.sort_by_key(|s| s.name());
    Ok(all)
}

/// The `hookrelay schemas` listing: one line per schema version with its fingerprints (the
/// single-object header bytes, and the 64-bit number Java's `parsingFingerprint64` returns),
/// the Confluent schema ids `codec` maps to it, and with `full` the schema text.
pub fn render_schemas(schemas: &[&VersionedSchema], codec: &CodecConfig, full: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>7}  {:<16}  {:<18}  {:<14}  file",
        "schema", "version", "header bytes", "fingerprint64", "confluent ids"
    );
    for set in schemas {
        for v in set.released() {
            let versioned = format!("{}.v{}", set.name(), v.number);
            let ids: Vec<String> = codec
                .confluent_schema_ids
                .iter()
                .filter(|(_, name)| **name == versioned)
                .map(|(id, _)| id.to_string())
                .collect();
            let ids = if ids.is_empty() {
                "-".to_owned()
            } else {
                ids.join(",")
            };
            let current = if v.number == set.current_version() {
                " (written)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{:<22} {:>7}  {}  {:#018x}  {:<14}  schemas/{versioned}.avsc{current}",
                set.name(),
                v.number,
                v.fingerprint,
                v.fingerprint.to_u64(),
                ids,
            );
            if let Some(legacy) = v.legacy_fingerprint {
                let _ = writeln!(
                    out,
                    "{:<22} {:>7}  {legacy}  {:#018x}  {:<14}  also read: what earlier hookrelay builds wrote",
                    "",
                    "",
                    legacy.to_u64(),
                    "",
                );
            }
            if full {
                let _ = writeln!(out, "{}", v.json.trim_end());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// `SchemaNormalization.parsingFingerprint64` of every file in `schemas/`, printed by Apache
    /// Avro for Java 1.12.2 (`Interop fingerprints schemas`, tests/interop/java) and equal to
    /// fastavro's. tests/it/interop.rs asks both libraries again on every run; this table
    /// keeps the check where no JVM is installed. A new schema file needs its line here.
    const JAVA_FINGERPRINTS: &[(&str, u64)] = &[
        ("api_key.v1.avsc", 0x7580fec500bd26c4),
        ("attempt.v1.avsc", 0x39bb34028dafe263),
        ("attempt.v2.avsc", 0xb162493d321f6597),
        ("delivery_envelope.v1.avsc", 0x81e2a0a770e0f5fe),
        ("endpoint.v1.avsc", 0xd2be216cd4e964cc),
        ("endpoint.v2.avsc", 0x9ae8444ef734f1d0),
        ("endpoint.v3.avsc", 0xe06ecbe9a00b57aa),
        ("endpoint_notification.v1.avsc", 0xb07e82507e0fbe90),
        ("endpoint_status.v1.avsc", 0xd984b3ba7569f3f6),
        ("license_event.v1.avsc", 0x1f3827e5d1180cd0),
        ("license_event.v2.avsc", 0x93a752849c61bf91),
    ];

    #[test]
    fn every_shipped_schema_has_the_fingerprint_java_computes() {
        let mut ours: Vec<(String, u64)> = shipped_schemas()
            .unwrap()
            .into_iter()
            .flat_map(|set| {
                set.released()
                    .map(|v| {
                        (
                            format!("{}.v{}.avsc", set.name(), v.number),
                            v.fingerprint.to_u64(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        ours.sort();
        let java: Vec<(String, u64)> = JAVA_FINGERPRINTS
            .iter()
            .map(|(f, n)| ((*f).to_owned(), *n))
            .collect();
        assert_eq!(ours, java);
    }

    #[test]
    fn every_schema_file_is_listed_with_its_fingerprints_and_ids() {
        let schemas = shipped_schemas().unwrap();
        let codec = CodecConfig {
            confluent_schema_ids: BTreeMap::from([
                (41, "license_event.v1".to_owned()),
                (42, "license_event.v2".to_owned()),
                (43, "license_event.v2".to_owned()),
            ]),
            ..CodecConfig::default()
        };
        let text = render_schemas(&schemas, &codec, false);
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".avsc"))
            .collect::<Vec<_>>();
        assert!(!files.is_empty());
        for file in files {
            assert!(text.contains(&format!("schemas/{file}")), "{file}:\n{text}");
        }
        let v2 = text
            .lines()
            .find(|l| l.contains("schemas/license_event.v2.avsc"))
            .unwrap();
        // Header bytes, then Java's number: the example.
        assert!(v2.contains("91bf619c8452a793"), "{v2}");
        assert!(v2.contains("0x93a752849c61bf91"), "{v2}");
        assert!(v2.contains(" 42,43 "), "{v2}");
        assert!(v2.ends_with("(written)"), "{v2}");
        assert!(text.contains("also read"), "{text}");
        let full = render_schemas(&schemas, &codec, true);
        assert!(
            full.contains("\"logicalType\": \"timestamp-millis\""),
            "{full}"
        );
    }
}
