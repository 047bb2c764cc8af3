//! `--format srt|vtt`: captions from finished turns, written as each turn finishes.
//!
//! Timing comes from the words' `start`/`end` where the server sends them for every word of
//! the turn; otherwise the turn's words are spread evenly over its audio window, which is
//! approximate (docs/captions.md). A turn longer than a cue allows is split into several cues
//! of at most two lines of [`MAX_LINE`] characters and [`MAX_CUE_SECS`] seconds, the usual
//! limits of subtitle style guides.

use super::Sink;
use super::text::one_line;
use crate::event::{ClientEvent, Event};
use crate::protocol::{ServerMessage, TurnEvent, Word};
use std::io::{self, Write};

/// Characters per caption line.
pub const MAX_LINE: usize = 42;
/// Lines per cue.
pub const MAX_LINES: usize = 2;
/// Longest cue, in seconds.
pub const MAX_CUE_SECS: f64 = 7.0;
/// Shortest cue, in seconds: a cue that flashes by cannot be read.
const MIN_CUE_SECS: f64 = 0.3;
/// Time per word when a turn has no usable window at all.
const FALLBACK_WORD_SECS: f64 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionFormat {
    Srt,
    Vtt,
}

pub struct CaptionSink<W: Write + Send> {
    out: W,
    format: CaptionFormat,
    /// SRT cues are numbered from 1.
    next_number: u64,
    /// Cues never start before the previous one ended.
    last_end: f64,
    started: bool,
    /// With several sides (`--split-channels`), who is speaking: a VTT voice tag
    /// (`<v agent>`) or an SRT prefix (`agent: `) on each cue.
    speaker: Option<String>,
    /// Each other speaker's `last_end`: their cues may overlap, one side's may not.
    others_end: std::collections::HashMap<String, f64>,
}

impl<W: Write + Send> CaptionSink<W> {
    pub fn new(out: W, format: CaptionFormat) -> Self {
        CaptionSink {
            out,
            format,
            next_number: 1,
            last_end: 0.0,
            started: false,
            speaker: None,
            others_end: std::collections::HashMap::new(),
        }
    }

    /// Whose turns the next events are (`None`: a single stream, no speaker shown).
    pub fn set_speaker(&mut self, speaker: Option<&str>) {
        if self.speaker.as_deref() == speaker {
            return;
        }
        if let Some(old) = self.speaker.take() {
            self.others_end.insert(old, self.last_end);
        }
        self.last_end = speaker
            .and_then(|s| self.others_end.get(s).copied())
            .unwrap_or(0.0);
        self.speaker = speaker.map(str::to_string);
    }

    fn turn(&mut self, transcript: &str, words: &[Word], start: f64, end: f64) -> io::Result<()> {
        let timed = timed_words(transcript, words, start, end);
        let mut block = String::new();
        for cue in cues(&timed) {
            let start = cue.start.max(self.last_end);
            let end = cue.end.max(start + MIN_CUE_SECS);
            self.last_end = end;
            let mut text = cue
                .lines
                .iter()
                .map(|l| escape(l, self.format))
                .collect::<Vec<_>>()
                .join("\n");
            if let Some(speaker) = &self.speaker {
                let who = escape(speaker, self.format);
                text = match self.format {
                    CaptionFormat::Vtt => format!("<v {who}>{text}"),
                    CaptionFormat::Srt => format!("{who}: {text}"),
                };
            }
            match self.format {
                CaptionFormat::Srt => {
                    block.push_str(&format!(
                        "{}\n{} --> {}\n{text}\n\n",
                        self.next_number,
                        timestamp(start, ','),
                        timestamp(end, ',')
                    ));
                }
                CaptionFormat::Vtt => {
                    block.push_str(&format!(
                        "{} --> {}\n{text}\n\n",
                        timestamp(start, '.'),
                        timestamp(end, '.')
                    ));
                }
            }
            self.next_number += 1;
        }
        self.write(&block)
    }

    /// Writes whole cues at once and flushes, so a reader never sees half a cue.
    fn write(&mut self, block: &str) -> io::Result<()> {
        if block.is_empty() {
            return Ok(());
        }
        self.out.write_all(block.as_bytes())?;
        self.out.flush()
    }
}

