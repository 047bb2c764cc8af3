//! The session's state machine over the in-memory transport, on tokio's paused clock: each
//! test streams seconds of audio in milliseconds of wall time, while the test plays the
//! server (accepting or refusing connections, answering, dropping, stalling).

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

const RATE: u32 = 16000;
/// 62.5 ms frames: exact in binary, so frame edges add up without float noise.
const FRAME_BYTES: usize = 2000;

fn deepgram_opts() -> SessionOptions {
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

fn cloudflare_opts() -> SessionOptions {
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

fn options(endpoint: Endpoint) -> SessionOptions {
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
fn audio_frame(i: u64, bytes: usize) -> AudioFrame {
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
fn finished_feed(seconds: f64) -> mpsc::Receiver<Feed> {
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
struct Collect(Arc<Mutex<Vec<Event>>>);

impl Sink for Collect {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Collect {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    fn client(&self) -> Vec<ClientEvent> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Client(c) => Some(c),
                Event::Server(_) => None,
            })
            .collect()
    }

    fn server_raw(&self) -> Vec<Value> {
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
async fn session<F, Fut>(
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

fn no_controls() -> mpsc::Receiver<Control> {
    mpsc::channel(1).1
}

fn turn(event: &str, index: u64, start: f64, end: f64, text: &str) -> String {
    format!(
        r#"{{"type":"TurnInfo","event":"{event}","turn_index":{index},"audio_window_start":{start},"audio_window_end":{end},"transcript":"{text}","words":[],"end_of_turn_confidence":0.9}}"#
    )
}

const CONNECTED: &str = r#"{"type":"Connected","request_id":"r-connected","sequence_id":0}"#;

/// Reads audio until `n` frames have arrived; returns their first-two-byte indices. Text
/// messages on the way are returned too.
async fn read_frames(peer: &mut Peer, n: usize) -> (Vec<u16>, Vec<String>) {
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
async fn finish(peer: &mut Peer, answer: &str) -> usize {
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

#[tokio::test(start_paused = true)]
async fn a_drop_mid_turn_replays_the_open_turn_and_shifts_the_timeline() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(3.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[("dg-request-id", "r1")]).await.unwrap();
            peer.send_text(CONNECTED);
            read_frames(&mut peer, 12).await;
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 0.75, "first"));
            peer.send_text(&turn("StartOfTurn", 1, 0.75, 1.0, "second"));
            read_frames(&mut peer, 8).await;
            // 20 frames (1.25 s) sent; the open turn began at 0.75 s.
            peer.reset();
            let mut peer = server.accept(&[("dg-request-id", "r2")]).await.unwrap();
            peer.send_text(CONNECTED);
            let (replayed, _) = read_frames(&mut peer, 8).await;
            assert_eq!(
                replayed,
                (12..20).collect::<Vec<u16>>(),
                "the open turn's audio"
            );
            // The new connection counts from 0: 0.5 s into it is 1.25 s of the stream.
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 0.5, "second turn"));
            finish(
                &mut peer,
                r#"{"type":"Warning","code":"FORCE_END_TURN_NO_ACTIVE_TURN","description":"x"}"#,
            )
            .await;
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.reconnects, 1);
    assert_eq!(outcome.totals.turns, 2);
    assert_eq!(outcome.request_id.as_deref(), Some("r1"));
    // Every frame counted once, replays excluded.
    assert_eq!(outcome.totals.frames_sent, 48);
    let reconnected = sink.client().into_iter().find_map(|c| match c {
        ClientEvent::Reconnected {
            resume_from,
            replayed_seconds,
            turn_offset,
            ..
        } => Some((resume_from, replayed_seconds, turn_offset)),
        _ => None,
    });
    assert_eq!(reconnected, Some((0.75, 0.5, 1)));
    let last_eot = sink
        .server_raw()
        .into_iter()
        .rev()
        .find(|r| r["event"] == "EndOfTurn")
        .unwrap();
    assert_eq!(last_eot["turn_index"], 1);
    assert_eq!(last_eot["audio_window_start"], 0.75);
    assert_eq!(last_eot["audio_window_end"], 1.25);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_server_is_left_for_a_new_connection() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(4.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            // Audio flows; the server says nothing more. The client gives up after 2 s.
            let mut frames = 0;
            while let Some(Seen::Message(Message::Binary(_))) = peer.recv().await {
                frames += 1;
            }
            assert!(
                (31..=34).contains(&frames),
                "{frames} frames before the stall"
            );
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            // No turn was heard: everything sent is sent again, from the start.
            let (first, _) = read_frames(&mut peer, 1).await;
            assert_eq!(first, [0]);
            finish(&mut peer, &turn("EndOfTurn", 0, 0.0, 1.0, "done")).await;
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.frames_sent, 64);
    let reason = sink.client().into_iter().find_map(|c| match c {
        ClientEvent::Reconnecting { reason, .. } => Some(reason),
        _ => None,
    });
    assert!(reason.unwrap().contains("sent nothing for 2.0s"));
}

#[tokio::test(start_paused = true)]
async fn a_busy_server_is_retried_with_backoff_then_given_up_on() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            let mut times = Vec::new();
            for _ in 0..2 {
                let a = server.attempt().await.unwrap();
                times.push(Instant::now());
                a.refuse(
                    429,
                    &[],
                    r#"{"err_code":"TOO_MANY_REQUESTS","err_msg":"busy"}"#,
                );
            }
            let a = server.attempt().await.unwrap();
            times.push(Instant::now());
            let mut peer = a.accept(&[]);
            peer.send_text(CONNECTED);
            finish(&mut peer, &turn("EndOfTurn", 0, 0.0, 1.0, "ok")).await;
            // Backoff: 250 ms then 500 ms, each with up to half taken off as jitter.
            let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps[0] >= Duration::from_millis(125) && gaps[0] <= Duration::from_millis(250));
            assert!(gaps[1] >= Duration::from_millis(250) && gaps[1] <= Duration::from_millis(500));
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let attempts: Vec<u32> = sink
        .client()
        .into_iter()
        .filter_map(|c| match c {
            ClientEvent::Reconnecting { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);

    // With no retries allowed, a 429 is a connection failure (exit 4) naming the refusal.
    let mut opts = deepgram_opts();
    opts.max_reconnects = 0;
    let (outcome, _) = session(
        opts,
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            server.attempt().await.unwrap().refuse(429, &[], "");
        },
    )
    .await;
    let e = outcome.error.unwrap();
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains("429"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn configures_go_one_at_a_time_and_are_answered_before_close() {
    let (ctl, controls) = mpsc::channel(8);
    let threshold = |x: f64| {
        Control::Configure(Configure {
            thresholds: Some(crate::protocol::Thresholds {
                eot_threshold: Some(x),
                ..Default::default()
            }),
            ..Default::default()
        })
    };
    ctl.try_send(threshold(0.6)).unwrap();
    ctl.try_send(threshold(0.8)).unwrap();
    let (outcome, _) = session(
        deepgram_opts(),
        finished_feed(1.0),
        controls,
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            let first = peer.next_text().await.unwrap();
            assert!(first.contains("0.6"), "{first}");
            // Nothing else but audio while the first is unanswered.
            let (_, texts) = read_frames(&mut peer, 5).await;
            assert!(texts.is_empty(), "{texts:?}");
            peer.send_text(r#"{"type":"ConfigureSuccess","thresholds":{"eot_threshold":0.6}}"#);
            let second = peer.next_text().await.unwrap();
            assert!(second.contains("0.8"), "{second}");
            // The input ends while the second is unanswered: ForceEndTurn may go, CloseStream
            // must wait for the answer.
            let force = peer.next_text().await.unwrap();
            assert!(force.contains("ForceEndTurn"), "{force}");
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 1.0, "x"));
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(
                peer.drain()
                    .iter()
                    .all(|s| !matches!(s, Seen::Message(Message::Text(_)))),
                "CloseStream went before the Configure was answered"
            );
            peer.send_text(r#"{"type":"ConfigureSuccess","thresholds":{"eot_threshold":0.8}}"#);
            let close = peer.next_text().await.unwrap();
            assert!(close.contains("CloseStream"), "{close}");
            peer.close(None, "");
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
}

#[tokio::test(start_paused = true)]
async fn the_end_with_force_end_turn_finalizes_the_last_turn_and_measures_it() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            // No request id header: the summary takes the one `Connected` carries.
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.4, "last"));
            read_frames(&mut peer, 16).await;
            let force = peer.next_text().await.unwrap();
            assert!(force.contains("ForceEndTurn"));
            tokio::time::sleep(Duration::from_millis(150)).await;
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 1.0, "last words"));
            let close = peer.next_text().await.unwrap();
            assert!(close.contains("CloseStream"));
            peer.close(None, "");
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.request_id.as_deref(), Some("r-connected"));
    assert_eq!(
        (outcome.totals.turns, outcome.totals.unconfirmed_turns),
        (1, 0)
    );
    let client = sink.client();
    assert!(client.iter().any(|c| matches!(c,
        ClientEvent::AudioFinished { reason, .. } if reason == "end_of_input")));
    // The frame holding 1.0 s is the last one; the answer came 150 ms after it went.
    let latency = client.iter().find_map(|c| match c {
        ClientEvent::EotLatency(l) => Some(l.clone()),
        _ => None,
    });
    assert_eq!(
        latency,
        Some(TurnLatency {
            turn_index: 0,
            audio_window_end: 1.0,
            latency_ms: 150.0
        })
    );
}

