//! End-to-end tests of `flux file` and `flux listen --stdin`: the built binary against a
//! `flux serve` started by each test, over loopback sockets.

use crate::common;

use common::*;
use serde_json::Value;
use std::path::Path;

/// Turns beckett.wav yields at default thresholds in flux serve (checked by the serve tests).
fn beckett_turns(serve: &Serve, extra: &[&str]) -> Vec<String> {
    let out = run(file_cmd(serve, &fixture("beckett.wav"), extra), None);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

fn script(dir: &Path, lines: &[&str]) -> String {
    let p = dir.join("script.txt");
    std::fs::write(&p, lines.join("\n")).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn text_output_is_one_line_per_finished_turn_from_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        "first turn words here",
        "second turn",
        "third",
        "fourth",
        "fifth",
        "sixth",
    ];
    let serve = Serve::start(&["--script", &script(dir.path(), &lines)]);
    let got = beckett_turns(&serve, &["--text"]);
    assert!(!got.is_empty(), "no turns");
    for (i, line) in got.iter().enumerate() {
        assert_eq!(line, lines[i], "turn {i}");
    }
}

#[test]
fn jsonl_parses_line_by_line_with_client_events_around_server_messages() {
    let serve = Serve::start(&[]);
    let out = run(
        file_cmd(&serve, &fixture("beckett.wav"), &["--jsonl"]),
        None,
    );
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let events = jsonl(&out);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "flux.connected");
    assert_eq!(types[1], "Connected");
    assert_eq!(*types.last().unwrap(), "flux.summary");
    let connected = &events[0];
    assert!(connected["url"].as_str().unwrap().starts_with(&serve.url));
    assert_eq!(connected["request_id"], events[1]["request_id"]);
    assert!(types.contains(&"flux.audio_finished"));
    // Every server message carries its sequence number, in order, from 0.
    let seqs: Vec<u64> = events
        .iter()
        .filter(|e| !e["type"].as_str().unwrap().starts_with("flux."))
        .map(|e| e["sequence_id"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let ends = events.iter().filter(|e| e["event"] == "EndOfTurn").count() as u64;
    let summary = events.last().unwrap();
    assert!(ends > 0);
    assert_eq!(summary["turns"], ends);
    assert_eq!(summary["exit_code"], 0);
    // Frames: 9.96 s at 16 kHz in 80 ms frames, the last one partial.
    let audio = summary["input_seconds"].as_f64().unwrap();
    assert!((audio - 9.96).abs() < 0.01, "input_seconds {audio}");
    assert_eq!(summary["frames_sent"], (audio / 0.08).ceil() as u64);
    // The latency flux added: one sample per frame of audio sent and per server message.
    let added = &summary["added_latency"];
    assert_eq!(added["send"]["count"], summary["frames_sent"]);
    assert_eq!(added["output"]["count"], seqs.len() as u64);
    for path in ["send", "output"] {
        let ms = |q: &str| added[path][q].as_f64().unwrap();
        let (p50, p99, max) = (ms("p50_ms"), ms("p99_ms"), ms("max_ms"));
        assert!(
            0.0 <= p50 && p50 <= p99 && p99 <= max,
            "{path}: {}",
            added[path]
        );
    }
}

#[test]
fn every_wav_format_streams_the_same_audio_duration() {
    let (mono, rate) = read_wav_mono(&fixture("beckett.wav"));
    assert_eq!(rate, 16000);
    let dir = tempfile::tempdir().unwrap();
    let expected_bytes = mono.len() as u64 * 2;
    let cases: &[(u32, u16, u16, bool)] = &[
        (16000, 1, 8, false),
        (16000, 1, 16, false),
        (16000, 2, 24, false),
        (16000, 1, 32, false),
        (16000, 2, 32, true),
        (48000, 2, 16, false),
        (44100, 1, 16, false),
        (8000, 1, 16, false),
        (22050, 3, 16, false),
    ];
    for &(r, ch, bits, float) in cases {
        let input = if r == 16000 {
            mono.clone()
        } else {
            resample_linear(&mono, 16000, r)
        };
        let path = dir.path().join(format!("in_{r}_{ch}_{bits}_{float}.wav"));
        write_wav(&path, &input, r, ch, bits, float);
        let serve = Serve::start(&[]);
        let out = run(file_cmd(&serve, &path, &["--text"]), None);
        assert_eq!(code(&out), 0, "{path:?}: {}", stderr(&out));
        assert!(!stdout(&out).trim().is_empty(), "{path:?}: no turns");
        // Same duration after resampling: within one sample of the exact length.
        let want = (input.len() as u64 * 16000).div_ceil(r as u64) * 2;
        let got = serve.audio_bytes();
        assert!(
            got.abs_diff(want) <= 2,
            "{path:?}: got {got} bytes, want {want}"
        );
        if r == 16000 {
            assert_eq!(got, expected_bytes);
        }
        // Every frame is 80 ms except the last.
        let sizes: Vec<u64> = serve
            .log_kind("audio")
            .iter()
            .map(|l| l["bytes"].as_u64().unwrap())
            .collect();
        assert!(
            sizes[..sizes.len() - 1].iter().all(|&s| s == 2560),
            "{path:?}"
        );
        assert!(*sizes.last().unwrap() > 0 && *sizes.last().unwrap() <= 2560);
    }
}

#[test]
fn stdin_pcm_in_both_sample_formats() {
    let (mono, _) = read_wav_mono(&fixture("beckett.wav"));
    let s16: Vec<u8> = mono
        .iter()
        .flat_map(|s| ((s * 32767.0).round() as i16).to_le_bytes())
        .collect();
    // Stereo f32 at 48 kHz: exercises downmix and resampling from stdin.
    let up = resample_linear(&mono, 16000, 48000);
    let f32le: Vec<u8> = up
        .iter()
        .flat_map(|s| [s.to_le_bytes(), s.to_le_bytes()].concat())
        .collect();
    for (data, args, want_bytes) in [
        (s16.clone(), vec!["--rate", "16000"], mono.len() as u64 * 2),
        (
            f32le,
            vec![
                "--rate",
                "48000",
                "--channels",
                "2",
                "--sample-format",
                "f32le",
            ],
            (up.len() as u64 * 16000).div_ceil(48000) * 2,
        ),
    ] {
        let serve = Serve::start(&[]);
        let mut cmd = flux();
        cmd.args(["listen", "--stdin", "--url", &serve.url, "--fast", "--text"])
            .args(&args);
        let out = run(cmd, Some(&data));
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert!(!stdout(&out).trim().is_empty(), "{args:?}: no turns");
        assert!(
            serve.audio_bytes().abs_diff(want_bytes) <= 2,
            "{args:?}: {} vs {want_bytes}",
            serve.audio_bytes()
        );
    }
    // A trailing partial sample is reported and never sent.
    let serve = Serve::start(&[]);
    let mut odd = s16.clone();
    odd.push(7);
    let mut cmd = flux();
    cmd.args([
        "listen", "--stdin", "--rate", "16000", "--url", &serve.url, "--fast", "--text",
    ]);
    let out = run(cmd, Some(&odd));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("1 byte(s)"), "{}", stderr(&out));
    assert_eq!(serve.audio_bytes(), s16.len() as u64);
}

