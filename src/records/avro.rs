//! Versioned Avro schemas and Avro single-object encoding, shared by every record type.
//!
//! Each record type embeds every schema version it ever released (`include_str!`), so the
//! binary needs no schema files and can always read what an older build wrote. Records are
//! written with the highest (current) version in [single-object encoding]: `C3 01`, the
//! writer schema's 8-byte CRC-64-AVRO (Rabin) fingerprint in little-endian order, then the
//! datum. A reader finds the writer version by that fingerprint and resolves the datum into
//! the current schema (Avro schema resolution: added fields take their defaults).
//!
//! [single-object encoding]: https://avro.apache.org/docs/1.12.0/specification/#single-object-encoding

use std::fmt;
use std::io::ErrorKind;
use std::sync::OnceLock;

use apache_avro::Schema;
use apache_avro::error::CompatibilityError;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::types::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::canonical::{CanonicalFormError, crc64_avro, parsing_canonical_form};

/// The two marker bytes that open every single-object encoded record.
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];

/// Marker plus fingerprint: the bytes before the datum.
pub const SINGLE_OBJECT_HEADER_LEN: usize = 10;

/// The most the Avro decoder may allocate for one string, byte array or collection.
///
/// apache-avro allocates what a length prefix claims before it reads the bytes (up to 512 MiB
/// by default), so a 15-byte record claiming a 500 MB string made each decode reserve 500 MB:
/// a poison record that aborts the process where memory is not overcommitted, and is read
/// again after the restart. No record hookrelay reads comes near this bound (Kafka's
/// default record limit is 1 MB); the limit is process-wide and set by the first schema built.
pub const MAX_AVRO_ALLOCATION: usize = 16 << 20;

/// A schema's CRC-64-AVRO (Rabin) fingerprint, in the little-endian byte order single-object
/// encoding writes it. `Display` prints those header bytes in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 8]);

impl Fingerprint {
    /// The fingerprint of a schema's Parsing Canonical Form as the Avro specification
    /// defines it (see [`super::canonical`]): what Java's `SchemaNormalization`, fastavro and
    /// every other producer library write. `schema_json` is the schema's text.
    pub fn of_json(schema_json: &str) -> Result<Self, CanonicalFormError> {
        let form = parsing_canonical_form(schema_json)?;
        Ok(Self::from_u64(crc64_avro(form.as_bytes())))
    }

    /// What apache-avro 0.22's `Schema::fingerprint` computes: different from
    /// [`Fingerprint::of_json`] for schemas with logical types (AVRO-4004). hookrelay wrote it
    /// until that was noticed, so readers accept it too.
    pub fn of_apache_avro(schema: &Schema) -> Self {
        Self::from_u64(crc64_avro(schema.canonical_form().as_bytes()))
    }

    /// From the 64-bit number Java's `SchemaNormalization.parsingFingerprint64` returns.
    pub fn from_u64(fingerprint: u64) -> Self {
        Self(fingerprint.to_le_bytes())
    }

