//! The session's event loop: one logical stream over one or more connections.
//!
//! Things that can happen at any moment — a server message, a finished connection attempt, a
//! control request, a frame from the audio thread, a timer — each have one handler on [`Run`]
//! (in `link.rs`, `incoming.rs`, `sending.rs` and `ending.rs`). `phase` says how far the
//! stream has got (streaming, ending, closing); `link` says whether a connection is up. They
//! are separate because a connection can drop in any phase. The plain parts do the thinking:
//! [`Pacer`] (when a frame is due), [`Replay`] (the open turn's audio), [`Reconnect`]
//! (backoff and budget), [`Configures`] (the Configure queue), [`Timeline`] (times and turn
//! indices across connections).
//!
//! Reconnecting without losing speech: every frame sent since the last finished turn stays in
//! the replay buffer. After an unexpected drop (reset, close 1006/1011–1014, a retryable
//! `Error`, or a stall), flux reconnects with backoff and jitter, sends that audio again, and
//! shifts the new connection's times and turn indices so the output reads as one stream.
//! Audio keeps being taken from a live source while disconnected.

use super::configure::Configures;
use super::connect::{self, ConnectFailure, Connection, Retry};
use super::frames::Queue;
use super::latency::{AddedLatency, Histogram};
use super::pacer::{Pacer, SentLog};
use super::reconnect::Reconnect;
use super::replay::Replay;
use super::tap::{Tap, TapThread};
use super::timeline::Timeline;
use super::turns::TurnTracker;
use super::{ClientEvent, Control, Event, Feed, Outcome, SessionOptions};
use crate::error::FluxError;
use crate::event::Sink;
use crate::protocol::Notice;
use crate::transport::{Broken, Message, PipeRx, PipeTx, Transport};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// How long to wait for the server's `Connected` message after the upgrade.
pub(super) const CONNECTED_TIMEOUT: Duration = Duration::from_secs(10);
/// While finishing, how long the server may stay silent before flux moves on.
pub(super) const FINISH_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Server messages handed to the output as one batch, at most: about what one 8 KiB socket
/// read holds of Flux's `TurnInfo` messages.
const BATCH_MESSAGES: usize = 32;

type Connecting = BoxFuture<'static, Result<Connection, ConnectFailure>>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
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
pub(super) enum Link {
    /// No connection; one will be attempted when `retry_at` comes (and audio has arrived).
    Down,
    /// A connection attempt is running.
    Connecting,
    /// Upgraded; waiting for the server's `Connected`.
    AwaitConnected,
    Up,
}

/// Whether the loop goes on.
#[derive(Debug, PartialEq)]
pub(super) enum Flow {
    Continue,
    Stop,
    /// The connection is lost or useless; reconnect if the budget allows.
    Reconnect(String),
    /// The transport gave the connection up on purpose (SageMaker's 30-minute cap): connect
    /// again at once, outside the reconnect budget.
    MoveOn(String),
}

pub(super) struct Run<'a> {
    pub opts: &'a SessionOptions,
    pub transport: Arc<dyn Transport>,
    pub sink: &'a mut dyn Sink,
    pub tx: Option<Box<dyn PipeTx>>,
    pub link: Link,
    pub phase: Phase,
    pub turns: TurnTracker,
    pub outcome: Outcome,
    pub fatal: Option<Notice>,
    /// When the current wait gives up (AwaitConnected, AwaitForceEnd, Closing).
    pub deadline: Instant,
    /// When the next connection attempt starts (link Down).
    pub retry_at: Instant,
    pub reconnect: Reconnect,
    /// The last failed connection attempt's error: when the budget is spent, it decides the
    /// exit code (a 5xx stays a server error, a 429 a connection failure).
    pub last_connect_error: Option<FluxError>,
    /// A connection has been up before: the next one is a reconnection.
    pub connected_once: bool,
    /// The source has delivered audio: only then is a connection worth opening.
    pub heard_audio: bool,
    /// `CloseStream` went out: a close without status from now on is success.
    pub close_sent: bool,
    /// New audio is still being taken: the source has not ended and nobody asked to finish.
    pub input_open: bool,
    pub audio_finished_sent: bool,
    pub end_reason: String,
    pub queue: Queue,
    pub replay: Replay,
    pub pacer: Pacer,
    /// When each frame went, for end-of-turn latency.
    pub sent_log: SentLog,
    /// Stream time already sent, including silence.
    pub sent_until: f64,
    pub padding_sent: f64,
    pub timeline: Timeline,
    pub last_heard: Instant,
    pub sent_since_heard: bool,
    pub configures: Configures,
    pub force_end_answered: bool,
    /// Requests to apply at a stream time, in arrival order.
    pub timed: Vec<(f64, Control)>,
    pub tap: Option<TapThread>,
    /// When each frame of the batch being sent could first have gone.
    pub in_batch: Vec<Instant>,
    pub send_latency: Histogram,
    pub output_latency: Histogram,
}

