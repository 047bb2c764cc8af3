//! Error kinds that decide the exit code. The codes are a stable contract (docs/exit-codes.md).

use crate::audio::AudioError;

/// Exit codes, as documented in design.md and docs/exit-codes.md.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const AUTH: u8 = 3;
    pub const CONNECTION: u8 = 4;
    pub const INPUT: u8 = 5;
    pub const SERVER: u8 = 6;
    pub const ASSERTION: u8 = 7;
    pub const INTERRUPTED: u8 = 130;
}

/// A failure a caller can act on; each kind maps to one exit code.
#[derive(Debug, thiserror::Error)]
pub enum FluxError {
    /// Bad flags or parameter values (exit 2).
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
}

impl FluxError {
    pub fn exit_code(&self) -> u8 {
        match self {
            FluxError::Usage(_) => exit::USAGE,
            FluxError::Auth(_) => exit::AUTH,
            FluxError::Connection(_) => exit::CONNECTION,
            FluxError::Audio(_) => exit::INPUT,
            FluxError::Server(_) => exit::SERVER,
            FluxError::Assertion(_) => exit::ASSERTION,
        }
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
            return exit::INPUT;
        }
    }
    exit::INTERNAL
}
