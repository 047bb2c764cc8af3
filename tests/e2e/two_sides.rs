//! `--split-channels`: a stereo call (a different speaker on each channel, made here from the
//! two mono fixtures with different turn timing) streamed as two sides against `flux serve`
//! over real sockets: labels, one timeline in audio-time order, per-side assertions, a failing
//! or dropped side, one saved file per side.

use crate::common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const RATE: u32 = 16_000;
/// Where the caller starts talking, in seconds: mid-way through the agent's reading.
const CALLER_AT: f64 = 2.0;
/// How much of two_cities the caller says.
const CALLER_SECS: f64 = 14.0;

fn script() -> Vec<String> {
    std::fs::read_to_string(fixture("two_cities.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn serve(extra: &[&str]) -> Serve {
    let script = fixture("two_cities.txt");
    let mut args = vec!["--script", script.to_str().unwrap()];
    args.extend_from_slice(extra);
    Serve::start(&args)
}

/// The agent (beckett.wav, from 0 s) on the left, the caller (two_cities.wav, from
/// [`CALLER_AT`]) on the right, 16-bit at 16 kHz; `same` puts the agent on both.
fn channels(same: bool) -> (Vec<f32>, Vec<f32>) {
    let (agent, rate) = read_wav_mono(&fixture("beckett.wav"));
    assert_eq!(rate, RATE);
    let (cities, rate) = read_wav_mono(&fixture("two_cities.wav"));
    let cities = resample_linear(&cities, rate, RATE);
    let at = (CALLER_AT * f64::from(RATE)) as usize;
    let said = (CALLER_SECS * f64::from(RATE)) as usize;
    let len = at + said + RATE as usize * 2;
    let mut left = vec![0.0; len];
    left[..agent.len()].copy_from_slice(&agent);
    if same {
        return (left.clone(), left);
    }
    let mut right = vec![0.0; len];
    right[at..at + said].copy_from_slice(&cities[..said]);
    (left, right)
}

fn stereo_wav(dir: &Path, same: bool) -> PathBuf {
    let (left, right) = channels(same);
    let path = dir.join(if same { "dual.wav" } else { "call.wav" });
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for (l, r) in left.iter().zip(&right) {
        w.write_sample((l * 32767.0).round() as i16).unwrap();
        w.write_sample((r * 32767.0).round() as i16).unwrap();
    }
    w.finalize().unwrap();
    path
}

fn labelled<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--split-channels", "--channel-labels", "agent,caller"];
    args.extend_from_slice(extra);
    args
}

/// Text lines as (label, text).
fn sides(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| {
            let (label, said) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("unlabelled line {l:?}"));
            (label.to_string(), said.to_string())
        })
        .collect()
}

fn said_by(lines: &[(String, String)], label: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|(l, _)| l == label)
        .map(|(_, t)| t.clone())
        .collect()
}

/// The agent says beckett's four turns; the caller the first lines of the script.
fn assert_both_sides(lines: &[(String, String)]) {
    let script = script();
    assert_eq!(said_by(lines, "agent"), script[..4], "{lines:?}");
    let caller = said_by(lines, "caller");
    assert!(caller.len() >= 2, "{lines:?}");
    assert_eq!(caller, script[..caller.len()], "{lines:?}");
}

fn finished_turns(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "TurnInfo" && e["event"] == "EndOfTurn")
        .collect()
}

