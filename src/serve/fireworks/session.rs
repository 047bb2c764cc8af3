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
use crate::serve::link::{self, Dialect, Link, Phase};
use crate::serve::session::Setup;
use crate::serve::turns::{Settings, Turns};
use crate::serve::vad::Vad;
use serde_json::{Value, json};
use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The turn engine's settings: Fireworks has no thresholds to configure.
const SETTINGS: Settings = Settings {
    eot_threshold: 0.7,
    eager_eot_threshold: None,
    eot_timeout_ms: 5000,
};
/// Bytes per millisecond of 16 kHz linear16 mono.
const BYTES_PER_MS: usize = 32;

pub async fn run<S>(ws: WebSocketStream<S>, mut setup: Setup)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let faults = std::mem::take(&mut setup.faults);
    let (link, connection) = link::open(ws, setup.conn, setup.log.clone(), faults);
    connection.drive(Conn::new(setup, link)).await;
}

struct Conn {
    link: Link,
    decoder: Decoder,
    vad: Vad,
    turns: Turns,
    segmenter: Segmenter,
    samples: Vec<f32>,
    received_samples: u64,
}

/// A Fireworks error message (the shape of the reference's object form).
fn error(code: &str, message: &str) -> String {
    json!({"error": {"message": message, "code": code}}).to_string()
}

impl Conn {
    fn new(setup: Setup, link: Link) -> Conn {
        let rate = crate::provider::fireworks::SAMPLE_RATE;
        let fw = setup.accepted.fireworks.clone().unwrap_or_default();
        Conn {
            link,
            decoder: Decoder::new(Format::Raw {
                encoding: Encoding::Linear16,
                rate,
            }),
            vad: Vad::new(rate),
            turns: Turns::new(rate, setup.script),
            segmenter: Segmenter::new(fw.string_ids, fw.language.as_deref()),
            samples: Vec::new(),
            received_samples: 0,
        }
    }

    fn received_seconds(&self) -> f64 {
        let rate = f64::from(crate::provider::fireworks::SAMPLE_RATE);
        (self.received_samples as f64 / rate * 1000.0).round() / 1000.0
    }

    /// Queues one message (nothing once stalled or closing).
    async fn emit(&mut self, text: String) {
        self.link.send_text(text).await;
    }

    async fn on_audio(&mut self, bytes: &[u8]) {
        let start = self.received_seconds();
        if !self.link.receiving() {
            self.link.log_audio(bytes.len(), start, start);
            return;
        }
        let sizes =
            (*FRAME_MS.start() as usize * BYTES_PER_MS)..=(*FRAME_MS.end() as usize * BYTES_PER_MS);
        if !bytes.len().is_multiple_of(2) || !sizes.contains(&bytes.len()) {
            self.link.log_audio(bytes.len(), start, start);
            let message = format!(
                "Audio frames must hold {} to {} ms of 16 kHz mono 16-bit PCM ({} to {} bytes); \
                 got {} bytes",
                FRAME_MS.start(),
                FRAME_MS.end(),
                sizes.start(),
                sizes.end(),
                bytes.len()
            );
            self.fail("invalid_audio_frame", &message, Some(1008)).await;
            return;
        }
        let mut samples = std::mem::take(&mut self.samples);
        samples.clear();
        // Raw linear16 always decodes (the length was checked above).
        let _ = self.decoder.decode(bytes, &mut samples);
        self.received_samples += samples.len() as u64;
        self.link
            .log_audio(bytes.len(), start, self.received_seconds());
        for &sample in &samples {
            if self.link.phase != Phase::Open {
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
            link::fire_faults(self, now).await;
        }
        self.samples = samples;
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
            Some(v) => self.link.log("control", json!({ "message": v })),
            None => self.link.log("control", json!({ "text": text })),
        }
        if self.link.phase != Phase::Open {
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
}

impl Dialect for Conn {
    /// Fireworks' sessions wait for nothing but the socket.
    type Wake = std::convert::Infallible;

    fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    async fn on_message(&mut self, msg: Message) {
        match msg {
            Message::Binary(bytes) => self.on_audio(&bytes).await,
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Close(frame) => self.link.on_close_frame(frame.as_ref()),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }

    fn wake(&mut self) -> Option<impl Future<Output = Self::Wake> + Send> {
        None::<std::future::Pending<Self::Wake>>
    }

    async fn on_wake(&mut self, wake: Self::Wake) {
        match wake {}
    }

    async fn fail(&mut self, code: &str, description: &str, close: Option<u16>) {
        self.emit(error(code, description)).await;
        self.link.close(close, code).await;
    }

    fn malformed(&self) -> &'static str {
        r#"{"task":"transcribe","segments":["#
    }

    async fn send_unknown(&mut self) {
        let m = json!({
            "object": "flux.serve.unknown",
            "description": "a message Fireworks does not send, sent by --fault unknown"
        });
        self.emit(m.to_string()).await;
    }
}
