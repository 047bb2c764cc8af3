//! End-to-end tests of `flux listen --mic` and `flux devices`: the built binary capturing from
//! a virtual ALSA microphone (tests/alsa/mic.conf, fed from a fixture) and streaming to a
//! `flux serve` started by each test. No audio hardware is needed.
//!
//! The virtual device is unpaced (a second of audio takes milliseconds), so every capture is
//! bounded by `--duration`, which counts captured frames: runs are fast and bit-for-bit
//! repeatable.

use crate::alsa;
use crate::common;

use alsa::{Feed, Format, use_devices};
use common::*;
use flux::audio::Block;
use flux::audio::condition::Conditioner;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Turn texts flux serve reveals (one line per turn).
const SCRIPT: [&str; 6] = [
    "the first turn of the microphone test",
    "second turn",
    "third turn",
    "fourth turn",
    "fifth turn",
    "sixth turn",
];

/// Seconds of audio captured in the end-to-end runs: beckett.wav is 9.96 s, padded to 10.96 s.
const DURATION: &str = "10.5";

/// A test's virtual microphone: a temp dir holding the raw feed.
struct Mic {
    dir: tempfile::TempDir,
    raw: PathBuf,
}

impl Mic {
    /// A microphone with nothing recorded yet (enough for listing and errors).
    fn empty() -> Mic {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("mic.raw");
        std::fs::write(&raw, []).unwrap();
        Mic { dir, raw }
    }

    /// `flux` reading `tests/alsa/<conf>`.
    fn flux(&self, conf: &str) -> Command {
        let mut c = flux();
        use_devices(&mut c, conf, &self.raw);
        c
    }

    /// `flux devices --jsonl`, parsed.
    fn devices(&self) -> Vec<Value> {
        let mut c = self.flux("mic.conf");
        c.args(["devices", "--jsonl"]);
        let out = run(c, None);
        assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
        jsonl_objects(&out)
    }

