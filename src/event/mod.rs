//! License events: model, decoding, validation, customer payloads.
//!
//! Input records arrive as Avro (single-object or Confluent-framed, schemas
//! `schemas/license_event.vN.avsc`) or as JSON of the same shape; [`EventDecoder`] detects
//! which per record, resolves old schema versions, and validates ([`LicenseEvent::validate`]
//! documents what each type needs). A record that fails becomes an [`InvalidRecord`] whose
//! [`reason`](InvalidRecord::reason) labels the metric and the invalid-records topic headers
//! ([`invalid_headers`]). [`customer_body`] is the one place an event becomes the JSON a
//! customer receives; [`batch_body`] wraps several.

mod body;
mod codec;
mod invalid;
mod mask;
mod model;
pub mod registry;
mod validate;
pub(crate) mod wire;

pub use body::{batch_body, customer_body, format_timestamp};
pub use codec::{
    CodecConfig, CodecError, EventDecoder, current_schema_name, encode_avro, encode_avro_v1,
    encode_confluent, encode_json,
};
pub use invalid::{
    HEADER_INVALID_DETAIL, HEADER_INVALID_REASON, HEADER_ORIGIN_OFFSET, HEADER_ORIGIN_PARTITION,
    HEADER_ORIGIN_TOPIC, InvalidRecord, invalid_headers,
};
pub use mask::{LICENSE_KEY_PREFIXES, mask_license_key};
pub use model::{Amount, EventData, EventType, LicenseEvent, UnknownEventType, sample};

/// The license event schema set, for tools and the evolution tests.
pub fn schema() -> &'static crate::records::avro::EmbeddedSchema {
    &wire::SCHEMA
}
