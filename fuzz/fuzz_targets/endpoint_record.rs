//! libFuzzer entry of `endpoint_record`: the input format and the properties checked are documented on
//! `hookrelay::fuzz::endpoint_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _verdict = hookrelay::fuzz::endpoint_record(data);
});
