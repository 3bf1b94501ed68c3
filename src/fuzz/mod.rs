//! The properties the fuzz targets check, one function per target, shared by the cargo-fuzz
//! crate in `fuzz/` (libFuzzer, nightly) and the corpus replay test (stable), so a crash the
//! fuzzer finds and the regression file kept for it fail the same assertion.
//!
//! Each check takes the raw input bytes, splits them into the decoder's inputs as its target's
//! format below says, runs the decoder, and panics when something that must hold does not:
//! a decoded value re-validates, re-encoding round trips, errors and `Debug` output carry no
//! secret, the verifier accepts only what the secret signed. Panics, aborts and
//! sanitizer reports in the decoders themselves count as failures too. A check returns the
//! [`Verdict`] so the replay test can also hold the seed files to their names.
//!
//! | target | input |
//! |---|---|
//! | `event_record` | an input record value, any encoding |
//! | `event_avro` | selector byte (framing and writer version), then an Avro datum |
//! | `endpoint_record` | `key` NUL `value` of a `webhook-subscriptions` record (see [`endpoint_record`]) |
//! | `config_load` | a configuration file, then NUL and `NAME=value` lines (see [`config_load`]) |
//! | `signature_verify` | secret, id, timestamp, signature header, now, body (see [`signature_verify`]) |
//!
//! Compiled for the library's own tests and with the `fuzzing` feature (the fuzz crate's);
//! never part of the service.

mod config;
mod endpoint;
mod event;
#[cfg(test)]
mod replay;
#[cfg(test)]
mod seeds;
mod signature;

pub use config::config_load;
pub use endpoint::endpoint_record;
pub use event::{event_avro, event_record};
pub use signature::signature_verify;

/// What a checked input came to: the decoder accepted it, or refused it for a reason (a
/// short label without `-`, e.g. an [`InvalidRecord::reason`](crate::event::InvalidRecord::reason)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected(String),
}

impl Verdict {
    fn rejected(label: impl Into<String>) -> Self {
        Verdict::Rejected(label.into())
    }
}

/// One fuzz target: its name (the binary in `fuzz/fuzz_targets/` and the folder of its
/// corpus) and its check.
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]) -> Verdict,
}

/// Every target, for the replay test and for tools that walk the corpus.
pub const TARGETS: &[Target] = &[
    Target {
        name: "event_record",
        check: event_record,
    },
    Target {
        name: "event_avro",
        check: event_avro,
    },
    Target {
        name: "endpoint_record",
        check: endpoint_record,
    },
    Target {
        name: "config_load",
        check: config_load,
    },
    Target {
        name: "signature_verify",
        check: signature_verify,
    },
];

/// Splits at the first `sep`: before and after it, or the whole input and `None`.
fn split_once(data: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}
