//! The live view's unit of drawing: a line of spans with tones, and how a permanent line
//! (a finished turn, a note) is word-wrapped to the screen's width with a hanging indent.

use super::text::{char_width, width};

/// How a piece of text should look; the terminal layer maps it to colours or to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Dim,
    Strong,
    Accent,
    Good,
    Warn,
    Bad,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub tone: Tone,
}

/// One row of output. Region rows always fit the width they were laid out for; permanent
/// lines may be longer and are word-wrapped by [`wrap_line`] when they are painted (again at
/// the new width after a resize), never cut mid-word by the terminal.
pub type Line = Vec<Span>;

pub fn span(text: impl Into<String>, tone: Tone) -> Span {
    Span {
        text: text.into(),
        tone,
    }
}

/// The plain text of a line, for tests and width checks.
pub fn plain(line: &Line) -> String {
    line.iter().map(|s| s.text.as_str()).collect()
}

/// A permanent line as rows of at most `cols` columns, wrapped the way the open turn is: at
/// spaces, inside a word only when the word is longer than a row, and with continuation rows
/// hanging under the text. The line's head is every span before its first `Plain` one (for a
/// finished turn, `#N 0:01.2-0:03.4`), and the text starts after that span's leading spaces;
/// a line with no `Plain` span (a note) has no head. When the head takes more than half the
/// width the hanging indent is dropped, as in the open turn. A line that fits is returned as
/// it is.
pub fn wrap_line(line: &Line, cols: usize) -> Vec<Line> {
    let cols = cols.max(1);
    if width(&plain(line)) <= cols {
        return vec![line.clone()];
    }
    let body_at = line.iter().position(|s| s.tone == Tone::Plain).unwrap_or(0);
    let mut head: Line = line[..body_at].to_vec();
    let mut body = line[body_at..].to_vec();
    if let Some(first) = body.first_mut() {
        let lead = first.text.len() - first.text.trim_start_matches(' ').len();
        if lead > 0 {
            head.push(span(&first.text[..lead], first.tone));
            first.text.drain(..lead);
        }
    }
    let head_width = width(&plain(&head));
    let indent = if head_width * 2 <= cols {
        head_width
    } else {
        0
    };
    // Words with their tone and the spaces before them (kept inside a row, so `text  (meta)`
    // keeps its two spaces).
    let mut words: Vec<(usize, String, Tone)> = Vec::new();
    let mut gap = 0;
    for s in &body {
        for (i, piece) in s.text.split(' ').enumerate() {
            if i > 0 {
                gap += 1;
            }
            if !piece.is_empty() {
                words.push((gap, piece.to_string(), s.tone));
                gap = 0;
            }
        }
    }
    let mut rows: Vec<Line> = Vec::new();
    let mut row = head;
    let mut used = head_width;
    let mut fresh = head_width == 0;
    let new_row = |rows: &mut Vec<Line>, row: &mut Line| {
        rows.push(std::mem::take(row));
        if indent > 0 {
            row.push(span(" ".repeat(indent), Tone::Plain));
        }
        indent
    };
    for (gap, word, tone) in words {
        let w = width(&word);
        let gap = if fresh { 0 } else { gap };
        if used + gap + w <= cols {
            push(&mut row, &" ".repeat(gap), tone);
            push(&mut row, &word, tone);
            used += gap + w;
            fresh = false;
            continue;
        }
        if w <= cols - indent && !fresh {
            used = new_row(&mut rows, &mut row);
            push(&mut row, &word, tone);
            used += w;
            continue;
        }
        // Longer than a row: split where the row ends.
        if !fresh && used + gap < cols {
            push(&mut row, &" ".repeat(gap), tone);
            used += gap;
        }
        for c in word.chars() {
            let cw = char_width(c);
            if used + cw > cols && used > indent {
                used = new_row(&mut rows, &mut row);
            }
            push(&mut row, c.encode_utf8(&mut [0; 4]), tone);
            used += cw;
        }
        fresh = false;
    }
    rows.push(row);
    rows
}

/// Appends text to a row, joining it to the last span when the tone is the same.
fn push(row: &mut Line, text: &str, tone: Tone) {
    if text.is_empty() {
        return;
    }
    match row.last_mut() {
        Some(last) if last.tone == tone => last.text.push_str(text),
        _ => row.push(span(text, tone)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(text: &str) -> Line {
        vec![
            span("#1 ", Tone::Strong),
            span("0:00.0-0:01.5 ", Tone::Dim),
            span(format!(" {text}  "), Tone::Plain),
            span("(0.91 model)", Tone::Dim),
        ]
    }

    fn rows(line: &Line, cols: usize) -> Vec<String> {
        wrap_line(line, cols).iter().map(plain).collect()
    }

    #[test]
    fn finished_turns_wrap_at_words_under_their_text() {
        let line = turn("the quick brown fox jumps over the lazy dog");
        assert_eq!(rows(&line, 200), vec![plain(&line)]);
        let got = rows(&line, 40);
        assert_eq!(
            got,
            vec![
                "#1 0:00.0-0:01.5  the quick brown fox",
                "                  jumps over the lazy",
                "                  dog  (0.91 model)",
            ]
        );
        for r in &got {
            assert!(width(r) <= 40, "{r:?}");
        }
        // The meta keeps its tone after wrapping.
        let last = wrap_line(&line, 40).pop().unwrap();
        assert_eq!(last.last().unwrap().tone, Tone::Dim);
    }

    #[test]
    fn narrow_screens_drop_the_indent_and_split_only_long_words() {
        let got = rows(&turn("the quick brown fox"), 24);
        assert_eq!(
            got,
            vec!["#1 0:00.0-0:01.5  the", "quick brown fox  (0.91", "model)"]
        );
        let got = rows(&turn("supercalifragilisticexpialidocious"), 20);
        assert_eq!(got[0], "#1 0:00.0-0:01.5  su");
        for r in &got {
            assert!(width(r) <= 20, "{r:?}");
        }
        let note = vec![span("flux: warning: a b c d e f g h", Tone::Warn)];
        assert_eq!(
            rows(&note, 12),
            vec!["flux:", "warning: a b", "c d e f g h"]
        );
    }
}
