//! The Fireworks adapter: a transport that speaks Fireworks on the wire and Flux to the
//! session, so the session's ending, reconnects, replay and timeline work unchanged.
//!
//! Server → session: every Fireworks message is passed on as received with a `type` added
//! (`FireworksTranscript`, `FireworksTrace`, `FireworksStateCleared`, `FireworksCheckpoint`,
//! `FireworksError`, `FireworksMessage`), so JSONL keeps it; then the Flux messages derived from
//! it, marked `"derived": true`: `TurnInfo`s from the segment state ([`super::segments`]), an
//! `Error` for a Fireworks error, a `Warning` for segments without a usable id.
//!
//! Session → server: audio passes through; `ClearState` becomes `stt.state.clear`;
//! `CloseStream` becomes `stt.input.trace` with a fresh trace id. When that trace's `stt.output.trace` comes back, every earlier audio has been
//! transcribed: the adapter closes the WebSocket and tells the session the stream closed
//! cleanly, which is how a Flux stream ends. Nothing else the session could send has a
//! Fireworks form (the provider's capabilities keep the session from asking).

use super::segments::{Segments, derived_json};
use crate::transport::{Broken, Message, OpenError, Pipe, PipeRx, PipeTx, Request, Transport};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Wraps the stream's transport (WebSocket, or the in-memory pipe in tests).
pub fn wrap(inner: Arc<dyn Transport>) -> Arc<dyn Transport> {
    Arc::new(FireworksTransport { inner })
}

struct FireworksTransport {
    inner: Arc<dyn Transport>,
}

impl Transport for FireworksTransport {
    fn connect(&self, request: Request) -> BoxFuture<'static, Result<Pipe, OpenError>> {
        let opening = self.inner.connect(request);
        async move {
            let pipe = opening.await?;
            let shared = Arc::new(Shared {
                tx: tokio::sync::Mutex::new(pipe.tx),
                trace: Mutex::new(None),
            });
            Ok(Pipe {
                tx: Box::new(Tx {
                    shared: shared.clone(),
                }),
                rx: Box::new(Rx {
                    shared,
                    inner: pipe.rx,
                    segments: Segments::default(),
                    pending: VecDeque::new(),
                    close_due: false,
                }),
                status: pipe.status,
                headers: pipe.headers,
            })
        }
        .boxed()
    }
}

/// What both halves of one connection share: the real sending half (the receiving half
/// closes it once the final trace is answered) and the final trace's id.
struct Shared {
    tx: tokio::sync::Mutex<Box<dyn PipeTx>>,
    trace: Mutex<Option<String>>,
}

struct Tx {
    shared: Arc<Shared>,
}

/// The end-of-stream request: a trace whose answer comes after all earlier audio.
fn trace_request(trace_id: &str) -> String {
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "object": "stt.input.trace",
        "trace_id": trace_id,
    })
    .to_string()
}

impl PipeTx for Tx {
    fn send(&mut self, message: Message) -> BoxFuture<'_, Result<(), Broken>> {
        async move {
            let message = match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match value.get("type").and_then(Value::as_str) {
                        Some("CloseStream") => {
                            let id = format!("final-{}", uuid::Uuid::new_v4());
                            let request = trace_request(&id);
                            if let Ok(mut trace) = self.shared.trace.lock() {
                                *trace = Some(id);
                            }
                            Message::Text(request)
                        }
                        Some("ClearState") => {
                            let reset = value
                                .get("reset_id")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                            Message::Text(
                                json!({
                                    "event_id": uuid::Uuid::new_v4().to_string(),
                                    "object": "stt.state.clear",
                                    "reset_id": reset,
                                })
                                .to_string(),
                            )
                        }
                        // Fireworks' own messages (`object`) go as written.
                        _ if value.get("object").is_some() => Message::Text(text),
                        // No Fireworks form: never sent (the capabilities say so).
                        _ => return Ok(()),
                    }
                }
                other => other,
            };
            self.shared.tx.lock().await.send(message).await
        }
        .boxed()
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), Broken>> {
        async move { self.shared.tx.lock().await.flush().await }.boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, Result<(), Broken>> {
        async move { self.shared.tx.lock().await.close().await }.boxed()
    }
}

struct Rx {
    shared: Arc<Shared>,
    inner: Box<dyn PipeRx>,
    segments: Segments,
    /// Messages translated but not yet handed to the session.
    pending: VecDeque<Message>,
    /// The final trace was answered: close the WebSocket before reporting the close.
    close_due: bool,
}

impl PipeRx for Rx {
    fn recv(&mut self) -> BoxFuture<'_, Option<Result<Message, Broken>>> {
        async move {
            loop {
                if self.close_due && self.pending.len() == 1 {
                    self.close_due = false;
                    let mut tx = self.shared.tx.lock().await;
                    // Best effort: the stream is complete whether or not the close goes out.
                    let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
                }
                if let Some(m) = self.pending.pop_front() {
                    return Some(Ok(m));
                }
                match self.inner.recv().await? {
                    Ok(Message::Text(text)) => self.translate(&text),
                    other => return Some(other),
                }
            }
        }
        .boxed()
    }
}

