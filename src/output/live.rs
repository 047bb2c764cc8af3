//! `--format live`: the conversation as it happens, in a terminal.
//!
//! Finished turns are printed once, as permanent lines with their number and time span; below
//! them the open turn (updated in place as Updates arrive, with its state: speaking, end?,
//! resumed) and a status line are redrawn. Only ever used when stdout is a terminal that can
//! move its cursor (see [`available`]); everything else gets `text` or `jsonl`.
//!
//! While the view runs, the terminal is in raw mode so keys arrive as keys: `q` (or Ctrl-D)
//! finishes the stream, `e` or Enter forces the end of the current turn, Ctrl-C finishes like
//! the first Ctrl-C signal would and a second one quits at once with exit code 130. The
//! terminal is given back on every path: [`LiveView::finish`], its `Drop`, a panic (a hook
//! installed here) and the exits in this module and in the signal handler
//! ([`restore_terminal`]).

mod keys;
mod lines;
mod paint;
mod status;
mod text;
mod view;
#[cfg(test)]
mod vt;

use super::Sink;
use crate::error::exit;
use crate::protocol::{Configure, ServerMessage, Thresholds};
use crate::session::{Control, Event};
use crossterm::{event as term_event, terminal};
use keys::Action;
use paint::Painter;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use view::{Line, View};

pub(crate) use view::clock;

/// How often the key thread wakes to refresh the status line (mic level, speed).
const TICK: Duration = Duration::from_millis(100);

/// Can the live view draw on stdout? Only a terminal, and not one that declares itself unable
/// to move the cursor (`TERM=dumb`). crossterm honours NO_COLOR for colours but not for cursor
/// movement, so this check is what keeps escape codes out of pipes and files.
pub fn available() -> bool {
    io::stdout().is_terminal() && !term_is_dumb()
}

fn term_is_dumb() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// Whether to colour, given `--color` (`Some(true)` always, `Some(false)` never, `None` auto).
/// Auto follows <https://no-color.org>: a non-empty NO_COLOR turns colour off.
pub fn colour_wanted(forced: Option<bool>) -> bool {
    forced.unwrap_or_else(|| {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        !no_color && !term_is_dumb()
    })
}

pub struct LiveOptions {
    pub color: bool,
    /// Where keys send their requests; `None` reads no keys (and leaves raw mode off).
    pub controls: Option<mpsc::Sender<Control>>,
    /// Set when a key asks to finish, so live sources stop capturing (as the signal handler
    /// does for Ctrl-C).
    pub stopped: Option<Arc<AtomicBool>>,
    /// For a source that ends by itself once `stopped` is set (a microphone): how long to let
    /// it hand over what it captured before telling the session to finish anyway. `None`
    /// tells the session at once.
    pub finish_grace: Option<Duration>,
    /// Length of the input in seconds, when known (files).
    pub total_seconds: Option<f64>,
    /// The microphone's level as f32 bits in dBFS, when a microphone is the source.
    pub mic_level: Option<Arc<AtomicU32>>,
    /// Show warnings in the view: stderr is this same terminal, so writing to it directly
    /// would tear the redrawn region.
    pub notes: bool,
    /// The eot_threshold the stream started with; `+`/`-` step it by 0.05 with Configure.
    pub eot_threshold: f64,
}

/// Everything the sink and the key thread share; one lock, so their writes never interleave.
struct Shared {
    view: View,
    painter: Painter,
    out: Box<dyn Write + Send>,
    size: (u16, u16),
    streaming_since: Option<Instant>,
    mic: Option<Arc<AtomicU32>>,
    closed: bool,
}

impl Shared {
    fn region(&mut self) -> Vec<Line> {
        if let Some(m) = &self.mic {
            self.view.status.mic_db = Some(f32::from_bits(m.load(Ordering::Relaxed)));
        }
        let elapsed = self.streaming_since.map(|t| t.elapsed().as_secs_f64());
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
        let last: Vec<Line> = self.view.take_open_line(tag).into_iter().collect();
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
pub struct LiveSink {
    shared: Arc<Mutex<Shared>>,
}

impl Sink for LiveSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let mut s = lock(&self.shared);
        if let Event::Server(r) = event
            && matches!(r.message, ServerMessage::Connected(_))
        {
            s.streaming_since.get_or_insert_with(Instant::now);
        }
        let lines = s.view.apply(event);
        s.show(&lines)
    }
}

/// The terminal half: raw mode, the key thread, and giving the terminal back.
pub struct LiveView {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The live view owns the terminal (for the signal handler and the panic hook).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Raw mode was turned on by the live view and not yet off.
static RAW: AtomicBool = AtomicBool::new(false);
static CURRENT: Mutex<Option<Weak<Mutex<Shared>>>> = Mutex::new(None);
static PANIC_HOOK: Once = Once::new();

impl LiveView {
    /// Takes over stdout (a terminal: check [`available`] first) and starts reading keys.
    pub fn start(opts: LiveOptions) -> (LiveView, LiveSink) {
        Self::start_on(Box::new(io::stdout()), opts)
    }

