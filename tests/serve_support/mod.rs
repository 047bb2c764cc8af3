//! Helpers for the `flux serve` tests: an in-process server, a WebSocket client over real
//! loopback sockets, and fixture audio at any rate (resampled with `sox -D`, cached).
#![allow(dead_code)]

use flux::serve::{ServeOptions, ServerHandle};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TIMEOUT: Duration = Duration::from_secs(20);
pub const DG: &str = "/v2/listen";
pub const CF: &str = "/client/v4/accounts/acct123/ai/run/@cf/deepgram/flux";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub async fn serve(opts: ServeOptions) -> ServerHandle {
    flux::serve::start(ServeOptions {
        listen: "127.0.0.1:0".into(),
        ..opts
    })
    .await
    .expect("start flux serve")
}

pub async fn serve_default() -> ServerHandle {
    serve(ServeOptions::default()).await
}

/// What the client's reader saw.
#[derive(Debug, Clone)]
pub enum Incoming {
    Json(Value),
    /// A text frame that is not JSON.
    Text(String),
    Pong(Vec<u8>),
    /// A close frame; `None` = no status code (1005).
    Close(Option<(u16, String)>),
    /// The connection ended without a close frame.
    Ended(String),
}

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

pub struct Client {
    sink: Sink,
    rx: mpsc::UnboundedReceiver<Incoming>,
    pub response: Response<Option<Vec<u8>>>,
}

pub fn header(resp: &Response<Option<Vec<u8>>>, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Connects to `base` + `path_query`; an `Err` carries the refusal (status, headers, body).
pub async fn try_connect(
    base: &str,
    path_query: &str,
    headers: &[(&str, &str)],
) -> Result<Client, Box<Response<Option<Vec<u8>>>>> {
    let mut req = format!("{base}{path_query}").into_client_request().unwrap();
    for (k, v) in headers {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut()
            .append(name, HeaderValue::from_str(v).unwrap());
    }
    let (ws, response) = match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect timed out")
    {
        Ok(ok) => ok,
        Err(WsError::Http(resp)) => return Err(resp),
        Err(other) => panic!("connect failed: {other}"),
    };
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let item = match msg {
                Ok(Message::Text(t)) => match serde_json::from_str::<Value>(t.as_str()) {
                    Ok(v) => Incoming::Json(v),
                    Err(_) => Incoming::Text(t.as_str().to_string()),
                },
                Ok(Message::Pong(p)) => Incoming::Pong(p.to_vec()),
                Ok(Message::Close(f)) => Incoming::Close(
                    f.map(|f: CloseFrame| (u16::from(f.code), f.reason.as_str().to_string())),
                ),
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Incoming::Ended(e.to_string()));
                    return;
                }
            };
            if tx.send(item).is_err() {
                return;
            }
        }
        let _ = tx.send(Incoming::Ended("stream ended".into()));
    });
    Ok(Client { sink, rx, response })
}

pub async fn connect(base: &str, path_query: &str, headers: &[(&str, &str)]) -> Client {
    match try_connect(base, path_query, headers).await {
        Ok(c) => c,
        Err(resp) => panic!(
            "refused: {} {}",
            resp.status(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default())
        ),
    }
}

impl Client {
    pub fn request_id(&self) -> String {
        header(&self.response, "dg-request-id")
    }

    pub async fn audio(&mut self, bytes: &[u8]) {
        self.sink
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send audio");
    }

    /// Sends audio in frames of `frame` bytes (the last may be shorter).
    pub async fn audio_frames(&mut self, bytes: &[u8], frame: usize) {
        for chunk in bytes.chunks(frame) {
            self.audio(chunk).await;
        }
    }

    pub async fn text(&mut self, text: &str) {
        self.sink
            .send(Message::text(text.to_string()))
            .await
            .expect("send text");
    }

    pub async fn raw(&mut self, msg: Message) -> Result<(), WsError> {
        self.sink.send(msg).await
    }

    pub async fn close(&mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
    }

    /// The next thing the server did (panics after [`TIMEOUT`]).
    pub async fn recv(&mut self) -> Incoming {
        tokio::time::timeout(TIMEOUT, self.rx.recv())
            .await
            .expect("nothing from the server in time")
            .unwrap_or(Incoming::Ended("reader gone".into()))
    }

    /// The next JSON message; panics on anything else.
    pub async fn json(&mut self) -> Value {
        match self.recv().await {
            Incoming::Json(v) => v,
            other => panic!("expected JSON, got {other:?}"),
        }
    }

    /// Reads JSON messages until one has `type` == `kind` (or `event` == `kind`).
    pub async fn until(&mut self, kind: &str) -> Value {
        loop {
            let v = self.json().await;
            if v["type"] == kind || v["event"] == kind {
                return v;
            }
        }
    }

