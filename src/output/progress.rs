//! A progress bar on stderr for inputs of known length (`flux file`) in the `text` and `jsonl`
//! formats: audio time of total, and speed.
//!
//! Printing while a bar is drawn tears both when stdout and stderr share a terminal (the line
//! lands after the bar, the bar is redrawn over it). Everything else written to that terminal
//! while the bar lives goes through [`Suspended`], which hides the bar, writes whole lines and
//! draws the bar again below them.

use super::Sink;
use crate::event::{ClientEvent, Event};
use crate::protocol::{ServerMessage, TurnEvent};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use std::io::{self, Write};
use std::time::Instant;

/// A bar for `total_secs` of audio on stderr. Its position is in milliseconds of audio. Draw
/// one only where stderr can redraw a line (`Terminal::stderr_redraw`); `colour` is the
/// terminal value's decision.
pub fn bar(total_secs: f64, colour: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(millis(total_secs)),
        ProgressDrawTarget::term_like_with_hz(Box::new(BarTerm), 10),
    );
    // No colour unless wanted: the template decides, so NO_COLOR holds whatever the terminal
    // library thinks.
    let template = if colour {
        "{bar:32.cyan/blue} {msg}"
    } else {
        "{bar:32} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Columns left free at the end of the bar's line. The bar's line is padded to the width it is
/// given, so the cursor waits at its end; a `^C` that the terminal echoes when Ctrl-C is
/// pressed must still land on the bar's own line, where the next redraw or clear erases it.
/// On a full-width line it would wrap to a new line, and the bar above it would be left on
/// screen after flux ends (issue 13).
const ECHO_ROOM: u16 = 2;

/// stderr as the bar sees it: the terminal, [`ECHO_ROOM`] columns narrower.
#[derive(Debug)]
struct BarTerm;

impl BarTerm {
    fn put(&self, s: &str) -> io::Result<()> {
        io::stderr().lock().write_all(s.as_bytes())
    }

    fn moved(&self, n: usize, code: char) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}{code}"))
    }
}

impl TermLike for BarTerm {
    fn width(&self) -> u16 {
        size().0.saturating_sub(ECHO_ROOM).max(1)
    }

    fn height(&self) -> u16 {
        size().1
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.moved(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.moved(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.moved(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.moved(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.put("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// The terminal's size now (it may have been resized); 80×24 when it cannot say (a
/// pseudo-terminal nobody sized reports 0).
fn size() -> (u16, u16) {
    crossterm::terminal::size()
        .ok()
        .filter(|(c, r)| *c > 0 && *r > 0)
        .unwrap_or((80, 24))
}

fn millis(secs: f64) -> u64 {
    (secs.max(0.0) * 1000.0).round() as u64
}

/// Moves the bar as the server reports on the audio.
///
/// The session has no "audio sent" event, so the bar follows the audio the server has
/// transcribed (`audio_window_end`, every ~0.25 s of audio) and jumps to everything sent when
/// input ends: it runs slightly behind what was sent, never ahead.
pub struct ProgressSink {
    bar: ProgressBar,
    total: f64,
    heard: f64,
    since: Option<Instant>,
    turns: u64,
}

impl ProgressSink {
    pub fn new(bar: ProgressBar, total_secs: f64) -> ProgressSink {
        let sink = ProgressSink {
            bar,
            total: total_secs,
            heard: 0.0,
            since: None,
            turns: 0,
        };
        sink.bar.set_message(sink.message(None));
        sink
    }

    fn message(&self, elapsed: Option<f64>) -> String {
        use super::live::clock;
        let speed = elapsed
            .filter(|e| *e >= 0.5 && self.heard > 0.0)
            .map(|e| format!("  {:.1}x", self.heard / e))
            .unwrap_or_default();
        let turns = match self.turns {
            0 => String::new(),
            1 => "  1 turn".to_string(),
            n => format!("  {n} turns"),
        };
        format!(
            "{} / {}{speed}{turns}",
            clock(self.heard),
            clock(self.total)
        )
    }
}

impl Sink for ProgressSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Server(r) => match &r.message {
                ServerMessage::Connected(_) => {
                    self.since.get_or_insert_with(Instant::now);
                }
                ServerMessage::TurnInfo(t) => {
                    self.heard = self.heard.max(t.audio_window_end.min(self.total));
                    if t.event == TurnEvent::EndOfTurn {
                        self.turns += 1;
                    }
                }
                _ => return Ok(()),
            },
            Event::Client(ClientEvent::AudioFinished { audio_seconds, .. }) => {
                self.heard = audio_seconds.min(self.total);
            }
            Event::Client(_) => return Ok(()),
        }
        self.bar.set_position(millis(self.heard));
        let elapsed = self.since.map(|t| t.elapsed().as_secs_f64());
        self.bar.set_message(self.message(elapsed));
        Ok(())
    }
}

/// A writer to the bar's terminal that hides the bar around each write, so lines and bar
/// never tear each other. It passes on whole lines only (a `writeln!` arrives in pieces, and
/// the bar would be redrawn between them); a partial line goes out on `flush`. Without a bar
/// it writes straight through.
pub struct Suspended<W: Write> {
    bar: Option<ProgressBar>,
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> Suspended<W> {
    pub fn new(bar: Option<ProgressBar>, inner: W) -> Suspended<W> {
        Suspended {
            bar,
            inner,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, upto: usize) -> io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        let inner = &mut self.inner;
        let mut write = || {
            inner.write_all(&chunk)?;
            inner.flush()
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl<W: Write> Write for Suspended<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bar.is_none() {
            return self.inner.write(buf);
        }
        self.pending.extend_from_slice(buf);
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.emit(end + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.emit(self.pending.len())?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Suspended<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMessage;

    fn server(json: &str) -> Event {
        Event::Server(ServerMessage::parse(json).unwrap())
    }

    #[test]
    fn follows_the_audio_the_server_reports_and_ends_at_what_was_sent() {
        let bar = ProgressBar::with_draw_target(Some(9960), ProgressDrawTarget::hidden());
        let mut sink = ProgressSink::new(bar.clone(), 9.96);
        assert_eq!(bar.message(), "0:00.0 / 0:10.0");
        sink.event(&server(r#"{"type":"Connected","request_id":"r"}"#))
            .unwrap();
        sink.event(&server(
            r#"{"type":"TurnInfo","event":"Update","audio_window_end":2.5}"#,
        ))
        .unwrap();
        assert_eq!(bar.position(), 2500);
        sink.event(&server(
            r#"{"type":"TurnInfo","event":"EndOfTurn","audio_window_end":3.0}"#,
        ))
        .unwrap();
        assert!(bar.message().ends_with("1 turn"), "{}", bar.message());
        sink.event(&Event::Client(ClientEvent::AudioFinished {
            reason: "end_of_input".into(),
            audio_seconds: 9.96,
            frames: 125,
            bytes: 318720,
        }))
        .unwrap();
        assert_eq!(bar.position(), 9960);
        assert!(
            bar.message().starts_with("0:10.0 / 0:10.0"),
            "{}",
            bar.message()
        );
    }

    #[test]
    fn suspended_writes_pass_on_whole_lines() {
        for bar in [Some(ProgressBar::hidden()), None] {
            let mut out = Vec::new();
            {
                let mut w = Suspended::new(bar, &mut out);
                super::super::write_line(&mut w, "a turn").unwrap();
                write!(w, "flux: {}", 1 + 1).unwrap();
                writeln!(w, " and more").unwrap();
                write!(w, "partial").unwrap();
            }
            assert_eq!(out, b"a turn\nflux: 2 and more\npartial");
        }
    }
}
