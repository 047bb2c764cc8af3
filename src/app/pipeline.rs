//! One stream from source to sinks: the conditioner and feed, the session, the output, and
//! how it ended (summary, assertions, exit code). `stream` runs a single stream with every
//! terminal nicety (live view, progress bar, level meter); `batch` reuses the pieces for
//! several files at once.

use super::Plan;
use super::output_watch::{OutputWatch, Watched};
use crate::assertions::{Expectations, Recorder, Recording};
use crate::audio::Source;
use crate::audio::condition::Conditioner;
use crate::audio::mic::MicStatus;
use crate::audio::mic::meter::{Meter, Screen};
use crate::cli::{Format, OutputArgs};
use crate::error::{ExitCode, FluxError};
use crate::output::captions::{CaptionFormat, CaptionSink};
use crate::output::jsonl::JsonlSink;
use crate::output::live::{self, LiveOptions, LiveView};
use crate::output::progress::{self, ProgressSink, Suspended};
use crate::output::status::StatusSink;
use crate::output::text::TextSink;
use crate::output::{Fanout, Sink};
use crate::session::tap::Tap;
use crate::session::{self, ClientEvent, Control, Event, Feed, Outcome, Summary};
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// After the first Ctrl-C, how long a live source may take to end its input by itself.
const LIVE_STOP_GRACE: Duration = Duration::from_secs(3);

/// What some sources add to streaming.
#[derive(Default)]
pub(super) struct Extras {
    /// Set by the first Ctrl-C; a live source stops capturing when it sees it.
    pub stopped: Arc<AtomicBool>,
    /// The source ends by itself once `stopped` is set (a microphone), so the first Ctrl-C
    /// ends the input and everything captured is still sent, as at end of input.
    pub live: bool,
    /// `--save-audio`.
    pub tap: Option<Box<dyn Tap>>,
    /// A level meter to draw on stderr while capturing, and the screen it shares.
    pub meter: Option<(Screen, MicStatus)>,
    /// The microphone level (f32 bits, dBFS) for the live view's status line.
    pub level: Option<Arc<std::sync::atomic::AtomicU32>>,
    /// `flux file`'s CI assertions.
    pub expect: Option<Expectations>,
}

/// The running sessions' control channels, so one Ctrl-C finishes them all.
pub(super) type Controls = Arc<Mutex<Vec<mpsc::Sender<Control>>>>;

/// Starts the audio thread and the `--control` reader for one stream.
pub(super) fn start_feed<S, N>(
    plan: &Plan,
    source: S,
    end_note: N,
    control_tx: &mpsc::Sender<Control>,
) -> anyhow::Result<mpsc::Receiver<Feed>>
where
    S: Source + 'static,
    N: FnOnce(&S) -> Option<String> + Send + 'static,
{
    let info = source.info().clone();
    let conditioner = Conditioner::new(
        info.sample_rate,
        info.channels,
        plan.session.sample_rate,
        plan.chunk_ms,
    )?;
    let feed = session::feed::spawn(source, conditioner, end_note);
    if let Some(path) = &plan.control {
        session::control_file::spawn(path.clone(), control_tx.clone()).map_err(|e| {
            FluxError::Usage(format!("cannot read --control {}: {e}", path.display()))
        })?;
    }
    Ok(feed)
}

/// Runs the session, showing events to a recorder first when there are checks to make.
pub(super) async fn run_session(
    plan: &Plan,
    feed: mpsc::Receiver<Feed>,
    sink: &mut dyn Sink,
    controls: mpsc::Receiver<Control>,
    tap: Option<Box<dyn Tap>>,
    recorder: Option<&mut Recorder>,
) -> (Outcome, f64) {
    let started = Instant::now();
    let outcome = match recorder {
        Some(recorder) => {
            let mut recording = Recording {
                inner: sink,
                recorder,
            };
            session::run(&plan.session, feed, &mut recording, controls, tap).await
        }
        None => session::run(&plan.session, feed, sink, controls, tap).await,
    };
    (outcome, started.elapsed().as_secs_f64())
}

/// A recorder for these checks, when there are any.
pub(super) fn recorder_for(expect: &Option<Expectations>) -> Option<Recorder> {
    expect.as_ref().map(|_| Recorder::new())
}

/// How one stream ended.
pub(super) struct Ending {
    pub code: u8,
    /// What to tell the user, if anything (nothing when the reader simply left).
    pub error: Option<anyhow::Error>,
    /// stdout is gone (its reader left, or writing to it failed): write nothing more.
    pub output_closed: bool,
}

