//! libFuzzer entry of `signature_verify`: the input format and the properties checked are documented on
//! `hookrelay::fuzz::signature_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _verdict = hookrelay::fuzz::signature_verify(data);
});
