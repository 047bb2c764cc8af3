//! The session's event loop: one connection, from the upgrade to the server's close.
//!
//! Four things can happen at any moment — a server message, a control request, a frame from
//! the audio thread, a timer — and each has one handler on [`Run`]. The phase says what the
//! session is waiting for; handlers move it forward.

use super::connect::{self, Connection, Ws, sanitize};
use super::tap::{Tap, TapThread};
use super::turns::TurnTracker;
use super::{ClientEvent, Control, Event, Feed, Outcome, SessionOptions};
use crate::error::FluxError;
use crate::flux::{ClientMessage, Configure, Notice, Received, ServerMessage, Trigger, TurnEvent};
use crate::output::Sink;
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::io;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// How long to wait for the server's `Connected` message after the upgrade.
const CONNECTED_TIMEOUT: Duration = Duration::from_secs(10);
/// While finishing, how long the server may stay silent before flux moves on.
const FINISH_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra silence beyond eot_timeout_ms when ending a turn without ForceEndTurn.
const PADDING_MARGIN_SECS: f64 = 0.5;

type WsSink = SplitSink<Ws, Message>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Upgraded; waiting for the server's `Connected`.
    AwaitConnected,
    /// Sending input frames.
    Streaming,
    /// `ForceEndTurn` sent; waiting for its EndOfTurn or Warning.
    AwaitForceEnd,
    /// No ForceEndTurn: sending silence until the open turn ends.
    Padding,
    /// `CloseStream` sent; reading until the server closes.
    Closing,
}

/// Whether the loop goes on.
#[derive(Debug, PartialEq)]
enum Flow {
    Continue,
    Stop,
}

/// A frame waiting for its time to be sent: its bytes and audio span (seconds).
struct Pending {
    data: Bytes,
    end: f64,
    start: f64,
}

struct Run<'a> {
    opts: &'a SessionOptions,
    sink: &'a mut dyn Sink,
    tx: WsSink,
    turns: TurnTracker,
    outcome: Outcome,
    fatal: Option<Notice>,
    phase: Phase,
    /// When the current phase gives up waiting (AwaitConnected, AwaitForceEnd, Closing).
    deadline: Instant,
    /// Set once a send failed: the socket is gone, only its close remains to be read.
    send_failed: bool,
    /// `CloseStream` went out: a close without status from now on is success.
    close_sent: bool,
    input_open: bool,
    pending: Option<Pending>,
    /// Wall-clock instant of audio time 0, for pacing.
    pace_origin: Instant,
    /// Audio time already sent (seconds), including padding silence.
    sent_until: f64,
    padding_sent: f64,
    silence: Bytes,
    /// Configure requests wait here while one is in flight (Flux caps un-acked Configures).
    configures: VecDeque<Configure>,
    configure_in_flight: bool,
    /// The ForceEndTurn sent at end of input has been answered; CloseStream waits only for
    /// queued Configures.
    force_end_answered: bool,
    /// Requests to apply at an audio time, in arrival order.
    timed: Vec<(f64, Control)>,
    /// `--save-audio`: a copy of every frame sent.
    tap: Option<TapThread>,
}