    /// Feeds beckett.wav, in the format `flux devices` says the device captures in.
    fn feed_beckett(&self, device: &str) -> Feed {
        let format = self
            .devices()
            .iter()
            .find(|d| d["id"] == device)
            .map(|d| Format::from_json(&d["default_config"]))
            .unwrap_or_else(|| panic!("{device} not listed"));
        let (mono, rate) = read_wav_mono(&fixture("beckett.wav"));
        Feed::write(&self.raw, &mono, rate, &format, 1.0)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `flux devices --jsonl` lines (they have no `type`, so not `common::jsonl`).
fn jsonl_objects(o: &std::process::Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn script_file(dir: &Path) -> String {
    let p = dir.join("script.txt");
    std::fs::write(&p, SCRIPT.join("\n")).unwrap();
    p.to_str().unwrap().to_string()
}

/// What flux must send for `frames` frames of `feed`: the conditioner run directly.
fn conditioned(feed: &Feed, frames: usize) -> Vec<i16> {
    let ch = feed.format.channels;
    let mut c = Conditioner::new(feed.format.sample_rate, ch, 16000, 80).unwrap();
    let block = Block::from_f32(
        feed.samples[..frames * usize::from(ch)].to_vec(),
        ch,
        feed.format.sample_rate,
    );
    let mut pcm = Vec::new();
    let mut take = |f: flux::audio::condition::Frame| {
        pcm.extend(
            f.data
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
    };
    c.push(&block, &mut take).unwrap();
    c.finish(&mut take).unwrap();
    pcm
}

fn wav_i16(path: &Path) -> (Vec<i16>, hound::WavSpec) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    (r.samples::<i16>().map(Result::unwrap).collect(), spec)
}

#[test]
fn devices_lists_the_virtual_microphones_with_the_default_marked() {
    let mic = Mic::empty();
    let devices = mic.devices();
    let ids: Vec<&str> = devices.iter().map(|d| d["id"].as_str().unwrap()).collect();
    for want in ["alsa:default", "alsa:flux_mic", "alsa:flux_mic_b"] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    assert!(
        !ids.contains(&"alsa:flux_absent"),
        "a device without hardware is not listed: {ids:?}"
    );
    let defaults: Vec<&str> = devices
        .iter()
        .filter(|d| d["default"] == true)
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["alsa:default"]);
    assert_eq!(ids[0], "alsa:default", "the default comes first");
    let a = devices.iter().find(|d| d["id"] == "alsa:flux_mic").unwrap();
    assert_eq!(a["description"], "flux test microphone A (raw file)");
    let rates: Vec<u64> = a["sample_rates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert!(
        rates.contains(&16000) && rates.contains(&48000),
        "{rates:?}"
    );
    assert!(a["channels"].as_array().unwrap().contains(&Value::from(2)));
    let format = Format::from_json(&a["default_config"]);
    assert!(format.sample_rate > 0 && format.channels > 0, "{format:?}");

    // The human table: same devices, default starred.
    let mut c = mic.flux("mic.conf");
    c.arg("devices");
    let out = run(c, None);
    assert_eq!(code(&out), 0);
    let table = stdout(&out);
    let starred: Vec<&str> = table.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(starred.len(), 1, "{table}");
    assert!(starred[0].contains("alsa:default"), "{table}");
    assert!(table.contains("alsa:flux_mic_b"), "{table}");
    assert!(
        !stderr(&out).contains("ALSA lib"),
        "ALSA noise leaked: {}",
        stderr(&out)
    );
}

#[test]
fn device_selection_errors_name_the_candidates() {
    let mic = Mic::empty();
    let listen = |conf: &str, extra: &[&str]| {
        let mut c = mic.flux(conf);
        c.args([
            "listen",
            "--mic",
            "--url",
            "ws://127.0.0.1:9",
            "--duration",
            "1",
        ])
        .args(extra);
        run(c, None)
    };

    let out = listen("mic.conf", &["--device", "no such mic"]);
    assert_eq!(code(&out), 5, "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--device \"no such mic\": no input device matches"),
        "{err}"
    );
    for id in ["alsa:default", "alsa:flux_mic", "alsa:flux_mic_b"] {
        assert!(err.contains(id), "candidate {id} not listed: {err}");
    }

    let out = listen("mic.conf", &["--device", "TEST MICROPHONE"]);
    assert_eq!(code(&out), 5, "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("matches 3 input devices"), "{err}");
    assert!(
        err.contains("alsa:flux_mic ") && err.contains("alsa:flux_mic_b "),
        "{err}"
    );
    assert!(
        !err.contains("alsa:null"),
        "only the matches are listed: {err}"
    );

    let out = listen("mic.conf", &["--device", "flux_absent"]);
    assert_eq!(code(&out), 5, "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("alsa:flux_absent: the device is not available"),
        "{}",
        stderr(&out)
    );

    // A machine without a microphone: `default` names no hardware.
    let out = listen("nodevice.conf", &[]);
    assert_eq!(code(&out), 5, "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("microphone: none found"), "{err}");
    assert!(
        err.contains("flux listen --stdin"),
        "says what to try: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line, no ALSA noise: {err}");

    // A broken ALSA configuration is reported, not a panic.
    let bad = mic.path("broken.conf");
    std::fs::write(&bad, "pcm.broken {\n type\n").unwrap();
    for args in [
        &["devices"][..],
        &["listen", "--mic", "--url", "ws://127.0.0.1:9"],
    ] {
        let mut c = mic.flux("mic.conf");
        c.env(
            "ALSA_CONFIG_PATH",
            format!("/usr/share/alsa/alsa.conf:{}", bad.display()),
        )
        .args(args);
        let out = run(c, None);
        assert_eq!(code(&out), 5, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("audio system: cannot start"),
            "{}",
            stderr(&out)
        );
    }

    // Flag rules: --mic or --stdin, and the stdin-only and mic-only flags stay apart.
    for args in [
        &["listen"][..],
        &["listen", "--mic", "--rate", "16000"],
        &["listen", "--stdin", "--rate", "16000", "--device", "x"],
        &["listen", "--mic", "--stdin"],
        &["listen", "--mic", "--fast"],
        &["listen", "--mic", "--duration", "0"],
    ] {
        let mut c = mic.flux("mic.conf");
        c.args(args);
        assert_eq!(code(&run(c, None)), 2, "{args:?}");
    }
}

#[test]
fn mic_stream_sends_exactly_the_conditioned_fixture_and_replays_to_the_same_turns() {
    let mic = Mic::empty();
    let feed = mic.feed_beckett("alsa:flux_mic");
    let frames = (DURATION.parse::<f64>().unwrap() * f64::from(feed.format.sample_rate)) as usize;
    assert!(
        frames <= feed.frames(),
        "the capture must stop inside the file"
    );
    let serve = Serve::start(&["--script", &script_file(mic.dir.path())]);
    let saved = mic.path("sent.wav");

    let mut c = mic.flux("mic.conf");
    c.args([
        "listen",
        "--mic",
        "--device",
        "Microphone A (raw",
        "--duration",
        DURATION,
    ])
    .args(["--url", &serve.url, "--text", "--save-audio"])
    .arg(&saved);
    let started = Instant::now();
    let out = run(c, None);
    let took = started.elapsed();
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("capturing from alsa:flux_mic ("), "{err}");
    assert!(!err.contains("lost"), "no audio may be dropped: {err}");
    assert!(
        !err.contains('\x1b'),
        "no escape codes when stderr is not a terminal: {err:?}"
    );
    let turns: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert!(turns.len() >= 2, "turns: {turns:?}");
    for (i, t) in turns.iter().enumerate() {
        assert_eq!(t, SCRIPT[i], "turn {i}");
    }

    // Bit-exact: what was saved is what the conditioner makes of the captured frames...
    let (sent, spec) = wav_i16(&saved);
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 16000, 16)
    );
    let want = conditioned(&feed, frames);
    assert_eq!(
        sent.len(),
        want.len(),
        "--duration counts captured frames exactly"
    );
    assert!(
        sent == want,
        "sent audio differs from the conditioned fixture"
    );
    // ...and what the server received, byte for byte in count.
    assert_eq!(serve.audio_bytes(), 2 * want.len() as u64);
    eprintln!(
        "mic run: {:.2} s wall for {DURATION} s of audio",
        took.as_secs_f64()
    );