impl<W: Write + Send> Sink for CaptionSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        if !self.started {
            self.started = true;
            if self.format == CaptionFormat::Vtt {
                self.write("WEBVTT\n\n")?;
            }
        }
        match event {
            Event::Server(r) => match &r.message {
                ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn => self.turn(
                    &t.transcript,
                    &t.words,
                    t.audio_window_start,
                    t.audio_window_end,
                ),
                _ => Ok(()),
            },
            Event::Client(ClientEvent::UnconfirmedTurn {
                transcript,
                words,
                audio_window_start,
                audio_window_end,
                ..
            }) => self.turn(transcript, words, *audio_window_start, *audio_window_end),
            Event::Client(_) => Ok(()),
        }
    }
}

/// A word with its time on the stream, in seconds.
#[derive(Debug, Clone, PartialEq)]
struct Timed {
    text: String,
    start: f64,
    end: f64,
}

/// The turn's words with times: the server's where every word has them, else spread evenly
/// over the turn's window. The transcript's tokens are preferred for the text (they carry
/// punctuation) when they line up one to one with the timed words.
fn timed_words(transcript: &str, words: &[Word], start: f64, end: f64) -> Vec<Timed> {
    let tokens: Vec<String> = one_line(transcript)
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let all_timed = !words.is_empty()
        && words.iter().all(
            |w| matches!((w.start, w.end), (Some(s), Some(e)) if s.is_finite() && e.is_finite()),
        );
    if all_timed {
        let texts: Vec<String> = if tokens.len() == words.len() {
            tokens
        } else {
            words.iter().map(|w| one_line(&w.word)).collect()
        };
        return texts
            .into_iter()
            .zip(words)
            .filter(|(t, _)| !t.is_empty())
            .map(|(text, w)| {
                let s = w.start.unwrap_or(start);
                Timed {
                    text,
                    start: s,
                    end: w.end.unwrap_or(s).max(s),
                }
            })
            .collect();
    }
    let n = tokens.len();
    let span = if end > start {
        end - start
    } else {
        n as f64 * FALLBACK_WORD_SECS
    };
    let each = span / n.max(1) as f64;
    tokens
        .into_iter()
        .enumerate()
        .map(|(i, text)| Timed {
            text,
            start: start + i as f64 * each,
            end: start + (i + 1) as f64 * each,
        })
        .collect()
}

#[derive(Debug, PartialEq)]
struct Cue {
    start: f64,
    end: f64,
    lines: Vec<String>,
}

/// Splits a turn's words into cues that fit [`MAX_LINES`] × [`MAX_LINE`] and
/// [`MAX_CUE_SECS`].
fn cues(words: &[Timed]) -> Vec<Cue> {
    let mut out = Vec::new();
    let mut current: Vec<&Timed> = Vec::new();
    for w in words {
        if let Some(first) = current.first() {
            let mut texts: Vec<&str> = current.iter().map(|t| t.text.as_str()).collect();
            texts.push(&w.text);
            let too_long = wrap(&texts).len() > MAX_LINES;
            let too_slow = w.end - first.start > MAX_CUE_SECS;
            if too_long || too_slow {
                out.push(cue(&current));
                current.clear();
            }
        }
        current.push(w);
    }
    if !current.is_empty() {
        out.push(cue(&current));
    }
    out
}

fn cue(words: &[&Timed]) -> Cue {
    let texts: Vec<&str> = words.iter().map(|t| t.text.as_str()).collect();
    Cue {
        start: words.first().map_or(0.0, |w| w.start),
        end: words.last().map_or(0.0, |w| w.end),
        lines: wrap(&texts),
    }
}

