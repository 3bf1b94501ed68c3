//! The admin HTTP server: metrics, health, customer API.
