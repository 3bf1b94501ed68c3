//! At-least-once offset bookkeeping, below every stage that settles work: the pure
//! per-partition [`tracker`], the commit [`metadata`] codec, and the [`book`] of assigned
//! partitions whose [`Settle`] handles deliveries carry.
pub mod book;
pub mod metadata;
pub mod tracker;

pub use book::{Admit, CommitPoint, Lease, OffsetBook, Settle, TopicPartition};
