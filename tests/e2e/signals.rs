//! Signals and pipes: Ctrl-C (SIGINT) or SIGTERM at any moment never leaves half a JSONL line;
//! once finishes the stream like end of input, twice exits 130 at once; a reader that goes
//! away ends flux quietly.

use crate::common;

use common::*;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs `flux file beckett.wav --jsonl` paced (so there is time to interrupt it) against a
/// server that sends many messages, and sends `signals` after `delay`, 30 ms apart.
fn interrupted(serve: &Serve, delay: Duration, signals: &[&str]) -> (ExitStatus, String, String) {
    let mut cmd = flux();
    cmd.arg("file")
        .arg(fixture("beckett.wav"))
        .args(["--url", &serve.url, "--pace", "4", "--jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    std::thread::sleep(delay);
    for signal in signals {
        // The shell's builtin kill: no dependency on procps or libc.
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {} 2>/dev/null", child.id())])
            .status();
        std::thread::sleep(Duration::from_millis(30));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("flux did not exit after {signals:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8(out_t.join().unwrap()).expect("stdout is UTF-8");
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    (status, stdout, stderr)
}

/// Every line is a whole JSON object and the output ends with a newline.
fn assert_whole_lines(label: &str, stdout: &str) {
    assert!(
        stdout.is_empty() || stdout.ends_with('\n'),
        "{label}: output ends in half a line: {:?}",
        &stdout[stdout.len().saturating_sub(200)..]
    );
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{label}: bad line {line:?}: {e}"));
        assert!(v["type"].is_string(), "{label}: {line}");
    }
}

/// Delays from "before flux has set up its handlers" to "while it finishes the stream".
const DELAYS_MS: [u64; 7] = [0, 15, 60, 200, 500, 900, 1400];

#[test]
fn one_interrupt_or_sigterm_finishes_like_end_of_input() {
    // Updates every 0.25 s of audio and unknown messages: a steady stream of lines.
    let serve = Serve::start(&["--fault", "unknown:at=0.1", "--fault", "unknown:at=0.6"]);
    for signal in ["INT", "TERM"] {
        for ms in DELAYS_MS {
            let label = format!("SIG{signal} after {ms} ms");
            let (status, stdout, stderr) =
                interrupted(&serve, Duration::from_millis(ms), &[signal]);
            assert_whole_lines(&label, &stdout);
            assert!(!stderr.contains("panicked"), "{label}: {stderr}");
            match status.code() {
                // Handled: the stream was finished and summarized.
                Some(0) => {
                    let last = stdout.lines().last().unwrap_or("");
                    assert!(
                        last.contains("\"flux.summary\""),
                        "{label}: last line {last}"
                    );
                }
                // Arrived before flux installed its handler: the default action, before any
                // output existed.
                None => assert!(stdout.is_empty(), "{label}: {stdout}"),
                Some(other) => panic!("{label}: exit {other}: {stderr}"),
            }
        }
    }
}

#[test]
fn a_second_interrupt_exits_130_between_lines() {
    let serve = Serve::start(&["--fault", "unknown:at=0.1"]);
    for ms in DELAYS_MS {
        let label = format!("2×SIGINT after {ms} ms");
        let (status, stdout, stderr) =
            interrupted(&serve, Duration::from_millis(ms), &["INT", "INT"]);
        assert_whole_lines(&label, &stdout);
        assert!(!stderr.contains("panicked"), "{label}: {stderr}");
        // 130, or 0 when the first one had already finished the stream, or killed by the
        // default action before the handler existed.
        assert!(
            matches!(status.code(), Some(130) | Some(0) | None),
            "{label}: {status:?}: {stderr}"
        );
    }
}

#[test]
fn a_closed_stdout_ends_quietly_in_every_format() {
    let serve = Serve::start(&[]);
    // `true` closes at once, `head -c 10` in the middle of the first line, `head -1` after it.
    for format in ["--jsonl", "--text"] {
        for reader in ["true", "head -c 10 >/dev/null", "head -1 >/dev/null"] {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(format!(
                "{BIN} file {} --url {} --fast {format} | {reader}",
                fixture("beckett.wav").display(),
                serve.url
            ));
            let out = run(cmd, None);
            let err = stderr(&out);
            assert!(
                !err.contains("panicked") && !err.contains("Broken pipe") && !err.contains("error"),
                "{format} | {reader}: {err}"
            );
        }
    }
    // The exit status itself, without a shell in between: 0.
    for format in ["--jsonl", "--text"] {
        let mut cmd = flux();
        cmd.arg("file")
            .arg(fixture("beckett.wav"))
            .args(["--url", &serve.url, "--fast", format])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{format}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{format}: {err}"
        );
    }
}
