//! Conversations with two (or more) sides (`--split-channels`): one stream per channel, each
//! with its own conditioner (the channel picked, never mixed), connection, reconnects and end
//! of stream, and one timeline for all of them, ordered by audio time (`sides/timeline.rs`).
//!
//! Text lines start with the side's label (`agent: ...`), JSONL lines carry `"channel"` and
//! `"label"`, captions name the speaker. A side that fails does not stop the others: it gets
//! its closing lines (and its error) on stderr, and the exit status is the most serious of
//! all sides', as a batch's is. Assertions are checked per side (`--expect-file agent=a.txt`).

mod demux;
mod output;
pub(super) mod start;
mod timeline;

use super::Plan;
use super::controller::Controller;
use super::output_watch::OutputWatch;
use super::pipeline::{recorder_for, run_session, start_feed};
use crate::assertions::{AssertConfig, Expectations, Recorder};
use crate::audio::Source;
use crate::cli::{Format, OutputArgs};
use crate::error::{ExitCode, FluxError};
use crate::output::live::{LiveOptions, LiveView};
use crate::output::meter::{Meter, MeterInput, Screen};
use crate::output::{Sink, Terminal};
use crate::session::tap::{Tap, WavTap};
use crate::session::{Event, Outcome};
pub(super) use demux::Notes;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, mpsc as std_mpsc};
use tokio::sync::mpsc;

/// The sides' names: `--channel-labels` (one per channel) or `ch0`, `ch1`, ...
pub(super) fn labels(given: &[String], channels: u16) -> Result<Vec<String>, FluxError> {
    labels_for(given, channels, "channel")
}

/// [`labels`] for sides that are `what` (`channel`, or `--device`).
pub(super) fn labels_for(
    given: &[String],
    channels: u16,
    what: &str,
) -> Result<Vec<String>, FluxError> {
    if given.is_empty() {
        return Ok((0..channels).map(|c| format!("ch{c}")).collect());
    }
    if given.len() != usize::from(channels) {
        let (has, one) = if what == "channel" {
            (format!("the input has {channels} channel(s)"), "channel")
        } else {
            (format!("{channels} {what} were given"), what)
        };
        return Err(FluxError::Usage(format!(
            "--channel-labels has {} label(s) but {has}; give one label per {one} (e.g. \
             --channel-labels {})",
            given.len(),
            (0..channels)
                .map(|c| format!("side{c}"))
                .collect::<Vec<_>>()
                .join(",")
        )));
    }
    for (i, label) in given.iter().enumerate() {
        let fine = !label.is_empty()
            && !label.starts_with('.')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !fine {
            return Err(FluxError::Usage(format!(
                "invalid --channel-labels: `{}` is not a label; use letters, digits, `-`, `_` \
                 and `.` (labels name output files and caption speakers)",
                crate::output::text::one_line(label)
            )));
        }
        if given[..i].contains(label) {
            return Err(FluxError::Usage(format!(
                "invalid --channel-labels: `{label}` is given twice; each side needs its own"
            )));
        }
    }
    Ok(given.to_vec())
}

/// `--save-audio call.wav` with a side `agent` writes `call.agent.wav`.
pub(super) fn side_path(save: &Path, label: &str) -> PathBuf {
    let stem = save
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match save.extension() {
        Some(ext) => format!("{stem}.{label}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{label}.wav"),
    };
    save.with_file_name(name)
}

/// One `--save-audio` file per side, created before streaming so a bad path fails at once.
pub(super) fn taps(
    save: Option<&Path>,
    labels: &[String],
    sample_rate: u32,
) -> Result<Vec<Option<Box<dyn Tap>>>, FluxError> {
    labels
        .iter()
        .map(|label| {
            let Some(save) = save else { return Ok(None) };
            let path = side_path(save, label);
            WavTap::create(&path, sample_rate)
                .map(|t| Some(Box::new(t) as Box<dyn Tap>))
                .map_err(|e| {
                    FluxError::Usage(format!(
                        "invalid --save-audio: cannot create {}: {e}",
                        path.display()
                    ))
                })
        })
        .collect()
}

/// Each side's checks. `--expect-file LABEL=FILE` is that side's text; `--expect-turns` and
/// `--max-eot-latency-ms` apply to every side on its own.
pub(super) fn expectations(
    config: &AssertConfig,
    files: &[PathBuf],
    labels: &[String],
    paced: bool,
) -> Result<Vec<Option<Expectations>>, FluxError> {
    if config.expect_text.is_some() {
        return Err(FluxError::Usage(
            "--expect-text is for one stream; with --split-channels give each side's text as \
             --expect-file LABEL=FILE"
                .into(),
        ));
    }
    let mut per_side: Vec<Option<PathBuf>> = vec![None; labels.len()];
    for file in files {
        let given = file.to_string_lossy();
        let side = given
            .split_once('=')
            .and_then(|(label, path)| Some((labels.iter().position(|l| l == label)?, path)));
        let Some((i, path)) = side else {
            return Err(FluxError::Usage(format!(
                "--expect-file {given}: with --split-channels, name the side: --expect-file \
                 LABEL=FILE, where LABEL is one of {}",
                labels.join(", ")
            )));
        };
        if per_side[i].is_some() {
            return Err(FluxError::Usage(format!(
                "--expect-file: side `{}` is given twice",
                labels[i]
            )));
        }
        per_side[i] = Some(PathBuf::from(path));
    }
    per_side
        .into_iter()
        .map(|file| {
            Expectations::from_config(
                &AssertConfig {
                    expect_file: file,
                    ..config.clone()
                },
                paced,
            )
        })
        .collect()
}

