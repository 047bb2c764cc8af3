//! Reconnects and stalls: the built binary against `flux serve` with injected faults.
//!
//! A reconnect must lose no speech and report no turn twice: every run here is compared with
//! a fault-free baseline of the same audio (turn indices and where each turn ends).

use crate::common;

use common::*;
use serde_json::Value;

/// (turn_index, audio_window_end) of every EndOfTurn, in output order.
fn turn_ends(events: &[Value]) -> Vec<(u64, f64)> {
    events
        .iter()
        .filter(|e| e["event"] == "EndOfTurn")
        .map(|e| {
            (
                e["turn_index"].as_u64().unwrap(),
                e["audio_window_end"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn baseline(extra: &[&str]) -> Vec<(u64, f64)> {
    let serve = Serve::start(&[]);
    let mut cmd = flux();
    cmd.arg("file")
        .arg(fixture("beckett.wav"))
        .args(["--url", &serve.url, "--jsonl"])
        .args(if extra.is_empty() {
            &["--fast"][..]
        } else {
            extra
        });
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    turn_ends(&jsonl(&out))
}

/// The faulty run reports the same turns as the baseline: same indices, in order, none
/// twice, each ending within `tolerance` seconds of where it ended without the fault.
fn assert_same_turns(got: &[(u64, f64)], want: &[(u64, f64)], tolerance: f64) {
    let indices: Vec<u64> = got.iter().map(|t| t.0).collect();
    assert_eq!(
        indices,
        (0..want.len() as u64).collect::<Vec<_>>(),
        "turn indices: got {got:?}, want {want:?}"
    );
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.1 - w.1).abs() <= tolerance,
            "turn {} ended at {} not {}",
            g.0,
            g.1,
            w.1
        );
    }
}

fn reconnect_events(events: &[Value]) -> (Vec<&Value>, Vec<&Value>) {
    (
        events
            .iter()
            .filter(|e| e["type"] == "flux.reconnecting")
            .collect(),
        events
            .iter()
            .filter(|e| e["type"] == "flux.reconnected")
            .collect(),
    )
}

#[test]
fn a_dropped_connection_reconnects_and_replays_the_open_turn() {
    let want = baseline(&[]);
    assert!(want.len() >= 3, "{want:?}");
    // Drop the first connection in the middle of the second turn.
    let serve = Serve::start(&["--fault", "drop:at=4.0,conn=1"]);
    let out = run(
        file_cmd(&serve, &fixture("beckett.wav"), &["--jsonl"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    assert_same_turns(&turn_ends(&events), &want, 0.3);
    let (reconnecting, reconnected) = reconnect_events(&events);
    assert_eq!(reconnecting.len(), 1);
    assert_eq!(reconnected.len(), 1);
    let r = reconnected[0];
    // The new connection starts at or before the end of the last finished turn's audio
    // (replay), never after: no sent speech is missing.
    let resume = r["resume_from"].as_f64().unwrap();
    let finished_before: Vec<f64> = events
        .iter()
        .take_while(|e| e["type"] != "flux.reconnected")
        .filter(|e| e["event"] == "EndOfTurn")
        .map(|e| e["audio_window_end"].as_f64().unwrap())
        .collect();
    let last_end = finished_before.last().copied().unwrap_or(0.0);
    assert!(
        resume <= last_end + 0.01,
        "resumed at {resume}, last turn ended at {last_end}"
    );
    assert!(r["replayed_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(r["turn_offset"], finished_before.len());
    // Times stay on one timeline: audio windows never go backwards across turns.
    let summary = events.last().unwrap();
    assert_eq!(summary["reconnects"], 1);
    assert_eq!(summary["exit_code"], 0);
    // The second connection received the replayed audio plus the rest.
    let conns: Vec<u64> = serve
        .log_kind("handshake")
        .iter()
        .map(|h| h["conn"].as_u64().unwrap())
        .collect();
    assert_eq!(conns, vec![1, 2]);
    let conn2_audio: f64 = serve
        .log_kind("audio")
        .iter()
        .filter(|l| l["conn"] == 2)
        .map(|l| l["audio_end"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let total = summary["audio_seconds"].as_f64().unwrap();
    assert!(
        (resume + conn2_audio - total).abs() < 0.01,
        "{resume} + {conn2_audio} != {total}"
    );
}

#[test]
fn a_retryable_server_error_reconnects() {
    let want = baseline(&[]);
    let serve = Serve::start(&[
        "--fault",
        "error:at=3.0,code=INTERNAL_SERVER_ERROR,close=1011,conn=1,description=try again",
    ]);
    let out = run(
        file_cmd(&serve, &fixture("beckett.wav"), &["--jsonl"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    assert_same_turns(&turn_ends(&events), &want, 0.3);
    let (reconnecting, _) = reconnect_events(&events);
    assert!(
        reconnecting[0]["reason"]
            .as_str()
            .unwrap()
            .contains("INTERNAL_SERVER_ERROR")
    );
    // The Error itself is in the output, as received.
    assert!(events.iter().any(|e| e["type"] == "Error"));
}

#[test]
fn a_stalled_server_is_abandoned_for_a_new_connection() {
    let want = baseline(&["--pace", "4"]);
    let serve = Serve::start(&["--fault", "stall:at=3.0,conn=1"]);
    // Paced, so the stall happens while audio is still flowing.
    let mut cmd = flux();
    cmd.arg("file").arg(fixture("beckett.wav")).args([
        "--url",
        &serve.url,
        "--pace",
        "4",
        "--stall-timeout",
        "1",
        "--jsonl",
    ]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    assert_same_turns(&turn_ends(&events), &want, 0.3);
    let (reconnecting, _) = reconnect_events(&events);
    assert_eq!(reconnecting.len(), 1);
    assert!(
        reconnecting[0]["reason"]
            .as_str()
            .unwrap()
            .contains("sent nothing")
    );
}

#[test]
fn too_many_requests_is_retried_with_backoff() {
    let serve = Serve::start(&[
        "--fault",
        "reject:status=429,conn=1",
        "--fault",
        "reject:status=429,conn=2",
    ]);
    let out = run(
        file_cmd(&serve, &fixture("beckett.wav"), &["--jsonl"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    let (reconnecting, _) = reconnect_events(&events);
    assert_eq!(reconnecting.len(), 2);
    // Exponential: the second wait is drawn from a longer range than the first.
    let delays: Vec<u64> = reconnecting
        .iter()
        .map(|e| e["delay_ms"].as_u64().unwrap())
        .collect();
    assert!((125..=250).contains(&delays[0]), "{delays:?}");
    assert!((250..=500).contains(&delays[1]), "{delays:?}");
    assert!(reconnecting[0]["reason"].as_str().unwrap().contains("429"));
    // The first successful connection is the one reported as connected.
    assert_eq!(events[0]["type"], "flux.reconnecting");
    assert!(events.iter().any(|e| e["type"] == "flux.connected"));
}

#[test]
fn a_spent_budget_exits_4_with_everything_received_intact() {
    let serve = Serve::start(&[
        "--script",
        fixture("two_cities.txt").to_str().unwrap(),
        "--fault",
        "drop:at=5.0,conn=1",
        "--fault",
        "drop:at=5.0,conn=2",
        "--fault",
        "drop:at=5.0,conn=3",
    ]);
    let out = run(
        file_cmd(
            &serve,
            &fixture("two_cities.wav"),
            &["--jsonl", "--max-reconnects", "2"],
        ),
        None,
    );
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("gave up after 2 reconnect attempt(s)"),
        "{err}"
    );
    let events = jsonl(&out);
    assert_eq!(reconnect_events(&events).0.len(), 2);
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "flux.summary");
    assert_eq!(summary["exit_code"], 4);
    // Turns finished before the budget ran out are all there, once each, in order.
    let ends = turn_ends(&events);
    assert!(!ends.is_empty());
    assert_eq!(
        ends.iter().map(|t| t.0).collect::<Vec<_>>(),
        (0..ends.len() as u64).collect::<Vec<_>>()
    );
    // 3 connections, each dropped after 5 s of its own audio.
    assert_eq!(serve.log_kind("handshake").len(), 3);
}

#[test]
fn a_stalled_stdin_is_covered_with_silence_so_the_turn_ends() {
    let (mono, _) = read_wav_mono(&fixture("beckett.wav"));
    let pcm: Vec<u8> = mono
        .iter()
        .flat_map(|s| ((s * 32767.0).round() as i16).to_le_bytes())
        .collect();
    let serve = Serve::start(&[]);
    // Feed the first 2.5 s, pause for 3 s of wall time, then the rest, at 2× real time. The
    // feed buffer (2.56 s of audio, 1.28 s of wall time at 2×) covers the start of the pause.
    let split = 40000 * 2;
    let mut cmd = std::process::Command::new("sh");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.raw"), dir.path().join("b.raw"));
    std::fs::write(&a, &pcm[..split]).unwrap();
    std::fs::write(&b, &pcm[split..]).unwrap();
    cmd.arg("-c").arg(format!(
        "(cat {a}; sleep 3; cat {b}) | {BIN} listen --stdin --rate 16000 --pace 2 --url {url} --jsonl",
        a = a.display(),
        b = b.display(),
        url = serve.url
    ));
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    let summary = events.last().unwrap();
    let filled = summary["filled_seconds"].as_f64().unwrap();
    // About (3 − 1.28 − 0.25) s of wall time at 2×: some 3 s of audio.
    assert!((1.5..4.5).contains(&filled), "filled {filled}");
    // The server heard input plus silence, and nothing else.
    let want = pcm.len() as u64 + (filled * 16000.0).round() as u64 * 2;
    assert!(
        serve.audio_bytes().abs_diff(want) <= 2560,
        "{} vs {want}",
        serve.audio_bytes()
    );
    // The turn open when the input paused ended during the pause, on the silence.
    let pause_start = 2.5;
    assert!(
        turn_ends(&events)
            .iter()
            .any(|&(_, end)| end > pause_start && end < pause_start + filled),
        "{:?}",
        turn_ends(&events)
    );
}