/// Everything after the session: assertions, the closing lines on stderr, and (JSONL) the
/// `flux.assertions` and `flux.summary` lines. `who` labels stderr lines (`call.wav: ` in a
/// batch, empty otherwise). `watch` tells whether writing stdout failed.
#[allow(clippy::too_many_arguments)]
pub(super) fn conclude(
    outcome: Outcome,
    wall: f64,
    checks: Option<(&Expectations, &Recorder)>,
    data: &mut dyn Sink,
    format: Format,
    quiet: bool,
    who: &str,
    watch: &OutputWatch,
) -> Ending {
    // Nothing reached a server: the stream never ran, so there is nothing to check or count.
    let never_ran = outcome.error.is_some() && outcome.totals.frames_sent == 0;
    let (mut code, error): (u8, Option<anyhow::Error>) = match (outcome.error, outcome.input_error)
    {
        (Some(e), _) => (e.exit_code(), Some(e.into())),
        (None, Some(e)) => (ExitCode::Input.code(), Some(e.into())),
        (None, None) => (ExitCode::Success.code(), None),
    };
    let mut summary = Summary {
        request_id: outcome.request_id,
        totals: outcome.totals.rounded(),
        wall_seconds: round3(wall),
        exit_code: code,
        error: error.as_ref().map(|e| format!("{e:#}")),
    };
    if outcome.output_closed {
        if let Some(failed) = watch.failure() {
            return failed.ending(code);
        }
        // The reader went away (`| head -1`): that is how pipes end, not an error.
        return Ending {
            code: if error.is_none() {
                ExitCode::Success.code()
            } else {
                code
            },
            error: None,
            output_closed: true,
        };
    }
    let report = checks.map(|(expect, rec)| {
        if never_ran {
            expect.not_evaluated("the stream never ran (see the error)")
        } else {
            expect.check(rec)
        }
    });
    if let Some(report) = &report {
        if report.evaluated && !report.passed {
            code = ExitCode::worst(code, ExitCode::Assertion.code());
            summary.exit_code = code;
        }
        // Failures are the point of a smoke test: shown even with --quiet.
        if !report.passed || !quiet {
            eprint!("{}", report.render(who));
        }
    }
    if !quiet && !never_ran {
        eprintln!(
            "flux: {who}{} turn(s), {:.2}s of audio sent in {:.2}s",
            summary.totals.turns + summary.totals.unconfirmed_turns,
            summary.totals.audio_seconds,
            summary.wall_seconds
        );
    }
    if format == Format::Jsonl {
        // A failure to write these is caught by the watch just below.
        if let Some(report) = report {
            let _ = data.event(&Event::Client(ClientEvent::Assertions(Box::new(report))));
        }
        let _ = data.event(&Event::Client(ClientEvent::Summary(Box::new(summary))));
    }
    if let Some(failed) = watch.failure() {
        return failed.ending(code);
    }
    Ending {
        code,
        error,
        output_closed: false,
    }
}

pub(super) fn caption_format(format: Format) -> Option<CaptionFormat> {
    match format {
        Format::Srt => Some(CaptionFormat::Srt),
        Format::Vtt => Some(CaptionFormat::Vtt),
        _ => None,
    }
}

