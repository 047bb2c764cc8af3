//! What every WebSocket dialect of `flux serve` shares for one accepted connection: the
//! bounded outgoing queue and the writer task behind it, where the connection stands
//! ([`Phase`]), the close handshake and its grace period, the log's records of audio and of
//! the close, the read loop, and the timed faults (`--fault`: drop, error, stall, a malformed
//! or unknown message).
//!
//! A dialect (Flux's routes in `session`, Fireworks' in `fireworks::session`) keeps a [`Link`]
//! and says through [`Dialect`] what its messages look like; [`Connection::drive`] runs it.
//! The queue is bounded: a client that stops reading makes the server stop reading from it,
//! so memory stays flat whatever the client does.

use crate::serve::fault::{Action, ConnFaults};
use crate::serve::log::Logger;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Messages waiting for the writer; beyond this the session stops reading.
const QUEUE: usize = 64;
/// How long to wait for the client's reply after the server closes.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What the session hands the writer task.
pub enum Out {
    /// A text message, and when it was produced (the `delay` fault holds it until then + delay).
    Text(String, Instant),
    Close(Option<CloseFrame>),
    /// Close the TCP connection without a WebSocket close.
    Drop,
}

/// Where the session stands with its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    /// No more messages, but keep reading (`stall` fault).
    Stalled,
    /// The server sent its close, or the client did: waiting for the other side.
    Closing,
    /// Tear the connection down now.
    Dropping,
}

/// One connection's outgoing side and its record in the log.
pub struct Link {
    conn: u64,
    log: Option<Arc<Logger>>,
    tx: mpsc::Sender<Out>,
    pub faults: ConnFaults,
    pub phase: Phase,
    close_logged: bool,
}

impl Link {
    /// Appends one record to `--log`, when there is one.
    pub fn log(&self, kind: &str, fields: Value) {
        if let Some(log) = &self.log {
            log.write(self.conn, kind, fields);
        }
    }

    /// Records how the connection closed: the first reason only.
    pub fn log_close(&mut self, code: Option<u16>, reason: &str, by: &str) {
        if !self.close_logged {
            self.close_logged = true;
            self.log("close", json!({"code": code, "reason": reason, "by": by}));
        }
    }

    pub fn log_audio(&self, bytes: usize, start: f64, end: f64) {
        self.log(
            "audio",
            json!({"bytes": bytes, "audio_start": start, "audio_end": end}),
        );
    }

    /// Whether audio still counts (it does while stalled: the server reads on).
    pub fn receiving(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Stalled)
    }

    pub async fn send(&mut self, out: Out) {
        if self.tx.send(out).await.is_err() {
            // The writer is gone, so is the client; the read loop notices and ends.
            self.phase = Phase::Dropping;
        }
    }

    /// Queues one text message (nothing once stalled or closing).
    pub async fn send_text(&mut self, text: String) {
        if self.phase == Phase::Open {
            self.send(Out::Text(text, Instant::now())).await;
        }
    }

    /// Sends the server's close (without a status when `code` is `None`) and waits for the
    /// client's answer; a second close is a no-op.
    pub async fn close(&mut self, code: Option<u16>, reason: &str) {
        if matches!(self.phase, Phase::Closing | Phase::Dropping) {
            return;
        }
        let frame = code.map(|c| CloseFrame {
            code: CloseCode::from(c),
            reason: close_reason(reason).into(),
        });
        self.log_close(code, reason, "server");
        self.send(Out::Close(frame)).await;
        if self.phase != Phase::Dropping {
            self.phase = Phase::Closing;
        }
    }

    /// A read error: the client is gone, unless the message was too big (then the server
    /// closes with 1009 and waits for the client's answer).
    pub async fn on_read_error(&mut self, e: &WsError) {
        match e {
            WsError::Capacity(why) => {
                let reason = format!("message too big: {why}");
                self.close(Some(1009), &reason).await;
            }
            WsError::ConnectionClosed | WsError::AlreadyClosed => {
                self.log_close(None, "closed", "client");
                self.phase = Phase::Dropping;
            }
            other => {
                self.log_close(None, &other.to_string(), "drop");
                self.phase = Phase::Dropping;
            }
        }
    }

    /// The client's close frame: logged, and the loop reads on until the stream ends
    /// (tungstenite answers the close itself).
    pub fn on_close_frame(&mut self, frame: Option<&CloseFrame>) {
        let (code, reason) = match frame {
            Some(f) => (Some(u16::from(f.code)), f.reason.as_str()),
            None => (None, ""),
        };
        self.log_close(code, reason, "client");
        if self.receiving() {
            self.phase = Phase::Closing;
        }
    }
}

/// What a dialect's session tells the shared read loop and fault firing.
pub trait Dialect: Send {
    /// Something besides the socket the session waits for (a timer, a recognizer's result).
    type Wake: Send;

    fn link(&mut self) -> &mut Link;

    /// A message from the client (binary audio, text control, close).
    fn on_message(&mut self, msg: Message) -> impl Future<Output = ()> + Send;

    /// The next wake-up besides the socket; `None` when there is nothing to wait for.
    fn wake(&mut self) -> Option<impl Future<Output = Self::Wake> + Send>;

    fn on_wake(&mut self, wake: Self::Wake) -> impl Future<Output = ()> + Send;

    /// When the connection counts as idle (no audio for the idle timeout); `None` never.
    fn idle_deadline(&self) -> Option<Instant> {
        None
    }

