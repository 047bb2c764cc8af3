//! `flux file a.wav b.wav ...`: several files, each its own stream (its own connection and
//! request id), up to `--jobs` at once in this process.
//!
//! Output: text lines start with the file (`a.wav: ...`, as grep does) and JSONL lines carry
//! `"file"`. Every line is written whole by one `write_all` on the shared stdout, so streams
//! never mix mid-line; lines from different files appear as they happen, each file's in its
//! own order. Each file gets its closing lines on stderr as it finishes, and the exit status
//! is the worst of all files' (`pipeline::worst`).

use super::Plan;
use super::controller::Controller;
use super::pipeline::{conclude, recorder_for, run_session, start_feed, worst};
use super::writer;
use crate::assertions::Expectations;
use crate::audio::wav::WavSource;
use crate::cli::{FileArgs, Format};
use crate::error::{FluxError, exit, exit_code_for};
use crate::output::jsonl::JsonlSink;
use crate::output::labelled::Labelled;
use crate::output::status::StatusSink;
use crate::output::text::{TextSink, one_line};
use crate::output::{Fanout, Sink, Terminal};
use crate::session::{ClientEvent, Event, Summary};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Default `--jobs`: enough to overlap a few real-time streams without running into a
/// hosted account's concurrency limit.
const DEFAULT_JOBS: usize = 4;

/// What every file's stream shares.
struct Shared {
    plan: Plan,
    expect: Option<Expectations>,
    format: Format,
    quiet: bool,
    controller: Controller,
}

pub(super) async fn run(
    args: FileArgs,
    plan: Plan,
    expect: Option<Expectations>,
    format: Format,
) -> anyhow::Result<u8> {
    let jobs = args
        .jobs
        .map_or(DEFAULT_JOBS.min(args.paths.len()), |j| j as usize)
        .max(1);
    let stopped = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        plan,
        expect,
        format,
        quiet: args.output.quiet,
        controller: Controller::new(stopped.clone(), None),
    });
    shared.controller.listen_for_signals();

    let mut pending = args.paths.iter().cloned();
    let mut running = JoinSet::new();
    let (mut code, mut failed, mut done) = (exit::SUCCESS, 0usize, 0usize);
    let mut closed = false;
    loop {
        while running.len() < jobs && !stopped.load(Ordering::SeqCst) {
            let Some(path) = pending.next() else { break };
            running.spawn(one_file(path, shared.clone()));
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        // A task that panicked is a bug: it counts as an internal error, the rest go on.
        let (file_code, output_closed) = joined.unwrap_or((exit::INTERNAL, false));
        if output_closed {
            // The reader went away (`| head -1`): start nothing more and end quietly.
            closed = true;
            stopped.store(true, Ordering::SeqCst);
        }
        done += 1;
        if file_code != exit::SUCCESS {
            failed += 1;
        }
        code = worst(code, file_code);
    }
    let skipped: Vec<PathBuf> = pending.collect();
    if closed {
        return Ok(code);
    }
    for path in &skipped {
        eprintln!("flux: {}: not streamed (interrupted)", label(path));
    }
    if !shared.quiet {
        let skipped = if skipped.is_empty() {
            String::new()
        } else {
            format!(", {} not streamed", skipped.len())
        };
        eprintln!(
            "flux: {done} file(s) streamed: {} ok, {failed} failed{skipped}; exit status {code}",
            done - failed
        );
    }
    Ok(code)
}

