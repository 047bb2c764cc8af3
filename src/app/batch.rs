//! `flux file a.wav b.wav ...`: several files, each its own stream (its own connection and
//! request id), up to `--jobs` at once in this process.
//!
//! Output: text lines start with the file (`a.wav: ...`, as grep does) and JSONL lines carry
//! `"file"`. Every line is written whole by one `write_all` on the shared stdout, so streams
//! never mix mid-line; lines from different files appear as they happen, each file's in its
//! own order. Each file gets its closing lines on stderr as it finishes, and the exit status
//! is the worst of all files' (`ExitCode::worst`); a batch interrupted before every file was
//! streamed exits 9 at best, so a script can tell it from a complete one.

use super::Plan;
use super::controller::Controller;
use super::output_watch::{OutputWatch, Watched};
use super::pipeline::{conclude, recorder_for, run_session, start_feed};
use super::writer;
use crate::assertions::Expectations;
use crate::audio::wav::WavSource;
use crate::cli::{FileArgs, Format};
use crate::error::{ExitCode, FluxError, exit_code_for};
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
    plan: Arc<Plan>,
    expect: Option<Expectations>,
    format: Format,
    quiet: bool,
    controller: Controller,
    /// stdout, shared by every file.
    watch: OutputWatch,
    /// `--split-channels`: each file's channels are streams of their own.
    split: Option<Split>,
}

/// What every file of a split batch needs to make its sides.
struct Split {
    labels: Vec<String>,
    config: crate::assertions::AssertConfig,
    expect_files: Vec<PathBuf>,
    paced: bool,
}

