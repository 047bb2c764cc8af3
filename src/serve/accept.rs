//! The WebSocket upgrade and the session after it, over any byte stream: a TCP connection
//! that `connection()` has already routed here, or an in-process one (`local`). The handshake
//! is decided by [`handshake::evaluate_with_tokens`] (auth, route, every stream parameter),
//! and an accepted connection runs the dialect's session.

use super::{Shared, fault, fireworks, handshake, log_handshake, replay, session};
use crate::provider::Secret;
use handshake::{Accepted, RequestHead};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Largest WebSocket message and frame a client may send (audio frames are ~2.5 KiB).
const MAX_MESSAGE: usize = 1 << 20;

/// Upgrades `stream` (its request head still unread) and runs the session until it ends.
pub(super) async fn upgrade<S>(stream: S, conn: u64, shared: Arc<Shared>, request_id: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let faults = fault::ConnFaults::for_conn(&shared.faults, conn);
    let mut accepted = None;
    let verdict = Verdict {
        shared: &shared,
        conn,
        reject: faults.reject.as_ref(),
        request_id: &request_id,
        accepted: &mut accepted,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, verdict, Some(config)).await;
    let (Ok(ws), Some(accepted)) = (ws, accepted) else {
        return;
    };
    let setup = session::Setup {
        conn,
        request_id,
        accepted,
        faults,
        script: shared.script.clone(),
        log: shared.log.clone(),
        asr: shared.asr.clone(),
        idle_timeout: shared.idle_timeout,
        replay: shared.replay.clone().map(replay::Replayer::new),
    };
    if setup.accepted.fireworks.is_some() {
        fireworks::session::run(ws, setup).await;
    } else {
        session::run(ws, setup).await;
    }
}

/// Decides the upgrade when tungstenite has read the request: accept (with the request id and
/// the chosen subprotocol in the response) or refuse with the dialect's error body.
struct Verdict<'a> {
    shared: &'a Shared,
    conn: u64,
    /// A `reject` fault for this connection.
    reject: Option<&'a (u16, Option<String>)>,
    request_id: &'a str,
    /// Where the accepted connection's settings go.
    accepted: &'a mut Option<Accepted>,
}

impl Callback for Verdict<'_> {
    fn on_request(self, req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
        let head = RequestHead::from_request(req);
        let shared = self.shared;
        let verdict = handshake::evaluate_with_tokens(
            &head,
            shared.api_key.as_ref().map(Secret::expose),
            &|token| shared.grants.check(token, Instant::now()),
            self.reject,
            self.request_id,
        );
        match verdict {
            Ok(acc) => {
                log_handshake(shared, self.conn, &head, 101, self.request_id);
                let headers = resp.headers_mut();
                if let Ok(v) = HeaderValue::from_str(self.request_id) {
                    headers.insert(crate::protocol::REQUEST_ID_HEADER, v);
                }
                if let Some(p) = acc.subprotocol.as_deref()
                    && let Ok(v) = HeaderValue::from_str(p)
                {
                    headers.insert("sec-websocket-protocol", v);
                }
                *self.accepted = Some(acc);
                Ok(resp)
            }
            Err(refusal) => {
                log_handshake(shared, self.conn, &head, refusal.status, self.request_id);
                Err(handshake::error_response(&refusal, self.request_id))
            }
        }
    }
}
