//! The local recognizer's benchmark (issue 17): `flux serve --asr moonshine` with the int8
//! model from scripts/fetch-model.sh, fed the fixtures in real time over a WebSocket.
//!
//! Run: `cargo bench --bench local_asr` (`-- --quick` skips the concurrent-stream runs). A
//! plain program (`harness = false`), never a timed test: under `cargo test --all-targets`
//! it exits at once.
//!
//! How it measures:
//! - The server runs in this process (`flux::serve::start`); the client is a small WebSocket
//!   sender here too, so CPU is this process's user+sys time (getrusage) over a run, almost
//!   all of it the recognizer's. Speech seconds are the turns' speech (first to last word).
//! - Audio goes as 16 kHz linear16 in 80 ms frames paced in real time (two_cities.wav is
//!   converted with sox first), then 2 s of silence so the last turn ends by itself.
//! - Update latency: from sending the frame that completes an `Update`'s audio window to
//!   receiving that Update, for the Updates of open turns with new text (one whose text repeats
//!   the TurnInfo before it tells the user nothing new): on loopback, from the moment the audio
//!   the Update's text was decoded from arrived at the server to the text reaching the client
//!   (the server sends an Update's `audio_window_end` as the end of the audio its text covers).
//! - Decode times: the pool's own histograms (`flux::serve::asr::pool::timings`): how long
//!   decodes waited for a worker and how long they ran, per kind.
//! - Time to first Update: from before the model loads to the first Update with text, with
//!   the stream started as soon as the server listens.
//! - Resident memory: this process's peak (VmHWM) at the end.

use flux::serve::asr::Pass;
use flux::serve::asr::pool::Timings;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const FRAME: usize = 1280; // 80 ms at 16 kHz

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc_rusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut u) };
    let t = |tv: [i64; 2]| tv[0] as f64 + tv[1] as f64 / 1e6;
    t(u.utime) + t(u.stime)
}

#[repr(C)]
struct libc_rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}

unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut libc_rusage) -> i32;
}

fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn read_16k(path: &Path, dir: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("read the fixture");
    if r.spec().sample_rate != 16_000 {
        let out = dir.join(path.file_name().unwrap());
        if !out.exists() {
            let ok = std::process::Command::new("sox")
                .arg(path)
                .args(["-r", "16000", "-c", "1", "-b", "16"])
                .arg(&out)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "sox is needed to convert {} to 16 kHz", path.display());
        }
        r = hound::WavReader::open(&out).unwrap();
    }
    r.samples::<i16>().map(Result::unwrap).collect()
}

#[derive(Default)]
struct Run {
    cpu: f64,
    speech: f64,
    latencies_ms: Vec<f64>,
    finals: Vec<String>,
    updates_with_text: usize,
    /// Updates with the same text as the TurnInfo before (a refused tick's, or a decode that
    /// found nothing new): not in the latency figures.
    repeats: usize,
    first_update: Option<Instant>,
}