/// Greedy wrap at [`MAX_LINE`] characters; a word longer than a line gets a line of its own.
fn wrap(words: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for w in words {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + w.chars().count() <= MAX_LINE => {
                line.push(' ');
                line.push_str(w);
            }
            _ => lines.push((*w).to_string()),
        }
    }
    lines
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
fn timestamp(secs: f64, separator: char) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Cue text as each format needs it. WebVTT reserves `&`, `<` and `>` (and a cue must not
/// contain `-->`, which escaping `>` prevents). SRT has no escapes; players read `<i>`-style
/// tags and a `-->` could be taken for a timing line, so those are defused instead.
fn escape(line: &str, format: CaptionFormat) -> String {
    match format {
        CaptionFormat::Vtt => line
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
        CaptionFormat::Srt => line
            .replace("-->", "->")
            .replace('<', "‹")
            .replace('>', "›"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMessage;

    fn eot(json_words: &str, transcript: &str, start: f64, end: f64) -> Event {
        Event::Server(
            ServerMessage::parse(&format!(
                r#"{{"type":"TurnInfo","event":"EndOfTurn","transcript":"{transcript}","words":[{json_words}],"audio_window_start":{start},"audio_window_end":{end}}}"#
            ))
            .unwrap(),
        )
    }

    fn render(format: CaptionFormat, events: &[Event]) -> String {
        let mut out = Vec::new();
        let mut sink = CaptionSink::new(&mut out, format);
        for e in events {
            sink.event(e).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn speakers_are_named_and_each_keeps_its_own_cue_order() {
        let mut out = Vec::new();
        let mut sink = CaptionSink::new(&mut out, CaptionFormat::Vtt);
        sink.set_speaker(Some("agent"));
        sink.event(&eot("", "hello there", 0.0, 2.0)).unwrap();
        sink.set_speaker(Some("caller"));
        // Overlaps the agent's cue: another speaker's cue is not pushed after it.
        sink.event(&eot("", "hi", 1.0, 1.5)).unwrap();
        sink.set_speaker(Some("agent"));
        sink.event(&eot("", "again", 1.0, 3.0)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v agent>hello there\n\n\
             00:00:01.000 --> 00:00:01.500\n<v caller>hi\n\n\
             00:00:02.000 --> 00:00:03.000\n<v agent>again\n\n"
        );
        let mut out = Vec::new();
        let mut sink = CaptionSink::new(&mut out, CaptionFormat::Srt);
        sink.set_speaker(Some("caller"));
        sink.event(&eot("", "hi", 1.0, 1.5)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1\n00:00:01,000 --> 00:00:01,500\ncaller: hi\n\n"
        );
    }

    #[test]
    fn srt_uses_word_times_and_numbers_cues() {
        let words =
            r#"{"word":"hello","start":0.5,"end":0.9},{"word":"world","start":1.0,"end":1.25}"#;
        let got = render(
            CaptionFormat::Srt,
            &[
                eot(words, "Hello, world.", 0.0, 2.0),
                eot("", "Again", 3.0, 4.0),
            ],
        );
        assert_eq!(
            got,
            "1\n00:00:00,500 --> 00:00:01,250\nHello, world.\n\n\
             2\n00:00:03,000 --> 00:00:04,000\nAgain\n\n"
        );
    }

    #[test]
    fn vtt_has_a_header_escapes_and_spreads_words_without_times() {
        let got = render(
            CaptionFormat::Vtt,
            &[eot("", "a <b> & c --> d", 3600.0, 3601.0)],
        );
        assert_eq!(
            got,
            "WEBVTT\n\n01:00:00.000 --> 01:00:01.000\na &lt;b&gt; &amp; c --&gt; d\n\n"
        );
    }

    #[test]
    fn long_turns_split_into_two_line_cues_of_at_most_seven_seconds() {
        let text: Vec<String> = (0..40).map(|i| format!("word{i:02}")).collect();
        let got = render(CaptionFormat::Srt, &[eot("", &text.join(" "), 0.0, 20.0)]);
        let blocks: Vec<&str> = got.trim_end().split("\n\n").collect();
        assert!(blocks.len() >= 3, "{got}");
        let mut words_seen = 0;
        for (i, block) in blocks.iter().enumerate() {
            let lines: Vec<&str> = block.lines().collect();
            assert_eq!(lines[0], (i + 1).to_string());
            let text_lines = &lines[2..];
            assert!(text_lines.len() <= MAX_LINES, "{block}");
            assert!(
                text_lines.iter().all(|l| l.chars().count() <= MAX_LINE),
                "{block}"
            );
            words_seen += text_lines
                .iter()
                .map(|l| l.split(' ').count())
                .sum::<usize>();
        }
        assert_eq!(words_seen, 40);
        // Spread evenly: 0.5 s a word, so a two-line cue (12 words) is 6 s long.
        assert!(
            got.starts_with("1\n00:00:00,000 --> 00:00:06,000\n"),
            "{got}"
        );
    }

    #[test]
    fn unconfirmed_turns_are_captioned_too() {
        let got = render(
            CaptionFormat::Srt,
            &[Event::Client(ClientEvent::UnconfirmedTurn {
                turn_index: 0,
                transcript: "last words".into(),
                audio_window_start: 1.0,
                audio_window_end: 2.0,
                words: vec![],
                confirmed: false,
                reason: "stream_closed".into(),
            })],
        );
        assert_eq!(got, "1\n00:00:01,000 --> 00:00:02,000\nlast words\n\n");
    }
}
