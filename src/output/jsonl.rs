//! `--format jsonl`: every event as one JSON object per line (schema: docs/jsonl.md).
//!
//! Server messages are written as received (normalized to carry `type`), so every field,
//! known or not, survives and Deepgram's docs apply. Client events have `flux.*` types.

use super::{Lines, Sink};
use crate::event::Event;
use std::io::{self, Write};

pub struct JsonlSink<W: Write + Send> {
    out: Lines<W>,
    /// With several input files, every line names its file (`"file"`, added last).
    file: Option<String>,
    /// With `--split-channels`, every line names its side (`"channel"`, `"label"`).
    side: Option<(usize, String)>,
}

impl<W: Write + Send> JsonlSink<W> {
    pub fn new(out: W) -> Self {
        JsonlSink {
            out: Lines::new(out),
            file: None,
            side: None,
        }
    }

    /// Adds `"file": FILE` to every line; a single-file run leaves Deepgram's shapes exact.
    pub fn with_file(mut self, file: String) -> Self {
        self.file = Some(file);
        self
    }

    /// Adds `"channel": N, "label": LABEL` to every line (`--split-channels`, docs/jsonl.md).
    pub fn with_side(mut self, channel: usize, label: String) -> Self {
        self.side = Some((channel, label));
        self
    }
}

impl<W: Write + Send> Sink for JsonlSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let (file, side) = (&self.file, &self.side);
        self.out.line_with(|buf| match (file, side, event) {
            // Straight into the line buffer: no string per line.
            (None, None, Event::Server(r)) => {
                serde_json::to_writer(buf, &r.raw).map_err(io::Error::other)
            }
            (None, None, Event::Client(c)) => {
                serde_json::to_writer(buf, c).map_err(io::Error::other)
            }
            (file, side, _) => {
                let mut value = match event {
                    Event::Server(r) => r.raw.clone(),
                    Event::Client(c) => serde_json::to_value(c).map_err(io::Error::other)?,
                };
                if let Some(object) = value.as_object_mut() {
                    if let Some((channel, label)) = side {
                        object.insert("channel".into(), (*channel).into());
                        object.insert("label".into(), label.clone().into());
                    }
                    if let Some(file) = file {
                        object.insert("file".into(), file.clone().into());
                    }
                }
                serde_json::to_writer(buf, &value).map_err(io::Error::other)
            }
        })
    }

    fn begin_batch(&mut self) {
        self.out.hold();
    }

    fn end_batch(&mut self) -> io::Result<()> {
        self.out.release()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ClientEvent;
    use crate::protocol::ServerMessage;

    #[test]
    fn server_messages_verbatim_and_client_events_typed() {
        let mut out = Vec::new();
        let mut sink = JsonlSink::new(&mut out);
        let raw = r#"{"type":"TurnInfo","event":"Update","transcript":"a","future":1}"#;
        sink.event(&Event::Server(ServerMessage::parse(raw).unwrap()))
            .unwrap();
        sink.event(&Event::Client(ClientEvent::Warning {
            code: "c".into(),
            message: "m\n".into(),
        }))
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], raw);
        assert_eq!(
            lines[1],
            r#"{"type":"flux.warning","code":"c","message":"m\n"}"#
        );
    }

    #[test]
    fn with_a_side_every_line_names_its_channel_and_label() {
        let mut out = Vec::new();
        let mut sink = JsonlSink::new(&mut out).with_side(1, "caller".into());
        let raw = r#"{"type":"TurnInfo","event":"EndOfTurn","transcript":"a"}"#;
        sink.event(&Event::Server(ServerMessage::parse(raw).unwrap()))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"type\":\"TurnInfo\",\"event\":\"EndOfTurn\",\"transcript\":\"a\",\
             \"channel\":1,\"label\":\"caller\"}\n"
        );
    }

    #[test]
    fn with_a_file_every_line_names_it() {
        let mut out = Vec::new();
        let mut sink = JsonlSink::new(&mut out).with_file("a.wav".into());
        let raw = r#"{"type":"TurnInfo","event":"Update","transcript":"a"}"#;
        sink.event(&Event::Server(ServerMessage::parse(raw).unwrap()))
            .unwrap();
        sink.event(&Event::Client(ClientEvent::Warning {
            code: "c".into(),
            message: "m".into(),
        }))
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"type":"TurnInfo","event":"Update","transcript":"a","file":"a.wav"}"#
        );
        assert_eq!(
            lines[1],
            r#"{"type":"flux.warning","code":"c","message":"m","file":"a.wav"}"#
        );
    }
}
