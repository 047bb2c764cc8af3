//! stdout's fate. A reader that leaves (`| head -1`, EPIPE) ends flux quietly with success;
//! any other failure to write (a full disk, an I/O error, `> /dev/full`) loses output, so it
//! must not: it exits 8 (docs/exit-codes.md) with one error line, and the streams stop.

use super::pipeline::Ending;
use crate::error::{ExitCode, FluxError};
use crate::event::{Event, Sink};
use std::io;
use std::sync::{Arc, Mutex};

/// Shared by every data sink of a run (a batch's files write to one stdout): remembers the
/// first write failure that was not a closed pipe.
#[derive(Clone, Default)]
pub(crate) struct OutputWatch(Arc<Mutex<Option<String>>>);

impl OutputWatch {
    fn record(&self, error: &io::Error) {
        if let Ok(mut first) = self.0.lock()
            && first.is_none()
        {
            *first = Some(error.to_string());
        }
    }

    /// The failure, if writing stdout failed.
    pub(crate) fn failure(&self) -> Option<OutputFailure> {
        self.0.lock().ok()?.clone().map(OutputFailure)
    }
}

/// Why stdout could not be written.
pub(crate) struct OutputFailure(String);

impl OutputFailure {
    pub(crate) fn error(&self) -> FluxError {
        output_error(&self.0)
    }

    /// How a stream ends when its output failed: exit 8 unless something worse happened.
    pub(super) fn ending(&self, code: u8) -> Ending {
        Ending {
            code: ExitCode::worst(code, ExitCode::Output.code()),
            error: Some(self.error().into()),
            output_closed: true,
        }
    }
}

/// The error for a failed write to stdout.
pub(crate) fn output_error(reason: &str) -> FluxError {
    FluxError::Output(format!(
        "cannot write to stdout: {reason}; the output is incomplete (check the disk or the \
         file stdout goes to)"
    ))
}

/// Writes `bytes` to stdout: a reader that goes away early is not an error; any other
/// failure is exit 8.
pub(crate) fn print(bytes: &[u8]) -> anyhow::Result<u8> {
    use std::io::Write;
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(output_error(&e.to_string()).into()),
        _ => Ok(ExitCode::Success.code()),
    }
}

/// The data sink (stdout), watched. A failure other than a closed pipe is recorded and passed
/// on as a closed pipe: the session then stops writing and sending quietly, and the app
/// reports the failure once, with its exit code.
pub(crate) struct Watched {
    inner: Box<dyn Sink>,
    watch: OutputWatch,
}

impl Watched {
    pub(crate) fn new(inner: Box<dyn Sink>, watch: OutputWatch) -> Watched {
        Watched { inner, watch }
    }
}

impl Watched {
    fn watched(&self, result: io::Result<()>) -> io::Result<()> {
        result.map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return e;
            }
            self.watch.record(&e);
            io::Error::new(io::ErrorKind::BrokenPipe, e.to_string())
        })
    }
}

impl Sink for Watched {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let result = self.inner.event(event);
        self.watched(result)
    }

    fn begin_batch(&mut self) {
        self.inner.begin_batch();
    }

    fn end_batch(&mut self) -> io::Result<()> {
        let result = self.inner.end_batch();
        self.watched(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ClientEvent;

    struct Failing(io::ErrorKind);

    impl Sink for Failing {
        fn event(&mut self, _: &Event) -> io::Result<()> {
            Err(io::Error::new(self.0, "no space left"))
        }
    }

    fn warning() -> Event {
        Event::Client(ClientEvent::Warning {
            code: "x".into(),
            message: "y".into(),
        })
    }

    #[test]
    fn a_closed_pipe_is_quiet_and_other_failures_are_kept() {
        let watch = OutputWatch::default();
        let mut sink = Watched::new(Box::new(Failing(io::ErrorKind::BrokenPipe)), watch.clone());
        assert_eq!(
            sink.event(&warning()).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert!(watch.failure().is_none());

        let mut sink = Watched::new(Box::new(Failing(io::ErrorKind::StorageFull)), watch.clone());
        // The session sees a closed pipe (it stops quietly); the watch keeps the reason.
        assert_eq!(
            sink.event(&warning()).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        let failure = watch.failure().expect("recorded");
        assert_eq!(failure.error().exit_code(), 8);
        assert!(failure.error().to_string().contains("no space left"));
        assert_eq!(failure.ending(0).code, 8);
        assert_eq!(failure.ending(2).code, 2, "a worse status stays");
    }
}
