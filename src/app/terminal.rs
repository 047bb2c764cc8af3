//! The terminal capabilities value, built once per command from the environment and
//! `--color` (see `output::Terminal`): which streams are terminals, whether the cursor can
//! move (`TERM=dumb` says no), whether to colour (<https://no-color.org>: a non-empty
//! `NO_COLOR` turns colour off; `--color always|never` wins over both), the locale's charset
//! and the size.

use crate::output::Terminal;
use crate::protocol::sanitize::sanitize;
use std::io::{self, IsTerminal};

/// An error as printed on stderr: its chain on one line per line it has, each line through
/// the one sanitizer, because errors quote servers (bodies, close reasons, messages) and
/// file names.
pub fn error_text(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .map(sanitize)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Looks at this process's streams and environment. `colour`: `Some` when `--color` forces
/// it, `None` for auto.
pub fn detect(colour: Option<bool>) -> Terminal {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let (stdout_tty, stderr_tty) = (io::stdout().is_terminal(), io::stderr().is_terminal());
    // Only a terminal has a size worth asking for (the live view, the bar, the meter): without
    // a controlling terminal crossterm falls back to running `tput cols` and `tput lines`,
    // two processes at the start of every piped run.
    let size = (stdout_tty || stderr_tty)
        .then(|| crossterm::terminal::size().ok())
        .flatten();
    from_parts(
        stdout_tty,
        stderr_tty,
        colour,
        &var("TERM"),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        &[var("LC_ALL"), var("LC_CTYPE"), var("LANG")],
        size,
    )
}

/// The decision itself, from plain facts (so it can be tested without a terminal).
fn from_parts(
    stdout_tty: bool,
    stderr_tty: bool,
    colour: Option<bool>,
    term: &str,
    no_color: bool,
    locale: &[String],
    size: Option<(u16, u16)>,
) -> Terminal {
    let dumb = term == "dumb";
    let locale = locale
        .iter()
        .find(|v| !v.is_empty())
        .map(|v| v.to_lowercase())
        .unwrap_or_default();
    Terminal {
        stdout_tty,
        stderr_tty,
        redraw: !dumb,
        colour: colour.unwrap_or(!no_color && !dumb),
        unicode: locale.contains("utf-8") || locale.contains("utf8"),
        size: size.filter(|(c, r)| *c > 0 && *r > 0).unwrap_or((80, 24)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8() -> Vec<String> {
        vec![String::new(), String::new(), "en_US.UTF-8".into()]
    }

    #[test]
    fn errors_are_printed_without_escapes_or_bidi_overrides() {
        let e = anyhow::anyhow!("server said \u{202E}gnp.exe\u{1b}[2J")
            .context("cannot connect\nsecond line");
        assert_eq!(
            error_text(&e),
            "cannot connect\nsecond line: server said gnp.exe"
        );
    }

    #[test]
    fn no_color_dumb_terminals_and_the_flag_decide_colour() {
        let t = from_parts(true, true, None, "xterm", false, &utf8(), Some((100, 30)));
        assert!(t.colour && t.live() && t.stderr_redraw() && t.unicode);
        assert_eq!(t.size, (100, 30));
        let t = from_parts(true, true, None, "xterm", true, &utf8(), None);
        assert!(!t.colour && t.live());
        assert_eq!(t.size, (80, 24));
        let t = from_parts(true, true, None, "dumb", false, &utf8(), None);
        assert!(!t.colour && !t.live() && !t.stderr_redraw());
        let t = from_parts(true, true, Some(true), "xterm", true, &utf8(), None);
        assert!(t.colour, "--color always wins over NO_COLOR");
        let t = from_parts(true, true, Some(false), "xterm", false, &utf8(), None);
        assert!(!t.colour, "--color never");
        let t = from_parts(false, true, None, "xterm", false, &["C".into()], None);
        assert!(!t.live() && t.stderr_redraw() && !t.unicode);
    }
}
