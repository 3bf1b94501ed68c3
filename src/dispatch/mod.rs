//! HTTP dispatch: outcome classification and the SSRF guard.
pub mod classify;
pub mod ssrf;
