//! `flux serve --replay SESSION.jsonl`: answer every connection with the server messages of a
//! session recorded with `flux ... --jsonl`, instead of finding turns in the audio. Each
//! `TurnInfo` (and the warnings between them) is sent when the incoming stream's audio reaches
//! the recorded `audio_window_end`, so a client sees real transcripts with real turn timing,
//! aligned to its own audio. `Configure` is answered with the recorded answers, in order.
//! `ForceEndTurn` ends the open turn with the recording's own `EndOfTurn` for it where there
//! is one; a stream longer than the recording ends its last open turn as Flux would after
//! `eot_timeout_ms` of silence.
//!
//! Client events (`flux.*`) are not server messages and are left out, as are `Connected` and
//! `Error` (each connection gets its own `Connected`). A recording of several sides
//! (`--split-channels`) replays its first side (`"channel": 0`).

use crate::error::FluxError;
use crate::protocol::{ServerMessage, Trigger, TurnEvent, TurnInfo};
use serde_json::Value;
use std::path::Path;

/// The recorded messages, shared by every connection.
#[derive(Debug, Default)]
pub struct Recording {
    /// TurnInfo and Warning messages, in order.
    messages: Vec<ServerMessage>,
    /// ConfigureSuccess and ConfigureFailure, in order.
    configure: Vec<ServerMessage>,
}

impl Recording {
    pub fn load(path: &Path) -> Result<Recording, FluxError> {
        let name = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            FluxError::Usage(format!(
                "cannot read the recording {name}: {e}; --replay takes a session recorded \
                 with `flux ... --jsonl`"
            ))
        })?;
        let mut rec = Recording::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if map.get("channel").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            for added in ["channel", "label", "file"] {
                map.remove(added);
            }
            let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
            if kind.starts_with("flux.") {
                continue;
            }
            let Ok(received) = ServerMessage::from_value(Value::Object(map)) else {
                continue;
            };
            match received.message {
                // The answer to the recorded client's own ForceEndTurn: this client gets its own.
                ServerMessage::Warning(n)
                    if n.code.as_deref() == Some("FORCE_END_TURN_NO_ACTIVE_TURN") => {}
                m @ (ServerMessage::TurnInfo(_) | ServerMessage::Warning(_)) => {
                    rec.messages.push(m);
                }
                m @ (ServerMessage::ConfigureSuccess(_) | ServerMessage::ConfigureFailure(_)) => {
                    rec.configure.push(m);
                }
                _ => {}
            }
        }
        if !rec
            .messages
            .iter()
            .any(|m| matches!(m, ServerMessage::TurnInfo(_)))
        {
            return Err(FluxError::Usage(format!(
                "the recording {name} has no TurnInfo messages; record a session with \
                 `flux file CALL.wav --jsonl > {name}`"
            )));
        }
        Ok(rec)
    }
}

/// One connection's place in the recording.
#[derive(Debug)]
pub struct Replayer {
    rec: std::sync::Arc<Recording>,
    next: usize,
    next_configure: usize,
    /// The turn that has started and not ended, as last sent.
    open: Option<TurnInfo>,
    /// Where the recording's last message is, in audio seconds.
    last_at: f64,
}

impl Replayer {
    pub fn new(rec: std::sync::Arc<Recording>) -> Replayer {
        let last_at = rec
            .messages
            .iter()
            .filter_map(|m| match m {
                ServerMessage::TurnInfo(t) => Some(t.audio_window_end),
                _ => None,
            })
            .fold(0.0, f64::max);
        Replayer {
            rec,
            next: 0,
            next_configure: 0,
            open: None,
            last_at,
        }
    }