    /// The connection went idle: the dialect's error and close.
    fn on_idle(&mut self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// The dialect's fatal error message, then its close.
    fn fail(
        &mut self,
        code: &str,
        description: &str,
        close: Option<u16>,
    ) -> impl Future<Output = ()> + Send;

    /// The `malformed` fault's text: the start of a message, cut off.
    fn malformed(&self) -> &'static str;

    /// Sends the `unknown` fault's message: one this dialect does not have.
    fn send_unknown(&mut self) -> impl Future<Output = ()> + Send;
}

/// Fires the timed faults due at `seconds` of audio.
pub async fn fire_faults<D: Dialect>(d: &mut D, seconds: f64) {
    for action in d.link().faults.due(seconds) {
        if d.link().phase != Phase::Open {
            return;
        }
        match action {
            Action::Drop => {
                let link = d.link();
                link.log_close(None, "fault: drop", "drop");
                link.send(Out::Drop).await;
                link.phase = Phase::Dropping;
            }
            Action::Error {
                code,
                description,
                close,
            } => d.fail(&code, &description, Some(close)).await,
            Action::Stall => d.link().phase = Phase::Stalled,
            Action::Malformed => {
                let text = d.malformed().to_string();
                d.link().send(Out::Text(text, Instant::now())).await;
            }
            Action::Unknown => d.send_unknown().await,
        }
    }
}

/// An accepted WebSocket, split: the reading half, and the writer task that owns the other.
pub struct Connection<S> {
    stream: SplitStream<WebSocketStream<S>>,
    writer: JoinHandle<()>,
}

/// Splits an accepted WebSocket into the session's [`Link`] and the [`Connection`] to drive.
pub fn open<S>(
    ws: WebSocketStream<S>,
    conn: u64,
    log: Option<Arc<Logger>>,
    faults: ConnFaults,
) -> (Link, Connection<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = tokio::spawn(write_loop(sink, rx, faults.delay));
    let link = Link {
        conn,
        log,
        tx,
        faults,
        phase: Phase::Open,
        close_logged: false,
    };
    (link, Connection { stream, writer })
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Reads until the connection ends, handing everything to the session; then lets the
    /// writer send what is queued (and a pending close or drop), within the grace period.
    pub async fn drive<D: Dialect>(mut self, mut d: D) {
        let mut writer_done = false;
        let mut close_deadline: Option<Instant> = None;
        // One idle timer for the connection, checked lazily: audio moves the deadline on
        // without touching the timer; when it fires early, it is set to the real deadline.
        let idle = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(idle);
        let mut idle_armed = false;
        while d.link().phase != Phase::Dropping {
            if d.link().phase == Phase::Closing && close_deadline.is_none() {
                close_deadline = Some(Instant::now() + CLOSE_GRACE);
            }
            if !idle_armed && let Some(at) = d.idle_deadline() {
                idle.as_mut().reset(at);
                idle_armed = true;
            }
            let closing = async move {
                match close_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let wake = d.wake();
            let has_wake = wake.is_some();
            let wake = async move {
                match wake {
                    Some(w) => w.await,
                    None => std::future::pending().await,
                }
            };
            // In this order: a server that fell behind reads the audio waiting for it before
            // it would call the connection idle.
            tokio::select! {
                biased;
                _ = &mut self.writer => {
                    // The writer stops only when the socket failed: the client is gone.
                    writer_done = true;
                    d.link().log_close(None, "the connection failed while sending", "drop");
                    break;
                }
                _ = closing => break,
                woke = wake, if has_wake => d.on_wake(woke).await,
                msg = self.stream.next() => match msg {
                    None => {
                        d.link().log_close(None, "the connection ended without a close frame", "drop");
                        break;
                    }
                    Some(Err(e)) => {
                        d.link().on_read_error(&e).await;
                        if d.link().phase != Phase::Closing {
                            break;
                        }
                    }
                    Some(Ok(m)) => d.on_message(m).await,
                },
                () = &mut idle, if idle_armed => match d.idle_deadline() {
                    Some(at) if at <= Instant::now() => d.on_idle().await,
                    Some(at) => idle.as_mut().reset(at),
                    None => idle_armed = false,
                },
            }
        }
        // Dropping the session drops the queue's sender, so the writer ends after the queue.
        drop(d);
        if !writer_done
            && tokio::time::timeout(CLOSE_GRACE, &mut self.writer)
                .await
                .is_err()
        {
            self.writer.abort();
        }
    }
}

async fn write_loop<S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<Out>,
    delay: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(out) = rx.recv().await {
        match out {
            Out::Text(text, produced) => {
                if !delay.is_zero() {
                    tokio::time::sleep_until(produced + delay).await;
                }
                if sink.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            Out::Close(frame) => {
                // Errors here mean the client closed first; nothing left to tell it.
                let _ = sink.send(Message::Close(frame)).await;
            }
            Out::Drop => {
                // Dropping the sink (and, in `drive`, the stream) closes the TCP connection.
                let _ = sink.flush().await;
                return;
            }
        }
    }
    // The session is over; make sure a close we queued has left.
    let _ = sink.flush().await;
}

/// A close reason must fit in 123 bytes; cut on a character boundary.
fn close_reason(reason: &str) -> String {
    let mut out = String::new();
    for c in reason.chars() {
        if out.len() + c.len_utf8() > 120 {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::close_reason;

    #[test]
    fn a_close_reason_is_cut_on_a_character_boundary_within_the_limit() {
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 120, "{} bytes", cut.len());
        assert_eq!(cut.chars().count(), 60);
        assert_eq!(close_reason("CloseStream"), "CloseStream");
    }
}
