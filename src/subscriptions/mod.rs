//! The subscriptions table and the fan-out join.
