//! Hostile input: corrupt audio, absurd formats, and servers that misbehave in ways
//! `flux serve` cannot. Each must end in a clear message or be skipped with a warning: never
//! a panic, never unbounded memory.
//!
//! The first test runs the fuzz targets' bodies (fuzz/harness.rs) over a few hundred inputs
//! derived from the seed corpus, so CI checks what `scripts/fuzz.sh` fuzzes without needing
//! cargo-fuzz or a nightly toolchain.

use crate::common;

#[path = "../../fuzz/harness.rs"]
mod harness;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

// ---- the fuzz harness, corpus-free --------------------------------------------------

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutations of `seed` of the kinds that break parsers: flipped bits, extreme 32-bit fields
/// (sizes, rates, counts), cut or stretched lengths, spliced bytes.
fn mutants(seed: &[u8], rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    const EXTREMES: [u32; 8] = [
        0,
        1,
        2,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
        65,
    ];
    (0..n)
        .map(|_| {
            let mut v = seed.to_vec();
            for _ in 0..1 + rng.below(4) {
                match rng.below(5) {
                    0 if !v.is_empty() => {
                        let i = rng.below(v.len());
                        v[i] ^= 1 << rng.below(8);
                    }
                    1 if v.len() >= 4 => {
                        let i = rng.below(v.len() - 3);
                        let x = EXTREMES[rng.below(EXTREMES.len())];
                        v[i..i + 4].copy_from_slice(&x.to_le_bytes());
                    }
                    2 => v.truncate(rng.below(v.len() + 1)),
                    3 => {
                        let extra = rng.below(64);
                        v.extend((0..extra).map(|_| rng.next() as u8));
                    }
                    _ if !v.is_empty() => {
                        let i = rng.below(v.len());
                        let byte = [0u8, 0xff, b'[', b'{', b'"', 0x80][rng.below(6)];
                        v.insert(i, byte);
                    }
                    _ => {}
                }
            }
            v
        })
        .collect()
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn smoke(target: &str, per_seed: usize, body: fn(&[u8])) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut inputs = seeds(target);
    assert!(!inputs.is_empty());
    let generated: Vec<Vec<u8>> = inputs
        .iter()
        .flat_map(|s| mutants(s, &mut rng, per_seed))
        .collect();
    inputs.extend(generated);
    inputs.push(Vec::new());
    for input in &inputs {
        body(input);
    }
}

#[test]
fn fuzz_targets_survive_mutated_seeds() {
    smoke("wav", 150, harness::wav);
    smoke("server_message", 150, harness::server_message);
    // Each raw input builds a resampler; fewer of them keep the debug build quick.
    smoke("raw_pcm", 60, harness::raw_pcm);
}

// ---- audio through the binary -------------------------------------------------------

/// Runs `cmd` and reports its peak resident memory (VmHWM), sampled from /proc while it
/// runs. A parser that trusted a declared size would show here as hundreds of MB.
fn run_measured(mut cmd: Command, stdin: Option<Vec<u8>>) -> (Output, u64) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = w.write_all(&data);
        });
    }
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let reader = {
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let t = std::thread::spawn(move || {
                let _ = err.read_to_end(&mut e);
                e
            });
            let _ = out.read_to_end(&mut o);
            (o, t.join().unwrap())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "flux did not finish");
        std::thread::sleep(Duration::from_millis(5));
    };
    let (stdout, stderr) = reader.join().unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        peak_kb / 1024,
    )
}

/// Memory flux may use on hostile input (a normal run takes a few tens of MB).
const MAX_MB: u64 = 200;

fn assert_calm(label: &str, out: &Output, peak_mb: u64) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{label}: {err}");
    assert!(peak_mb < MAX_MB, "{label}: {peak_mb} MB");
}

