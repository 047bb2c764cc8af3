//! The command line as a new user meets it (issue 13): outputs that would destroy inputs,
//! stdout that cannot be written, exit codes that say what happened, assertions that could
//! not run, interrupted batches, repeated flags, help that gives ranges, and a JSONL schema
//! document that covers everything flux writes.

use crate::alsa;
use crate::common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A copy of beckett.wav in a temp dir, as `call.wav`.
fn call_wav(dir: &Path) -> PathBuf {
    let path = dir.join("call.wav");
    std::fs::copy(fixture("beckett.wav"), &path).unwrap();
    path
}

/// Runs `cmd` with stdout going to `stdout` (e.g. /dev/full); returns (exit code, stderr).
/// stdin is left as `cmd` has it (the null device unless set).
fn run_with_stdout(mut cmd: Command, stdout: Stdio) -> (i32, String) {
    cmd.stdout(stdout).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("flux did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status.code().unwrap_or(-1), err_t.join().unwrap())
}

// ---- item 1: --save-audio never destroys an input ------------------------------------

#[test]
fn save_audio_refuses_to_overwrite_the_input_directly_through_a_link_or_stdin() {
    let serve = Serve::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let call = call_wav(dir.path());
    let original = std::fs::read(&call).unwrap();
    let link = dir.path().join("link.wav");
    std::os::unix::fs::symlink(&call, &link).unwrap();

    for (label, input, save) in [
        ("same path", &call, &call),
        ("symlink as output", &call, &link),
        ("symlink as input", &link, &call),
    ] {
        let mut cmd = file_cmd(&serve, input, &["--text"]);
        cmd.arg("--save-audio").arg(save);
        let out = run(cmd, None);
        assert_eq!(code(&out), 2, "{label}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is the input"),
            "{label}: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read(&call).unwrap(),
            original,
            "{label}: input changed"
        );
    }
    // A WAV on stdin redirected from the file, and raw PCM on stdin.
    for args in [
        vec!["file", "-"],
        vec!["listen", "--stdin", "--rate", "16000"],
    ] {
        let mut cmd = flux();
        cmd.args(&args)
            .args(["--url", &serve.url, "--fast", "--text", "--save-audio"])
            .arg(&link)
            .stdin(File::open(&call).unwrap());
        let (status, err) = run_with_stdout(cmd, Stdio::null());
        assert_eq!(status, 2, "{args:?}: {err}");
        assert!(err.contains("is the input stdin"), "{args:?}: {err}");
        assert_eq!(
            std::fs::read(&call).unwrap(),
            original,
            "{args:?}: input changed"
        );
    }
    assert!(
        serve.log_kind("handshake").is_empty(),
        "refused before connecting"
    );

    // Another file is still written, and replays.
    let saved = dir.path().join("saved.wav");
    let mut cmd = file_cmd(&serve, &call, &["--text"]);
    cmd.arg("--save-audio").arg(&saved);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::metadata(&saved).unwrap().len() > 44);
}

#[test]
fn save_audio_is_not_created_when_the_microphone_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mic.raw");
    std::fs::write(&raw, []).unwrap();
    let saved = dir.path().join("saved.wav");
    let mut cmd = flux();
    alsa::use_devices(&mut cmd, "mic.conf", &raw);
    cmd.args([
        "listen",
        "--mic",
        "--device",
        "no such mic",
        "--url",
        "ws://127.0.0.1:9",
    ])
    .arg("--save-audio")
    .arg(&saved);
    let out = run(cmd, None);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        !saved.exists(),
        "the output was created before the input opened"
    );
}

// ---- item 4: a failed stdout is not a success ----------------------------------------

#[test]
fn a_failed_write_to_stdout_exits_8_and_a_closed_pipe_still_exits_0() {
    let serve = Serve::start(&[]);
    let wav = fixture("beckett.wav");
    let full = || File::create("/dev/full").unwrap();
    for format in ["--text", "--jsonl"] {
        let mut cmd = file_cmd(&serve, &wav, &[format]);
        cmd.stdin(Stdio::null());
        let (status, err) = run_with_stdout(cmd, full().into());
        assert_eq!(status, 8, "{format}: {err}");
        assert_eq!(
            err.matches("cannot write to stdout").count(),
            1,
            "said once: {err}"
        );
        assert!(err.contains("No space left on device"), "{err}");
    }
    // A batch says it once too.
    let mut cmd = file_cmd(&serve, &wav, &["--text"]);
    cmd.arg(&wav).stdin(Stdio::null());
    let (status, err) = run_with_stdout(cmd, full().into());
    assert_eq!(status, 8, "{err}");
    assert_eq!(err.matches("cannot write to stdout").count(), 1, "{err}");
    // Generated text too.
    let mut cmd = flux();
    cmd.args(["completions", "bash"]).stdin(Stdio::null());
    let (status, err) = run_with_stdout(cmd, full().into());
    assert_eq!(status, 8, "{err}");

    // A reader that leaves is how pipes end.
    let out = run(
        {
            let mut c = Command::new("bash");
            c.arg("-c").arg(format!(
                "{BIN} file {} --url {} --fast --text | head -1; exit ${{PIPESTATUS[0]}}",
                wav.display(),
                serve.url
            ));
            c.env("NO_COLOR", "1");
            c
        },
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("cannot write"), "{}", stderr(&out));
}

