//! The session never waits for a sink. The session gets a [`Forward`] sink that only queues
//! a copy of each event and returns; one output thread for the whole process runs the real
//! sinks (live view, text, JSONL, captions, status, progress) of every session from their
//! queues, so a batch of 100 streams has one output thread, not 100 (a thread per stream cost
//! a wake-up and a context switch per event per stream: 10.4 % of a core at 100 streams
//! against 6.2 % without). A reader that stops reading (a paused `| less`, Ctrl-S on the
//! terminal) blocks the output thread only: socket reads, pings and pacing go on.
//!
//! - Nothing is dropped: pending events wait in memory. Past [`WARN_BYTES`] of pending output
//!   for one session (estimated from the events' size) flux says so once on stderr, and keeps
//!   everything.
//! - Each session's events are written in the order it handed them over, by its own sinks;
//!   sessions with output pending take turns, a batch of events each, so a busy stream does
//!   not hold the others' output back (a sink that blocks, such as a paused stdout, holds up
//!   every session's output, which is what sharing that stdout means anyway).
//! - The live view takes every pending event but redraws once per batch, so a writer that
//!   fell behind drops only intermediate redraws of the open turn, never a finished turn.
//! - When a write fails (a closed stdout is `BrokenPipe`), the next event that session hands
//!   over gets that error, so the session ends as it always did (quietly for a closed pipe);
//!   other sessions go on. A sink that panics fails its own session's output the same way.
//! - [`drain`] waits for everything the session queued to be written
//!   and gives its sinks back, so the closing lines (assertions, summary) are written after
//!   every other line.
//! - `added_latency.output` is measured here: from the moment the session handed a server
//!   message over (just after reading it) to its output being written and flushed.
//! - Batches, to spare wake-ups and writes: the session hands over the server messages that
//!   were already there together (at most 32, about one socket read; [`Sink::begin_batch`]),
//!   and the output thread is woken once, when such a batch ends, not per event (a wake-up is
//!   a futex call and a context switch, dearer than formatting the event). The thread writes
//!   what it takes as one batch too: the JSONL and text sinks hold its lines and write them
//!   with one `write` and one flush at its end, at once, so a line waits only for its batch.
//!   Events moved in (`Sink::take`) are not copied.
//! - The direct path, to spare the thread's wake-ups altogether: when the session's sinks
//!   write plain lines to stdout (and stderr) only ([`Forward::write_directly`]), the session
//!   writes a batch on its own thread if that cannot block: the lane has nothing queued and
//!   the thread is not writing it (so the order holds), no other batch is being written
//!   (`Hub::writing`, only tried), and every descriptor is a regular file, /dev/null, or a
//!   pipe that is empty and holds the batch four times over (src/output/room.rs). Otherwise
//!   the batch goes to the thread as above: a full or unread pipe, a terminal (Ctrl-S), a
//!   socket, the live view. Only another process writing to the same pipe in the instant
//!   between the check and the write could make that write wait.

use crate::event::{ClientEvent, LatencySummary};
use crate::output::live::LiveSink;
use crate::output::{Fanout, Sink};
use crate::session::Event;
use crate::session::latency::Histogram;
use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::Instant;
use tokio::sync::oneshot;

/// Pending output past which flux warns (once): 8 MiB, many minutes of a busy conversation's
/// JSONL. docs/live.md and docs/jsonl.md give this figure.
pub const WARN_BYTES: usize = 8 << 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The output thread and the sessions (lanes) with output waiting for it.
struct Hub {
    ready: Mutex<Ready>,
    wake: Condvar,
    /// Held by whoever is writing a batch: the thread, or a session writing its own
    /// ([`Forward`]'s direct path, which only tries it: the thread may be stuck in a write).
    writing: Mutex<()>,
}

#[derive(Default)]
struct Ready {
    lanes: VecDeque<Arc<Lane>>,
    /// The thread is waiting for work: only then does handing work over need a wake-up.
    idle: bool,
}

impl Hub {
    /// A hub with its thread running, or `None` when the thread cannot start.
    fn start() -> Option<Arc<Hub>> {
        let hub = Arc::new(Hub {
            ready: Mutex::default(),
            wake: Condvar::new(),
            writing: Mutex::default(),
        });
        let theirs = hub.clone();
        std::thread::Builder::new()
            .name("flux-output".into())
            .spawn(move || theirs.run())
            .ok()?;
        Some(hub)
    }

