//! Input consumption and at-least-once offset bookkeeping.
pub mod offsets;