    /// The 64-bit number Java's `SchemaNormalization.parsingFingerprint64` returns (its
    /// bytes in the opposite order to the single-object header's).
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a schema set could not be built or a record not encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    /// A shipped schema has no Parsing Canonical Form (hookrelay's reading of it), so no
    /// fingerprint.
    #[error("{schema} schema v{version} has no canonical form")]
    CanonicalForm {
        schema: &'static str,
        version: u32,
        #[source]
        source: CanonicalFormError,
    },
    /// A shipped schema file does not parse or does not resolve its named types.
    #[error("{schema} schema v{version} is not a valid Avro schema")]
    Schema {
        schema: &'static str,
        version: u32,
        #[source]
        source: apache_avro::Error,
    },
    /// The version list itself is wrong (empty, unordered, or two identical versions).
    #[error("{schema} schema versions are unusable: {problem}")]
    Versions {
        schema: &'static str,
        problem: &'static str,
    },
    /// An older version cannot be fully read by the current one: releasing it would strand
    /// records already written.
    #[error("{schema} schema v{version} data cannot be read with the current v{current}")]
    Incompatible {
        schema: &'static str,
        version: u32,
        current: u32,
        #[source]
        source: Option<CompatibilityError>,
    },
    /// The bytes do not start with the single-object marker.
    #[error("{schema} record is not Avro single-object encoded")]
    NotSingleObject { schema: &'static str },
    /// The record names a writer schema this build does not know.
    #[error("{schema} record was written with an unknown schema (fingerprint {fingerprint})")]
    UnknownFingerprint {
        schema: &'static str,
        fingerprint: Fingerprint,
    },
    /// A caller asked for a writer version this build does not ship.
    #[error("{schema} has no schema version {version}")]
    UnknownVersion { schema: &'static str, version: u32 },
    /// The record ends before its datum does.
    #[error("{schema} v{version} record is truncated")]
    Truncated {
        schema: &'static str,
        version: u32,
        #[source]
        source: Option<apache_avro::Error>,
    },
    /// The datum does not decode with its writer schema, or does not fit the Rust type.
    #[error("{schema} v{version} record is malformed")]
    Malformed {
        schema: &'static str,
        version: u32,
        #[source]
        source: apache_avro::Error,
    },
    /// Bytes are left over after the datum: the writer used a different schema than its
    /// header claims.
    #[error("{schema} v{version} record has {extra} bytes after the datum")]
    TrailingBytes {
        schema: &'static str,
        version: u32,
        extra: usize,
    },
    /// The datum does not decode with the writer schema a schema registry gave for its id
    /// (or does not fit the Rust type).
    #[error("{schema} record written with registry schema id {schema_id} is {}", if *truncated { "truncated" } else { "malformed" })]
    RegistryDatum {
        schema: &'static str,
        schema_id: u32,
        truncated: bool,
        #[source]
        source: apache_avro::Error,
    },
    /// The value does not fit the current schema (a programming error in the caller).
    #[error("cannot encode a {schema} v{version} record")]
    Encode {
        schema: &'static str,
        version: u32,
        #[source]
        source: apache_avro::Error,
    },
}

/// One released version of a schema.
struct Version {
    number: u32,
    /// The schema's JSON text, as shipped.
    json: &'static str,
    schema: Schema,
    fingerprint: Fingerprint,
    /// apache-avro's fingerprint, where it differs from the specification's (logical types).
    legacy_fingerprint: Option<Fingerprint>,
}

impl Version {
    /// True when a record header's fingerprint names this version.
    fn written_as(&self, fingerprint: Fingerprint) -> bool {
        self.fingerprint == fingerprint || self.legacy_fingerprint == Some(fingerprint)
    }
}

/// One released schema version, as [`VersionedSchema::released`] lists it.
#[derive(Clone, Copy, Debug)]
pub struct ReleasedVersion {
    pub number: u32,
    /// The schema text, as shipped in `schemas/`.
    pub json: &'static str,
    /// The specification's fingerprint: what single-object records carry.
    pub fingerprint: Fingerprint,
    /// The fingerprint earlier hookrelay builds wrote (apache-avro's), where it differs; still read.
    pub legacy_fingerprint: Option<Fingerprint>,
}

/// Every released version of one record schema; the highest is current.
pub struct VersionedSchema {
    name: &'static str,
    /// Ascending by version number; never empty.
    versions: Vec<Version>,
}

impl fmt::Debug for VersionedSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        for v in &self.versions {
            list.entry(&v.number, &v.fingerprint);
        }
        list.finish()?;
        write!(f, " ({})", self.name)
    }
}

