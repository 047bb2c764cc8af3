//! Untrusted text made safe for a terminal, measured and wrapped by display width.
//!
//! Transcripts come from a server: a control character in one could move the cursor, change
//! the title, write the clipboard (OSC 52) or reorder what people read (bidi overrides). The
//! live view therefore cleans every server string before it reaches the screen, and measures
//! what is left in terminal columns (not bytes or chars) so wrapping never overflows a row.

use unicode_width::UnicodeWidthChar;

pub use crate::protocol::sanitize::sanitize;

/// Columns a character takes in a terminal (0 for combining marks).
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Columns a string takes in a terminal.
pub fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// The longest prefix of `s` that fits in `max` columns, with `…` when something was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Breaks sanitized text into rows: the first at most `first` columns wide, the others at most
/// `rest`. Breaks at spaces where it can and inside a word only when the word is longer than a
/// row. A wide character never straddles a row end. Always returns at least one row.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    let limit = |rows: &Vec<String>| if rows.is_empty() { first } else { rest }.max(1);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = width(word);
        let sep = usize::from(used > 0);
        if used + sep + w <= limit(&rows) {
            if sep == 1 {
                row.push(' ');
            }
            row.push_str(word);
            used += sep + w;
            continue;
        }
        // The word moves to a new row when it fits one; a word longer than a row is split
        // where the current row ends instead, so rows are not left short for nothing.
        if w <= rest.max(1) && used > 0 {
            rows.push(std::mem::take(&mut row));
            row.push_str(word);
            used = w;
            continue;
        }
        if used > 0 {
            if used + 2 <= limit(&rows) {
                row.push(' ');
                used += 1;
            } else {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
        }
        for c in word.chars() {
            let cw = char_width(c);
            if used + cw > limit(&rows) && used > 0 {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            row.push(c);
            used += cw;
        }
    }
    rows.push(row);
    // A space can be left at a row end when a wide character moved on.
    for r in &mut rows {
        let len = r.trim_end_matches(' ').len();
        r.truncate(len);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        let evil = "hi\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}there\u{9b}31m";
        let clean = sanitize(evil);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert_eq!(clean, "hithere");
    }

    #[test]
    fn bidi_and_zero_width_are_removed_and_whitespace_collapsed() {
        let text = "  pay\u{202E}evil\u{202C} now\u{200B}\u{2066}x\u{2069}\n\tthen\r\nok \u{E0041}";
        assert_eq!(sanitize(text), "payevil nowx then ok");
    }

    #[test]
    fn normal_unicode_is_kept() {
        let text = "naïve café — 東京 👋 e\u{301}";
        assert_eq!(sanitize(text), text);
        assert_eq!(width("東京"), 4);
        assert_eq!(width("e\u{301}"), 1);
    }

    #[test]
    fn wraps_at_spaces_and_splits_only_long_words() {
        assert_eq!(wrap("aaa bbb ccc", 7, 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("aaa bbb ccc", 3, 5), vec!["aaa", "bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4, 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4, 4), vec![""]);
        assert_eq!(wrap("ab cdefghij", 4, 4), vec!["ab c", "defg", "hij"]);
    }

    #[test]
    fn wide_characters_never_straddle_a_row_end() {
        let rows = wrap("東京東京東", 5, 5);
        assert_eq!(rows, vec!["東京", "東京", "東"]);
        for r in rows {
            assert!(width(&r) <= 5);
        }
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("hello world", 8), "hello w…");
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("東京東京", 4), "東…");
    }
}
