//! One accepted Fireworks connection: 16 kHz linear16 frames in (50–400 ms each), transcript
//! messages out, traces and state clears answered, faults and the log as on the Flux routes.
//!
//! The turns come from the same VAD and turn engine as the Flux dialects (so the same audio
//! gives the same turns); [`Segmenter`] tells them as segments. A trace is answered after
//! everything before it: the open turn, if any, is finished (all its words final) first, as
//! the service finalizes what it has heard before it answers. There is no greeting.

use super::segmenter::Segmenter;
use crate::protocol::Encoding;
use crate::provider::fireworks::FRAME_MS;
use crate::serve::audio::{Decoder, Format};
use crate::serve::fault::{Action, ConnFaults};
use crate::serve::log::Logger;
use crate::serve::session::Setup;
use crate::serve::turns::{Settings, Turns};
use crate::serve::vad::Vad;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Messages waiting for the writer; beyond this the session stops reading.
const QUEUE: usize = 64;
/// How long to wait for the client's reply after the server closes.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The turn engine's settings: Fireworks has no thresholds to configure.
const SETTINGS: Settings = Settings {
    eot_threshold: 0.7,
    eager_eot_threshold: None,
    eot_timeout_ms: 5000,
};
/// Bytes per millisecond of 16 kHz linear16 mono.
const BYTES_PER_MS: usize = 32;

enum Out {
    Text(String, Instant),
    Close(Option<CloseFrame>),
    /// Close the TCP connection without a WebSocket close.
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// No more messages, but keep reading (`stall` fault).
    Stalled,
    /// The server sent its close; waiting for the client's reply.
    Closing,
    Dropping,
}

pub async fn run<S>(ws: WebSocketStream<S>, setup: Setup)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Out>(QUEUE);
    let delay = setup.faults.delay;
    let mut writer = tokio::spawn(async move {
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
                    let _ = sink.send(Message::Close(frame)).await;
                }
                Out::Drop => {
                    let _ = sink.flush().await;
                    return;
                }
            }
        }
        let _ = sink.flush().await;
    });
    let mut c = Conn::new(setup, tx);
    let mut writer_done = false;
    let mut close_deadline: Option<Instant> = None;
    while c.phase != Phase::Dropping {
        if c.phase == Phase::Closing && close_deadline.is_none() {
            close_deadline = Some(Instant::now() + CLOSE_GRACE);
        }
        let deadline =
            close_deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            _ = &mut writer => {
                writer_done = true;
                c.log_close(None, "the connection failed while sending", "drop");
                break;
            }
            _ = tokio::time::sleep_until(deadline), if close_deadline.is_some() => break,
            msg = stream.next() => match msg {
                None => {
                    c.log_close(None, "the connection ended without a close frame", "drop");
                    break;
                }
                Some(Err(e)) => {
                    c.log_close(None, &e.to_string(), "drop");
                    break;
                }
                Some(Ok(m)) => c.on_message(m).await,
            },
        }
    }
    drop(c);
    if !writer_done
        && tokio::time::timeout(CLOSE_GRACE, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    drop(stream);
}

struct Conn {
    conn: u64,
    log: Option<Arc<Logger>>,
    faults: ConnFaults,
    tx: mpsc::Sender<Out>,
    decoder: Decoder,
    vad: Vad,
    turns: Turns,
    segmenter: Segmenter,
    samples: Vec<f32>,
    received_samples: u64,
    phase: Phase,
    close_logged: bool,
}

/// A Fireworks error message (the shape of the reference's object form).
fn error(code: &str, message: &str) -> String {
    json!({"error": {"message": message, "code": code}}).to_string()
}

impl Conn {
    fn new(setup: Setup, tx: mpsc::Sender<Out>) -> Conn {
        let rate = crate::provider::fireworks::SAMPLE_RATE;
        let fw = setup.accepted.fireworks.clone().unwrap_or_default();
        Conn {
            conn: setup.conn,
            log: setup.log,
            faults: setup.faults,
            tx,
            decoder: Decoder::new(Format::Raw {
                encoding: Encoding::Linear16,
                rate,
            }),
            vad: Vad::new(rate),
            turns: Turns::new(rate, setup.script),
            segmenter: Segmenter::new(fw.string_ids, fw.language.as_deref()),
            samples: Vec::new(),
            received_samples: 0,
            phase: Phase::Open,
            close_logged: false,
        }
    }

    fn log(&self, kind: &str, fields: Value) {
        if let Some(log) = &self.log {
            log.write(self.conn, kind, fields);
        }
    }

    fn log_close(&mut self, code: Option<u16>, reason: &str, by: &str) {
        if !self.close_logged {
            self.close_logged = true;
            self.log("close", json!({"code": code, "reason": reason, "by": by}));
        }
    }

    fn received_seconds(&self) -> f64 {
        let rate = f64::from(crate::provider::fireworks::SAMPLE_RATE);
        (self.received_samples as f64 / rate * 1000.0).round() / 1000.0
    }

    async fn send(&mut self, out: Out) {
        if self.tx.send(out).await.is_err() {
            self.phase = Phase::Dropping;
        }
    }

    /// Queues one message (nothing once stalled or closing).
    async fn emit(&mut self, text: String) {
        if self.phase == Phase::Open {
            self.send(Out::Text(text, Instant::now())).await;
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        if matches!(self.phase, Phase::Closing | Phase::Dropping) {
            return;
        }
        self.log_close(Some(code), reason, "server");
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.chars().take(100).collect::<String>().into(),
        };
        self.send(Out::Close(Some(frame))).await;
        if self.phase != Phase::Dropping {
            self.phase = Phase::Closing;
        }
    }

