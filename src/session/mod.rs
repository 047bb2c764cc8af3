//! One logical stream: connect, wait for `Connected`, send paced frames, and end cleanly.
//!
//! The run loop (`run.rs`) only wires plain parts, each with its own tests: `pacer` (when a
//! frame is due; when each one really went), `frames` (the send queue), `replay` (the open
//! turn's audio), `reconnect` (backoff and budget), `configure` (the Configure queue) and
//! `timeline` (times and turn indices across connections). The handlers live by job in
//! `link.rs`, `incoming.rs`, `sending.rs` and `ending.rs`. The session talks to the server
//! through a [`crate::transport::Transport`] and never names the library underneath.
//!
//! Ending is where a naive client loses the last turn: Flux's `CloseStream` does not finalize
//! the open turn. So at end of input the session sends `ForceEndTurn` and waits for its
//! `EndOfTurn` (or a `Warning` that no turn was open) before `CloseStream`; on servers without
//! ForceEndTurn it sends silence until the turn ends on its own. If the server still closes
//! with a turn open, that turn's latest transcript is reported as unconfirmed.

mod configure;
pub mod connect;
mod ending;
pub mod feed;
mod frames;
mod incoming;
pub mod latency;
mod link;
mod pacer;
mod reconnect;
mod replay;
mod run;
mod sending;
pub mod tap;
#[cfg(test)]
mod tests;
mod timeline;
pub mod turns;

pub use crate::event::{ClientEvent, Event, Summary, Totals};
pub use feed::Feed;

/// Requests to a running session, from people (keys, Ctrl-C) or automation.
#[derive(Clone, PartialEq)]
pub enum Control {
    /// Stop taking input and finish the stream as at end of input (first Ctrl-C, `q`).
    Finish,
    /// End the current turn now (`ForceEndTurn`), where the server supports it.
    ForceEndTurn,
    /// Change thresholds, keyterms, language hints or numerals mid-stream. Sent one at a
    /// time: the next waits for the previous one's ConfigureSuccess or ConfigureFailure.
    Configure(Configure),
    /// Clear the recognizer's context (where the server can), with an id its answer carries.
    ClearState(Option<String>),
    /// Apply the inner request once this much audio (seconds) has been sent: timed changes
    /// that land at the same point of the audio whatever the pace.
    At(f64, Box<Control>),
}

/// Written in the words of `--control` (Flux's own messages: `CloseStream`, not `Finish`),
/// because warnings quote a request that could not be applied to the user who wrote it.
impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Control::Finish => f.write_str("CloseStream"),
            Control::ForceEndTurn => f.write_str("ForceEndTurn"),
            Control::Configure(c) => write!(
                f,
                "Configure {}",
                serde_json::to_string(c).unwrap_or_default()
            ),
            Control::ClearState(_) => f.write_str("ClearState"),
            Control::At(at, inner) => write!(f, "{inner:?} (at {at}s)"),
        }
    }
}

use crate::audio::AudioError;
use crate::error::FluxError;
use crate::event::Sink;
use crate::protocol::Configure;
use crate::provider::Endpoint;
use crate::transport::Transport;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the session needs besides its audio.
pub struct SessionOptions {
    pub endpoint: Endpoint,
    pub model: String,
    pub sample_rate: u32,
    /// Bytes of one frame of `chunk_ms` audio, for silence frames.
    pub frame_bytes: usize,
    /// Effective eot_timeout_ms: bounds the silence sent to end a turn without ForceEndTurn.
    pub eot_timeout_ms: u32,
    /// Effective eot_threshold at the start (live keys step it with Configure).
    pub eot_threshold: f64,
    /// Real-time factor (1.0 = real time); `None` sends as fast as the socket takes it.
    /// When paced, a source that stalls (a pause on stdin) is covered with silence so the
    /// server's turn timers keep running.
    pub pace: Option<f64>,
    /// The source produces audio as it happens (raw PCM or WAV on stdin): pacing then
    /// follows the source's own clock, so audio captured while connecting is not held back.
    pub live_source: bool,
    pub connect_timeout: Duration,
    /// Reconnects allowed after unexpected drops (the count resets after a minute of audio
    /// on a healthy connection); 0 disables reconnecting.
    pub max_reconnects: u32,
    /// Reconnect when audio is flowing but the server has said nothing for this long.
    pub stall_timeout: Duration,
}

/// How a session ended. The session never returns early without one: whatever was received
/// has been passed to the sink before this is returned.
#[derive(Debug, Default)]
pub struct Outcome {
    pub request_id: Option<String>,
    pub totals: Totals,
    /// The input stopped on bad audio (after everything good was sent).
    pub input_error: Option<AudioError>,
    /// The session failed (connection, server error); decides the exit code.
    pub error: Option<FluxError>,
    /// stdout was closed by the reader (e.g. `| head -1`): end quietly.
    pub output_closed: bool,
    /// How late each frame went after it was due (ready, and due by the pacing), whole:
    /// `totals.added_latency.send` summarises it; `flux load` merges its streams' histograms.
    pub send_latency: Option<latency::Histogram>,
}

/// Runs one session over its endpoint's transport to its end, taking [`Control`] requests while it runs.
/// Never returns early: whatever was received has been passed to `sink` when this returns.
/// `tap` receives a copy of every frame sent (`--save-audio`).
pub async fn run(
    opts: &SessionOptions,
    feed: mpsc::Receiver<Feed>,
    sink: &mut dyn Sink,
    controls: mpsc::Receiver<Control>,
    tap: Option<Box<dyn tap::Tap>>,
) -> Outcome {
    let transport = opts.endpoint.transport();
    run_over(transport, opts, feed, sink, controls, tap).await
}

/// [`run`] over any transport (the in-memory pipe in tests).
pub async fn run_over(
    transport: Arc<dyn Transport>,
    opts: &SessionOptions,
    feed: mpsc::Receiver<Feed>,
    sink: &mut dyn Sink,
    controls: mpsc::Receiver<Control>,
    tap: Option<Box<dyn tap::Tap>>,
) -> Outcome {
    // A provider whose messages are not Flux's speaks through its adapter.
    let transport = match opts.endpoint.adapter {
        Some(adapter) => (adapter.0)(transport),
        None => transport,
    };
    run::run(opts, transport, feed, sink, controls, tap).await
}
