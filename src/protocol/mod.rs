//! The Flux wire protocol (`/v2/listen`), shared by the client and `flux serve`.
//!
//! Because both sides use these types, a message the client cannot read is a message the
//! emulator cannot produce. Sources for every rule: `shared/reference/flux-protocol.md`.

pub mod messages;
pub mod params;
mod read;
pub mod sanitize;

pub use messages::{
    ClientMessage, ClientParseError, Configure, ConfigureSuccess, Connected, Notice, Received,
    ServerMessage, Thresholds, Trigger, TurnEvent, TurnInfo, Word,
};
pub use params::{Dialect, Encoding, ParamError, Redact, StreamParams};

/// The WebSocket path of Flux on Deepgram.
pub const LISTEN_PATH: &str = "/v2/listen";
/// Header carrying the request id on every handshake response.
pub const REQUEST_ID_HEADER: &str = "dg-request-id";
/// Header carrying the reason a handshake was refused.
pub const ERROR_HEADER: &str = "dg-error";