    /// Queues a lane for the thread (the caller has marked it scheduled).
    fn push(&self, lane: Arc<Lane>) {
        let mut ready = lock(&self.ready);
        ready.lanes.push_back(lane);
        if ready.idle {
            ready.idle = false;
            drop(ready);
            self.wake.notify_one();
        }
    }

    fn run(&self) {
        loop {
            let lane = {
                let mut ready = lock(&self.ready);
                loop {
                    if let Some(lane) = ready.lanes.pop_front() {
                        break lane;
                    }
                    ready.idle = true;
                    ready = self
                        .wake
                        .wait(ready)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            self.serve(lane);
        }
    }

    /// Writes what `lane` has pending, then queues it again, finishes it, or leaves it idle.
    fn serve(&self, lane: Arc<Lane>) {
        let batch = {
            let mut state = lock(&lane.state);
            state.bytes = 0;
            std::mem::take(&mut state.events)
        };
        if !batch.is_empty() {
            let _turn = lock(&self.writing);
            lane.write(&batch);
        }
        let mut state = lock(&lane.state);
        if !state.events.is_empty() {
            drop(state);
            self.push(lane);
        } else if state.closed {
            state.scheduled = false;
            drop(state);
            let done = {
                let mut out = lock(&lane.out);
                out.written.output_latency = out.latency.summary();
                out.done.take()
            };
            if let Some(done) = done {
                let _ = done.send(());
            }
        } else {
            state.scheduled = false;
        }
    }
}

/// The process's output thread, started on first use.
fn process_hub() -> Option<Arc<Hub>> {
    static HUB: OnceLock<Option<Arc<Hub>>> = OnceLock::new();
    HUB.get_or_init(Hub::start).clone()
}

/// One session's queue and sinks.
struct Lane {
    state: Mutex<State>,
    /// Only the output thread writes through these, until [`drain`] takes them back.
    out: Mutex<Out>,
}

impl Lane {
    /// Writes a batch through the lane's sinks (the caller holds the hub's writing turn); a
    /// write that fails is kept for the sinks' owner and handed to the session on its next
    /// event.
    fn write(&self, batch: &VecDeque<(Event, Instant)>) {
        let mut out = lock(&self.out);
        if let Some(e) = out.write(batch) {
            lock(&self.state).failed = Some((e.kind(), e.to_string()));
            out.written.failed = Some(e);
        }
    }
}

#[derive(Default)]
struct State {
    events: VecDeque<(Event, Instant)>,
    /// Estimated bytes of output pending.
    bytes: usize,
    /// Queued for the output thread, or being written by it.
    scheduled: bool,
    /// The session is over: write what is left and give the sinks back.
    closed: bool,
    /// A write failed: its kind and message, handed to the session on its next event.
    failed: Option<(io::ErrorKind, String)>,
    warned: bool,
}

struct Out {
    written: Written,
    latency: Histogram,
    /// Told when everything is written after the session closed its lane.
    done: Option<oneshot::Sender<()>>,
}

impl Out {
    /// Writes a batch (unless an earlier write failed); the error of a write that fails now.
    fn write(&mut self, batch: &VecDeque<(Event, Instant)>) -> Option<io::Error> {
        if self.written.failed.is_some() {
            return None; // nothing more is written; the session was told and ends
        }
        let result = catch_unwind(AssertUnwindSafe(|| write_batch(&mut self.written, batch)));
        let now = Instant::now();
        for (event, at) in batch {
            if matches!(event, Event::Server(_)) {
                self.latency.record(now.saturating_duration_since(*at));
            }
        }
        match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(io::Error::other("an output sink failed (panicked)")),
        }
    }
}

/// The sink the session writes to: queues, never blocks on output.
pub struct Forward {
    lane: Arc<Lane>,
    hub: Option<Arc<Hub>>,
    warn_bytes: usize,
    /// How to warn about a long queue (stderr, off the session's thread).
    warn: fn(usize),
    /// Inside the session's batch (what one socket read delivered): the output thread is
    /// woken once, when the batch ends, not per event. A wake-up (a futex call and, on a
    /// thread that has gone to sleep, a context switch) cost more than formatting the event.
    holding: bool,
    /// Events were queued in this batch and the output thread has not been told.
    unannounced: bool,
    /// Where the sinks write, when the session may write a batch itself (see the header).
    direct: Direct,
}

/// The descriptors a lane's sinks write to, for the direct path; empty: never direct.
#[derive(Default)]
struct Direct {
    #[cfg(unix)]
    fds: Vec<(std::os::fd::BorrowedFd<'static>, crate::output::room::Kind)>,
}

impl Direct {
    #[cfg(unix)]
    fn new(fds: &[std::os::fd::BorrowedFd<'static>]) -> Direct {
        use crate::output::room::{Kind, kind};
        let fds: Vec<_> = fds.iter().map(|fd| (*fd, kind(*fd))).collect();
        if fds.iter().any(|(_, k)| *k == Kind::May) {
            return Direct::default();
        }
        Direct { fds }
    }

    /// Never direct (no descriptors, or one that may block).
    fn is_off(&self) -> bool {
        #[cfg(unix)]
        return self.fds.is_empty();
        #[cfg(not(unix))]
        return true;
    }

    /// Whether writing about `bytes` to every descriptor returns without waiting now.
    #[cfg(unix)]
    fn takes(&self, bytes: usize) -> bool {
        use crate::output::room::{Kind, pipe_takes};
        !self.fds.is_empty()
            && self.fds.iter().all(|(fd, kind)| match kind {
                Kind::Never => true,
                Kind::Pipe => pipe_takes(*fd, bytes),
                Kind::May => false,
            })
    }

    #[cfg(not(unix))]
    fn takes(&self, _bytes: usize) -> bool {
        false
    }
}

impl Forward {
    fn queue(&mut self, event: Event) -> io::Result<()> {
        let mut state = lock(&self.lane.state);
        if let Some((kind, message)) = &state.failed {
            return Err(io::Error::new(*kind, message.clone()));
        }
        state.bytes += weight(&event);
        state.events.push_back((event, Instant::now()));
        if state.bytes > self.warn_bytes && !state.warned {
            state.warned = true;
            (self.warn)(self.warn_bytes);
        }
        if self.holding {
            self.unannounced = true;
        } else {
            self.announce(state);
        }
        Ok(())
    }