pub(super) async fn run(
    opts: &SessionOptions,
    mut feed: mpsc::Receiver<Feed>,
    sink: &mut dyn Sink,
    mut controls: mpsc::Receiver<Control>,
    tap: Option<Box<dyn Tap>>,
) -> Outcome {
    let tap = match tap.map(TapThread::start).transpose() {
        Ok(t) => t,
        Err(e) => {
            return Outcome {
                error: Some(FluxError::Usage(format!("cannot start --save-audio: {e}"))),
                ..Outcome::default()
            };
        }
    };
    let Connection { ws, request_id } =
        match connect::connect(&opts.endpoint, opts.connect_timeout).await {
            Ok(c) => c,
            Err(e) => {
                return Outcome {
                    error: Some(e),
                    ..Outcome::default()
                };
            }
        };
    let (tx, mut rx) = ws.split();
    let mut run = Run {
        opts,
        sink,
        tx,
        turns: TurnTracker::default(),
        outcome: Outcome {
            request_id: request_id.clone(),
            ..Outcome::default()
        },
        fatal: None,
        phase: Phase::AwaitConnected,
        deadline: Instant::now() + CONNECTED_TIMEOUT,
        send_failed: false,
        close_sent: false,
        input_open: true,
        pending: None,
        pace_origin: Instant::now(),
        sent_until: 0.0,
        padding_sent: 0.0,
        silence: Bytes::from(vec![0u8; opts.frame_bytes]),
        configures: VecDeque::new(),
        configure_in_flight: false,
        force_end_answered: false,
        timed: Vec::new(),
        tap,
    };
    run.emit(Event::Client(ClientEvent::Connected {
        provider: opts.endpoint.provider.to_string(),
        url: opts.endpoint.url.to_string(),
        request_id,
        model: opts.model.clone(),
        encoding: "linear16".into(),
        sample_rate: opts.sample_rate,
    }));
    if !opts.endpoint.capabilities.sends_connected {
        run.start_streaming();
    }

    let mut controls_open = true;
    loop {
        if run.phase == Phase::Padding && run.pending.is_none() {
            run.queue_silence();
        }
        let due = run.due();
        let sending =
            run.pending.is_some() && matches!(run.phase, Phase::Streaming | Phase::Padding);
        let waiting = matches!(
            run.phase,
            Phase::AwaitConnected | Phase::AwaitForceEnd | Phase::Closing
        );
        let wants_frame = run.phase == Phase::Streaming && run.input_open && run.pending.is_none();
        let flow = tokio::select! {
            biased;
            incoming = rx.next() => run.on_incoming(incoming).await,
            control = controls.recv(), if controls_open => match control {
                Some(c) => run.on_control(c).await,
                None => {
                    controls_open = false;
                    Flow::Continue
                }
            },
            item = feed.recv(), if wants_frame => run.on_feed(item).await,
            _ = sleep_until(due), if sending => run.send_pending().await,
            _ = sleep_until(run.deadline), if waiting => run.on_deadline().await,
        };
        if flow == Flow::Stop {
            break;
        }
    }
    run.outcome.audio_seconds = run.sent_until;
    run.outcome.turns = run.turns.finished();
    if let Some(tap) = run.tap.take()
        && let Err(e) = tap.finish()
    {
        run.warn(
            "save_audio_failed",
            format!("could not write the --save-audio file ({e}); the saved audio is incomplete"),
        );
    }
    run.outcome
}

