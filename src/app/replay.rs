//! `flux replay SESSION.jsonl`: a session recorded with `--jsonl` rendered again, with no
//! server: as text, captions or the live view (e.g. captions made later from a saved run),
//! at its recorded pace (by the audio time of its turns), faster (`--pace N`) or at once
//! (`--fast`). The sinks are the ones a live run uses, so the result is the same as it was
//! live. A recording of several sides (`"label"` on its lines) keeps its labels.

use super::terminal;
use crate::cli::{Format, ReplayArgs};
use crate::error::{ExitCode, FluxError};
use crate::event::{ClientEvent, Event, Sink};
use crate::output::captions::{CaptionFormat, CaptionSink};
use crate::output::live::{LiveOptions, LiveSink, LiveView};
use crate::output::text::TextSink;
use crate::output::write_line;
use crate::protocol::{ServerMessage, Word};
use serde_json::Value;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// One recorded line: its side (index into the labels), its event, its audio time.
struct Recorded {
    side: Option<usize>,
    raw: String,
    event: Option<Event>,
    at: Option<f64>,
}

pub(super) async fn run(args: ReplayArgs) -> anyhow::Result<u8> {
    let (lines, labels) = read(&args.path, args.output.quiet)?;
    let term = terminal::detect(args.output.color_forced());
    let format = match args.output.format(term.live()) {
        Format::Live if !term.live() => Format::Text,
        f => f,
    };
    let pace = (!args.fast).then(|| args.pace.unwrap_or(1.0));
    let mut out = Output::new(format, &labels, &term);
    let started = Instant::now();
    for line in &lines {
        if let (Some(pace), Some(at)) = (pace, line.at) {
            let due = started + Duration::from_secs_f64((at / pace).max(0.0));
            tokio::time::sleep_until(due.into()).await;
        }
        if let Err(e) = out.write(line) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                break;
            }
            out.finish();
            return Err(super::output_watch::output_error(&e.to_string()).into());
        }
    }
    out.finish();
    Ok(ExitCode::Success.code())
}

/// Every line of the recording, and the sides' labels by channel (empty: one stream).
fn read(path: &Path, quiet: bool) -> Result<(Vec<Recorded>, Vec<String>), FluxError> {
    let name = path.display().to_string();
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(io::BufReader::new(io::stdin()))
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| FluxError::Usage(format!("cannot read {name}: {e}")))?;
        Box::new(io::BufReader::new(file))
    };
    let mut labels: Vec<Option<String>> = Vec::new();
    let mut lines = Vec::new();
    let mut skipped = 0usize;
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| FluxError::Usage(format!("cannot read {name}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(&line) else {
            skipped += 1;
            if !quiet && skipped == 1 {
                eprintln!(
                    "flux: warning: {name}:{}: not a JSON object; skipped (a recording made \
                     with --jsonl has one per line)",
                    n + 1
                );
            }
            continue;
        };
        let side = match (value["channel"].as_u64(), value["label"].as_str()) {
            (Some(c), Some(label)) => {
                let c = usize::try_from(c).unwrap_or(usize::MAX).min(63);
                if labels.len() <= c {
                    labels.resize(c + 1, None);
                }
                labels[c].get_or_insert_with(|| crate::output::text::one_line(label));
                Some(c)
            }
            _ => None,
        };
        let (event, at) = event(value);
        lines.push(Recorded {
            side,
            raw: line,
            event,
            at,
        });
    }
    let labels = labels
        .into_iter()
        .enumerate()
        .map(|(c, l)| l.unwrap_or_else(|| format!("ch{c}")))
        .collect();
    Ok((lines, labels))
}

/// The event a line records, for the renderers, and the audio time it is about.
fn event(value: Value) -> (Option<Event>, Option<f64>) {
    let kind = value["type"].as_str().unwrap_or_default().to_string();
    if kind == "flux.unconfirmed_turn" {
        let f = |k: &str| value[k].as_f64().unwrap_or(0.0);
        let words: Vec<Word> = serde_json::from_value(value["words"].clone()).unwrap_or_default();
        let end = f("audio_window_end");
        let event = ClientEvent::UnconfirmedTurn {
            turn_index: value["turn_index"].as_u64().unwrap_or(0),
            transcript: value["transcript"].as_str().unwrap_or_default().into(),
            audio_window_start: f("audio_window_start"),
            audio_window_end: end,
            words,
            confirmed: false,
            reason: value["reason"].as_str().unwrap_or_default().into(),
        };
        return (Some(Event::Client(event)), Some(end));
    }
    if kind.starts_with("flux.") {
        return (None, None);
    }
    match ServerMessage::from_value(value) {
        Ok(r) => {
            let at = match &r.message {
                ServerMessage::TurnInfo(t) => Some(t.audio_window_end),
                _ => None,
            };
            (Some(Event::Server(r)), at)
        }
        Err(_) => (None, None),
    }
}

/// Where the replay goes.
enum Output {
    /// One text sink per side (labelled), or one.
    Text(Vec<TextSink<crate::output::labelled::Labelled<io::Stdout>>>),
    Plain(TextSink<io::Stdout>),
    Captions(CaptionSink<io::Stdout>, Vec<String>),
    Jsonl(io::Stdout),
    Live(LiveView, LiveSink, bool),
}

impl Output {
    fn new(format: Format, labels: &[String], term: &crate::output::Terminal) -> Output {
        match format {
            Format::Jsonl => Output::Jsonl(io::stdout()),
            Format::Srt | Format::Vtt => {
                let f = if format == Format::Srt {
                    CaptionFormat::Srt
                } else {
                    CaptionFormat::Vtt
                };
                Output::Captions(CaptionSink::new(io::stdout(), f), labels.to_vec())
            }
            Format::Live => {
                let (view, mut sink) = LiveView::start(LiveOptions {
                    color: term.colour,
                    size: term.size,
                    raw: false,
                    total_seconds: None,
                    mic_level: None,
                    notes: false,
                    eot_threshold: 0.7,
                });
                if !labels.is_empty() {
                    sink.set_sides(labels.to_vec());
                }
                Output::Live(view, sink, !labels.is_empty())
            }
            Format::Text if labels.is_empty() => Output::Plain(TextSink::new(io::stdout())),
            Format::Text => Output::Text(
                labels
                    .iter()
                    .map(|l| {
                        TextSink::new(crate::output::labelled::Labelled::new(
                            io::stdout(),
                            format!("{l}: "),
                        ))
                    })
                    .collect(),
            ),
        }
    }

    fn write(&mut self, line: &Recorded) -> io::Result<()> {
        if let Output::Jsonl(out) = self {
            return write_line(out, &line.raw);
        }
        let Some(event) = &line.event else {
            return Ok(());
        };
        match self {
            Output::Jsonl(_) => Ok(()),
            Output::Plain(sink) => sink.event(event),
            Output::Text(sinks) => match sinks.get_mut(line.side.unwrap_or(0)) {
                Some(sink) => sink.event(event),
                None => Ok(()),
            },
            Output::Captions(sink, labels) => {
                sink.set_speaker(line.side.and_then(|s| labels.get(s)).map(String::as_str));
                sink.event(event)
            }
            Output::Live(_, sink, sides) => {
                if *sides {
                    sink.absorb_side(line.side.unwrap_or(0), event);
                } else {
                    sink.absorb(event);
                }
                sink.paint()
            }
        }
    }

    fn finish(self) {
        match self {
            Output::Live(view, _, _) => view.finish(),
            Output::Jsonl(mut out) => {
                let _ = out.flush();
            }
            _ => {}
        }
    }
}
