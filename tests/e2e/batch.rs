//! `flux file a.wav b.wav ...`: several files, each its own stream, against `flux serve`.

use crate::common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script_lines() -> Vec<String> {
    std::fs::read_to_string(fixture("two_cities.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn serve_two_cities() -> Serve {
    Serve::start(&["--script", fixture("two_cities.txt").to_str().unwrap()])
}

/// `flux file PATHS... --url URL --fast EXTRA...`
fn batch(serve: &Serve, paths: &[&Path], extra: &[&str]) -> Command {
    let mut c = flux();
    c.arg("file")
        .args(paths)
        .args(["--url", &serve.url, "--fast"])
        .args(extra);
    c
}

/// beckett.wav under another name, so two files in a batch are told apart.
fn copy_of_beckett(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixture("beckett.wav"), &p).unwrap();
    p
}

#[test]
fn text_lines_name_their_file_and_each_files_turns_stay_in_order() {
    let serve = serve_two_cities();
    let (beckett, cities) = (fixture("beckett.wav"), fixture("two_cities.wav"));
    let out = run(batch(&serve, &[&beckett, &cities], &["--text"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut per_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in stdout(&out).lines() {
        let (file, text) = line
            .split_once(".wav: ")
            .unwrap_or_else(|| panic!("unlabelled line {line:?}"));
        per_file
            .entry(format!("{file}.wav"))
            .or_default()
            .push(text.to_string());
    }
    let script = script_lines();
    assert_eq!(per_file[beckett.to_str().unwrap()], script[..4]);
    assert_eq!(per_file[cities.to_str().unwrap()], script);
    // Each file gets its own closing line on stderr, and the batch one at the end.
    let err = stderr(&out);
    assert!(
        err.contains(&format!("flux: {}: 4 turn(s)", beckett.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("flux: {}: 14 turn(s)", cities.display())),
        "{err}"
    );
    assert!(
        err.trim_end()
            .ends_with("2 file(s) streamed: 2 ok, 0 failed; exit status 0"),
        "{err}"
    );
}

#[test]
fn jsonl_lines_carry_the_file_and_each_file_is_its_own_stream() {
    let dir = tempfile::tempdir().unwrap();
    let a = copy_of_beckett(dir.path(), "a.wav");
    let b = copy_of_beckett(dir.path(), "b.wav");
    let serve = Serve::start(&[]);
    let out = run(batch(&serve, &[&a, &b], &["--jsonl", "--jobs", "2"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut per_file: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for event in jsonl(&out) {
        let file = event["file"]
            .as_str()
            .unwrap_or_else(|| panic!("line without file: {event}"))
            .to_string();
        per_file.entry(file).or_default().push(event);
    }
    let names: Vec<&String> = per_file.keys().collect();
    assert_eq!(names, [a.to_str().unwrap(), b.to_str().unwrap()]);
    let mut request_ids = Vec::new();
    for events in per_file.values() {
        // Every file's stream reads as a whole one: connected first, summary last, and the
        // server's messages in sequence.
        assert_eq!(events[0]["type"], "flux.connected");
        let summary = events.last().unwrap();
        assert_eq!(summary["type"], "flux.summary");
        assert_eq!(summary["turns"], 4);
        assert_eq!(summary["exit_code"], 0);
        let seqs: Vec<u64> = events
            .iter()
            .filter_map(|e| e["sequence_id"].as_u64())
            .collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        request_ids.push(summary["request_id"].as_str().unwrap().to_string());
    }
    assert_ne!(request_ids[0], request_ids[1], "one connection per file");
    assert_eq!(serve.log_kind("handshake").len(), 2);
}

#[test]
fn with_one_job_files_stream_one_after_another_in_argument_order() {
    let serve = serve_two_cities();
    let (beckett, cities) = (fixture("beckett.wav"), fixture("two_cities.wav"));
    let out = run(
        batch(&serve, &[&cities, &beckett], &["--text", "--jobs", "1"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let files: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(".wav: ").unwrap().0)
        .collect();
    let first_beckett = files.iter().position(|f| f.ends_with("beckett")).unwrap();
    assert_eq!(first_beckett, 14, "{files:?}");
    assert!(files[14..].iter().all(|f| f.ends_with("beckett")));
}

#[test]
fn single_file_output_is_unlabelled_and_unchanged() {
    let serve = Serve::start(&[]);
    let out = run(
        file_cmd(&serve, &fixture("beckett.wav"), &["--jsonl"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(jsonl(&out).iter().all(|e| e.get("file").is_none()));
}

#[test]
fn exit_status_is_the_worst_of_all_files() {
    let serve = serve_two_cities();
    let (beckett, cities) = (fixture("beckett.wav"), fixture("two_cities.wav"));
    let missing = Path::new("/nonexistent/missing.wav");

    // A failed check (7) on one file, success on the other: 7.
    let out = run(
        batch(
            &serve,
            &[&beckett, &cities],
            &["--text", "--expect-turns", "4"],
        ),
        None,
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "flux: {}: assertion FAILED: --expect-turns 4: got 14 turn(s)",
            cities.display()
        )),
        "{err}"
    );
    assert!(err.contains("1 ok, 1 failed; exit status 7"), "{err}");

    // An unreadable file (5) outranks a failed check (7); the other files still stream.
    let out = run(
        batch(
            &serve,
            &[&beckett, missing, &cities],
            &["--text", "--expect-turns", "4"],
        ),
        None,
    );
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        // Issue 13: the path once, in the message that names it (not `PATH: error: ... PATH`).
        stderr(&out).contains("flux: error: cannot open /nonexistent/missing.wav: "),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).lines().count(), 4 + 14);

    // Refused credentials (3) outrank an unreadable file (5).
    let locked = Serve::start(&["--api-key", "right-key"]);
    let mut cmd = batch(&locked, &[missing, &beckett], &["--text"]);
    cmd.env("DEEPGRAM_API_KEY", "wrong-key");
    let out = run(cmd, None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
}

#[test]
fn flags_for_one_stream_are_refused_with_several_files() {
    let serve = Serve::start(&[]);
    let beckett = fixture("beckett.wav");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("s.wav");
    for (extra, says) in [
        (
            vec!["--save-audio", saved.to_str().unwrap()],
            "--save-audio",
        ),
        (vec!["--format", "srt"], "--format srt/vtt"),
        (vec!["--control", "/dev/null"], "--control"),
    ] {
        let out = run(batch(&serve, &[&beckett, &beckett], &extra), None);
        assert_eq!(code(&out), 2, "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{says} works with one file")),
            "{}",
            stderr(&out)
        );
    }
    let dash = Path::new("-");
    let out = run(batch(&serve, &[dash, dash], &[]), Some(b""));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(serve.log_kind("handshake").is_empty(), "nothing streamed");
}

#[test]
fn a_closed_stdout_ends_the_batch_quietly_without_starting_more_files() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let serve = serve_two_cities();
    let (beckett, cities) = (fixture("beckett.wav"), fixture("two_cities.wav"));
    let mut child = batch(
        &serve,
        &[&cities, &beckett, &beckett],
        &["--text", "--jobs", "1"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // `| head -1`: read one line, then go away.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.contains("two_cities.wav: It was the best of times"),
        "{first}"
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first file may have finished into the pipe's buffer before it closed; the second
    // then stops at its first line, and the third never starts.
    let started = serve.log_kind("handshake").len();
    assert!((1..=2).contains(&started), "{started} streams started");
}

#[test]
fn ctrl_c_finishes_every_running_stream_and_starts_no_more() {
    use std::io::Read;
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = ["a.wav", "b.wav", "c.wav"]
        .iter()
        .map(|n| copy_of_beckett(dir.path(), n))
        .collect();
    let serve = Serve::start(&[]);
    let mut cmd = flux();
    // Real time, so the streams are still running when the signal comes.
    cmd.arg("file")
        .args(&files)
        .args(["--url", &serve.url, "--text", "--jobs", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let err_buf = Arc::new(Mutex::new(String::new()));
    let err_t = {
        let buf = err_buf.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        })
    };
    let mut out = child.stdout.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while err_buf.lock().unwrap().matches("connected to").count() < 2 {
        assert!(Instant::now() < deadline, "{}", err_buf.lock().unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "flux did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    };
    err_t.join().unwrap();
    let _ = out_t.join().unwrap();
    let err = err_buf.lock().unwrap().clone();
    // Issue 13 item 14: files left unstreamed make a distinct status (docs/exit-codes.md).
    assert_eq!(status.code(), Some(9), "{err}");
    // Both running streams finished with their closing line, early; the third never started.
    for f in &files[..2] {
        assert!(err.contains(&format!("flux: {}: ", f.display())), "{err}");
    }
    assert_eq!(err.matches("turn(s), ").count(), 2, "{err}");
    assert!(
        err.contains(&format!(
            "flux: {}: not streamed (interrupted)",
            files[2].display()
        )),
        "{err}"
    );
    assert_eq!(serve.log_kind("handshake").len(), 2);
    let audio: f64 = serve
        .log_kind("audio")
        .iter()
        .map(|l| l["audio_end"].as_f64().unwrap() - l["audio_start"].as_f64().unwrap())
        .sum();
    assert!(
        audio < 2.0 * 9.0,
        "the streams ended early: {audio} s of audio"
    );
}
