//! The session never waits for a sink. The session gets a [`Forward`] sink that only queues
//! a copy of each event and returns; a writer thread runs the real sinks (live view, text,
//! JSONL, captions, status, progress) from the queue. A reader that stops reading (a paused
//! `| less`, Ctrl-S on the terminal) blocks the writer thread only: socket reads, pings and
//! pacing go on.
//!
//! - Nothing is dropped: pending events wait in memory. Past [`WARN_BYTES`] of pending output
//!   (estimated from the events' size) flux says so once on stderr, and keeps everything.
//! - The live view takes every pending event but redraws once per batch, so a writer that
//!   fell behind drops only intermediate redraws of the open turn, never a finished turn.
//! - When a write fails (a closed stdout is `BrokenPipe`), the next event the session hands
//!   over gets that error, so the session ends as it always did (quietly for a closed pipe).
//! - [`Writer::finish`] waits for everything queued to be written and gives the sinks back,
//!   so the closing lines (assertions, summary) are written after every other line.
//! - `added_latency.output` is measured here: from the moment the session handed a server
//!   message over (just after reading it) to its output being written and flushed.

use crate::event::LatencySummary;
use crate::output::live::LiveSink;
use crate::output::{Fanout, Sink};
use crate::protocol::ServerMessage;
use crate::session::Event;
use crate::session::latency::Histogram;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

/// Pending output past which flux warns (once): 8 MiB, many minutes of a busy conversation's
/// JSONL. docs/live.md and docs/jsonl.md give this figure.
pub const WARN_BYTES: usize = 8 << 20;

/// The queue between the session and the writer thread.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    events: VecDeque<(Event, Instant)>,
    /// Estimated bytes of output pending.
    bytes: usize,
    /// The session is over: write what is left and stop.
    closed: bool,
    /// A write failed: its kind and message, handed to the session on its next event.
    failed: Option<(io::ErrorKind, String)>,
    warned: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sink the session writes to: queues, never blocks on output.
pub struct Forward {
    queue: Arc<Queue>,
    warn_bytes: usize,
    /// How to warn about a long queue (stderr, off the session's thread).
    warn: fn(usize),
}

