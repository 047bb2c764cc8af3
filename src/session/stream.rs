//! The session's event loop: one logical stream over one or more connections.
//!
//! Things that can happen at any moment — a server message, a finished connection attempt, a
//! control request, a frame from the audio thread, a timer — each have one handler on [`Run`].
//! `phase` says how far the stream has got (streaming, ending, closing); `link` says whether a
//! connection is up. They are separate because a connection can drop in any phase.
//!
//! Reconnecting without losing speech: every frame sent since the last finished turn stays in
//! a bounded replay buffer. After an unexpected drop (reset, close 1006/1011–1014, a retryable
//! `Error`, or a stall), flux reconnects with backoff and jitter, sends that audio again, and
//! shifts the new connection's times and turn indices (which restart at 0) so the output reads
//! as one stream. Audio keeps being taken from the source while disconnected.

use super::connect::{self, Connection, Retry, Ws, sanitize};
use super::latency::{AddedLatency, Histogram};
use super::tap::{Tap, TapThread};
use super::turns::TurnTracker;
use super::{ClientEvent, Control, Event, Feed, Outcome, SessionOptions};
use crate::error::FluxError;
use crate::event::Sink;
use crate::protocol::{
    ClientMessage, Configure, Notice, Received, ServerMessage, Thresholds, Trigger, TurnEvent,
};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::io;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// How long to wait for the server's `Connected` message after the upgrade.
const CONNECTED_TIMEOUT: Duration = Duration::from_secs(10);
/// While finishing, how long the server may stay silent before flux moves on.
const FINISH_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra silence beyond eot_timeout_ms when ending a turn without ForceEndTurn.
const PADDING_MARGIN_SECS: f64 = 0.5;
/// Most audio kept for replay. A turn longer than this loses its oldest audio on reconnect
/// (with a warning); the cap keeps memory flat (1.9 MB at 16 kHz).
const REPLAY_CAP_SECS: f64 = 60.0;
/// Audio kept before the server's last report when no turn is open: a turn may be starting
/// that the server has not announced yet.
const REPLAY_PRE_ROLL_SECS: f64 = 1.0;
/// Audio taken from the source while disconnected, at most (then the source waits).
const BACKLOG_CAP_SECS: f64 = 60.0;
/// A paced source this late gets silence in its place.
const FILL_GRACE: Duration = Duration::from_millis(250);
/// Audio on a healthy connection after which the reconnect budget is restored.
const HEALTHY_SECS: f64 = 60.0;
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

type WsSink = SplitSink<Ws, Message>;
type WsStream = SplitStream<Ws>;
type Connecting = JoinHandle<Result<Connection, connect::ConnectFailure>>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Sending input frames (input may be over with frames still queued).
    Streaming,
    /// `ForceEndTurn` sent; waiting for its EndOfTurn or Warning.
    AwaitForceEnd,
    /// No ForceEndTurn: sending silence until the open turn ends.
    Padding,
    /// `CloseStream` sent; reading until the server closes.
    Closing,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Link {
    /// No connection; one will be attempted when `retry_at` comes.
    Down,
    /// A connection attempt is running.
    Connecting,
    /// Upgraded; waiting for the server's `Connected`.
    AwaitConnected,
    Up,
}

/// Whether the loop goes on.
#[derive(Debug, PartialEq)]
enum Flow {
    Continue,
    Stop,
    /// The connection is lost or useless; reconnect if the budget allows.
    Reconnect(String),
}

/// A frame of audio on the stream's timeline (seconds since the stream began).
#[derive(Clone)]
struct Frame {
    data: Bytes,
    start: f64,
    end: f64,
    /// Sent before, on a lost connection: not counted or saved again.
    replay: bool,
    /// When the audio thread handed it over; `None` for silence flux made itself.
    ready: Option<Instant>,
}

