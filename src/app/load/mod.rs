//! `flux load FILE... --streams N`: a capacity test of a Flux deployment. N concurrent
//! real-time sessions, each looping its recordings, started evenly over `--ramp`; a live
//! status on stderr; at the end, per-stream and overall figures (text, or JSONL with
//! `--jsonl`) and the `--assert-*` checks (exit 7). docs/load.md says what each figure means.
//!
//! Cheap by construction, so the generator is never the bottleneck: every stream is an
//! ordinary session (the same one `flux file` runs) on the client's one thread, the
//! recordings are conditioned once and shared ([`audio`]), a stream's feed is a task rather
//! than an audio thread, and its events go straight into counters ([`metrics`]) instead of
//! through a writer thread.

mod audio;
mod metrics;
mod report;
mod status;

use super::Plan;
use super::controller::Controller;
use super::output_watch::print;
use crate::cli::{LoadArgs, PaceArgs};
use crate::error::{ExitCode, FluxError};
use crate::session::latency::Histogram;
use crate::session::{self, Control};
use audio::{FeedPlan, Limit, Recording};
use metrics::{Board, Program, StreamSink};
use report::{StreamLine, Summary};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How often the ramp looks up from waiting to see whether it was interrupted.
const RAMP_POLL: Duration = Duration::from_millis(100);

/// What a stream hands back when it ends.
struct Ended {
    line: StreamLine,
    late: Option<Histogram>,
}

/// What every stream shares.
struct Shared {
    plan: Plan,
    recordings: Arc<Vec<Recording>>,
    limit: Limit,
    board: Arc<Board>,
    stopped: Arc<AtomicBool>,
    frames_fed: Arc<AtomicU64>,
}

