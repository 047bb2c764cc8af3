//! A byte pipe below the session that knows no protocol: open it (with headers, TLS and a
//! timeout), send text or binary messages, receive text, binary or a close, close it.
//!
//! The session speaks Flux over whatever [`Transport`] it is given and never names the
//! library underneath. Implementations: [`websocket`] (tokio-tungstenite, rustls with
//! `--ca-cert`), [`local`] (the same WebSocket over an in-memory byte stream to a server in
//! the same process: `--provider local`) and [`memory`] (an in-process pipe whose far end a
//! test drives, so the session's state machine runs on tokio's paused clock). A future HTTP/2 event stream
//! (AWS SageMaker) fits the same shape: a request with headers, a handshake status, then two
//! independent directions of messages.
//!
//! The pipe comes in two halves ([`PipeTx`], [`PipeRx`]) because the session reads and writes
//! at the same time; both are async and boxed so the session can hold any implementation.

pub mod local;
pub mod memory;
pub mod sagemaker;
pub mod tls;
pub mod websocket;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// One message on the pipe, in either direction.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Text(String),
    Binary(Bytes),
    /// The far end closed, with a status code (`None`: closed without one) and a reason.
    Close {
        code: Option<u16>,
        reason: String,
    },
}

/// The pipe broke (reset, protocol violation, a write to a closed connection), or the
/// transport gave it up on purpose for a new one (`planned`: SageMaker's 30-minute cap).
#[derive(Debug, Clone, PartialEq)]
pub struct Broken {
    /// What happened, one line for people.
    pub detail: String,
    /// A move the transport chose, not a failure: the session connects again at once and
    /// does not count it against `--max-reconnects`.
    pub planned: bool,
}

impl Broken {
    pub fn new(detail: impl Into<String>) -> Broken {
        Broken {
            detail: detail.into(),
            planned: false,
        }
    }

    pub fn planned(detail: impl Into<String>) -> Broken {
        Broken {
            detail: detail.into(),
            planned: true,
        }
    }
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// What opening a pipe needs. `Debug` shows header names only: their values hold credentials.
#[derive(Clone)]
pub struct Request {
    pub url: Url,
    /// Request headers (lowercase names); values usually hold a secret and are never printed.
    pub headers: Vec<(String, String)>,
    /// TLS setup for encrypted schemes; `None` trusts the built-in webpki roots only.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The whole handshake (TCP, TLS, upgrade) must be done within this.
    pub timeout: Duration,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("host", &self.host_port())
            .field("headers", &names)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Request {
    /// `host:port` of the URL, for messages.
    pub fn host_port(&self) -> String {
        match (self.url.host_str(), self.url.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => self.url.to_string(),
        }
    }
}

/// The server refused the handshake: everything a provider needs to explain why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    /// Response headers, names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Refusal {
    /// The status's standard reason phrase (`Unauthorized`), or nothing for an unknown one.
    pub fn reason(&self) -> &'static str {
        tokio_tungstenite::tungstenite::http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Why a pipe could not be opened.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenError {
    /// The server answered, and said no.
    Refused(Refusal),
    /// The request cannot be made as given (a bad URL, a header value with a newline).
    Invalid(String),
    /// TLS failed: a certificate problem, or a server that does not speak TLS. Already in
    /// words, with what to do; retrying does not help.
    Tls(String),
    /// The network failed (refused, reset, unreachable): worth retrying once streaming.
    Network(String),
    /// Nothing finished within the request's timeout.
    Timeout,
}

/// An open pipe: its two halves and the handshake's answer.
pub struct Pipe {
    pub tx: Box<dyn PipeTx>,
    pub rx: Box<dyn PipeRx>,
    /// The handshake's status (101 for a WebSocket upgrade).
    pub status: u16,
    /// The handshake's response headers, names lowercase.
    pub headers: Vec<(String, String)>,
}

impl Pipe {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Opens pipes. Shared by every connection (and reconnection) of a stream.
pub trait Transport: Send + Sync {
    /// Opens one pipe. Implementations need not enforce `request.timeout`: [`open`] does.
    fn connect(&self, request: Request) -> BoxFuture<'static, Result<Pipe, OpenError>>;
}

/// The sending half.
pub trait PipeTx: Send {
    /// Queues a message; it may wait for room, but need not be written until [`flush`].
    ///
    /// [`flush`]: PipeTx::flush
    fn send(&mut self, message: Message) -> BoxFuture<'_, Result<(), Broken>>;
    /// Writes everything queued.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), Broken>>;
    /// Closes this side (a WebSocket close frame); the far end's answer arrives on the
    /// receiving half.
    fn close(&mut self) -> BoxFuture<'_, Result<(), Broken>>;
}

/// The receiving half.
pub trait PipeRx: Send {
    /// The next message; `None` once the pipe has ended without a close message. Dropping
    /// the future before it resolves loses nothing (the session selects over it).
    fn recv(&mut self) -> BoxFuture<'_, Option<Result<Message, Broken>>>;
}

/// The transport an endpoint's URL calls for: `https://` is SageMaker's HTTP/2 event stream
/// (the only provider reached over plain HTTP), anything else a WebSocket.
pub fn for_url(url: &Url) -> Arc<dyn Transport> {
    match url.scheme() {
        "https" => Arc::new(sagemaker::SageMaker::new()),
        _ => Arc::new(websocket::WebSocket),
    }
}

/// Opens a pipe within the request's timeout.
pub async fn open(transport: &dyn Transport, request: Request) -> Result<Pipe, OpenError> {
    let timeout = request.timeout;
    match tokio::time::timeout(timeout, transport.connect(request)).await {
        Ok(result) => result,
        Err(_) => Err(OpenError::Timeout),
    }
}
