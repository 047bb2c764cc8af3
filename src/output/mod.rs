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
}

/// Writes one complete line and flushes it: the unit of output that a reader can rely on.
pub(crate) fn write_line(out: &mut dyn io::Write, line: &str) -> io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}
