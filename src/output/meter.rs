//! The level indicator: one self-overwriting line on stderr while capturing, so a silent or
//! wrong device shows before anyone talks for a minute.
//!
//! It only runs when stderr is a terminal that can redraw a line (the commands decide, from
//! the one [`Terminal`](super::Terminal) value, and not with `--quiet`); it never writes escape
//! codes anywhere else. It draws a level that the microphone publishes ([`MeterInput`]): the
//! audio side only measures, this side only shows. The line shares the terminal with turn lines and
//! status messages, so every writer that may reach the same terminal goes through a
//! [`Screen`]: a writer first erases the meter line (under the same lock the meter draws
//! with), and the meter redraws only when the cursor is at the start of a line. The one thing
//! it cannot coordinate is output written to the terminal by other code without a [`Screen`]
//! (e.g. a panic message); that lands after the meter text until the next redraw.

use super::Terminal;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Redraw interval.
const TICK: Duration = Duration::from_millis(100);
/// Readings shown as a sparkline (1.6 s of history).
const HISTORY: usize = 16;
/// Below this level for [`SILENT_AFTER`], the meter suggests checking the device.
const SILENT_DBFS: f32 = -65.0;
const SILENT_AFTER: Duration = Duration::from_secs(3);
/// Bottom of the sparkline scale; anything lower draws as the lowest bar.
const SCALE_FLOOR_DBFS: f32 = -60.0;

/// What the meter shows: a capture's name, its level and whether it still runs (the
/// microphone's published values, e.g. `MicSource::status()`).
#[derive(Debug, Clone)]
pub struct MeterInput {
    pub id: String,
    /// The level in dBFS as f32 bits; NaN until the first audio.
    pub level: Arc<AtomicU32>,
    /// True while capturing; the meter stops drawing when it turns false.
    pub capturing: Arc<AtomicBool>,
    /// The lowest level the source reports (digital silence): shown as `-inf`.
    pub floor_dbfs: f32,
}

impl MeterInput {
    fn dbfs(&self) -> Option<f32> {
        let x = f32::from_bits(self.level.load(Ordering::Relaxed));
        (!x.is_nan()).then_some(x)
    }
}

#[derive(Debug, Default)]
struct ScreenState {
    /// The meter line is on the terminal now.
    shown: bool,
    /// Something wrote part of a line (no newline yet): drawing now would garble it.
    mid_line: bool,
}

/// The terminal shared by the meter and other writers.
#[derive(Debug, Clone, Default)]
pub struct Screen(Arc<Mutex<ScreenState>>);

impl Screen {
    fn lock(&self) -> MutexGuard<'_, ScreenState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Erase the meter line if it is shown (it is redrawn on the next tick).
    pub fn clear(&self) {
        let mut state = self.lock();
        erase(&mut state);
    }

    /// Wrap a writer (stdout or stderr) that may share the meter's terminal.
    pub fn writer<W: Write>(&self, inner: W) -> ScreenWriter<W> {
        ScreenWriter {
            screen: self.clone(),
            inner,
        }
    }
}

fn erase(state: &mut ScreenState) {
    if state.shown {
        let mut err = io::stderr().lock();
        let _ = err.write_all(b"\r\x1b[K");
        let _ = err.flush();
        state.shown = false;
    }
}

/// A writer that erases the meter before writing, holding the screen while it writes.
pub struct ScreenWriter<W> {
    screen: Screen,
    inner: W,
}

impl<W: Write> Write for ScreenWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.screen.lock();
        erase(&mut state);
        let n = self.inner.write(buf)?;
        if let Some(&last) = buf.get(..n).and_then(|b| b.last()) {
            state.mid_line = last != b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The running meter; dropping it stops the thread and erases the line.
pub struct Meter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Meter {
    /// Starts drawing `input` on stderr. Call only when stderr can redraw a line
    /// ([`Terminal::stderr_redraw`]).
    pub fn start(screen: Screen, input: MeterInput, term: &Terminal) -> Meter {
        let stop = Arc::new(AtomicBool::new(false));
        let style = Style {
            unicode: term.unicode,
            color: term.colour,
        };
        let cols = term.size.0;
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("flux-meter".into())
                .spawn(move || run(&screen, &input, &stop, style, cols))
                .ok()
        };
        Meter { stop, thread }
    }
}

