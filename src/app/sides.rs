//! Conversations with two (or more) sides (`--split-channels`): one stream per channel, each
//! with its own conditioner (the channel picked, never mixed), connection, reconnects and end
//! of stream, and one timeline for all of them, ordered by audio time (`sides/timeline.rs`).
//!
//! Text lines start with the side's label (`agent: ...`), JSONL lines carry `"channel"` and
//! `"label"`, captions name the speaker. A side that fails does not stop the others: it gets
//! its closing lines (and its error) on stderr, and the exit status is the most serious of
//! all sides', as a batch's is. Assertions are checked per side (`--expect-file agent=a.txt`).

mod demux;
mod timeline;

use super::Plan;
use super::controller::Controller;
use super::output_watch::{OutputWatch, Watched};
use super::pipeline::{caption_format, conclude, recorder_for, run_session, start_feed};
use crate::assertions::{AssertConfig, Expectations, Recorder};
use crate::audio::Source;
use crate::cli::{Format, OutputArgs};
use crate::error::{ExitCode, FluxError};
use crate::output::captions::CaptionSink;
use crate::output::jsonl::JsonlSink;
use crate::output::labelled::Labelled;
use crate::output::status::StatusSink;
use crate::output::text::TextSink;
use crate::output::{Sink, Terminal};
use crate::protocol::ServerMessage;
use crate::session::tap::{Tap, WavTap};
use crate::session::{ClientEvent, Event, Outcome};
pub(super) use demux::Notes;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, mpsc as std_mpsc};
use timeline::Timeline;
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
    pub plan: Plan,
    pub labels: Vec<String>,
    pub expect: Vec<Option<Expectations>>,
    pub taps: Vec<Option<Box<dyn Tap>>>,
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
        if let Some((kind, message)) = &*self.failed.lock().unwrap_or_else(PoisonError::into_inner)
        {
            return Err(io::Error::new(*kind, message.clone()));
        }
        self.tx
            .send(Msg::Event(self.side, event.clone()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "output is gone"))
    }
}

/// Live sources (microphones): the first Ctrl-C sets `stopped`, and each source then ends
/// its input by itself within `grace`.
pub(super) struct Live {
    pub stopped: Arc<AtomicBool>,
    pub grace: Option<std::time::Duration>,
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
    let format = match output.format(term.live()) {
        Format::Live => {
            if output.format == Some(Format::Live) && !output.quiet {
                eprintln!(
                    "flux: warning: the live view shows one stream; printing text for {} sides",
                    sides.labels.len()
                );
            }
            Format::Text
        }
        f => f,
    };
    let Sides {
        plan,
        labels,
        expect,
        taps,
    } = sides;
    let controller = Controller::new(live.stopped, live.grace);
    let mut feeds = Vec::new();
    for source in sources {
        let (control_tx, controls) = mpsc::channel(16);
        let feed = start_feed(&plan, source, end_note, &control_tx, &controller)?;
        controller.register(control_tx);
        feeds.push((feed, controls));
    }
    controller.listen_for_signals();

