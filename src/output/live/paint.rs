//! Turns lines into terminal bytes and keeps track of the redrawn region at the bottom.
//!
//! The screen has two parts: permanent lines (finished turns, notes), written once and then
//! left to the terminal and its scrollback, and below them a region (the open turn and the
//! status line) that is rewritten in place. The cursor always rests at the end of the region's
//! last row, so the region's top is `rows - 1` lines up. Region rows never reach the last
//! column, so neither autowrap nor the "pending wrap" state can make the terminal's idea of
//! the row count differ from ours; after a resize (when a terminal may have reflowed
//! everything) the whole screen is repainted from what is remembered instead.

use super::lines::wrap_line;
use super::text::width;
use super::view::{Line, Tone, plain};
use crossterm::cursor::{Hide, MoveTo, MoveUp, Show};
use crossterm::queue;
use crossterm::terminal::{Clear, ClearType};
use std::collections::VecDeque;

/// Permanent lines remembered for repainting after a resize; more never fit on a screen.
const HISTORY: usize = 300;

#[derive(Debug)]
pub struct Painter {
    color: bool,
    /// Rows of the region drawn now (0 = nothing drawn, the cursor is at a line start).
    rows: usize,
    drawn: Vec<Line>,
    history: VecDeque<Line>,
    cursor_hidden: bool,
    /// The screen's width; permanent lines are word-wrapped to one column less (0: leave
    /// wrapping to the terminal).
    cols: usize,
}

impl Painter {
    pub fn new(color: bool) -> Painter {
        Painter {
            color,
            rows: 0,
            drawn: Vec::new(),
            history: VecDeque::new(),
            cursor_hidden: false,
            cols: 0,
        }
    }

    /// The screen's width, for wrapping permanent lines.
    pub fn set_width(&mut self, cols: u16) {
        self.cols = usize::from(cols);
    }

    /// A permanent line as the rows it takes on screen.
    fn rows_of(&self, line: &Line) -> Vec<Line> {
        if self.cols == 0 {
            return vec![line.clone()];
        }
        // The last column stays free, as in the region.
        wrap_line(line, self.cols.saturating_sub(1).max(1))
    }

