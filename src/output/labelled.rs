//! A writer that labels every line, for runs over several files: `call.wav: text` on
//! stdout (as grep does), `flux: call.wav: connected ...` on stderr.
//!
//! It holds bytes until a line is complete and then writes label and line with one
//! `write_all`, so lines from streams running at once never mix mid-line on a shared stdout
//! or stderr (each `write_all` on them takes their lock once).

use std::io::{self, Write};

pub struct Labelled<W: Write> {
    inner: W,
    label: String,
    /// The label goes after this leading text when a line starts with it (`flux: `).
    after: &'static str,
    pending: Vec<u8>,
}

impl<W: Write> Labelled<W> {
    /// Lines become `{label}{line}`.
    pub fn new(inner: W, label: String) -> Self {
        Labelled {
            inner,
            label,
            after: "",
            pending: Vec::new(),
        }
    }

    /// Lines starting with `after` become `{after}{label}{rest}`; others `{label}{line}`.
    pub fn after(mut self, after: &'static str) -> Self {
        self.after = after;
        self
    }

    fn emit_complete_lines(&mut self) -> io::Result<()> {
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            let (head, rest) = if line.starts_with(self.after.as_bytes()) {
                line.split_at(self.after.len())
            } else {
                line.split_at(0)
            };
            let mut out = Vec::with_capacity(line.len() + self.label.len());
            out.extend_from_slice(head);
            out.extend_from_slice(self.label.as_bytes());
            out.extend_from_slice(rest);
            self.inner.write_all(&out)?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Labelled<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.emit_complete_lines()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for Labelled<W> {
    fn drop(&mut self) {
        // A last line without its newline still leaves, labelled, in one piece.
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            let _ = self.emit_complete_lines();
            let _ = self.inner.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_each_line_once_however_it_is_written() {
        let mut out = Vec::new();
        {
            let mut w = Labelled::new(&mut out, "a.wav: ".into());
            w.write_all(b"one\ntw").unwrap();
            w.write_all(b"o\n").unwrap();
            write!(w, "three").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a.wav: one\na.wav: two\na.wav: three\n"
        );
    }

    #[test]
    fn goes_after_a_known_prefix() {
        let mut out = Vec::new();
        {
            let mut w = Labelled::new(&mut out, "b.wav: ".into()).after("flux: ");
            writeln!(w, "flux: connected").unwrap();
            writeln!(w, "other").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "flux: b.wav: connected\nb.wav: other\n"
        );
    }
}
