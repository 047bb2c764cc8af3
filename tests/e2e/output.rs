//! End-to-end tests of the output side: a reader that stops reading never stops the stream
//! (and loses no line), untrusted text is cleaned in `--text`, and `--control` warnings quote
//! the user's own words.

use crate::common::*;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

const SCRIPT: [&str; 4] = [
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november",
    "second turn is here",
    "third one",
    "fourth",
];

fn serve_with_script(dir: &std::path::Path, lines: &[&str]) -> Serve {
    let path = dir.join("script.txt");
    std::fs::write(&path, lines.join("\n")).unwrap();
    Serve::start(&["--script", path.to_str().unwrap()])
}

/// A socket pair standing in for a pipe whose reader is away: flux writes to one end, which
/// is filled to the brim first, so flux's very first write blocks until the test reads.
fn stalled_stdout() -> (UnixStream, UnixStream, usize) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let mut filled = 0;
    let block = [b'#'; 4096];
    let mut writer = &theirs;
    loop {
        match writer.write(&block) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the socket: {e}"),
        }
    }
    // Blocking again before flux gets it (the flag is shared with flux's descriptor).
    theirs.set_nonblocking(false).unwrap();
    (ours, theirs, filled)
}

#[test]
fn a_reader_that_stops_reading_does_not_stop_the_stream_and_loses_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(dir.path(), &SCRIPT);
    let (mut ours, theirs, filled) = stalled_stdout();
    assert!(filled > 0);
    // Paced in real time (no --fast): ten seconds of audio.
    let mut child = flux()
        .arg("file")
        .arg(fixture("beckett.wav"))
        .args(["--url", &serve.url, "--jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flux");

    // Nobody reads stdout. The stream still goes on: every frame reaches the server and the
    // stream is closed there, while flux's first line is still waiting to be written.
    let deadline = Instant::now() + Duration::from_secs(60);
    while serve.log_kind("close").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the stream stalled while stdout was not read: the server got {} audio bytes",
            serve.audio_bytes()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ten_seconds_at_16k: u64 = 10 * 16000 * 2;
    assert!(
        serve.audio_bytes() >= ten_seconds_at_16k * 9 / 10,
        "{} audio bytes",
        serve.audio_bytes()
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "flux must still be holding its output"
    );

    // The reader comes back: everything arrives, in order, the summary last.
    let mut all = Vec::new();
    ours.read_to_end(&mut all).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(&all[..filled], vec![b'#'; filled].as_slice());
    let text = String::from_utf8(all[filled..].to_vec()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.first().unwrap()["type"], "flux.connected");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "flux.summary", "{text}");
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "flux.summary").count(),
        1
    );
    let finished: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "TurnInfo" && l["event"] == "EndOfTurn")
        .map(|l| l["transcript"].as_str().unwrap())
        .collect();
    assert_eq!(finished, SCRIPT, "{text}");
    assert!(lines.iter().any(|l| l["type"] == "flux.audio_finished"));
    // The output latency is measured where the line is written: it saw the wait.
    let max = last["added_latency"]["output"]["max_ms"].as_f64().unwrap();
    assert!(max >= 1000.0, "output latency {max} ms: {last}");
    assert!(!err.contains("warning: output is not being read"), "{err}");
}

#[test]
fn text_output_strips_bidi_overrides_and_escapes_from_transcripts() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(
        dir.path(),
        &[
            "pay \u{202E}1000\u{202C} now",
            "clear\u{1b}[2Jscreen",
            "third",
            "fourth",
        ],
    );
    let out = run(file_cmd(&serve, &fixture("beckett.wav"), &["--text"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains('\u{202E}') && !text.contains('\u{202C}'),
        "{text:?}"
    );
    assert!(!text.contains('\u{1b}'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pay 1000 now", "{text:?}");
    assert_eq!(lines[1], "clearscreen", "{text:?}");
}

#[test]
fn control_warnings_quote_the_users_own_words() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(dir.path(), &SCRIPT);
    let control = dir.path().join("control.jsonl");
    std::fs::write(&control, "{\"type\":\"CloseStream\",\"at\":999}\n").unwrap();
    let out = run(
        file_cmd(
            &serve,
            &fixture("beckett.wav"),
            &["--jsonl", "--control", control.to_str().unwrap()],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let warning = jsonl(&out)
        .into_iter()
        .find(|l| l["type"] == "flux.warning" && l["code"] == "control_not_applied")
        .expect("a control_not_applied warning");
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.starts_with("CloseStream was due at 999s"),
        "{message}"
    );
    assert!(!message.contains("Finish"), "{message}");
}

/// Piped output draws nothing, so flux must not ask for the terminal's size: without a
/// controlling terminal (`setsid`) crossterm would run `tput cols` and `tput lines` for it.
#[test]
fn a_piped_run_without_a_terminal_never_runs_tput() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("tput-ran");
    let tput = dir.path().join("tput");
    std::fs::write(
        &tput,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\necho 80\n", ran.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tput, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let serve = Serve::start(&[]);
    let mut cmd = std::process::Command::new("setsid");
    // The same environment as every other run of flux in these tests.
    for (key, value) in flux().get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.arg("-w")
        .arg(BIN)
        .arg("file")
        .arg(fixture("beckett.wav"))
        .args(["--url", &serve.url, "--fast", "--jsonl"])
        .env("PATH", path);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("flux.summary"));
    // The fake tput works: run by hand, it leaves its mark.
    assert!(
        !ran.exists(),
        "flux ran tput {:?}",
        std::fs::read_to_string(&ran)
    );
    let status = std::process::Command::new(&tput)
        .arg("cols")
        .output()
        .unwrap();
    assert!(status.status.success() && ran.exists());
}