#[test]
fn every_parameter_reaches_the_query_string() {
    let serve = Serve::start(&[]);
    let out = run(
        file_cmd(
            &serve,
            &fixture("beckett.wav"),
            &[
                "--model",
                "flux-general-multi",
                "--sample-rate",
                "24000",
                "--eot-threshold",
                "0.8",
                "--eager-eot-threshold",
                "0.5",
                "--eot-timeout-ms",
                "7000",
                "--keyterm",
                "Beckett",
                "--keyterm",
                "customer service",
                "--language-hint",
                "en",
                "--language-hint",
                "fr",
                "--tag",
                "ci",
                "--tag",
                "run 2",
                "--numerals",
                "--profanity-filter",
                "--redact",
                "numbers",
                "--redact",
                "aggressive_numbers",
                "--mip-opt-out",
                "--text",
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let hs = &serve.log_kind("handshake")[0];
    assert_eq!(hs["path"], "/v2/listen");
    assert_eq!(
        hs["query"],
        "model=flux-general-multi&encoding=linear16&sample_rate=24000&eot_threshold=0.8&\
         eager_eot_threshold=0.5&eot_timeout_ms=7000&keyterm=Beckett&keyterm=customer+service&\
         language_hint=en&language_hint=fr&numerals=true&profanity_filter=true&redact=numbers&\
         redact=aggressive_numbers&mip_opt_out=true&tag=ci&tag=run+2"
    );
    // 24 kHz frames of 80 ms.
    assert_eq!(serve.log_kind("audio")[0]["bytes"], 3840);
}

#[test]
fn end_of_stream_is_flush_force_end_turn_close_stream_then_server_close() {
    let serve = Serve::start(&[]);
    let out = run(
        file_cmd(&serve, &fixture("beckett.wav"), &["--jsonl"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = serve.log_lines();
    let kinds: Vec<String> = log
        .iter()
        .map(|l| match l["kind"].as_str().unwrap() {
            "control" => l["message"]["type"].as_str().unwrap().to_string(),
            k => k.to_string(),
        })
        .collect();
    let first_control = kinds
        .iter()
        .position(|k| k != "handshake" && k != "audio")
        .unwrap();
    assert!(kinds[1..first_control].iter().all(|k| k == "audio"));
    assert_eq!(
        &kinds[first_control..],
        ["ForceEndTurn", "CloseStream", "close"]
    );
    // The server closed after CloseStream without a status code, and that was success.
    let close = log.last().unwrap();
    assert_eq!(close["by"], "server");
    let events = jsonl(&out);
    let last_turn = events
        .iter()
        .rev()
        .find(|e| e["event"] == "EndOfTurn")
        .unwrap();
    assert!(["manual", "model"].contains(&last_turn["trigger"].as_str().unwrap()));
}

#[test]
fn without_force_end_turn_silence_ends_the_last_turn() {
    // A file that ends mid-speech: the last turn can only end if flux keeps audio flowing.
    let (mono, _) = read_wav_mono(&fixture("beckett.wav"));
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.wav");
    let words_end = find_speech_end(&mono);
    write_wav(&cut, &mono[..words_end], 16000, 1, 16, false);
    let serve = Serve::start(&[]);
    let saved = dir.path().join("sent.wav");
    let out = run(
        file_cmd(
            &serve,
            &cut,
            &[
                "--jsonl",
                "--no-force-end-turn",
                "--save-audio",
                saved.to_str().unwrap(),
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let controls: Vec<Value> = serve.log_kind("control");
    assert_eq!(controls.len(), 1);
    assert_eq!(controls[0]["message"]["type"], "CloseStream");
    assert!(
        serve.audio_bytes() > words_end as u64 * 2,
        "no silence was added"
    );
    // --save-audio holds exactly what was sent, the added silence included.
    let (saved_samples, _) = read_wav_mono(&saved);
    assert_eq!(saved_samples.len() as u64 * 2, serve.audio_bytes());
    let events = jsonl(&out);
    // Every turn that started also ended (CloseStream may still add an Update after it).
    let count = |event: &str| events.iter().filter(|e| e["event"] == event).count();
    assert!(count("StartOfTurn") > 0);
    assert_eq!(
        count("StartOfTurn"),
        count("EndOfTurn"),
        "last turn was not finished"
    );
    assert!(!events.iter().any(|e| e["type"] == "flux.unconfirmed_turn"));
}

/// Index just after the loudest part of the file's last second of speech: cuts mid-word.
fn find_speech_end(x: &[f32]) -> usize {
    let hop = 160;
    let loud = |i: usize| x[i..i + hop].iter().map(|s| s * s).sum::<f32>() / hop as f32 > 1e-3;
    let mut i = x.len() - hop;
    while i > hop && !loud(i) {
        i -= hop;
    }
    i - 4 * hop
}

#[test]
fn closed_stdout_ends_quietly() {
    let serve = Serve::start(&[]);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "{BIN} file {} --url {} --fast --jsonl | head -1",
        fixture("beckett.wav").display(),
        serve.url
    ));
    let out = run(cmd, None);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out).lines().count(), 1);
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

#[test]
fn handshake_failures_map_to_exit_codes_with_the_servers_explanation() {
    let beckett = fixture("beckett.wav");
    // 401: key required, none sent / wrong one sent.
    let serve = Serve::start(&["--api-key", "right-key"]);
    let out = run(file_cmd(&serve, &beckett, &[]), None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let mut cmd = file_cmd(&serve, &beckett, &["--text"]);
    cmd.env("DEEPGRAM_API_KEY", "wrong-key");
    let out = run(cmd, None);
    assert_eq!(code(&out), 3);
    let mut cmd = file_cmd(&serve, &beckett, &["--text"]);
    cmd.env("DEEPGRAM_API_KEY", "right-key");
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let hs = &serve.log_kind("handshake")[2];
    assert_eq!(hs["headers"]["authorization"], "Token ***");

    for (status, exit, needle) in [
        ("402", 3, "ASR_PAYMENT_REQUIRED"),
        ("403", 3, "INSUFFICIENT_PERMISSIONS"),
        ("400", 2, "INVALID_QUERY_PARAMETER"),
        ("429", 4, "TOO_MANY_REQUESTS"),
        ("503", 6, "SERVICE_UNAVAILABLE"),
    ] {
        let body = format!(r#"{{"err_code":"{needle}","err_msg":"explained here"}}"#);
        let serve = Serve::start(&["--fault", &format!("reject:status={status},body={body}")]);
        // Without retries: each status maps straight to its exit code (retries: tests/resilience.rs).
        let out = run(file_cmd(&serve, &beckett, &["--max-reconnects", "0"]), None);
        let err = stderr(&out);
        assert_eq!(code(&out), exit, "{status}: {err}");
        assert!(
            err.contains(status) && err.contains(needle) && err.contains("explained here"),
            "{err}"
        );
        assert!(err.contains("request id"), "{err}");
        assert!(stdout(&out).is_empty());
    }

    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = flux();
    cmd.arg("file")
        .arg(&beckett)
        .args(["--url", &format!("ws://127.0.0.1:{port}"), "--fast"]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn a_fatal_server_error_exits_6_keeping_what_was_received() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[
        "--script",
        &script(
            dir.path(),
            &["one", "two", "three", "four", "five", "six", "seven"],
        ),
        "--fault",
        "error:at=6.0,code=AUDIO_DECODE_FAILED,close=1008,description=boom",
    ]);
    let out = run(file_cmd(&serve, &fixture("beckett.wav"), &["--text"]), None);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("AUDIO_DECODE_FAILED: boom"),
        "{}",
        stderr(&out)
    );
    let text = stdout(&out);
    let got: Vec<&str> = text.lines().collect();
    assert!(!got.is_empty(), "turns before the error were lost");
    assert_eq!(got[0], "one");
}

#[test]
fn without_reconnects_a_dropped_connection_reports_the_open_turn_as_unconfirmed_and_exits_4() {
    let serve = Serve::start(&["--fault", "drop:at=2.0"]);
    let out = run(
        file_cmd(
            &serve,
            &fixture("beckett.wav"),
            &["--jsonl", "--max-reconnects", "0"],
        ),
        None,
    );
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let events = jsonl(&out);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "flux.summary");
    assert_eq!(last["exit_code"], 4);
    if events.iter().any(|e| e["event"] == "StartOfTurn") {
        let u = events
            .iter()
            .find(|e| e["type"] == "flux.unconfirmed_turn")
            .expect("open turn lost");
        assert_eq!(u["confirmed"], false);
        assert_eq!(u["reason"], "connection_lost");
    }
}

#[test]
fn bad_input_exits_5_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[]);
    let not_wav = dir.path().join("notes.wav");
    std::fs::write(&not_wav, b"ID3\x03\x00 this is an mp3, honest").unwrap();
    let empty = dir.path().join("empty.wav");
    write_wav(&empty, &[], 16000, 1, 16, false);
    let missing = dir.path().join("missing.wav");
    for path in [&not_wav, &empty, &missing] {
        let out = run(file_cmd(&serve, path, &[]), None);
        assert_eq!(code(&out), 5, "{path:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(path.to_str().unwrap()),
            "{}",
            stderr(&out)
        );
    }
    // The reason is given once, with the fix after it.
    let out = run(file_cmd(&serve, &missing, &[]), None);
    let err = stderr(&out);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("check the path"), "{err}");
    // Nothing was sent for inputs that could not be opened.
    assert!(serve.log_kind("handshake").is_empty());
}

#[test]
fn a_truncated_wav_streams_its_good_part_then_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(fixture("beckett.wav")).unwrap();
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &full[..full.len() * 3 / 4 + 1]).unwrap();
    let serve = Serve::start(&[]);
    let out = run(file_cmd(&serve, &cut, &["--text"]), None);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));
    assert!(
        !stdout(&out).trim().is_empty(),
        "turns of the good part were lost"
    );
    let sent = serve.audio_bytes();
    let good = ((full.len() * 3 / 4 + 1 - 44) / 2 * 2) as u64;
    assert!(sent.abs_diff(good) <= 2, "sent {sent}, good part {good}");
}

