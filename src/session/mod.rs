//! One logical stream: connect, wait for `Connected`, send paced frames, and end cleanly.
//!
//! Ending is where a naive client loses the last turn: Flux's `CloseStream` does not finalize
//! the open turn. So at end of input the session sends `ForceEndTurn` and waits for its
//! `EndOfTurn` (or a `Warning` that no turn was open) before `CloseStream`; on servers without
//! ForceEndTurn it sends silence until the turn ends on its own. If the server still closes
//! with a turn open, that turn's latest transcript is reported as unconfirmed.

pub mod connect;
pub mod event;
pub mod feed;
pub mod turns;

pub use event::{ClientEvent, Event, Summary};
pub use feed::Feed;

/// Requests to a running session, from people (keys, Ctrl-C) or automation.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Stop taking input and finish the stream as at end of input (first Ctrl-C, `q`).
    Finish,
    /// End the current turn now (`ForceEndTurn`), where the server supports it.
    ForceEndTurn,
    /// Change thresholds, keyterms, language hints or numerals mid-stream. Sent one at a
    /// time: the next waits for the previous one's ConfigureSuccess or ConfigureFailure.
    Configure(Configure),
}

use crate::audio::AudioError;
use crate::error::FluxError;
use crate::flux::{ClientMessage, Configure, Notice, Received, ServerMessage, Trigger, TurnEvent};
use crate::output::Sink;
use crate::provider::Endpoint;
use bytes::Bytes;
use connect::{Connection, sanitize};
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::io;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use turns::TurnTracker;

/// How long to wait for the server's `Connected` message after the upgrade.
const CONNECTED_TIMEOUT: Duration = Duration::from_secs(10);
/// While finishing, how long the server may stay silent before flux moves on.
const FINISH_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra silence beyond eot_timeout_ms when ending a turn without ForceEndTurn.
const PADDING_MARGIN_SECS: f64 = 0.5;

/// What the session needs besides its audio.
pub struct SessionOptions {
    pub endpoint: Endpoint,
    pub model: String,
    pub sample_rate: u32,
    /// Bytes of one frame of `chunk_ms` audio, for silence frames.
    pub frame_bytes: usize,
    /// Effective eot_timeout_ms: bounds the silence sent to end a turn without ForceEndTurn.
    pub eot_timeout_ms: u32,
    /// Real-time factor (1.0 = real time); `None` sends as fast as the socket takes it.
    pub pace: Option<f64>,
    pub connect_timeout: Duration,
}

/// How a session ended. The session never returns early without one: whatever was received
/// has been passed to the sink before this is returned.
#[derive(Debug, Default)]
pub struct Outcome {
    pub request_id: Option<String>,
    pub audio_seconds: f64,
    pub input_seconds: f64,
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub turns: u64,
    pub unconfirmed_turns: u64,
    /// The input stopped on bad audio (after everything good was sent).
    pub input_error: Option<AudioError>,
    /// The session failed (connection, server error); decides the exit code.
    pub error: Option<FluxError>,
    /// stdout was closed by the reader (e.g. `| head -1`): end quietly.
    pub output_closed: bool,
}

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

