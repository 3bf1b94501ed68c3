//! Input consumption and at-least-once offset bookkeeping.
pub mod book;
pub mod consumer;
pub mod offsets;