#[test]
fn invalid_parameters_are_refused_before_connecting() {
    let serve = Serve::start(&[]);
    for (args, needle) in [
        (
            vec!["--eager-eot-threshold", "0.8"],
            "--eager-eot-threshold",
        ),
        (vec!["--eot-threshold", "0.3"], "--eot-threshold"),
        (vec!["--eot-timeout-ms", "100"], "--eot-timeout-ms"),
        (vec!["--language-hint", "es"], "flux-general-multi"),
        (vec!["--model", "nova-3"], "--model"),
        (
            vec!["--sample-rate", "22050"],
            "8000, 16000, 24000, 44100, 48000",
        ),
        (vec!["--pace", "0"], "--pace"),
    ] {
        let out = run(file_cmd(&serve, &fixture("beckett.wav"), &args), None);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert!(serve.log_kind("handshake").is_empty());
}

#[test]
fn hosted_deepgram_without_credentials_is_exit_3_and_contacts_nothing() {
    let mut cmd = flux();
    cmd.arg("file").arg(fixture("beckett.wav"));
    let out = run(cmd, None);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("DEEPGRAM_API_KEY"));
}

#[test]
fn api_key_file_is_used_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "sk-canary-4242\n").unwrap();
    let serve = Serve::start(&[
        "--api-key",
        "sk-canary-4242",
        "--fault",
        "error:at=1.0,code=X,close=1008,description=y",
    ]);
    let mut cmd = file_cmd(&serve, &fixture("beckett.wav"), &["--jsonl"]);
    cmd.arg("--api-key-file").arg(&key);
    let out = run(cmd, None);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let everything = format!(
        "{}{}{}",
        stdout(&out),
        stderr(&out),
        std::fs::read_to_string(&serve.log).unwrap()
    );
    assert!(!everything.contains("canary"), "the key leaked");
}

