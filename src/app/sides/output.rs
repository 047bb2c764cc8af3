//! The sides' output: each side's data sink (labelled text, JSONL with its channel and label,
//! or its speaker's cues in the shared caption file) and status lines, or the live view with
//! one row per side; and the timeline thread that writes the sides' events in audio-time order
//! and closes each side (assertions, summary, error) in its place.

use super::timeline::Timeline;
use super::{Finished, Item, Msg};
use crate::app::output_watch::{OutputWatch, Watched};
use crate::app::pipeline::{caption_format, conclude};
use crate::assertions::Expectations;
use crate::cli::Format;
use crate::output::captions::CaptionSink;
use crate::output::jsonl::JsonlSink;
use crate::output::labelled::Labelled;
use crate::output::live::LiveSink;
use crate::output::meter::Screen;
use crate::output::status::StatusSink;
use crate::output::text::TextSink;
use crate::output::{Fanout, Sink};
use crate::protocol::ServerMessage;
use crate::session::{ClientEvent, Event};
use std::io::{self, Write};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};

/// One side's output: its data sink on stdout and its status lines on stderr.
pub(super) struct SideOut {
    who: String,
    data: Box<dyn Sink>,
    status: Option<Box<dyn Sink>>,
}

/// `screen`: the level meter's line on the terminal; writers that may reach that terminal
/// (stderr, and stdout when `stdout_tty`) erase it first.
pub(super) fn outputs(
    labels: &[String],
    file: Option<&str>,
    format: Format,
    quiet: bool,
    watch: &OutputWatch,
    screen: Option<(&Screen, bool)>,
) -> Vec<SideOut> {
    let stdout = || -> Box<dyn Write + Send> {
        match screen {
            Some((s, true)) => Box::new(s.writer(io::stdout())),
            _ => Box::new(io::stdout()),
        }
    };
    let stderr = || -> Box<dyn Write + Send> {
        match screen {
            Some((s, _)) => Box::new(s.writer(io::stderr())),
            None => Box::new(io::stderr()),
        }
    };
    let captions =
        caption_format(format).map(|f| Arc::new(Mutex::new(CaptionSink::new(io::stdout(), f))));
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let who = match file {
                Some(file) => format!("{file}: {label}: "),
                None => format!("{label}: "),
            };
            let data: Box<dyn Sink> = match (&captions, format) {
                (Some(shared), _) => Box::new(Speaker {
                    shared: shared.clone(),
                    label: label.clone(),
                }),
                // The live view draws every side itself; nothing else goes to stdout.
                (None, Format::Live) => Box::new(Fanout(Vec::new())),
                (None, Format::Jsonl) => {
                    let sink = JsonlSink::new(stdout()).with_side(i, label.clone());
                    Box::new(match file {
                        Some(file) => sink.with_file(file.to_string()),
                        None => sink,
                    })
                }
                (None, _) => Box::new(TextSink::new(Labelled::new(stdout(), who.clone()))),
            };
            SideOut {
                data: Box::new(Watched::new(data, watch.clone())),
                status: (!quiet).then(|| {
                    Box::new(StatusSink::new(
                        Labelled::new(stderr(), who.clone()).after("flux: "),
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

/// What the timeline thread needs besides the sides' outputs.
pub(super) struct Shared {
    pub expect: Vec<Option<Expectations>>,
    pub format: Format,
    pub quiet: bool,
    /// stdout, shared by every side.
    pub watch: OutputWatch,
    /// The first failed write, handed to every session on its next event.
    pub failed: Arc<Mutex<Option<(io::ErrorKind, String)>>>,
}

/// What the timeline thread leaves: each side's ending, and (with the live view, which must
/// give the terminal back first) the sides still to close.
pub(super) struct Written {
    outs: Vec<SideOut>,
    endings: Vec<Option<(u8, bool)>>,
    deferred: Vec<(usize, Box<Finished>)>,
    shared: Shared,
}

impl Written {
    /// Closes the sides left for after the live view; returns every side's exit code and
    /// whether its output was closed.
    pub(super) fn close_deferred(&mut self) -> Vec<(u8, bool)> {
        for (side, finished) in std::mem::take(&mut self.deferred) {
            if let Some(out) = self.outs.get_mut(side) {
                self.endings[side] = Some(close(out, side, finished, &self.shared));
            }
        }
        self.endings.iter().flatten().copied().collect()
    }
}

/// One side done: its assertions, summary and error, labelled.
fn close(out: &mut SideOut, side: usize, finished: Box<Finished>, shared: &Shared) -> (u8, bool) {
    let Finished {
        outcome,
        wall,
        recorder,
    } = *finished;
    let checks = shared
        .expect
        .get(side)
        .and_then(Option::as_ref)
        .zip(recorder.as_ref());
    let ending = conclude(
        outcome,
        wall,
        checks,
        out.data.as_mut(),
        shared.format,
        shared.quiet,
        &out.who,
        &shared.watch,
    );
    if let (Some(e), false) = (&ending.error, ending.output_closed) {
        eprintln!("flux: {}error: {}", out.who, crate::app::error_text(e));
    }
    (ending.code, ending.output_closed)
}

/// The timeline's thread: orders the sides' events by audio time and writes them (to the
/// live view when there is one, redrawn once per batch); closes each side in its place, or
/// (`defer`, and with the live view) once the terminal is given back.
pub(super) fn write_timeline(
    rx: Receiver<Msg>,
    mut outs: Vec<SideOut>,
    mut live: Option<LiveSink>,
    defer: bool,
    shared: &Shared,
) -> Written {
    let mut timeline = Timeline::new(outs.len());
    let mut endings = vec![None; outs.len()];
    let mut deferred = Vec::new();
    let failed = || {
        shared
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    };
    let mut write = |side: usize, item: Item, live: &mut Option<LiveSink>| {
        let Some(out) = outs.get_mut(side) else {
            return;
        };
        match item {
            Item::Event(event) => {
                if let Some(live) = live {
                    live.absorb_side(side, &event);
                } else if !failed()
                    && let Err(e) = out.data.event(&event)
                {
                    *shared.failed.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some((e.kind(), e.to_string()));
                }
                if let Some(status) = &mut out.status {
                    let _ = status.event(&event);
                }
            }
            Item::Done(finished) if defer || live.is_some() => deferred.push((side, finished)),
            Item::Done(finished) => endings[side] = Some(close(out, side, finished, shared)),
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
            write(side, item, &mut live);
        }
        if let Some(live) = &mut live
            && let Err(e) = live.paint()
        {
            *shared.failed.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((e.kind(), e.to_string()));
        }
    }
    for (side, item) in timeline.drain() {
        write(side, item, &mut live);
    }
    if let Some(live) = &mut live {
        let _ = live.paint();
    }
    Written {
        outs,
        endings,
        deferred,
        shared: Shared {
            expect: shared.expect.clone(),
            format: shared.format,
            quiet: shared.quiet,
            watch: shared.watch.clone(),
            failed: shared.failed.clone(),
        },
    }
}
