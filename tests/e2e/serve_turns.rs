//! `flux serve` finds turns in real speech, on audio time, the same way however the audio
//! arrives and whatever its encoding.

use crate::serve_support;

use flux::serve::ServeOptions;
use serde_json::Value;
use serve_support::*;
use std::time::Duration;

/// two_cities.wav: speech starts (first word) and EndOfTurn times at the default thresholds,
/// measured once (docs/serve.md). A turn ends 0.42 s after its last speech; the pauses that
/// do not end a turn are commas of 0.31-0.36 s ("...best of times, it was the worst...").
const TWO_CITIES: [(f64, f64); 14] = [
    (1.21, 4.81),
    (5.02, 6.6),
    (6.67, 8.4),
    (8.82, 10.7),
    (10.77, 13.14),
    (13.48, 15.05),
    (15.15, 16.89),
    (17.57, 20.87),
    (21.25, 24.2),
    (24.66, 26.4),
    (26.56, 28.64),
    (29.11, 32.64),
    (32.79, 36.91),
    (36.98, 42.04),
];

const BECKETT: [(f64, f64); 4] = [(0.28, 4.56), (4.58, 5.93), (6.65, 7.8), (8.15, 9.33)];

/// Streams linear16 `audio` (+1 s of silence so the last turn can end), then CloseStream.
async fn stream(url: &str, query: &str, audio: &[u8], frame: usize, rate: u32) -> Vec<Value> {
    let mut c = connect(url, query, &[]).await;
    c.audio_frames(audio, frame).await;
    c.audio(&silence(rate, 1.0)).await;
    let (messages, end) = c.close_stream().await;
    assert!(matches!(end, Incoming::Close(None)), "{end:?}");
    messages
}

fn raw_query(rate: u32) -> String {
    format!("{DG}?model=flux-general-en&encoding=linear16&sample_rate={rate}")
}

fn assert_turns(got: &[(f64, f64)], want: &[(f64, f64)], label: &str) {
    assert_eq!(got.len(), want.len(), "{label}: turns {got:?}");
    for (i, ((gs, ge), (ws, we))) in got.iter().zip(want).enumerate() {
        assert!(
            (gs - ws).abs() <= 0.06,
            "{label} turn {i}: start {gs} vs {ws}"
        );
        assert!((ge - we).abs() <= 0.1, "{label} turn {i}: end {ge} vs {we}");
    }
}