pub(super) async fn run(
    opts: &SessionOptions,
    transport: Arc<dyn Transport>,
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
        transport,
        sink,
        tx: None,
        link: Link::Down,
        phase: Phase::Streaming,
        turns: TurnTracker::default(),
        outcome: Outcome::default(),
        fatal: None,
        deadline: now,
        retry_at: now,
        reconnect: Reconnect::new(opts.max_reconnects),
        last_connect_error: None,
        connected_once: false,
        heard_audio: false,
        close_sent: false,
        input_open: true,
        audio_finished_sent: false,
        end_reason: "end_of_input".into(),
        queue: Queue::new(opts.frame_bytes, opts.sample_rate),
        replay: Replay::default(),
        pacer: Pacer::new(opts.pace, opts.live_source, now),
        sent_log: SentLog::default(),
        sent_until: 0.0,
        padding_sent: 0.0,
        timeline: Timeline::default(),
        last_heard: now,
        sent_since_heard: false,
        configures: Configures::default(),
        force_end_answered: false,
        timed: Vec::new(),
        tap,
        in_batch: Vec::with_capacity(32),
        send_latency: Histogram::default(),
        output_latency: Histogram::default(),
    };
    let mut rx: Option<Box<dyn PipeRx>> = None;
    let mut connecting: Option<Connecting> = None;
    let mut controls_open = true;
    loop {
        if run.may_connect() && connecting.is_none() && Instant::now() >= run.retry_at {
            connecting = Some(run.start_connect());
            run.link = Link::Connecting;
        }
        if run.phase == Phase::Padding && run.link == Link::Up && run.queue.is_empty() {
            run.queue_silence();
        }
        let flow = tokio::select! {
            biased;
            incoming = next_message(&mut rx) => {
                // The messages that are already there (one socket read holds many at --fast)
                // reach the output as one batch: one wake-up of its thread, one write. At
                // most a read's worth, so the first one's line does not wait for a backlog.
                run.sink.begin_batch();
                let mut flow = run.on_incoming(incoming).await;
                let mut taken = 1;
                while flow == Flow::Continue && taken < BATCH_MESSAGES {
                    let Some(more) = next_message(&mut rx).now_or_never() else {
                        break;
                    };
                    taken += 1;
                    flow = run.on_incoming(more).await;
                }
                run.end_batch();
                flow
            }
            result = poll_connect(&mut connecting) => {
                connecting = None;
                match result {
                    Ok(conn) => {
                        rx = Some(conn.pipe.rx);
                        run.on_connected(conn.pipe.tx, conn.request_id).await
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
            _ = sleep_until(run.retry_at), if run.may_connect() && connecting.is_none() => {
                Flow::Continue
            }
        };
        let planned = matches!(flow, Flow::MoveOn(_));
        match flow {
            Flow::Continue => {}
            Flow::Stop => break,
            Flow::Reconnect(reason) | Flow::MoveOn(reason) => {
                rx = None;
                if let Some(mut tx) = run.tx.take() {
                    // Best effort: the connection is being abandoned either way.
                    let _ = tokio::time::timeout(Duration::from_millis(200), tx.close()).await;
                }
                let next = if planned {
                    run.move_on(reason)
                } else {
                    run.schedule_reconnect(reason)
                };
                if next == Flow::Stop {
                    break;
                }
            }
        }
    }
    drop(connecting);
    run.outcome.totals.audio_seconds = run.sent_until;
    run.outcome.totals.turns = run.turns.finished();
    run.outcome.totals.added_latency = AddedLatency {
        send: run.send_latency.summary(),
        output: run.output_latency.summary(),
    };
    run.outcome.send_latency = Some(std::mem::take(&mut run.send_latency));
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
async fn next_message(rx: &mut Option<Box<dyn PipeRx>>) -> Option<Result<Message, Broken>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The running connection attempt's result; never resolves while there is none.
async fn poll_connect(connecting: &mut Option<Connecting>) -> Result<Connection, ConnectFailure> {
    match connecting {
        Some(attempt) => attempt.await,
        None => std::future::pending().await,
    }
}

impl Run<'_> {
    pub(super) fn emit(&mut self, event: Event) {
        if self.outcome.output_closed {
            return;
        }
        if let Err(e) = self.sink.take(event) {
            self.output_failed(&e);
        }
    }

    /// The end of a batch of server messages: the sink passes on what it held back.
    fn end_batch(&mut self) {
        if let Err(e) = self.sink.end_batch()
            && !self.outcome.output_closed
        {
            self.output_failed(&e);
        }
    }

    fn output_failed(&mut self, e: &io::Error) {
        self.outcome.output_closed = true;
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("flux: error: cannot write output: {e}");
        }
    }

    pub(super) fn warn(&mut self, code: &str, message: String) {
        self.emit(Event::Client(ClientEvent::Warning {
            code: code.to_string(),
            message,
        }));
    }

    /// A connection is wanted now: none is up or being made, and there is audio to send
    /// (an empty input never opens a billable connection).
    fn may_connect(&self) -> bool {
        self.link == Link::Down && (self.heard_audio || self.connected_once)
    }

    fn start_connect(&self) -> Connecting {
        let transport = self.transport.clone();
        let endpoint = self.opts.endpoint.clone();
        let timeout = self.opts.connect_timeout;
        async move { connect::connect(transport.as_ref(), &endpoint, timeout).await }.boxed()
    }

    pub(super) fn request_suffix(&self) -> String {
        match &self.outcome.request_id {
            Some(id) => format!(" (request id {id})"),
            None => String::new(),
        }
    }

    /// A failed attempt: whether to try again.
    pub(super) fn on_connect_failed(&mut self, failure: ConnectFailure) -> Flow {
        self.link = Link::Down;
        let retry = match failure.retry {
            Retry::Never => false,
            Retry::Busy => true,
            // The first connection fails fast on a wrong URL or a server that is not there.
            Retry::Network => self.connected_once,
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
}
