//! The end-to-end suite: the built `flux` binary (and the library's `flux serve`) over real
//! loopback sockets, in a real shell, terminal (tmux) and virtual ALSA microphone.
//!
//! One test binary for every suite: each would otherwise link the whole library again, which
//! is most of a clean build's time on CI's two cores. Run one suite with its module name:
//! `cargo test --test e2e client::`.

#[path = "../alsa/mod.rs"]
mod alsa;
#[path = "../common/mod.rs"]
mod common;
#[path = "../serve_support/mod.rs"]
mod serve_support;

mod assertions;
mod batch;
mod captions;
mod cli_fixes;
mod client;
mod completions;
mod doctor;
mod fireworks;
mod hostile;
mod live;
mod load;
#[cfg(feature = "local-asr")]
mod local_asr;
#[cfg(feature = "local-asr")]
mod local_provider;
mod mic;
mod output;
mod profiles;
mod providers;
mod resilience;
mod sagemaker;
mod security;
mod serve;
mod serve_edges;
mod serve_fixes;
mod serve_turns;
mod session_e2e;
mod signals;
mod tls;
mod tokens;
mod two_sides;
mod wav_input;
