//! A tiny terminal emulator for tests: enough of xterm's behaviour (autowrap with the pending
//! wrap state, scrolling, cursor up, erase in line/display, wide characters) to check that
//! what the live view writes leaves exactly the expected screen, with no debris.

use super::text::char_width;

pub struct Screen {
    cols: usize,
    rows: usize,
    cells: Vec<Vec<char>>,
    x: usize,
    y: usize,
    /// The cursor is past the last column: the next printable character wraps first.
    pending_wrap: bool,
    pub scrolled_off: Vec<String>,
}

/// Marks the second cell of a wide character.
const CONT: char = '\0';

impl Screen {
    pub fn new(cols: usize, rows: usize) -> Screen {
        Screen {
            cols,
            rows,
            cells: vec![vec![' '; cols]; rows],
            x: 0,
            y: 0,
            pending_wrap: false,
            scrolled_off: Vec::new(),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.cells.iter().map(|r| row_text(r)).collect()
    }

    pub fn cursor(&self) -> (usize, usize) {
        (self.x, self.y)
    }

    /// Resizes like a terminal that does not reflow (xterm): rows are cut or padded.
    pub fn resize(&mut self, cols: usize, rows: usize) {
        for r in &mut self.cells {
            r.resize(cols, ' ');
        }
        while self.cells.len() > rows {
            let top = self.cells.remove(0);
            self.scrolled_off.push(row_text(&top));
            self.y = self.y.saturating_sub(1);
        }
        while self.cells.len() < rows {
            self.cells.push(vec![' '; cols]);
        }
        self.cols = cols;
        self.rows = rows;
        self.x = self.x.min(cols - 1);
        self.y = self.y.min(rows - 1);
        self.pending_wrap = false;
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    self.x = 0;
                    self.pending_wrap = false;
                }
                '\n' => self.line_feed(),
                '\x1b' => {
                    if chars.next_if_eq(&'[').is_none() {
                        panic!("unexpected escape sequence");
                    }
                    let mut params = String::new();
                    let final_byte = loop {
                        match chars.next() {
                            Some(c) if c.is_ascii_digit() || c == ';' || c == '?' => params.push(c),
                            Some(c) => break c,
                            None => panic!("truncated escape sequence"),
                        }
                    };
                    self.csi(&params, final_byte);
                }
                c if c.is_control() => panic!("unexpected control character {c:?}"),
                c => self.print(c),
            }
        }
    }

    fn csi(&mut self, params: &str, f: char) {
        let n = |default: usize| params.parse::<usize>().unwrap_or(default);
        match f {
            'A' => {
                self.y = self.y.saturating_sub(n(1).max(1));
                self.pending_wrap = false;
            }
            'H' => {
                let mut it = params.split(';').map(|p| p.parse::<usize>().unwrap_or(1));
                self.y = it.next().unwrap_or(1).saturating_sub(1).min(self.rows - 1);
                self.x = it.next().unwrap_or(1).saturating_sub(1).min(self.cols - 1);
                self.pending_wrap = false;
            }
            'J' => match n(0) {
                0 => {
                    self.erase_line_from(self.x);
                    for r in self.y + 1..self.rows {
                        self.cells[r].fill(' ');
                    }
                }
                2 => {
                    for r in &mut self.cells {
                        r.fill(' ');
                    }
                }
                other => panic!("unsupported erase {other}"),
            },
            'K' => self.erase_line_from(self.x),
            'm' | 'l' | 'h' => {} // attributes and cursor visibility do not change text
            other => panic!("unsupported CSI {params}{other}"),
        }
    }

    fn erase_line_from(&mut self, x: usize) {
        for c in &mut self.cells[self.y][x..] {
            *c = ' ';
        }
    }

    fn line_feed(&mut self) {
        self.pending_wrap = false;
        if self.y + 1 == self.rows {
            let top = self.cells.remove(0);
            self.scrolled_off.push(row_text(&top));
            self.cells.push(vec![' '; self.cols]);
        } else {
            self.y += 1;
        }
    }

    fn print(&mut self, c: char) {
        let w = char_width(c);
        if w == 0 {
            return;
        }
        if self.pending_wrap || self.x + w > self.cols {
            self.x = 0;
            self.line_feed();
        }
        self.cells[self.y][self.x] = c;
        if w == 2 {
            self.cells[self.y][self.x + 1] = CONT;
        }
        if self.x + w == self.cols {
            self.x = self.cols - 1;
            self.pending_wrap = true;
        } else {
            self.x += w;
        }
    }
}

fn row_text(r: &[char]) -> String {
    let s: String = r.iter().filter(|c| **c != CONT).collect();
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autowrap_is_deferred_until_the_next_character() {
        let mut s = Screen::new(4, 3);
        s.feed(b"abcd\r\nef");
        assert_eq!(s.lines(), vec!["abcd", "ef", ""]);
        s.feed(b"\rxy\x1b[K\x1b[1A\x1b[J");
        assert_eq!(s.lines(), vec!["ab", "", ""]);
    }
}