struct Run<'a> {
    opts: &'a SessionOptions,
    sink: &'a mut dyn Sink,
    turns: TurnTracker,
    outcome: Outcome,
    fatal: Option<Notice>,
    phase: Phase,
    /// Audio time already sent (seconds), including padding silence.
    sent_until: f64,
    padding_sent: f64,
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

    fn on_server(&mut self, received: Received) {
        match &received.message {
            ServerMessage::TurnInfo(t) => self.turns.observe(t),
            ServerMessage::Error(n) => self.fatal = Some(n.clone()),
            _ => {}
        }
        self.emit(Event::Server(received));
    }

    /// Does this message answer the ForceEndTurn we sent?
    fn answers_force_end(message: &ServerMessage) -> bool {
        match message {
            ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn => {
                // Servers before August 2026 send no trigger at all.
                matches!(t.trigger, None | Some(Trigger::Manual))
            }
            ServerMessage::Warning(_) => true,
            _ => false,
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
}

/// Runs one session to its end, taking [`Control`] requests while it runs.
pub async fn run(
    opts: &SessionOptions,
    mut feed: mpsc::Receiver<Feed>,
    sink: &mut dyn Sink,
    mut controls: mpsc::Receiver<Control>,
) -> Outcome {
    let mut run = Run {
        opts,
        sink,
        turns: TurnTracker::default(),
        outcome: Outcome::default(),
        fatal: None,
        phase: Phase::AwaitConnected,
        sent_until: 0.0,
        padding_sent: 0.0,
    };
    let Connection { ws, request_id } =
        match connect::connect(&opts.endpoint, opts.connect_timeout).await {
            Ok(c) => c,
            Err(e) => {
                run.outcome.error = Some(e);
                return run.outcome;
            }
        };
    run.outcome.request_id = request_id.clone();
    run.emit(Event::Client(ClientEvent::Connected {
        provider: opts.endpoint.provider.to_string(),
        url: opts.endpoint.url.to_string(),
        request_id,
        model: opts.model.clone(),
        encoding: "linear16".into(),
        sample_rate: opts.sample_rate,
    }));

    let (mut tx, mut rx) = ws.split();
    let silence = Bytes::from(vec![0u8; opts.frame_bytes]);
    let far_future = Instant::now() + Duration::from_secs(86400 * 365);
    let mut deadline = Instant::now() + CONNECTED_TIMEOUT;
    let mut pending: Option<(Bytes, f64, f64)> = None; // (data, start, end) in audio seconds
    let mut input_open = true;
    let mut controls_open = true;
    // Configure requests wait here while one is in flight (Flux caps un-acked Configures).
    let mut configures: VecDeque<Configure> = VecDeque::new();
    let mut configure_in_flight = false;
    let mut pace_origin: Option<Instant> = None;
    let mut send_failed = false;

    loop {
        let due = match (&pending, pace_origin, opts.pace) {
            (Some((_, start, _)), Some(origin), Some(factor)) => {
                origin + Duration::from_secs_f64(start / factor)
            }
            (Some(_), _, _) => Instant::now(),
            (None, _, _) => far_future,
        };
        let want_frame = matches!(run.phase, Phase::Streaming) && input_open && pending.is_none();
        let want_silence = run.phase == Phase::Padding && pending.is_none();
        if want_silence {
            let secs = silence.len() as f64 / 2.0 / opts.sample_rate as f64;
            pending = Some((silence.clone(), run.sent_until, run.sent_until + secs));
            continue;
        }

        tokio::select! {
            biased;
            incoming = rx.next() => {
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let received = match ServerMessage::parse(text.as_str()) {
                            Ok(r) => r,
                            Err(e) => {
                                run.emit(Event::Client(ClientEvent::Warning {
                                    code: "unparsable_server_message".into(),
                                    message: format!("{e}; the message was skipped: {}", sanitize(text.as_str(), 200)),
                                }));
                                continue;
                            }
                        };
                        let is_connected = matches!(received.message, ServerMessage::Connected(_));
                        let answers = Run::answers_force_end(&received.message);
                        let end_of_turn = matches!(&received.message, ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn);
                        let configure_answer = matches!(received.message, ServerMessage::ConfigureSuccess(_) | ServerMessage::ConfigureFailure(_));
                        run.on_server(received);
                        if configure_answer {
                            configure_in_flight = false;
                        }
                        if !configure_in_flight && run.phase == Phase::Streaming {
                            if let Some(c) = configures.pop_front() {
                                configure_in_flight = true;
                                send_control(&mut tx, ClientMessage::Configure(c), &mut send_failed).await;
                            }
                        }
                        match run.phase {
                            Phase::AwaitConnected if is_connected => {
                                run.phase = Phase::Streaming;
                                pace_origin = Some(Instant::now());
                            }
                            Phase::AwaitForceEnd if answers => {
                                send_close_stream(&mut tx, &mut run, &mut deadline, &mut send_failed).await;
                            }
                            Phase::AwaitForceEnd | Phase::Closing => {
                                deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
                            }
                            Phase::Padding if end_of_turn && !run.turns.is_open() => {
                                pending = None;
                                send_close_stream(&mut tx, &mut run, &mut deadline, &mut send_failed).await;
                            }
                            _ => {}
                        }
                        if run.outcome.output_closed && matches!(run.phase, Phase::Streaming | Phase::AwaitForceEnd | Phase::Padding) {
                            input_open = false;
                            pending = None;
                            begin_ending(&mut run, "output_closed", &mut tx, &mut deadline, &mut send_failed).await;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame
                            .map(|f| (Some(f.code), f.reason.to_string()))
                            .unwrap_or((None, String::new()));
                        conclude(&mut run, code, &reason);
                        break;
                    }
                    Some(Ok(Message::Binary(_))) => {
                        run.emit(Event::Client(ClientEvent::Warning {
                            code: "unexpected_binary_message".into(),
                            message: "the server sent a binary message; Flux sends only JSON text, so it was skipped".into(),
                        }));
                    }
                    Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                    Some(Err(e)) => {
                        conclude_lost(&mut run, &e.to_string());
                        break;
                    }
                    None => {
                        conclude(&mut run, None, "");
                        break;
                    }
                }
            }
            control = controls.recv(), if controls_open => {
                match control {
                    None => controls_open = false,
                    Some(Control::Finish) if input_open => {
                        input_open = false;
                        match run.phase {
                            Phase::Streaming => {
                                // The user asked to stop now: frames not yet sent are dropped,
                                // and the turn in progress is finished as at end of input.
                                pending = None;
                                begin_ending(&mut run, "interrupted", &mut tx, &mut deadline, &mut send_failed).await;
                            }
                            Phase::AwaitConnected => {
                                let _ = tx.close().await;
                                break;
                            }
                            _ => {}
                        }
                    }
                    Some(Control::Finish) => {}
                    Some(Control::ForceEndTurn) => {
                        if !opts.endpoint.capabilities.force_end_turn {
                            run.emit(Event::Client(ClientEvent::Warning {
                                code: "force_end_turn_unsupported".into(),
                                message: format!("{} does not support ForceEndTurn; the turn ends when the speaker stops", opts.endpoint.provider),
                            }));
                        } else if run.phase == Phase::Streaming {
                            send_control(&mut tx, ClientMessage::ForceEndTurn, &mut send_failed).await;
                        }
                    }
                    Some(Control::Configure(c)) => {
                        if run.phase == Phase::Streaming && !configure_in_flight {
                            configure_in_flight = true;
                            send_control(&mut tx, ClientMessage::Configure(c), &mut send_failed).await;
                        } else {
                            configures.push_back(c);
                        }
                    }
                }
            }
            item = feed.recv(), if want_frame => {
                match item {
                    Some(Feed::Frame(frame)) => {
                        run.outcome.input_seconds = frame.end_secs();
                        pending = Some((frame.data.clone(), frame.start_secs(), frame.end_secs()));
                    }
                    Some(Feed::End { error, note }) => {
                        input_open = false;
                        if let Some(note) = note {
                            run.emit(Event::Client(ClientEvent::Warning { code: "input_note".into(), message: note }));
                        }
                        let reason = if error.is_some() { "input_error" } else { "end_of_input" };
                        run.outcome.input_error = error;
                        begin_ending(&mut run, reason, &mut tx, &mut deadline, &mut send_failed).await;
                    }
                    None => {
                        input_open = false;
                        begin_ending(&mut run, "end_of_input", &mut tx, &mut deadline, &mut send_failed).await;
                    }
                }
            }
            _ = sleep_until(due), if pending.is_some() && matches!(run.phase, Phase::Streaming | Phase::Padding) => {
                if let Some((data, _start, end)) = pending.take() {
                    let len = data.len();
                    if tx.send(Message::Binary(data)).await.is_err() {
                        send_failed = true;
                        deadline = Instant::now() + Duration::from_secs(2);
                        run.phase = Phase::Closing;
                        continue;
                    }
                    if run.phase == Phase::Padding {
                        run.padding_sent += end - run.sent_until;
                    }
                    run.sent_until = end;
                    run.outcome.frames_sent += 1;
                    run.outcome.bytes_sent += len as u64;
                    if run.phase == Phase::Padding && padding_done(&run) {
                        send_close_stream(&mut tx, &mut run, &mut deadline, &mut send_failed).await;
                    }
                }
            }
            _ = sleep_until(deadline), if matches!(run.phase, Phase::AwaitConnected | Phase::AwaitForceEnd | Phase::Closing) => {
                match run.phase {
                    Phase::AwaitConnected => {
                        run.outcome.error = Some(FluxError::Connection(format!(
                            "the server accepted the connection but sent no Connected message within {}s",
                            CONNECTED_TIMEOUT.as_secs()
                        )));
                        let _ = tx.close().await;
                        break;
                    }
                    Phase::AwaitForceEnd => {
                        run.emit(Event::Client(ClientEvent::Warning {
                            code: "force_end_turn_unanswered".into(),
                            message: format!("no reply to ForceEndTurn within {}s; closing the stream", FINISH_IDLE_TIMEOUT.as_secs()),
                        }));
                        send_close_stream(&mut tx, &mut run, &mut deadline, &mut send_failed).await;
                    }
                    _ => {
                        if !send_failed {
                            run.emit(Event::Client(ClientEvent::Warning {
                                code: "close_unanswered".into(),
                                message: format!("the server did not close the stream within {}s of CloseStream; closing it", FINISH_IDLE_TIMEOUT.as_secs()),
                            }));
                        }
                        let _ = tx.close().await;
                        conclude(&mut run, None, "");
                        break;
                    }
                }
            }
        }
    }
    run.outcome.audio_seconds = run.sent_until;
    run.outcome.turns = run.turns.finished();
    run.outcome
}

