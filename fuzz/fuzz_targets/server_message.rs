//! One WebSocket text frame from a server, through parsing, turn tracking and the output sinks.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::server_message(data));