    /// Writes what is pending here when that cannot block (the direct path); otherwise
    /// queues the lane for the output thread unless it is queued (or being written) already.
    fn announce(&self, mut state: MutexGuard<'_, State>) {
        // Not scheduled: the thread has written everything earlier and is not holding this
        // lane, and only this session schedules it, so writing here keeps the order.
        if !state.scheduled
            && let Some(hub) = &self.hub
            && !self.direct.is_off()
        {
            let turn = match hub.writing.try_lock() {
                Ok(turn) => Some(turn),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None, // the thread is writing: queue
            };
            // Asked while holding the turn: nothing else of this process writes to the pipe
            // between the question and the write.
            if let Some(_turn) = turn
                && self.direct.takes(state.bytes)
            {
                let batch = std::mem::take(&mut state.events);
                state.bytes = 0;
                drop(state);
                self.lane.write(&batch);
                return;
            }
        }
        let wake = !state.scheduled;
        state.scheduled = true;
        drop(state);
        if wake && let Some(hub) = &self.hub {
            hub.push(self.lane.clone());
        }
    }
}

impl Sink for Forward {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.queue(event.clone())
    }

    /// The session's own events are moved, never copied (a `TurnInfo` with its JSON was a
    /// deep copy per message).
    fn take(&mut self, event: Event) -> io::Result<()> {
        self.queue(event)
    }

    fn begin_batch(&mut self) {
        self.holding = true;
    }