/// Padding ends when the server has heard all audio and no turn is open, or when enough
/// silence has gone for eot_timeout_ms to end any turn.
fn padding_done(run: &Run<'_>) -> bool {
    let limit = run.opts.eot_timeout_ms as f64 / 1000.0 + PADDING_MARGIN_SECS;
    let caught_up = run.turns.heard_until() + 0.3 >= run.sent_until - run.padding_sent;
    (!run.turns.is_open() && caught_up) || run.padding_sent >= limit
}

type WsSink = futures_util::stream::SplitSink<connect::Ws, Message>;

async fn send_control(tx: &mut WsSink, message: ClientMessage, failed: &mut bool) {
    if !*failed
        && tx
            .send(Message::Text(message.to_json().into()))
            .await
            .is_err()
    {
        *failed = true;
    }
}

/// No more input: finish the open turn the best way the server allows.
async fn begin_ending(
    run: &mut Run<'_>,
    reason: &str,
    tx: &mut WsSink,
    deadline: &mut Instant,
    failed: &mut bool,
) {
    run.emit(Event::Client(ClientEvent::AudioFinished {
        reason: reason.to_string(),
        audio_seconds: run.sent_until,
        frames: run.outcome.frames_sent,
        bytes: run.outcome.bytes_sent,
    }));
    if run.outcome.output_closed {
        send_close_stream(tx, run, deadline, failed).await;
    } else if run.opts.endpoint.capabilities.force_end_turn {
        send_control(tx, ClientMessage::ForceEndTurn, failed).await;
        run.phase = Phase::AwaitForceEnd;
        *deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
    } else {
        run.phase = Phase::Padding;
        if padding_done(run) {
            send_close_stream(tx, run, deadline, failed).await;
        }
    }
}