#[test]
fn wav_on_stdin_with_dash() {
    let serve = Serve::start(&[]);
    let data = std::fs::read(fixture("beckett.wav")).unwrap();
    let mut cmd = flux();
    cmd.args(["file", "-", "--url", &serve.url, "--fast", "--text"]);
    let out = run(cmd, Some(&data));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (mono, _) = read_wav_mono(&fixture("beckett.wav"));
    assert_eq!(serve.audio_bytes(), mono.len() as u64 * 2);
}

/// A live source on stdin (`arecord ... | flux listen --stdin`) is not held back by a slow
/// connection: the audio captured while connecting goes as soon as the link is up, instead of
/// the whole stream trailing the speaker by the connect time.
#[test]
fn live_stdin_audio_captured_while_connecting_goes_at_once() {
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::process::Stdio;
    use std::time::Duration;
    let serve = Serve::start(&[]);
    // A loopback proxy that lets the connection through after 800 ms (a slow handshake).
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("ws://{}", proxy.local_addr().unwrap());
    let target = serve.url.trim_start_matches("ws://").to_string();
    std::thread::spawn(move || {
        let (client, _) = proxy.accept().unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let server = TcpStream::connect(&target).unwrap();
        let (mut up_from, mut up_to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_from, &mut up_to);
            let _ = up_to.shutdown(Shutdown::Write);
        });
        let (mut down_from, mut down_to) = (server, client);
        let _ = std::io::copy(&mut down_from, &mut down_to);
        let _ = down_to.shutdown(Shutdown::Write);
    });
    let mut child = flux()
        .args(["listen", "--stdin", "--rate", "16000", "--jsonl"])
        .args(["--url", &proxy_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // 2 s of a quiet tone, written as it would be captured: 80 ms every 80 ms.
    for k in 0..25 {
        let frame: Vec<u8> = (0..1280)
            .flat_map(|i| ((((i + k * 1280) % 40) as i16 - 20) * 50).to_le_bytes())
            .collect();
        stdin.write_all(&frame).unwrap();
        std::thread::sleep(Duration::from_millis(80));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let audio = serve.log_kind("audio");
    assert_eq!(audio.len(), 25, "every frame arrived");
    // The ~10 frames captured during the 800 ms go as soon as the link comes up; paced from
    // the link instead, they would come 80 ms apart, the tenth 720 ms after the first. The
    // bound leaves room for a busy machine (two cores shared with the rest of the suite).
    let t = |a: &Value| a["t"].as_f64().unwrap();
    let tenth_after_first = t(&audio[9]) - t(&audio[0]);
    assert!(
        tenth_after_first < 0.4,
        "the tenth frame went {tenth_after_first:.3}s after the first: {audio:?}"
    );
}

/// A live source whose clock runs slow (sound cards differ from the system clock) is
/// followed, not padded: its frames keep going out as they arrive, and no silence is put in
/// their place once the drift grows past the fill grace (250 ms).
#[test]
fn a_slow_live_source_is_followed_not_padded_with_silence() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::Duration;
    let serve = Serve::start(&[]);
    let mut child = flux()
        .args(["listen", "--stdin", "--rate", "16000", "--jsonl"])
        .args(["--url", &serve.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // 80 ms of audio every 90 ms: the source falls 450 ms behind the wall clock in 4 s.
    for k in 0..45 {
        let frame: Vec<u8> = (0..1280)
            .flat_map(|i| ((((i + k * 1280) % 40) as i16 - 20) * 50).to_le_bytes())
            .collect();
        stdin.write_all(&frame).unwrap();
        std::thread::sleep(Duration::from_millis(90));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let events = jsonl(&out);
    let summary = events.last().unwrap();
    assert_eq!(summary["filled_seconds"], 0.0, "{summary}");
    assert_eq!(summary["frames_sent"], 45, "{summary}");
}
