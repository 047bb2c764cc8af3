//! `--format live`: the conversation as it happens, in a terminal.
//!
//! Finished turns are printed once, as permanent lines with their number and time span,
//! word-wrapped to the screen; below them the open turn (updated in place as Updates arrive,
//! with its state: speaking, end?, resumed) and a status line are redrawn. Only ever used when
//! stdout is a terminal that can move its cursor (the commands decide, from the one
//! [`Terminal`](super::Terminal) value); everything else gets `text` or `jsonl`.
//!
//! The view only renders. Keys are read by the commands' controller (`app/controller.rs`),
//! which sends the session its requests; the view puts the terminal in raw mode when asked
//! (so keys arrive as keys) and gives the terminal back on every path: [`LiveView::finish`],
//! its `Drop`, a panic (a hook installed here) and the controller's exit on a second Ctrl-C
//! ([`restore_terminal`]). A ticker thread redraws the status line (mic level, speed) and
//! follows the terminal's size.

mod lines;
mod paint;
mod sides;
mod status;
mod text;
mod view;
#[cfg(test)]
mod vt;

use super::Sink;
use crate::event::Event;
use crate::protocol::ServerMessage;
use crossterm::terminal;
use paint::Painter;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use view::{Line, View};

pub(crate) use view::clock;

/// How often the ticker wakes to refresh the status line (mic level, speed) and the size.
const TICK: Duration = Duration::from_millis(100);

pub struct LiveOptions {
    pub color: bool,
    /// The terminal's size when the view starts.
    pub size: (u16, u16),
    /// Put the terminal in raw mode, so the controller can read keys as keys; the status line
    /// then shows the key hints.
    pub raw: bool,
    /// Length of the input in seconds, when known (files).
    pub total_seconds: Option<f64>,
    /// The microphone's level as f32 bits in dBFS, when a microphone is the source.
    pub mic_level: Option<Arc<AtomicU32>>,
    /// Show warnings in the view: stderr is this same terminal, so writing to it directly
    /// would tear the redrawn region.
    pub notes: bool,
    /// The eot_threshold the stream started with; the view tracks it through ConfigureSuccess.
    pub eot_threshold: f64,
}

/// Everything the sink and the ticker share; one lock, so their writes never interleave.
struct Shared {
    view: View,
    painter: Painter,
    out: Box<dyn Write + Send>,
    size: (u16, u16),
    streaming_since: Option<Instant>,
    mic: Option<Arc<AtomicU32>>,
    closed: bool,
    /// Several sides (`--split-channels`): their labels and views.
    sides: sides::Sides,
}

impl Shared {
    fn region(&mut self) -> Vec<Line> {
        if let Some(m) = &self.mic {
            self.view.status.mic_db = Some(f32::from_bits(m.load(Ordering::Relaxed)));
        }
        let elapsed = self.streaming_since.map(|t| t.elapsed().as_secs_f64());
        if self.sides.active() {
            return sides::region(self, elapsed);
        }
        self.view.region(self.size.0, self.size.1, elapsed)
    }