impl Meter {
    /// The meter of several captures (one side per device) on one line, each named by its
    /// `id` (the side's label).
    pub fn start_many(screen: Screen, inputs: Vec<MeterInput>, term: &Terminal) -> Meter {
        let stop = Arc::new(AtomicBool::new(false));
        let style = Style {
            unicode: term.unicode,
            color: term.colour,
        };
        let cols = term.size.0;
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("flux-meter".into())
                .spawn(move || run_many(&screen, &inputs, &stop, style, cols))
                .ok()
        };
        Meter { stop, thread }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// One capture's recent readings.
struct Reading {
    history: VecDeque<f32>,
    loud_at: Instant,
}

impl Reading {
    fn new() -> Reading {
        Reading {
            history: VecDeque::with_capacity(HISTORY),
            loud_at: Instant::now(),
        }
    }

    /// Takes the level now; returns it and whether the capture has been silent too long.
    fn update(&mut self, status: &MeterInput) -> (Option<f32>, bool) {
        let level = status.dbfs();
        if let Some(db) = level {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(db);
            if db > SILENT_DBFS {
                self.loud_at = Instant::now();
            }
        } else {
            self.loud_at = Instant::now();
        }
        (level, self.loud_at.elapsed() >= SILENT_AFTER)
    }

    /// This capture's part of the line, in `cols` columns.
    fn line(
        &self,
        status: &MeterInput,
        now: (Option<f32>, bool),
        style: Style,
        cols: usize,
    ) -> String {
        let (level, silent) = now;
        fitted(
            |id, style| render(id, &self.history, level, status.floor_dbfs, silent, style),
            &status.id,
            style,
            cols,
        )
    }
}

fn run(screen: &Screen, status: &MeterInput, stop: &AtomicBool, style: Style, cols: u16) {
    run_many(screen, std::slice::from_ref(status), stop, style, cols);
}

/// The meter of one or more captures (one side per device), side by side on one line; it
/// runs while any of them captures.
fn run_many(screen: &Screen, inputs: &[MeterInput], stop: &AtomicBool, style: Style, cols: u16) {
    let mut readings: Vec<Reading> = inputs.iter().map(|_| Reading::new()).collect();
    let capturing = || inputs.iter().any(|i| i.capturing.load(Ordering::Relaxed));
    while !stop.load(Ordering::Relaxed) && capturing() {
        // The width as it is now (the terminal may have been resized), else as it was; a
        // pseudo-terminal nobody sized says 0.
        let cols = crossterm::terminal::size()
            .ok()
            .filter(|(c, _)| *c > 0)
            .map_or(cols, |(c, _)| c);
        // Each capture gets an equal share; `fitted` keeps one column free in each.
        let each = usize::from(cols) / inputs.len().max(1);
        let line = inputs
            .iter()
            .zip(&mut readings)
            .map(|(input, reading)| {
                let now = reading.update(input);
                reading.line(input, now, style, each)
            })
            .collect::<Vec<_>>()
            .join(" ");
        {
            let mut state = screen.lock();
            if !state.mid_line {
                let mut err = io::stderr().lock();
                let _ = write!(err, "\r{line}\x1b[K");
                let _ = err.flush();
                state.shown = true;
            }
        }
        std::thread::park_timeout(TICK);
    }
    screen.clear();
}

/// How the line may look on this terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Block characters (the locale is UTF-8) or plain ASCII.
    pub unicode: bool,
    /// Colour (the terminal value's decision: `--color`, NO_COLOR, TERM=dumb).
    pub color: bool,
}

/// The meter line made to fit `cols` columns (one is left free, so the line never wraps and
/// `\r` always returns to its start): the device name is shortened first; on a screen too
/// narrow even for that, the line is cut, without colour.
fn fitted(line: impl Fn(&str, Style) -> String, id: &str, style: Style, cols: usize) -> String {
    let max = cols.saturating_sub(1).max(1);
    let full = line(id, style);
    let width = |s: &str| strip_sgr(s).chars().count();
    let over = width(&full).saturating_sub(max);
    if over == 0 {
        return full;
    }
    let keep = id.chars().count().saturating_sub(over + 1);
    if keep >= 4 {
        let short: String = id.chars().take(keep).chain(['…']).collect();
        return line(&short, style);
    }
    let plain = line(
        id,
        Style {
            color: false,
            ..style
        },
    );
    plain.chars().take(max).collect()
}

