//! The Avro specification's Parsing Canonical Form of a schema and its CRC-64-AVRO (Rabin)
//! fingerprint, computed here from the schema's JSON text.
//!
//! Single-object records name their writer schema by this fingerprint, so hookrelay must
//! compute exactly what Java's `SchemaNormalization.parsingFingerprint64`, fastavro and every
//! other library that follows the specification compute. apache-avro's `canonical_form()`
//! does not for logical types (it keeps `{"type":"long"}` where the specification's
//! [PRIMITIVES] rule writes `"long"`, AVRO-4004), which made every record a JVM or Python
//! producer wrote with `license_event` unreadable; so the form is built here, rule by rule:
//!
//! - [PRIMITIVES] a primitive is written as its bare name, whatever else its object holds
//!   (`logicalType`, `avro.java.string`, ...);
//! - [FULLNAMES] named types and references to them carry their full name; `namespace` goes;
//! - [STRIP] only `type`, `name`, `fields`, `symbols`, `items`, `values` and `size` stay;
//! - [ORDER] in that order;
//! - [STRINGS], [INTEGERS], [WHITESPACE] JSON without escapes beyond the necessary, plain
//!   integers, no whitespace.
//!
//! A named type is written in full where it is defined (first, in document order) and by its
//! full name everywhere after, as the specification's reference implementation does.
//!
//! [specification]: https://avro.apache.org/docs/1.12.0/specification/#parsing-canonical-form-for-schemas

use std::collections::HashSet;

use serde_json::{Map, Value};

/// Why a schema has no canonical form: it is not a valid Avro schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalFormError {
    #[error("the schema is not JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
    #[error("type {0:?} is used but never defined")]
    UnknownType(String),
    #[error("type {0:?} is defined twice")]
    Redefined(String),
}

/// The Avro primitive type names.
const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Parsing Canonical Form of the schema in `schema_json`.
pub fn parsing_canonical_form(schema_json: &str) -> Result<String, CanonicalFormError> {
    let value: Value =
        serde_json::from_str(schema_json).map_err(|e| CanonicalFormError::Json(e.to_string()))?;
    let mut writer = Writer {
        out: String::with_capacity(schema_json.len() / 2),
        defined: HashSet::new(),
    };
    writer.schema(&value, "")?;
    Ok(writer.out)
}

/// The CRC-64-AVRO fingerprint of `bytes` (the specification's Rabin fingerprint), as the
/// 64-bit number Java's `SchemaNormalization.fingerprint64` returns. Single-object headers
/// carry it little-endian.
pub fn crc64_avro(bytes: &[u8]) -> u64 {
    let mut fp = CRC64_EMPTY;
    for &b in bytes {
        fp = (fp >> 8) ^ CRC64_TABLE[((fp ^ u64::from(b)) & 0xff) as usize];
    }
    fp
}

/// The fingerprint of the empty string, and the polynomial (the specification's `EMPTY`).
const CRC64_EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const CRC64_TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut bit = 0;
        while bit < 8 {
            fp = (fp >> 1) ^ (CRC64_EMPTY & (fp & 1).wrapping_neg());
            bit += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
};

struct Writer {
    out: String,
    /// Full names of the named types defined so far, in document order.
    defined: HashSet<String>,
}

