//! HTTP dispatch: the pooled client, outcome classification and the SSRF guard.
pub mod classify;
pub mod client;
pub mod ssrf;