    /// The messages due once the stream has `seconds` of audio; past the recording's end,
    /// the open turn ends after `eot_timeout_ms` as a silent stream's would.
    pub fn due(&mut self, seconds: f64, eot_timeout_ms: u32) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        let rec = self.rec.clone();
        while let Some(m) = rec.messages.get(self.next) {
            if let ServerMessage::TurnInfo(t) = m {
                if t.audio_window_end > seconds + 1e-9 {
                    break;
                }
                self.track(t);
            }
            out.push(m.clone());
            self.next += 1;
        }
        let timeout = f64::from(eot_timeout_ms) / 1000.0;
        if self.next >= self.rec.messages.len() && seconds >= self.last_at + timeout {
            out.extend(self.end_open(seconds, Trigger::Timeout));
        }
        out
    }

    /// A turn is open from its StartOfTurn to its EndOfTurn (Updates between turns open none).
    fn track(&mut self, t: &TurnInfo) {
        match t.event {
            TurnEvent::StartOfTurn => self.open = Some(t.clone()),
            TurnEvent::EndOfTurn => self.open = None,
            _ => {
                if let Some(open) = &mut self.open
                    && open.turn_index == t.turn_index
                {
                    *open = t.clone();
                }
            }
        }
    }

    /// The recorded answer to the next `Configure`, while there are any.
    pub fn configure_answer(&mut self) -> Option<ServerMessage> {
        let m = self.rec.configure.get(self.next_configure)?.clone();
        self.next_configure += 1;
        Some(m)
    }

    /// `ForceEndTurn`: the open turn's messages up to its recorded `EndOfTurn`, or an
    /// `EndOfTurn` made from its last message; empty when no turn is open.
    pub fn force_end(&mut self, seconds: f64) -> Vec<ServerMessage> {
        let Some(open) = self.open.clone() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let rec = self.rec.clone();
        while let Some(m) = rec.messages.get(self.next) {
            if let ServerMessage::TurnInfo(t) = m {
                if t.turn_index != open.turn_index {
                    break;
                }
                self.track(t);
            }
            out.push(m.clone());
            self.next += 1;
            if self.open.is_none() {
                return out;
            }
        }
        out.extend(self.end_open(seconds, Trigger::Manual));
        out
    }

    fn end_open(&mut self, seconds: f64, trigger: Trigger) -> Option<ServerMessage> {
        let mut t = self.open.take()?;
        t.event = TurnEvent::EndOfTurn;
        t.audio_window_end = t.audio_window_end.max(seconds);
        t.trigger = Some(trigger);
        Some(ServerMessage::TurnInfo(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(lines: &[&str]) -> std::sync::Arc<Recording> {
        let dir = std::env::temp_dir().join(format!("flux-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.jsonl", lines.len()));
        std::fs::write(&path, lines.join("\n")).unwrap();
        let rec = Recording::load(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        std::sync::Arc::new(rec)
    }

    fn info(event: &str, index: u64, end: f64, text: &str) -> String {
        format!(
            r#"{{"type":"TurnInfo","event":"{event}","turn_index":{index},"audio_window_start":0,"audio_window_end":{end},"transcript":"{text}"}}"#
        )
    }

    fn texts(ms: &[ServerMessage]) -> Vec<String> {
        ms.iter()
            .map(|m| match m {
                ServerMessage::TurnInfo(t) => format!("{:?} {}", t.event, t.transcript),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn messages_come_when_the_audio_reaches_them_and_the_last_turn_ends() {
        let lines = [
            r#"{"type":"Connected","request_id":"r"}"#.to_string(),
            info("StartOfTurn", 0, 0.5, "hello"),
            r#"{"type":"flux.eot_latency","turn_index":0}"#.to_string(),
            info("EndOfTurn", 0, 1.5, "hello there"),
            info("StartOfTurn", 1, 2.5, "and"),
            r#"{"type":"ConfigureSuccess","thresholds":{"eot_threshold":0.8}}"#.to_string(),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut r = Replayer::new(recording(&lines));
        assert!(r.due(0.4, 5000).is_empty());
        assert_eq!(
            texts(&r.due(1.6, 5000)),
            ["StartOfTurn hello", "EndOfTurn hello there"]
        );
        assert_eq!(texts(&r.due(3.0, 5000)), ["StartOfTurn and"]);
        assert!(matches!(
            r.configure_answer(),
            Some(ServerMessage::ConfigureSuccess(_))
        ));
        assert!(r.configure_answer().is_none());
        // The stream goes on past the recording: the open turn ends by timeout.
        assert!(r.due(4.0, 5000).is_empty());
        let ended = r.due(7.6, 5000);
        assert_eq!(texts(&ended), ["EndOfTurn and"]);
        assert!(r.due(9.0, 5000).is_empty(), "ended once");
    }

    #[test]
    fn force_end_takes_the_recorded_end_of_the_open_turn() {
        let lines = [
            info("StartOfTurn", 0, 0.5, "hi"),
            info("Update", 0, 1.0, "hi you"),
            info("EndOfTurn", 0, 2.0, "hi you there"),
            info("StartOfTurn", 1, 3.0, "next"),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut r = Replayer::new(recording(&lines));
        assert!(r.force_end(0.0).is_empty(), "no open turn");
        // An Update between turns opens none.
        let between = info("Update", 1, 0.2, "");
        let mut idle = Replayer::new(recording(&[between.as_str()]));
        idle.due(0.3, 5000);
        assert!(idle.force_end(0.3).is_empty());
        r.due(0.6, 5000);
        assert_eq!(
            texts(&r.force_end(0.7)),
            ["Update hi you", "EndOfTurn hi you there"]
        );
        assert_eq!(texts(&r.due(3.0, 5000)), ["StartOfTurn next"]);
    }
}