impl Writer {
    /// Writes one schema; `namespace` is the enclosing one ("" for none).
    fn schema(&mut self, value: &Value, namespace: &str) -> Result<(), CanonicalFormError> {
        match value {
            Value::String(name) => self.reference(name, namespace),
            Value::Array(branches) => {
                self.out.push('[');
                for (i, branch) in branches.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.schema(branch, namespace)?;
                }
                self.out.push(']');
                Ok(())
            }
            Value::Object(object) => self.object(object, namespace),
            other => Err(invalid(format!("{other} is not a schema"))),
        }
    }

    /// A type given by name: a primitive, or a named type defined earlier.
    fn reference(&mut self, name: &str, namespace: &str) -> Result<(), CanonicalFormError> {
        if PRIMITIVES.contains(&name) {
            self.string(name);
            return Ok(());
        }
        // As the reference implementation resolves: in the enclosing namespace first, then
        // as written (a dotted name is already full; an undotted one may be in no namespace).
        let qualified = full_name(name, namespace);
        let found = [qualified.as_str(), name]
            .into_iter()
            .find(|candidate| self.defined.contains(*candidate))
            .map(str::to_owned);
        match found {
            Some(full) => {
                self.string(&full);
                Ok(())
            }
            None => Err(CanonicalFormError::UnknownType(name.to_owned())),
        }
    }

    fn object(
        &mut self,
        object: &Map<String, Value>,
        namespace: &str,
    ) -> Result<(), CanonicalFormError> {
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(_) => return Err(invalid("\"type\" must be a string in a schema object")),
            None => return Err(invalid("a schema object has no \"type\"")),
        };
        match kind {
            "record" | "error" => {
                let full = self.define(object, namespace)?;
                let inner = namespace_of(&full).to_owned();
                self.out.push_str("{\"name\":");
                self.string(&full);
                self.out.push_str(",\"type\":\"record\",\"fields\":[");
                let fields = match object.get("fields") {
                    Some(Value::Array(fields)) => fields,
                    _ => return Err(invalid(format!("record {full} has no \"fields\" list"))),
                };
                for (i, field) in fields.iter().enumerate() {
                    let (Some(Value::String(name)), Some(field_type)) =
                        (field.get("name"), field.get("type"))
                    else {
                        return Err(invalid(format!(
                            "a field of {full} lacks a \"name\" string or a \"type\""
                        )));
                    };
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.out.push_str("{\"name\":");
                    self.string(name);
                    self.out.push_str(",\"type\":");
                    self.schema(field_type, &inner)?;
                    self.out.push('}');
                }
                self.out.push_str("]}");
            }
            "enum" => {
                let full = self.define(object, namespace)?;
                let symbols = match object.get("symbols") {
                    Some(Value::Array(symbols)) => symbols,
                    _ => return Err(invalid(format!("enum {full} has no \"symbols\" list"))),
                };
                self.out.push_str("{\"name\":");
                self.string(&full);
                self.out.push_str(",\"type\":\"enum\",\"symbols\":[");
                for (i, symbol) in symbols.iter().enumerate() {
                    let Value::String(symbol) = symbol else {
                        return Err(invalid(format!(
                            "enum {full} has a symbol that is not text"
                        )));
                    };
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(symbol);
                }
                self.out.push_str("]}");
            }
            "fixed" => {
                let full = self.define(object, namespace)?;
                let Some(size) = object.get("size").and_then(Value::as_u64) else {
                    return Err(invalid(format!("fixed {full} has no integer \"size\"")));
                };
                self.out.push_str("{\"name\":");
                self.string(&full);
                self.out
                    .push_str(&format!(",\"type\":\"fixed\",\"size\":{size}}}"));
            }
            "array" => {
                let items = object
                    .get("items")
                    .ok_or_else(|| invalid("an array has no \"items\""))?;
                self.out.push_str("{\"type\":\"array\",\"items\":");
                self.schema(items, namespace)?;
                self.out.push('}');
            }
            "map" => {
                let values = object
                    .get("values")
                    .ok_or_else(|| invalid("a map has no \"values\""))?;
                self.out.push_str("{\"type\":\"map\",\"values\":");
                self.schema(values, namespace)?;
                self.out.push('}');
            }
            // A primitive (its logical type and other attributes stripped), or
            // `{"type":"some.Named"}`, a reference in object form.
            other => self.reference(other, namespace)?,
        }
        Ok(())
    }

    /// Registers the named type `object` defines and returns its full name.
    fn define(
        &mut self,
        object: &Map<String, Value>,
        enclosing: &str,
    ) -> Result<String, CanonicalFormError> {
        let Some(Value::String(name)) = object.get("name") else {
            return Err(invalid("a named type has no \"name\" string"));
        };
        let namespace = match object.get("namespace") {
            Some(Value::String(ns)) => ns.as_str(),
            Some(Value::Null) | None => enclosing,
            Some(_) => return Err(invalid(format!("the namespace of {name} is not text"))),
        };
        let full = full_name(name, namespace);
        if PRIMITIVES.contains(&full.as_str()) {
            return Err(invalid(format!("{full} is a primitive type's name")));
        }
        if !self.defined.insert(full.clone()) {
            return Err(CanonicalFormError::Redefined(full));
        }
        Ok(full)
    }

    fn string(&mut self, s: &str) {
        // serde_json escapes only what JSON requires (quote, backslash, control characters),
        // and writes everything else as UTF-8: the [STRINGS] rule.
        match serde_json::to_string(s) {
            Ok(quoted) => self.out.push_str(&quoted),
            // Serializing a &str cannot fail; write it raw rather than panic.
            Err(_) => {
                self.out.push('"');
                self.out.push_str(s);
                self.out.push('"');
            }
        }
    }
}

