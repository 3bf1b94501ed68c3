//! libFuzzer entry of `event_record`: the input format and the properties checked are documented on
//! `hookrelay::fuzz::event_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _verdict = hookrelay::fuzz::event_record(data);
});
