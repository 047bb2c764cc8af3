//! An in-memory pipe for tests: the client side is a [`Transport`] like any other, and the
//! test drives the far end through a [`Server`] — take each connection attempt, accept it
//! (with response headers) or refuse it (status, headers, body), then read what the client
//! sent, send it messages, close with a code, or break the connection.
//!
//! Nothing here touches the network or the wall clock, so a session over it runs on tokio's
//! paused clock and a minute of stream takes milliseconds.

use super::{Broken, Message, OpenError, Pipe, PipeRx, PipeTx, Refusal, Request, Transport};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

/// The client side: hand it to the session.
#[derive(Clone)]
pub struct MemoryTransport {
    attempts: mpsc::UnboundedSender<Attempt>,
}

/// The test's side: where connection attempts arrive.
pub struct Server {
    attempts: mpsc::UnboundedReceiver<Attempt>,
    /// Attempts seen so far.
    pub connections: usize,
}

/// A new pipe: the client's transport and the server the test drives.
pub fn pipe() -> (MemoryTransport, Server) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        MemoryTransport { attempts: tx },
        Server {
            attempts: rx,
            connections: 0,
        },
    )
}

/// A connection attempt, waiting for the test's answer.
pub struct Attempt {
    pub request: Request,
    reply: oneshot::Sender<Result<Pipe, OpenError>>,
}

impl Transport for MemoryTransport {
    fn connect(&self, request: Request) -> BoxFuture<'static, Result<Pipe, OpenError>> {
        let (reply, answer) = oneshot::channel();
        let sent = self.attempts.send(Attempt { request, reply });
        async move {
            if sent.is_err() {
                return Err(OpenError::Network("connection refused (no server)".into()));
            }
            answer
                .await
                .unwrap_or_else(|_| Err(OpenError::Network("connection refused".into())))
        }
        .boxed()
    }
}

impl Server {
    /// The next connection attempt; `None` once every client transport is gone.
    pub async fn attempt(&mut self) -> Option<Attempt> {
        let a = self.attempts.recv().await;
        self.connections += a.is_some() as usize;
        a
    }

    /// The next attempt, accepted with these response headers; `None` once every client
    /// transport is gone.
    pub async fn accept(&mut self, headers: &[(&str, &str)]) -> Option<Peer> {
        Some(self.attempt().await?.accept(headers))
    }

    /// An attempt made since the last look, without waiting (for "never connected" checks).
    pub fn try_attempt(&mut self) -> Option<Attempt> {
        let a = self.attempts.try_recv().ok();
        self.connections += a.is_some() as usize;
        a
    }
}

impl Attempt {
    /// Completes the handshake (status 101) with these response headers.
    pub fn accept(self, headers: &[(&str, &str)]) -> Peer {
        let (to_server, from_client) = mpsc::unbounded_channel();
        let (to_client, from_server) = mpsc::unbounded_channel();
        let pipe = Pipe {
            tx: Box::new(ClientTx {
                to_server: Some(to_server),
            }),
            rx: Box::new(ClientRx { from_server }),
            status: 101,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
                .collect(),
        };
        // A client that gave up waiting has dropped its end; the peer then sees it closed.
        let _ = self.reply.send(Ok(pipe));
        Peer {
            from_client,
            to_client: Some(to_client),
        }
    }

    /// Refuses the handshake.
    pub fn refuse(self, status: u16, headers: &[(&str, &str)], body: &str) {
        let _ = self.reply.send(Err(OpenError::Refused(Refusal {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        })));
    }

    /// Fails the attempt as the network would (connection refused, reset).
    pub fn fail(self, why: &str) {
        let _ = self.reply.send(Err(OpenError::Network(why.to_string())));
    }
}

/// What the client did on the pipe, as the far end sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Message(Message),
    /// The client closed its side (a close frame).
    Closed,
}

/// The far end of one accepted connection.
pub struct Peer {
    from_client: mpsc::UnboundedReceiver<Seen>,
    to_client: Option<mpsc::UnboundedSender<Result<Message, Broken>>>,
}

impl Peer {
    /// The next thing the client did; `None` once it dropped the pipe.
    pub async fn recv(&mut self) -> Option<Seen> {
        self.from_client.recv().await
    }

