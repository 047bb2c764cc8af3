//! The session against a server with latency, as a user meets it (`flux serve --fault
//! delay`): finishing early (Ctrl-C,
//! a `--control` CloseStream) stops the audio whatever the source's state; an empty input
//! never opens a connection; a refused Cloudflare Worker says which credential went where.

use crate::common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running flux whose output is collected on threads.
struct Running {
    child: Child,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

fn spawn(mut cmd: Command, stdin: Option<Vec<u8>>) -> Running {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn flux");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    Running {
        child,
        out: std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        }),
        err: std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        }),
    }
}

impl Running {
    fn signal(&self, name: &str) {
        // The shell's builtin kill: no dependency on procps or libc.
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!("kill -{name} {} 2>/dev/null", self.child.id()),
            ])
            .status();
    }

    /// Waits for the exit (a minute at most, so a hang fails rather than stalls the suite).
    fn wait(mut self) -> (i32, Vec<Value>, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("flux did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = String::from_utf8(self.out.join().unwrap()).unwrap();
        let events = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect();
        let stderr = String::from_utf8_lossy(&self.err.join().unwrap()).into_owned();
        (status.code().unwrap_or(-1), events, stderr)
    }
}

/// The server greets (and answers) 2 s late: long enough for flux to have read a whole short
/// input while waiting for `Connected`, as a real network's 30–50 ms is for a release build.
const LATE: &str = "delay:ms=2000";

/// two_cities.wav (44 s) at 16 kHz mono, so reading it costs next to nothing.
fn long_input(dir: &std::path::Path) -> (std::path::PathBuf, Vec<f32>) {
    let (samples, rate) = read_wav_mono(&fixture("two_cities.wav"));
    let samples = resample_linear(&samples, rate, 16_000);
    let path = dir.join("two_cities_16k.wav");
    write_wav(&path, &samples, 16_000, 1, 16, false);
    (path, samples)
}

fn audio_finished(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["type"] == "flux.audio_finished")
        .expect("a flux.audio_finished line")
}

/// Asserts the stream was finished early: little audio reached the server, and flux says so.
fn assert_finished_early(label: &str, serve: &Serve, events: &[Value], max_secs: f64) {
    let finished = audio_finished(events);
    assert_eq!(finished["reason"], "interrupted", "{label}: {finished}");
    let sent = finished["audio_seconds"].as_f64().unwrap();
    assert!(sent < max_secs, "{label}: {sent}s of audio were sent");
    // What the server received agrees (16 kHz, 2 bytes per sample).
    let received = serve.audio_bytes() as f64 / 32_000.0;
    assert!(
        received < max_secs,
        "{label}: the server received {received}s"
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "flux.summary");
    assert_eq!(summary["exit_code"], 0, "{label}: {summary}");
}

#[test]
fn first_interrupt_finishes_a_file_early_when_the_server_has_latency() {
    let serve = Serve::start(&["--fault", LATE]);
    let (wav, _) = long_input(serve.dir.path());
    let mut cmd = flux();
    cmd.arg("file")
        .arg(&wav)
        .args(["--url", &serve.url, "--pace", "2", "--jsonl"]);
    let running = spawn(cmd, None);
    std::thread::sleep(Duration::from_millis(3000));
    running.signal("INT");
    let (code, events, stderr) = running.wait();
    assert_eq!(code, 0, "{stderr}");
    // About a second at twice real time went before the interrupt; the whole file is 44 s.
    assert_finished_early("file", &serve, &events, 10.0);
}

#[test]
fn first_sigterm_finishes_stdin_early_even_after_the_input_has_ended() {
    // The whole input is on stdin at once: it ends while flux is still connecting.
    let serve = Serve::start(&["--fault", LATE]);
    let (_, samples) = long_input(serve.dir.path());
    let pcm: Vec<u8> = samples
        .iter()
        .flat_map(|x| ((x.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect();
    let mut cmd = flux();
    cmd.args(["listen", "--stdin", "--rate", "16000"])
        .args(["--url", &serve.url, "--pace", "2", "--jsonl"]);
    let running = spawn(cmd, Some(pcm));
    std::thread::sleep(Duration::from_millis(3000));
    running.signal("TERM");
    let (code, events, stderr) = running.wait();
    assert_eq!(code, 0, "{stderr}");
    assert_finished_early("stdin", &serve, &events, 10.0);
}

#[test]
fn a_control_file_close_stream_finishes_early_when_the_server_has_latency() {
    let serve = Serve::start(&["--fault", LATE]);
    let (wav, _) = long_input(serve.dir.path());
    let control = serve.dir.path().join("control.jsonl");
    std::fs::write(&control, "{\"type\":\"CloseStream\",\"at\":2.0}\n").unwrap();
    let mut cmd = flux();
    cmd.arg("file")
        .arg(&wav)
        .args(["--url", &serve.url, "--pace", "4", "--jsonl", "--control"])
        .arg(&control);
    let (code, events, stderr) = spawn(cmd, None).wait();
    assert_eq!(code, 0, "{stderr}");
    assert_finished_early("--control", &serve, &events, 3.0);
    let sent = audio_finished(&events)["audio_seconds"].as_f64().unwrap();
    assert!(sent >= 2.0, "finished before the line's time: {sent}");
}

#[test]
fn empty_stdin_never_opens_a_connection() {
    let serve = Serve::start(&[]);
    let mut cmd = flux();
    cmd.args(["listen", "--stdin", "--rate", "16000", "--url", &serve.url]);
    let out = run(cmd, Some(b""));
    // Bad input (no samples), said without having contacted the server.
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    // Give the server's log a moment: a connection would have been logged by now.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        serve.log_kind("handshake").is_empty(),
        "empty stdin connected: {:?}",
        serve.log_lines()
    );
}

#[test]
fn a_refused_cloudflare_worker_says_the_cloudflare_token_is_not_sent_there() {
    let serve = Serve::start(&["--api-key", "worker-key"]);
    let wav = fixture("beckett.wav");
    let mut cmd = flux();
    cmd.arg("file")
        .arg(&wav)
        .args(["--provider", "cloudflare", "--url", &serve.url, "--fast"])
        .env("CLOUDFLARE_API_TOKEN", "cf-token-not-for-workers");
    let out = run(cmd, None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("401"), "{err}");
    assert!(
        err.contains("Cloudflare API token is not sent to 127.0.0.1") && err.contains("--header"),
        "{err}"
    );
    assert!(!err.contains("DEEPGRAM_API_KEY"), "{err}");
    assert!(!err.contains("cf-token-not-for-workers"), "{err}");
}

#[test]
fn ending_with_silence_sends_only_full_frames_but_the_last() {
    // beckett.wav is 9.96 s: its last 80 ms frame is half full. Cloudflare ends the stream
    // with silence, so that frame is filled up rather than sent short before the silence.
    let serve = Serve::start(&[]);
    let mut cmd = flux();
    cmd.arg("file").arg(fixture("beckett.wav")).args([
        "--provider",
        "cloudflare",
        "--url",
        &serve.url,
        "--fast",
    ]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sizes: Vec<u64> = serve
        .log_kind("audio")
        .iter()
        .map(|l| l["bytes"].as_u64().unwrap())
        .collect();
    assert!(
        sizes.len() > 125,
        "silence followed the input: {}",
        sizes.len()
    );
    let (last, all_but_last) = sizes.split_last().unwrap();
    assert!(all_but_last.iter().all(|&n| n == 2560), "{sizes:?}");
    assert!(*last <= 2560);
}