pub(super) async fn run(
    args: FileArgs,
    plan: Plan,
    expect: Option<Expectations>,
    format: Format,
) -> anyhow::Result<u8> {
    let split = args.sides.split_channels.then(|| {
        let mut config = super::assert_config(&args.assert);
        config.expect_file = None;
        Split {
            labels: args.sides.channel_labels.clone(),
            config,
            expect_files: args.assert.expect_file.clone(),
            paced: !args.pace.fast,
        }
    });
    let jobs = args
        .jobs
        .map_or(DEFAULT_JOBS.min(args.paths.len()), |j| j as usize)
        .max(1);
    let stopped = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        plan: Arc::new(plan),
        split,
        expect,
        format,
        quiet: args.output.quiet,
        controller: Controller::new(stopped.clone(), None),
        watch: OutputWatch::default(),
    });
    shared.controller.listen_for_signals();

    let mut pending = args.paths.iter().cloned().zip(labels(&args.paths));
    let mut running = JoinSet::new();
    let (mut code, mut failed, mut done) = (ExitCode::Success.code(), 0usize, 0usize);
    let mut closed = false;
    // `--jobs` counts streams: a split file is one per channel (a file with more channels
    // than that runs alone). The next file waits, opened, until its streams fit.
    let mut busy = 0usize;
    let mut next: Option<Next> = None;
    loop {
        while !stopped.load(Ordering::SeqCst) {
            if next.is_none() {
                next = pending
                    .next()
                    .map(|(path, name)| Next::new(path, name, &shared));
            }
            let Some(file) = next.take_if(|f| busy == 0 || busy + f.streams <= jobs) else {
                break;
            };
            busy += file.streams;
            let (streams, shared) = (file.streams, shared.clone());
            running.spawn(async move {
                let (code, closed) = match file.opened {
                    Some(opened) => split_file(file.path, file.name, opened, shared).await,
                    None => one_file(file.path, file.name, shared).await,
                };
                (code, closed, streams)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        // A task that panicked is a bug: it counts as an internal error, the rest go on.
        let (file_code, output_closed, streams) =
            joined.unwrap_or((ExitCode::Internal.code(), false, 1));
        busy = busy.saturating_sub(streams);
        if output_closed {
            // The reader went away (`| head -1`): start nothing more and end quietly.
            closed = true;
            stopped.store(true, Ordering::SeqCst);
        }
        done += 1;
        if file_code != ExitCode::Success.code() {
            failed += 1;
        }
        code = ExitCode::worst(code, file_code);
    }
    let skipped: Vec<String> = next
        .map(|f| f.name)
        .into_iter()
        .chain(pending.map(|(_, name)| name))
        .collect();
    if closed {
        // A failed stdout is said once for the whole batch; a reader that left, never.
        if let Some(failed) = shared.watch.failure() {
            eprintln!("flux: error: {}", failed.error());
            code = ExitCode::worst(code, ExitCode::Output.code());
        }
        return Ok(code);
    }
    for name in &skipped {
        eprintln!("flux: {name}: not streamed (interrupted)");
    }
    if !skipped.is_empty() {
        code = ExitCode::worst(code, ExitCode::Incomplete.code());
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

/// The next file of the batch: with `--split-channels` already opened, to know its streams.
struct Next {
    path: PathBuf,
    name: String,
    streams: usize,
    opened: Option<Result<WavSource, crate::audio::AudioError>>,
}

impl Next {
    fn new(path: PathBuf, name: String, shared: &Shared) -> Next {
        if shared.split.is_none() {
            return Next {
                path,
                name,
                streams: 1,
                opened: None,
            };
        }
        let opened = open(&path);
        let streams = opened.as_ref().map_or(1, |s| {
            usize::from(crate::audio::Source::info(s).channels.max(1))
        });
        Next {
            path,
            name,
            streams,
            opened: Some(opened),
        }
    }
}

fn open(path: &Path) -> Result<WavSource, crate::audio::AudioError> {
    if path == Path::new("-") {
        WavSource::from_reader("stdin", Box::new(io::stdin()))
    } else {
        WavSource::open(path)
    }
}

/// One file of a split batch: its channels as sides, lines labelled `file: side: `.
async fn split_file(
    path: PathBuf,
    name: String,
    opened: Result<WavSource, crate::audio::AudioError>,
    shared: Arc<Shared>,
) -> (u8, bool) {
    use super::sides;
    let who = format!("{name}: ");
    let mut data: Box<dyn Sink> = match shared.format {
        Format::Jsonl => Box::new(JsonlSink::new(io::stdout()).with_file(name.clone())),
        _ => Box::new(TextSink::new(Labelled::new(io::stdout(), who.clone()))),
    };
    let Some(split) = &shared.split else {
        return (ExitCode::Internal.code(), false);
    };
    let prepared = opened.map_err(anyhow::Error::from).and_then(|source| {
        let channels = crate::audio::Source::info(&source).channels;
        let labels = sides::labels(&split.labels, channels)?;
        let expect = sides::expectations(&split.config, &split.expect_files, &labels, split.paced)?;
        let notes = sides::Notes {
            input: name.clone(),
            labels: labels.clone(),
            quiet: shared.quiet,
        };
        let sources = sides::split(source, notes, |_| None)?;
        Ok((labels, expect, sources))
    });
    let (labels, expect, sources) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let code = not_started(&path, &who, data.as_mut(), shared.format, e);
            return (code, shared.watch.failure().is_some());
        }
    };
    let taps = labels.iter().map(|_| None).collect();
    let sides = sides::Sides {
        plan: shared.plan.clone(),
        labels,
        expect,
        taps,
        batch: Some((name, shared.controller.clone())),
    };
    let output = crate::cli::OutputArgs {
        format: Some(shared.format),
        text: false,
        jsonl: false,
        quiet: shared.quiet,
        color: crate::cli::ColorChoice::Never,
    };
    let live = sides::Live {
        stopped: Arc::new(AtomicBool::new(false)),
        grace: None,
        watch: Some(shared.watch.clone()),
        meters: Vec::new(),
    };
    let term = Terminal::default();
    match sides::run_live(sides, sources, |_| None, live, &output, &term).await {
        Ok(code) => (code, shared.watch.failure().is_some()),
        Err(e) => {
            let code = exit_code_for(&e);
            eprintln!("flux: {who}error: {}", super::error_text(&e));
            (code, shared.watch.failure().is_some())
        }
    }
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

/// Every file's label, in order. A path given more than once gets its occurrence after a
/// `#` (`a.wav#1`, `a.wav#2`), so that each stream's lines can be told apart.
fn labels(paths: &[PathBuf]) -> Vec<String> {
    use std::collections::HashMap;
    let plain: Vec<String> = paths.iter().map(|p| label(p)).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for name in &plain {
        *count.entry(name.as_str()).or_insert(0) += 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    plain
        .iter()
        .map(|name| {
            if count.get(name.as_str()).copied().unwrap_or(0) < 2 {
                return name.clone();
            }
            let n = seen.entry(name.as_str()).or_insert(0);
            *n += 1;
            format!("{name}#{n}")
        })
        .collect()
}

/// Streams one file of the batch; returns its exit code and whether stdout is gone (closed by
/// its reader, or failing). Its error, if any, is printed here, labelled, as soon as it
/// happens.
async fn one_file(path: PathBuf, name: String, shared: Arc<Shared>) -> (u8, bool) {
    let who = format!("{name}: ");
    let data: Box<dyn Sink> = match shared.format {
        Format::Jsonl => Box::new(JsonlSink::new(io::stdout()).with_file(name.clone())),
        _ => Box::new(TextSink::new(Labelled::new(io::stdout(), who.clone()))),
    };
    let mut data: Box<dyn Sink> = Box::new(Watched::new(data, shared.watch.clone()));
    let source = if path == Path::new("-") {
        WavSource::from_reader("stdin", Box::new(io::stdin()))
    } else {
        WavSource::open(&path)
    };
    let source = match source {
        Ok(s) => s,
        Err(e) => {
            let code = not_started(&path, &who, data.as_mut(), shared.format, e.into());
            return (code, shared.watch.failure().is_some());
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
        Err(e) => {
            let code = not_started(&path, &who, data.as_mut(), shared.format, e);
            return (code, shared.watch.failure().is_some());
        }
    };
    shared.controller.register(control_tx);
    let mut sinks = vec![data];
    if !shared.quiet {
        sinks.push(Box::new(StatusSink::new(
            Labelled::new(io::stderr(), who.clone()).after("flux: "),
        )));
    }
    // Sinks run on the output thread every session of the process shares (app/writer.rs): a
    // stalled reader never holds up a session, and 100 streams cost one thread, not 100.
    let (mut forward, writer) = writer::spawn(None, Fanout(sinks), shared.quiet);
    let mut recorder = recorder_for(&shared.expect);
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
        &shared.watch,
    );
    // A failed stdout is reported once for the whole batch (see `run`).
    if let (Some(e), false) = (&ending.error, ending.output_closed) {
        eprintln!(
            "flux: {}error: {}",
            prefix(&path, &who, e),
            super::error_text(e)
        );
    }
    (ending.code, ending.output_closed)
}

/// The label before an error: the file's, unless the message already names the file as
/// given (`cannot open a.wav: ...`), which would say it twice.
fn prefix<'a>(path: &Path, who: &'a str, error: &anyhow::Error) -> &'a str {
    if path == Path::new("-") {
        return who;
    }
    let named = format!("{error:#}").contains(&path.display().to_string());
    if named && who == format!("{}: ", label(path)) {
        ""
    } else {
        who
    }
}

/// A file that could not be streamed at all (unreadable, not a WAV): its error on stderr
/// and, in JSONL, a summary line saying so, so every file has one.
fn not_started(
    path: &Path,
    who: &str,
    data: &mut dyn Sink,
    format: Format,
    error: anyhow::Error,
) -> u8 {
    let code = exit_code_for(&error);
    eprintln!(
        "flux: {}error: {}",
        prefix(path, who, &error),
        super::error_text(&error)
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_paths_get_their_occurrence_and_others_stay_as_given() {
        let paths: Vec<PathBuf> = ["a.wav", "b.wav", "a.wav", "-", "a.wav"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            labels(&paths),
            ["a.wav#1", "b.wav", "a.wav#2", "(stdin)", "a.wav#3"]
        );
    }

    #[test]
    fn an_error_that_names_its_file_is_not_labelled_again() {
        let path = Path::new("calls/a.wav");
        let named = anyhow::anyhow!("cannot open calls/a.wav: gone");
        let unnamed = anyhow::anyhow!("connection refused");
        assert_eq!(prefix(path, "calls/a.wav: ", &named), "");
        assert_eq!(prefix(path, "calls/a.wav: ", &unnamed), "calls/a.wav: ");
        // A repeated file keeps its occurrence label, which the message cannot give.
        assert_eq!(prefix(path, "calls/a.wav#2: ", &named), "calls/a.wav#2: ");
        // stdin is `-` on the command line: its label always stays.
        let dash = anyhow::anyhow!("stdin is not a WAV file (a - b)");
        assert_eq!(prefix(Path::new("-"), "(stdin): ", &dash), "(stdin): ");
    }
}