    fn end_batch(&mut self) -> io::Result<()> {
        self.holding = false;
        if std::mem::take(&mut self.unannounced) {
            self.announce(lock(&self.lane.state));
        }
        Ok(())
    }
}

impl Forward {
    /// Lets the session write its output itself, when that cannot block (see the header):
    /// for sinks that write to stdout only (and to stderr, with `stderr_too`), with no
    /// live view, progress bar or meter between them and the descriptor. A terminal, a
    /// socket or anything but a regular file, /dev/null or a pipe keeps the thread.
    pub fn write_directly(&mut self, stderr_too: bool) {
        #[cfg(unix)]
        {
            use std::os::fd::BorrowedFd;
            // SAFETY: the standard descriptors stay open as long as the process (std never
            // closes them), and these borrows are only asked about, never closed.
            let (out, err) = unsafe { (BorrowedFd::borrow_raw(1), BorrowedFd::borrow_raw(2)) };
            let fds = if stderr_too {
                vec![out, err]
            } else {
                vec![out]
            };
            self.direct_to(&fds);
        }
        #[cfg(not(unix))]
        let _ = stderr_too;
    }

    #[cfg(unix)]
    fn direct_to(&mut self, fds: &[std::os::fd::BorrowedFd<'static>]) {
        if lock(&self.lane.out).written.live.is_none() {
            self.direct = Direct::new(fds);
        }
    }
}

/// The default warning: printed by a thread of its own, because stderr may be the very
/// terminal that is paused.
fn warn_on_stderr(limit: usize) {
    let _ = std::thread::Builder::new()
        .name("flux-warn".into())
        .spawn(move || {
            eprintln!(
                "flux: warning: output is not being read (over {} MB waiting); flux keeps \
                 streaming and holds every line in memory until it is read",
                limit >> 20
            );
        });
}

/// A rough size of an event's output: its text plus a fixed overhead for the JSON around it.
/// Never under the size of its line by more than the pipe rule's margin (`room::pipe_takes`
/// takes a quarter of the pipe): a server message is weighed from its JSON as received (any
/// field, any size), each string twice over for escapes.
fn weight(event: &Event) -> usize {
    match event {
        Event::Server(r) => 64 + json_weight(&r.raw),
        Event::Client(ClientEvent::UnconfirmedTurn {
            transcript, words, ..
        }) => 256 + 2 * transcript.len() + 96 * words.len(),
        Event::Client(_) => 256,
    }
}

fn json_weight(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    match v {
        Value::String(s) => 2 + 2 * s.len(),
        Value::Array(a) => 2 + a.iter().map(|x| 1 + json_weight(x)).sum::<usize>(),
        Value::Object(m) => {
            2 + m
                .iter()
                .map(|(k, x)| 4 + 2 * k.len() + json_weight(x))
                .sum::<usize>()
        }
        _ => 24,
    }
}

/// The sinks, back from the output thread.
pub struct Written {
    pub live: Option<LiveSink>,
    pub sinks: Fanout,
    /// Server message handed over → its output written.
    pub output_latency: Option<LatencySummary>,
    /// The write that failed, if any (a closed stdout is `BrokenPipe`).
    pub failed: Option<io::Error>,
}

/// One session's place on the output thread.
pub struct Writer {
    lane: Arc<Lane>,
    hub: Option<Arc<Hub>>,
    done: oneshot::Receiver<()>,
}

/// Hands `sinks` (and the live view's sink, drawn once per batch) to the process's output
/// thread. `quiet`: no warning about a long queue.
pub fn spawn(live: Option<LiveSink>, sinks: Fanout, quiet: bool) -> (Forward, Writer) {
    let warn: fn(usize) = if quiet { |_| {} } else { warn_on_stderr };
    spawn_on(process_hub(), live, sinks, WARN_BYTES, warn)
}

fn spawn_on(
    hub: Option<Arc<Hub>>,
    live: Option<LiveSink>,
    sinks: Fanout,
    warn_bytes: usize,
    warn: fn(usize),
) -> (Forward, Writer) {
    let (done_tx, done) = oneshot::channel();
    let failed = hub.is_none().then(thread_failed);
    let lane = Arc::new(Lane {
        state: Mutex::new(State {
            failed: failed.as_ref().map(|e| (e.kind(), e.to_string())),
            ..State::default()
        }),
        out: Mutex::new(Out {
            written: Written {
                live,
                sinks,
                output_latency: None,
                failed,
            },
            latency: Histogram::default(),
            done: Some(done_tx),
        }),
    });
    let forward = Forward {
        lane: lane.clone(),
        hub: hub.clone(),
        warn_bytes,
        warn,
        holding: false,
        unannounced: false,
        direct: Direct::default(),
    };
    (forward, Writer { lane, hub, done })
}

fn thread_failed() -> io::Error {
    io::Error::other("the output thread could not start")
}

/// Writes a batch as one: the sinks hold their lines and write them with one `write` and one
/// flush at its end (also after a failed event, so the other sinks' lines are not lost).
fn write_batch(w: &mut Written, batch: &VecDeque<(Event, Instant)>) -> io::Result<()> {
    w.sinks.begin_batch();
    let events = batch.iter().try_for_each(|(event, _)| {
        if let Some(live) = &mut w.live {
            live.absorb(event);
        }
        w.sinks.event(event)
    });
    let ended = w.sinks.end_batch();
    events?;
    ended?;
    match &mut w.live {
        Some(live) => live.paint(),
        None => Ok(()),
    }
}

impl Writer {
    /// Marks the session over; the receiver is told once everything is written.
    fn close(self) -> (Arc<Lane>, Option<oneshot::Receiver<()>>) {
        let Writer { lane, hub, done } = self;
        let Some(hub) = hub else {
            return (lane, None);
        };
        let mut state = lock(&lane.state);
        state.closed = true;
        let wake = !state.scheduled;
        state.scheduled = true;
        drop(state);
        if wake {
            hub.push(lane.clone());
        }
        (lane, Some(done))
    }
}

/// The sinks back from a lane the output thread has finished with.
fn take_written(lane: &Lane) -> Written {
    let mut out = lock(&lane.out);
    Written {
        live: out.written.live.take(),
        sinks: std::mem::replace(&mut out.written.sinks, Fanout(Vec::new())),
        output_latency: out.written.output_latency.take(),
        failed: out.written.failed.take(),
    }
}

/// Waits until everything the session queued is written (or a write failed), takes its sinks
/// back for the closing lines, and folds what it saw into the session's
/// outcome: a write that failed after the session's last event still ends the output (and a
/// failure other than a closed pipe is said, as the session says it), and `added_latency.output`
/// is the writer's measure.
/// The wait is an await, not a blocked thread, so signals (and a batch's other sessions) go
/// on while a slow reader catches up.
pub async fn drain(writer: Writer, outcome: &mut crate::session::Outcome) -> Written {
    let (lane, done) = writer.close();
    if let Some(done) = done {
        let _ = done.await;
    }
    let written = take_written(&lane);
    if let Some(e) = &written.failed
        && !outcome.output_closed
    {
        outcome.output_closed = true;
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("flux: error: cannot write output: {e}");
        }
    }
    outcome.totals.added_latency.output = written.output_latency.clone();
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ClientEvent;
    use crate::protocol::ServerMessage;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread::ThreadId;