    fn show(&mut self, permanent: &[Line]) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let region = self.region();
        let mut buf = Vec::new();
        self.painter.update(&mut buf, permanent, &region);
        self.write(&buf)
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        if self.closed || cols == 0 || rows == 0 {
            return;
        }
        self.size = (cols, rows);
        self.painter.set_width(cols);
        let region = self.region();
        let mut buf = Vec::new();
        self.painter.repaint(&mut buf, &region, cols, rows);
        let _ = self.write(&buf);
    }

    /// Clears the region and gives the terminal back; an open turn is kept as a line marked
    /// with `tag`.
    fn close(&mut self, tag: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        let last: Vec<Line> = if self.sides.active() {
            sides::take_open_lines(self, tag)
        } else {
            self.view.take_open_line(tag).into_iter().collect()
        };
        let mut buf = Vec::new();
        self.painter.leave(&mut buf, &last);
        let _ = self.write(&buf);
        ACTIVE.store(false, Ordering::SeqCst);
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.out.write_all(buf)?;
        self.out.flush()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere must not stop the terminal from being restored.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sink half: renders session events.
///
/// [`LiveSink::absorb`] takes an event into the view without drawing and [`LiveSink::paint`]
/// draws what changed: a writer that falls behind (a terminal paused with Ctrl-S) absorbs
/// everything pending and paints once, so only intermediate redraws of the open turn are
/// dropped, never a finished turn.
pub struct LiveSink {
    shared: Arc<Mutex<Shared>>,
    eot: Arc<AtomicU64>,
    pending: Vec<Line>,
}

impl LiveSink {
    /// Takes an event into the view; its permanent lines wait for [`LiveSink::paint`].
    pub fn absorb(&mut self, event: &Event) {
        let mut s = lock(&self.shared);
        if let Event::Server(r) = event
            && matches!(r.message, ServerMessage::Connected(_))
        {
            s.streaming_since.get_or_insert_with(Instant::now);
        }
        self.pending.extend(s.view.apply(event));
        self.eot
            .store(s.view.eot_threshold.to_bits(), Ordering::Relaxed);
    }

    /// Prints the pending permanent lines and redraws the region once.
    pub fn paint(&mut self) -> io::Result<()> {
        let lines = std::mem::take(&mut self.pending);
        lock(&self.shared).show(&lines)
    }
}

impl Sink for LiveSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.absorb(event);
        self.paint()
    }
}

/// The terminal half: raw mode, the ticker, and giving the terminal back.
pub struct LiveView {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    raw: bool,
    eot: Arc<AtomicU64>,
}

/// The live view owns the terminal (for the controller and the panic hook).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Raw mode was turned on by the live view and not yet off.
static RAW: AtomicBool = AtomicBool::new(false);
static CURRENT: Mutex<Option<Weak<Mutex<Shared>>>> = Mutex::new(None);
static PANIC_HOOK: Once = Once::new();

impl LiveView {
    /// Takes over stdout (a terminal that can redraw: check the `Terminal` value first).
    pub fn start(opts: LiveOptions) -> (LiveView, LiveSink) {
        Self::start_on(Box::new(io::stdout()), opts)
    }

    fn start_on(out: Box<dyn Write + Send>, opts: LiveOptions) -> (LiveView, LiveSink) {
        let size = opts.size;
        let raw = opts.raw && terminal::enable_raw_mode().is_ok();
        RAW.store(raw, Ordering::SeqCst);
        let mut view = View::default();
        view.notes = opts.notes;
        view.eot_threshold = opts.eot_threshold;
        view.status.keys = raw;
        view.status.total = opts.total_seconds;
        let mut painter = Painter::new(opts.color);
        painter.set_width(size.0);
        let shared = Arc::new(Mutex::new(Shared {
            view,
            painter,
            out,
            size,
            streaming_since: None,
            mic: opts.mic_level,
            closed: false,
            sides: sides::Sides::default(),
        }));
        ACTIVE.store(true, Ordering::SeqCst);
        *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::downgrade(&shared));
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_terminal();
                previous(info);
            }));
        });
        let _ = lock(&shared).show(&[]);

        let stop = Arc::new(AtomicBool::new(false));
        let ticker = Ticker {
            shared: Arc::clone(&shared),
            stop: Arc::clone(&stop),
            size,
        };
        let thread = std::thread::Builder::new()
            .name("flux-live".into())
            .spawn(move || ticker.run())
            .ok();
        let eot = Arc::new(AtomicU64::new(opts.eot_threshold.to_bits()));
        let sink = LiveSink {
            shared: Arc::clone(&shared),
            eot: Arc::clone(&eot),
            pending: Vec::new(),
        };
        (
            LiveView {
                shared,
                stop,
                thread,
                raw,
                eot,
            },
            sink,
        )
    }

    /// The terminal is in raw mode: keys can be read as keys.
    pub fn raw(&self) -> bool {
        self.raw
    }

    /// A handle on the eot_threshold in force (f64 bits), as the server last confirmed it:
    /// `+` and `-` step from it.
    pub fn eot_threshold(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.eot)
    }

    /// Ends the view: the region is cleared (an open turn is kept as a line), the ticker
    /// stops, raw mode is off and the cursor is back. Call before printing anything else.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // The thread wakes at least every TICK, so this wait is short.
            let _ = t.join();
        }
        lock(&self.shared).close("(unfinished)");
        restore_terminal();
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.end();
    }
}

