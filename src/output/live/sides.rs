//! The live view with several sides (`--split-channels`, several `--device`): one view per
//! side, each side's finished turns printed as they come (the timeline hands them over in
//! audio-time order) with the side's label in front, every side's open turn in the redrawn
//! region, labelled, and one status line (the first side's connection and progress).

use super::lines::{Line, Tone, span};
use super::text::width;
use super::view::View;
use super::{LiveSink, Shared, lock};
use crate::event::Event;
use crate::protocol::ServerMessage;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The sides' labels and the views of every side after the first (side 0 is `Shared::view`).
#[derive(Default)]
pub(super) struct Sides {
    labels: Vec<String>,
    others: Vec<View>,
}

impl Sides {
    pub(super) fn active(&self) -> bool {
        !self.labels.is_empty()
    }
}

impl LiveSink {
    /// Shows one side per label from now on; events then come through [`LiveSink::absorb_side`].
    pub fn set_sides(&mut self, labels: Vec<String>) {
        let mut s = lock(&self.shared);
        let others = (1..labels.len())
            .map(|_| {
                let mut v = View::default();
                v.notes = s.view.notes;
                v.eot_threshold = s.view.eot_threshold;
                v
            })
            .collect();
        s.sides = Sides { labels, others };
    }

    /// Takes one side's event into that side's view; its permanent lines, labelled, wait for
    /// [`LiveSink::paint`].
    pub fn absorb_side(&mut self, side: usize, event: &Event) {
        let mut s = lock(&self.shared);
        if let Event::Server(r) = event
            && matches!(r.message, ServerMessage::Connected(_))
        {
            s.streaming_since.get_or_insert_with(Instant::now);
        }
        let Some(label) = s.sides.labels.get(side).cloned() else {
            return;
        };
        let lines = match side {
            0 => s.view.apply(event),
            n => match s.sides.others.get_mut(n - 1) {
                Some(view) => view.apply(event),
                None => return,
            },
        };
        self.pending
            .extend(lines.into_iter().map(|l| labelled(l, &label)));
        self.eot
            .store(s.view.eot_threshold.to_bits(), Ordering::Relaxed);
    }
}

/// A permanent line with the side's label in front (part of its head, so a wrapped turn's
/// continuation rows hang under its text).
fn labelled(mut line: Line, label: &str) -> Line {
    line.insert(0, span(format!("{label}: "), Tone::Accent));
    line
}

/// The redrawn region with sides: each side's open turn (its rows share the height), then
/// the status line.
pub(super) fn region(s: &Shared, elapsed: Option<f64>) -> Vec<Line> {
    let (cols, rows) = s.size;
    let n = s.sides.labels.len().max(1);
    let label_w = s
        .sides
        .labels
        .iter()
        .map(|l| width(l) + 2)
        .max()
        .unwrap_or(0);
    let inner = cols.saturating_sub(u16::try_from(label_w).unwrap_or(u16::MAX));
    // Every side gets at least one row; the status line one more.
    let per_side = (usize::from(rows).saturating_sub(2) / n).max(1);
    let height = u16::try_from(per_side + 2).unwrap_or(u16::MAX);
    let mut out = Vec::new();
    let views = std::iter::once(&s.view).chain(&s.sides.others);
    for (view, label) in views.zip(&s.sides.labels) {
        let mut side_rows = view.region(inner.max(2), height, elapsed);
        side_rows.pop(); // its status line: one for all sides, below
        for (i, mut row) in side_rows.into_iter().enumerate() {
            let head = if i == 0 {
                format!("{label}: ")
            } else {
                " ".repeat(label_w)
            };
            row.insert(0, span(format!("{head:<label_w$}"), Tone::Accent));
            out.push(row);
        }
    }
    let status_cols = usize::from(cols).saturating_sub(1).max(1);
    out.push(s.view.status.row(status_cols, elapsed));
    out
}

/// Every side's open turn as a labelled line, when the view closes before they ended.
pub(super) fn take_open_lines(s: &mut Shared, tag: &str) -> Vec<Line> {
    let labels = s.sides.labels.clone();
    let mut out = Vec::new();
    if let Some(line) = s.view.take_open_line(tag) {
        out.push(labelled(line, &labels[0]));
    }
    for (view, label) in s.sides.others.iter_mut().zip(labels.iter().skip(1)) {
        if let Some(line) = view.take_open_line(tag) {
            out.push(labelled(line, label));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::paint::Painter;
    use super::super::vt;
    use super::*;
    use std::io::{self, Write};
    use std::sync::atomic::AtomicU64;
    use std::sync::{Arc, Mutex};

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

    fn turn(event: &str, index: u64, text: &str, start: f64, end: f64) -> Event {
        Event::Server(
            crate::protocol::ServerMessage::parse(&format!(
                r#"{{"type":"TurnInfo","event":"{event}","turn_index":{index},"audio_window_start":{start},"audio_window_end":{end},"transcript":"{text}","end_of_turn_confidence":0.9,"trigger":"model"}}"#
            ))
            .unwrap(),
        )
    }

    #[test]
    fn both_sides_finished_turns_interleave_and_open_turns_are_labelled() {
        let out = Capture::default();
        let mut painter = Painter::new(false);
        painter.set_width(80);
        let shared = Arc::new(Mutex::new(Shared {
            view: View::default(),
            painter,
            out: Box::new(out.clone()),
            size: (80, 12),
            streaming_since: None,
            mic: None,
            closed: false,
            sides: Sides::default(),
        }));
        let mut sink = LiveSink {
            shared: shared.clone(),
            eot: Arc::new(AtomicU64::new(0)),
            pending: Vec::new(),
        };
        sink.set_sides(vec!["agent".into(), "caller".into()]);
        sink.absorb_side(0, &turn("EndOfTurn", 0, "hello there", 0.0, 1.5));
        sink.absorb_side(1, &turn("EndOfTurn", 0, "hi", 1.0, 2.0));
        sink.absorb_side(0, &turn("StartOfTurn", 1, "how can", 2.0, 2.5));
        sink.absorb_side(1, &turn("StartOfTurn", 1, "I want", 2.2, 2.6));
        sink.paint().unwrap();
        let mut screen = vt::Screen::new(80, 12);
        screen.feed(&out.0.lock().unwrap());
        let lines: Vec<String> = screen
            .lines()
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect();
        assert!(
            lines[0].starts_with("agent: #1 0:00.0-0:01.5  hello there"),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with("caller: #1 0:01.0-0:02.0  hi"),
            "{lines:#?}"
        );
        assert!(
            lines[2].starts_with("agent:  #2 0:02.0 [speaking] how can"),
            "{lines:#?}"
        );
        assert!(
            lines[3].starts_with("caller: #2 0:02.2 [speaking] I want"),
            "{lines:#?}"
        );
        assert_eq!(lines.len(), 5, "one status line: {lines:#?}");
        // Closing keeps both open turns, labelled.
        lock(&shared).close("(unfinished)");
        let mut screen = vt::Screen::new(80, 12);
        screen.feed(&out.0.lock().unwrap());
        let text = screen.lines().join("\n");
        assert!(
            text.contains("agent: #2") && text.contains("caller: #2"),
            "{text}"
        );
    }
}
