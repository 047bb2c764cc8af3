//! The session's state machine over the in-memory transport, on tokio's paused clock: each
//! test streams seconds of audio in milliseconds of wall time, while the test plays the
//! server (accepting or refusing connections, answering, dropping, stalling). This file holds
//! the helpers; `connections.rs` covers connecting, dropping, stalling, backoff and finishing
//! early, `ending.rs` the Configure queue and the end of a stream.

mod connections;
mod ending;

use super::*;
use crate::audio::condition::Frame as AudioFrame;
use crate::event::TurnLatency;
use crate::provider::cloudflare::{self, CloudflareOptions};
use crate::provider::deepgram::{self, DeepgramOptions};
use crate::transport::Message;
use crate::transport::memory::{self, Peer, Seen, Server};
use serde_json::Value;
use std::sync::Mutex;
use tokio::time::Instant;

pub(super) const RATE: u32 = 16000;
/// 62.5 ms frames: exact in binary, so frame edges add up without float noise.
pub(super) const FRAME_BYTES: usize = 2000;

pub(super) fn deepgram_opts() -> SessionOptions {
    let endpoint = deepgram::endpoint(
        DeepgramOptions {
            base_url: Some("ws://127.0.0.1:9"),
            api_key: None,
            allow_insecure: false,
            force_end_turn: true,
        },
        &Default::default(),
    )
    .unwrap();
    options(endpoint)
}

pub(super) fn cloudflare_opts() -> SessionOptions {
    let endpoint = cloudflare::endpoint(
        CloudflareOptions {
            url: Some("ws://127.0.0.1:9/worker"),
            gateway: None,
            account_id: None,
            api_token: None,
            allow_insecure: false,
        },
        &Default::default(),
    )
    .unwrap();
    options(endpoint)
}

pub(super) fn options(endpoint: Endpoint) -> SessionOptions {
    SessionOptions {
        endpoint,
        model: "flux-general-en".into(),
        sample_rate: RATE,
        frame_bytes: FRAME_BYTES,
        eot_timeout_ms: 1000,
        eot_threshold: 0.7,
        pace: Some(1.0),
        live_source: false,
        connect_timeout: Duration::from_secs(10),
        max_reconnects: 3,
        stall_timeout: Duration::from_secs(2),
    }
}

/// Frame `i` of the input: its first two bytes carry its index, so replays can be told.
pub(super) fn audio_frame(i: u64, bytes: usize) -> AudioFrame {
    let mut data = vec![7u8; bytes];
    data[..2].copy_from_slice(&(i as u16).to_le_bytes());
    AudioFrame {
        data: data.into(),
        index: i,
        start_sample: i * (FRAME_BYTES as u64 / 2),
        sample_rate: RATE,
    }
}

/// A source that has delivered `seconds` of audio and ended (the last frame may be short).
pub(super) fn finished_feed(seconds: f64) -> mpsc::Receiver<Feed> {
    let (tx, rx) = mpsc::channel(1024);
    let total = (seconds * RATE as f64) as usize * 2;
    let mut frames = Vec::new();
    let mut i = 0;
    while i as usize * FRAME_BYTES < total {
        frames.push(audio_frame(
            i,
            FRAME_BYTES.min(total - i as usize * FRAME_BYTES),
        ));
        i += 1;
    }
    let ready = std::time::Instant::now();
    tx.try_send(Feed::Frames { frames, ready }).unwrap();
    tx.try_send(Feed::End {
        error: None,
        note: None,
    })
    .unwrap();
    rx
}

#[derive(Clone, Default)]
pub(super) struct Collect(Arc<Mutex<Vec<Event>>>);

impl Sink for Collect {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Collect {
    pub(super) fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    pub(super) fn client(&self) -> Vec<ClientEvent> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Client(c) => Some(c),
                Event::Server(_) => None,
            })
            .collect()
    }

    pub(super) fn server_raw(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Server(r) => Some(r.raw),
                Event::Client(_) => None,
            })
            .collect()
    }
}

/// Runs a session against `server_side`, which plays the server; returns what the session
/// said and how it ended.
pub(super) async fn session<F, Fut>(
    opts: SessionOptions,
    feed: mpsc::Receiver<Feed>,
    controls: mpsc::Receiver<Control>,
    server_side: F,
) -> (Outcome, Collect)
where
    F: FnOnce(Server) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (transport, server) = memory::pipe();
    let sink = Collect::default();
    let mut s = sink.clone();
    let (outcome, ()) = tokio::join!(
        run_over(Arc::new(transport), &opts, feed, &mut s, controls, None),
        server_side(server)
    );
    (outcome, sink)
}

pub(super) fn no_controls() -> mpsc::Receiver<Control> {
    mpsc::channel(1).1
}

pub(super) fn turn(event: &str, index: u64, start: f64, end: f64, text: &str) -> String {
    format!(
        r#"{{"type":"TurnInfo","event":"{event}","turn_index":{index},"audio_window_start":{start},"audio_window_end":{end},"transcript":"{text}","words":[],"end_of_turn_confidence":0.9}}"#
    )
}

pub(super) const CONNECTED: &str =
    r#"{"type":"Connected","request_id":"r-connected","sequence_id":0}"#;

/// Reads audio until `n` frames have arrived; returns their first-two-byte indices. Text
/// messages on the way are returned too.
pub(super) async fn read_frames(peer: &mut Peer, n: usize) -> (Vec<u16>, Vec<String>) {
    let (mut frames, mut texts) = (Vec::new(), Vec::new());
    while frames.len() < n {
        match peer.recv().await {
            Some(Seen::Message(Message::Binary(b))) => {
                frames.push(u16::from_le_bytes([b[0], b[1]]))
            }
            Some(Seen::Message(Message::Text(t))) => texts.push(t),
            other => panic!("expected audio, got {other:?}"),
        }
    }
    (frames, texts)
}

/// Plays the end of a Deepgram stream: answers ForceEndTurn with `answer`, then closes after
/// CloseStream. Returns the audio frames seen on the way.
pub(super) async fn finish(peer: &mut Peer, answer: &str) -> usize {
    let mut frames = 0;
    loop {
        match peer
            .recv()
            .await
            .expect("the client left before CloseStream")
        {
            Seen::Message(Message::Binary(_)) => frames += 1,
            Seen::Message(Message::Text(t)) if t.contains("ForceEndTurn") => peer.send_text(answer),
            Seen::Message(Message::Text(t)) if t.contains("CloseStream") => {
                peer.close(None, "");
                return frames;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