    fn start_on(out: Box<dyn Write + Send>, opts: LiveOptions) -> (LiveView, LiveSink) {
        let size = terminal::size().unwrap_or((80, 24));
        let raw = opts.controls.is_some() && terminal::enable_raw_mode().is_ok();
        RAW.store(raw, Ordering::SeqCst);
        let mut view = View::default();
        view.notes = opts.notes;
        view.eot_threshold = opts.eot_threshold;
        view.status.keys = raw;
        view.status.total = opts.total_seconds;
        let shared = Arc::new(Mutex::new(Shared {
            view,
            painter: {
                let mut p = Painter::new(opts.color);
                p.set_width(size.0);
                p
            },
            out,
            size,
            streaming_since: None,
            mic: opts.mic_level,
            closed: false,
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
        let worker = Worker {
            shared: Arc::clone(&shared),
            stop: Arc::clone(&stop),
            controls: if raw { opts.controls } else { None },
            stopped: opts.stopped,
            finish_grace: opts.finish_grace,
            size,
        };
        let thread = std::thread::Builder::new()
            .name("flux-live".into())
            .spawn(move || worker.run())
            .ok();
        let sink = LiveSink {
            shared: Arc::clone(&shared),
        };
        (
            LiveView {
                shared,
                stop,
                thread,
            },
            sink,
        )
    }

    /// Ends the view: the region is cleared (an open turn is kept as a line), keys stop, raw
    /// mode is off and the cursor is back. Call before printing anything else.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
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

/// The key thread: keys, resizes and a periodic refresh of the status line.
struct Worker {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    controls: Option<mpsc::Sender<Control>>,
    stopped: Option<Arc<AtomicBool>>,
    finish_grace: Option<Duration>,
    size: (u16, u16),
}

impl Worker {
    fn run(mut self) {
        let mut stopping = false;
        while !self.stop.load(Ordering::SeqCst) {
            if self.controls.is_none() {
                // No keys (no raw mode): watch the size instead of waiting for resize events,
                // which would mean reading a terminal in cooked mode.
                std::thread::sleep(TICK);
                self.check_size();
                let _ = lock(&self.shared).show(&[]);
                continue;
            }
            match term_event::poll(TICK) {
                Ok(true) => match term_event::read() {
                    Ok(term_event::Event::Key(k)) => self.act(keys::action(&k, &mut stopping)),
                    Ok(term_event::Event::Resize(cols, rows)) => {
                        self.size = (cols, rows);
                        lock(&self.shared).resize(cols, rows);
                    }
                    _ => {}
                },
                Ok(false) => {
                    let _ = lock(&self.shared).show(&[]);
                }
                Err(_) => {
                    // The terminal went away for input: keep refreshing without keys.
                    self.controls = None;
                }
            }
        }
    }

    fn check_size(&mut self) {
        if let Ok(size) = terminal::size()
            && size != self.size
        {
            self.size = size;
            lock(&self.shared).resize(size.0, size.1);
        }
    }

    fn act(&self, action: Action) {
        let Some(controls) = &self.controls else {
            return;
        };
        match action {
            Action::Finish => {
                if let Some(s) = &self.stopped {
                    s.store(true, Ordering::SeqCst);
                }
                match self.finish_grace {
                    Some(grace) => {
                        let controls = controls.clone();
                        // Ignored by the session when the input has already ended.
                        let _ = std::thread::Builder::new()
                            .name("flux-finish".into())
                            .spawn(move || {
                                std::thread::sleep(grace);
                                let _ = controls.try_send(Control::Finish);
                            });
                    }
                    None => {
                        let _ = controls.try_send(Control::Finish);
                    }
                }
            }
            Action::ForceEndTurn => {
                let _ = controls.try_send(Control::ForceEndTurn);
            }
            Action::AdjustEot(step) => {
                // Flux accepts 0.5 to 1.0; the view's value moves when the server confirms.
                let current = lock(&self.shared).view.eot_threshold;
                let next = ((current + 0.05 * f64::from(step)) * 100.0).round() / 100.0;
                let next = next.clamp(0.5, 1.0);
                if next != current {
                    let _ = controls.try_send(Control::Configure(Configure {
                        thresholds: Some(Thresholds {
                            eot_threshold: Some(next),
                            ..Thresholds::default()
                        }),
                        ..Configure::default()
                    }));
                }
            }
            Action::Abort => {
                lock(&self.shared).close("(interrupted)");
                restore_terminal();
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
            Action::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ClientEvent;

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