impl Run<'_> {
    fn emit(&mut self, event: Event) {
        if self.outcome.output_closed {
            return;
        }
        if let Err(e) = self.sink.event(&event) {
            self.outcome.output_closed = true;
            if e.kind() != io::ErrorKind::BrokenPipe {
                eprintln!("flux: error: cannot write output: {e}");
            }
        }
    }

    fn warn(&mut self, code: &str, message: String) {
        self.emit(Event::Client(ClientEvent::Warning {
            code: code.to_string(),
            message,
        }));
    }

    fn start_streaming(&mut self) {
        self.phase = Phase::Streaming;
        self.pace_origin = Instant::now();
    }

    /// When the pending frame may go: at its audio time divided by the pace.
    fn due(&self) -> Instant {
        match (&self.pending, self.opts.pace) {
            (Some(p), Some(factor)) => self.pace_origin + Duration::from_secs_f64(p.start / factor),
            _ => Instant::now(),
        }
    }

    fn queue_silence(&mut self) {
        let secs = self.silence.len() as f64 / 2.0 / self.opts.sample_rate as f64;
        self.pending = Some(Pending {
            data: self.silence.clone(),
            start: self.sent_until,
            end: self.sent_until + secs,
        });
    }

    async fn send(&mut self, message: Message) {
        if !self.send_failed && self.tx.send(message).await.is_err() {
            // The socket is gone; reading its end tells why. Don't wait long for it.
            self.send_failed = true;
            self.phase = Phase::Closing;
            self.deadline = Instant::now() + Duration::from_secs(2);
        }
    }

    async fn send_control(&mut self, message: ClientMessage) {
        self.send(Message::Text(message.to_json().into())).await;
    }

    // ---- server messages -------------------------------------------------------------

    async fn on_incoming(&mut self, incoming: Option<Result<Message, tungstenite::Error>>) -> Flow {
        match incoming {
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|f| (Some(f.code), f.reason.to_string()))
                    .unwrap_or((None, String::new()));
                self.conclude(code, &reason);
                Flow::Stop
            }
            Some(Ok(Message::Binary(_))) => {
                self.warn(
                    "unexpected_binary_message",
                    "the server sent a binary message; Flux sends only JSON text, so it was skipped"
                        .into(),
                );
                Flow::Continue
            }
            // Pings are answered by tungstenite itself.
            Some(Ok(_)) => Flow::Continue,
            Some(Err(e)) => {
                self.conclude_lost(&e.to_string());
                Flow::Stop
            }
            None => {
                self.conclude(None, "");
                Flow::Stop
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let received = match ServerMessage::parse(text) {
            Ok(r) => r,
            Err(e) => {
                self.warn(
                    "unparsable_server_message",
                    format!("{e}; the message was skipped: {}", sanitize(text, 200)),
                );
                return Flow::Continue;
            }
        };
        let is_connected = matches!(received.message, ServerMessage::Connected(_));
        let answers_force_end = answers_force_end(&received.message);
        let end_of_turn = matches!(&received.message,
            ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn);
        let configure_answer = matches!(
            received.message,
            ServerMessage::ConfigureSuccess(_) | ServerMessage::ConfigureFailure(_)
        );
        self.on_server(received);

        if configure_answer {
            self.configure_in_flight = false;
        }
        self.send_next_configure().await;
        match self.phase {
            Phase::AwaitConnected if is_connected => self.start_streaming(),
            Phase::AwaitForceEnd if answers_force_end || self.force_end_answered => {
                self.force_end_answered = true;
                if self.configures_settled() {
                    self.close_stream().await;
                } else {
                    self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
                }
            }
            Phase::AwaitForceEnd | Phase::Closing => {
                self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
            }
            Phase::Padding if end_of_turn && !self.turns.is_open() => {
                self.pending = None;
                self.close_stream().await;
            }
            _ => {}
        }
        if self.outcome.output_closed && self.input_open {
            // The reader went away: stop sending and leave quietly.
            self.input_open = false;
            self.pending = None;
            self.begin_ending("output_closed").await;
        }
        Flow::Continue
    }

    fn on_server(&mut self, received: Received) {
        match &received.message {
            ServerMessage::TurnInfo(t) => self.turns.observe(t),
            ServerMessage::Error(n) => self.fatal = Some(n.clone()),
            _ => {}
        }
        self.emit(Event::Server(received));
    }

    // ---- control requests ------------------------------------------------------------

    async fn on_control(&mut self, control: Control) -> Flow {
        match control {
            Control::At(at, inner) if at > self.sent_until => {
                self.timed.push((at, *inner));
                Flow::Continue
            }
            Control::At(_, inner) => self.apply_control(*inner).await,
            other => self.apply_control(other).await,
        }
    }

    async fn apply_control(&mut self, control: Control) -> Flow {
        match control {
            Control::Finish if self.input_open => {
                self.input_open = false;
                match self.phase {
                    Phase::Streaming => {
                        // The user asked to stop now: frames not yet sent are dropped, and the
                        // turn in progress is finished as at end of input.
                        self.pending = None;
                        self.begin_ending("interrupted").await;
                    }
                    Phase::AwaitConnected => {
                        let _ = self.tx.close().await;
                        return Flow::Stop;
                    }
                    _ => {}
                }
            }
            Control::Finish => {}
            Control::ForceEndTurn => {
                if !self.opts.endpoint.capabilities.force_end_turn {
                    self.warn(
                        "force_end_turn_unsupported",
                        format!(
                            "{} does not support ForceEndTurn; the turn ends when the speaker stops",
                            self.opts.endpoint.provider
                        ),
                    );
                } else if self.phase == Phase::Streaming {
                    self.send_control(ClientMessage::ForceEndTurn).await;
                }
            }
            Control::Configure(c) => {
                if !self.opts.endpoint.capabilities.configure {
                    self.warn(
                        "configure_unsupported",
                        format!(
                            "{} does not support Configure; reconnect with new flags instead",
                            self.opts.endpoint.provider
                        ),
                    );
                } else {
                    self.configures.push_back(c);
                    self.send_next_configure().await;
                }
            }
            Control::At(at, inner) => self.timed.push((at, *inner)),
        }
        Flow::Continue
    }

    /// Sends the next queued Configure if none is awaiting its answer. Queued requests still
    /// go out while the stream is ending (before CloseStream), so none is silently dropped.
    async fn send_next_configure(&mut self) {
        let open = matches!(
            self.phase,
            Phase::Streaming | Phase::AwaitForceEnd | Phase::Padding
        );
        if self.configure_in_flight || !open {
            return;
        }
        if let Some(c) = self.configures.pop_front() {
            self.configure_in_flight = true;
            self.send_control(ClientMessage::Configure(c)).await;
        }
    }

    /// Every Configure sent has been answered and none is queued.
    fn configures_settled(&self) -> bool {
        !self.configure_in_flight && self.configures.is_empty()
    }

    /// Applies timed requests whose audio time has been reached.
    async fn release_timed(&mut self) {
        while let Some(i) = self.timed.iter().position(|(at, _)| *at <= self.sent_until) {
            let (_, control) = self.timed.remove(i);
            if self.apply_control(control).await == Flow::Stop {
                return;
            }
        }
    }

    // ---- audio -----------------------------------------------------------------------

    async fn on_feed(&mut self, item: Option<Feed>) -> Flow {
        match item {
            Some(Feed::Frame(frame)) => {
                self.outcome.input_seconds = frame.end_secs();
                self.pending = Some(Pending {
                    start: frame.start_secs(),
                    end: frame.end_secs(),
                    data: frame.data,
                });
            }
            Some(Feed::End { error, note }) => {
                self.input_open = false;
                if let Some(note) = note {
                    self.warn("input_note", note);
                }
                let reason = if error.is_some() {
                    "input_error"
                } else {
                    "end_of_input"
                };
                self.outcome.input_error = error;
                self.begin_ending(reason).await;
            }
            None => {
                self.input_open = false;
                self.begin_ending("end_of_input").await;
            }
        }
        Flow::Continue
    }

    async fn send_pending(&mut self) -> Flow {
        let Some(frame) = self.pending.take() else {
            return Flow::Continue;
        };
        let bytes = frame.data.len() as u64;
        // A clone shares the bytes: the saved copy costs no allocation.
        self.send(Message::Binary(frame.data.clone())).await;
        if self.send_failed {
            return Flow::Continue;
        }
        if let Some(tap) = &self.tap {
            tap.frame(&frame.data);
        }
        if self.phase == Phase::Padding {
            self.padding_sent += frame.end - self.sent_until;
        }
        self.sent_until = frame.end;
        self.outcome.frames_sent += 1;
        self.outcome.bytes_sent += bytes;
        self.release_timed().await;
        if self.phase == Phase::Padding && self.padding_done() && self.configures_settled() {
            self.close_stream().await;
        }
        Flow::Continue
    }

    // ---- ending ----------------------------------------------------------------------

    /// No more input: finish the open turn the best way the server allows.
    async fn begin_ending(&mut self, reason: &str) {
        for (at, control) in std::mem::take(&mut self.timed) {
            self.warn(
                "control_not_applied",
                format!(
                    "{control:?} was due at {at}s of audio, but the audio ended at {:.2}s",
                    self.sent_until
                ),
            );
        }
        self.emit(Event::Client(ClientEvent::AudioFinished {
            reason: reason.to_string(),
            audio_seconds: self.sent_until,
            frames: self.outcome.frames_sent,
            bytes: self.outcome.bytes_sent,
        }));
        if self.outcome.output_closed {
            self.close_stream().await;
        } else if self.opts.endpoint.capabilities.force_end_turn {
            self.send_control(ClientMessage::ForceEndTurn).await;
            if !self.send_failed {
                self.phase = Phase::AwaitForceEnd;
                self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
            }
        } else {
            self.phase = Phase::Padding;
            if self.padding_done() && self.configures_settled() {
                self.close_stream().await;
            }
        }
    }

    /// Padding ends when the server has heard all audio and no turn is open, or when enough
    /// silence has gone for eot_timeout_ms to end any turn.
    fn padding_done(&self) -> bool {
        let limit = self.opts.eot_timeout_ms as f64 / 1000.0 + PADDING_MARGIN_SECS;
        let caught_up = self.turns.heard_until() + 0.3 >= self.sent_until - self.padding_sent;
        (!self.turns.is_open() && caught_up) || self.padding_sent >= limit
    }

    async fn close_stream(&mut self) {
        self.send_control(ClientMessage::CloseStream).await;
        self.close_sent = !self.send_failed;
        self.phase = Phase::Closing;
        self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
    }

    async fn on_deadline(&mut self) -> Flow {
        match self.phase {
            Phase::AwaitConnected => {
                self.outcome.error = Some(FluxError::Connection(format!(
                    "the server accepted the connection but sent no Connected message within {}s",
                    CONNECTED_TIMEOUT.as_secs()
                )));
                let _ = self.tx.close().await;
                Flow::Stop
            }
            Phase::AwaitForceEnd => {
                self.warn(
                    "force_end_turn_unanswered",
                    format!(
                        "no reply to ForceEndTurn within {}s; closing the stream",
                        FINISH_IDLE_TIMEOUT.as_secs()
                    ),
                );
                self.close_stream().await;
                Flow::Continue
            }
            _ => {
                if !self.send_failed {
                    self.warn(
                        "close_unanswered",
                        format!(
                            "the server did not close the stream within {}s of CloseStream; closing it",
                            FINISH_IDLE_TIMEOUT.as_secs()
                        ),
                    );
                }
                let _ = self.tx.close().await;
                self.conclude(None, "");
                Flow::Stop
            }
        }
    }

    fn finish_unconfirmed(&mut self, reason: &str) {
        if let Some(t) = self.turns.take_unconfirmed() {
            self.outcome.unconfirmed_turns += 1;
            self.emit(Event::Client(ClientEvent::UnconfirmedTurn {
                turn_index: t.turn_index,
                transcript: t.transcript,
                audio_window_start: t.audio_window_start,
                audio_window_end: t.audio_window_end,
                words: t.words,
                confirmed: false,
                reason: reason.to_string(),
            }));
        }
    }

    /// The server closed the socket (with a close frame, or just EOF).
    fn conclude(&mut self, code: Option<CloseCode>, reason: &str) {
        if let Some(fatal) = self.fatal.clone() {
            self.finish_unconfirmed("server_error");
            self.outcome.error = Some(FluxError::Server(format!(
                "the server ended the stream with an error: {}{}",
                sanitize(&fatal.summary(), 300),
                self.request_suffix()
            )));
            return;
        }
        let clean = matches!(
            code,
            None | Some(CloseCode::Normal) | Some(CloseCode::Status)
        );
        if self.close_sent && clean {
            // Flux closes without a status code after CloseStream: that is success.
            self.finish_unconfirmed("stream_closed");
            return;
        }
        self.finish_unconfirmed("connection_lost");
        let how = match code {
            Some(c) => format!("with code {}{}", u16::from(c), reason_suffix(reason)),
            None => "without a close code".to_string(),
        };
        self.outcome.error = Some(FluxError::Connection(format!(
            "the server closed the connection unexpectedly {how} after {:.2}s of audio{}",
            self.sent_until,
            self.request_suffix()
        )));
    }

    fn conclude_lost(&mut self, detail: &str) {
        if self.fatal.is_some() || self.close_sent {
            return self.conclude(None, "");
        }
        self.finish_unconfirmed("connection_lost");
        self.outcome.error = Some(FluxError::Connection(format!(
            "lost the connection after {:.2}s of audio: {}{}",
            self.sent_until,
            sanitize(detail, 200),
            self.request_suffix()
        )));
    }

    fn request_suffix(&self) -> String {
        match &self.outcome.request_id {
            Some(id) => format!(" (request id {id})"),
            None => String::new(),
        }
    }
}

/// Does this message answer the ForceEndTurn flux sent?
fn answers_force_end(message: &ServerMessage) -> bool {
    match message {
        // Servers before August 2026 send no trigger at all.
        ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn => {
            matches!(t.trigger, None | Some(Trigger::Manual))
        }
        ServerMessage::Warning(_) => true,
        _ => false,
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", sanitize(reason, 200))
    }
}
