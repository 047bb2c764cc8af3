//! A provider with an adapter whose close request finalizes everything (Fireworks' trace):
//! the session sends it as soon as the audio is through (no ForceEndTurn, no silence), keeps
//! reading while a slow server finalizes, and reports what stays unfinal as unconfirmed.

use super::*;
use crate::provider::Secret;
use crate::provider::fireworks::{self, FireworksOptions};

fn fireworks_opts() -> SessionOptions {
    let endpoint = fireworks::endpoint(FireworksOptions {
        url: Some("ws://127.0.0.1:9/v1/audio/transcriptions/streaming"),
        model: None,
        api_key: Some(Secret::new("k")),
        allow_insecure: false,
        language: None,
        prompt: None,
        temperature: None,
    })
    .unwrap();
    options(endpoint)
}

fn transcript(id: &str, words: &[(&str, bool)]) -> String {
    let ws: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, (w, f))| {
            serde_json::json!({"word": w, "probability": 0.9, "is_final": f,
                               "start": 0.1 + i as f64 * 0.2, "end": 0.3 + i as f64 * 0.2})
        })
        .collect();
    let text: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    serde_json::json!({"task": "transcribe", "language": "en", "text": text.join(" "),
                       "segments": [{"id": id, "text": text.join(" "), "words": ws}]})
    .to_string()
}

/// Plays a Fireworks server: takes all audio, answers the trace after `before_answer`
/// (sent after a delay, as a server slow to finalize would), and returns the frames seen.
async fn fireworks_server(server: &mut Server, before_answer: &[String]) -> usize {
    let mut peer = server.accept(&[]).await.unwrap();
    peer.send_text(&transcript("0", &[("hello", true), ("world", false)]));
    let mut frames = 0;
    loop {
        match peer.recv().await.expect("the client left before its trace") {
            Seen::Message(Message::Binary(_)) => frames += 1,
            Seen::Message(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["object"], "stt.input.trace", "{t}");
                tokio::time::sleep(Duration::from_secs(3)).await;
                for m in before_answer {
                    peer.send_text(m);
                }
                let answer = serde_json::json!({"object": "stt.output.trace",
                                                "trace_id": v["trace_id"]});
                peer.send_text(&answer.to_string());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        matches!(peer.recv().await, Some(Seen::Closed)),
        "flux closes"
    );
    frames
}

#[tokio::test(start_paused = true)]
async fn the_trace_goes_at_once_and_a_slow_final_segment_is_kept() {
    let final_seg = transcript("0", &[("hello", true), ("world", true)]);
    let (outcome, sink) = session(
        fireworks_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            let frames = fireworks_server(&mut server, &[final_seg]).await;
            // 1 s of 62.5 ms frames, and not one frame of silence after it.
            assert_eq!(frames, 16);
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.turns, 1);
    assert_eq!(outcome.totals.unconfirmed_turns, 0);
    let ends: Vec<Value> = sink
        .server_raw()
        .into_iter()
        .filter(|v| v["event"] == "EndOfTurn")
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["transcript"], "hello world");
    assert_eq!(ends[0]["derived"], true);
}

#[tokio::test(start_paused = true)]
async fn what_is_not_final_when_the_trace_answers_is_unconfirmed() {
    let (outcome, sink) = session(
        fireworks_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            fireworks_server(&mut server, &[]).await;
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.turns, 0);
    assert_eq!(outcome.totals.unconfirmed_turns, 1);
    let unconfirmed = sink.client().into_iter().find_map(|c| match c {
        ClientEvent::UnconfirmedTurn { transcript, .. } => Some(transcript),
        _ => None,
    });
    assert_eq!(unconfirmed.as_deref(), Some("hello world"));
}
