//! libFuzzer entry of `config_load`: the input format and the properties checked are documented on
//! `hookrelay::fuzz::config_load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _verdict = hookrelay::fuzz::config_load(data);
});