/// A canonical 44-byte WAV header followed by `data`.
fn wav(format: u16, channels: u16, rate: u32, bits: u16, data_len: u32, data: &[u8]) -> Vec<u8> {
    let block = channels.wrapping_mul(bits / 8);
    let mut v = Vec::new();
    v.extend(b"RIFF");
    v.extend(36u32.wrapping_add(data_len).to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(16u32.to_le_bytes());
    v.extend(format.to_le_bytes());
    v.extend(channels.to_le_bytes());
    v.extend(rate.to_le_bytes());
    v.extend(rate.wrapping_mul(u32::from(block)).to_le_bytes());
    v.extend(block.to_le_bytes());
    v.extend(bits.to_le_bytes());
    v.extend(b"data");
    v.extend(data_len.to_le_bytes());
    v.extend(data);
    v
}

fn tone_i16(samples: usize) -> Vec<u8> {
    (0..samples)
        .flat_map(|i| (((i as f32 * 0.05).sin() * 8000.0) as i16).to_le_bytes())
        .collect()
}

#[test]
fn corrupt_wav_headers_get_clear_errors_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[]);
    let audio = tone_i16(16000);
    let cases: Vec<(&str, Vec<u8>, i32, &str)> = vec![
        // Declares 2 GiB of data, holds one second: the good part is sent, then the error.
        (
            "huge declared size",
            wav(1, 1, 16000, 16, 0x7ffe_0000, &audio),
            5,
            "truncated",
        ),
        // What `ffmpeg -f wav -` writes to a pipe: read until the input ends (issue 13).
        ("no length", wav(1, 1, 16000, 16, u32::MAX, &audio), 0, ""),
        ("rate 0", wav(1, 1, 0, 16, 32000, &audio), 5, "sample rate"),
        ("rate 1", wav(1, 1, 1, 16, 32000, &audio), 5, "sample rate"),
        (
            "rate 4 GHz",
            wav(1, 1, u32::MAX, 16, 32000, &audio),
            5,
            "header",
        ),
        (
            "0 channels",
            wav(1, 0, 16000, 16, 32000, &audio),
            5,
            "channels",
        ),
        (
            "65535 channels",
            wav(1, u16::MAX, 16000, 16, 32000, &audio),
            5,
            "channels",
        ),
        ("12-bit", wav(1, 1, 16000, 12, 32000, &audio), 5, "header"),
        (
            "64-bit float",
            wav(3, 1, 16000, 64, 32000, &audio),
            5,
            "64-bit",
        ),
        ("header only", wav(1, 1, 16000, 16, 32000, &[]), 5, ""),
    ];
    for (label, bytes, exit, needle) in cases {
        let path = dir.path().join(format!("{}.wav", label.replace(' ', "_")));
        std::fs::write(&path, &bytes).unwrap();
        for from_stdin in [false, true] {
            let mut cmd = flux();
            cmd.arg("file")
                .arg(if from_stdin { Path::new("-") } else { &path })
                .args(["--url", &serve.url, "--fast", "--text"]);
            let (out, peak) = run_measured(cmd, from_stdin.then(|| bytes.clone()));
            let err = stderr(&out);
            assert_eq!(code(&out), exit, "{label} (stdin {from_stdin}): {err}");
            assert!(err.to_lowercase().contains(needle), "{label}: {err}");
            assert_calm(label, &out, peak);
            if exit == 5 && needle == "truncated" {
                // It streamed a second of audio: long enough to be measured.
                assert!(peak > 0, "{label}: no memory reading");
            }
        }
    }
}

