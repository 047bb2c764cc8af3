//! A WAV file or stream of arbitrary bytes, read and conditioned as `flux file` does.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::wav(data));