/// Streams one source through one session and renders it; returns the exit code.
pub(super) async fn stream<S, N>(
    plan: Plan,
    source: S,
    output: &OutputArgs,
    end_note: N,
    extras: Extras,
) -> anyhow::Result<u8>
where
    S: Source + 'static,
    N: FnOnce(&S) -> Option<String> + Send + 'static,
{
    let info = source.info().clone();
    let (control_tx, controls) = mpsc::channel(16);
    let feed = start_feed(&plan, source, end_note, &control_tx)?;
    let format = match output.format() {
        Format::Live if !live::available() => {
            if !output.quiet {
                eprintln!("flux: warning: --format live needs a terminal on stdout; printing text");
            }
            Format::Text
        }
        f => f,
    };
    // The live view shows the level, progress and status itself: no stderr meter or bar.
    let extras_meter = extras.meter.filter(|_| format != Format::Live);
    let total = info
        .total_frames
        .map(|frames| frames as f64 / f64::from(info.sample_rate.max(1)));
    let bar = match total {
        Some(t) if format != Format::Live && !output.quiet && progress::available() => {
            Some(progress::bar(t, output.color_forced()))
        }
        _ => None,
    };
    // The view owns stderr too when it is the same terminal: status goes into the view.
    let notes_in_view = format == Format::Live && io::stderr().is_terminal();
    let (live_view, mut live_sink) = match format {
        Format::Live => {
            let (view, sink) = LiveView::start(LiveOptions {
                color: live::colour_wanted(output.color_forced()),
                controls: Some(control_tx.clone()),
                stopped: Some(extras.stopped.clone()),
                finish_grace: extras.live.then_some(LIVE_STOP_GRACE),
                total_seconds: total,
                mic_level: extras.level.clone(),
                notes: notes_in_view && !output.quiet,
                eot_threshold: plan.session.eot_threshold,
            });
            (Some(view), Some(sink))
        }
        _ => (None, None),
    };
    let stdout_bar = bar.clone().filter(|_| io::stdout().is_terminal());
    let screen = extras_meter.as_ref().map(|(screen, _)| screen.clone());
    let registry = Controls::default();
    if let Ok(mut list) = registry.lock() {
        list.push(control_tx);
    }
    handle_interrupts(registry, extras.stopped, extras.live, screen.clone());
    let watch = OutputWatch::default();
    let data: Box<dyn Sink> = match (format, &screen) {
        (Format::Live, _) if live_sink.is_some() => match live_sink.take() {
            Some(sink) => Box::new(sink),
            None => Box::new(TextSink::new(io::stdout())),
        },
        (Format::Srt | Format::Vtt, _) => Box::new(CaptionSink::new(
            Suspended::new(stdout_bar, io::stdout()),
            caption_format(format).unwrap_or(CaptionFormat::Srt),
        )),
        // With a meter on the terminal, writers that share it erase the meter line first.
        (Format::Text, Some(s)) if io::stdout().is_terminal() => {
            Box::new(TextSink::new(s.writer(io::stdout())))
        }
        (Format::Jsonl, Some(s)) if io::stdout().is_terminal() => {
            Box::new(JsonlSink::new(s.writer(io::stdout())))
        }
        (Format::Text | Format::Live, _) => Box::new(TextSink::new(Suspended::new(
            stdout_bar.clone(),
            io::stdout(),
        ))),
        (Format::Jsonl, _) => Box::new(JsonlSink::new(Suspended::new(stdout_bar, io::stdout()))),
    };
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(Watched::new(data, watch.clone()))];
    if !output.quiet && !notes_in_view {
        sinks.push(match &screen {
            Some(s) => Box::new(StatusSink::new(s.writer(io::stderr()))),
            None => Box::new(StatusSink::new(Suspended::new(bar.clone(), io::stderr()))),
        });
    }
    if let (Some(bar), Some(total)) = (&bar, total) {
        sinks.push(Box::new(ProgressSink::new(bar.clone(), total)));
    }
    let mut sink = Fanout(sinks);

    let meter = extras_meter.map(|(screen, status)| Meter::start(screen, status));
    let mut recorder = recorder_for(&extras.expect);
    let (outcome, wall) = run_session(
        &plan,
        feed,
        &mut sink,
        controls,
        extras.tap,
        recorder.as_mut(),
    )
    .await;
    // Erase the meter, give the terminal back and clear the bar before the closing lines.
    drop(meter);
    if let Some(view) = live_view {
        view.finish();
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let checks = extras.expect.as_ref().zip(recorder.as_ref());
    let data: &mut dyn Sink = sink.0[0].as_mut();
    let ending = conclude(
        outcome,
        wall,
        checks,
        data,
        format,
        output.quiet,
        "",
        &watch,
    );
    if let Some(e) = ending.error {
        eprintln!("flux: error: {e:#}");
    }
    Ok(ending.code)
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// First Ctrl-C (or SIGTERM): finish every running stream like end of input (`stopped` tells
/// live sources to stop capturing, and a batch not to start more files). Second Ctrl-C: exit
/// 130 at once, after any line being written is complete (the stdout lock is taken first, so
/// JSONL never ends in half a line).
///
/// A live source ends its input itself once `stopped` is set, after handing over what it
/// captured, so the session is only told to finish if that has not happened after
/// [`LIVE_STOP_GRACE`] (e.g. a driver that hangs on close).
pub(super) fn handle_interrupts(
    controls: Controls,
    stopped: Arc<AtomicBool>,
    live: bool,
    screen: Option<Screen>,
) {
    tokio::spawn(async move {
        let mut interrupts = 0u32;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    if r.is_err() { return; }
                }
                _ = terminate() => {}
            }
            interrupts += 1;
            if interrupts == 1 {
                stopped.store(true, Ordering::SeqCst);
                let message = "flux: finishing the stream (Ctrl-C again to quit at once)";
                match &screen {
                    Some(s) => {
                        let _ = writeln!(s.writer(io::stderr()), "{message}");
                    }
                    // The live view shows "finishing" itself; a line here would tear it.
                    None if live::is_active() => {}
                    None => eprintln!("{message}"),
                }
                let senders: Vec<_> = match controls.lock() {
                    Ok(list) => list.clone(),
                    Err(_) => Vec::new(),
                };
                if live {
                    tokio::spawn(async move {
                        tokio::time::sleep(LIVE_STOP_GRACE).await;
                        // Ignored by the session when the input has already ended.
                        for tx in senders {
                            let _ = tx.send(Control::Finish).await;
                        }
                    });
                } else {
                    for tx in senders {
                        // A finished session has dropped its receiver; nothing to tell it.
                        let _ = tx.send(Control::Finish).await;
                    }
                }
            } else {
                live::restore_terminal();
                let _out = io::stdout().lock();
                let _ = io::stderr().flush();
                std::process::exit(i32::from(ExitCode::Interrupted.code()));
            }
        }
    });
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}