/// Streams `samples` in real time to `url`; returns what came back.
async fn stream(url: &str, samples: &[i16]) -> Run {
    let query = "/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000";
    let (ws, _) = tokio_tungstenite::connect_async(format!("{url}{query}"))
        .await
        .expect("connect");
    let (mut tx, mut rx) = ws.split();
    let silence = vec![0i16; 16_000 * 2];
    let audio: Vec<i16> = samples.iter().chain(&silence).copied().collect();
    let started = Instant::now();
    let frames: Vec<Vec<u8>> = audio
        .chunks(FRAME)
        .map(|c| c.iter().flat_map(|s| s.to_le_bytes()).collect())
        .collect();
    let n = frames.len();
    let sender = tokio::spawn(async move {
        let mut sent = Vec::with_capacity(n);
        for (i, f) in frames.into_iter().enumerate() {
            tokio::time::sleep_until((started + Duration::from_millis(80 * i as u64)).into()).await;
            sent.push(Instant::now());
            tx.send(Message::binary(f)).await.expect("send");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(Message::text(r#"{"type":"CloseStream"}"#)).await;
        (sent, tx)
    });
    let mut received: Vec<(Instant, Value)> = Vec::new();
    while let Some(Ok(m)) = rx.next().await {
        if let Message::Text(t) = m
            && let Ok(v) = serde_json::from_str::<Value>(t.as_str())
        {
            received.push((Instant::now(), v));
        }
    }
    let (sent, _tx) = sender.await.unwrap();
    let mut run = Run::default();
    let mut last_text = "";
    for (at, v) in &received {
        if v["type"] != "TurnInfo" {
            continue;
        }
        let text = v["transcript"].as_str().unwrap_or("");
        let repeat = text == std::mem::replace(&mut last_text, text);
        match v["event"].as_str() {
            Some("Update") if !text.is_empty() => {
                run.updates_with_text += 1;
                run.first_update.get_or_insert(*at);
                if repeat {
                    run.repeats += 1;
                    continue;
                }
                let end = v["audio_window_end"].as_f64().unwrap_or(0.0);
                let frame = ((end / 0.08).ceil() as usize).saturating_sub(1);
                if let Some(s) = sent.get(frame) {
                    run.latencies_ms
                        .push(at.saturating_duration_since(*s).as_secs_f64() * 1000.0);
                }
            }
            Some("EndOfTurn") => {
                run.finals.push(text.to_string());
                let words = v["words"].as_array().cloned().unwrap_or_default();
                if let (Some(a), Some(b)) = (words.first(), words.last()) {
                    run.speech +=
                        b["end"].as_f64().unwrap_or(0.0) - a["start"].as_f64().unwrap_or(0.0);
                }
            }
            _ => {}
        }
    }
    run
}

/// The pool's decode times since `before`, one line.
fn decode_times(before: &[Timings; 2]) -> String {
    use flux::serve::asr::pool::{quantile, timings};
    let ms = |h: &[u64], p: f64| quantile(h, p).1.map_or("-".into(), |v| v.to_string());
    let mut out = Vec::new();
    for (pass, earlier) in [Pass::Partial, Pass::Final].into_iter().zip(before) {
        let t = timings(pass).since(earlier);
        let (n, _) = quantile(&t.ran, 0.5);
        let long: u64 = t.ran[240..].iter().sum();
        out.push(format!(
            "{n} {pass:?} decodes: ran p50 {} / p90 {} / max {} ms, waited p50 {} / p90 {} ms{}",
            ms(&t.ran, 0.5),
            ms(&t.ran, 0.9),
            ms(&t.ran, 1.0),
            ms(&t.waited, 0.5),
            ms(&t.waited, 0.9),
            if pass == Pass::Partial {
                format!(", {long} ran 240 ms or longer")
            } else {
                String::new()
            }
        ));
    }
    out.join("; ")
}

fn snapshot() -> [Timings; 2] {
    [
        flux::serve::asr::pool::timings(Pass::Partial),
        flux::serve::asr::pool::timings(Pass::Final),
    ]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn server(dir: &Path, partials: bool, workers: usize) -> flux::serve::ServerHandle {
    flux::serve::start(flux::serve::ServeOptions {
        listen: "127.0.0.1:0".into(),
        asr: Some(flux::serve::asr::AsrOptions {
            model_dir: dir.to_path_buf(),
            workers,
            partials,
        }),
        ..Default::default()
    })
    .await
    .expect("start flux serve --asr moonshine (run scripts/fetch-model.sh first)")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !args.iter().any(|a| a == "--bench") {
        println!("local recognizer benchmark: run it with `cargo bench --bench local_asr`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", loadavg().trim());
    let dir = flux::serve::asr::default_model_dir();
    if !flux::serve::asr::model_present(&dir) {
        eprintln!("no model at {}: run scripts/fetch-model.sh", dir.display());
        std::process::exit(2);
    }
    let work = PathBuf::from("target/bench-audio");
    std::fs::create_dir_all(&work).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let clips = [
        (
            "two_cities",
            read_16k(&fixtures.join("two_cities.wav"), &work),
        ),
        ("beckett", read_16k(&fixtures.join("beckett.wav"), &work)),
    ];

    // Time to first Update, model load included.
    let t0 = Instant::now();
    let srv = server(&dir, true, 1).await;
    let load = t0.elapsed().as_secs_f64();
    println!("model load (1 worker): {load:.2} s");
    let mut finals_srv = None;
    for partials in [true, false] {
        if !partials {
            println!(
                "resident memory after the runs with Updates (1 worker): {:.0} MB now, {:.0} MB peak",
                rss_mb("VmRSS:"),
                rss_mb("VmHWM:")
            );
            // A second server, so the two modes' figures are measured alike (its model load
            // raises this process's peak memory; the figures above are the one-server ones).
            finals_srv = Some(server(&dir, false, 1).await);
        }
        for (name, samples) in &clips {
            let url = match &finals_srv {
                Some(s) => s.url(),
                None => srv.url(),
            };
            let cpu_start = cpu_seconds();
            let times = snapshot();
            let mut run = stream(&url, samples).await;
            run.cpu = cpu_seconds() - cpu_start;
            let reference = std::fs::read_to_string(fixtures.join(format!("{name}.txt"))).unwrap();
            let wer = flux::assertions::wer::compare(&reference, &run.finals.join(" "));
            let mode = if partials {
                "Updates every 0.25 s"
            } else {
                "finals only"
            };
            println!(
                "{name} ({mode}): WER {:.1}% ({} errors / {} words); CPU {:.2} s for {:.1} s of speech = {:.3} CPU-s per speech-s; {} Updates with text ({} repeating the text before); Update latency p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
                wer.rate() * 100.0,
                wer.errors(),
                wer.reference.len(),
                run.cpu,
                run.speech,
                run.cpu / run.speech.max(0.001),
                run.updates_with_text,
                run.repeats,
                pct(&mut run.latencies_ms.clone(), 0.5),
                pct(&mut run.latencies_ms.clone(), 0.9),
                pct(&mut run.latencies_ms, 1.0),
            );
            println!("  {}", decode_times(&times));
            if partials
                && *name == "two_cities"
                && let Some(first) = run.first_update
            {
                println!(
                    "time to first Update: {:.2} s after the process started loading the model",
                    first.duration_since(t0).as_secs_f64()
                );
            }
        }
    }
    drop(finals_srv);
    // Silence: 10 s of it, no turn.
    let cpu0 = cpu_seconds();
    let _ = stream(&srv.url(), &vec![0i16; 16_000 * 10]).await;
    println!("12 s of silence: {:.3} CPU-s", cpu_seconds() - cpu0);
    println!(
        "resident memory now (both servers' models loaded): {:.0} MB",
        rss_mb("VmRSS:")
    );
    if quick {
        println!("load average at the end: {}", loadavg().trim());
        return;
    }
    // Concurrent real-time streams of beckett.wav on one pool: Updates thin, finals stay.
    for workers in [1usize, 2] {
        let srv = server(&dir, true, workers).await;
        for n in [1usize, 2, 4, 8] {
            let url = srv.url();
            let samples = clips[1].1.clone();
            let reference = std::fs::read_to_string(fixtures.join("beckett.txt")).unwrap();
            let times = snapshot();
            let runs = futures_util::future::join_all((0..n).map(|_| {
                let url = url.clone();
                let s = samples.clone();
                async move { stream(&url, &s).await }
            }))
            .await;
            let updates: usize = runs.iter().map(|r| r.updates_with_text).sum();
            let mut lat: Vec<f64> = runs.iter().flat_map(|r| r.latencies_ms.clone()).collect();
            let worst_wer = runs
                .iter()
                .map(|r| flux::assertions::wer::compare(&reference, &r.finals.join(" ")).rate())
                .fold(0.0, f64::max);
            println!(
                "{workers} worker(s), {n} stream(s): {:.1} Updates with text per stream, Update latency p90 {:.0} ms, worst WER {:.1}%",
                updates as f64 / n as f64,
                pct(&mut lat, 0.9),
                worst_wer * 100.0,
            );
            println!("  {}", decode_times(&times));
        }
        println!(
            "resident memory with this server too ({workers} worker(s)): {:.0} MB",
            rss_mb("VmRSS:")
        );
    }
    println!("load average at the end: {}", loadavg().trim());
}