/// What the sides' streams need besides their sources.
pub(super) struct Sides {
    pub plan: Arc<Plan>,
    pub labels: Vec<String>,
    pub expect: Vec<Option<Expectations>>,
    pub taps: Vec<Option<Box<dyn Tap>>>,
    /// In a batch: the file, named on every line before the side, and the batch's controller.
    pub batch: Option<(String, Controller)>,
}

/// What a side's session sends to the timeline.
// Events pass through one at a time, as `Event` itself does (see event/mod.rs).
#[allow(clippy::large_enum_variant)]
enum Msg {
    Event(usize, Event),
    Done(usize, Box<Finished>),
}

struct Finished {
    outcome: Outcome,
    wall: f64,
    recorder: Option<Recorder>,
}

#[allow(clippy::large_enum_variant)]
enum Item {
    Event(Event),
    Done(Box<Finished>),
}

/// A side's session writes here: it only queues, so no side ever waits for output. A write
/// that failed is handed back on the next event, and the session ends quietly as usual.
struct ToTimeline {
    side: usize,
    tx: std_mpsc::Sender<Msg>,
    failed: Arc<Mutex<Option<(io::ErrorKind, String)>>>,
}

impl Sink for ToTimeline {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.take(event.clone())
    }

    fn take(&mut self, event: Event) -> io::Result<()> {
        if let Some((kind, message)) = &*self.failed.lock().unwrap_or_else(PoisonError::into_inner)
        {
            return Err(io::Error::new(*kind, message.clone()));
        }
        self.tx
            .send(Msg::Event(self.side, event))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "output is gone"))
    }
}

/// Live sources (microphones): the first Ctrl-C sets `stopped`, and each source then ends
/// its input by itself within `grace`.
pub(super) struct Live {
    pub stopped: Arc<AtomicBool>,
    pub grace: Option<std::time::Duration>,
    /// stdout's watch, when it is shared with other streams (a batch).
    pub watch: Option<OutputWatch>,
    /// Each device's level, for the meter on stderr (one side per device).
    pub meters: Vec<MeterInput>,
}

/// Streams every channel of a split source; returns the exit code.
pub(super) async fn run(
    sides: Sides,
    sources: Vec<demux::ChannelSource>,
    output: &OutputArgs,
    term: &Terminal,
) -> anyhow::Result<u8> {
    let live = Live {
        stopped: Arc::new(AtomicBool::new(false)),
        grace: None,
        watch: None,
        meters: Vec::new(),
    };
    run_live(sides, sources, |_| None, live, output, term).await
}