    async fn fail(&mut self, code: &str, message: &str, close: u16) {
        self.emit(error(code, message)).await;
        self.close(close, code).await;
    }

    async fn on_message(&mut self, msg: Message) {
        match msg {
            Message::Binary(bytes) => self.on_audio(&bytes).await,
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Close(frame) => {
                let (code, reason) = match &frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                    None => (None, String::new()),
                };
                self.log_close(code, &reason, "client");
                if matches!(self.phase, Phase::Open | Phase::Stalled) {
                    self.phase = Phase::Closing;
                }
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }

    async fn on_audio(&mut self, bytes: &[u8]) {
        let start = self.received_seconds();
        if !matches!(self.phase, Phase::Open | Phase::Stalled) {
            self.log_audio(bytes.len(), start, start);
            return;
        }
        let sizes =
            (*FRAME_MS.start() as usize * BYTES_PER_MS)..=(*FRAME_MS.end() as usize * BYTES_PER_MS);
        if !bytes.len().is_multiple_of(2) || !sizes.contains(&bytes.len()) {
            self.log_audio(bytes.len(), start, start);
            let message = format!(
                "Audio frames must hold {} to {} ms of 16 kHz mono 16-bit PCM ({} to {} bytes); \
                 got {} bytes",
                FRAME_MS.start(),
                FRAME_MS.end(),
                sizes.start(),
                sizes.end(),
                bytes.len()
            );
            self.fail("invalid_audio_frame", &message, 1008).await;
            return;
        }
        let mut samples = std::mem::take(&mut self.samples);
        samples.clear();
        // Raw linear16 always decodes (the length was checked above).
        let _ = self.decoder.decode(bytes, &mut samples);
        self.received_samples += samples.len() as u64;
        self.log_audio(bytes.len(), start, self.received_seconds());
        for &sample in &samples {
            if self.phase != Phase::Open {
                break;
            }
            let Some(voiced) = self.vad.push(sample) else {
                continue;
            };
            let events = self.turns.on_hop(voiced, &SETTINGS);
            for e in events {
                let m = self.segmenter.message(&e);
                self.emit(m.to_string()).await;
            }
            let now = self.turns.processed_seconds();
            self.run_faults(now).await;
        }
        self.samples = samples;
    }

    fn log_audio(&self, bytes: usize, start: f64, end: f64) {
        self.log(
            "audio",
            json!({"bytes": bytes, "audio_start": start, "audio_end": end}),
        );
    }

    /// Finishes the open turn: everything heard so far is final.
    async fn finalize(&mut self) {
        if let Some(done) = self.turns.force_end() {
            let m = self.segmenter.message(&done);
            self.emit(m.to_string()).await;
        }
    }

    async fn on_text(&mut self, text: &str) {
        let value: Option<Value> = serde_json::from_str(text).ok();
        match &value {
            Some(v) => self.log("control", json!({ "message": v })),
            None => self.log("control", json!({ "text": text })),
        }
        if self.phase != Phase::Open {
            return;
        }
        let Some(Value::Object(m)) = value else {
            let e = error("invalid_request", "Text messages must be JSON objects");
            self.emit(e).await;
            return;
        };
        let event_id = m.get("event_id").cloned().unwrap_or(Value::Null);
        match m.get("object").and_then(Value::as_str) {
            Some("stt.input.trace") => {
                self.finalize().await;
                let trace = m.get("trace_id").cloned().unwrap_or(Value::Null);
                let reply =
                    json!({"event_id": event_id, "object": "stt.output.trace", "trace_id": trace});
                self.emit(reply.to_string()).await;
            }
            Some("stt.state.clear") => {
                let reset = m.get("reset_id").cloned().unwrap_or(Value::Null);
                let reply =
                    json!({"event_id": event_id, "object": "stt.state.cleared", "reset_id": reset});
                self.emit(reply.to_string()).await;
            }
            None if m.contains_key("checkpoint_id") => {
                // The legacy end of stream, echoed after everything before it.
                self.finalize().await;
                let reply = json!({"checkpoint_id": m["checkpoint_id"]});
                self.emit(reply.to_string()).await;
            }
            other => {
                let what = other.unwrap_or("(no object)");
                let e = error(
                    "invalid_request",
                    &format!("Unknown message `{what}`: send stt.input.trace or stt.state.clear"),
                );
                self.emit(e).await;
            }
        }
    }

    async fn run_faults(&mut self, seconds: f64) {
        for action in self.faults.due(seconds) {
            if self.phase != Phase::Open {
                return;
            }
            match action {
                Action::Drop => {
                    self.log_close(None, "fault: drop", "drop");
                    self.send(Out::Drop).await;
                    self.phase = Phase::Dropping;
                }
                Action::Error {
                    code,
                    description,
                    close,
                } => self.fail(&code, &description, close).await,
                Action::Stall => self.phase = Phase::Stalled,
                Action::Malformed => {
                    let text = r#"{"task":"transcribe","segments":["#;
                    self.send(Out::Text(text.to_string(), Instant::now())).await;
                }
                Action::Unknown => {
                    let m = json!({
                        "object": "flux.serve.unknown",
                        "description": "a message Fireworks does not send, sent by --fault unknown"
                    });
                    self.emit(m.to_string()).await;
                }
            }
        }
    }
}
