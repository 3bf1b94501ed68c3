//! placeholder, to be written.