#[tokio::test(start_paused = true)]
async fn the_end_without_force_end_turn_sends_full_frames_of_silence() {
    // 1.05 s: the last input frame is short (0.05 s of a 0.0625 s frame).
    let (outcome, sink) = session(
        cloudflare_opts(),
        finished_feed(1.05),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            let mut sizes = Vec::new();
            loop {
                match peer.recv().await.unwrap() {
                    Seen::Message(Message::Binary(b)) => {
                        sizes.push(b.len());
                        if sizes.len() == 3 {
                            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.2, "hi"));
                        }
                        // Well into the silence: the turn ends by itself.
                        if sizes.len() == 20 {
                            peer.send_text(&turn("EndOfTurn", 0, 0.0, 1.05, "hi there"));
                        }
                    }
                    Seen::Message(Message::Text(t)) => {
                        assert!(t.contains("CloseStream"), "{t}");
                        peer.close(None, "");
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(sizes.iter().all(|&n| n == FRAME_BYTES), "{sizes:?}");
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.turns, 1);
    assert!((outcome.totals.input_seconds - 1.05).abs() < 1e-9);
    assert!(!sink.server_raw().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_server_that_closes_with_a_turn_open_leaves_it_unconfirmed() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.5, "open words"));
            finish(
                &mut peer,
                r#"{"type":"Warning","code":"W","description":"x"}"#,
            )
            .await;
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.unconfirmed_turns, 1);
    assert!(sink.client().iter().any(|c| matches!(c,
        ClientEvent::UnconfirmedTurn { transcript, reason, .. }
            if transcript == "open words" && reason == "stream_closed")));

    // Without reconnects, a close mid-stream loses the connection with the turn open.
    let mut opts = deepgram_opts();
    opts.max_reconnects = 0;
    let (outcome, sink) = session(
        opts,
        finished_feed(2.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.5, "cut off"));
            read_frames(&mut peer, 5).await;
            peer.close(Some(1011), "restart");
        },
    )
    .await;
    assert_eq!(outcome.error.unwrap().exit_code(), 4);
    assert!(sink.client().iter().any(|c| matches!(c,
        ClientEvent::UnconfirmedTurn { reason, .. } if reason == "connection_lost")));
}