    #[test]
    fn a_message_weighs_at_least_its_line_whatever_its_fields() {
        // The direct path trusts the weight against a quarter of the pipe: a server message
        // with a long field, or one flux has no type for, must not be weighed as a small one.
        let long = r"\u0001".repeat(5000);
        for text in [
            format!(r#"{{"type":"Warning","code":"X","description":"{long}"}}"#),
            format!(r#"{{"type":"Novel","payload":["{long}",{{"k":"{long}"}}]}}"#),
            format!(
                r#"{{"type":"TurnInfo","event":"Update","turn_index":0,"audio_window_start":0,"audio_window_end":1,"transcript":"hi","words":[],"end_of_turn_confidence":0.5,"extra":"{long}"}}"#
            ),
        ] {
            let received = ServerMessage::parse(&text).unwrap();
            let line = serde_json::to_string(&received.raw).unwrap().len() + 1;
            assert!(
                4 * weight(&Event::Server(received)) >= line,
                "{line} bytes: {text:.60}"
            );
        }
    }

    /// A lane on a hub of its own, writing to `sink`, with no warning about a long queue.
    fn on_own_hub(sink: impl Sink + 'static) -> (Forward, Writer) {
        spawn_on(
            Hub::start(),
            None,
            Fanout(vec![Box::new(sink)]),
            1 << 20,
            |_| {},
        )
    }

    /// What a test's session does at its end: wait for the output, take the sinks back.
    fn finish(writer: Writer) -> Written {
        let (lane, done) = writer.close();
        if let Some(done) = done {
            let _ = done.blocking_recv();
        }
        take_written(&lane)
    }

    /// A sink that blocks on a gate until the test opens it, then records.
    struct Gated {
        gate: mpsc::Receiver<()>,
        seen: Arc<Mutex<Vec<String>>>,
        fail_with: Option<io::ErrorKind>,
    }

    impl Sink for Gated {
        fn event(&mut self, event: &Event) -> io::Result<()> {
            let _ = self.gate.recv();
            if let Some(kind) = self.fail_with {
                return Err(io::Error::new(kind, "gone"));
            }
            if let Event::Client(ClientEvent::Warning { message, .. }) = event {
                self.seen.lock().unwrap().push(message.clone());
            }
            Ok(())
        }
    }

    /// A sink that records each warning's text and the thread that wrote it; fails or panics
    /// on the event whose text is `fail` or `panic`.
    struct Recording {
        seen: Arc<Mutex<Vec<(String, ThreadId)>>>,
    }

    impl Sink for Recording {
        fn event(&mut self, event: &Event) -> io::Result<()> {
            if let Event::Client(ClientEvent::Warning { message, .. }) = event {
                match message.as_str() {
                    "fail" => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone")),
                    "panic" => panic!("a sink that panics"),
                    _ => {}
                }
                let me = std::thread::current().id();
                self.seen.lock().unwrap().push((message.clone(), me));
            }
            Ok(())
        }
    }

    fn say(text: &str) -> Event {
        Event::Client(ClientEvent::Warning {
            code: "x".into(),
            message: text.into(),
        })
    }

    fn warning(i: usize) -> Event {
        say(&format!("line {i}"))
    }

    static WARNED: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn a_stalled_writer_never_blocks_the_session_and_loses_nothing() {
        let (open, gate) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Gated {
            gate,
            seen: seen.clone(),
            fail_with: None,
        };
        let (mut forward, writer) = spawn_on(
            Hub::start(),
            None,
            Fanout(vec![Box::new(sink)]),
            256 * 10,
            |_| {
                WARNED.fetch_add(1, Ordering::SeqCst);
            },
        );
        // The writer is stuck on the first event; the session goes on handing events over.
        for i in 0..100 {
            forward.event(&warning(i)).unwrap();
        }
        assert_eq!(WARNED.load(Ordering::SeqCst), 1, "warned once");
        assert!(seen.lock().unwrap().is_empty());
        for _ in 0..100 {
            open.send(()).unwrap();
        }
        let written = finish(writer);
        assert!(written.failed.is_none());
        let want: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        assert_eq!(*seen.lock().unwrap(), want);
    }

    #[test]
    fn a_failed_write_reaches_the_session() {
        let (open, gate) = mpsc::channel();
        let sink = Gated {
            gate,
            seen: Arc::default(),
            fail_with: Some(io::ErrorKind::BrokenPipe),
        };
        let (mut forward, writer) = on_own_hub(sink);
        forward.event(&warning(0)).unwrap();
        open.send(()).unwrap();
        let err = (0..1000)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(5));
                forward.event(&warning(1)).err()
            })
            .expect("the failure is reported");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        drop(open);
        let written = finish(writer);
        assert_eq!(
            written.failed.map(|e| e.kind()),
            Some(io::ErrorKind::BrokenPipe)
        );
    }