/// Headers that are damaged or in a container flux does not read: each message names the
/// field or container that is the problem and gives a fix that fits it (not the MP3 or
/// 16-bit-conversion advice of other errors, no nested parentheses), from a file and on stdin.
#[test]
fn wav_header_errors_name_the_problem_and_a_fix_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[]);
    let audio = tone_i16(16000);
    let mut rf64 = b"RF64\xff\xff\xff\xffWAVEds64\x1c\0\0\0".to_vec();
    rf64.extend([0u8; 28]);
    rf64.extend(&wav(1, 1, 16000, 16, 32000, &audio)[12..]);
    // Sony Wave64: GUID chunk ids and 64-bit sizes.
    let mut w64 = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\0\0".to_vec();
    w64.extend(((40 + 32000) as u64).to_le_bytes());
    w64.extend(&audio);
    // Stereo 16-bit whose block align says 2 bytes (the channels forgotten).
    let mut align = wav(1, 2, 16000, 16, 32000, &audio);
    align[28..32].copy_from_slice(&32000u32.to_le_bytes());
    align[32..34].copy_from_slice(&2u16.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "zero channels",
            wav(1, 0, 16000, 16, 32000, &audio),
            &[
                "declares zero channels",
                "flux listen --stdin --rate R --channels C",
            ],
        ),
        (
            "0 Hz",
            wav(1, 1, 0, 16, 32000, &audio),
            &[
                "sample rate of 0 Hz",
                "flux listen --stdin --rate R --channels C",
            ],
        ),
        ("RF64", rf64, &["RF64", "-f wav - | flux file -"]),
        ("W64", w64, &["Wave64", "-f wav - | flux file -"]),
        (
            "block align",
            align,
            &[
                "block align is 2 bytes",
                "2 channel(s) of 16-bit samples take 4",
                "fixed.wav",
            ],
        ),
    ];
    for (label, bytes, needles) in cases {
        let path = dir.path().join(format!("{}.wav", label.replace(' ', "_")));
        std::fs::write(&path, &bytes).unwrap();
        for from_stdin in [false, true] {
            let input = if from_stdin { Path::new("-") } else { &path };
            let out = run(
                file_cmd(&serve, input, &["--text"]),
                from_stdin.then_some(&bytes[..]),
            );
            let err = stderr(&out);
            assert_eq!(code(&out), 5, "{label} (stdin {from_stdin}): {err}");
            for needle in needles {
                assert!(err.contains(needle), "{label} (stdin {from_stdin}): {err}");
            }
            // The temporary directory's random name can hold "mp3" (`/tmp/.tmp3…`).
            let advice = err.replace(&path.display().to_string(), "FILE");
            for unfit in ["mp3", "((", "-b 16 -e signed-integer", "(e.g."] {
                assert!(!advice.contains(unfit), "{label}: {unfit:?} in {err}");
            }
        }
    }
    assert_eq!(serve.audio_bytes(), 0, "nothing was sent");
}

/// A data size one byte past the samples (a stray pad byte counted as data), which sox
/// reads: flux reads it too, every sample, from a file and on stdin.
#[test]
fn a_stray_odd_byte_after_the_samples_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[]);
    let mut audio = tone_i16(16000);
    audio.push(0);
    let bytes = wav(1, 1, 16000, 16, 32001, &audio);
    let path = dir.path().join("odd.wav");
    std::fs::write(&path, &bytes).unwrap();
    for from_stdin in [false, true] {
        let input = if from_stdin { Path::new("-") } else { &path };
        let out = run(
            file_cmd(&serve, input, &["--text"]),
            from_stdin.then_some(&bytes[..]),
        );
        assert_eq!(code(&out), 0, "stdin {from_stdin}: {}", stderr(&out));
    }
    // One second at 16 kHz, twice: the stray byte is not sent.
    assert_eq!(serve.audio_bytes(), 2 * 32000);
}

/// `flux file /tmp`: the error says it is a directory and how to name files in it, before
/// anything is sent.
#[test]
fn a_directory_given_as_a_file_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[]);
    let out = run(file_cmd(&serve, dir.path(), &["--text"]), None);
    let err = stderr(&out);
    assert_eq!(code(&out), 5, "{err}");
    let name = dir.path().display().to_string();
    assert!(err.contains(&format!("{name} is a directory")), "{err}");
    assert!(err.contains(&format!("flux file {name}/*.wav")), "{err}");
    assert!(!err.contains("os error"), "{err}");
    assert_eq!(serve.log_kind("handshake").len(), 0, "no connection");
}

