//! What the terminal can do, as one plain value: decided once by the commands (`app/terminal`)
//! from the environment and `--color`, then handed to every writer (live view, progress bar,
//! level meter, status lines), so no writer looks at the environment on its own.

/// Terminal capabilities for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    /// stdout is a terminal.
    pub stdout_tty: bool,
    /// stderr is a terminal.
    pub stderr_tty: bool,
    /// The terminal can move its cursor and redraw a line (`TERM` is not `dumb`).
    pub redraw: bool,
    /// Colours and attributes are wanted (`--color`, `NO_COLOR`, `TERM=dumb`).
    pub colour: bool,
    /// The locale is UTF-8: block characters may be drawn (else plain ASCII).
    pub unicode: bool,
    /// Columns and rows of the terminal when one is attached (80×24 when unknown).
    pub size: (u16, u16),
}

impl Default for Terminal {
    /// No terminal at all: plain text, no colour, no redraws.
    fn default() -> Self {
        Terminal {
            stdout_tty: false,
            stderr_tty: false,
            redraw: false,
            colour: false,
            unicode: false,
            size: (80, 24),
        }
    }
}

impl Terminal {
    /// The live view can draw on stdout.
    pub fn live(&self) -> bool {
        self.stdout_tty && self.redraw
    }

    /// A self-redrawing line (progress bar, level meter) can be drawn on stderr.
    pub fn stderr_redraw(&self) -> bool {
        self.stderr_tty && self.redraw
    }
}
