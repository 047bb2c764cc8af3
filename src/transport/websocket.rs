//! The WebSocket pipe, over tokio-tungstenite with flux's own rustls setup (webpki roots plus
//! `--ca-cert`, see [`super::tls`]). Pings are answered by tungstenite itself. The same
//! handshake and message handling also run over an in-process byte stream ([`open_over`]).

use super::{Broken, Message, OpenError, Pipe, PipeRx, PipeTx, Refusal, Request, Transport};
use futures_util::future::BoxFuture;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request as ClientRequest, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{Connector, WebSocketStream, tungstenite};

/// Largest server message accepted. Real messages are a few KiB; the cap keeps a hostile or
/// broken server from growing the client's memory without bound.
const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Socket read size: a few typical messages per read.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Opens WebSocket connections (`ws://`, `wss://`).
#[derive(Debug, Default, Clone, Copy)]
pub struct WebSocket;

impl Transport for WebSocket {
    fn connect(&self, request: Request) -> BoxFuture<'static, Result<Pipe, OpenError>> {
        open(request).boxed()
    }
}

async fn open(request: Request) -> Result<Pipe, OpenError> {
    let host = request.host_port();
    let upgrade = upgrade_request(&request, &host)?;
    // Always flux's own rustls setup (webpki roots plus --ca-cert), never the library's default.
    let tls = match request.tls {
        Some(tls) => tls,
        None => super::tls::default_config().map_err(|e| OpenError::Tls(e.to_string()))?,
    };
    let attempt = tokio_tungstenite::connect_async_tls_with_config(
        upgrade,
        Some(config()),
        true,
        Some(Connector::Rustls(tls)),
    );
    match attempt.await {
        Ok((ws, response)) => Ok(pipe(ws, &response)),
        Err(e) => Err(classify(e, &host)),
    }
}

/// Completes the WebSocket client handshake over a byte stream that is already open (the
/// in-process pipe, [`super::local`]): the same request, limits and message handling as over
/// a socket.
pub(super) async fn open_over<S>(request: Request, stream: S) -> Result<Pipe, OpenError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let host = request.host_port();
    let upgrade = upgrade_request(&request, &host)?;
    match tokio_tungstenite::client_async_with_config(upgrade, stream, Some(config())).await {
        Ok((ws, response)) => Ok(pipe(ws, &response)),
        Err(e) => Err(classify(e, &host)),
    }
}

/// The upgrade request: the URL with the request's headers.
fn upgrade_request(request: &Request, host: &str) -> Result<ClientRequest, OpenError> {
    let mut upgrade = request
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| OpenError::Invalid(format!("cannot use the URL for {host}: {e}")))?;
    for (name, value) in &request.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| OpenError::Invalid(format!("`{name}` is not a valid HTTP header name")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            OpenError::Invalid(format!(
                "the {name} credential contains characters not allowed in an HTTP header (check \
                 for a stray newline or quote)"
            ))
        })?;
        upgrade.headers_mut().insert(header, value);
    }
    Ok(upgrade)
}

/// The connection's limits.
fn config() -> WebSocketConfig {
    // tungstenite zero-fills its whole read buffer before every read, including the ones
    // that find nothing: at the default 128 KiB that was a visible share of the session's
    // CPU. Flux's messages are a few hundred bytes; longer ones still arrive whole (the
    // buffer grows to the frame's length).
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// An open connection as the session's two halves.
fn pipe<S>(ws: WebSocketStream<S>, response: &Response) -> Pipe
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = ws.split();
    Pipe {
        tx: Box::new(WsTx(tx)),
        rx: Box::new(WsRx(rx)),
        status: response.status().as_u16(),
        headers: headers(response.headers()),
    }
}

fn headers(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .filter_map(|(n, v)| Some((n.as_str().to_ascii_lowercase(), v.to_str().ok()?.into())))
        .collect()
}

fn classify(err: tungstenite::Error, host: &str) -> OpenError {
    match err {
        tungstenite::Error::Http(response) => OpenError::Refused(Refusal {
            status: response.status().as_u16(),
            headers: headers(response.headers()),
            body: response.body().clone().unwrap_or_default(),
        }),
        // rustls reports a failed handshake as an I/O error wrapping its own error. A
        // certificate problem does not fix itself by retrying.
        tungstenite::Error::Io(e) if super::tls::is_tls_error(&e) => {
            OpenError::Tls(super::tls::explain(&e, host))
        }
        tungstenite::Error::Io(e) => OpenError::Network(format!(
            "cannot connect to {host}: {e}; is the server running and the URL right?"
        )),
        tungstenite::Error::Tls(e) => {
            OpenError::Tls(format!("TLS handshake with {host} failed: {e}"))
        }
        tungstenite::Error::Url(e) => OpenError::Invalid(format!("bad URL for {host}: {e}")),
        other => OpenError::Network(format!("WebSocket handshake with {host} failed: {other}")),
    }
}

struct WsTx<S>(SplitSink<WebSocketStream<S>, tungstenite::Message>);
struct WsRx<S>(SplitStream<WebSocketStream<S>>);

fn broken(e: tungstenite::Error) -> Broken {
    Broken::new(e.to_string())
}

impl<S> PipeTx for WsTx<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn send(&mut self, message: Message) -> BoxFuture<'_, Result<(), Broken>> {
        let message = match message {
            Message::Text(t) => tungstenite::Message::Text(t.into()),
            Message::Binary(b) => tungstenite::Message::Binary(b),
            Message::Close { code, reason } => {
                tungstenite::Message::Close(code.map(|c| tungstenite::protocol::CloseFrame {
                    code: CloseCode::from(c),
                    reason: reason.into(),
                }))
            }
        };
        // `feed` queues without flushing: a batch of frames goes out with one flush.
        async move { self.0.feed(message).await.map_err(broken) }.boxed()
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), Broken>> {
        async move { self.0.flush().await.map_err(broken) }.boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, Result<(), Broken>> {
        async move { self.0.close().await.map_err(broken) }.boxed()
    }
}

impl<S> PipeRx for WsRx<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn recv(&mut self) -> BoxFuture<'_, Option<Result<Message, Broken>>> {
        async move {
            loop {
                let message = match self.0.next().await? {
                    Ok(m) => m,
                    Err(e) => return Some(Err(broken(e))),
                };
                return Some(Ok(match message {
                    tungstenite::Message::Text(t) => Message::Text(t.as_str().to_string()),
                    tungstenite::Message::Binary(b) => Message::Binary(b),
                    tungstenite::Message::Close(frame) => {
                        let (code, reason) = frame
                            .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                            .unwrap_or((None, String::new()));
                        Message::Close { code, reason }
                    }
                    // Pings are answered by tungstenite; pongs and raw frames mean nothing here.
                    _ => continue,
                }));
            }
        }
        .boxed()
    }
}