    // The saved audio replays with `flux file` to the same turns.
    let out = run(file_cmd(&serve, &saved, &["--text"]), None);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let replayed: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(replayed, turns);
}

#[test]
fn mic_jsonl_reports_dropped_audio_when_flux_falls_behind() {
    let mic = Mic::empty();
    let feed = mic.feed_beckett("alsa:default");
    let serve = Serve::start(&[]);
    let mut c = mic.flux("mic.conf");
    // A 20 ms ring cannot hold what an unpaced device delivers: most audio is dropped.
    c.env("FLUX_MIC_BUFFER_MS", "20").args([
        "listen",
        "--mic",
        "--duration",
        "5",
        "--url",
        &serve.url,
        "--jsonl",
    ]);
    let out = run(c, None);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let events = jsonl(&out);
    let warning = events
        .iter()
        .find(|e| e["type"] == "flux.warning" && e["code"] == "input_note")
        .unwrap_or_else(|| panic!("no drop warning in {events:?}"));
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.contains("s of microphone audio") && message.contains("was lost"),
        "{message}"
    );
    assert!(stderr(&out).contains("warning: ") && stderr(&out).contains("was lost"));
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "flux.summary");
    let sent = summary["audio_seconds"].as_f64().unwrap();
    assert!(sent < 5.0, "dropped audio is not sent: {sent}");
    assert!(feed.frames() > 0);
}