async fn send_close_stream(
    tx: &mut WsSink,
    run: &mut Run<'_>,
    deadline: &mut Instant,
    failed: &mut bool,
) {
    send_control(tx, ClientMessage::CloseStream, failed).await;
    run.phase = Phase::Closing;
    *deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
}

/// The server closed the socket (with a close frame, or just EOF).
fn conclude(run: &mut Run<'_>, code: Option<CloseCode>, reason: &str) {
    if let Some(fatal) = run.fatal.clone() {
        run.finish_unconfirmed("server_error");
        run.outcome.error = Some(FluxError::Server(format!(
            "the server ended the stream with an error: {}{}",
            sanitize(&fatal.summary(), 300),
            request_suffix(run)
        )));
        return;
    }
    let clean = matches!(
        code,
        None | Some(CloseCode::Normal) | Some(CloseCode::Status)
    );
    if run.phase == Phase::Closing && clean {
        // Flux closes without a status code after CloseStream: that is success.
        run.finish_unconfirmed("stream_closed");
        return;
    }
    run.finish_unconfirmed("connection_lost");
    let how = match code {
        Some(c) => format!("with code {}{}", u16::from(c), reason_suffix(reason)),
        None => "without a close code".to_string(),
    };
    run.outcome.error = Some(FluxError::Connection(format!(
        "the server closed the connection unexpectedly {how} after {:.2}s of audio{}",
        run.sent_until,
        request_suffix(run)
    )));
}

fn conclude_lost(run: &mut Run<'_>, detail: &str) {
    if run.fatal.is_some() || run.phase == Phase::Closing {
        return conclude(run, None, "");
    }
    run.finish_unconfirmed("connection_lost");
    run.outcome.error = Some(FluxError::Connection(format!(
        "lost the connection after {:.2}s of audio: {}{}",
        run.sent_until,
        sanitize(detail, 200),
        request_suffix(run)
    )));
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", sanitize(reason, 200))
    }
}

fn request_suffix(run: &Run<'_>) -> String {
    match &run.outcome.request_id {
        Some(id) => format!(" (request id {id})"),
        None => String::new(),
    }
}
