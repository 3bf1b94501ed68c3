//! Records hookrelay writes to Kafka: retry/dead-letter envelopes, attempts, notifications,
//! customer API keys.
//!
//! Every record is Avro single-object encoded with a versioned schema from `schemas/`
//! (embedded in the binary), so other consumers can read them with any Avro library and
//! older records stay readable after a schema change.

pub mod api_key;
pub mod attempt;
pub mod avro;
pub mod canonical;
pub mod catalog;
pub mod envelope;
#[cfg(test)]
mod evolution;
pub mod notification;

pub use api_key::ApiKey;
pub use attempt::{AttemptLine, AttemptRecord, Strings};
pub use envelope::{AttemptSummary, DeliveryEnvelope};
pub use notification::{ENDPOINT_DISABLED, EndpointNotification};

pub use avro::{Fingerprint, ReleasedVersion, VersionedSchema};

pub use catalog::{ShippedSchemaError, render_schemas, shipped_schemas};