pub(super) async fn run(args: LoadArgs) -> anyhow::Result<u8> {
    if args.stream.control.is_some() {
        return Err(FluxError::Usage(
            "--control is for one stream; flux load drives its streams itself (Ctrl-C \
             finishes them all)"
                .into(),
        )
        .into());
    }
    let plan = Plan::new(
        &args.stream,
        &PaceArgs {
            pace: None,
            fast: false,
        },
    )?;
    let limit = match (args.duration, args.loops) {
        (Some(secs), _) => Limit::Seconds(secs),
        (None, Some(k)) => Limit::Loops(k),
        (None, None) => Limit::Loops(1),
    };
    let recordings = audio::load_all(&args.paths, plan.session.sample_rate, plan.chunk_ms)?;
    let streams = args.streams as usize;
    // A socket per stream: past the usual soft limit of 1,024 from about 950 streams.
    let needed = args.streams as u64 + super::fdlimit::BASE;
    if let Some(limit) = super::fdlimit::raise_open_files()
        && limit < needed
    {
        eprintln!(
            "flux load: warning: {streams} streams need about {needed} open files, and this \
             process may open {limit} (the hard limit, `ulimit -Hn`); streams past it fail to \
             connect (counted as `connect` errors). Raise the hard limit as root, or run fewer \
             streams per process"
        );
    }
    if !args.quiet {
        let secs: f64 = recordings
            .iter()
            .map(|r| r.seconds(plan.session.sample_rate))
            .sum();
        eprintln!(
            "flux load: {streams} stream(s) over {:.1} s of audio in {} recording(s), started \
             over {} s; Ctrl-C finishes every stream and reports",
            secs,
            recordings.len(),
            args.ramp
        );
    }
    let stopped = Arc::new(AtomicBool::new(false));
    let controller = Controller::new(stopped.clone(), None);
    controller.listen_for_signals();
    let shared = Arc::new(Shared {
        plan,
        recordings,
        limit,
        board: Arc::new(Board::new(streams)),
        stopped: stopped.clone(),
        frames_fed: Arc::default(),
    });
    let status = (!args.quiet)
        .then(|| status::Status::start(shared.board.clone(), shared.frames_fed.clone()));

    let started = Instant::now();
    let mut running = JoinSet::new();
    let ramp = Duration::from_secs_f64(args.ramp);
    for i in 0..streams {
        let at = started + ramp.mul_f64(i as f64 / streams as f64);
        while Instant::now() < at && !stopped.load(Ordering::SeqCst) {
            tokio::time::sleep_until(at.min(Instant::now() + RAMP_POLL)).await;
        }
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        let (control_tx, controls) = mpsc::channel(4);
        controller.register(control_tx);
        running.spawn(one_stream(i, shared.clone(), controls));
    }
    // Each stream's lateness histogram is merged as it ends: holding a thousand of them
    // (20 KB each) until the last stream ends would cost more than the streams themselves.
    let mut lines: Vec<StreamLine> = Vec::with_capacity(streams);
    let mut late = Histogram::default();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(e) => {
                if let Some(h) = &e.late {
                    late.merge(h);
                }
                lines.push(e.line);
            }
            Err(e) => return Err(anyhow::anyhow!("a stream's task failed: {e}")),
        }
    }
    let wall = started.elapsed().as_secs_f64();
    if let Some(s) = status {
        s.stop();
    }
    lines.sort_by_key(|l| l.stream);
    let interrupted = stopped.load(Ordering::SeqCst);
    let mut summary = Summary::new(&lines, &shared.board.samples(), &late, wall, interrupted);
    let asserted = args.assert_p95_eot_ms.is_some() || args.assert_errors.is_some();
    let passed = summary.check(args.assert_p95_eot_ms, args.assert_errors);
    // Failed streams decide the status, unless --assert-errors judges errors instead.
    let mut code = if args.assert_errors.is_some() {
        ExitCode::Success.code()
    } else {
        lines.iter().fold(ExitCode::Success.code(), |c, l| {
            ExitCode::worst(c, l.exit_code)
        })
    };
    if asserted && !passed {
        code = ExitCode::worst(code, ExitCode::Assertion.code());
    }
    summary.exit_code = code;
    let out = if args.jsonl {
        let mut out = String::new();
        for l in &lines {
            out.push_str(&serde_json::to_string(l)?);
            out.push('\n');
        }
        out.push_str(&serde_json::to_string(&summary)?);
        out.push('\n');
        out
    } else {
        report::text(&summary, &lines)
    };
    print(out.as_bytes())?;
    for c in summary.assertions.iter().filter(|c| !c.passed) {
        eprintln!("flux load: assertion failed: {}: {}", c.name, c.detail);
    }
    Ok(code)
}

/// One stream, start to end.
async fn one_stream(index: usize, shared: Arc<Shared>, controls: mpsc::Receiver<Control>) -> Ended {
    let first = index % shared.recordings.len();
    let feed = audio::spawn_feed(FeedPlan {
        recordings: shared.recordings.clone(),
        first,
        limit: shared.limit,
        sample_rate: shared.plan.session.sample_rate,
        stopped: shared.stopped.clone(),
        frames_fed: shared.frames_fed.clone(),
    });
    let opts = &shared.plan.session;
    let mut sink = StreamSink::new(
        index,
        shared.board.clone(),
        opts.endpoint.capabilities.sends_connected,
        opts.pace.unwrap_or(1.0),
        Program {
            recordings: shared.recordings.clone(),
            first,
            sample_rate: opts.sample_rate,
        },
    );
    let mut outcome = session::run(opts, feed, &mut sink, controls, None).await;
    let error = outcome.error.as_ref().map(|e| format!("{e:#}"));
    sink.finish(error.as_deref());
    let exit_code = outcome
        .error
        .as_ref()
        .map_or(ExitCode::Success.code(), FluxError::exit_code);
    let late = outcome.send_latency.take();
    Ended {
        line: StreamLine::new(
            index,
            shared.recordings[first].label.clone(),
            sink.stats,
            &outcome.totals,
            error,
            exit_code,
            late.as_ref(),
        ),
        late,
    }
}
