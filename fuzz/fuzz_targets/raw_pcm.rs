//! Raw PCM with an arbitrary declared format, read and conditioned as `flux listen --stdin` does.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::raw_pcm(data));
