//! `--format jsonl`: every event as one JSON object per line (schema: docs/jsonl.md).
//!
//! Server messages are written as received (normalized to carry `type`), so every field,
//! known or not, survives and Deepgram's docs apply. Client events have `flux.*` types.

use super::{Sink, write_line};
use crate::event::Event;
use std::io::{self, Write};

pub struct JsonlSink<W: Write + Send> {
    out: W,
    /// With several input files, every line names its file (`"file"`, added last).
    file: Option<String>,
}

impl<W: Write + Send> JsonlSink<W> {
    pub fn new(out: W) -> Self {
        JsonlSink { out, file: None }
    }

    /// Adds `"file": FILE` to every line; a single-file run leaves Deepgram's shapes exact.
    pub fn with_file(mut self, file: String) -> Self {
        self.file = Some(file);
        self
    }
}

impl<W: Write + Send> Sink for JsonlSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let line = match (&self.file, event) {
            (None, Event::Server(r)) => r.raw.to_string(),
            (None, Event::Client(c)) => serde_json::to_string(c).map_err(io::Error::other)?,
            (Some(file), _) => {
                let mut value = match event {
                    Event::Server(r) => r.raw.clone(),
                    Event::Client(c) => serde_json::to_value(c).map_err(io::Error::other)?,
                };
                if let Some(object) = value.as_object_mut() {
                    object.insert("file".into(), file.clone().into());
                }
                value.to_string()
            }
        };
        write_line(&mut self.out, &line)
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