/// Gives the terminal back, from anywhere and more than once: on a panic, before exiting on a
/// second Ctrl-C, at the end. Never blocks on the view's lock (a panic may have happened while
/// it was held); when the lock is busy, the region is left on screen and the cursor moves
/// below it.
pub fn restore_terminal() {
    let current = CURRENT
        .try_lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(Weak::upgrade));
    if let Some(shared) = current
        && let Ok(mut s) = shared.try_lock()
    {
        s.close("(interrupted)");
    }
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = out.write_all(b"\r\n\x1b[0m\x1b[?25h");
        let _ = out.flush();
    }
    if RAW.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
    }
}

/// Whether the live view owns the terminal now (then nothing else should write to it).
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// The ticker: a periodic refresh of the status line, and a repaint when the size changes.
struct Ticker {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    size: (u16, u16),
}

impl Ticker {
    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::park_timeout(TICK);
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            // Asking for the size is an ioctl, not a read: it never takes a key from the
            // controller.
            if let Ok(size) = terminal::size()
                && size != self.size
            {
                self.size = size;
                lock(&self.shared).resize(size.0, size.1);
                continue;
            }
            let _ = lock(&self.shared).show(&[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ClientEvent;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn server(json: &str) -> Event {
        Event::Server(ServerMessage::parse(json).unwrap())
    }

    fn turn(event: &str, text: &str, end: f64) -> Event {
        server(&format!(
            r#"{{"type":"TurnInfo","event":"{event}","turn_index":0,"audio_window_start":0.0,"audio_window_end":{end},"transcript":"{text}","end_of_turn_confidence":0.91,"trigger":"model"}}"#
        ))
    }

    fn shared_at(cols: u16, rows: u16, out: Capture) -> Shared {
        Shared {
            view: View::default(),
            painter: {
                let mut p = Painter::new(false);
                p.set_width(cols);
                p
            },
            out: Box::new(out),
            size: (cols, rows),
            streaming_since: None,
            mic: Some(Arc::new(AtomicU32::new((-12.0f32).to_bits()))),
            closed: false,
            sides: sides::Sides::default(),
        }
    }

    /// Feeds events through the same path as the sink, at a size, into a virtual screen.
    fn run(shared: &mut Shared, events: &[Event]) {
        for e in events {
            let lines = shared.view.apply(e);
            shared.show(&lines).unwrap();
        }
    }

    fn conversation() -> Vec<Event> {
        vec![
            Event::Client(ClientEvent::Connected {
                provider: "deepgram".into(),
                url: "ws://127.0.0.1:1/v2/listen".into(),
                request_id: Some("req-1".into()),
                model: "flux-general-en".into(),
                encoding: "linear16".into(),
                sample_rate: 16000,
            }),
            server(r#"{"type":"Connected","request_id":"req-1"}"#),
            turn("StartOfTurn", "the quick", 0.5),
            turn("Update", "the quick brown fox jumps over", 1.0),
            turn(
                "EndOfTurn",
                "the quick brown fox jumps over the lazy dog",
                1.5,
            ),
            server(
                r#"{"type":"TurnInfo","event":"StartOfTurn","turn_index":1,"audio_window_start":2.0,"audio_window_end":2.5,"transcript":"and then"}"#,
            ),
        ]
    }

    #[test]
    fn screen_shows_finished_turn_open_turn_and_status_at_two_widths() {
        for (cols, expected) in [
            (
                80usize,
                vec![
                    "#1 0:00.0-0:01.5  the quick brown fox jumps over the lazy dog  (0.91 model)",
                    "#2 0:02.0 [speaking] and then",
                    "[streaming] · flux-general-en · audio 0:02.5 · mic -12 dB · reconnects 0",
                ],
            ),
            (
                30,
                vec![
                    // Issue 13: finished turns are word-wrapped, not cut mid-word.
                    "#1 0:00.0-0:01.5  the quick",
                    "brown fox jumps over the lazy",
                    "dog  (0.91 model)",
                    "#2 [speaking] and then",
                    "[streaming] · audio 0:02.5",
                ],
            ),
        ] {
            let out = Capture::default();
            let mut s = shared_at(cols as u16, 10, out.clone());
            run(&mut s, &conversation());
            let mut vt = vt::Screen::new(cols, 10);
            vt.feed(&out.0.lock().unwrap());
            let lines = vt.lines();
            let shown: Vec<&str> = lines
                .iter()
                .map(String::as_str)
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(shown.len(), expected.len(), "{cols}: {lines:#?}");
            for (got, want) in shown.iter().zip(&expected) {
                assert!(
                    got.starts_with(want),
                    "{cols}: {got:?} vs {want:?}\n{lines:#?}"
                );
            }
        }
    }

    #[test]
    fn a_writer_that_fell_behind_draws_once_and_keeps_every_finished_turn() {
        let out = Capture::default();
        let (view, mut sink) = LiveView::start_on(
            Box::new(out.clone()),
            LiveOptions {
                color: false,
                size: (80, 10),
                raw: false,
                total_seconds: None,
                mic_level: None,
                notes: false,
                eot_threshold: 0.7,
            },
        );
        let drawn = out.0.lock().unwrap().len();
        let mut events = conversation();
        events.push(server(
            r#"{"type":"ConfigureSuccess","thresholds":{"eot_threshold":0.75},"keyterms":[]}"#,
        ));
        for e in &events {
            sink.absorb(e);
        }
        // Absorbing draws nothing (the ticker may redraw the region, never a turn).
        let before: String = String::from_utf8_lossy(&out.0.lock().unwrap()[drawn..]).into();
        assert!(!before.contains("the lazy dog"), "{before:?}");
        assert_eq!(
            f64::from_bits(view.eot_threshold().load(Ordering::Relaxed)),
            0.75
        );
        sink.paint().unwrap();
        let mut vt = vt::Screen::new(80, 10);
        vt.feed(&out.0.lock().unwrap());
        let lines = vt.lines();
        assert!(
            lines[0].starts_with("#1 0:00.0-0:01.5  the quick brown fox jumps over the lazy dog"),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("#2 0:02.0 [speaking] and then")),
            "{lines:#?}"
        );
        view.finish();
    }

    #[test]
    fn resize_repaints_without_debris_and_close_leaves_a_clean_screen() {
        let out = Capture::default();
        let mut s = shared_at(60, 12, out.clone());
        let mut vt = vt::Screen::new(60, 12);
        let mut events = conversation();
        events.push(server(
            r#"{"type":"TurnInfo","event":"Update","turn_index":1,"audio_window_start":2.0,"audio_window_end":3.0,"transcript":"and then a much longer sentence that wraps on narrow screens"}"#,
        ));
        run(&mut s, &events);
        vt.feed(&std::mem::take(&mut *out.0.lock().unwrap()));
        vt.resize(24, 12);
        s.resize(24, 12);
        vt.feed(&std::mem::take(&mut *out.0.lock().unwrap()));
        let lines = vt.lines();
        // Repainted at the new width: the finished turn is wrapped again, at words.
        assert_eq!(lines[0], "#1 0:00.0-0:01.5  the", "{lines:#?}");
        assert_eq!(lines[1], "quick brown fox jumps", "{lines:#?}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("#2 [speaking] and then")),
            "{lines:#?}"
        );
        for l in &lines {
            assert!(l.chars().count() <= 24, "{l:?}");
        }
        assert!(
            lines.iter().any(|l| l.starts_with("[streaming]")),
            "{lines:#?}"
        );

        vt.resize(40, 12);
        s.resize(40, 12);
        s.close("(unfinished)");
        vt.feed(&std::mem::take(&mut *out.0.lock().unwrap()));
        let lines = vt.lines();
        let shown: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(shown[0], "#1 0:00.0-0:01.5  the quick brown fox");
        assert_eq!(shown[1], format!("{}jumps over the lazy", " ".repeat(18)));
        assert!(
            shown.iter().any(|l| l.contains("(unfinished)")),
            "{lines:#?}"
        );
        assert!(
            !shown.iter().any(|l| l.contains("[streaming]")),
            "{lines:#?}"
        );
    }
}