/// Streams every side and writes the merged timeline; returns the exit code. `end_note` is
/// asked of each source when its input ends (e.g. audio a microphone dropped).
pub(super) async fn run_live<S>(
    sides: Sides,
    sources: Vec<S>,
    end_note: fn(&S) -> Option<String>,
    live: Live,
    output: &OutputArgs,
    term: &Terminal,
) -> anyhow::Result<u8>
where
    S: Source + 'static,
{
    let format = super::pipeline::effective_format(output, term);
    let Sides {
        plan,
        labels,
        expect,
        taps,
        batch,
    } = sides;
    let (file, controller) = match batch {
        Some((file, controller)) => (Some(file), controller),
        None => (None, Controller::new(live.stopped, live.grace)),
    };
    let mut feeds = Vec::new();
    for source in sources {
        let (control_tx, controls) = mpsc::channel(16);
        let feed = start_feed(&plan, source, end_note, &control_tx, &controller)?;
        controller.register(control_tx);
        feeds.push((feed, controls));
    }
    // The view owns stderr too when it is the same terminal: status goes into the view.
    let notes_in_view = format == Format::Live && term.stderr_tty;
    let (view, live_sink) = match format {
        Format::Live => {
            let (view, mut sink) = LiveView::start(LiveOptions {
                color: term.colour,
                size: term.size,
                raw: true,
                total_seconds: None,
                mic_level: None,
                notes: notes_in_view && !output.quiet,
                eot_threshold: plan.session.eot_threshold,
            });
            sink.set_sides(labels.clone());
            (Some(view), Some(sink))
        }
        _ => (None, None),
    };
    let keys = view
        .as_ref()
        .filter(|v| v.raw())
        .map(|v| controller.read_keys(v.eot_threshold()));
    if file.is_none() {
        controller.listen_for_signals();
    }
    let watch = live.watch.unwrap_or_default();
    // The live view shows its own status; elsewhere the devices' levels go on stderr.
    let meters = (!live.meters.is_empty()
        && format != Format::Live
        && !output.quiet
        && term.stderr_redraw())
    .then_some(live.meters);
    let screen = meters.as_ref().map(|_| Screen::default());
    let outs = output::outputs(
        &labels,
        file.as_deref(),
        format,
        output.quiet || notes_in_view,
        &watch,
        screen.as_ref().map(|s| (s, term.stdout_tty)),
    );
    let meter = meters
        .zip(screen)
        .map(|(inputs, screen)| Meter::start_many(screen, inputs, term));
    let defer = meter.is_some();
    let failed = Arc::new(Mutex::new(None));
    let (tx, rx) = std_mpsc::channel();
    let writer = {
        let shared = output::Shared {
            expect: expect.clone(),
            format,
            quiet: output.quiet,
            watch: watch.clone(),
            failed: failed.clone(),
        };
        std::thread::Builder::new()
            .name("flux-timeline".into())
            .spawn(move || output::write_timeline(rx, outs, live_sink, defer, &shared))?
    };
    let mut running = tokio::task::JoinSet::new();
    for (side, (((feed, controls), tap), expect)) in
        feeds.into_iter().zip(taps).zip(expect).enumerate()
    {
        let (plan, tx) = (plan.clone(), tx.clone());
        let mut sink = ToTimeline {
            side,
            tx: tx.clone(),
            failed: failed.clone(),
        };
        running.spawn(async move {
            let mut recorder = recorder_for(&expect);
            let (outcome, wall) =
                run_session(&plan, feed, &mut sink, controls, tap, recorder.as_mut()).await;
            let finished = Finished {
                outcome,
                wall,
                recorder,
            };
            let _ = tx.send(Msg::Done(side, Box::new(finished)));
        });
    }
    drop(tx);
    while running.join_next().await.is_some() {}
    let written = tokio::task::spawn_blocking(move || writer.join()).await?;
    // The terminal is given back (and the meter erased) before any closing line is printed.
    drop(meter);
    drop(keys);
    if let Some(view) = view {
        view.finish();
    }
    let endings = match written {
        Ok(mut written) => written.close_deferred(),
        Err(_) => Vec::new(),
    };
    let mut code = ExitCode::Success.code();
    let mut closed = false;
    for (side_code, output_closed) in &endings {
        code = ExitCode::worst(code, *side_code);
        closed |= output_closed;
    }
    if endings.len() < labels.len() {
        code = ExitCode::worst(code, ExitCode::Internal.code());
    }
    if closed && let Some(failed) = watch.failure() {
        eprintln!("flux: error: {}", failed.error());
        code = ExitCode::worst(code, ExitCode::Output.code());
    }
    Ok(code)
}

/// Splits a source into its channels' mono sources (see `sides/demux.rs`).
pub(super) fn split<S, N>(
    source: S,
    notes: Notes,
    end_note: N,
) -> io::Result<Vec<demux::ChannelSource>>
where
    S: Source + 'static,
    N: FnOnce(&S) -> Option<String> + Send + 'static,
{
    demux::split(source, notes, end_note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_default_to_channel_numbers_and_must_match_the_count() {
        assert_eq!(labels(&[], 2).unwrap(), ["ch0", "ch1"]);
        let given = vec!["agent".to_string(), "caller".to_string()];
        assert_eq!(labels(&given, 2).unwrap(), given);
        let e = labels(&given, 3).unwrap_err().to_string();
        assert!(
            e.contains("2 label(s)") && e.contains("3 channel(s)"),
            "{e}"
        );
        for bad in ["a b", "", "../x", "a/b"] {
            let e = labels(&[bad.into(), "ok".into()], 2).unwrap_err();
            assert!(matches!(e, FluxError::Usage(_)), "{bad}");
        }
        assert!(labels(&["a".into(), "a".into()], 2).is_err());
    }

    #[test]
    fn each_side_saves_its_own_file_named_from_its_label() {
        assert_eq!(
            side_path(Path::new("out/call.wav"), "agent"),
            Path::new("out/call.agent.wav")
        );
        assert_eq!(side_path(Path::new("rec"), "ch1"), Path::new("rec.ch1.wav"));
    }

    #[test]
    fn expect_file_names_its_side() {
        let dir = std::env::temp_dir().join(format!("flux-sides-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.txt");
        std::fs::write(&a, "hello").unwrap();
        let labels = vec!["agent".to_string(), "caller".to_string()];
        let config = AssertConfig {
            expect_turns: Some(1),
            ..AssertConfig::default()
        };
        let files = vec![PathBuf::from(format!("agent={}", a.display()))];
        let got = expectations(&config, &files, &labels, true).unwrap();
        assert_eq!(got[0].as_ref().unwrap().text.as_ref().unwrap().0, "hello");
        // The caller has no text to match, but its turns are still counted.
        assert!(got[1].as_ref().unwrap().text.is_none());
        assert_eq!(got[1].as_ref().unwrap().turns, Some(1));
        let unnamed = vec![a.clone()];
        assert!(expectations(&config, &unnamed, &labels, true).is_err());
        let text = AssertConfig {
            expect_text: Some("x".into()),
            ..AssertConfig::default()
        };
        assert!(expectations(&text, &[], &labels, true).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