struct Run<'a> {
    opts: &'a SessionOptions,
    sink: &'a mut dyn Sink,
    tx: Option<WsSink>,
    link: Link,
    phase: Phase,
    turns: TurnTracker,
    outcome: Outcome,
    fatal: Option<Notice>,
    /// When the current wait gives up (AwaitConnected, AwaitForceEnd, Closing).
    deadline: Instant,
    /// When the next connection attempt starts (link Down).
    retry_at: Instant,
    /// Attempts since the last healthy stretch; the budget is `opts.max_reconnects`.
    attempts: u32,
    /// The last failed connection attempt's error: when the budget is spent, it decides the
    /// exit code (a 5xx stays a server error, a 429 a connection failure).
    last_connect_error: Option<FluxError>,
    /// `CloseStream` went out: a close without status from now on is success.
    close_sent: bool,
    input_open: bool,
    audio_finished_sent: bool,
    end_reason: String,
    /// Frames to send on the current connection, in order: replayed audio first.
    queue: VecDeque<Frame>,
    /// Frames sent since the last finished turn, for replay after a drop.
    replay: VecDeque<Frame>,
    /// Seconds of audio in `replay`, kept as frames come and go (summing per frame would cost
    /// time in proportion to the buffer on the hot path).
    replay_secs: f64,
    /// Stream time of the next frame taken from the source or made of silence.
    enqueued_until: f64,
    /// Wall-clock instant of stream time 0, for pacing.
    pace_origin: Instant,
    /// When the source's audio began, as its first frame's arrival tells: the pacing clock
    /// of a live source (see `link_up`).
    source_origin: Option<Instant>,
    /// `pace_origin` has been set by the first link-up.
    pace_anchored: bool,
    /// Stream time already sent, including silence.
    sent_until: f64,
    padding_sent: f64,
    silence: Bytes,
    /// Stream time where the current connection's audio began, and turns finished before
    /// it: added to its timestamps and turn indices.
    conn_offset: f64,
    turn_offset: u64,
    /// Stream time at which the current connection became healthy (budget reset).
    up_since: f64,
    last_heard: Instant,
    sent_since_heard: bool,
    /// Configure requests wait here while one is in flight (Flux caps un-acked Configures).
    configures: VecDeque<Configure>,
    in_flight: Option<Configure>,
    /// Every successful Configure merged: re-applied on a new connection.
    applied: Option<Configure>,
    force_end_answered: bool,
    /// Requests to apply at a stream time, in arrival order.
    timed: Vec<(f64, Control)>,
    tap: Option<TapThread>,
    /// When each frame of the batch being sent could first have gone.
    in_batch: Vec<Instant>,
    send_latency: Histogram,
    output_latency: Histogram,
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
    let now = Instant::now();
    let mut run = Run {
        opts,
        sink,
        tx: None,
        link: Link::Down,
        phase: Phase::Streaming,
        turns: TurnTracker::default(),
        outcome: Outcome::default(),
        fatal: None,
        deadline: now,
        retry_at: now,
        attempts: 0,
        last_connect_error: None,
        close_sent: false,
        input_open: true,
        audio_finished_sent: false,
        end_reason: "end_of_input".into(),
        queue: VecDeque::new(),
        replay: VecDeque::new(),
        replay_secs: 0.0,
        enqueued_until: 0.0,
        pace_origin: now,
        source_origin: None,
        pace_anchored: false,
        sent_until: 0.0,
        padding_sent: 0.0,
        silence: Bytes::from(vec![0u8; opts.frame_bytes]),
        conn_offset: 0.0,
        turn_offset: 0,
        up_since: 0.0,
        last_heard: now,
        sent_since_heard: false,
        configures: VecDeque::new(),
        in_flight: None,
        applied: None,
        force_end_answered: false,
        timed: Vec::new(),
        tap,
        in_batch: Vec::with_capacity(32),
        send_latency: Histogram::default(),
        output_latency: Histogram::default(),
    };
    let mut rx: Option<WsStream> = None;
    let mut connecting: Option<Connecting> = None;
    let mut controls_open = true;
    loop {
        if run.link == Link::Down && connecting.is_none() && Instant::now() >= run.retry_at {
            connecting = Some(run.spawn_connect());
            run.link = Link::Connecting;
        }
        if run.phase == Phase::Padding && run.link == Link::Up && run.queue.is_empty() {
            run.queue_silence();
        }
        let flow = tokio::select! {
            biased;
            incoming = next_message(&mut rx) => run.on_incoming(incoming).await,
            result = join(&mut connecting) => {
                connecting = None;
                match result {
                    Ok(conn) => {
                        let (tx, stream) = conn.ws.split();
                        rx = Some(stream);
                        run.on_connected(tx, conn.request_id).await
                    }
                    Err(failure) => run.on_connect_failed(failure),
                }
            }
            control = controls.recv(), if controls_open => match control {
                Some(c) => run.on_control(c).await,
                None => {
                    controls_open = false;
                    Flow::Continue
                }
            },
            item = feed.recv(), if run.wants_frame() => run.on_feed(item).await,
            _ = at(run.send_due()), if run.can_send() => run.send_due_frames(&mut feed).await,
            _ = sleep_until(run.fill_due()), if run.should_fill() => {
                run.fill_silence();
                Flow::Continue
            }
            _ = sleep_until(run.deadline), if run.waiting() => run.on_deadline().await,
            _ = sleep_until(run.stall_due()), if run.watching_stall() => {
                Flow::Reconnect(format!(
                    "the server sent nothing for {:.1}s while audio was flowing",
                    opts.stall_timeout.as_secs_f64()
                ))
            }
            _ = sleep_until(run.retry_at), if run.link == Link::Down && connecting.is_none() => {
                Flow::Continue
            }
        };
        match flow {
            Flow::Continue => {}
            Flow::Stop => break,
            Flow::Reconnect(reason) => {
                rx = None;
                if let Some(mut tx) = run.tx.take() {
                    // Best effort: the connection is being abandoned either way.
                    let _ = tokio::time::timeout(Duration::from_millis(200), tx.close()).await;
                }
                if run.schedule_reconnect(reason) == Flow::Stop {
                    break;
                }
            }
        }
    }
    if let Some(handle) = connecting {
        handle.abort();
    }
    run.outcome.totals.audio_seconds = run.sent_until;
    run.outcome.totals.turns = run.turns.finished();
    run.outcome.totals.added_latency = AddedLatency {
        send: run.send_latency.summary(),
        output: run.output_latency.summary(),
    };
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