/// Refuses flags that make sense for one stream only; decides the output format for several.
pub(super) fn check(args: &FileArgs, term: &Terminal) -> Result<Format, FluxError> {
    let one_only = |flag: &str, why: &str| {
        FluxError::Usage(format!(
            "{flag} works with one file ({why}); run flux once per file"
        ))
    };
    if args.save_audio.is_some() {
        return Err(one_only("--save-audio", "it names one output file"));
    }
    if args.stream.control.is_some() {
        return Err(one_only("--control", "its requests are for one stream"));
    }
    if args.paths.iter().filter(|p| *p == Path::new("-")).count() > 1 {
        return Err(FluxError::Usage(
            "`-` (stdin) can be given only once".into(),
        ));
    }
    Ok(
        match (args.output.format, args.output.format(term.live())) {
            (_, Format::Srt | Format::Vtt) => {
                return Err(one_only(
                    "--format srt/vtt",
                    "a caption file holds one stream",
                ));
            }
            (Some(Format::Live), _) => {
                if !args.output.quiet {
                    eprintln!(
                        "flux: warning: the live view shows one stream; printing text for {} files",
                        args.paths.len()
                    );
                }
                Format::Text
            }
            // The default on a terminal is the live view; with several files it is text.
            (_, Format::Live) => Format::Text,
            (_, f) => f,
        },
    )
}

/// How a file is named in output: as given, on one line; stdin as `(stdin)`.
fn label(path: &Path) -> String {
    if path == Path::new("-") {
        "(stdin)".into()
    } else {
        one_line(&path.display().to_string())
    }
}

/// Streams one file of the batch; returns its exit code and whether stdout was closed by its
/// reader. Its error, if any, is printed here, labelled, as soon as it happens.
async fn one_file(path: PathBuf, shared: Arc<Shared>) -> (u8, bool) {
    let name = label(&path);
    let who = format!("{name}: ");
    let mut data: Box<dyn Sink> = match shared.format {
        Format::Jsonl => Box::new(JsonlSink::new(io::stdout()).with_file(name.clone())),
        _ => Box::new(TextSink::new(Labelled::new(io::stdout(), who.clone()))),
    };
    let source = if path == Path::new("-") {
        WavSource::from_reader("stdin", Box::new(io::stdin()))
    } else {
        WavSource::open(&path)
    };
    let source = match source {
        Ok(s) => s,
        Err(e) => {
            return (
                not_started(&who, data.as_mut(), shared.format, e.into()),
                false,
            );
        }
    };
    let (control_tx, controls) = mpsc::channel(16);
    let feed = match start_feed(
        &shared.plan,
        source,
        |_| None,
        &control_tx,
        &shared.controller,
    ) {
        Ok(feed) => feed,
        Err(e) => return (not_started(&who, data.as_mut(), shared.format, e), false),
    };
    shared.controller.register(control_tx);
    let mut sinks = vec![data];
    if !shared.quiet {
        sinks.push(Box::new(StatusSink::new(
            Labelled::new(io::stderr(), who.clone()).after("flux: "),
        )));
    }
    // Sinks run on a writer thread of their own: a stalled reader never holds up a session.
    let (mut forward, writer) = writer::spawn(None, Fanout(sinks), shared.quiet);
    let mut recorder = recorder_for(&shared.plan, &shared.expect);
    let (mut outcome, wall) = run_session(
        &shared.plan,
        feed,
        &mut forward,
        controls,
        None,
        recorder.as_mut(),
    )
    .await;
    let mut written = writer::drain(writer, &mut outcome).await;
    let checks = shared.expect.as_ref().zip(recorder.as_ref());
    let mut nothing = Fanout(Vec::new());
    let ending = conclude(
        outcome,
        wall,
        checks,
        match written.sinks.0.first_mut() {
            Some(sink) => sink.as_mut(),
            None => &mut nothing,
        },
        shared.format,
        shared.quiet,
        &who,
    );
    if let (Some(e), false) = (&ending.error, ending.output_closed) {
        eprintln!("flux: {who}error: {}", super::error_text(e));
    }
    (ending.code, ending.output_closed)
}

/// A file that could not be streamed at all (unreadable, not a WAV): its error on stderr
/// and, in JSONL, a summary line saying so, so every file has one.
fn not_started(who: &str, data: &mut dyn Sink, format: Format, error: anyhow::Error) -> u8 {
    let code = exit_code_for(&error);
    eprintln!("flux: {who}error: {}", super::error_text(&error));
    if format == Format::Jsonl {
        let summary = Summary {
            exit_code: code,
            error: Some(format!("{error:#}")),
            ..Summary::default()
        };
        let _ = data.event(&Event::Client(ClientEvent::Summary(Box::new(summary))));
    }
    code
}