#[tokio::test(start_paused = true)]
async fn finishing_while_connecting_drops_the_queued_audio_even_after_the_input_ended() {
    // A live source that delivered 3 s and ended while the server was slow to greet.
    let mut opts = deepgram_opts();
    opts.live_source = true;
    let (ctl, controls) = mpsc::channel(8);
    let (outcome, sink) = session(
        opts,
        finished_feed(3.0),
        controls,
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            ctl.send(Control::Finish).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            peer.send_text(CONNECTED);
            let frames = finish(
                &mut peer,
                r#"{"type":"Warning","code":"W","description":"x"}"#,
            )
            .await;
            assert_eq!(frames, 0, "audio queued before the request was sent anyway");
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(sink.client().iter().any(|c| matches!(c,
        ClientEvent::AudioFinished { reason, .. } if reason == "interrupted")));
}

#[tokio::test(start_paused = true)]
async fn a_file_is_read_only_a_little_ahead_while_connecting() {
    // 40 s of file, offered as fast as the session takes it.
    let (feed_tx, feed) = mpsc::channel(2);
    let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = taken.clone();
    tokio::spawn(async move {
        for i in 0..500u64 {
            let frames = vec![audio_frame(i, FRAME_BYTES)];
            let ready = std::time::Instant::now();
            if feed_tx.send(Feed::Frames { frames, ready }).await.is_err() {
                return;
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let _ = feed_tx
            .send(Feed::End {
                error: None,
                note: None,
            })
            .await;
    });
    let (ctl, controls) = mpsc::channel(8);
    let (outcome, _) = session(deepgram_opts(), feed, controls, |mut server| async move {
        let mut peer = server.accept(&[]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let read = taken.load(std::sync::atomic::Ordering::SeqCst);
        // A second of read-ahead (16 frames), plus what the feed channel holds.
        assert!(read <= 20, "{read} frames read while connecting");
        ctl.send(Control::Finish).await.unwrap();
        peer.send_text(CONNECTED);
        let frames = finish(
            &mut peer,
            r#"{"type":"Warning","code":"W","description":"x"}"#,
        )
        .await;
        assert_eq!(frames, 0);
    })
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
}

#[tokio::test(start_paused = true)]
async fn an_empty_input_never_connects() {
    let (tx, feed) = mpsc::channel(1);
    tx.try_send(Feed::End {
        error: Some(crate::audio::AudioError::Empty {
            input: "stdin".into(),
        }),
        note: None,
    })
    .unwrap();
    let (outcome, sink) = session(
        deepgram_opts(),
        feed,
        no_controls(),
        |mut server| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(server.try_attempt().is_none(), "a connection was opened");
            assert_eq!(server.connections, 0);
        },
    )
    .await;
    assert!(outcome.input_error.is_some());
    assert!(outcome.error.is_none());
    assert!(sink.events().is_empty());
}
