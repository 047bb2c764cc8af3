//! One stream from source to sinks: the conditioner and feed, the session, the output, and
//! how it ended (summary, assertions, exit code). `stream` runs a single stream with every
//! terminal nicety (live view, progress bar, level meter); `batch` reuses the pieces for
//! several files at once.

use super::Plan;
use super::controller::Controller;
use super::output_watch::{OutputWatch, Watched};
use super::writer;
use crate::assertions::{Expectations, Recorder, Recording};
use crate::audio::Source;
use crate::audio::condition::Conditioner;
use crate::cli::{Format, OutputArgs};
use crate::error::{ExitCode, FluxError};
use crate::output::captions::{CaptionFormat, CaptionSink};
use crate::output::jsonl::JsonlSink;
use crate::output::live::{LiveOptions, LiveView};
use crate::output::meter::{Meter, MeterInput, Screen};
use crate::output::progress::{self, ProgressSink, Suspended};
use crate::output::status::StatusSink;
use crate::output::text::TextSink;
use crate::output::{Fanout, Sink, Terminal};
use crate::session::tap::Tap;
use crate::session::{self, ClientEvent, Control, Event, Feed, Outcome, Summary};
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// After the first Ctrl-C, how long a live source may take to end its input by itself.
pub(super) const LIVE_STOP_GRACE: Duration = Duration::from_secs(3);

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
    /// A level to draw as a meter on stderr while capturing (where stderr can redraw).
    pub meter: Option<MeterInput>,
    /// The microphone level (f32 bits, dBFS) for the live view's status line.
    pub level: Option<Arc<std::sync::atomic::AtomicU32>>,
    /// `flux file`'s CI assertions.
    pub expect: Option<Expectations>,
}