    fn permanent(&self, out: &mut Vec<u8>, line: &Line) {
        for row in self.rows_of(line) {
            self.line(out, &row);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Prints `permanent` lines above the region and redraws the region as `region`. Writes
    /// nothing when nothing changed.
    pub fn update(&mut self, out: &mut Vec<u8>, permanent: &[Line], region: &[Line]) {
        if permanent.is_empty() && region == self.drawn.as_slice() {
            return;
        }
        if !self.cursor_hidden {
            // A cursor jumping between the status line and the text is only noise.
            let _ = queue!(out, Hide);
            self.cursor_hidden = true;
        }
        self.go_to_region_top(out);
        if !permanent.is_empty() {
            // Permanent lines can be longer than a row: clear first so no old region text
            // survives beside them, then let the terminal wrap them.
            let _ = queue!(out, Clear(ClearType::FromCursorDown));
            for line in permanent {
                self.permanent(out, line);
                self.remember(line);
            }
        }
        self.draw(out, region);
    }

    /// Repaints the whole screen: the newest permanent lines that fit, then the region.
    pub fn repaint(&mut self, out: &mut Vec<u8>, region: &[Line], cols: u16, rows: u16) {
        let _ = queue!(out, MoveTo(0, 0), Clear(ClearType::All));
        self.set_width(cols);
        let cols = usize::from(cols).max(1);
        let mut room = usize::from(rows).saturating_sub(region.len());
        let mut start = self.history.len();
        for line in self.history.iter().rev() {
            let need = self
                .rows_of(line)
                .iter()
                .map(|r| width(&plain(r)).div_ceil(cols).max(1))
                .sum::<usize>();
            if need > room {
                break;
            }
            room -= need;
            start -= 1;
        }
        let tail: Vec<Line> = self.history.iter().skip(start).cloned().collect();
        for line in &tail {
            self.permanent(out, line);
        }
        self.rows = 0;
        self.draw(out, region);
    }

    /// Clears the region and gives the terminal back: attributes reset, cursor shown, at the
    /// start of a line. `last` lines (e.g. an open turn cut short) are printed first.
    pub fn leave(&mut self, out: &mut Vec<u8>, last: &[Line]) {
        self.go_to_region_top(out);
        let _ = queue!(out, Clear(ClearType::FromCursorDown));
        for line in last {
            self.permanent(out, line);
        }
        if self.color {
            out.extend_from_slice(b"\x1b[0m");
        }
        let _ = queue!(out, Show);
        self.cursor_hidden = false;
        self.drawn.clear();
    }

    fn go_to_region_top(&mut self, out: &mut Vec<u8>) {
        if self.rows > 0 {
            out.push(b'\r');
            if self.rows > 1 {
                let up = u16::try_from(self.rows - 1).unwrap_or(u16::MAX);
                let _ = queue!(out, MoveUp(up));
            }
        }
        self.rows = 0;
    }

    /// Draws the region from the cursor (at a line start): each row overwrites what was there
    /// and clears the rest of its line, then everything below is cleared (the region may have
    /// shrunk). Overwriting rather than clearing first keeps the redraw from flickering.
    fn draw(&mut self, out: &mut Vec<u8>, region: &[Line]) {
        for (i, row) in region.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            self.line(out, row);
            let _ = queue!(out, Clear(ClearType::UntilNewLine));
        }
        let _ = queue!(out, Clear(ClearType::FromCursorDown));
        self.rows = region.len();
        self.drawn = region.to_vec();
    }

    fn line(&self, out: &mut Vec<u8>, line: &Line) {
        for s in line {
            let sgr: &[u8] = match s.tone {
                _ if !self.color => b"",
                Tone::Plain => b"",
                Tone::Dim => b"\x1b[2m",
                Tone::Strong => b"\x1b[1m",
                Tone::Accent => b"\x1b[36m",
                Tone::Good => b"\x1b[32m",
                Tone::Warn => b"\x1b[33m",
                Tone::Bad => b"\x1b[31m",
            };
            out.extend_from_slice(sgr);
            out.extend_from_slice(s.text.as_bytes());
            if !sgr.is_empty() {
                out.extend_from_slice(b"\x1b[0m");
            }
        }
    }

    fn remember(&mut self, line: &Line) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(line.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::Span;
    use super::super::vt::Screen;
    use super::*;

    fn l(text: &str) -> Line {
        vec![Span {
            text: text.into(),
            tone: Tone::Plain,
        }]
    }

    #[test]
    fn region_is_rewritten_in_place_and_permanent_lines_stay() {
        let mut vt = Screen::new(20, 6);
        vt.feed(b"$ flux\r\n");
        let mut p = Painter::new(false);
        let mut out = Vec::new();
        p.update(&mut out, &[], &[l("one two"), l("status")]);
        p.update(
            &mut out,
            &[],
            &[l("one two three"), l("four"), l("status 2")],
        );
        p.update(
            &mut out,
            &[l("a finished turn that is long")],
            &[l("x"), l("status 3")],
        );
        vt.feed(&out);
        assert_eq!(
            vt.lines(),
            vec![
                "$ flux",
                "a finished turn that",
                " is long",
                "x",
                "status 3",
                ""
            ]
        );
        // Nothing changed: nothing written.
        let mut again = Vec::new();
        p.update(&mut again, &[], &[l("x"), l("status 3")]);
        assert!(again.is_empty());
        let mut out = Vec::new();
        p.leave(&mut out, &[l("cut short")]);
        vt.feed(&out);
        assert_eq!(
            vt.lines(),
            vec![
                "$ flux",
                "a finished turn that",
                " is long",
                "cut short",
                "",
                ""
            ]
        );
        assert_eq!(vt.cursor(), (0, 4));
    }

    #[test]
    fn scrolling_past_the_bottom_keeps_the_region_whole() {
        let mut vt = Screen::new(20, 4);
        let mut p = Painter::new(false);
        for i in 0..10 {
            let mut out = Vec::new();
            p.update(
                &mut out,
                &[l(&format!("turn {i}"))],
                &[l("open"), l("status")],
            );
            vt.feed(&out);
        }
        assert_eq!(vt.lines(), vec!["turn 8", "turn 9", "open", "status"]);
    }

    #[test]
    fn colour_only_when_asked() {
        let line = vec![Span {
            text: "t".into(),
            tone: Tone::Warn,
        }];
        let mut out = Vec::new();
        Painter::new(false).update(&mut out, std::slice::from_ref(&line), &[]);
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains("\x1b[33m") && !text.contains("\x1b[0m"),
            "{text:?}"
        );
        let mut out = Vec::new();
        Painter::new(true).update(&mut out, &[line], &[]);
        assert!(String::from_utf8(out).unwrap().contains("\x1b[33mt\x1b[0m"));
    }
}
