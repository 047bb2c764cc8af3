//! Error kinds that decide the exit code, and the one table of exit codes. The codes are a
//! stable contract: `--help`, the man page and docs/exit-codes.md are all checked against
//! [`ExitCode::ALL`] and [`ExitCode::SEVERITY`].

use crate::audio::AudioError;

/// flux's exit statuses (docs/exit-codes.md). Everything that prints or decides an exit code
/// goes through this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitCode {
    Success,
    Internal,
    Usage,
    Auth,
    Connection,
    Input,
    Server,
    Assertion,
    Output,
    Incomplete,
    CheckFailed,
    Interrupted,
}

impl ExitCode {
    /// Every code, in numeric order.
    pub const ALL: [ExitCode; 12] = [
        ExitCode::Success,
        ExitCode::Internal,
        ExitCode::Usage,
        ExitCode::Auth,
        ExitCode::Connection,
        ExitCode::Input,
        ExitCode::Server,
        ExitCode::Assertion,
        ExitCode::Output,
        ExitCode::Incomplete,
        ExitCode::CheckFailed,
        ExitCode::Interrupted,
    ];

    /// Most serious first, for a batch's status (the worst of its files'): a bug, then a wrong
    /// command line, then output that could not be written (every file's is lost), then what
    /// stops every stream (credentials, the network, the server), then one input's own
    /// trouble, then files left unstreamed by an interruption, then a failed check, which only
    /// means something when everything else worked (`flux doctor`'s failed check is never
    /// weighed against another, it only ranks for completeness). 130 ends the process at once
    /// and is never weighed against another code.
    pub const SEVERITY: [ExitCode; 11] = [
        ExitCode::Internal,
        ExitCode::Usage,
        ExitCode::Output,
        ExitCode::Auth,
        ExitCode::Connection,
        ExitCode::Server,
        ExitCode::Input,
        ExitCode::Incomplete,
        ExitCode::Assertion,
        ExitCode::CheckFailed,
        ExitCode::Success,
    ];

    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Internal => 1,
            ExitCode::Usage => 2,
            ExitCode::Auth => 3,
            ExitCode::Connection => 4,
            ExitCode::Input => 5,
            ExitCode::Server => 6,
            ExitCode::Assertion => 7,
            ExitCode::Output => 8,
            ExitCode::Incomplete => 9,
            ExitCode::CheckFailed => 10,
            ExitCode::Interrupted => 130,
        }
    }

    /// What the code means, in a few words (the "meaning" column of docs/exit-codes.md).
    pub const fn title(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::Internal => "unexpected internal error",
            ExitCode::Usage => "usage error",
            ExitCode::Auth => "authentication or permission",
            ExitCode::Connection => "connection failed or lost",
            ExitCode::Input => "bad input audio",
            ExitCode::Server => "the server reported a fatal error",
            ExitCode::Assertion => "a CI assertion failed",
            ExitCode::Output => "output could not be written",
            ExitCode::Incomplete => "interrupted before every file was streamed",
            ExitCode::CheckFailed => "a `flux doctor` check failed",
            ExitCode::Interrupted => "interrupted twice",
        }
    }

    /// The examples `--help` gives after the title, if any.
    const fn hint(self) -> Option<&'static str> {
        match self {
            ExitCode::Success | ExitCode::Internal | ExitCode::Server => None,
            ExitCode::Usage => Some("bad flags, invalid values, unreadable files named by flags"),
            ExitCode::Auth => Some("missing credentials, 401, 402, 403"),
            ExitCode::Connection => Some("DNS, TCP, TLS, 429, timeout"),
            ExitCode::Input => Some("unreadable, corrupt, unsupported format"),
            ExitCode::Assertion => Some("expected text, turns, end-of-turn latency"),
            ExitCode::Output => Some("stdout failed, e.g. disk full; a closed pipe is success"),
            ExitCode::Incomplete => Some("Ctrl-C during `flux file` with several files"),
            ExitCode::CheckFailed => Some("its report says which, and the fix"),
            ExitCode::Interrupted => Some("Ctrl-C once finishes the stream cleanly"),
        }
    }

    /// The code for an exit status, if it is one of flux's.
    pub fn from_code(code: u8) -> Option<ExitCode> {
        ExitCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The more serious of two exit statuses ([`ExitCode::SEVERITY`]); a status that is not
    /// in the table ranks first, so it is never hidden.
    pub fn worst(a: u8, b: u8) -> u8 {
        let rank = |c: u8| {
            ExitCode::SEVERITY
                .iter()
                .position(|s| s.code() == c)
                .unwrap_or(0)
        };
        if rank(b) < rank(a) { b } else { a }
    }

    /// The severity order as docs/exit-codes.md and `--help` write it: `1 > 2 > ... > 0`.
    pub fn severity_line() -> String {
        ExitCode::SEVERITY
            .iter()
            .map(|c| c.code().to_string())
            .collect::<Vec<_>>()
            .join(" > ")
    }

    /// The table for `--help` and the man page.
    pub fn help_table() -> String {
        let mut out = String::from("Exit codes:\n");
        for c in ExitCode::ALL {
            let line = match c.hint() {
                Some(h) => format!("{} ({h})", c.title()),
                None => c.title().to_string(),
            };
            out.push_str(&format!("  {:<4} {line}\n", c.code()));
        }
        out.push_str(&format!(
            "`flux file` with several files exits with the worst: {}.",
            ExitCode::severity_line()
        ));
        out
    }
}

