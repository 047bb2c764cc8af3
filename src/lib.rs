//! flux: stream audio to Deepgram Flux (or a compatible server) and get conversational turns back.
//!
//! The binary is a thin shell over this library so that tests can reach every layer.
//! Data flows one way: `audio` (sources, conditioning) → `session` (one logical stream over
//! WebSocket) → `output` (sinks). `protocol` holds the wire protocol shared by the client and the
//! local emulator in `serve`; `provider` holds per-endpoint dialects.

pub mod app;
pub mod assertions;
pub mod audio;
pub mod cli;
pub mod completions;
pub mod error;
pub mod event;
pub mod output;
pub mod protocol;
pub mod provider;
pub mod serve;
pub mod session;
pub mod transport;