    #[test]
    fn sessions_share_one_thread_each_in_order_and_fail_alone() {
        let hub = Hub::start();
        let lanes: Vec<_> = (0..20)
            .map(|_| {
                let seen = Arc::new(Mutex::new(Vec::new()));
                let sink = Recording { seen: seen.clone() };
                let (forward, writer) = spawn_on(
                    hub.clone(),
                    None,
                    Fanout(vec![Box::new(sink)]),
                    1 << 20,
                    |_| {},
                );
                (forward, writer, seen)
            })
            .collect();
        let mut lanes = lanes;
        // Interleaved, as a batch's sessions hand events over; lane 3's sink fails on its
        // 50th event and lane 7's panics on its 60th.
        for i in 0..200 {
            for (k, (forward, _, _)) in lanes.iter_mut().enumerate() {
                let text = match (k, i) {
                    (3, 50) => "fail".to_string(),
                    (7, 60) => "panic".to_string(),
                    _ => format!("{k}:{i}"),
                };
                // A failed lane's session is told (on this or a later event) and stops.
                if forward.event(&say(&text)).is_err() {
                    assert!(k == 3 || k == 7, "lane {k} failed");
                }
            }
        }
        let mut threads = std::collections::HashSet::new();
        for (k, (_, writer, seen)) in lanes.into_iter().enumerate() {
            let written = finish(writer);
            let seen = seen.lock().unwrap();
            threads.extend(seen.iter().map(|(_, t)| *t));
            let texts: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
            let upto = match k {
                3 => 50,
                7 => 60,
                _ => 200,
            };
            let want: Vec<String> = (0..upto).map(|i| format!("{k}:{i}")).collect();
            assert_eq!(texts, want, "lane {k}");
            match k {
                3 => assert_eq!(
                    written.failed.map(|e| e.kind()),
                    Some(io::ErrorKind::BrokenPipe)
                ),
                7 => assert!(written.failed.is_some()),
                _ => assert!(written.failed.is_none(), "lane {k}"),
            }
            // The sinks come back for the closing lines.
            assert_eq!(written.sinks.0.len(), 1);
        }
        assert_eq!(threads.len(), 1, "one output thread for every session");
        assert_ne!(threads.iter().next(), Some(&std::thread::current().id()));
    }