impl Sink for Forward {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let mut state = self.queue.lock();
        if let Some((kind, message)) = &state.failed {
            return Err(io::Error::new(*kind, message.clone()));
        }
        state.bytes += weight(event);
        state.events.push_back((event.clone(), Instant::now()));
        if state.bytes > self.warn_bytes && !state.warned {
            state.warned = true;
            (self.warn)(self.warn_bytes);
        }
        drop(state);
        self.queue.ready.notify_one();
        Ok(())
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
fn weight(event: &Event) -> usize {
    match event {
        Event::Server(r) => match &r.message {
            ServerMessage::TurnInfo(t) => 256 + t.transcript.len() + 96 * t.words.len(),
            _ => 256,
        },
        Event::Client(_) => 256,
    }
}

/// The sinks, back from the writer thread.
pub struct Written {
    pub live: Option<LiveSink>,
    pub sinks: Fanout,
    /// Server message handed over → its output written.
    pub output_latency: Option<LatencySummary>,
    /// The write that failed, if any (a closed stdout is `BrokenPipe`).
    pub failed: Option<io::Error>,
}

/// The writer thread.
pub struct Writer {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<Written>>,
}

/// Starts a writer thread for `sinks` (and the live view's sink, drawn once per batch).
/// `quiet`: no warning about a long queue.
pub fn spawn(live: Option<LiveSink>, sinks: Fanout, quiet: bool) -> (Forward, Writer) {
    let warn: fn(usize) = if quiet { |_| {} } else { warn_on_stderr };
    spawn_with(live, sinks, WARN_BYTES, warn)
}

fn spawn_with(
    live: Option<LiveSink>,
    sinks: Fanout,
    warn_bytes: usize,
    warn: fn(usize),
) -> (Forward, Writer) {
    let queue = Arc::new(Queue::default());
    let thread = {
        let queue = queue.clone();
        let mut written = Written {
            live,
            sinks,
            output_latency: None,
            failed: None,
        };
        std::thread::Builder::new()
            .name("flux-output".into())
            .spawn(move || {
                run(&queue, &mut written);
                written
            })
            .ok()
    };
    let forward = Forward {
        queue: queue.clone(),
        warn_bytes,
        warn,
    };
    (forward, Writer { queue, thread })
}

fn run(queue: &Queue, w: &mut Written) {
    let mut latency = Histogram::default();
    loop {
        let batch: Vec<(Event, Instant)> = {
            let mut state = queue.lock();
            while state.events.is_empty() && !state.closed {
                state = queue
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.events.is_empty() {
                break;
            }
            state.bytes = 0;
            state.events.drain(..).collect()
        };
        if w.failed.is_some() {
            continue; // nothing more is written; the session is told and ends
        }
        let result = write_batch(w, &batch);
        let now = Instant::now();
        for (event, at) in &batch {
            if matches!(event, Event::Server(_)) {
                latency.record(now.saturating_duration_since(*at));
            }
        }
        if let Err(e) = result {
            queue.lock().failed = Some((e.kind(), e.to_string()));
            w.failed = Some(e);
        }
    }
    w.output_latency = latency.summary();
}

fn write_batch(w: &mut Written, batch: &[(Event, Instant)]) -> io::Result<()> {
    for (event, _) in batch {
        if let Some(live) = &mut w.live {
            live.absorb(event);
        }
        w.sinks.event(event)?;
    }
    match &mut w.live {
        Some(live) => live.paint(),
        None => Ok(()),
    }
}

impl Writer {
    /// Waits until everything queued is written (or a write failed), then gives the sinks
    /// back for the closing lines.
    pub fn finish(mut self) -> Written {
        self.queue.lock().closed = true;
        self.queue.ready.notify_one();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(written)) => written,
            // The thread could not start or panicked: nothing was written through it.
            _ => Written {
                live: None,
                sinks: Fanout(Vec::new()),
                output_latency: None,
                failed: Some(io::Error::other("the output thread failed")),
            },
        }
    }
}

/// Waits for the writer (see [`Writer::finish`]) and folds what it saw into the session's
/// outcome: a write that failed after the session's last event still ends the output (and a
/// failure other than a closed pipe is said, as the session says it), and `added_latency.output`
/// is the writer's measure.
/// The wait runs off the runtime's thread, so signals (and a batch's other sessions) go on
/// while a slow reader catches up.
pub async fn drain(writer: Writer, outcome: &mut crate::session::Outcome) -> Written {
    let written = match tokio::task::spawn_blocking(move || writer.finish()).await {
        Ok(written) => written,
        Err(e) => Written {
            live: None,
            sinks: Fanout(Vec::new()),
            output_latency: None,
            failed: Some(io::Error::other(format!("the output thread failed: {e}"))),
        },
    };
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

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

    fn warning(i: usize) -> Event {
        Event::Client(ClientEvent::Warning {
            code: "x".into(),
            message: format!("line {i}"),
        })
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
        let (mut forward, writer) =
            spawn_with(None, Fanout(vec![Box::new(sink)]), 256 * 10, |_| {
                WARNED.fetch_add(1, Ordering::SeqCst);
            });
        // The writer is stuck on the first event; the session goes on handing events over.
        for i in 0..100 {
            forward.event(&warning(i)).unwrap();
        }
        assert_eq!(WARNED.load(Ordering::SeqCst), 1, "warned once");
        assert!(seen.lock().unwrap().is_empty());
        for _ in 0..100 {
            open.send(()).unwrap();
        }
        let written = writer.finish();
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
        let (mut forward, writer) = spawn(None, Fanout(vec![Box::new(sink)]), true);
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
        let written = writer.finish();
        assert_eq!(
            written.failed.map(|e| e.kind()),
            Some(io::ErrorKind::BrokenPipe)
        );
    }
}