impl VersionedSchema {
    /// Parses every released version and checks that each older one can be read with the
    /// current one (Avro backward compatibility), so an incompatible schema fails at start-up
    /// rather than on the first old record.
    ///
    /// `sources`: (version, schema JSON) for every version ever released, ascending. Schemas
    /// are embedded with `include_str!("../../schemas/x.vN.avsc")` so the binary needs no files.
    pub fn new(name: &'static str, sources: &[(u32, &'static str)]) -> Result<Self, AvroError> {
        // Every decode goes through a schema set built here first.
        apache_avro::util::max_allocation_bytes(MAX_AVRO_ALLOCATION);
        if sources.is_empty() {
            return Err(AvroError::Versions {
                schema: name,
                problem: "no versions given",
            });
        }
        if sources.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(AvroError::Versions {
                schema: name,
                problem: "versions must be strictly ascending",
            });
        }
        let mut versions = Vec::with_capacity(sources.len());
        for &(number, json) in sources {
            let schema_err = |source| AvroError::Schema {
                schema: name,
                version: number,
                source,
            };
            let parsed = Schema::parse_str(json).map_err(schema_err)?;
            let fingerprint =
                Fingerprint::of_json(json).map_err(|source| AvroError::CanonicalForm {
                    schema: name,
                    version: number,
                    source,
                })?;
            let legacy = Fingerprint::of_apache_avro(&parsed);
            let legacy_fingerprint = (legacy != fingerprint).then_some(legacy);
            if versions.iter().any(|v: &Version| {
                v.written_as(fingerprint) || legacy_fingerprint.is_some_and(|l| v.written_as(l))
            }) {
                return Err(AvroError::Versions {
                    schema: name,
                    problem: "two versions have the same canonical form",
                });
            }
            // Named-type references must resolve now, not on the first record.
            ResolvedSchema::new(&parsed).map_err(schema_err)?;
            versions.push(Version {
                number,
                json,
                schema: parsed,
                fingerprint,
                legacy_fingerprint,
            });
        }
        let this = Self { name, versions };
        let current = this.current_entry();
        for old in &this.versions {
            let check = SchemaCompatibility::can_read(&old.schema, &current.schema);
            match check {
                Ok(Compatibility::Full) => {}
                Ok(Compatibility::Partial) => {
                    return Err(AvroError::Incompatible {
                        schema: name,
                        version: old.number,
                        current: current.number,
                        source: None,
                    });
                }
                Err(e) => {
                    return Err(AvroError::Incompatible {
                        schema: name,
                        version: old.number,
                        current: current.number,
                        source: Some(e),
                    });
                }
            }
        }
        Ok(this)
    }

    /// The name given at construction, used in error messages.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The schema records are written with.
    pub fn current(&self) -> &Schema {
        &self.current_entry().schema
    }

    /// The number of the current version.
    pub fn current_version(&self) -> u32 {
        self.current_entry().number
    }

    /// Every version, ascending: number, schema, fingerprint.
    pub fn versions(&self) -> impl Iterator<Item = (u32, &Schema, Fingerprint)> {
        self.versions
            .iter()
            .map(|v| (v.number, &v.schema, v.fingerprint))
    }

    /// Every version with what a producer team needs to check its side: the schema text and
    /// the fingerprints records may carry.
    pub fn released(&self) -> impl Iterator<Item = ReleasedVersion> + '_ {
        self.versions.iter().map(|v| ReleasedVersion {
            number: v.number,
            json: v.json,
            fingerprint: v.fingerprint,
            legacy_fingerprint: v.legacy_fingerprint,
        })
    }

    /// The fingerprint of a version, if this build ships it.
    pub fn fingerprint(&self, version: u32) -> Option<Fingerprint> {
        self.version(version).ok().map(|v| v.fingerprint)
    }

    /// Single-object encoding of `value` with the current schema.
    pub fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, AvroError> {
        self.encode_version(self.current_version(), value)
    }

    /// Single-object encoding with an older version, for producers pinned to it and for tests
    /// that prove old data still reads.
    pub fn encode_version<T: Serialize>(
        &self,
        version: u32,
        value: &T,
    ) -> Result<Vec<u8>, AvroError> {
        let v = self.version(version)?;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
        out.extend_from_slice(&v.fingerprint.0);
        self.write_datum(v, value, &mut out)?;
        Ok(out)
    }

    /// Single-object encoding with an older `version`, of a value of the current Rust type:
    /// written with the current schema, then resolved into `version` (Avro resolution drops
    /// the fields `version` does not have). For records that builds knowing only `version`
    /// must still read; the caller makes sure the dropped fields carry nothing it needs.
    pub fn encode_projected<T: Serialize>(
        &self,
        version: u32,
        value: &T,
    ) -> Result<Vec<u8>, AvroError> {
        let current = self.current_entry();
        let target = self.version(version)?;
        if target.number == current.number {
            return self.encode(value);
        }
        let mut datum = Vec::with_capacity(256);
        self.write_datum(current, value, &mut datum)?;
        let encode_error = |source| AvroError::Encode {
            schema: self.name,
            version: target.number,
            source,
        };
        let mut reader = datum.as_slice();
        let projected = GenericDatumReader::builder(&current.schema)
            .reader_schema(&target.schema)
            .build()
            .and_then(|r| r.read_value(&mut reader))
            .map_err(encode_error)?;
        let mut out = Vec::with_capacity(datum.len() + SINGLE_OBJECT_HEADER_LEN);
        out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
        out.extend_from_slice(&target.fingerprint.0);
        let body = apache_avro::writer::datum::GenericDatumWriter::builder(&target.schema)
            .build()
            .and_then(|w| w.write_value_to_vec(projected))
            .map_err(encode_error)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The bare datum (no header) with the current schema, for framings that carry the
    /// schema identity elsewhere (Confluent's schema id).
    pub fn encode_datum<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, AvroError> {
        let mut out = Vec::with_capacity(256);
        self.write_datum(self.current_entry(), value, &mut out)?;
        Ok(out)
    }

    /// Decodes a single-object record written with any known version, resolved into the
    /// current schema.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, AvroError> {
        let (v, datum) = self.split_header(bytes)?;
        self.read_datum(v, datum)
    }

    /// Decodes a raw datum written with `writer_version` (used for Confluent framing, where
    /// the schema id, not a fingerprint, names the writer).
    pub fn decode_datum<T: DeserializeOwned>(
        &self,
        writer_version: u32,
        datum: &[u8],
    ) -> Result<T, AvroError> {
        self.read_datum(self.version(writer_version)?, datum)
    }

    /// Decodes a raw datum written with `writer`, a schema a registry gave for `schema_id`
    /// (checked beforehand to resolve into the current schema), resolved into the current one.
    pub fn decode_with_writer<T: DeserializeOwned>(
        &self,
        schema_id: u32,
        writer: &Schema,
        datum: &[u8],
    ) -> Result<T, AvroError> {
        let current = self.current_entry();
        let mut reader = datum;
        let error = |source: apache_avro::Error| AvroError::RegistryDatum {
            schema: self.name,
            schema_id,
            truncated: is_eof(&source),
            source,
        };
        let value = GenericDatumReader::builder(writer)
            .reader_schema(&current.schema)
            .build()
            .and_then(|r| r.read_value(&mut reader))
            .map_err(error)?;
        if !reader.is_empty() {
            return Err(AvroError::TrailingBytes {
                schema: self.name,
                version: current.number,
                extra: reader.len(),
            });
        }
        apache_avro::from_value::<T>(&value).map_err(error)
    }

    /// Decodes a single-object record into a generic Avro value conforming to the current
    /// schema, for tools that do not know the Rust type.
    pub fn decode_value(&self, bytes: &[u8]) -> Result<Value, AvroError> {
        let (v, datum) = self.split_header(bytes)?;
        let current = self.current_entry();
        let mut reader = datum;
        let value = GenericDatumReader::builder(&v.schema)
            .reader_schema(&current.schema)
            .build()
            .and_then(|r| r.read_value(&mut reader))
            .map_err(|e| self.read_error(v.number, e))?;
        self.expect_end(v.number, reader)?;
        Ok(value)
    }

    /// True when `bytes` carry the single-object marker and a full header.
    pub fn is_single_object(bytes: &[u8]) -> bool {
        bytes.len() >= SINGLE_OBJECT_HEADER_LEN && bytes[..2] == SINGLE_OBJECT_MAGIC
    }

    fn current_entry(&self) -> &Version {
        // `new` refuses an empty list, so the last entry always exists.
        &self.versions[self.versions.len() - 1]
    }

    fn version(&self, number: u32) -> Result<&Version, AvroError> {
        self.versions
            .iter()
            .find(|v| v.number == number)
            .ok_or(AvroError::UnknownVersion {
                schema: self.name,
                version: number,
            })
    }

    fn split_header<'b>(&self, bytes: &'b [u8]) -> Result<(&Version, &'b [u8]), AvroError> {
        if !bytes.starts_with(&SINGLE_OBJECT_MAGIC) {
            return Err(AvroError::NotSingleObject { schema: self.name });
        }
        let Some((fp, datum)) = bytes[2..].split_first_chunk::<8>() else {
            return Err(AvroError::Truncated {
                schema: self.name,
                version: 0,
                source: None,
            });
        };
        let fingerprint = Fingerprint(*fp);
        let v = self
            .versions
            .iter()
            .find(|v| v.written_as(fingerprint))
            .ok_or(AvroError::UnknownFingerprint {
                schema: self.name,
                fingerprint,
            })?;
        Ok((v, datum))
    }

    fn write_datum<T: Serialize>(
        &self,
        v: &Version,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), AvroError> {
        ResolvedSchema::new(&v.schema)
            .and_then(|resolved| {
                apache_avro::write_avro_datum_ref(&v.schema, resolved.get_names(), value, out)
            })
            .map(drop)
            .map_err(|source| AvroError::Encode {
                schema: self.name,
                version: v.number,
                source,
            })
    }

    fn read_datum<T: DeserializeOwned>(&self, v: &Version, datum: &[u8]) -> Result<T, AvroError> {
        let current = self.current_entry();
        let mut reader = datum;
        let decoded = if v.number == current.number {
            // Same schema on both sides: deserialize straight from the bytes, no resolution.
            GenericDatumReader::builder(&v.schema)
                .build()
                .and_then(|r| r.read_deser::<T>(&mut reader))
        } else {
            GenericDatumReader::builder(&v.schema)
                .reader_schema(&current.schema)
                .build()
                .and_then(|r| r.read_value(&mut reader))
                .and_then(|value| apache_avro::from_value::<T>(&value))
        };
        let value = decoded.map_err(|e| {
            // The direct deserializer reports running out of bytes as a generic message;
            // decoding again generically tells truncation apart (only on this error path).
            let truncated = GenericDatumReader::builder(&v.schema)
                .build()
                .and_then(|r| r.read_value(&mut &datum[..]))
                .err()
                .is_some_and(|again| is_eof(&again));
            if truncated {
                AvroError::Truncated {
                    schema: self.name,
                    version: v.number,
                    source: Some(e),
                }
            } else {
                self.read_error(v.number, e)
            }
        })?;
        self.expect_end(v.number, reader)?;
        Ok(value)
    }

    fn expect_end(&self, version: u32, rest: &[u8]) -> Result<(), AvroError> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(AvroError::TrailingBytes {
                schema: self.name,
                version,
                extra: rest.len(),
            })
        }
    }

    /// Running out of bytes is truncation; everything else is a malformed datum.
    fn read_error(&self, version: u32, e: apache_avro::Error) -> AvroError {
        if is_eof(&e) {
            AvroError::Truncated {
                schema: self.name,
                version,
                source: Some(e),
            }
        } else {
            AvroError::Malformed {
                schema: self.name,
                version,
                source: e,
            }
        }
    }
}