    /// What the client did since the last look, without waiting.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut seen = Vec::new();
        while let Ok(s) = self.from_client.try_recv() {
            seen.push(s);
        }
        seen
    }

    /// The next text message the client sent, skipping audio; `None` once it is gone.
    pub async fn next_text(&mut self) -> Option<String> {
        loop {
            match self.recv().await? {
                Seen::Message(Message::Text(t)) => return Some(t),
                Seen::Closed => return None,
                _ => {}
            }
        }
    }

    /// Sends a text message (a server message's JSON).
    pub fn send_text(&self, text: &str) {
        self.push(Ok(Message::Text(text.to_string())));
    }

    pub fn send_binary(&self, data: &[u8]) {
        self.push(Ok(Message::Binary(bytes::Bytes::copy_from_slice(data))));
    }

    /// Closes the connection with this code (`None`: without one) and reason.
    pub fn close(&mut self, code: Option<u16>, reason: &str) {
        self.push(Ok(Message::Close {
            code,
            reason: reason.to_string(),
        }));
        self.to_client = None;
    }

    /// Breaks the connection (a reset): the client's next read fails.
    pub fn reset(&mut self) {
        self.push(Err(Broken::new("connection reset by peer")));
        self.to_client = None;
    }

    /// Gives the connection up on purpose, as the SageMaker transport does before the
    /// service's 30-minute cap: the client's next read says so.
    pub fn move_on(&mut self, detail: &str) {
        self.push(Err(Broken::planned(detail)));
        self.to_client = None;
    }

    fn push(&self, item: Result<Message, Broken>) {
        if let Some(tx) = &self.to_client {
            let _ = tx.send(item);
        }
    }
}

struct ClientTx {
    to_server: Option<mpsc::UnboundedSender<Seen>>,
}

struct ClientRx {
    from_server: mpsc::UnboundedReceiver<Result<Message, Broken>>,
}

impl PipeTx for ClientTx {
    fn send(&mut self, message: Message) -> BoxFuture<'_, Result<(), Broken>> {
        let result = match &self.to_server {
            Some(tx) => tx
                .send(Seen::Message(message))
                .map_err(|_| Broken::new("the peer is gone")),
            None => Err(Broken::new("the pipe is closed")),
        };
        async move { result }.boxed()
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), Broken>> {
        let result = match &self.to_server {
            Some(tx) if !tx.is_closed() => Ok(()),
            _ => Err(Broken::new("the peer is gone")),
        };
        async move { result }.boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, Result<(), Broken>> {
        if let Some(tx) = self.to_server.take() {
            let _ = tx.send(Seen::Closed);
        }
        async { Ok(()) }.boxed()
    }
}

impl PipeRx for ClientRx {
    fn recv(&mut self) -> BoxFuture<'_, Option<Result<Message, Broken>>> {
        async move { self.from_server.recv().await }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request() -> Request {
        Request {
            url: url::Url::parse("ws://memory/v2/listen").unwrap(),
            headers: vec![("authorization".into(), "Token k".into())],
            tls: None,
            timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn messages_flow_both_ways_and_closes_are_seen() {
        let (transport, mut server) = pipe();
        let client = tokio::spawn(async move {
            let mut p = super::super::open(&transport, request()).await.unwrap();
            assert_eq!(p.header("dg-request-id"), Some("r1"));
            p.tx.send(Message::Text("hi".into())).await.unwrap();
            p.tx.flush().await.unwrap();
            let got = p.rx.recv().await.unwrap().unwrap();
            assert_eq!(got, Message::Text("hello".into()));
            let close = p.rx.recv().await.unwrap().unwrap();
            assert_eq!(
                close,
                Message::Close {
                    code: Some(1000),
                    reason: "bye".into()
                }
            );
            assert!(p.rx.recv().await.is_none());
            p.tx.close().await.unwrap();
        });
        let attempt = server.attempt().await.unwrap();
        assert_eq!(attempt.request.headers[0].1, "Token k");
        let mut peer = attempt.accept(&[("dg-request-id", "r1")]);
        assert_eq!(peer.next_text().await.as_deref(), Some("hi"));
        peer.send_text("hello");
        peer.close(Some(1000), "bye");
        assert_eq!(peer.recv().await, Some(Seen::Closed));
        client.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_carry_status_headers_and_body_and_silence_times_out() {
        let (transport, mut server) = pipe();
        let t = transport.clone();
        let client = tokio::spawn(async move { super::super::open(&t, request()).await });
        server
            .attempt()
            .await
            .unwrap()
            .refuse(401, &[("dg-request-id", "r")], "{}");
        let Err(OpenError::Refused(r)) = client.await.unwrap() else {
            panic!("expected a refusal")
        };
        assert_eq!((r.status, r.header("DG-Request-Id")), (401, Some("r")));
        assert_eq!(r.body, b"{}");
        // An attempt nobody answers ends at the request's timeout.
        let client = tokio::spawn(async move { super::super::open(&transport, request()).await });
        let _pending = server.attempt().await.unwrap();
        assert!(matches!(client.await.unwrap(), Err(OpenError::Timeout)));
    }
}