fn invalid(message: impl Into<String>) -> CanonicalFormError {
    CanonicalFormError::Invalid(message.into())
}

/// `name` in `namespace`: a dotted name is already full; an empty namespace is none.
fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

/// The namespace part of a full name ("" for none).
fn namespace_of(full: &str) -> &str {
    full.rsplit_once('.').map_or("", |(ns, _)| ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs, canonical forms and fingerprints (as Java's signed `long`) from the Avro
    /// project's cross-language test data (`share/test/data/schema-tests.txt`), which its Java
    /// tests check against a direct implementation of the specification's algorithm.
    const AVRO_TEST_DATA: &[(&str, &str, Option<i64>)] = &[
        (r#""null""#, r#""null""#, Some(7195948357588979594)),
        (r#"{"type":"null"}"#, r#""null""#, None),
        (r#""boolean""#, r#""boolean""#, Some(-6970731678124411036)),
        (r#"{"type":"boolean"}"#, r#""boolean""#, None),
        (r#""int""#, r#""int""#, Some(8247732601305521295)),
        (r#"{"type":"int"}"#, r#""int""#, None),
        (r#""long""#, r#""long""#, Some(-3434872931120570953)),
        (r#"{"type":"long"}"#, r#""long""#, None),
        (r#""float""#, r#""float""#, Some(5583340709985441680)),
        (r#"{"type":"float"}"#, r#""float""#, None),
        (r#""double""#, r#""double""#, Some(-8181574048448539266)),
        (r#"{"type":"double"}"#, r#""double""#, None),
        (r#""bytes""#, r#""bytes""#, Some(5746618253357095269)),
        (r#"{"type":"bytes"}"#, r#""bytes""#, None),
        (r#""string""#, r#""string""#, Some(-8142146995180207161)),
        (r#"{"type":"string"}"#, r#""string""#, None),
        ("[  ]", "[]", Some(-1241056759729112623)),
        (r#"[ "int"  ]"#, r#"["int"]"#, Some(-5232228896498058493)),
        (
            r#"[ "int" , {"type":"boolean"} ]"#,
            r#"["int","boolean"]"#,
            Some(5392556393470105090),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo"}"#,
            r#"{"name":"foo","type":"record","fields":[]}"#,
            Some(-4824392279771201922),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}"#,
            r#"{"name":"x.y.foo","type":"record","fields":[]}"#,
            Some(5916914534497305771),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}"#,
            r#"{"name":"a.b.foo","type":"record","fields":[]}"#,
            Some(-4616218487480524110),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}"#,
            r#"{"name":"foo","type":"record","fields":[]}"#,
            Some(-4824392279771201922),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}"#,
            r#"{"name":"foo","type":"record","fields":[]}"#,
            Some(-4824392279771201922),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}"#,
            r#"{"name":"foo","type":"record","fields":[]}"#,
            Some(-4824392279771201922),
        ),
        (
            r#"{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}"#,
            r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}"#,
            Some(7843277075252814651),
        ),
        (
            r#"{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
                 {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
                 "type":"record", "name":"foo" }"#,
            r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}"#,
            Some(-4860222112080293046),
        ),
        (
            r#"{"type":"enum", "name":"foo", "symbols":["A1"]}"#,
            r#"{"name":"foo","type":"enum","symbols":["A1"]}"#,
            Some(-6342190197741309591),
        ),
        (
            r#"{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}"#,
            r#"{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}"#,
            Some(-4448647247586288245),
        ),
        (
            r#"{"name":"foo","type":"fixed","size":15}"#,
            r#"{"name":"foo","type":"fixed","size":15}"#,
            Some(1756455273707447556),
        ),
        (
            r#"{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}"#,
            r#"{"name":"x.y.z.foo","type":"fixed","size":32}"#,
            Some(-3064184465700546786),
        ),
        (
            r#"{ "items":{"type":"null"}, "type":"array"}"#,
            r#"{"type":"array","items":"null"}"#,
            Some(-589620603366471059),
        ),
        (
            r#"{ "values":"string", "type":"map"}"#,
            r#"{"type":"map","values":"string"}"#,
            Some(-8732877298790414990),
        ),
        (
            r#"{"name":"PigValue","type":"record",
                "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}"#,
            r#"{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}"#,
            Some(-1759257747318642341),
        ),
    ];

    #[test]
    fn the_avro_projects_test_data_holds() {
        for &(input, canonical, fingerprint) in AVRO_TEST_DATA {
            let form = parsing_canonical_form(input).unwrap();
            assert_eq!(form, canonical, "{input}");
            if let Some(expected) = fingerprint {
                assert_eq!(crc64_avro(form.as_bytes()) as i64, expected, "{input}");
            }
        }
    }

    #[test]
    fn the_empty_string_fingerprints_to_the_polynomial() {
        assert_eq!(crc64_avro(b""), CRC64_EMPTY);
    }

    #[test]
    fn logical_types_and_extra_attributes_are_stripped_to_the_primitive() {
        let with = r#"{"type":"record","name":"R","namespace":"n","doc":"d","fields":[
            {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"},"doc":"d"},
            {"name":"day","type":["null",{"type":"int","logicalType":"date"}],"default":null},
            {"name":"s","type":{"type":"string","avro.java.string":"String"}},
            {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}"#;
        assert_eq!(
            parsing_canonical_form(with).unwrap(),
            r#"{"name":"n.R","type":"record","fields":[{"name":"at","type":"long"},{"name":"day","type":["null","int"]},{"name":"s","type":"string"},{"name":"amount","type":"bytes"}]}"#
        );
    }

    #[test]
    fn nested_types_inherit_the_enclosing_namespace_and_are_referenced_by_full_name() {
        let json = r#"{"type":"record","name":"Outer","namespace":"a.b","fields":[
            {"name":"x","type":{"type":"record","name":"Inner","fields":[
                {"name":"e","type":{"type":"enum","name":"E","namespace":"c","symbols":["Q"]}}]}},
            {"name":"y","type":"Inner"},
            {"name":"z","type":{"type":"array","items":"c.E"}},
            {"name":"w","type":{"type":"fixed","name":"F","namespace":"","size":4}},
            {"name":"v","type":{"type":"map","values":"F"}}]}"#;
        assert_eq!(
            parsing_canonical_form(json).unwrap(),
            concat!(
                r#"{"name":"a.b.Outer","type":"record","fields":["#,
                r#"{"name":"x","type":{"name":"a.b.Inner","type":"record","fields":["#,
                r#"{"name":"e","type":{"name":"c.E","type":"enum","symbols":["Q"]}}]}},"#,
                r#"{"name":"y","type":"a.b.Inner"},"#,
                r#"{"name":"z","type":{"type":"array","items":"c.E"}},"#,
                r#"{"name":"w","type":{"name":"F","type":"fixed","size":4}},"#,
                r#"{"name":"v","type":{"type":"map","values":"F"}}]}"#
            )
        );
    }

    #[test]
    fn strings_are_unescaped_utf8() {
        let json = r#"{"type":"enum","name":"E","symbols":["\u0041"],"doc":"\u00fc"}"#;
        assert_eq!(
            parsing_canonical_form(json).unwrap(),
            r#"{"name":"E","type":"enum","symbols":["A"]}"#
        );
    }

    #[test]
    fn invalid_schemas_are_errors_not_panics() {
        for (json, expected) in [
            ("{", "not JSON"),
            ("42", "not a schema"),
            (r#"{"name":"x"}"#, "no \"type\""),
            (r#"{"type":{"type":"int"}}"#, "must be a string"),
            (r#""Missing""#, "never defined"),
            (r#"{"type":"record","name":"R"}"#, "no \"fields\""),
            (
                r#"{"type":"record","name":"R","fields":[{"name":"a"}]}"#,
                "lacks",
            ),
            (r#"{"type":"enum","name":"E","symbols":[1]}"#, "not text"),
            (r#"{"type":"fixed","name":"F","size":"16"}"#, "integer"),
            (r#"{"type":"array"}"#, "items"),
            (r#"{"type":"map"}"#, "values"),
            (
                r#"[{"type":"enum","name":"E","symbols":[]},{"type":"enum","name":"E","symbols":[]}]"#,
                "defined twice",
            ),
            (r#"{"type":"fixed","name":"int","size":1}"#, "primitive"),
        ] {
            let err = parsing_canonical_form(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
