//! `--format text`: one line per finished turn, nothing else on stdout.

use super::{Lines, Sink};
use crate::event::{ClientEvent, Event};
use crate::protocol::{ServerMessage, TurnEvent};
use std::io::{self, Write};

pub struct TextSink<W: Write + Send> {
    out: Lines<W>,
}

impl<W: Write + Send> TextSink<W> {
    pub fn new(out: W) -> Self {
        TextSink {
            out: Lines::new(out),
        }
    }
}

impl<W: Write + Send> Sink for TextSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let (transcript, languages) = match event {
            Event::Server(r) => match &r.message {
                ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn => {
                    (&t.transcript, t.languages.as_deref())
                }
                _ => return Ok(()),
            },
            // The stream closed before the turn was confirmed: its text is still the user's.
            Event::Client(ClientEvent::UnconfirmedTurn { transcript, .. }) => (transcript, None),
            Event::Client(_) => return Ok(()),
        };
        let line = one_line(transcript);
        if line.is_empty() {
            return Ok(());
        }
        // flux-general-multi reports the languages it detected: keep them with the words.
        match languages {
            Some(langs) if !langs.is_empty() => self
                .out
                .line(&format!("[{}] {line}", one_line(&langs.join(",")))),
            _ => self.out.line(&line),
        }
    }

    fn begin_batch(&mut self) {
        self.out.hold();
    }

    fn end_batch(&mut self) -> io::Result<()> {
        self.out.release()
    }
}

/// A transcript as a single line: control characters (including newlines a server might
/// send) become spaces so one turn is always one line.
pub fn one_line(text: &str) -> String {
    crate::protocol::sanitize::sanitize(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMessage;

    fn server(json: &str) -> Event {
        Event::Server(ServerMessage::parse(json).unwrap())
    }

    #[test]
    fn prints_only_finished_turns_one_line_each() {
        let mut out = Vec::new();
        let mut sink = TextSink::new(&mut out);
        sink.event(&server(
            r#"{"type":"TurnInfo","event":"Update","transcript":"hel"}"#,
        ))
        .unwrap();
        sink.event(&server(
            r#"{"type":"TurnInfo","event":"EndOfTurn","transcript":"hello\nworld\u001b[2J"}"#,
        ))
        .unwrap();
        sink.event(&server(
            r#"{"type":"TurnInfo","event":"EndOfTurn","transcript":""}"#,
        ))
        .unwrap();
        sink.event(&Event::Client(ClientEvent::UnconfirmedTurn {
            turn_index: 1,
            transcript: "last words".into(),
            audio_window_start: 0.0,
            audio_window_end: 1.0,
            words: vec![],
            confirmed: false,
            reason: "stream_closed".into(),
        }))
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "hello world\nlast words\n");
    }
}
