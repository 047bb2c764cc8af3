//! The one sanitizer for untrusted text: transcripts, server error messages, request ids and
//! anything else a peer sent that flux shows to people (text, live view, captions, stderr).
//!
//! A control character in a transcript could move the cursor, change the terminal's title,
//! write the clipboard (OSC 52) or reorder what people read (bidi overrides such as U+202E).
//! Everything shown passes through here; it lives in the protocol module (a leaf) so the
//! session, the sinks, the emulator and the commands all reach the same rule.

/// One line of text that is safe to print: terminal escape sequences (CSI, OSC, DCS and the
/// like, 7-bit or C1) removed whole, no other control, format, bidi or zero-width
/// characters; runs of whitespace (including newlines and tabs) become one space. A control
/// that is not part of a sequence leaves a visible U+FFFD: the text had something that is
/// not speech in it.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() || is_line_control(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        if let Some(kind) = sequence_start(c, chars.peek().copied()) {
            if c == '\u{1b}' {
                chars.next(); // the introducer's second character
            }
            skip_sequence(kind, &mut chars);
            continue;
        }
        let c = if c.is_control() { '\u{FFFD}' } else { c };
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// What an escape sequence runs to.
#[derive(Clone, Copy)]
enum Sequence {
    /// CSI: parameter and intermediate bytes, then one final byte in `@`..=`~`.
    Csi,
    /// OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (`ESC \` or U+009C).
    Str,
    /// ESC and one more character (already taken).
    Short,
}

fn sequence_start(c: char, next: Option<char>) -> Option<Sequence> {
    match c {
        '\u{1b}' => Some(match next {
            Some('[') => Sequence::Csi,
            Some(']' | 'P' | 'X' | '^' | '_') => Sequence::Str,
            _ => Sequence::Short,
        }),
        '\u{9b}' => Some(Sequence::Csi),
        '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => Some(Sequence::Str),
        _ => None,
    }
}

fn skip_sequence(kind: Sequence, chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match kind {
        Sequence::Short => {}
        Sequence::Csi => {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) || !(' '..='?').contains(&c) {
                    break;
                }
            }
        }
        Sequence::Str => {
            while let Some(c) = chars.next() {
                match c {
                    '\u{7}' | '\u{9c}' => break,
                    '\u{1b}' => {
                        if chars.peek() == Some(&'\\') {
                            chars.next();
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Controls that separate words (they stand for a line break or a tab in the source).
fn is_line_control(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}')
}

/// Characters with no glyph that can still change how a line is shown: bidi embeddings,
/// overrides and isolates, zero-width spaces and joiners, word joiner and BOM, the soft
/// hyphen, interlinear annotation marks and tag characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}'
    )
}

/// [`sanitize`], cut to at most `max_chars` characters with `…` when something was cut: for
/// quoting a server's words inside an error message.
pub fn sanitize_max(text: &str, max_chars: usize) -> String {
    let clean = sanitize(text);
    if clean.chars().count() <= max_chars {
        return clean;
    }
    let mut out: String = clean.chars().take(max_chars).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_escapes_bidi_and_zero_width_are_removed() {
        let nasty = "a\u{1b}]52;c;aGk=\u{7}b \u{202E}evil\u{202C} z\u{200B}w \u{9b}31m";
        let clean = sanitize(nasty);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert!(
            !clean.contains('\u{202E}') && !clean.contains('\u{200B}'),
            "{clean:?}"
        );
        assert!(clean.contains("evil") && clean.contains("zw"), "{clean:?}");
    }

    #[test]
    fn escape_sequences_go_whole_and_lone_controls_show() {
        assert_eq!(sanitize("a\u{1b}[2Jb"), "ab");
        assert_eq!(sanitize("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(sanitize("a\u{1b}]52;c;aGk=\u{1b}\\b"), "ab");
        assert_eq!(sanitize("a\u{9b}31mb"), "ab");
        assert_eq!(sanitize("a\u{0}b"), "a\u{FFFD}b");
    }

    #[test]
    fn whitespace_runs_become_one_space() {
        assert_eq!(sanitize("  one\n\ttwo \r\n three  "), "one two three");
    }

    #[test]
    fn sanitize_max_cuts_with_an_ellipsis() {
        assert_eq!(sanitize_max("abcdef", 3), "abc…");
        assert_eq!(sanitize_max("ab\u{202E}c", 3), "abc");
    }
}