    let watch = OutputWatch::default();
    let outs = outputs(&labels, format, output.quiet, &watch);
    let failed = Arc::new(Mutex::new(None));
    let (tx, rx) = std_mpsc::channel();
    let writer = {
        let (failed, watch, quiet) = (failed.clone(), watch.clone(), output.quiet);
        let expect = expect.clone();
        std::thread::Builder::new()
            .name("flux-timeline".into())
            .spawn(move || write_timeline(rx, outs, expect, format, quiet, &watch, &failed))?
    };
    let plan = Arc::new(plan);
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
    let endings = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .unwrap_or_default();
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

/// One side's output: its data sink on stdout and its status lines on stderr.
struct SideOut {
    who: String,
    data: Box<dyn Sink>,
    status: Option<Box<dyn Sink>>,
}

fn outputs(labels: &[String], format: Format, quiet: bool, watch: &OutputWatch) -> Vec<SideOut> {
    let captions =
        caption_format(format).map(|f| Arc::new(Mutex::new(CaptionSink::new(io::stdout(), f))));
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let who = format!("{label}: ");
            let data: Box<dyn Sink> = match (&captions, format) {
                (Some(shared), _) => Box::new(Speaker {
                    shared: shared.clone(),
                    label: label.clone(),
                }),
                (None, Format::Jsonl) => {
                    Box::new(JsonlSink::new(io::stdout()).with_side(i, label.clone()))
                }
                (None, _) => Box::new(TextSink::new(Labelled::new(io::stdout(), who.clone()))),
            };
            SideOut {
                data: Box::new(Watched::new(data, watch.clone())),
                status: (!quiet).then(|| {
                    Box::new(StatusSink::new(
                        Labelled::new(io::stderr(), who.clone()).after("flux: "),
                    )) as Box<dyn Sink>
                }),
                who,
            }
        })
        .collect()
}

/// One side's view of the shared caption file: its cues carry its label.
struct Speaker {
    shared: Arc<Mutex<CaptionSink<io::Stdout>>>,
    label: String,
}

impl Sink for Speaker {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let mut sink = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        sink.set_speaker(Some(&self.label));
        sink.event(event)
    }
}

/// The audio time an event is about, where it has one.
fn audio_time(event: &Event) -> Option<f64> {
    match event {
        Event::Server(r) => match &r.message {
            ServerMessage::TurnInfo(t) => Some(t.audio_window_end),
            _ => None,
        },
        Event::Client(ClientEvent::UnconfirmedTurn {
            audio_window_end, ..
        }) => Some(*audio_window_end),
        Event::Client(_) => None,
    }
}

/// The timeline's thread: orders the sides' events by audio time and writes them; closes
/// each side (assertions, summary, error) in its place. Returns each side's exit code and
/// whether its output was closed.
fn write_timeline(
    rx: std_mpsc::Receiver<Msg>,
    mut outs: Vec<SideOut>,
    expect: Vec<Option<Expectations>>,
    format: Format,
    quiet: bool,
    watch: &OutputWatch,
    failed: &Mutex<Option<(io::ErrorKind, String)>>,
) -> Vec<(u8, bool)> {
    let mut timeline = Timeline::new(outs.len());
    let mut endings = vec![None; outs.len()];
    let mut write = |side: usize, item: Item| {
        let Some(out) = outs.get_mut(side) else {
            return;
        };
        match item {
            Item::Event(event) => {
                let gone = failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some();
                if !gone && let Err(e) = out.data.event(&event) {
                    *failed.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some((e.kind(), e.to_string()));
                }
                if let Some(status) = &mut out.status {
                    let _ = status.event(&event);
                }
            }
            Item::Done(finished) => {
                let Finished {
                    outcome,
                    wall,
                    recorder,
                } = *finished;
                let checks = expect
                    .get(side)
                    .and_then(Option::as_ref)
                    .zip(recorder.as_ref());
                let ending = conclude(
                    outcome,
                    wall,
                    checks,
                    out.data.as_mut(),
                    format,
                    quiet,
                    &out.who,
                    watch,
                );
                if let (Some(e), false) = (&ending.error, ending.output_closed) {
                    eprintln!("flux: {}error: {}", out.who, super::error_text(e));
                }
                endings[side] = Some((ending.code, ending.output_closed));
            }
        }
    };
    for msg in rx {
        match msg {
            Msg::Event(side, event) => timeline.push(side, audio_time(&event), Item::Event(event)),
            Msg::Done(side, finished) => {
                timeline.push(side, None, Item::Done(finished));
                timeline.end(side);
            }
        }
        while let Some((side, item)) = timeline.pop_ready() {
            write(side, item);
        }
    }
    for (side, item) in timeline.drain() {
        write(side, item);
    }
    endings.into_iter().flatten().collect()
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
