//! Sinks render session events; they never decide protocol behaviour.
//!
//! stdout carries data (turn text, JSONL) and stderr carries people's messages. Each sink
//! writes whole lines and flushes them, so a reader never sees half a line and a closed
//! stdout surfaces as `BrokenPipe`, which the session takes as "stop quietly".

pub mod captions;
pub mod jsonl;
pub mod labelled;
pub mod live;
pub mod meter;
pub mod progress;
#[cfg(unix)]
pub mod room;
pub mod status;
pub mod terminal;
pub mod text;

use crate::event::Event;
pub use crate::event::Sink;
use std::io;
pub use terminal::Terminal;

/// Passes each event to several sinks in order (data first, then status).
pub struct Fanout(pub Vec<Box<dyn Sink>>);

impl Sink for Fanout {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        for sink in &mut self.0 {
            sink.event(event)?;
        }
        Ok(())
    }

    fn begin_batch(&mut self) {
        for sink in &mut self.0 {
            sink.begin_batch();
        }
    }

    /// Every sink's batch ends, even after one failed: the others' lines are still written.
    fn end_batch(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for sink in &mut self.0 {
            let result = sink.end_batch();
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

/// A sink's output as whole lines: each written and flushed at once, or, inside a batch
/// ([`Sink::begin_batch`]), held and written together with one `write` and one flush when the
/// batch ends (the output thread ends each batch as soon as it has formatted it, so a line
/// waits for the rest of its batch, never for more input). One buffer, reused: no allocation
/// per line.
pub(crate) struct Lines<W: io::Write> {
    out: W,
    buf: Vec<u8>,
    holding: bool,
}

impl<W: io::Write> Lines<W> {
    pub(crate) fn new(out: W) -> Self {
        Lines {
            out,
            buf: Vec::new(),
            holding: false,
        }
    }

    /// Adds one line, written by `fill` (without its newline); outside a batch it is written
    /// and flushed now. A `fill` that fails adds nothing.
    pub(crate) fn line_with(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let start = self.buf.len();
        if let Err(e) = fill(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        self.buf.push(b'\n');
        if self.holding {
            return Ok(());
        }
        self.write_out()
    }

    pub(crate) fn line(&mut self, line: &str) -> io::Result<()> {
        self.line_with(|buf| {
            buf.extend_from_slice(line.as_bytes());
            Ok(())
        })
    }

    pub(crate) fn hold(&mut self) {
        self.holding = true;
    }

    /// Writes and flushes what the batch held.
    pub(crate) fn release(&mut self) -> io::Result<()> {
        self.holding = false;
        self.write_out()
    }

    fn write_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        // Written or failed, the lines are done with: a failed output takes no more.
        self.buf.clear();
        result
    }
}

/// Writes one complete line and flushes it: the unit of output that a reader can rely on.
pub(crate) fn write_line(out: &mut dyn io::Write, line: &str) -> io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that records each `write` and `flush` call.
    #[derive(Clone, Default)]
    struct Calls(Arc<Mutex<Vec<String>>>);

    impl io::Write for Calls {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let text = String::from_utf8_lossy(buf).into_owned();
            self.0.lock().unwrap().push(text);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            self.0.lock().unwrap().push("flush".into());
            Ok(())
        }
    }

    #[test]
    fn lines_go_one_by_one_outside_a_batch_and_together_inside_one() {
        let calls = Calls::default();
        let mut lines = Lines::new(calls.clone());
        lines.line("a").unwrap();
        lines.hold();
        lines.line("b").unwrap();
        lines.line("c").unwrap();
        assert_eq!(
            *calls.0.lock().unwrap(),
            ["a\n", "flush"],
            "held until released"
        );
        lines.release().unwrap();
        lines.line("d").unwrap();
        assert_eq!(
            *calls.0.lock().unwrap(),
            ["a\n", "flush", "b\nc\n", "flush", "d\n", "flush"]
        );
        // An empty batch writes nothing, and a line whose formatting fails leaves no trace.
        lines.hold();
        let failed = lines.line_with(|buf| {
            buf.extend_from_slice(b"half");
            Err(io::Error::other("cannot format"))
        });
        assert!(failed.is_err());
        lines.release().unwrap();
        assert_eq!(calls.0.lock().unwrap().len(), 6);
    }
}
