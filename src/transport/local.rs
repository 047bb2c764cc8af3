//! The in-process pipe: a WebSocket over an in-memory byte stream to a server running in the
//! same process (`--provider local`: the emulator with the local recognizer). No socket, no
//! TLS, no credentials; everything above the bytes is the real thing — the upgrade request
//! with the stream's query, the server's handshake verdict (a refusal is a real 400 with the
//! server's explanation), WebSocket framing, close codes — so the session cannot tell it from
//! a `flux serve` over loopback.
//!
//! The pipe knows nothing of the server: whoever builds the transport hands it an
//! [`Acceptor`] that serves one connection over a byte stream until it ends.

use super::{OpenError, Pipe, Request, Transport};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use tokio::io::DuplexStream;

/// Bytes in flight each way before a writer waits: a few dozen audio frames, so `--fast`
/// streams as fast as the server reads and no faster.
const BUFFER_BYTES: usize = 64 * 1024;

/// Serves connections that arrive as in-memory byte streams.
pub trait Acceptor: Send + Sync {
    /// Serves one connection over `stream` (the server's end, the upgrade request still
    /// unread) until it ends; the transport runs the future on its own task.
    fn serve(&self, stream: DuplexStream) -> BoxFuture<'static, ()>;
}

/// Opens pipes to an in-process server.
#[derive(Clone)]
pub struct Local {
    acceptor: Arc<dyn Acceptor>,
}

impl Local {
    pub fn new(acceptor: Arc<dyn Acceptor>) -> Local {
        Local { acceptor }
    }
}

impl Transport for Local {
    fn connect(&self, mut request: Request) -> BoxFuture<'static, Result<Pipe, OpenError>> {
        let (near, far) = tokio::io::duplex(BUFFER_BYTES);
        let serving = self.acceptor.serve(far);
        async move {
            // The WebSocket library speaks only ws:// and wss://; the scheme is never sent (the
            // request line carries the path and query, `Host` the host).
            request.url = as_ws(&request.url)?;
            // The server's side lives as long as its connection: it ends when the client's
            // end is dropped or closed, like a socket's peer.
            tokio::spawn(serving);
            super::websocket::open_over(request, near).await
        }
        .boxed()
    }
}

/// The same URL with the `ws` scheme (`local://` and `ws://` differ in kind, so the scheme
/// cannot simply be set).
fn as_ws(url: &url::Url) -> Result<url::Url, OpenError> {
    let mut text = format!("ws://{}", url.host_str().unwrap_or("localhost"));
    if let Some(port) = url.port() {
        text.push_str(&format!(":{port}"));
    }
    text.push_str(url.path());
    if let Some(query) = url.query() {
        text.push('?');
        text.push_str(query);
    }
    url::Url::parse(&text).map_err(|e| OpenError::Invalid(format!("cannot use the URL {url}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Message;
    use futures_util::{SinkExt, StreamExt};
    use std::time::Duration;
    use tokio_tungstenite::tungstenite;
    use tokio_tungstenite::tungstenite::handshake::server::{
        Callback, ErrorResponse, Request as UpgradeRequest, Response,
    };

    /// Answers upgrades to `/ok` and echoes text; refuses anything else with a 400 and a body.
    struct Echo;

    /// The handshake's verdict (a trait impl: tungstenite's callback returns its large error
    /// response by value).
    struct OnlyOk;

    impl Callback for OnlyOk {
        fn on_request(
            self,
            req: &UpgradeRequest,
            resp: Response,
        ) -> Result<Response, ErrorResponse> {
            if req.uri().path() == "/ok" {
                return Ok(resp);
            }
            let mut refusal = ErrorResponse::new(Some("bad".into()));
            *refusal.status_mut() = tungstenite::http::StatusCode::BAD_REQUEST;
            Err(refusal)
        }
    }

    impl Acceptor for Echo {
        fn serve(&self, stream: DuplexStream) -> BoxFuture<'static, ()> {
            async move {
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, OnlyOk).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() && ws.send(m).await.is_err() {
                        return;
                    }
                }
            }
            .boxed()
        }
    }

    fn request(path: &str) -> Request {
        Request {
            url: url::Url::parse(&format!("local://echo{path}?model=m")).unwrap(),
            headers: vec![],
            tls: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_websocket_runs_over_the_in_memory_stream() {
        let transport = Local::new(Arc::new(Echo));
        let mut pipe = crate::transport::open(&transport, request("/ok"))
            .await
            .unwrap();
        assert_eq!(pipe.status, 101);
        pipe.tx.send(Message::Text("hello".into())).await.unwrap();
        pipe.tx.flush().await.unwrap();
        assert_eq!(
            pipe.rx.recv().await.unwrap().unwrap(),
            Message::Text("hello".into())
        );
        pipe.tx.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_refusal_carries_the_servers_status_and_body() {
        let transport = Local::new(Arc::new(Echo));
        let Err(OpenError::Refused(r)) = crate::transport::open(&transport, request("/nope")).await
        else {
            panic!("expected a refusal")
        };
        assert_eq!((r.status, r.body.as_slice()), (400, b"bad".as_slice()));
    }
}