/// True when an I/O `UnexpectedEof` is somewhere in the cause chain.
fn is_eof(e: &apache_avro::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::UnexpectedEof)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A record type's schema versions embedded in the binary, parsed on first use.
///
/// Declared as a `static` next to the record type:
/// `static SCHEMA: EmbeddedSchema = EmbeddedSchema::new("x", &[(1, include_str!(..))]);`.
/// A build whose embedded schemas do not parse returns the same error on every use (they are
/// re-parsed rather than cached), and the record modules' tests catch that before release.
pub struct EmbeddedSchema {
    name: &'static str,
    sources: &'static [(u32, &'static str)],
    built: OnceLock<VersionedSchema>,
}

impl EmbeddedSchema {
    pub const fn new(name: &'static str, sources: &'static [(u32, &'static str)]) -> Self {
        Self {
            name,
            sources,
            built: OnceLock::new(),
        }
    }

    /// The parsed schema set.
    pub fn get(&self) -> Result<&VersionedSchema, AvroError> {
        if let Some(s) = self.built.get() {
            return Ok(s);
        }
        let s = VersionedSchema::new(self.name, self.sources)?;
        Ok(self.built.get_or_init(|| s))
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The embedded (version, schema JSON) list.
    pub fn sources(&self) -> &'static [(u32, &'static str)] {
        self.sources
    }
}

/// Avro's binary encoding of the types hot records use, for writers that skip the generic
/// serde path (see [`AttemptRecord::to_avro`](super::AttemptRecord::to_avro)). Each writer
/// is checked against apache-avro's output by the record's tests.
pub(crate) mod wire {
    /// `int` and `long`: zig-zag, then a base-128 varint, low groups first.
    pub fn long(out: &mut Vec<u8>, v: i64) {
        let mut n = ((v << 1) ^ (v >> 63)) as u64;
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// `string`: the length as a long, then the UTF-8 bytes.
    pub fn string(out: &mut Vec<u8>, s: &str) {
        long(out, s.len() as i64);
        out.extend_from_slice(s.as_bytes());
    }

    /// `{"type": "array", "items": "string"}`: one block with every item, then the empty
    /// block that ends the array.
    pub fn strings(out: &mut Vec<u8>, items: &[String]) {
        if !items.is_empty() {
            long(out, items.len() as i64);
            for s in items {
                string(out, s);
            }
        }
        out.push(0);
    }

    /// `["null", T]`: the branch index, then the value when there is one.
    pub fn optional<T>(out: &mut Vec<u8>, value: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(2);
                write(out, v);
            }
        }
    }
}