/// Text without its colour codes (`ESC [ … m`), to measure it.
fn strip_sgr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The meter line, e.g. `mic alsa:default ▁▂▅▇▅▂▁ -23 dBFS`.
pub fn render(
    id: &str,
    history: &VecDeque<f32>,
    level: Option<f32>,
    floor_dbfs: f32,
    silent: bool,
    style: Style,
) -> String {
    let Some(now) = level else {
        return format!("mic {id}  waiting for audio...");
    };
    let bars: &[char] = if style.unicode {
        &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']
    } else {
        &['_', '.', '-', '=', 'o', 'O', '#', '#']
    };
    let spark: String = (0..HISTORY.saturating_sub(history.len()))
        .map(|_| ' ')
        .chain(history.iter().map(|&db| {
            let x = ((db - SCALE_FLOOR_DBFS) / -SCALE_FLOOR_DBFS).clamp(0.0, 1.0);
            let i = (x * (bars.len() - 1) as f32).round() as usize;
            bars.get(i).copied().unwrap_or(' ')
        }))
        .collect();
    let db = if now <= floor_dbfs {
        String::from(" -inf dBFS")
    } else {
        format!("{now:>5.0} dBFS")
    };
    let mut line = format!("mic {id} {spark}{db}");
    if now >= -1.0 {
        line.push_str(if style.color {
            "  \x1b[31mCLIPPING\x1b[0m"
        } else {
            "  CLIPPING"
        });
    } else if silent {
        line.push_str("  silent: wrong device? see `flux devices`");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: f32 = -100.0;
    const PLAIN: Style = Style {
        unicode: true,
        color: false,
    };

    #[test]
    fn renders_history_and_level() {
        let h: VecDeque<f32> = [-100.0, -60.0, -30.0, 0.0].into_iter().collect();
        let line = render("alsa:default", &h, Some(-23.4), FLOOR, false, PLAIN);
        assert_eq!(
            line,
            format!("mic alsa:default {}▁▁▅█  -23 dBFS", " ".repeat(12))
        );
        assert_eq!(
            render("x", &h, None, FLOOR, false, PLAIN),
            "mic x  waiting for audio..."
        );
        let ascii = render(
            "x",
            &h,
            Some(-100.0),
            FLOOR,
            true,
            Style {
                unicode: false,
                color: false,
            },
        );
        assert!(
            ascii.ends_with("__o# -inf dBFS  silent: wrong device? see `flux devices`"),
            "{ascii}"
        );
        assert!(ascii.is_ascii());
    }

    #[test]
    fn clipping_is_coloured_only_when_allowed() {
        let h = VecDeque::new();
        assert!(!render("x", &h, Some(-0.5), FLOOR, false, PLAIN).contains('\x1b'));
        let colored = render(
            "x",
            &h,
            Some(-0.5),
            FLOOR,
            false,
            Style {
                unicode: true,
                color: true,
            },
        );
        assert!(colored.contains("\x1b[31mCLIPPING"));
    }

    #[test]
    fn the_line_fits_the_terminal_width() {
        let h: VecDeque<f32> = [-30.0; 16].into_iter().collect();
        let id = "alsa:plughw:CARD=USB_Audio_Device_With_A_Long_Name,DEV=0";
        let line = |id: &str, style| render(id, &h, Some(-0.5), FLOOR, false, style);
        let color = Style {
            unicode: true,
            color: true,
        };
        assert_eq!(fitted(line, id, color, 200), line(id, color));
        let fit = fitted(line, id, color, 60);
        assert_eq!(strip_sgr(&fit).chars().count(), 59, "{fit}");
        assert!(
            fit.starts_with("mic alsa:plughw:") && fit.contains('…'),
            "{fit}"
        );
        assert!(fit.contains("\x1b[31mCLIPPING"), "{fit}");
        let tiny = fitted(line, id, color, 20);
        assert_eq!(tiny.chars().count(), 19, "{tiny}");
        assert!(!tiny.contains('\x1b'), "{tiny}");
    }

    #[test]
    fn screen_writer_tracks_partial_lines() {
        let screen = Screen::default();
        let mut w = screen.writer(Vec::new());
        w.write_all(b"partial").unwrap();
        assert!(screen.lock().mid_line);
        w.write_all(b" line\n").unwrap();
        assert!(!screen.lock().mid_line);
        assert_eq!(w.inner, b"partial line\n");
    }
}
