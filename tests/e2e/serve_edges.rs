//! `flux serve` at the service's edges: the idle timeout (closed as the service closes, kept
//! open by audio, survived by the flux client through a stdin pause because it keeps audio
//! flowing), and transcripts that grow with the audio of their turn.

use crate::common;
use crate::serve_support;

use flux::serve::ServeOptions;
use serde_json::Value;
use serve_support::*;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

fn idle(seconds: f64) -> ServeOptions {
    ServeOptions {
        idle_timeout: Some(Duration::from_secs_f64(seconds)),
        ..Default::default()
    }
}

fn errors(messages: &[Value]) -> Vec<&Value> {
    messages.iter().filter(|m| m["type"] == "Error").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_audio_is_closed_as_the_service_closes_it() {
    let server = serve(idle(0.5)).await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    assert_eq!(c.json().await["type"], "Connected");
    let (messages, end) = c.rest().await;
    let errors = errors(&messages);
    assert_eq!(errors.len(), 1, "{messages:?}");
    assert_eq!(errors[0]["code"], "NET-0001");
    assert!(
        errors[0]["description"]
            .as_str()
            .unwrap()
            .contains("No audio received for 0.5 s"),
        "{}",
        errors[0]
    );
    assert!(
        matches!(&end, Incoming::Close(Some((1011, r))) if r == "NET-0001"),
        "{end:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_keeps_a_connection_open_past_the_idle_timeout() {
    let server = serve(idle(0.8)).await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    // 2 s of silence in 100 ms frames, one every 100 ms: never 0.8 s without audio.
    for _ in 0..20 {
        c.audio(&silence(16000, 0.1)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (messages, end) = c.close_stream().await;
    assert!(errors(&messages).is_empty(), "{messages:?}");
    assert!(matches!(end, Incoming::Close(None)), "{end:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_flag_and_zero_to_disable_it() {
    let closing = common::Serve::start(&["--idle-timeout", "1"]);
    let mut c = connect(&closing.url, &dg_query(""), &[]).await;
    let (messages, end) = c.rest().await;
    assert_eq!(errors(&messages)[0]["code"], "NET-0001", "{messages:?}");
    assert!(matches!(end, Incoming::Close(Some((1011, _)))), "{end:?}");
    let logged = closing.log_kind("close");
    assert_eq!(logged[0]["code"], 1011);
    assert_eq!(logged[0]["by"], "server");

    // Disabled: two seconds without audio, then an ordinary end.
    let never = common::Serve::start(&["--idle-timeout", "0"]);
    let mut c = connect(&never.url, &dg_query(""), &[]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (messages, end) = c.close_stream().await;
    assert!(errors(&messages).is_empty(), "{messages:?}");
    assert!(matches!(end, Incoming::Close(None)), "{end:?}");

    for bad in [
        "--idle-timeout=-1",
        "--idle-timeout=soon",
        "--idle-timeout=86401",
    ] {
        let out = common::run(
            {
                let mut cmd = common::flux();
                cmd.args(["serve", "--listen", "127.0.0.1:0", bad]);
                cmd
            },
            None,
        );
        assert_eq!(common::code(&out), 2, "{bad}");
        assert!(common::stderr(&out).contains("--idle-timeout"), "{bad}");
    }
}

/// Live input that pauses for four times the server's idle timeout: flux covers the pause
/// with silence, so the one connection lives to the end and the stream ends cleanly.
#[test]
fn the_flux_client_survives_a_stdin_pause_longer_than_the_idle_timeout() {
    let serve = common::Serve::start(&["--idle-timeout", "1"]);
    let (mono, rate) = common::read_wav_mono(&fixture("beckett.wav"));
    let pcm: Vec<u8> = mono
        .iter()
        .flat_map(|&x| ((x * 32767.0).round() as i16).to_le_bytes())
        .collect();
    // The first second, then a pause long after it has all been sent.
    let first = (rate as usize * 2).min(pcm.len());
    let mut child = common::flux()
        .args(["listen", "--stdin", "--jsonl", "--url", &serve.url])
        .args(["--rate", &rate.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&pcm[..first]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    stdin.write_all(&pcm[first..]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let events = common::jsonl(&out);
    assert!(
        events.iter().all(|e| e["type"] != "Error"),
        "{}",
        common::stdout(&out)
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "flux.summary");
    assert_eq!(summary["reconnects"], 0, "{summary}");
    assert!(
        summary["filled_seconds"].as_f64().unwrap() >= 1.0,
        "{summary}"
    );
    assert!(summary["turns"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(serve.log_kind("handshake").len(), 1);
    let close = &serve.log_kind("close")[0];
    assert_eq!(close["reason"], "CloseStream", "{close}");
}

/// Words appear with the turn's audio: every Update and EagerEndOfTurn shows a prefix of the
/// script line that grows, short of the whole line; the EndOfTurn has all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts_grow_with_the_audio_and_end_whole() {
    let dir = tempfile::tempdir().unwrap();
    let line = "one two three four five six seven eight nine ten eleven twelve";
    let script = dir.path().join("turns.txt");
    std::fs::write(&script, format!("{line}\n")).unwrap();
    let server = serve(ServeOptions {
        script: Some(script),
        ..Default::default()
    })
    .await;
    // 2.5 s of speech after 0.5 s of silence, then 1.5 s of silence.
    let audio = utterances(16000, &[(2.5, 1.5)]);
    let mut c = connect(&server.url(), &dg_query("&eager_eot_threshold=0.4"), &[]).await;
    c.audio_frames(&audio, 2560).await;
    let (messages, _) = c.close_stream().await;
    let turn: Vec<&Value> = messages
        .iter()
        .filter(|m| m["type"] == "TurnInfo" && m["turn_index"] == 0)
        .filter(|m| !m["transcript"].as_str().unwrap().is_empty())
        .collect();
    let end = turn
        .iter()
        .position(|m| m["event"] == "EndOfTurn")
        .expect("an EndOfTurn");
    assert_eq!(turn[end]["transcript"], line);
    let counts: Vec<usize> = turn[..end]
        .iter()
        .map(|m| {
            let t = m["transcript"].as_str().unwrap();
            assert!(line.starts_with(t), "{t}");
            t.split_whitespace().count()
        })
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    let mut distinct = counts.clone();
    distinct.dedup();
    assert!(distinct.len() >= 5, "{counts:?}");
    assert!(*counts.last().unwrap() < 12, "{counts:?}");
    let eager = turn[..end]
        .iter()
        .find(|m| m["event"] == "EagerEndOfTurn")
        .expect("an EagerEndOfTurn");
    let eager_words = eager["transcript"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .count();
    assert!((2..12).contains(&eager_words), "{eager}");
    server.shutdown().await;
}