// ---- item 5: a retried server error that never clears is the server's -----------------

#[test]
fn an_internal_server_error_exits_6_whether_or_not_it_was_retried() {
    let serve = Serve::start(&["--fault", "error:at=1.0,code=INTERNAL_SERVER_ERROR"]);
    let wav = fixture("beckett.wav");
    for reconnects in ["0", "1"] {
        let out = run(
            file_cmd(&serve, &wav, &["--jsonl", "--max-reconnects", reconnects]),
            None,
        );
        assert_eq!(
            code(&out),
            6,
            "--max-reconnects {reconnects}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("INTERNAL_SERVER_ERROR"),
            "{}",
            stderr(&out)
        );
        let events = jsonl(&out);
        assert_eq!(events.last().unwrap()["exit_code"], 6);
    }
}

// ---- item 9: assertions that could not run ---------------------------------------------

#[test]
fn assertions_are_not_evaluated_when_the_stream_never_ran() {
    let wav = fixture("beckett.wav");
    let mut cmd = flux();
    cmd.arg("file").arg(&wav).args([
        "--url",
        "ws://127.0.0.1:9",
        "--fast",
        "--jsonl",
        "--expect-text",
        "hello",
        "--expect-turns",
        "2",
    ]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("FAILED"), "{err}");
    assert!(
        err.contains("assertions not evaluated: the stream never ran"),
        "{err}"
    );
    assert!(err.contains("--expect-text, --expect-turns 2"), "{err}");
    // No noise before the error: nothing was sent, so there is nothing to count.
    assert!(!err.contains("turn(s),"), "{err}");
    let events = jsonl(&out);
    let report = events
        .iter()
        .find(|e| e["type"] == "flux.assertions")
        .expect("a flux.assertions line");
    assert_eq!(report["evaluated"], false);
    assert_eq!(report["passed"], false);
    assert_eq!(report["checks"], serde_json::json!([]));
    assert!(report["reason"].as_str().unwrap().contains("never ran"));
    assert_eq!(events.last().unwrap()["exit_code"], 4);

    // A stream that ran is evaluated as before.
    let serve = Serve::start(&[]);
    let out = run(
        file_cmd(&serve, &wav, &["--jsonl", "--expect-turns", "99"]),
        None,
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let report = jsonl(&out)
        .into_iter()
        .find(|e| e["type"] == "flux.assertions")
        .unwrap();
    assert_eq!(report["evaluated"], true);
}

// ---- item 13: one device list ----------------------------------------------------------

#[test]
fn the_device_error_lists_exactly_what_flux_devices_lists() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mic.raw");
    std::fs::write(&raw, []).unwrap();
    let mut cmd = flux();
    alsa::use_devices(&mut cmd, "mic.conf", &raw);
    cmd.args(["devices", "--jsonl"]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed: BTreeSet<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    let mut cmd = flux();
    alsa::use_devices(&mut cmd, "mic.conf", &raw);
    cmd.args([
        "listen",
        "--mic",
        "--device",
        "no such mic",
        "--url",
        "ws://127.0.0.1:9",
    ]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let err = stderr(&out);
    let named: BTreeSet<String> = err
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert_eq!(named, listed, "{err}");
}

// ---- item 15: one rule for unusable files named by flags -------------------------------

#[test]
fn every_unusable_file_named_by_a_flag_is_a_usage_error() {
    let serve = Serve::start(&[]);
    let wav = fixture("beckett.wav");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let a_dir = dir.path().to_path_buf();
    let unwritable = dir.path().join("no-such-dir").join("out.wav");
    let mut cases: Vec<(&str, &Path)> = Vec::new();
    for path in [&missing, &empty, &a_dir] {
        cases.push(("--api-key-file", path));
    }
    for path in [&missing, &a_dir] {
        cases.push(("--ca-cert", path));
        cases.push(("--expect-file", path));
        cases.push(("--control", path));
    }
    cases.push(("--save-audio", &unwritable));
    cases.push(("--save-audio", &a_dir));
    for (flag, path) in cases {
        let mut cmd = file_cmd(&serve, &wav, &["--text"]);
        cmd.arg(flag).arg(path);
        let out = run(cmd, None);
        assert_eq!(code(&out), 2, "{flag} {}: {}", path.display(), stderr(&out));
    }
    assert!(serve.log_kind("audio").is_empty(), "nothing was streamed");
}

// ---- item 14: an interrupted batch is told apart from a complete one -------------------
// (tests/e2e/batch.rs interrupts a batch and checks its exit status 9)

// ---- polish ------------------------------------------------------------------------------

#[test]
fn repeated_flags_take_their_last_value() {
    let serve = Serve::start(&[]);
    let out = run(
        file_cmd(
            &serve,
            &fixture("beckett.wav"),
            &[
                "-q",
                "-q",
                "--fast",
                "--text",
                "--text",
                "--eot-threshold",
                "0.7",
                "--eot-threshold",
                "0.8",
                "--keyterm",
                "a",
                "--keyterm",
                "b",
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "-q twice is still quiet");
    let query = serve.log_kind("handshake")[0]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(query.contains("eot_threshold=0.8"), "{query}");
    assert!(!query.contains("eot_threshold=0.7"), "{query}");
    // Repeatable flags still collect every value.
    assert!(query.contains("keyterm=a&keyterm=b"), "{query}");
}

#[test]
fn help_gives_the_accepted_values_and_ranges() {
    let help = |sub: &str| {
        let mut c = flux();
        c.args([sub, "--help"]);
        let out = run(c, None);
        assert_eq!(code(&out), 0);
        stdout(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let file = help("file");
    for want in [
        "8000, 16000, 24000, 44100 or 48000",
        "10 to 1000",
        "0.1 to 1000",
        "0.5 to 3600",
    ] {
        assert!(file.contains(want), "`flux file --help` lacks {want:?}");
    }
    let listen = help("listen");
    assert!(listen.contains("1000 to 384000"), "{listen}");
    for code in ["8 output could not be written", "9 interrupted before"] {
        assert!(file.contains(code), "{code} missing from the exit codes");
    }
}

#[test]
fn a_bad_provider_from_the_environment_names_the_variable() {
    let mut cmd = flux();
    cmd.env("FLUX_PROVIDER", "bogus")
        .arg("file")
        .arg(fixture("beckett.wav"));
    let out = run(cmd, None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("FLUX_PROVIDER"), "{}", stderr(&out));
    assert!(stderr(&out).contains("deepgram"), "{}", stderr(&out));
    // --provider wins over the environment.
    let serve = Serve::start(&[]);
    let mut cmd = file_cmd(&serve, &fixture("beckett.wav"), &["--provider", "deepgram"]);
    cmd.env("FLUX_PROVIDER", "bogus");
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn batch_errors_name_the_file_once_and_repeated_files_get_distinct_labels() {
    let serve = Serve::start(&[]);
    let wav = fixture("beckett.wav");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wav");
    let mut cmd = file_cmd(&serve, &wav, &["--text"]);
    cmd.arg(&missing);
    let out = run(cmd, None);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("missing.wav") && l.contains("error"))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(line.matches("missing.wav").count(), 1, "{line}");

    let mut cmd = file_cmd(&serve, &wav, &["--jsonl"]);
    cmd.arg(&wav);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let files: BTreeSet<String> = jsonl(&out)
        .iter()
        .map(|e| e["file"].as_str().unwrap().to_string())
        .collect();
    let name = wav.display().to_string();
    assert_eq!(
        files,
        BTreeSet::from([format!("{name}#1"), format!("{name}#2")])
    );
}

#[test]
fn duration_caps_a_capture_from_stdin() {
    let serve = Serve::start(&[]);
    let (mono, rate) = read_wav_mono(&fixture("beckett.wav"));
    let pcm: Vec<u8> = mono
        .iter()
        .flat_map(|&x| ((x * 32767.0).round() as i16).to_le_bytes())
        .collect();
    let mut cmd = flux();
    cmd.args(["listen", "--stdin", "--rate", &rate.to_string()])
        .args([
            "--url",
            &serve.url,
            "--fast",
            "--jsonl",
            "--duration",
            "2.5",
        ]);
    let out = run(cmd, Some(&pcm));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let summary = jsonl(&out).pop().unwrap();
    assert_eq!(summary["input_seconds"].as_f64().unwrap(), 2.5, "{summary}");
}

// ---- polish: docs/jsonl.md documents everything flux writes ------------------------------

const JSONL_DOC: &str = include_str!("../../docs/jsonl.md");

/// Whether docs/jsonl.md mentions `name` as a field or value: `` `name` `` or `"name":`.
fn documented(name: &str) -> bool {
    JSONL_DOC.contains(&format!("`{name}`")) || JSONL_DOC.contains(&format!("\"{name}\":"))
}

/// Every key of a client event, nested objects included (`checks[].wer`, `diff.got`, ...).
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// Warning codes in the source: `warn("code", ...)` and `code: "code"` in a Warning.
fn warning_codes_in_source() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // The emulator's warnings are server messages, documented in serve.md.
                if !path.ends_with("serve") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for marker in ["warn(", "Warning {"] {
                for (i, _) in code.match_indices(marker) {
                    let rest = code[i + marker.len()..].trim_start();
                    let rest = rest.strip_prefix("code:").map_or(rest, str::trim_start);
                    if let Some(literal) = rest.strip_prefix('"')
                        && let Some(end) = literal.find('"')
                        && literal[..end]
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_')
                    {
                        codes.insert(literal[..end].to_string());
                    }
                }
            }
        }
    }
    codes
}

#[test]
fn every_client_record_type_field_and_warning_code_is_documented() {
    let wav = fixture("beckett.wav");
    let dir = tempfile::tempdir().unwrap();
    let mut outputs: Vec<Output> = Vec::new();

    // Reconnects, a malformed message, and every assertion kind (paced, for latency).
    let serve = Serve::start(&[
        "--fault",
        "drop:at=2.5,conn=1",
        "--fault",
        "malformed:at=1.0,conn=2",
    ]);
    let mut cmd = flux();
    cmd.arg("file").arg(&wav).args([
        "--url",
        &serve.url,
        "--pace",
        "8",
        "--jsonl",
        "--expect-text",
        "not what was said",
        "--expect-turns",
        "4",
        "--max-eot-latency-ms",
        "1",
    ]);
    outputs.push(run(cmd, None));
    // Assertions that could not run.
    let mut cmd = flux();
    cmd.arg("file").arg(&wav).args([
        "--url",
        "ws://127.0.0.1:9",
        "--fast",
        "--jsonl",
        "--expect-turns",
        "1",
    ]);
    outputs.push(run(cmd, None));
    // Cloudflare (no ForceEndTurn, no Configure) driven by --control, including a timed line
    // that never comes due; and a --save-audio file that cannot be written.
    let control = dir.path().join("control.jsonl");
    std::fs::write(
        &control,
        "{\"type\":\"Configure\",\"thresholds\":{\"eot_threshold\":0.8}}\n\
         {\"type\":\"ForceEndTurn\"}\n\
         {\"type\":\"ForceEndTurn\",\"at\":9999}\n",
    )
    .unwrap();
    let serve = Serve::start(&[]);
    let mut cmd = flux();
    cmd.arg("file")
        .arg(&wav)
        .args([
            "--provider",
            "cloudflare",
            "--url",
            &serve.url,
            // Paced, so the control lines surely arrive while the stream runs.
            "--pace",
            "4",
            "--jsonl",
        ])
        .arg("--control")
        .arg(&control)
        .args(["--save-audio", "/dev/full"]);
    outputs.push(run(cmd, None));
    // Raw stdin ending in half a sample; and a batch, whose lines carry `file`.
    let mut cmd = flux();
    cmd.args([
        "listen", "--stdin", "--rate", "16000", "--url", &serve.url, "--fast", "--jsonl",
    ]);
    outputs.push(run(cmd, Some(&[0u8; 16001])));
    let mut cmd = file_cmd(&serve, &wav, &["--jsonl"]);
    cmd.arg(dir.path().join("missing.wav"));
    outputs.push(run(cmd, None));

    let mut types = BTreeSet::new();
    let mut fields = BTreeSet::new();
    let mut warnings = BTreeSet::new();
    for out in &outputs {
        for event in jsonl(out) {
            let kind = event["type"].as_str().unwrap().to_string();
            if !kind.starts_with("flux.") {
                continue;
            }
            if kind == "flux.warning" {
                warnings.insert(event["code"].as_str().unwrap().to_string());
            }
            keys(&event, &mut fields);
            types.insert(kind);
        }
    }
    for want in [
        "flux.connected",
        "flux.reconnecting",
        "flux.reconnected",
        "flux.audio_finished",
        "flux.warning",
        "flux.assertions",
        "flux.summary",
    ] {
        assert!(
            types.contains(want),
            "the runs did not produce {want}: {types:?}"
        );
    }
    for want in [
        "unparsable_server_message",
        "configure_unsupported",
        "force_end_turn_unsupported",
        "control_not_applied",
        "save_audio_failed",
        "input_note",
    ] {
        assert!(
            warnings.contains(want),
            "the runs did not produce {want}: {warnings:?}"
        );
    }
    let undocumented: Vec<String> = types
        .iter()
        .chain(&fields)
        .chain(&warnings)
        .chain(&warning_codes_in_source())
        .filter(|name| !documented(name))
        .cloned()
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/jsonl.md does not mention {undocumented:?}"
    );
}