#[test]
fn each_side_is_labelled_and_the_timeline_is_in_audio_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    let serve = serve(&[]);
    let out = run(file_cmd(&serve, &call, &labelled(&["--text"])), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = sides(&stdout(&out));
    assert_both_sides(&lines);
    // Each side closes on stderr under its label.
    let err = stderr(&out);
    assert!(err.contains("flux: agent: 4 turn(s)"), "{err}");
    assert!(err.contains("flux: caller: "), "{err}");

    let out = run(file_cmd(&serve, &call, &labelled(&["--jsonl"])), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    for e in &events {
        let want = match e["label"].as_str() {
            Some("agent") => 0,
            Some("caller") => 1,
            _ => panic!("record without a side: {e}"),
        };
        assert_eq!(e["channel"], want, "{e}");
    }
    let turns = finished_turns(&events);
    let ends: Vec<f64> = turns
        .iter()
        .map(|t| t["audio_window_end"].as_f64().unwrap())
        .collect();
    assert!(
        ends.windows(2).all(|w| w[0] <= w[1]),
        "turns out of audio-time order: {ends:?}"
    );
    // The sides take turns: a caller turn comes before the agent's last one.
    let order: Vec<&str> = turns.iter().map(|t| t["label"].as_str().unwrap()).collect();
    let last_agent = order.iter().rposition(|l| *l == "agent").unwrap();
    assert!(order[..last_agent].contains(&"caller"), "{order:?}");
    // The text run printed the same timeline.
    let from_jsonl: Vec<(String, String)> = turns
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_string(),
                t["transcript"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(from_jsonl, lines);
    let summaries: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "flux.summary")
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(summaries.len(), 2);
    assert!(summaries.contains(&"agent") && summaries.contains(&"caller"));
    // Two runs, each with one connection per side.
    assert_eq!(serve.log_kind("handshake").len(), 4);
}

#[test]
fn captions_name_the_speaker() {
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    let serve = serve(&[]);
    let out = run(
        file_cmd(&serve, &call, &labelled(&["--format", "vtt"])),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let vtt = stdout(&out);
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    assert_eq!(vtt.matches("WEBVTT").count(), 1);
    assert!(
        vtt.contains("<v agent>") && vtt.contains("<v caller>"),
        "{vtt}"
    );

    let out = run(
        file_cmd(&serve, &call, &labelled(&["--format", "srt"])),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let srt = stdout(&out);
    let cues: Vec<&str> = srt.split("\n\n").filter(|c| !c.trim().is_empty()).collect();
    for (i, cue) in cues.iter().enumerate() {
        let mut lines = cue.lines();
        assert_eq!(lines.next(), Some((i + 1).to_string().as_str()), "{srt}");
        lines.next();
        let text = lines.next().unwrap();
        assert!(
            text.starts_with("agent: ") || text.starts_with("caller: "),
            "{cue}"
        );
    }
}

#[test]
fn assertions_are_checked_per_side() {
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    let agent = dir.path().join("agent.txt");
    std::fs::write(&agent, script()[..4].join("\n")).unwrap();
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "nothing like what the caller said").unwrap();
    let serve = serve(&[]);
    let agent_arg = format!("agent={}", agent.display());
    let out = run(
        file_cmd(
            &serve,
            &call,
            &labelled(&["--text", "--expect-file", &agent_arg]),
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let caller_arg = format!("caller={}", wrong.display());
    let out = run(
        file_cmd(
            &serve,
            &call,
            &labelled(&[
                "--jsonl",
                "--expect-file",
                &agent_arg,
                "--expect-file",
                &caller_arg,
                "--expect-turns",
                "4",
            ]),
        ),
        None,
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let reports: Vec<Value> = jsonl(&out)
        .into_iter()
        .filter(|e| e["type"] == "flux.assertions")
        .collect();
    let passed = |label: &str| {
        reports
            .iter()
            .find(|r| r["label"] == label)
            .unwrap_or_else(|| panic!("no report for {label}"))["passed"]
            .clone()
    };
    // The agent said its four turns; the caller's text is wrong.
    assert_eq!(passed("agent"), true);
    assert_eq!(passed("caller"), false);
}

#[test]
fn labels_and_expectations_that_do_not_fit_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    let serve = serve(&[]);
    let out = run(
        file_cmd(
            &serve,
            &call,
            &["--split-channels", "--channel-labels", "a,b,c"],
        ),
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("one label per channel"),
        "{}",
        stderr(&out)
    );
    let out = run(
        file_cmd(&serve, &call, &labelled(&["--expect-file", "x.txt"])),
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("LABEL=FILE"), "{}", stderr(&out));
    // Nothing was streamed.
    assert!(serve.log_kind("handshake").is_empty());
}

#[test]
fn a_failing_side_does_not_take_the_other_down() {
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    // Whichever side connects first gets a fatal server error 3 s in.
    let serve = serve(&[
        "--fault",
        "error:at=3.0,code=BAD_REQUEST,close=1008,conn=1,description=refused",
    ]);
    let out = run(file_cmd(&serve, &call, &labelled(&["--text"])), None);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let err = stderr(&out);
    let failed: Vec<&str> = ["agent", "caller"]
        .into_iter()
        .filter(|l| err.contains(&format!("flux: {l}: error:")))
        .collect();
    assert_eq!(failed.len(), 1, "{err}");
    let lines = sides(&stdout(&out));
    let script = script();
    // The other side said everything.
    match failed[0] {
        "agent" => assert!(said_by(&lines, "caller").len() >= 2, "{lines:?}"),
        _ => assert_eq!(said_by(&lines, "agent"), script[..4], "{lines:?}"),
    }
}

#[test]
fn a_dropped_side_reconnects_alone() {
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    let serve = serve(&["--fault", "drop:at=4.0,conn=1"]);
    let out = run(file_cmd(&serve, &call, &labelled(&["--jsonl"])), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    let reconnected: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "flux.reconnected")
        .collect();
    assert_eq!(reconnected.len(), 1, "{events:?}");
    let lines: Vec<(String, String)> = finished_turns(&events)
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_string(),
                t["transcript"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_both_sides(&lines);
    assert_eq!(serve.log_kind("handshake").len(), 3);
}

/// Mean square of samples `from..to` seconds of a mono WAV.
fn energy(path: &Path, from: f64, to: f64) -> f64 {
    let (x, rate) = read_wav_mono(path);
    let (a, b) = (
        (from * f64::from(rate)) as usize,
        ((to * f64::from(rate)) as usize).min(x.len()),
    );
    x[a..b].iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / (b - a) as f64
}

#[test]
fn each_side_saves_its_own_audio_named_from_its_label() {
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    let saved = dir.path().join("out.wav");
    let serve = serve(&[]);
    let out = run(
        file_cmd(
            &serve,
            &call,
            &labelled(&["--text", "--save-audio", saved.to_str().unwrap()]),
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (agent, caller) = (
        dir.path().join("out.agent.wav"),
        dir.path().join("out.caller.wav"),
    );
    assert!(!saved.exists());
    // The agent alone speaks in the first two seconds, the caller alone after 11 s.
    assert!(energy(&agent, 0.0, 1.9) > 1e-4);
    assert!(energy(&caller, 0.0, 1.9) < 1e-8);
    assert!(energy(&caller, 11.0, 15.5) > 1e-4);
    assert!(energy(&agent, 11.0, 15.5) < 1e-8);
}

#[test]
fn dual_mono_is_warned_about_and_still_split() {
    let dir = tempfile::tempdir().unwrap();
    let dual = stereo_wav(dir.path(), true);
    let serve = serve(&[]);
    let out = run(
        file_cmd(&serve, &dual, &["--split-channels", "--text"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("dual mono") && err.contains("Drop --split-channels"),
        "{err}"
    );
    let lines = sides(&stdout(&out));
    // Default labels, and nothing merged: both sides say the same.
    assert_eq!(said_by(&lines, "ch0"), said_by(&lines, "ch1"));
    assert_eq!(said_by(&lines, "ch0"), script()[..4]);
}

#[test]
fn raw_stdin_splits_its_channels_too() {
    let (left, right) = channels(false);
    let mut pcm = Vec::with_capacity(left.len() * 4);
    for (l, r) in left.iter().zip(&right) {
        pcm.extend_from_slice(&((l * 32767.0).round() as i16).to_le_bytes());
        pcm.extend_from_slice(&((r * 32767.0).round() as i16).to_le_bytes());
    }
    let serve = serve(&[]);
    let mut cmd = flux();
    cmd.args(["listen", "--stdin", "--rate", "16000", "--channels", "2"])
        .args(["--url", &serve.url, "--fast", "--text"])
        .args(labelled(&[]));
    let out = run(cmd, Some(&pcm));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_both_sides(&sides(&stdout(&out)));
}

/// The capture format of a virtual microphone, as `flux devices --jsonl` reports it.
fn mic_format(raw: &Path, device: &str) -> crate::alsa::Format {
    let mut c = flux();
    crate::alsa::use_devices(&mut c, "mic.conf", raw);
    c.args(["devices", "--jsonl"]);
    let out = run(c, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|d| d["id"] == device)
        .map(|d| crate::alsa::Format::from_json(&d["default_config"]))
        .unwrap_or_else(|| panic!("{device} not listed"))
}

#[test]
fn one_side_per_microphone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.raw"), dir.path().join("b.raw"));
    // A device whose file is missing is not listed.
    std::fs::write(&a, []).unwrap();
    std::fs::write(&b, []).unwrap();
    let format = mic_format(&a, "alsa:flux_mic");
    // Device A hears the agent (beckett), device B the caller (two_cities' first 10 s).
    let (agent, rate) = read_wav_mono(&fixture("beckett.wav"));
    crate::alsa::Feed::write(&a, &agent, rate, &format, 1.5);
    let (cities, rate) = read_wav_mono(&fixture("two_cities.wav"));
    let said = &cities[..10 * rate as usize];
    crate::alsa::Feed::write(&b, said, rate, &mic_format(&b, "alsa:flux_mic_b"), 1.5);
    let serve = serve(&[]);
    let mut c = flux();
    crate::alsa::use_devices(&mut c, "mic.conf", &a);
    c.env("FLUX_TEST_MIC_FILE_B", &b)
        .args(["listen", "--mic", "--device", "alsa:flux_mic"])
        .args(["--device", "alsa:flux_mic_b", "--channel-labels", "me,them"])
        .args(["--duration", "10.5", "--url", &serve.url, "--text"]);
    let out = run(c, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("flux: me: capturing from alsa:flux_mic ("),
        "{err}"
    );
    assert!(
        err.contains("flux: them: capturing from alsa:flux_mic_b ("),
        "{err}"
    );
    let lines = sides(&stdout(&out));
    let script = script();
    assert_eq!(said_by(&lines, "me"), script[..4], "{lines:?}");
    let them = said_by(&lines, "them");
    assert!(them.len() >= 3, "{lines:?}");
    assert_eq!(them, script[..them.len()], "{lines:?}");
    assert_eq!(serve.log_kind("handshake").len(), 2);

    // A device that cannot be opened is an error before anything starts.
    let mut c = flux();
    crate::alsa::use_devices(&mut c, "mic.conf", &a);
    c.args(["listen", "--mic", "--device", "alsa:flux_mic"])
        .args(["--device", "no such mic", "--url", &serve.url, "--text"]);
    let out = run(c, None);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("no such mic"), "{}", stderr(&out));
    assert_eq!(
        serve.log_kind("handshake").len(),
        2,
        "nothing more streamed"
    );
}

/// Runs `body` in a tmux window of its own (a real terminal) and reads its screen.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path, body: &str) -> Tmux {
        let script = dir.join("run.sh");
        std::fs::write(
            &script,
            format!(
                "unset DEEPGRAM_API_KEY FLUX_URL NO_COLOR\nexport LANG=C.UTF-8 LC_ALL=C.UTF-8\n\
                 {body}\necho \"EXIT=$?\"\nexec sleep 600\n"
            ),
        )
        .unwrap();
        let t = Tmux {
            socket: format!("flux-sides-{}", std::process::id()),
        };
        let run = format!("sh '{}'", script.display());
        t.tmux(
            &["-f", "/dev/null", "new-session", "-d", "-s", "main"]
                .into_iter()
                .chain(["-x", "100", "-y", "30", &run])
                .collect::<Vec<_>>(),
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-u")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let screen: Vec<String> = self
                .tmux(&["capture-pane", "-p", "-t", "main"])
                .lines()
                .map(str::to_string)
                .collect();
            if ready(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                screen.join("\n")
            );
            std::thread::sleep(std::time::Duration::from_millis(40));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn the_live_view_shows_both_sides() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    let serve = serve(&[]);
    let t = Tmux::start(
        dir.path(),
        &format!(
            "'{BIN}' file '{}' --url '{}' --pace 3 --split-channels --channel-labels agent,caller",
            call.display(),
            serve.url
        ),
    );
    // While streaming: each side's open turn (or `listening…`) has a row of its own.
    let open = |l: &str| l.contains("[speaking]") || l.contains("listening…");
    t.wait_for("both sides' open turns", |s| {
        s.iter().any(|l| l.starts_with("agent: ") && open(l))
            && s.iter().any(|l| l.starts_with("caller: ") && open(l))
    });
    let screen = t.wait_for("the end", |s| s.iter().any(|l| l.starts_with("EXIT=")));
    assert!(
        screen.iter().any(|l| l == "EXIT=0"),
        "{}",
        screen.join("\n")
    );
    // Finished turns, labelled, in the order they were spoken.
    let finished: Vec<&str> = screen
        .iter()
        .filter_map(|l| {
            let (label, rest) = l.split_once(": #")?;
            rest.contains('-').then_some(label)
        })
        .collect();
    assert_eq!(
        finished.iter().filter(|l| **l == "agent").count(),
        4,
        "{screen:#?}"
    );
    assert!(
        finished.iter().filter(|l| **l == "caller").count() >= 2,
        "{screen:#?}"
    );
    let last_agent = finished.iter().rposition(|l| *l == "agent").unwrap();
    assert!(finished[..last_agent].contains(&"caller"), "{screen:#?}");
}

/// `flux replay PATH ARGS...`
fn replay(path: &Path, args: &[&str]) -> std::process::Output {
    let mut c = flux();
    c.arg("replay").arg(path).args(args);
    run(c, None)
}

#[test]
fn replay_renders_the_same_captions_and_text_as_the_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve(&[]);
    let beckett = fixture("beckett.wav");
    let rec = dir.path().join("session.jsonl");
    let out = run(file_cmd(&serve, &beckett, &["--jsonl"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(&rec, &out.stdout).unwrap();
    for format in ["srt", "vtt", "text"] {
        let live = run(file_cmd(&serve, &beckett, &["--format", format]), None);
        assert_eq!(code(&live), 0, "{}", stderr(&live));
        let again = replay(&rec, &["--format", format, "--fast"]);
        assert_eq!(code(&again), 0, "{}", stderr(&again));
        assert_eq!(stdout(&again), stdout(&live), "{format}");
    }
    // At its recorded pace, sped up: the same lines.
    let again = replay(&rec, &["--text", "--pace", "50"]);
    assert_eq!(stdout(&again), script()[..4].join("\n") + "\n");

    // Two sides keep their labels.
    let call = stereo_wav(dir.path(), false);
    let out = run(file_cmd(&serve, &call, &labelled(&["--jsonl"])), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(&rec, &out.stdout).unwrap();
    let live = run(
        file_cmd(&serve, &call, &labelled(&["--format", "vtt"])),
        None,
    );
    let again = replay(&rec, &["--format", "vtt", "--fast"]);
    assert_eq!(stdout(&again), stdout(&live));
    let again = replay(&rec, &["--text", "--fast"]);
    assert_both_sides(&sides(&stdout(&again)));

    let missing = replay(&dir.path().join("nope.jsonl"), &["--text"]);
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("nope.jsonl"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn serve_replay_gives_a_client_the_recorded_turns_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("session.jsonl");
    let beckett = fixture("beckett.wav");
    {
        let serve = serve(&[]);
        let out = run(file_cmd(&serve, &beckett, &["--jsonl"]), None);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        std::fs::write(&rec, &out.stdout).unwrap();
    }
    let recorded: Vec<(String, f64)> = finished_turns(&jsonl_text(&rec))
        .iter()
        .map(|t| {
            (
                t["transcript"].as_str().unwrap().to_string(),
                t["audio_window_end"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(recorded.len(), 4);
    let replaying = Serve::start(&["--replay", rec.to_str().unwrap()]);
    let out = run(file_cmd(&replaying, &beckett, &["--jsonl"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got: Vec<(String, f64)> = finished_turns(&jsonl(&out))
        .iter()
        .map(|t| {
            (
                t["transcript"].as_str().unwrap().to_string(),
                t["audio_window_end"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, recorded);
    // A longer stream: the recording's turns, then nothing invented.
    let out = run(
        file_cmd(&replaying, &fixture("two_cities.wav"), &["--text"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), script()[..4].join("\n") + "\n");
    // A file that is not a recording is refused at start.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"type\":\"flux.summary\"}\n").unwrap();
    let mut c = flux();
    c.args(["serve", "--listen", "127.0.0.1:0", "--replay"])
        .arg(&bad);
    let out = run(c, None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no TurnInfo"), "{}", stderr(&out));
}

fn jsonl_text(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_batch_of_split_files_counts_streams_in_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let call = stereo_wav(dir.path(), false);
    let other = dir.path().join("other.wav");
    std::fs::copy(&call, &other).unwrap();
    let serve = serve(&[]);
    let mut c = flux();
    c.arg("file")
        .args([&call, &other])
        .args(["--url", &serve.url, "--fast", "--text", "--jobs", "2"])
        .args(labelled(&[]));
    let out = run(c, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for file in [&call, &other] {
        let prefix = format!("{}: ", file.display());
        let lines: Vec<(String, String)> = sides(
            &stdout(&out)
                .lines()
                .filter_map(|l| l.strip_prefix(&prefix))
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        );
        assert_both_sides(&lines);
    }
    // Two streams at a time: the second file starts once the first's two have closed.
    let log = serve.log_lines();
    let kinds: Vec<&str> = log
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .filter(|k| *k == "handshake" || *k == "close")
        .collect();
    let third_handshake = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "handshake")
        .nth(2)
        .map(|(i, _)| i)
        .unwrap();
    let closes_before = kinds[..third_handshake]
        .iter()
        .filter(|k| **k == "close")
        .count();
    assert!(closes_before >= 2, "{kinds:?}");
}

#[test]
fn the_meter_shows_each_devices_level() {
    let pty = std::process::Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output();
    if !pty.is_ok_and(|o| o.status.success()) {
        assert!(std::env::var_os("CI").is_none(), "CI needs `script`");
        eprintln!("skipped: no `script` or no pseudo-terminal here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.raw"), dir.path().join("b.raw"));
    std::fs::write(&a, []).unwrap();
    std::fs::write(&b, []).unwrap();
    let format = mic_format(&a, "alsa:flux_mic");
    let (agent, rate) = read_wav_mono(&fixture("beckett.wav"));
    crate::alsa::Feed::write(&a, &agent, rate, &format, 1.5);
    crate::alsa::Feed::write(&b, &agent, rate, &format, 1.5);
    let serve = serve(&[]);
    let line = format!(
        "{BIN} listen --mic --device alsa:flux_mic --device alsa:flux_mic_b \
         --channel-labels me,them --duration 10.5 --url {} --text",
        serve.url
    );
    let mut probe = flux();
    crate::alsa::use_devices(&mut probe, "mic.conf", &a);
    let mut c = std::process::Command::new("script");
    for (k, v) in probe.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.env("TERM", "xterm")
        .env("FLUX_TEST_MIC_FILE_B", &b)
        .args(["-qec", &line, "/dev/null"]);
    let out = run(c, None);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    // One line, both devices, each named by its side.
    let meter = text
        .split('\r')
        .find(|l| l.starts_with("mic me ") && l.contains(" mic them "))
        .unwrap_or_else(|| panic!("no meter with both sides in {text:?}"));
    assert!(
        meter.contains("dBFS") || meter.contains("waiting"),
        "{meter:?}"
    );
    // The closing lines come after the meter is gone, labelled per side.
    let tail = text.rsplit('\r').next().unwrap_or_default();
    assert!(!tail.contains("mic me"), "meter left behind: {tail:?}");
    assert!(
        text.contains("flux: me: ") && text.contains("flux: them: "),
        "{text:?}"
    );
}
