//! `flux load` against `flux serve` with faults: its report's counts are the server's (from
//! the server's log), its assertions exit 7, and Ctrl-C finishes every stream with a report.

use crate::common::{Serve, code, fixture, flux, jsonl, run, stderr};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn load(serve: &Serve, extra: &[&str]) -> Command {
    let mut c = flux();
    c.arg("load")
        .arg(fixture("beckett.wav"))
        .args(["--url", &serve.url, "--jsonl"])
        .args(extra);
    c
}

/// The summary line and the stream lines of a JSONL report.
fn report(lines: &[Value]) -> (Value, Vec<Value>) {
    let summary = lines
        .iter()
        .find(|l| l["type"] == "flux.load.summary")
        .expect("a summary line")
        .clone();
    let streams = lines
        .iter()
        .filter(|l| l["type"] == "flux.load.stream")
        .cloned()
        .collect();
    (summary, streams)
}

#[test]
fn a_run_with_faults_reports_what_the_server_logged() {
    // A share of the handshakes refused (the 2nd with 429, the 5th with 503), the 3rd
    // connection dropped after 1 s of its audio, and every message 300 ms late (a slow
    // server).
    let serve = Serve::start(&[
        "--fault",
        "reject:status=429,conn=2",
        "--fault",
        "reject:status=503,conn=5",
        "--fault",
        "drop:at=1.0,conn=3",
        "--fault",
        "delay:ms=300",
    ]);
    let out = run(
        load(
            &serve,
            &[
                "--streams",
                "6",
                "--ramp",
                "1.2",
                "--duration",
                "4",
                "--assert-p95-eot-ms",
                "100",
                "--assert-errors",
                "3",
            ],
        ),
        None,
    );
    // The slow server breaks the latency assertion; the three errors are allowed.
    assert_eq!(code(&out), 7, "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("assertion failed: p95_eot_ms"),
        "{}",
        stderr(&out)
    );
    let (summary, streams) = report(&jsonl(&out));
    assert_eq!(streams.len(), 6);
    let handshakes = serve.log_kind("handshake");
    let status = |s: u64| handshakes.iter().filter(|h| h["status"] == s).count() as u64;
    let drops = serve
        .log_kind("close")
        .iter()
        .filter(|c| c["by"] == "drop")
        .count() as u64;
    assert_eq!(summary["attempts"], handshakes.len() as u64, "{summary}");
    assert_eq!(summary["connections"], status(101), "{summary}");
    assert_eq!(summary["errors"]["handshake 429"], status(429), "{summary}");
    assert_eq!(summary["errors"]["handshake 503"], status(503), "{summary}");
    assert_eq!(summary["errors"]["dropped"], drops, "{summary}");
    assert_eq!((status(429), status(503), drops), (1, 1, 1));
    assert_eq!(summary["error_count"], 3);
    // The dropped stream reconnected; the refused ones retried their first connection, which
    // is not a reconnection (their refusals are in `errors` and `attempts`).
    assert_eq!(summary["reconnects"], 1);
    assert_eq!(
        (summary["ok"].as_u64(), summary["failed"].as_u64()),
        (Some(6), Some(0))
    );
    // Every upgraded connection's request id is one the server gave.
    let ids = |s: &Value| -> Vec<String> {
        s["request_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let mut ours: Vec<String> = streams.iter().flat_map(ids).collect();
    let mut theirs: Vec<String> = handshakes
        .iter()
        .filter(|h| h["status"] == 101)
        .map(|h| h["request_id"].as_str().unwrap().to_string())
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    // Stream by stream, through the request ids: its attempts are its upgrades plus its
    // refusals, and the server received at least its frames on its connections (more after
    // a drop: the replayed audio).
    let conn_of = |id: &str| {
        handshakes
            .iter()
            .find(|h| h["request_id"] == id)
            .map(|h| h["conn"].as_u64().unwrap())
            .unwrap()
    };
    let audio = serve.log_kind("audio");
    for s in &streams {
        let refused: u64 = ["handshake 429", "handshake 503"]
            .iter()
            .map(|k| s["errors"][*k].as_u64().unwrap_or(0))
            .sum();
        let mine = ids(s);
        assert_eq!(s["attempts"], mine.len() as u64 + refused, "{s}");
        let conns: Vec<u64> = mine.iter().map(|id| conn_of(id)).collect();
        let received: u64 = audio
            .iter()
            .filter(|a| conns.contains(&a["conn"].as_u64().unwrap()))
            .map(|a| a["bytes"].as_u64().unwrap())
            .sum();
        let frames = s["frames_sent"].as_u64().unwrap();
        assert_eq!(frames, 50, "{s}");
        assert!(
            received >= frames * 2560,
            "{s}: the server got {received} bytes"
        );
        // Every stream's audio went whole: ForceEndTurn and CloseStream on its last connection.
        let last = *conns.last().unwrap();
        let controls: Vec<String> = serve
            .log_kind("control")
            .iter()
            .filter(|c| c["conn"] == last)
            .map(|c| c["message"]["type"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(controls, ["ForceEndTurn", "CloseStream"], "{s}");
    }
    // 4 s of audio per stream, in 80 ms frames, all of it new audio.
    assert_eq!(summary["frames_sent"], 300);
    assert!(serve.audio_bytes() >= 300 * 2560, "{}", serve.audio_bytes());
    assert_eq!(summary["time_to_connected"]["count"], status(101));
    // Every EndOfTurn came at least the server's delay after its audio went.
    let eot = &summary["eot_latency"];
    assert!(eot["count"].as_u64().unwrap() >= 6, "{summary}");
    assert!(eot["p50_ms"].as_f64().unwrap() >= 300.0, "{summary}");
    let checks = summary["assertions"].as_array().unwrap();
    assert_eq!(checks[0]["name"], "p95_eot_ms");
    assert_eq!(checks[0]["passed"], false);
    assert_eq!(checks[1]["name"], "errors");
    assert_eq!(checks[1]["passed"], true);
}

#[test]
fn a_stream_given_up_counts_as_failed_and_decides_the_status() {
    // Every handshake refused with 503: the streams give up after their retries.
    let serve = Serve::start(&["--fault", "reject:status=503"]);
    let out = run(
        load(&serve, &["--streams", "2", "--max-reconnects", "1"]),
        None,
    );
    let (summary, streams) = report(&jsonl(&out));
    assert_eq!(summary["failed"], 2, "{summary}");
    assert_eq!(summary["connections"], 0);
    let handshakes = serve.log_kind("handshake").len() as u64;
    assert_eq!(summary["attempts"], handshakes);
    assert_eq!(summary["errors"]["handshake 503"], handshakes);
    assert!(
        streams
            .iter()
            .all(|s| s["ok"] == false && s["exit_code"] == 6)
    );
    // A 5xx given up on is the server's error: exit 6, as `flux file` would.
    assert_eq!(code(&out), 6, "stderr: {}", stderr(&out));
}

#[test]
fn ctrl_c_finishes_every_stream_and_reports_what_was_measured() {
    let serve = Serve::start(&[]);
    let mut child = load(&serve, &["--streams", "2", "--loops", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    // Both streams are sending audio before the interrupt.
    let deadline = Instant::now() + Duration::from_secs(30);
    while serve.log_kind("audio").len() < 20 {
        assert!(Instant::now() < deadline, "no audio reached the server");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status();
    let status = child.wait().unwrap();
    let stdout = reader.join().unwrap();
    assert_eq!(status.code(), Some(0));
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, _) = report(&lines);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["ok"], 2, "{summary}");
    let frames = summary["frames_sent"].as_u64().unwrap();
    // Some audio went, far from all of it (100 loops of 10 s on each stream).
    assert!((20..25_000).contains(&frames), "{summary}");
    // Each stream ended its turn and closed, as at the end of a file.
    let controls: Vec<String> = serve
        .log_kind("control")
        .iter()
        .map(|c| c["message"]["type"].as_str().unwrap_or("").to_string())
        .collect();
    let count = |t: &str| controls.iter().filter(|c| *c == t).count();
    assert_eq!(
        (count("ForceEndTurn"), count("CloseStream")),
        (2, 2),
        "{controls:?}"
    );
}