/// `to_avro`, `from_avro` and `schema` for a record type whose versions live in `$schema`
/// (an [`EmbeddedSchema`] static), so each record file states only its fields.
macro_rules! avro_record {
    ($record:ty, $schema:path) => {
        impl $record {
            /// Avro single-object encoding with the current schema.
            pub fn to_avro(&self) -> Result<Vec<u8>, $crate::records::avro::AvroError> {
                $schema.get()?.encode(self)
            }

            /// Decodes a record written with any released schema version.
            pub fn from_avro(bytes: &[u8]) -> Result<Self, $crate::records::avro::AvroError> {
                $schema.get()?.decode(bytes)
            }

            /// The schema set, for tools and the evolution tests.
            pub fn schema() -> &'static $crate::records::avro::EmbeddedSchema {
                &$schema
            }
        }
    };
}
pub(crate) use avro_record;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const V1: &str = r#"{"type":"record","name":"Widget","namespace":"test.hookrelay","fields":[
        {"name":"id","type":"string"},
        {"name":"count","type":"long"},
        {"name":"note","type":["null","string"],"default":null}
    ]}"#;
    const V2: &str = r#"{"type":"record","name":"Widget","namespace":"test.hookrelay","fields":[
        {"name":"id","type":"string"},
        {"name":"count","type":"long"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"tags","type":{"type":"array","items":"string"},"default":[]},
        {"name":"colour","type":{"type":"enum","name":"Colour","symbols":["RED","BLUE"]},"default":"RED"}
    ]}"#;
    /// Adds a required field without a default: old records could not be read.
    const V3_BROKEN: &str = r#"{"type":"record","name":"Widget","namespace":"test.hookrelay","fields":[
        {"name":"id","type":"string"},
        {"name":"count","type":"long"},
        {"name":"weight","type":"double"}
    ]}"#;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct WidgetV1 {
        id: String,
        count: i64,
        note: Option<String>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Colour {
        #[serde(rename = "RED")]
        Red,
        #[serde(rename = "BLUE")]
        Blue,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Widget {
        id: String,
        count: i64,
        note: Option<String>,
        tags: Vec<String>,
        colour: Colour,
    }

    fn widgets() -> VersionedSchema {
        VersionedSchema::new("widget", &[(1, V1), (2, V2)]).unwrap()
    }

    fn sample() -> Widget {
        Widget {
            id: "w_1".into(),
            count: -42,
            note: Some("hello".into()),
            tags: vec!["a".into(), "b".into()],
            colour: Colour::Blue,
        }
    }

    #[test]
    fn round_trips_with_the_current_version() {
        let s = widgets();
        let bytes = s.encode(&sample()).unwrap();
        assert!(VersionedSchema::is_single_object(&bytes));
        assert_eq!(&bytes[2..10], &s.fingerprint(2).unwrap().0);
        assert_eq!(s.decode::<Widget>(&bytes).unwrap(), sample());
    }

    #[test]
    fn header_is_the_spec_marker_and_little_endian_rabin() {
        // The Avro spec's own example: the fingerprint of "int" is 0x7275d51a3f395c8f,
        // written little-endian after C3 01.
        let s = VersionedSchema::new("int", &[(1, r#""int""#)]).unwrap();
        let bytes = s.encode(&7i32).unwrap();
        assert_eq!(
            bytes[..10],
            [0xC3, 0x01, 0x8f, 0x5c, 0x39, 0x3f, 0x1a, 0xd5, 0x75, 0x72]
        );
        assert_eq!(bytes[10..], [14]); // zig-zag 7
    }

    #[test]
    fn old_writer_data_takes_new_defaults() {
        let s = widgets();
        let old = WidgetV1 {
            id: "w_9".into(),
            count: 3,
            note: None,
        };
        let bytes = s.encode_version(1, &old).unwrap();
        assert_eq!(&bytes[2..10], &s.fingerprint(1).unwrap().0);
        let read: Widget = s.decode(&bytes).unwrap();
        assert_eq!(
            read,
            Widget {
                id: "w_9".into(),
                count: 3,
                note: None,
                tags: vec![],
                colour: Colour::Red,
            }
        );
        // The same datum through the Confluent-style path.
        let read: Widget = s.decode_datum(1, &bytes[10..]).unwrap();
        assert_eq!(read.id, "w_9");
    }

    #[test]
    fn generic_values_conform_to_the_current_schema() {
        let s = widgets();
        let bytes = s
            .encode_version(
                1,
                &WidgetV1 {
                    id: "x".into(),
                    count: 1,
                    note: Some("n".into()),
                },
            )
            .unwrap();
        let value = s.decode_value(&bytes).unwrap();
        assert!(value.validate(s.current()));
    }

    #[test]
    fn unknown_fingerprint_is_reported_as_such() {
        let s = widgets();
        let mut bytes = s.encode(&sample()).unwrap();
        bytes[5] ^= 0xff;
        let err = s.decode::<Widget>(&bytes).unwrap_err();
        assert!(matches!(err, AvroError::UnknownFingerprint { .. }), "{err}");
    }

    #[test]
    fn truncation_malformation_and_trailing_bytes_are_distinguished() {
        let s = widgets();
        let bytes = s.encode(&sample()).unwrap();

        let err = s.decode::<Widget>(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(matches!(err, AvroError::Truncated { .. }), "{err:?}");
        let err = s.decode::<Widget>(&bytes[..6]).unwrap_err();
        assert!(matches!(err, AvroError::Truncated { .. }), "{err:?}");

        let mut extra = bytes.clone();
        extra.push(0);
        let err = s.decode::<Widget>(&extra).unwrap_err();
        assert!(
            matches!(err, AvroError::TrailingBytes { extra: 1, .. }),
            "{err:?}"
        );

        // The enum index (last byte) pointing past the symbols.
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = 0x10;
        let err = s.decode::<Widget>(&bad).unwrap_err();
        assert!(matches!(err, AvroError::Malformed { .. }), "{err:?}");

        let err = s.decode::<Widget>(b"{\"id\":1}").unwrap_err();
        assert!(matches!(err, AvroError::NotSingleObject { .. }), "{err:?}");
    }

    #[test]
    fn logical_types_leave_the_fingerprint_as_the_spec_says() {
        let with = r#"{"type":"record","name":"R","namespace":"n","fields":[
            {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"},"doc":"d"},
            {"name":"maybe","type":["null",{"type":"int","logicalType":"date"}],"default":null}]}"#;
        let without = r#"{"type":"record","name":"R","namespace":"n","fields":[
            {"name":"at","type":"long"},{"name":"maybe","type":["null","int"]}]}"#;
        let spec = |json| Fingerprint::of_json(json).unwrap();
        let crate_own = |json| Fingerprint::of_apache_avro(&Schema::parse_str(json).unwrap());
        assert_eq!(spec(with), spec(without));
        assert_eq!(spec(without), crate_own(without));
        assert_ne!(
            spec(with),
            crate_own(with),
            "apache-avro still differs; if it was fixed, the legacy fingerprint can go"
        );
        let f = spec(with);
        assert_eq!(Fingerprint::from_u64(f.to_u64()), f);
        assert_eq!(f.to_u64().to_le_bytes(), f.0);
    }

    #[test]
    fn records_with_apache_avros_own_fingerprint_still_decode() {
        let json = r#"{"type":"record","name":"T","fields":[
            {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct T {
            at: i64,
        }
        let s = VersionedSchema::new("t", &[(1, Box::leak(json.into()))]).unwrap();
        let spec = s.encode(&T { at: 5 }).unwrap();
        let mut legacy = spec.clone();
        let old = Fingerprint::of_apache_avro(s.current());
        legacy[2..10].copy_from_slice(&old.0);
        assert_ne!(spec, legacy);
        assert_eq!(s.decode::<T>(&spec).unwrap(), T { at: 5 });
        assert_eq!(s.decode::<T>(&legacy).unwrap(), T { at: 5 });
    }

    #[test]
    fn length_prefixes_beyond_the_allocation_bound_are_refused_unread() {
        let s = widgets();
        assert_eq!(
            apache_avro::util::max_allocation_bytes(usize::MAX),
            MAX_AVRO_ALLOCATION,
            "building a schema set sets the bound"
        );
        let header = &s.encode(&sample()).unwrap()[..SINGLE_OBJECT_HEADER_LEN];
        // The id string claims 100 MiB, then 16 MiB exactly; the record holds 3 more bytes.
        for (claim, refused) in [(100usize << 20, true), (MAX_AVRO_ALLOCATION, false)] {
            let mut record = header.to_vec();
            let mut zigzag = (claim as u64) << 1;
            while zigzag >= 0x80 {
                record.push(zigzag as u8 | 0x80);
                zigzag >>= 7;
            }
            record.push(zigzag as u8);
            record.extend_from_slice(b"w_1");
            let err = s.decode::<Widget>(&record).unwrap_err();
            if refused {
                assert!(matches!(err, AvroError::Malformed { .. }), "{err:?}");
            } else {
                assert!(matches!(err, AvroError::Truncated { .. }), "{err:?}");
            }
        }
    }

    #[test]
    fn incompatible_or_misordered_versions_are_refused_at_construction() {
        let err = VersionedSchema::new("widget", &[(1, V1), (2, V2), (3, V3_BROKEN)]).unwrap_err();
        assert!(
            matches!(
                err,
                AvroError::Incompatible {
                    version: 1,
                    current: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = VersionedSchema::new("widget", &[(2, V2), (1, V1)]).unwrap_err();
        assert!(matches!(err, AvroError::Versions { .. }), "{err:?}");
        let err = VersionedSchema::new("widget", &[(1, V1), (2, V1)]).unwrap_err();
        assert!(matches!(err, AvroError::Versions { .. }), "{err:?}");
        let err = VersionedSchema::new("widget", &[(1, "{not json")]).unwrap_err();
        assert!(
            matches!(err, AvroError::Schema { version: 1, .. }),
            "{err:?}"
        );
        let err = VersionedSchema::new("widget", &[]).unwrap_err();
        assert!(matches!(err, AvroError::Versions { .. }), "{err:?}");
    }

    #[test]
    fn unknown_versions_and_wrong_shapes_fail_cleanly() {
        let s = widgets();
        assert!(matches!(
            s.decode_datum::<Widget>(7, &[]),
            Err(AvroError::UnknownVersion { version: 7, .. })
        ));
        assert!(matches!(
            s.encode(&"a string is not a Widget"),
            Err(AvroError::Encode { .. })
        ));
        // Fields the value lacks are written with their schema defaults.
        let short = WidgetV1 {
            id: "x".into(),
            count: 1,
            note: None,
        };
        let read: Widget = s.decode(&s.encode(&short).unwrap()).unwrap();
        assert_eq!((read.tags.len(), read.colour), (0, Colour::Red));
    }

    #[test]
    fn schema_sets_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<VersionedSchema>();
    }
}