/// Resolves at `deadline`, at once if it has passed: a timer for a moment already gone would
/// wait for the timer wheel's next tick (a millisecond), once per frame.
async fn at(deadline: Instant) {
    if deadline > Instant::now() {
        sleep_until(deadline).await;
    }
}

/// The next message of the current connection; never resolves while there is none.
async fn next_message(rx: &mut Option<WsStream>) -> Option<Result<Message, tungstenite::Error>> {
    match rx {
        Some(rx) => rx.next().await,
        None => std::future::pending().await,
    }
}

/// The running connection attempt's result; never resolves while there is none.
async fn join(connecting: &mut Option<Connecting>) -> Result<Connection, connect::ConnectFailure> {
    match connecting {
        Some(handle) => match handle.await {
            Ok(result) => result,
            Err(e) => Err(connect::ConnectFailure {
                error: FluxError::Connection(format!("the connection attempt failed: {e}")),
                retry: Retry::Network,
            }),
        },
        None => std::future::pending().await,
    }
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

    fn reconnecting(&self) -> bool {
        self.outcome.request_id.is_some()
    }

    // ---- connections -----------------------------------------------------------------

    fn spawn_connect(&self) -> Connecting {
        let endpoint = self.opts.endpoint.clone();
        let timeout = self.opts.connect_timeout;
        tokio::spawn(async move { connect::connect_classified(&endpoint, timeout).await })
    }

    async fn on_connected(&mut self, tx: WsSink, request_id: Option<String>) -> Flow {
        self.tx = Some(tx);
        self.fatal = None;
        self.last_connect_error = None;
        self.last_heard = Instant::now();
        self.sent_since_heard = false;
        // The new connection's audio starts with the replayed frames, or where the stream is.
        self.conn_offset = self
            .replay
            .front()
            .map_or(self.enqueued_at_connect(), |f| f.start);
        self.turn_offset = self.turns.finished();
        self.up_since = self.sent_until;
        if self.reconnecting() {
            let replayed = self.replay_secs;
            let mut requeue: VecDeque<Frame> = self
                .replay
                .iter()
                .cloned()
                .map(|mut f| {
                    f.replay = true;
                    f
                })
                .collect();
            requeue.append(&mut self.queue);
            self.queue = requeue;
            self.outcome.totals.reconnects += 1;
            let attempt = self.attempts;
            self.emit(Event::Client(ClientEvent::Reconnected {
                attempt,
                request_id,
                resume_from: round6(self.conn_offset),
                replayed_seconds: round6(replayed),
                turn_offset: self.turn_offset,
            }));
            // What was configured on the lost connection is configured again, first.
            if let Some(in_flight) = self.in_flight.take() {
                self.configures.push_front(in_flight);
            }
            if let Some(applied) = self.applied.clone() {
                self.configures.push_front(applied);
            }
            // Whatever ending had begun starts again once the replayed audio is through
            // (a reconnect never happens after CloseStream went out).
            self.phase = Phase::Streaming;
            self.padding_sent = 0.0;
            self.force_end_answered = false;
        } else {
            self.outcome.request_id = request_id.clone();
            self.emit(Event::Client(ClientEvent::Connected {
                provider: self.opts.endpoint.provider.to_string(),
                url: crate::provider::redact_url(&self.opts.endpoint.url),
                request_id,
                model: self.opts.model.clone(),
                encoding: "linear16".into(),
                sample_rate: self.opts.sample_rate,
            }));
        }
        if self.opts.endpoint.capabilities.sends_connected {
            self.link = Link::AwaitConnected;
            self.deadline = Instant::now() + CONNECTED_TIMEOUT;
        } else {
            self.link_up().await;
        }
        Flow::Continue
    }

    /// Where a connection with nothing to replay starts: after everything sent.
    fn enqueued_at_connect(&self) -> f64 {
        self.queue.front().map_or(self.sent_until, |f| f.start)
    }

    async fn link_up(&mut self) {
        self.link = Link::Up;
        if self.outcome.totals.frames_sent == 0 {
            // Pacing counts from the link coming up, or from when the source began if that
            // was earlier and the source is live. Audio that a live source produced while
            // connecting then goes at once, instead of trailing its speaker by the connect
            // time for the whole stream; a file is paced from the link, so its timing (and
            // `--max-eot-latency-ms`, src/assertions/latency.rs) stays as documented.
            let now = Instant::now();
            self.pace_origin = match (self.opts.live_source, self.source_origin) {
                (true, Some(began)) => began.min(now),
                _ => now,
            };
            self.pace_anchored = true;
        }
        self.send_next_configure().await;
        self.maybe_finish_input().await;
    }

    fn on_connect_failed(&mut self, failure: connect::ConnectFailure) -> Flow {
        self.link = Link::Down;
        let retry = match failure.retry {
            Retry::Never => false,
            Retry::Busy => true,
            // The first connection fails fast on a wrong URL or a server that is not there.
            Retry::Network => self.reconnecting(),
        };
        if retry {
            let reason = failure.error.to_string();
            self.last_connect_error = Some(failure.error);
            return Flow::Reconnect(reason);
        }
        self.finish_unconfirmed("connection_lost");
        self.outcome.error = Some(failure.error);
        Flow::Stop
    }

    /// Decides whether to try again and when; gives up when the budget is spent.
    fn schedule_reconnect(&mut self, reason: String) -> Flow {
        self.link = Link::Down;
        self.attempts += 1;
        let max = self.opts.max_reconnects;
        if self.attempts > max {
            self.finish_unconfirmed("connection_lost");
            let tries = if max == 0 {
                "reconnecting is disabled (--max-reconnects 0)".to_string()
            } else {
                format!("gave up after {max} reconnect attempt(s)")
            };
            let message = format!(
                "{}; {tries}; {:.2}s of audio were sent{}",
                sanitize(&reason, 400),
                self.sent_until,
                self.request_suffix()
            );
            self.outcome.error = Some(match self.last_connect_error.take() {
                Some(FluxError::Server(_)) => FluxError::Server(message),
                _ => FluxError::Connection(message),
            });
            return Flow::Stop;
        }

        // Exponential backoff with jitter, so many clients do not retry in step.
        let exp = BACKOFF_BASE.saturating_mul(1u32 << (self.attempts - 1).min(10));
        let delay = exp.min(BACKOFF_MAX).mul_f64(0.5 + fastrand::f64() * 0.5);
        self.retry_at = Instant::now() + delay;
        self.emit(Event::Client(ClientEvent::Reconnecting {
            attempt: self.attempts,
            max_attempts: max,
            delay_ms: delay.as_millis() as u64,
            reason: sanitize(&reason, 400),
            audio_seconds: round6(self.sent_until),
        }));
        Flow::Continue
    }

    async fn send(&mut self, message: Message) -> bool {
        let Some(tx) = self.tx.as_mut() else {
            return false;
        };
        if tx.send(message).await.is_err() {
            // The socket is gone; the read side reports why, or the deadline moves on.
            self.tx = None;
            return false;
        }
        true
    }

    async fn send_control(&mut self, message: ClientMessage) -> bool {
        self.send(Message::Text(message.to_json().into())).await
    }

    // ---- server messages -------------------------------------------------------------

    async fn on_incoming(&mut self, incoming: Option<Result<Message, tungstenite::Error>>) -> Flow {
        match incoming {
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|f| (Some(f.code), f.reason.to_string()))
                    .unwrap_or((None, String::new()));
                self.on_close(code, &reason)
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
            Some(Err(e)) => self.on_lost(&e.to_string()),
            None => self.on_close(None, ""),
        }
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        self.last_heard = Instant::now();
        self.sent_since_heard = false;
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
        let received = shift(received, self.conn_offset, self.turn_offset);
        let is_connected = matches!(received.message, ServerMessage::Connected(_));
        let answers_force_end = answers_force_end(&received.message);
        let end_of_turn = matches!(&received.message,
            ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn);
        match &received.message {
            ServerMessage::ConfigureSuccess(_) => {
                if let Some(c) = self.in_flight.take() {
                    self.applied = Some(merge(self.applied.take(), c));
                }
            }
            ServerMessage::ConfigureFailure(_) => self.in_flight = None,
            _ => {}
        }
        self.on_server(received);
        // Received → parsed, tracked and written out (the sinks flush each line).
        self.output_latency.record(self.last_heard.elapsed());
        self.trim_replay();

        if self.link == Link::AwaitConnected && is_connected {
            self.link_up().await;
        }
        self.send_next_configure().await;
        match self.phase {
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
                self.queue.retain(|f| f.replay);
                self.close_stream().await;
            }
            _ => {}
        }
        if self.outcome.output_closed && self.input_open {
            // The reader went away: stop sending and leave quietly.
            self.input_open = false;
            self.queue.clear();
            self.end_reason = "output_closed".into();
            self.maybe_finish_input().await;
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

    /// Drops replay audio the server has finished with: everything up to the last finished
    /// turn, or, between turns, all but a short pre-roll before what it has reported on.
    fn trim_replay(&mut self) {
        let keep_from = if self.turns.is_open() {
            self.turns.last_end()
        } else {
            self.turns
                .last_end()
                .max(self.turns.heard_until() - REPLAY_PRE_ROLL_SECS)
        };
        while self.replay.front().is_some_and(|f| f.end <= keep_from) {
            if let Some(f) = self.replay.pop_front() {
                self.replay_secs -= f.end - f.start;
            }
        }
    }

    /// The server closed the socket (with a close frame, or just EOF).
    fn on_close(&mut self, code: Option<CloseCode>, reason: &str) -> Flow {
        let how = match code {
            Some(c) => format!("with code {}{}", u16::from(c), reason_suffix(reason)),
            None => "without a close code".to_string(),
        };
        if let Some(fatal) = self.fatal.clone() {
            let retryable = retryable_error(&fatal, code);
            if retryable && !self.close_sent {
                // If the retries run out, the server's error is why: exit 6, not 4.
                self.last_connect_error = Some(FluxError::Server(String::new()));
                return Flow::Reconnect(format!(
                    "the server reported {} and closed {how}",
                    sanitize(&fatal.summary(), 300)
                ));
            }
            self.finish_unconfirmed("server_error");
            self.outcome.error = Some(FluxError::Server(format!(
                "the server ended the stream with an error: {}{}",
                sanitize(&fatal.summary(), 300),
                self.request_suffix()
            )));
            return Flow::Stop;
        }
        let clean = matches!(
            code,
            None | Some(CloseCode::Normal) | Some(CloseCode::Status)
        );
        if self.close_sent && clean {
            // Flux closes without a status code after CloseStream: that is success.
            self.finish_unconfirmed("stream_closed");
            return Flow::Stop;
        }
        if self.close_sent {
            self.finish_unconfirmed("connection_lost");
            self.outcome.error = Some(FluxError::Connection(format!(
                "the server closed the connection {how} while the stream was closing{}",
                self.request_suffix()
            )));
            return Flow::Stop;
        }
        Flow::Reconnect(format!(
            "the server closed the connection unexpectedly {how}"
        ))
    }

    fn on_lost(&mut self, detail: &str) -> Flow {
        if self.fatal.is_some() {
            return self.on_close(None, "");
        }
        if self.close_sent {
            self.finish_unconfirmed("stream_closed");
            return Flow::Stop;
        }
        Flow::Reconnect(format!("lost the connection: {}", sanitize(detail, 200)))
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
                // The user asked to stop now: audio not yet sent is dropped (replayed audio
                // is kept), and the turn in progress is finished as at end of input.
                self.input_open = false;
                self.queue.retain(|f| f.replay);
                self.end_reason = "interrupted".into();
                if self.link == Link::Down && self.outcome.request_id.is_none() {
                    return Flow::Stop;
                }
                self.maybe_finish_input().await;
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
                } else if self.phase == Phase::Streaming && self.link == Link::Up {
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
        if self.in_flight.is_some() || self.link != Link::Up || self.phase == Phase::Closing {
            return;
        }
        if let Some(c) = self.configures.pop_front() {
            if self.send_control(ClientMessage::Configure(c.clone())).await {
                self.in_flight = Some(c);
            }
        }
    }

    /// Every Configure sent has been answered and none is queued.
    fn configures_settled(&self) -> bool {
        self.in_flight.is_none() && self.configures.is_empty()
    }

    /// Applies timed requests whose stream time has been reached.
    async fn release_timed(&mut self) {
        while let Some(i) = self.timed.iter().position(|(at, _)| *at <= self.sent_until) {
            let (_, control) = self.timed.remove(i);
            if self.apply_control(control).await == Flow::Stop {
                return;
            }
        }
    }

    // ---- audio -----------------------------------------------------------------------

    /// Take a frame from the source? While connected, one at a time (pacing decides when it
    /// goes); while disconnected, keep draining a live source into a bounded backlog.
    fn wants_frame(&self) -> bool {
        if !self.input_open || self.phase != Phase::Streaming {
            return false;
        }
        if self.link == Link::Up {
            return self.queue.iter().all(|f| f.replay);
        }
        let backlog: f64 = self.queue.iter().map(|f| f.end - f.start).sum();
        backlog < BACKLOG_CAP_SECS
    }

    async fn on_feed(&mut self, item: Option<Feed>) -> Flow {
        match item {
            Some(Feed::Frames { frames, ready }) => {
                let ready = Instant::from_std(ready);
                for frame in frames {
                    self.outcome.totals.input_seconds = frame.end_secs();
                    let secs = frame.end_secs() - frame.start_secs();
                    self.queue.push_back(Frame {
                        data: frame.data,
                        start: self.enqueued_until,
                        end: self.enqueued_until + secs,
                        replay: false,
                        ready: Some(ready),
                    });
                    self.enqueued_until += secs;
                }
                self.follow_source_clock(ready);
            }
            Some(Feed::End { error, note }) => {
                self.input_open = false;
                if let Some(note) = note {
                    self.warn("input_note", note);
                }
                if error.is_some() {
                    self.end_reason = "input_error".into();
                }
                self.outcome.input_error = error;
                self.maybe_finish_input().await;
            }
            None => {
                self.input_open = false;
                self.maybe_finish_input().await;
            }
        }
        Flow::Continue
    }

    /// A live source's clock, from when its audio arrives: it began no later than `ready`
    /// minus the audio it has delivered. The latest such estimate wins, so a source whose
    /// clock runs slower than this machine's (sound cards differ by up to 0.01 %) moves the
    /// pacing clock along with it: its frames keep going out as they arrive, and silence is
    /// filled in only when it really stalls, not once the drift exceeds the fill grace. A
    /// faster source (a file through `cat`) never moves it, so it is still held to the pace.
    fn follow_source_clock(&mut self, ready: Instant) {
        let (true, Some(pace)) = (self.opts.live_source, self.opts.pace) else {
            return;
        };
        let delivered = Duration::from_secs_f64(self.enqueued_until / pace);
        let began = ready.checked_sub(delivered).unwrap_or(ready);
        self.source_origin = Some(self.source_origin.map_or(began, |o| o.max(began)));
        if self.pace_anchored {
            self.pace_origin = self.pace_origin.max(began);
        }
    }

    fn can_send(&self) -> bool {
        self.link == Link::Up && !self.queue.is_empty() && self.phase != Phase::Closing
    }

    /// When the next frame may go: replayed audio at once, the rest at its stream time
    /// divided by the pace, counted from when the first connection came up (its `Connected`,
    /// or the upgrade where the provider sends none). `--max-eot-latency-ms`
    /// (src/assertions/latency.rs) derives send times from this rule: keep them in step.
    fn send_due(&self) -> Instant {
        self.paced_due().unwrap_or_else(Instant::now)
    }

    /// The pacing deadline of the next frame; `None` when it may go at once.
    fn paced_due(&self) -> Option<Instant> {
        match (self.queue.front(), self.opts.pace) {
            (Some(f), Some(factor)) if !f.replay && self.phase == Phase::Streaming => {
                Some(self.pace_origin + Duration::from_secs_f64(f.start / factor))
            }
            _ => None,
        }
    }

    /// Sends every frame that is due now, up to a batch, with one flush: at `--fast` (or
    /// after an outage) a wake-up per frame would cost more than the frames themselves. When
    /// the queue runs dry, the next frame is taken from the feed without waiting.
    async fn send_due_frames(&mut self, feed: &mut mpsc::Receiver<Feed>) -> Flow {
        const BATCH: usize = 32;
        let now = Instant::now();
        let mut fed = 0;
        self.in_batch.clear();
        while fed < BATCH && self.can_send() {
            let due = self.paced_due();
            if due.is_some_and(|due| due > now) {
                break;
            }
            let Some(frame) = self.queue.pop_front() else {
                break;
            };
            // Added latency runs from when the frame could first have gone: ready, and due.
            if let (false, Some(ready)) = (frame.replay, frame.ready) {
                self.in_batch.push(due.map_or(ready, |due| due.max(ready)));
            }
            let Some(tx) = self.tx.as_mut() else {
                self.queue.push_front(frame);
                break;
            };
            // A clone shares the bytes: the replay buffer and the saved copy cost nothing.
            if tx.feed(Message::Binary(frame.data.clone())).await.is_err() {
                self.tx = None;
                self.queue.push_front(frame);
                return Flow::Reconnect("the connection broke while sending audio".into());
            }
            fed += 1;
            self.after_send(frame).await;
            if self.queue.is_empty() && self.wants_frame() {
                match feed.try_recv() {
                    Ok(item) => {
                        self.on_feed(Some(item)).await;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {}
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.on_feed(None).await;
                    }
                }
            }
        }
        if let Some(tx) = self.tx.as_mut()
            && tx.flush().await.is_err()
        {
            self.tx = None;
            return Flow::Reconnect("the connection broke while sending audio".into());
        }
        let written = Instant::now();
        for &start in &self.in_batch {
            self.send_latency
                .record(written.saturating_duration_since(start));
        }
        if self.phase == Phase::Padding && self.padding_done() && self.configures_settled() {
            self.close_stream().await;
        }
        self.maybe_finish_input().await;
        Flow::Continue
    }

    /// Bookkeeping for a frame handed to the socket.
    async fn after_send(&mut self, frame: Frame) {
        self.sent_since_heard = true;
        if frame.replay {
            return;
        }
        if self.phase == Phase::Padding {
            self.padding_sent += frame.end - frame.start;
        }
        self.sent_until = frame.end;
        self.outcome.totals.frames_sent += 1;
        self.outcome.totals.bytes_sent += frame.data.len() as u64;
        if let Some(tap) = &self.tap {
            tap.frame(&frame.data);
        }
        self.remember(frame);
        if self.attempts > 0 && self.sent_until - self.up_since >= HEALTHY_SECS {
            self.attempts = 0;
        }
        if !self.timed.is_empty() {
            self.release_timed().await;
        }
    }

    /// Keeps a sent frame for replay, within the cap (oldest audio goes first).
    fn remember(&mut self, frame: Frame) {
        self.replay_secs += frame.end - frame.start;
        self.replay.push_back(frame);
        while self.replay_secs > REPLAY_CAP_SECS {
            match self.replay.pop_front() {
                Some(f) => self.replay_secs -= f.end - f.start,
                None => break,
            }
        }
    }

    /// A paced source that falls behind (a pause on stdin) gets silence in its place, so
    /// the server's turn timers keep running and an open turn can end.
    fn should_fill(&self) -> bool {
        self.opts.pace.is_some()
            && self.input_open
            && self.link == Link::Up
            && self.phase == Phase::Streaming
            && self.queue.is_empty()
            && self.outcome.totals.frames_sent > 0
    }

    fn fill_due(&self) -> Instant {
        let factor = self.opts.pace.unwrap_or(1.0);
        self.pace_origin + Duration::from_secs_f64(self.enqueued_until / factor) + FILL_GRACE
    }

    fn fill_silence(&mut self) {
        let secs = self.frame_secs();
        self.queue.push_back(Frame {
            data: self.silence.clone(),
            start: self.enqueued_until,
            end: self.enqueued_until + secs,
            replay: false,
            ready: None,
        });
        self.enqueued_until += secs;
        self.outcome.totals.filled_seconds += secs;
    }

    fn frame_secs(&self) -> f64 {
        self.silence.len() as f64 / 2.0 / self.opts.sample_rate as f64
    }

    fn queue_silence(&mut self) {
        let secs = self.frame_secs();
        let start = self.sent_until.max(self.enqueued_until);
        self.queue.push_back(Frame {
            data: self.silence.clone(),
            start,
            end: start + secs,
            replay: false,
            ready: None,
        });
        self.enqueued_until = start + secs;
    }

    // ---- stalls ----------------------------------------------------------------------

    fn watching_stall(&self) -> bool {
        self.link == Link::Up
            && self.sent_since_heard
            && matches!(self.phase, Phase::Streaming | Phase::Padding)
    }

    fn stall_due(&self) -> Instant {
        self.last_heard + self.opts.stall_timeout
    }

    // ---- ending ----------------------------------------------------------------------

    /// Once input is over and everything queued is sent, finish the open turn the best way
    /// the server allows.
    async fn maybe_finish_input(&mut self) {
        if self.input_open
            || self.phase != Phase::Streaming
            || self.link != Link::Up
            || !self.queue.is_empty()
        {
            return;
        }
        if !self.audio_finished_sent {
            self.audio_finished_sent = true;
            for (at, control) in std::mem::take(&mut self.timed) {
                self.warn(
                    "control_not_applied",
                    format!(
                        "{control:?} was due at {at}s of audio, but the audio ended at {:.2}s",
                        self.sent_until
                    ),
                );
            }
            let reason = self.end_reason.clone();
            self.emit(Event::Client(ClientEvent::AudioFinished {
                reason,
                audio_seconds: self.sent_until,
                frames: self.outcome.totals.frames_sent,
                bytes: self.outcome.totals.bytes_sent,
            }));
        }
        if self.outcome.output_closed {
            self.close_stream().await;
        } else if self.opts.endpoint.capabilities.force_end_turn {
            if self.send_control(ClientMessage::ForceEndTurn).await {
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
        self.queue.clear();
        self.close_sent = self.send_control(ClientMessage::CloseStream).await;
        self.phase = Phase::Closing;
        self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
    }

    fn waiting(&self) -> bool {
        self.link == Link::AwaitConnected
            || (self.link == Link::Up
                && matches!(self.phase, Phase::AwaitForceEnd | Phase::Closing))
            || (self.phase == Phase::Closing && self.link == Link::Down)
    }

    async fn on_deadline(&mut self) -> Flow {
        if self.link == Link::AwaitConnected {
            return Flow::Reconnect(format!(
                "the server accepted the connection but sent no Connected message within {}s",
                CONNECTED_TIMEOUT.as_secs()
            ));
        }
        match self.phase {
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
                if self.close_sent {
                    self.warn(
                        "close_unanswered",
                        format!(
                            "the server did not close the stream within {}s of CloseStream; closing it",
                            FINISH_IDLE_TIMEOUT.as_secs()
                        ),
                    );
                }
                if let Some(mut tx) = self.tx.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
                }
                self.finish_unconfirmed("stream_closed");
                if !self.close_sent {
                    self.outcome.error = Some(FluxError::Connection(format!(
                        "the connection broke while the stream was closing{}",
                        self.request_suffix()
                    )));
                }
                Flow::Stop
            }
        }
    }

    fn finish_unconfirmed(&mut self, reason: &str) {
        if let Some(t) = self.turns.take_unconfirmed() {
            self.outcome.totals.unconfirmed_turns += 1;
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

/// A fatal `Error` worth a new connection: the server's own trouble (internal errors,
/// timeouts, overload, a restart), not something flux sent.
fn retryable_error(error: &Notice, close: Option<CloseCode>) -> bool {
    let code = error.code.as_deref().unwrap_or("");
    let server_side = ["INTERNAL", "UNAVAILABLE", "TIMEOUT", "OVERLOAD", "NET-"]
        .iter()
        .any(|k| code.contains(k));
    let close_says_retry = matches!(
        close.map(u16::from),
        Some(1011) | Some(1012) | Some(1013) | Some(1014)
    );
    let client_fault = ["UNPARSABLE", "INVALID", "UNSUPPORTED", "AUTH", "PERMISSION"]
        .iter()
        .any(|k| code.contains(k));
    !client_fault && (server_side || close_says_retry)
}

/// Merges a successful Configure into the configuration applied so far (later wins; lists
/// replace), so one message re-applies everything on a new connection.
fn merge(applied: Option<Configure>, next: Configure) -> Configure {
    let Some(mut base) = applied else {
        return next;
    };
    if let Some(t) = next.thresholds {
        let b = base.thresholds.get_or_insert_with(Thresholds::default);
        b.eot_threshold = t.eot_threshold.or(b.eot_threshold);
        b.eager_eot_threshold = t.eager_eot_threshold.or(b.eager_eot_threshold);
        b.eot_timeout_ms = t.eot_timeout_ms.or(b.eot_timeout_ms);
    }
    base.keyterms = next.keyterms.or(base.keyterms);
    base.language_hints = next.language_hints.or(base.language_hints);
    base.numerals = next.numerals.or(base.numerals);
    base
}

/// Moves a connection's TurnInfo onto the stream's timeline: its times start at the
/// connection's offset and its turn indices after the turns already finished.
fn shift(received: Received, time: f64, turns: u64) -> Received {
    if time == 0.0 && turns == 0 {
        return received;
    }
    let Received { mut raw, message } = received;
    if !matches!(message, ServerMessage::TurnInfo(_)) {
        return Received { message, raw };
    }
    let add = |v: &mut Value, by: f64| {
        if let Some(x) = v.as_f64() {
            *v = Value::from(round6(x + by));
        }
    };
    if let Value::Object(map) = &mut raw {
        for key in ["audio_window_start", "audio_window_end"] {
            if let Some(v) = map.get_mut(key) {
                add(v, time);
            }
        }
        if let Some(v) = map.get_mut("turn_index")
            && let Some(i) = v.as_u64()
        {
            *v = Value::from(i + turns);
        }
        if let Some(Value::Array(words)) = map.get_mut("words") {
            for w in words.iter_mut().filter_map(Value::as_object_mut) {
                for key in ["start", "end"] {
                    if let Some(v) = w.get_mut(key) {
                        add(v, time);
                    }
                }
            }
        }
    }
    ServerMessage::from_value(raw.clone()).unwrap_or(Received { message, raw })
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", sanitize(reason, 200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_moves_times_and_turn_indices_only() {
        let text = r#"{"type":"TurnInfo","event":"EndOfTurn","turn_index":1,"audio_window_start":0.5,"audio_window_end":2.0,"transcript":"a b","words":[{"word":"a","confidence":0.9,"start":0.6,"end":0.9},{"word":"b","confidence":0.9}],"end_of_turn_confidence":0.8,"sequence_id":7}"#;
        let r = shift(ServerMessage::parse(text).unwrap(), 10.25, 3);
        assert_eq!(r.raw["turn_index"], 4);
        assert_eq!(r.raw["audio_window_start"], 10.75);
        assert_eq!(r.raw["audio_window_end"], 12.25);
        assert_eq!(r.raw["words"][0]["start"], 10.85);
        assert!(r.raw["words"][1].get("start").is_none());
        assert_eq!(r.raw["sequence_id"], 7);
        let ServerMessage::TurnInfo(t) = r.message else {
            panic!()
        };
        assert_eq!(t.turn_index, 4);
        // No offset: the message is untouched, byte for byte.
        let r = shift(ServerMessage::parse(text).unwrap(), 0.0, 0);
        assert_eq!(r.raw.to_string(), text);
    }

    #[test]
    fn retryable_errors_are_the_servers_own_trouble() {
        let n = |c: &str| Notice::new(c, "d");
        assert!(retryable_error(&n("INTERNAL_SERVER_ERROR"), None));
        assert!(retryable_error(&n("SOMETHING"), Some(CloseCode::Error)));
        assert!(!retryable_error(&n("SOMETHING"), None));
        assert!(!retryable_error(
            &n("UNPARSABLE_CLIENT_MESSAGE"),
            Some(CloseCode::Error)
        ));
    }

    #[test]
    fn configures_merge_later_wins_lists_replace() {
        let a = Configure {
            thresholds: Some(Thresholds {
                eot_threshold: Some(0.8),
                eot_timeout_ms: Some(6000),
                ..Default::default()
            }),
            keyterms: Some(vec!["x".into()]),
            ..Default::default()
        };
        let b = Configure {
            thresholds: Some(Thresholds {
                eot_threshold: Some(0.9),
                ..Default::default()
            }),
            keyterms: Some(vec![]),
            numerals: Some(true),
            ..Default::default()
        };
        let m = merge(Some(a), b);
        let t = m.thresholds.unwrap();
        assert_eq!((t.eot_threshold, t.eot_timeout_ms), (Some(0.9), Some(6000)));
        assert_eq!(m.keyterms, Some(vec![]));
        assert_eq!(m.numerals, Some(true));
    }
}
