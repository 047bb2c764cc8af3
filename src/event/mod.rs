//! Events are data: what sinks and assertions see (every server message, plus the client's own
//! session events), the session's totals and summary, the assertions' report as a record, and
//! the `Sink` trait. The session produces events; `output` and `assertions` consume them. None
//! of those three imports another: they meet here.

mod assertions;
mod latency;

pub use assertions::{Check, Diff, Report, TurnLatency};
pub use latency::{AddedLatency, LatencySummary};

use crate::protocol::{Received, Word};
use serde::Serialize;
use std::io;

/// Where events go: a renderer (live view, text, JSONL, captions, progress, status) or a
/// recorder (assertions). A sink only renders what it is given; it never drives the session.
/// An error (a closed stdout is `BrokenPipe`) tells the caller to stop writing output.
///
/// Batches: the session hands over everything one socket read delivered between
/// [`Sink::begin_batch`] and [`Sink::end_batch`], and the output thread writes a batch the
/// same way, so a sink may hold its lines (or its wake-up of another thread) until the batch
/// ends and pass them on at once: one `write` and one wake-up per batch instead of per event.
/// A sink that is never told of a batch must behave as before (each event passed on at once),
/// so a wrapper that does not forward the batch calls loses nothing, only the saving.
pub trait Sink: Send {
    fn event(&mut self, event: &Event) -> io::Result<()>;

    /// [`Sink::event`] for an event the caller no longer needs: a sink that keeps events (a
    /// queue to another thread) takes it without a copy.
    fn take(&mut self, event: Event) -> io::Result<()> {
        self.event(&event)
    }

    /// Events until [`Sink::end_batch`] belong together: they may be held back until then.
    fn begin_batch(&mut self) {}

    /// The batch is over: pass on (write and flush, hand over) everything held back.
    fn end_batch(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One thing that happened in a session, in order.
// Events are built once and handed to sinks by reference, never stored in bulk: boxing the
// larger variant would only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Event {
    /// A message from the server, typed, with its JSON as received.
    Server(Received),
    /// Something the client did or concluded.
    Client(ClientEvent),
}

/// The client's own events. In JSONL their `type` starts with `flux.`, so they can never be
/// mistaken for a server message (whose types are CamelCase, e.g. `TurnInfo`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum ClientEvent {
    /// The WebSocket upgrade succeeded.
    #[serde(rename = "flux.connected")]
    Connected {
        provider: String,
        /// The URL with its query, never with credentials.
        url: String,
        /// From the `dg-request-id` response header, where the server sent one.
        request_id: Option<String>,
        model: String,
        encoding: String,
        sample_rate: u32,
    },
    /// No more input audio: the stream is being finished.
    #[serde(rename = "flux.audio_finished")]
    AudioFinished {
        /// `end_of_input`, `interrupted`, `input_error` or `output_closed`.
        reason: String,
        audio_seconds: f64,
        frames: u64,
        bytes: u64,
    },
    /// The stream closed while a turn was open: its last transcript, not confirmed by an
    /// EndOfTurn.
    #[serde(rename = "flux.unconfirmed_turn")]
    UnconfirmedTurn {
        turn_index: u64,
        transcript: String,
        audio_window_start: f64,
        audio_window_end: f64,
        words: Vec<Word>,
        confirmed: bool,
        /// `stream_closed`, `connection_lost` or `server_error`.
        reason: String,
    },
    /// The connection was lost (or stalled); flux will reconnect after `delay_ms`. Or,
    /// `planned`, the transport gave it up on purpose (SageMaker's 30-minute cap): the next
    /// connection is opened at once and `attempt` is not advanced.
    #[serde(rename = "flux.reconnecting")]
    Reconnecting {
        attempt: u32,
        max_attempts: u32,
        delay_ms: u64,
        reason: String,
        /// Audio sent so far (seconds of the whole stream).
        audio_seconds: f64,
        planned: bool,
    },
    /// A new connection is up. The open turn's audio is sent again from `resume_from`, and
    /// the new connection's times and turn indices are shifted to continue the stream's.
    #[serde(rename = "flux.reconnected")]
    Reconnected {
        attempt: u32,
        request_id: Option<String>,
        /// Stream time (seconds) where the new connection's audio starts.
        resume_from: f64,
        /// Audio sent again because its turn had not ended, in seconds.
        replayed_seconds: f64,
        /// Added to the new connection's `turn_index` values.
        turn_offset: u64,
    },
    /// An EndOfTurn arrived: how long after the frame holding its `audio_window_end` was
    /// handed to the transport (the session's own record of when each frame went).
    #[serde(rename = "flux.eot_latency")]
    EotLatency(TurnLatency),
    /// A non-fatal problem on the client side (e.g. a server message that is not JSON).
    #[serde(rename = "flux.warning")]
    Warning { code: String, message: String },
    /// The results of `flux file`'s CI assertions, just before the summary.
    #[serde(rename = "flux.assertions")]
    Assertions(Box<Report>),
    /// The last line of every session.
    #[serde(rename = "flux.summary")]
    Summary(Box<Summary>),
}

/// What a session sent and got; kept by the session as it runs and reported in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Totals {
    /// Audio sent to the server, in seconds (including any silence flux added to end a turn
    /// or to cover a stalled input).
    pub audio_seconds: f64,
    /// Duration of the input audio after conditioning, in seconds.
    pub input_seconds: f64,
    pub frames_sent: u64,
    pub bytes_sent: u64,
    /// Turns finished by EndOfTurn.
    pub turns: u64,
    /// Turns reported without an EndOfTurn (see flux.unconfirmed_turn).
    pub unconfirmed_turns: u64,
    /// Successful reconnects.
    pub reconnects: u32,
    /// Silence sent while the input stalled, in seconds.
    pub filled_seconds: f64,
    /// What flux added to the audio's and the answers' way (p50, p99, max).
    #[serde(skip_serializing_if = "AddedLatency::is_empty")]
    pub added_latency: AddedLatency,
}

impl Totals {
    /// Seconds rounded to the millisecond, for people and JSONL.
    pub fn rounded(mut self) -> Totals {
        let ms = |x: f64| (x * 1000.0).round() / 1000.0;
        self.audio_seconds = ms(self.audio_seconds);
        self.input_seconds = ms(self.input_seconds);
        self.filled_seconds = ms(self.filled_seconds);
        self
    }
}

/// Totals for a finished session: the last JSONL line.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Summary {
    pub request_id: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
    pub wall_seconds: f64,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