/// The invariants of the protocol that every stream must keep.
fn assert_well_formed(messages: &[Value]) {
    assert_eq!(messages[0]["type"], "Connected");
    let mut turn = 0;
    let mut window_start = 0.0;
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m["sequence_id"], i as u64, "sequence at {m}");
        if m["type"] != "TurnInfo" {
            continue;
        }
        assert_eq!(m["turn_index"], turn, "{m}");
        assert_eq!(m["audio_window_start"], window_start, "{m}");
        let (ws, we) = (
            m["audio_window_start"].as_f64().unwrap(),
            m["audio_window_end"].as_f64().unwrap(),
        );
        let words = m["words"].as_array().unwrap();
        let text: Vec<&str> = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
        assert_eq!(m["transcript"], text.join(" "), "{m}");
        for w in words {
            let (s, e) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
            assert!(ws <= s && s <= e && e <= we, "word outside window: {m}");
        }
        let conf = m["end_of_turn_confidence"].as_f64().unwrap();
        assert!((0.0..1.0).contains(&conf), "{m}");
        match m["event"].as_str().unwrap() {
            "StartOfTurn" | "EagerEndOfTurn" => assert!(!words.is_empty(), "{m}"),
            "EndOfTurn" => {
                assert!(m["trigger"].is_string(), "{m}");
                turn += 1;
                window_start = we;
            }
            _ => assert!(m.get("trigger").is_none(), "{m}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cities_turns_at_every_rate() {
    let server = serve_default().await;
    let url = server.url();
    let runs = [8000u32, 16000, 24000, 44100, 48000].map(|rate| {
        let url = url.clone();
        tokio::spawn(async move {
            let audio = tokio::task::spawn_blocking(move || fixture_at("two_cities.wav", rate))
                .await
                .unwrap();
            // 80 ms frames, as fast as the socket takes them.
            let frame = rate as usize / 100 * 8 * 2;
            (
                rate,
                stream(&url, &raw_query(rate), &audio, frame, rate).await,
            )
        })
    });
    for run in runs {
        let (rate, messages) = run.await.unwrap();
        assert_well_formed(&messages);
        assert_turns(
            &turns(&messages),
            &TWO_CITIES,
            &format!("two_cities@{rate}"),
        );
        // Without eager_eot_threshold only Update, StartOfTurn and EndOfTurn occur.
        assert!(messages.iter().all(|m| m["type"] != "TurnInfo"
            || matches!(
                m["event"].as_str(),
                Some("Update" | "StartOfTurn" | "EndOfTurn")
            )));
        assert!(
            messages
                .iter()
                .filter(|m| m["event"] == "EndOfTurn")
                .all(|m| m["trigger"] == "model" && m["end_of_turn_confidence"] == 0.7)
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beckett_turns_with_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("turns.txt");
    std::fs::write(
        &script,
        "Ever tried. Ever failed. No matter.\n\nTry again. Fail again.\nFail better.\n",
    )
    .unwrap();
    let server = serve(ServeOptions {
        script: Some(script),
        ..Default::default()
    })
    .await;
    let audio = fixture_at("beckett.wav", 16000);
    let messages = stream(&server.url(), &raw_query(16000), &audio, 2560, 16000).await;
    assert_well_formed(&messages);
    assert_turns(&turns(&messages), &BECKETT, "beckett");
    let ends: Vec<&str> = messages
        .iter()
        .filter(|m| m["event"] == "EndOfTurn")
        .map(|m| m["transcript"].as_str().unwrap())
        .collect();
    // Lines 1-3 of the script, then the placeholder for the turn beyond its end.
    assert_eq!(
        ends,
        [
            "Ever tried. Ever failed. No matter.",
            "Try again. Fail again.",
            "Fail better.",
            "[speech]"
        ]
    );
    // Words are revealed progressively: the first word at StartOfTurn, one more per 0.3 s of
    // speech, never fewer than before.
    let first_turn: Vec<&Value> = messages
        .iter()
        .filter(|m| m["type"] == "TurnInfo" && m["turn_index"] == 0 && m["transcript"] != "")
        .collect();
    assert_eq!(first_turn[0]["event"], "StartOfTurn");
    assert_eq!(first_turn[0]["transcript"], "Ever");
    let counts: Vec<usize> = first_turn
        .iter()
        .map(|m| m["words"].as_array().unwrap().len())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(
        counts.iter().any(|n| *n > 1 && *n < 6),
        "never partial: {counts:?}"
    );
    assert_eq!(*counts.last().unwrap(), 6);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_events_whether_real_time_framed_or_one_odd_burst() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("turns.txt");
    std::fs::write(&script, "one two three four five six seven\neight nine\n").unwrap();
    let server = serve(ServeOptions {
        script: Some(script),
        ..Default::default()
    })
    .await;
    let url = server.url();
    // The first 3.3 s of beckett (two turns) and 1 s of silence.
    let mut audio = fixture_at("beckett.wav", 16000);
    audio.truncate(2 * 16000 * 33 / 10);
    audio.extend(silence(16000, 1.0));
    let query = format!("{}&eager_eot_threshold=0.5", raw_query(16000));

    let run = |frames: Vec<Vec<u8>>, pace: Option<Duration>| {
        let (url, query) = (url.clone(), query.clone());
        tokio::spawn(async move {
            let mut c = connect(&url, &query, &[]).await;
            let start = tokio::time::Instant::now();
            for (i, f) in frames.iter().enumerate() {
                if let Some(p) = pace {
                    tokio::time::sleep_until(start + p * i as u32).await;
                }
                c.audio(f).await;
            }
            let (m, _) = c.close_stream().await;
            without_request_ids(&m)
        })
    };
    let framed: Vec<Vec<u8>> = audio.chunks(2560).map(<[u8]>::to_vec).collect();
    let odd: Vec<Vec<u8>> = audio.chunks(997).map(<[u8]>::to_vec).collect();
    let real_time = run(framed.clone(), Some(Duration::from_millis(80)));
    let fast = run(framed, None);
    let burst = run(odd, None);
    let (real_time, fast, burst) = (
        real_time.await.unwrap(),
        fast.await.unwrap(),
        burst.await.unwrap(),
    );
    let text = |m: &[Value]| m.iter().map(Value::to_string).collect::<Vec<_>>();
    assert_eq!(text(&fast), text(&burst));
    assert_eq!(text(&fast), text(&real_time));
    assert_eq!(turns(&fast).len(), 1, "{:?}", turn_events(&fast));
    assert!(
        turn_events(&fast)
            .iter()
            .any(|e| e.starts_with("EagerEndOfTurn"))
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_end_of_turn_and_turn_resumed() {
    let server = serve_default().await;
    // 1 s of speech, a 0.3 s pause (eager 0.4 needs 0.24 s, eot 0.7 needs 0.42 s), 1 s of
    // speech, then a long pause.
    let audio = utterances(16000, &[(1.0, 0.3), (1.0, 1.5)]);
    let query = format!("{}&eager_eot_threshold=0.4", raw_query(16000));
    let messages = stream(&server.url(), &query, &audio, 2560, 16000).await;
    assert_well_formed(&messages);
    let events: Vec<String> = turn_events(&messages)
        .iter()
        .map(|e| e.split('#').next().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        [
            "StartOfTurn",
            "EagerEndOfTurn",
            "TurnResumed",
            "EagerEndOfTurn",
            "EndOfTurn"
        ]
    );
    let eager = messages
        .iter()
        .rfind(|m| m["event"] == "EagerEndOfTurn")
        .unwrap();
    let end = messages.iter().find(|m| m["event"] == "EndOfTurn").unwrap();
    assert_eq!(eager["transcript"], end["transcript"]);
    assert_eq!(eager["end_of_turn_confidence"], 0.4);
    // The eager end comes 0.24 s after the speech, the end 0.42 s after it.
    let speech_end = 0.5 + 1.0 + 0.3 + 1.0;
    let at = |m: &Value| m["audio_window_end"].as_f64().unwrap() - speech_end;
    assert!((at(eager) - 0.24).abs() < 0.05, "{eager}");
    assert!((at(end) - 0.42).abs() < 0.05, "{end}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eot_threshold_one_leaves_only_the_timeout() {
    let server = serve_default().await;
    let audio = utterances(16000, &[(1.0, 2.5)]);
    let query = format!("{}&eot_threshold=1.0&eot_timeout_ms=2000", raw_query(16000));
    let messages = stream(&server.url(), &query, &audio, 2560, 16000).await;
    assert_well_formed(&messages);
    let end = messages.iter().find(|m| m["event"] == "EndOfTurn").unwrap();
    assert_eq!(end["trigger"], "timeout");
    assert_eq!(end["end_of_turn_confidence"], 0.99);
    let after_speech = end["audio_window_end"].as_f64().unwrap() - 1.5;
    assert!((after_speech - 2.0).abs() < 0.05, "{end}");
    assert!(
        messages
            .iter()
            .all(|m| m["end_of_turn_confidence"].as_f64().unwrap_or(0.0) < 1.0)
    );
    server.shutdown().await;
}

/// Linear16 → G.711 with sox, so the encoder is not the decoder's mirror image.
fn sox_raw(linear16: &[u8], encoding: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("in.raw"), dir.path().join("out.raw"));
    std::fs::write(&src, linear16).unwrap();
    let ok = std::process::Command::new("sox")
        .args([
            "-D",
            "-t",
            "raw",
            "-r",
            "8000",
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-c",
            "1",
        ])
        .arg(&src)
        .args(["-t", "raw", "-e", encoding, "-b", "8"])
        .arg(&dst)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::read(dst).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_encoding_finds_the_same_turns() {
    let server = serve_default().await;
    let url = server.url();
    let base = fixture_at("beckett.wav", 8000);
    let reference = turns(&stream(&url, &raw_query(8000), &base, 1280, 8000).await);
    assert_eq!(reference.len(), 4, "{reference:?}");

    let q = |enc: &str| format!("{DG}?model=flux-general-en&encoding={enc}&sample_rate=8000");
    let linear32: Vec<u8> = base
        .chunks_exact(2)
        .flat_map(|b| (i32::from(i16::from_le_bytes([b[0], b[1]])) << 16).to_le_bytes())
        .collect();
    let cases = [
        ("linear32", linear32, vec![0u8; 4 * 8000]),
        ("mulaw", sox_raw(&base, "mu-law"), vec![0xFF; 8000]),
        ("alaw", sox_raw(&base, "a-law"), vec![0xD5; 8000]),
    ];
    for (enc, audio, one_second_silence) in cases {
        let mut c = connect(&url, &q(enc), &[]).await;
        // Odd frame sizes split samples across frames.
        c.audio_frames(&audio, 333).await;
        c.audio(&one_second_silence).await;
        let (m, _) = c.close_stream().await;
        assert_well_formed(&m);
        assert_turns(&turns(&m), &reference, enc);
    }

    // No encoding: the WAV file itself, header and all, in 1000-byte frames.
    let wav = std::fs::read(fixture("beckett.wav")).unwrap();
    let mut c = connect(&url, &format!("{DG}?model=flux-general-en"), &[]).await;
    c.audio_frames(&wav, 1000).await;
    c.audio(&silence(16000, 1.0)).await;
    let (m, _) = c.close_stream().await;
    assert_well_formed(&m);
    assert_turns(&turns(&m), &BECKETT, "wav container");
    server.shutdown().await;
}
