//! Shared helpers for end-to-end tests: run the built `flux` binary against a `flux serve`
//! started by the test, over real loopback sockets.
//!
//! Every run of the binary goes through [`flux`] (a clean environment) and, to completion,
//! through [`run`] or [`flux_cmd`], both on `assert_cmd`: a new test writes
//! `flux_cmd().args([...]).assert().code(2).stderr(contains("..."))`. Tools a suite needs
//! from the system (tmux, `script`) are checked with [`tool_available`]: missing ones fail
//! the test under CI and skip it, visibly, elsewhere.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built binary, for shell command lines (`sh -c "{BIN} file ... | head -1"`).
pub const BIN: &str = env!("CARGO_BIN_EXE_flux");

/// A run that takes longer is killed and the test fails, so a hang fails rather than stalls
/// the suite.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A `flux serve` child process on a free loopback port, logging to a temp file.
pub struct Serve {
    child: Child,
    pub url: String,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Serve {
    pub fn start(args: &[&str]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.jsonl");
        let mut child = flux()
            .args(["serve", "--listen", "127.0.0.1:0", "--log"])
            .arg(&log)
            .args(args)
            .env_remove("FLUX_SERVE_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn flux serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read serve address");
        let url = line.trim().to_string();
        assert!(url.starts_with("ws://127.0.0.1:"), "serve printed {url:?}");
        Serve {
            child,
            url,
            log,
            dir,
        }
    }

    /// Every line of the server's log, parsed.
    pub fn log_lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("serve log line is JSON"))
            .collect()
    }

    /// Log lines of one kind (`handshake`, `audio`, `control`, `close`).
    pub fn log_kind(&self, kind: &str) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|l| l["kind"] == kind)
            .collect()
    }

    /// Audio bytes the server received, over all connections.
    pub fn audio_bytes(&self) -> u64 {
        self.log_kind("audio")
            .iter()
            .map(|l| l["bytes"].as_u64().unwrap())
            .sum()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `flux` with a clean environment: no credentials or URL leaking in from the developer's.
pub fn flux() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("flux"));
    c.env_remove("DEEPGRAM_API_KEY")
        .env_remove("FLUX_URL")
        .env_remove("FLUX_PROVIDER")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env("NO_COLOR", "1");
    c
}

/// [`flux`] as an `assert_cmd` command with the [`RUN_TIMEOUT`], for `.assert()` chains.
pub fn flux_cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::from_std(flux());
    c.timeout(RUN_TIMEOUT);
    c
}

/// Runs a command to completion, feeding `stdin` (none: an empty stdin, closed at once), and
/// fails the test when it is still running after [`RUN_TIMEOUT`].
pub fn run(cmd: Command, stdin: Option<&[u8]>) -> Output {
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(RUN_TIMEOUT)
        .write_stdin(stdin.unwrap_or_default().to_vec());
    let started = Instant::now();
    let out = cmd.output().expect("spawn the command");
    if started.elapsed() >= RUN_TIMEOUT && killed(&out.status) {
        panic!(
            "{:?} did not finish within {} s",
            cmd.get_program(),
            RUN_TIMEOUT.as_secs()
        );
    }
    out
}

#[cfg(unix)]
fn killed(status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

#[cfg(not(unix))]
fn killed(status: &std::process::ExitStatus) -> bool {
    status.code().is_none()
}

/// Whether `program` (run with `args`, e.g. `tmux -V`) works here. When it does not: under CI
/// (`CI` set, as every CI service does) the test fails, since CI's set-up installs it and a
/// silent pass would hide the gap; elsewhere the test is skipped with a note on the real
/// stderr, shown even for passing tests, naming what to install.
pub fn tool_available(program: &str, args: &[&str], purpose: &str, install: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let verdict = missing_tool_verdict(ok, std::env::var_os("CI").is_some(), program, purpose);
    match verdict {
        Ok(true) => true,
        Ok(false) => {
            // libtest captures `eprintln!` of passing tests; a skip must not be silent.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {program} is missing, needed for {purpose} ({install}); under CI \
                 this fails"
            );
            false
        }
        Err(why) => panic!("{why} ({install})"),
    }
}

/// The decision of [`tool_available`]: run (`Ok(true)`), skip (`Ok(false)`) or fail.
pub fn missing_tool_verdict(
    found: bool,
    ci: bool,
    program: &str,
    purpose: &str,
) -> Result<bool, String> {
    match (found, ci) {
        (true, _) => Ok(true),
        (false, false) => Ok(false),
        (false, true) => Err(format!(
            "CI is set and {program} is missing: {purpose} cannot run, and a skipped test \
             would pass silently"
        )),
    }
}

/// tmux, for the tests that read a real terminal's screen.
pub fn tmux_available() -> bool {
    tool_available(
        "tmux",
        &["-V"],
        "the live-view tests",
        "scripts/setup-debian.sh installs it",
    )
}

/// `flux file PATH --url URL --fast` plus extra args.
pub fn file_cmd(serve: &Serve, path: &Path, extra: &[&str]) -> Command {
    let mut c = flux();
    c.arg("file")
        .arg(path)
        .args(["--url", &serve.url, "--fast"])
        .args(extra);
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Parses JSONL output, failing on any line that is not a JSON object.
pub fn jsonl(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l:?}: {e}"));
            assert!(
                v.is_object() && v["type"].is_string(),
                "line without type: {l}"
            );
            v
        })
        .collect()
}

/// Reads a WAV fixture as mono f32 samples (first channel) and its rate.
pub fn read_wav_mono(path: &Path) -> (Vec<f32>, u32) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => r
            .samples::<i32>()
            .step_by(spec.channels as usize)
            .map(|s| s.unwrap() as f32 * scale)
            .collect(),
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .step_by(spec.channels as usize)
            .map(|s| s.unwrap())
            .collect(),
    };
    (samples, spec.sample_rate)
}

/// Writes `mono` as a WAV of the given format, duplicating it into every channel.
pub fn write_wav(path: &Path, mono: &[f32], rate: u32, channels: u16, bits: u16, float: bool) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in mono {
        for _ in 0..channels {
            if float {
                w.write_sample(s).unwrap();
            } else if bits == 8 {
                w.write_sample((s * 127.0).round() as i8).unwrap();
            } else {
                let max = ((1i64 << (bits - 1)) - 1) as f32;
                w.write_sample((s * max).round() as i32).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

/// Naive linear-interpolation resampling, good enough to make test inputs at other rates.
pub fn resample_linear(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    let n = (x.len() as u64 * to as u64 / from as u64) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * from as f64 / to as f64;
            let j = pos.floor() as usize;
            let f = (pos - j as f64) as f32;
            let a = x[j.min(x.len() - 1)];
            let b = x[(j + 1).min(x.len() - 1)];
            a + (b - a) * f
        })
        .collect()
}
