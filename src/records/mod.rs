//! Records hookrelay writes to Kafka: retry/dead-letter envelopes, attempts, notifications.
