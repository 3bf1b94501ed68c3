//! License events: model, decoding, validation, customer payloads.