/// Spawns `cmd`, waits until stderr shows `ready`, then sends SIGINT `times` times, each after
/// the previous one was acknowledged. Returns (exit code, stdout, stderr).
fn interrupt(mut cmd: Command, times: usize) -> (i32, String, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
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
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !err_buf.lock().unwrap().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in {}",
                err_buf.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("connected to");
    for i in 0..times {
        // The shell's builtin kill: no dependency on procps.
        let ok = Command::new("sh")
            .args(["-c", &format!("kill -INT {}", child.id())])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -INT failed");
        if i + 1 < times {
            wait_for("finishing the stream");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("flux did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    err_t.join().unwrap();
    let err = err_buf.lock().unwrap().clone();
    (status.code().unwrap_or(-1), out_t.join().unwrap(), err)
}

#[test]
fn ctrl_c_once_finishes_the_stream_and_exits_0() {
    let mic = Mic::empty();
    mic.feed_beckett("alsa:default");
    let serve = Serve::start(&[]);
    let mut c = mic.flux("mic.conf");
    // No --duration: capture runs until Ctrl-C (after the file ends, the virtual device keeps
    // delivering silence).
    c.args(["listen", "--mic", "--url", &serve.url, "--jsonl"]);
    let (code, out, err) = interrupt(c, 1);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(err.contains("finishing the stream"), "{err}");
    let last = out.lines().last().unwrap_or_default();
    let summary: Value = serde_json::from_str(last).unwrap();
    assert_eq!(summary["type"], "flux.summary", "{out}");
    assert_eq!(summary["exit_code"], 0);
    assert!(summary["audio_seconds"].as_f64().unwrap() > 0.0);
    // Ended like end of input, not cut off: the server saw CloseStream.
    let controls: Vec<String> = serve
        .log_kind("control")
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert!(
        controls.iter().any(|c| c.contains("CloseStream")),
        "{controls:?}"
    );
}

#[test]
fn ctrl_c_twice_exits_130_at_once() {
    let mic = Mic::empty();
    mic.feed_beckett("alsa:default");
    // The server stops answering, so finishing would wait: only the second Ctrl-C ends it.
    let serve = Serve::start(&["--fault", "stall:at=0.5"]);
    let mut c = mic.flux("mic.conf");
    c.args(["listen", "--mic", "--url", &serve.url, "--text"]);
    let (code, _, err) = interrupt(c, 2);
    assert_eq!(code, 130, "stderr: {err}");
}

#[test]
fn level_meter_draws_on_a_terminal_and_stays_off_turn_lines() {
    // `script` (util-linux, in Debian's essential bsdutils) needs a pseudo-terminal.
    let pty = Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .stdin(Stdio::null())
        .output();
    if !pty.is_ok_and(|o| o.status.success()) {
        // In CI the set-up provides both, so a missing one is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs `script` and a pseudo-terminal for this test"
        );
        eprintln!("skipped: no `script` or no pseudo-terminal here");
        return;
    }
    let mic = Mic::empty();
    mic.feed_beckett("alsa:flux_mic");
    let serve = Serve::start(&["--script", &script_file(mic.dir.path())]);
    // `script` runs flux on a pseudo-terminal: stdout and stderr are both the terminal.
    let line = format!(
        "{} listen --mic --device alsa:flux_mic --duration {DURATION} --url {} --text",
        BIN, serve.url
    );
    let mut c = mic.flux("mic.conf");
    c.env("TERM", "xterm")
        .env("FLUX_MIC_BUFFER_MS", "15000")
        .args(["-qec", &line, "/dev/null"]);
    let c = {
        // Same environment, but run `script` instead of flux.
        let mut s = Command::new("script");
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => s.env(k, v),
                None => s.env_remove(k),
            };
        }
        s.args(c.get_args());
        s
    };
    let out = run(c, None);
    assert_eq!(code(&out), 0, "output: {}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("\rmic alsa:flux_mic "),
        "no meter in {text:?}"
    );
    assert!(text.contains(" dBFS"), "no level in {text:?}");
    // What the terminal shows: every turn line is exactly the turn (the meter was erased
    // before it was written), and no meter is left on screen at the end.
    let shown = terminal_lines(&text);
    let turns: Vec<&String> = shown
        .iter()
        .filter(|l| SCRIPT.iter().any(|s| l.contains(s)))
        .collect();
    assert!(turns.len() >= 2, "{shown:#?}");
    for (i, l) in turns.iter().enumerate() {
        assert_eq!(*l, SCRIPT[i], "turn line garbled on screen: {shown:#?}");
    }
    assert!(
        !shown.iter().any(|l| l.contains("mic alsa")),
        "meter left on screen: {shown:#?}"
    );
    assert!(shown.iter().any(|l| l.contains("turn(s)")), "{shown:#?}");
}

/// The lines a terminal displays for `text`, understanding only what the meter uses:
/// `\r` (to column 0), `ESC [ K` (erase to end of line) and `\n`.
fn terminal_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line: Vec<char> = Vec::new();
    let mut col = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                lines.push(line.iter().collect::<String>().trim_end().to_string());
                line.clear();
                col = 0;
            }
            '\x1b' => {
                let seq: String =
                    std::iter::from_fn(|| chars.next_if(|c| !c.is_ascii_alphabetic())).collect();
                if chars.next() == Some('K') && seq == "[" {
                    line.truncate(col);
                }
            }
            c => {
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line.iter().collect());
    }
    lines
}