    /// Everything until the connection ends: the messages, then how it ended.
    pub async fn rest(&mut self) -> (Vec<Value>, Incoming) {
        let mut out = Vec::new();
        loop {
            match self.recv().await {
                Incoming::Json(v) => out.push(v),
                Incoming::Pong(_) | Incoming::Text(_) => {}
                end @ Incoming::Close(_) => {
                    // Let the close handshake finish.
                    let _ = self.sink.close().await;
                    return (out, end);
                }
                end @ Incoming::Ended(_) => return (out, end),
            }
        }
    }

    /// Sends CloseStream and returns every message until the server closes.
    pub async fn close_stream(&mut self) -> (Vec<Value>, Incoming) {
        self.text(r#"{"type":"CloseStream"}"#).await;
        self.rest().await
    }
}

pub fn dg_query(extra: &str) -> String {
    format!("{DG}?model=flux-general-en&encoding=linear16&sample_rate=16000{extra}")
}

/// A compact view of the turn events: `Event#turn@audio_window_end`, Updates left out.
pub fn turn_events(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["type"] == "TurnInfo" && m["event"] != "Update")
        .map(|m| {
            format!(
                "{}#{}@{}",
                m["event"].as_str().unwrap_or("?"),
                m["turn_index"],
                m["audio_window_end"]
            )
        })
        .collect()
}

/// (start, end) of each turn: StartOfTurn's first word start and EndOfTurn's window end.
pub fn turns(messages: &[Value]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut start = None;
    for m in messages {
        match m["event"].as_str() {
            Some("StartOfTurn") => start = m["words"][0]["start"].as_f64(),
            Some("EndOfTurn") => out.push((
                start.take().unwrap_or(-1.0),
                m["audio_window_end"].as_f64().unwrap(),
            )),
            _ => {}
        }
    }
    out
}

/// Messages with `request_id` removed (it differs per connection).
pub fn without_request_ids(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if let Some(o) = m.as_object_mut() {
                o.remove("request_id");
            }
            m
        })
        .collect()
}

/// Mono 16-bit samples of a WAV file.
pub fn wav_samples(path: &Path) -> (u32, Vec<i16>) {
    let mut r = hound::WavReader::open(path).expect("open wav");
    let rate = r.spec().sample_rate;
    let samples = r.samples::<i16>().map(|s| s.unwrap()).collect();
    (rate, samples)
}

pub fn le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// `name` from tests/fixtures at `rate` Hz, resampled with `sox -D` (deterministic, no
/// dither) once per test binary, as linear16 bytes.
pub fn fixture_at(name: &str, rate: u32) -> Vec<u8> {
    let src = fixture(name);
    let (native, samples) = wav_samples(&src);
    if native == rate {
        return le_bytes(&samples);
    }
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let out = dir.path().join(format!("{rate}-{name}"));
    if !out.exists() {
        let tmp = dir.path().join(format!(
            "{rate}-{name}.{:?}.tmp.wav",
            std::thread::current().id()
        ));
        let status = Command::new("sox")
            .arg("-D")
            .arg(&src)
            .args(["-r", &rate.to_string(), "-b", "16", "-e", "signed-integer"])
            .arg(&tmp)
            .status()
            .expect("run sox (scripts/setup-debian.sh installs it)");
        assert!(status.success(), "sox failed");
        std::fs::rename(&tmp, &out).unwrap();
    }
    le_bytes(&wav_samples(&out).1)
}

/// `seconds` of digital silence as linear16 at `rate`.
pub fn silence(rate: u32, seconds: f64) -> Vec<u8> {
    vec![0u8; 2 * (rate as f64 * seconds) as usize]
}

/// A deterministic "voice": a 220 Hz tone with harmonics at `amplitude`, as linear16.
pub fn voice(rate: u32, seconds: f64, amplitude: f64) -> Vec<i16> {
    let n = (rate as f64 * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let x = (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                + 0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.25 * (2.0 * std::f64::consts::PI * 880.0 * t).sin();
            (x / 1.75 * amplitude * 32767.0) as i16
        })
        .collect()
}

/// Quiet background noise (deterministic), so the VAD has a floor to measure.
pub fn hiss(rate: u32, seconds: f64) -> Vec<i16> {
    let mut state: u32 = 0x1234_5678;
    (0..(rate as f64 * seconds) as usize)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            ((state >> 16) as i16) / 256
        })
        .collect()
}

/// Speech-like segments separated by pauses: `[(speech_s, pause_s), ...]`, after 0.5 s of
/// background, as linear16 at `rate`.
pub fn utterances(rate: u32, parts: &[(f64, f64)]) -> Vec<u8> {
    let mut s = hiss(rate, 0.5);
    for (speech, pause) in parts {
        let v = voice(rate, *speech, 0.3);
        let h = hiss(rate, *speech);
        s.extend(v.iter().zip(h).map(|(a, b)| a.saturating_add(b)));
        s.extend(hiss(rate, *pause));
    }
    le_bytes(&s)
}