#[test]
fn float_samples_that_are_not_numbers_are_sent_as_valid_audio() {
    let serve = Serve::start(&[]);
    // One second of f32: NaN, ±inf, ±1e38, f32::MAX and ordinary values (the 1e38 case once
    // made the resampler panic).
    let values = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e38,
        -1e38,
        f32::MAX,
        0.5,
        -0.25,
    ];
    let floats: Vec<u8> = values
        .iter()
        .cycle()
        .take(22050 * 2)
        .flat_map(|x| x.to_le_bytes())
        .collect();
    // A float WAV at a rate that needs resampling, stereo.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.wav");
    std::fs::write(&path, wav(3, 2, 22050, 32, floats.len() as u32, &floats)).unwrap();
    let (out, peak) = run_measured(file_cmd(&serve, &path, &["--text"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_calm("float WAV", &out, peak);
    // The same on stdin, as f32le at 48 kHz, mono.
    let mut cmd = flux();
    cmd.args([
        "listen",
        "--stdin",
        "--rate",
        "48000",
        "--sample-format",
        "f32le",
    ])
    .args(["--url", &serve.url, "--fast", "--text"]);
    let (out, peak) = run_measured(cmd, Some(floats));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_calm("f32 stdin", &out, peak);
    // 22050 frames at 22.05 kHz, then 44100 samples at 48 kHz: 1.0 s + 0.91875 s at 16 kHz.
    assert_eq!(serve.audio_bytes(), (16000 + 14700) * 2);
}

#[test]
fn odd_byte_counts_and_absurd_formats_on_stdin() {
    let serve = Serve::start(&[]);
    let stdin = |args: &[&str], data: Vec<u8>| {
        let mut cmd = flux();
        cmd.args(["listen", "--stdin", "--url", &serve.url, "--fast", "--text"])
            .args(args);
        run_measured(cmd, Some(data))
    };
    // 16001 bytes of s16 mono: one byte too many.
    let (out, peak) = stdin(&["--rate", "16000"], vec![0; 16001]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("1 byte(s)"), "{}", stderr(&out));
    assert_calm("odd bytes", &out, peak);
    // Stereo f32 (8-byte frames), 7 bytes short of the last frame.
    let (out, peak) = stdin(
        &[
            "--rate",
            "44100",
            "--channels",
            "2",
            "--sample-format",
            "f32le",
        ],
        vec![0; 8 * 1000 + 1],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("1 byte(s)"), "{}", stderr(&out));
    assert_calm("odd frame", &out, peak);
    // Less than one sample: nothing to send.
    let (out, _) = stdin(&["--rate", "16000"], vec![0]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    // Absurd declared formats are usage errors, before anything is read or sent.
    let connections = serve.log_kind("handshake").len();
    for args in [
        &["--rate", "0"][..],
        &["--rate", "999"],
        &["--rate", "4000000000"],
        &["--rate", "16000", "--channels", "0"],
        &["--rate", "16000", "--channels", "65"],
    ] {
        let (out, _) = stdin(args, vec![0; 100]);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    assert_eq!(serve.log_kind("handshake").len(), connections);
}

// ---- servers flux serve cannot imitate -----------------------------------------------

/// What the hostile server sends after `Connected`.
#[derive(Clone, Copy)]
enum Abuse {
    /// One text message larger than flux accepts (4 MiB).
    Huge,
    /// A frame header announcing 2^63 bytes, then nothing.
    HugeFrameHeader,
    /// JSON nested far beyond any parser's recursion limit.
    DeepJson,
    /// Binary frames (Flux sends only text).
    Binary,
    /// Thousands of messages of types flux does not know, as fast as the socket takes them.
    UnknownFlood,
}

/// A WebSocket server on a loopback port that greets with `Connected`, abuses the client,
/// then behaves: answers ForceEndTurn with a Warning and CloseStream with a close.
fn hostile_server(abuse: Abuse) -> (String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(abuse_one(tcp, abuse));
        }
    });
    (url, runtime)
}

async fn abuse_one(tcp: tokio::net::TcpStream, abuse: Abuse) {
    use tokio::io::AsyncWriteExt;
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let text = |s: String| Message::Text(s.into());
    let connected = r#"{"type":"Connected","request_id":"hostile","sequence_id":0}"#;
    if ws.send(text(connected.into())).await.is_err() {
        return;
    }
    let sent = match abuse {
        Abuse::Huge => {
            let body = "x".repeat(5 << 20);
            ws.send(text(format!(
                r#"{{"type":"TurnInfo","transcript":"{body}"}}"#
            )))
            .await
        }
        Abuse::HugeFrameHeader => {
            // FIN + text opcode, 127 = 64-bit length follows, then i64::MAX.
            let mut frame = vec![0x81, 127];
            frame.extend(i64::MAX.to_be_bytes());
            let _ = ws.get_mut().write_all(&frame).await;
            let _ = ws.get_mut().flush().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        Abuse::DeepJson => {
            let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
            let deep_object = r#"{"a":"#.repeat(50_000);
            match ws.send(text(deep)).await {
                Ok(()) => ws.send(text(deep_object)).await,
                e => e,
            }
        }
        Abuse::Binary => {
            let mut r = Ok(());
            for i in 0..200u32 {
                r = ws.send(Message::Binary(vec![i as u8; 1000].into())).await;
            }
            r
        }
        Abuse::UnknownFlood => {
            let mut r = Ok(());
            for i in 0..5000u32 {
                r = ws
                    .send(text(format!(
                        r#"{{"type":"FromTheFuture{}","sequence_id":{i},"blob":"{}"}}"#,
                        i % 97,
                        "y".repeat(200)
                    )))
                    .await;
            }
            r
        }
    };
    if sent.is_err() {
        return;
    }
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(t) = message {
            if t.contains("ForceEndTurn") {
                let warning = r#"{"type":"Warning","code":"FORCE_END_TURN_NO_ACTIVE_TURN","description":"no turn"}"#;
                let _ = ws.send(text(warning.into())).await;
            } else if t.contains("CloseStream") {
                let _ = ws.close(None).await;
            }
        }
    }
}

fn against(url: &str) -> Command {
    let mut cmd = flux();
    cmd.arg("file").arg(fixture("beckett.wav")).args([
        "--url",
        url,
        "--fast",
        "--jsonl",
        "--max-reconnects",
        "0",
    ]);
    cmd
}

#[test]
fn oversized_messages_end_the_connection_in_bounded_memory() {
    for (label, abuse) in [
        ("huge message", Abuse::Huge),
        ("huge frame header", Abuse::HugeFrameHeader),
    ] {
        let (url, _server) = hostile_server(abuse);
        let (out, peak) = run_measured(against(&url), None);
        let err = stderr(&out);
        assert_eq!(code(&out), 4, "{label}: {err}");
        assert!(
            err.contains("too long") || err.contains("too big"),
            "{label}: {err}"
        );
        assert_calm(label, &out, peak);
        // What was received before is still a well-formed JSONL stream.
        let events = jsonl(&out);
        assert_eq!(events.last().unwrap()["type"], "flux.summary", "{label}");
    }
}

#[test]
fn unparsable_binary_and_unknown_messages_are_skipped() {
    for (label, abuse, warning) in [
        (
            "deep JSON",
            Abuse::DeepJson,
            Some("unparsable_server_message"),
        ),
        ("binary", Abuse::Binary, Some("unexpected_binary_message")),
        ("unknown flood", Abuse::UnknownFlood, None),
    ] {
        let (url, _server) = hostile_server(abuse);
        let (out, peak) = run_measured(against(&url), None);
        let err = stderr(&out);
        assert_eq!(code(&out), 0, "{label}: {err}");
        assert_calm(label, &out, peak);
        assert!(peak > 0, "{label}: no memory reading");
        let events = jsonl(&out);
        if let Some(code) = warning {
            assert!(
                events
                    .iter()
                    .any(|e| e["type"] == "flux.warning" && e["code"] == code),
                "{label}: no {code} warning"
            );
        } else {
            let unknown = events
                .iter()
                .filter(|e| {
                    e["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("FromTheFuture"))
                })
                .count();
            assert_eq!(unknown, 5000, "{label}: unknown messages are kept in JSONL");
        }
        // Warnings about server text are short, whatever the server sent.
        assert!(
            err.lines().all(|l| l.len() < 1000),
            "{label}: a long line on stderr"
        );
    }
}
