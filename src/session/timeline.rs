//! One timeline over many connections: each connection's times start at 0 and its turn
//! indices restart at 0, so its TurnInfo is moved to where its audio sits in the stream and
//! after the turns already finished. Only times and turn indices change; every other field is
//! kept as the server sent it.

use crate::protocol::{Received, ServerMessage};
use serde_json::Value;

/// Where the current connection's audio began, and how many turns finished before it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Timeline {
    pub time: f64,
    pub turns: u64,
}

impl Timeline {
    /// Moves a connection's TurnInfo onto the stream's timeline.
    pub fn shift(&self, received: Received) -> Received {
        if self.time == 0.0 && self.turns == 0 {
            return received;
        }
        let Received { mut raw, message } = received;
        if !matches!(message, ServerMessage::TurnInfo(_)) {
            return Received { message, raw };
        }
        let add = |v: &mut Value, by: f64| {
            if let Some(x) = v.as_f64() {
                *v = Value::from(round6(x + by));
            }
        };
        if let Value::Object(map) = &mut raw {
            for key in ["audio_window_start", "audio_window_end"] {
                if let Some(v) = map.get_mut(key) {
                    add(v, self.time);
                }
            }
            if let Some(v) = map.get_mut("turn_index")
                && let Some(i) = v.as_u64()
            {
                *v = Value::from(i + self.turns);
            }
            if let Some(Value::Array(words)) = map.get_mut("words") {
                for w in words.iter_mut().filter_map(Value::as_object_mut) {
                    for key in ["start", "end"] {
                        if let Some(v) = w.get_mut(key) {
                            add(v, self.time);
                        }
                    }
                }
            }
        }
        ServerMessage::from_value(raw.clone()).unwrap_or(Received { message, raw })
    }
}

/// Seconds to the microsecond, so shifted times do not grow float noise.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_moves_times_and_turn_indices_only() {
        let text = r#"{"type":"TurnInfo","event":"EndOfTurn","turn_index":1,"audio_window_start":0.5,"audio_window_end":2.0,"transcript":"a b","words":[{"word":"a","confidence":0.9,"start":0.6,"end":0.9},{"word":"b","confidence":0.9}],"end_of_turn_confidence":0.8,"sequence_id":7}"#;
        let t = Timeline {
            time: 10.25,
            turns: 3,
        };
        let r = t.shift(ServerMessage::parse(text).unwrap());
        assert_eq!(r.raw["turn_index"], 4);
        assert_eq!(r.raw["audio_window_start"], 10.75);
        assert_eq!(r.raw["audio_window_end"], 12.25);
        assert_eq!(r.raw["words"][0]["start"], 10.85);
        assert!(r.raw["words"][1].get("start").is_none());
        assert_eq!(r.raw["sequence_id"], 7);
        let ServerMessage::TurnInfo(ti) = r.message else {
            panic!()
        };
        assert_eq!(ti.turn_index, 4);
        // No offset: the message is untouched, byte for byte.
        let r = Timeline::default().shift(ServerMessage::parse(text).unwrap());
        assert_eq!(r.raw.to_string(), text);
        // Other messages are never shifted.
        let c = r#"{"type":"Connected","request_id":"r","sequence_id":0}"#;
        assert_eq!(t.shift(ServerMessage::parse(c).unwrap()).raw.to_string(), c);
    }
}
