#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smimegw::fuzzing::inbound(data));