impl Rx {
    /// Queues one Fireworks message for the session: the message itself, typed, then what
    /// flux derives from it.
    fn translate(&mut self, text: &str) {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
            // Not JSON: the session says so and skips it.
            self.pending.push_back(Message::Text(text.to_string()));
            return;
        };
        let object = map
            .get("object")
            .and_then(Value::as_str)
            .map(str::to_string);
        let kind = match object.as_deref() {
            Some("stt.output.trace") => "FireworksTrace",
            Some("stt.state.cleared") => "FireworksStateCleared",
            Some(_) => "FireworksMessage",
            None if map.contains_key("error") => "FireworksError",
            None if map.contains_key("checkpoint_id") => "FireworksCheckpoint",
            None if map.contains_key("segments") || map.contains_key("text") => {
                "FireworksTranscript"
            }
            None => "FireworksMessage",
        };
        let mut derived = Vec::new();
        match kind {
            "FireworksTranscript" => {
                let segments = map
                    .get("segments")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let merged = self.segments.merge(&segments);
                if merged.bad_ids > 0 {
                    derived.push(notice(
                        "Warning",
                        "FIREWORKS_BAD_SEGMENT_ID",
                        &format!(
                            "{} segment(s) had no integer id (as a number or a string) and \
                             were skipped",
                            merged.bad_ids
                        ),
                    ));
                }
                derived.extend(self.segments.derive().into_iter().map(derived_json));
            }
            "FireworksError" => {
                let (code, message) = error_parts(&map["error"]);
                derived.push(notice("Error", &code, &message));
            }
            "FireworksTrace" => {
                let ours = self.shared.trace.lock().ok().and_then(|t| t.clone());
                let answered = map.get("trace_id").and_then(Value::as_str);
                if ours.is_some() && answered == ours.as_deref() {
                    self.close_due = true;
                }
            }
            _ => {}
        }
        let raw = if map.contains_key("type") {
            map
        } else {
            let mut typed = Map::with_capacity(map.len() + 1);
            typed.insert("type".into(), Value::String(kind.into()));
            typed.extend(map);
            typed
        };
        self.pending
            .push_back(Message::Text(Value::Object(raw).to_string()));
        self.pending.extend(derived.into_iter().map(Message::Text));
        if self.close_due {
            self.pending.push_back(Message::Close {
                code: Some(1000),
                reason: "the final trace was answered".into(),
            });
        }
    }
}

/// A derived Flux `Warning` or `Error`.
fn notice(kind: &str, code: &str, description: &str) -> String {
    json!({"type": kind, "code": code, "description": description, "derived": true}).to_string()
}

/// A Fireworks `error`: a string, or an object with `message` and maybe `code`.
fn error_parts(error: &Value) -> (String, String) {
    let code = error
        .get("code")
        .map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "FIREWORKS_ERROR".into());
    let message = match error {
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string()),
        other => other.to_string(),
    };
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory;

    fn request() -> Request {
        Request {
            url: url::Url::parse("ws://127.0.0.1:1/v1/audio/transcriptions/streaming").unwrap(),
            headers: vec![],
            tls: None,
            timeout: Duration::from_secs(5),
        }
    }

    async fn text(rx: &mut Box<dyn PipeRx>) -> Value {
        match rx.recv().await {
            Some(Ok(Message::Text(t))) => serde_json::from_str(&t).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn close_stream_becomes_a_trace_and_its_answer_ends_the_stream() {
        let (transport, mut server) = memory::pipe();
        let fw = wrap(Arc::new(transport));
        let connecting = tokio::spawn(async move { fw.connect(request()).await });
        let mut peer = server.accept(&[]).await.unwrap();
        let mut pipe = connecting.await.unwrap().unwrap();
        // Flux-only requests have no Fireworks form and never reach the wire.
        pipe.tx
            .send(Message::Text(r#"{"type":"ForceEndTurn"}"#.into()))
            .await
            .unwrap();
        pipe.tx
            .send(Message::Text(r#"{"type":"CloseStream"}"#.into()))
            .await
            .unwrap();
        pipe.tx.flush().await.unwrap();
        let sent: Value = serde_json::from_str(&peer.next_text().await.unwrap()).unwrap();
        assert_eq!(sent["object"], "stt.input.trace");
        let id = sent["trace_id"].as_str().unwrap().to_string();
        peer.send_text(r#"{"task":"transcribe","language":"en","text":"hi","segments":[{"id":"0","text":"hi","words":[{"word":"hi","probability":0.9,"is_final":false,"start":0.1,"end":0.3}]}]}"#);
        // Someone else's trace (a latency probe) does not end the stream.
        peer.send_text(r#"{"object":"stt.output.trace","trace_id":"probe"}"#);
        peer.send_text(&json!({"object":"stt.output.trace","trace_id": id}).to_string());
        let raw = text(&mut pipe.rx).await;
        assert_eq!(raw["type"], "FireworksTranscript");
        assert_eq!(raw["segments"][0]["id"], "0");
        let start = text(&mut pipe.rx).await;
        assert_eq!(
            (start["type"].as_str(), start["event"].as_str()),
            (Some("TurnInfo"), Some("StartOfTurn"))
        );
        assert_eq!(start["derived"], true);
        assert_eq!(text(&mut pipe.rx).await["trace_id"], "probe");
        let answer = text(&mut pipe.rx).await;
        assert_eq!(answer["type"], "FireworksTrace");
        assert_eq!(
            pipe.rx.recv().await,
            Some(Ok(Message::Close {
                code: Some(1000),
                reason: "the final trace was answered".into()
            }))
        );
    }

    #[test]
    fn errors_come_as_strings_or_objects() {
        assert_eq!(
            error_parts(&json!("bad audio")),
            ("FIREWORKS_ERROR".into(), "bad audio".into())
        );
        assert_eq!(
            error_parts(&json!({"message": "no", "code": "invalid_request"})),
            ("invalid_request".into(), "no".into())
        );
    }
}
