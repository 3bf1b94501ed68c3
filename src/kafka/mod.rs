//! Kafka client helpers and topic administration.