/// Starts the audio thread and the `--control` reader for one stream.
pub(super) fn start_feed<S, N>(
    plan: &Plan,
    source: S,
    end_note: N,
    control_tx: &mpsc::Sender<Control>,
    controller: &Controller,
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
        controller
            .read_control_file(path.clone(), control_tx.clone())
            .map_err(|e| {
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
    term: Terminal,
    end_note: N,
    extras: Extras,
) -> anyhow::Result<u8>
where
    S: Source + 'static,
    N: FnOnce(&S) -> Option<String> + Send + 'static,
{
    let info = source.info().clone();
    let controller = Controller::new(
        extras.stopped.clone(),
        extras.live.then_some(LIVE_STOP_GRACE),
    );
    let (control_tx, controls) = mpsc::channel(16);
    let feed = start_feed(&plan, source, end_note, &control_tx, &controller)?;
    controller.register(control_tx);
    let format = effective_format(output, &term);
    // The live view shows the level, progress and status itself: no stderr meter or bar.
    let meter_input = extras
        .meter
        .filter(|_| format != Format::Live && !output.quiet && term.stderr_redraw());
    let total = info
        .total_frames
        .map(|frames| frames as f64 / f64::from(info.sample_rate.max(1)));
    let bar = match total {
        Some(t) if format != Format::Live && !output.quiet && term.stderr_redraw() => {
            Some(progress::bar(t, term.colour))
        }
        _ => None,
    };
    // The view owns stderr too when it is the same terminal: status goes into the view.
    let notes_in_view = format == Format::Live && term.stderr_tty;
    let (live_view, live_sink) = match format {
        Format::Live => {
            let (view, sink) = LiveView::start(LiveOptions {
                color: term.colour,
                size: term.size,
                raw: true,
                total_seconds: total,
                mic_level: extras.level.clone(),
                notes: notes_in_view && !output.quiet,
                eot_threshold: plan.session.eot_threshold,
            });
            (Some(view), Some(sink))
        }
        _ => (None, None),
    };
    let keys = live_view
        .as_ref()
        .filter(|v| v.raw())
        .map(|v| controller.read_keys(v.eot_threshold()));
    let stdout_bar = bar.clone().filter(|_| term.stdout_tty);
    let screen = meter_input.as_ref().map(|_| Screen::default());
    // Messages for people go around the bar or the meter, so neither is torn (issue 13).
    if let Some(bar) = &bar {
        let b = bar.clone();
        controller.say_with(Box::new(move |m| b.suspend(|| eprintln!("{m}"))));
        let b = bar.clone();
        controller.on_abort(move || b.finish_and_clear());
    } else if let Some(s) = &screen {
        let s2 = s.clone();
        controller.say_with(Box::new(move |m| {
            let _ = writeln!(s2.writer(io::stderr()), "{m}");
        }));
        let s2 = s.clone();
        controller.on_abort(move || s2.clear());
    }
    controller.listen_for_signals();
    // The data sink first (the closing JSONL lines go to it). The live view's sink goes to
    // the writer apart from the others: it redraws once per batch of events.
    let watch = OutputWatch::default();
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let data = live_sink.is_none().then(|| -> Box<dyn Sink> {
        match (format, &screen) {
            (Format::Srt | Format::Vtt, _) => Box::new(CaptionSink::new(
                Suspended::new(stdout_bar, io::stdout()),
                caption_format(format).unwrap_or(CaptionFormat::Srt),
            )),
            // With a meter on the terminal, writers that share it erase the meter line first.
            (Format::Text, Some(s)) if term.stdout_tty => {
                Box::new(TextSink::new(s.writer(io::stdout())))
            }
            (Format::Jsonl, Some(s)) if term.stdout_tty => {
                Box::new(JsonlSink::new(s.writer(io::stdout())))
            }
            (Format::Text | Format::Live, _) => Box::new(TextSink::new(Suspended::new(
                stdout_bar.clone(),
                io::stdout(),
            ))),
            (Format::Jsonl, _) => {
                Box::new(JsonlSink::new(Suspended::new(stdout_bar, io::stdout())))
            }
        }
    });
    // Watched: a failed write to stdout (other than a closed pipe) decides the exit status.
    sinks.extend(data.map(|d| Box::new(Watched::new(d, watch.clone())) as Box<dyn Sink>));
    let status = !output.quiet && !notes_in_view;
    if status {
        sinks.push(match &screen {
            Some(s) => Box::new(StatusSink::new(s.writer(io::stderr()))),
            None => Box::new(StatusSink::new(Suspended::new(bar.clone(), io::stderr()))),
        });
    }
    if let (Some(bar), Some(total)) = (&bar, total) {
        sinks.push(Box::new(ProgressSink::new(bar.clone(), total)));
    }
    let live = live_sink.is_some();
    let (mut forward, writer) = writer::spawn(live_sink, Fanout(sinks), output.quiet);
    // Plain lines to stdout (and stderr): the session may write them itself when that cannot
    // block, sparing the output thread's wake-ups (src/app/writer.rs).
    if !live && bar.is_none() && screen.is_none() {
        forward.write_directly(status);
    }

    let meter = meter_input
        .zip(screen)
        .map(|(input, screen)| Meter::start(screen, input, &term));
    let mut recorder = recorder_for(&extras.expect);
    let (mut outcome, wall) = run_session(
        &plan,
        feed,
        &mut forward,
        controls,
        extras.tap,
        recorder.as_mut(),
    )
    .await;
    // Everything queued is written before the closing lines.
    let mut written = writer::drain(writer, &mut outcome).await;
    // Erase the meter, stop reading keys, give the terminal back and clear the bar before
    // the closing lines.
    drop(meter);
    drop(keys);
    if let Some(view) = live_view {
        view.finish();
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let checks = extras.expect.as_ref().zip(recorder.as_ref());
    // The live view writes no closing lines on stdout (only JSONL does).
    let mut nothing = Fanout(Vec::new());
    let data: &mut dyn Sink = match written.sinks.0.first_mut() {
        Some(sink) if !live => sink.as_mut(),
        _ => &mut nothing,
    };
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
        eprintln!("flux: error: {}", super::error_text(&e));
    }
    Ok(ending.code)
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The output format asked for, or text (with a warning) where live was asked for but
/// stdout is not a terminal.
pub(super) fn effective_format(output: &OutputArgs, term: &Terminal) -> Format {
    match output.format(term.live()) {
        Format::Live if !term.live() => {
            if !output.quiet {
                eprintln!("flux: warning: --format live needs a terminal on stdout; printing text");
            }
            Format::Text
        }
        f => f,
    }
}