/// A failure a caller can act on; each kind maps to one exit code.
#[derive(Debug, thiserror::Error)]
pub enum FluxError {
    /// Bad flags or parameter values, or a file named by a flag that cannot be used (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Missing credentials, or the server said 401/402/403 (exit 3).
    #[error("{0}")]
    Auth(String),
    /// Could not connect, or lost the connection beyond the retry budget (exit 4).
    #[error("{0}")]
    Connection(String),
    /// Unreadable, corrupt or unsupported input audio (exit 5).
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The server reported a fatal error (exit 6).
    #[error("{0}")]
    Server(String),
    /// A CI assertion failed (exit 7).
    #[error("{0}")]
    Assertion(String),
    /// stdout could not be written for a reason other than its reader leaving (exit 8).
    #[error("{0}")]
    Output(String),
}

impl FluxError {
    /// Which row of the table this error is.
    pub fn kind(&self) -> ExitCode {
        match self {
            FluxError::Usage(_) => ExitCode::Usage,
            FluxError::Auth(_) => ExitCode::Auth,
            FluxError::Connection(_) => ExitCode::Connection,
            FluxError::Audio(_) => ExitCode::Input,
            FluxError::Server(_) => ExitCode::Server,
            FluxError::Assertion(_) => ExitCode::Assertion,
            FluxError::Output(_) => ExitCode::Output,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.kind().code()
    }
}

/// The exit code for any error reaching `main`: a [`FluxError`] or [`AudioError`] anywhere in
/// the chain decides it; anything else is an internal error.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<FluxError>() {
            return e.exit_code();
        }
        if cause.downcast_ref::<AudioError>().is_some() {
            return ExitCode::Input.code();
        }
    }
    ExitCode::Internal.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../docs/exit-codes.md");

    #[test]
    fn codes_are_distinct_and_in_order() {
        let codes: Vec<u8> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
        for c in ExitCode::ALL {
            assert_eq!(ExitCode::from_code(c.code()), Some(c));
            let ranked = ExitCode::SEVERITY.contains(&c);
            assert_eq!(ranked, c != ExitCode::Interrupted, "{c:?}");
        }
    }

    #[test]
    fn worst_follows_the_severity_order() {
        let order = ExitCode::SEVERITY.map(ExitCode::code);
        for (i, &a) in order.iter().enumerate() {
            for &b in &order[i..] {
                assert_eq!(ExitCode::worst(a, b), a, "{a} vs {b}");
                assert_eq!(ExitCode::worst(b, a), a, "{b} vs {a}");
            }
        }
        // A status outside the table is never hidden behind a known one.
        assert_eq!(ExitCode::worst(0, 42), 42);
        assert_eq!(ExitCode::worst(42, 1), 42);
    }

    /// docs/exit-codes.md's table has exactly the table's codes, each with its title, and
    /// states the same severity order.
    #[test]
    fn the_exit_codes_doc_matches_the_table() {
        let rows: Vec<(u8, String)> = DOC
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells.get(1)?.parse::<u8>().ok()?;
                Some((code, cells.get(2)?.to_string()))
            })
            .collect();
        let want: Vec<(u8, String)> = ExitCode::ALL
            .iter()
            .map(|c| (c.code(), c.title().to_string()))
            .collect();
        assert_eq!(
            rows, want,
            "docs/exit-codes.md's table differs from ExitCode"
        );
        let severity = format!("**{}**", ExitCode::severity_line());
        assert!(DOC.contains(&severity), "the doc must state {severity}");
    }

    #[test]
    fn help_lists_every_code_and_the_order() {
        let help = ExitCode::help_table();
        for c in ExitCode::ALL {
            assert!(
                help.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{} ", c.code()))
                        && l.contains(c.title())),
                "{c:?} missing from {help}"
            );
        }
        assert!(help.ends_with(&format!("{}.", ExitCode::severity_line())));
    }

    #[test]
    fn errors_map_to_their_rows() {
        assert_eq!(FluxError::Usage(String::new()).exit_code(), 2);
        assert_eq!(FluxError::Output(String::new()).exit_code(), 8);
        let e: anyhow::Error = FluxError::Server("x".into()).into();
        assert_eq!(exit_code_for(&e.context("while streaming")), 6);
        assert_eq!(exit_code_for(&anyhow::anyhow!("a bug")), 1);
    }
}