    /// A writer that records each `write` call's bytes.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl io::Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn count(&self) -> usize {
            self.0.lock().unwrap().len()
        }

        /// Waits (up to a minute: a loaded machine) until `n` writes have happened.
        fn wait_for(&self, n: usize) {
            let deadline = Instant::now() + std::time::Duration::from_secs(60);
            while self.count() < n && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }

        /// Each write's lines, as the messages of the warnings they hold.
        fn messages(&self) -> Vec<Vec<String>> {
            let writes = self.0.lock().unwrap();
            writes
                .iter()
                .map(|w| {
                    String::from_utf8_lossy(w)
                        .lines()
                        .map(|l| {
                            let v: serde_json::Value = serde_json::from_str(l).unwrap();
                            v["message"].as_str().unwrap().to_string()
                        })
                        .collect()
                })
                .collect()
        }
    }

    #[test]
    fn a_batch_of_events_reaches_stdout_in_one_write_in_order() {
        let writes = Writes::default();
        let sink = crate::output::jsonl::JsonlSink::new(writes.clone());
        let (mut forward, writer) = on_own_hub(sink);
        forward.begin_batch();
        for i in 0..50 {
            forward.take(warning(i)).unwrap();
        }
        forward.end_batch().unwrap();
        writes.wait_for(1);
        // Outside a batch an event is passed on by itself, without waiting for the end.
        forward.event(&warning(50)).unwrap();
        writes.wait_for(2);
        assert_eq!(writes.count(), 2, "written before the session ended");
        let written = finish(writer);
        assert!(written.failed.is_none());
        let want: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
        assert_eq!(writes.messages(), [want, vec!["line 50".to_string()]]);
    }

    #[test]
    fn a_batch_whose_write_fails_ends_the_session_quietly() {
        struct Closed;
        impl io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = crate::output::jsonl::JsonlSink::new(Closed);
        let (mut forward, writer) = on_own_hub(sink);
        forward.begin_batch();
        for i in 0..5 {
            forward.take(warning(i)).unwrap();
        }
        forward.end_batch().unwrap();
        let err = (0..12000)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(5));
                forward.take(warning(9)).err()
            })
            .expect("the failure is reported");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let written = finish(writer);
        assert_eq!(
            written.failed.map(|e| e.kind()),
            Some(io::ErrorKind::BrokenPipe)
        );
    }

    #[test]
    fn without_an_output_thread_the_session_is_told_at_once() {
        let (mut forward, writer) = spawn_on(None, None, Fanout(Vec::new()), 1 << 20, |_| {});
        assert!(forward.event(&warning(0)).is_err());
        assert!(finish(writer).failed.is_some());
    }

    /// A pipe that lives as long as the test process (the direct path borrows it for good).
    #[cfg(target_os = "linux")]
    fn pipe() -> (io::PipeReader, &'static io::PipeWriter) {
        let (r, w) = io::pipe().unwrap();
        (r, Box::leak(Box::new(w)))
    }

    #[cfg(target_os = "linux")]
    fn batch(forward: &mut Forward, from: usize, to: usize) {
        forward.begin_batch();
        for i in from..to {
            forward.take(warning(i)).unwrap();
        }
        forward.end_batch().unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_session_writes_itself_only_while_the_pipe_is_empty_and_keeps_the_order() {
        use std::os::fd::AsFd;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Recording { seen: seen.clone() };
        let (mut forward, writer) = on_own_hub(sink);
        let (mut reader, out) = pipe();
        forward.direct_to(&[out.as_fd()]);
        let here = std::thread::current().id();
        batch(&mut forward, 0, 3); // empty pipe: written here
        io::Write::write_all(&mut &*out, b"x").unwrap(); // a byte the reader has not taken
        batch(&mut forward, 3, 6); // queued for the thread
        io::Read::read_exact(&mut reader, &mut [0u8; 1]).unwrap();
        batch(&mut forward, 6, 9); // empty again: here, after the thread's batch
        let written = finish(writer);
        assert!(written.failed.is_none());
        let seen = seen.lock().unwrap();
        let lines: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
        let want: Vec<String> = (0..9).map(|i| format!("line {i}")).collect();
        assert_eq!(lines, want, "one order, whoever wrote");
        let by_session: Vec<bool> = seen.iter().map(|(_, t)| *t == here).collect();
        let mut expected = vec![true; 3];
        expected.extend([false; 3]);
        // The third batch goes direct only once the thread has written the second.
        assert!(by_session[..6] == expected[..], "{by_session:?}");
        assert!(by_session[6..].iter().all(|b| *b == by_session[6]));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_pipe_sends_the_batch_to_the_thread_and_the_session_goes_on() {
        use crate::output::jsonl::JsonlSink;
        use std::os::fd::AsFd;
        let (mut reader, out) = pipe();
        // Fill the pipe to capacity: an empty pipe takes exactly its size in one write.
        let capacity =
            unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(out), libc::F_GETPIPE_SZ) };
        let filler = vec![b'.'; usize::try_from(capacity).unwrap()];
        io::Write::write_all(&mut &*out, &filler).unwrap();
        let sink = JsonlSink::new(out.try_clone().unwrap());
        let (mut forward, writer) = on_own_hub(sink);
        forward.direct_to(&[out.as_fd()]);
        // The session's side runs apart, so a session that blocked would show as a timeout
        // here rather than a test that hangs (this thread is the pipe's only reader).
        let (returned, back) = mpsc::channel();
        let session = std::thread::spawn(move || {
            batch(&mut forward, 0, 5);
            let queued = lock(&forward.lane.state).scheduled;
            returned.send(queued).unwrap();
            forward
        });
        let queued = back
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the session blocked on a full pipe");
        assert!(queued, "the batch went to the output thread");
        let forward = session.join().unwrap();
        let mut got = vec![0u8; filler.len()];
        io::Read::read_exact(&mut reader, &mut got).unwrap();
        assert_eq!(got, filler);
        let written = finish(writer);
        drop((forward, written));
        let mut rest = String::new();
        let mut buf = [0u8; 4096];
        while !rest.ends_with("\"line 4\"}\n") {
            let n = io::Read::read(&mut reader, &mut buf).unwrap();
            assert!(n > 0);
            rest.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        let order: Vec<usize> = (0..5)
            .map(|i| rest.find(&format!("\"line {i}\"")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{rest}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_terminal_or_socket_never_takes_the_direct_path() {
        use std::os::fd::AsFd;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Recording { seen: seen.clone() };
        let (mut forward, writer) = on_own_hub(sink);
        let (_r, out) = pipe();
        let socket: &'static _ =
            Box::leak(Box::new(std::os::unix::net::UnixStream::pair().unwrap()));
        forward.direct_to(&[out.as_fd(), socket.0.as_fd()]);
        batch(&mut forward, 0, 3);
        finish(writer);
        let here = std::thread::current().id();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(
            seen.iter().all(|(_, t)| *t != here),
            "a socket may block: the thread writes"
        );
    }
}
