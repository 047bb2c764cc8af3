//! Turns from the shared turn engine, told as Fireworks segments.
//!
//! One segment per speech run: turn `k` of the engine is segment `k`. Its words are the
//! script's, revealed as audio time passes, with the engine's word times; every word but the
//! newest is final while the turn goes on, and all are final once the engine ends the turn.
//! So that clients' merge logic is exercised, the emulator also:
//! - re-sends the previous, finished segment with the first message of the next one (an
//!   upsert of an earlier id that changes nothing);
//! - on every other `Update` of a turn with two or more words, splits its newest word off
//!   into a speculative segment `k+1`; the next message carries segment `k` whole and no `k+1`,
//!   so a client that does not drop ids above the message's highest shows the word twice.

use crate::protocol::{TurnEvent, TurnInfo, Word};
use serde_json::{Value, json};

#[derive(Debug, Default)]
pub struct Segmenter {
    string_ids: bool,
    language: String,
    /// The last finished segment, re-sent with the next turn's first message.
    finished: Option<Value>,
    /// Updates of the open turn so far (every other one splits).
    updates: u64,
}

impl Segmenter {
    pub fn new(string_ids: bool, language: Option<&str>) -> Segmenter {
        Segmenter {
            string_ids,
            language: language.unwrap_or("en").to_string(),
            ..Segmenter::default()
        }
    }

    fn id(&self, n: u64) -> Value {
        if self.string_ids {
            Value::String(n.to_string())
        } else {
            Value::from(n)
        }
    }

    fn word(&self, w: &Word, is_final: bool) -> Value {
        json!({
            "word": w.word,
            "language": self.language,
            "probability": w.confidence,
            "hallucination_score": 0.0,
            "is_final": is_final,
            "start": w.start,
            "end": w.end,
        })
    }

    fn segment(&self, id: u64, words: &[Word], finals: usize, end: f64) -> Value {
        let text = words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let ws: Vec<Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| self.word(w, i < finals))
            .collect();
        json!({
            "id": self.id(id),
            "text": text,
            "start": words.first().and_then(|w| w.start),
            "end": end,
            "words": ws,
        })
    }

    /// The transcript message for one engine event.
    pub fn message(&mut self, t: &TurnInfo) -> Value {
        let k = t.turn_index;
        let n = t.words.len();
        let mut segments = Vec::new();
        let open = !t.transcript.trim().is_empty();
        match &t.event {
            TurnEvent::EndOfTurn => {
                let seg = self.segment(k, &t.words, n, t.audio_window_end);
                segments.push(seg.clone());
                self.finished = Some(seg);
                self.updates = 0;
            }
            _ if !open => {
                // Between turns: the last finished segment again, so the stream stays alive.
                segments.extend(self.finished.clone());
            }
            event => {
                if *event == TurnEvent::StartOfTurn {
                    segments.extend(self.finished.take());
                }
                let split = *event == TurnEvent::Update && n >= 2 && self.updates % 2 == 1;
                if *event == TurnEvent::Update {
                    self.updates += 1;
                }
                let finals = n.saturating_sub(1);
                if split {
                    let (head, tail) = t.words.split_at(n - 1);
                    let head_end = head
                        .last()
                        .and_then(|w| w.end)
                        .unwrap_or(t.audio_window_end);
                    // Its newest word stays open: the turn is not over.
                    segments.push(self.segment(k, head, head.len() - 1, head_end));
                    segments.push(self.segment(k + 1, tail, 0, t.audio_window_end));
                } else {
                    segments.push(self.segment(k, &t.words, finals, t.audio_window_end));
                }
            }
        }
        let text = segments
            .iter()
            .filter_map(|s| s["text"].as_str())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<Value> = segments
            .iter()
            .filter_map(|s| s["words"].as_array())
            .flatten()
            .cloned()
            .collect();
        json!({
            "task": "transcribe",
            "language": self.language,
            "text": text,
            "words": words,
            "segments": segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::fireworks::segments::Segments;

    fn info(event: TurnEvent, turn: u64, words: &[&str], end: f64) -> TurnInfo {
        TurnInfo {
            request_id: String::new(),
            sequence_id: 0,
            event,
            turn_index: turn,
            audio_window_start: 0.0,
            audio_window_end: end,
            transcript: words.join(" "),
            words: words
                .iter()
                .enumerate()
                .map(|(i, w)| Word {
                    word: w.to_string(),
                    confidence: 0.98,
                    start: Some(i as f64 * 0.3),
                    end: Some(i as f64 * 0.3 + 0.3),
                    extra: Default::default(),
                })
                .collect(),
            end_of_turn_confidence: 0.0,
            languages: None,
            languages_hinted: None,
            trigger: None,
            extra: Default::default(),
        }
    }

    /// The emulator's messages, read back by the client's merge rule, give the script's turns
    /// once each, whatever the id type.
    #[test]
    fn the_clients_rule_reads_back_the_engines_turns() {
        for string_ids in [false, true] {
            let mut seg = Segmenter::new(string_ids, None);
            let mut client = Segments::default();
            let events = [
                info(TurnEvent::StartOfTurn, 0, &["the"], 0.5),
                info(TurnEvent::Update, 0, &["the", "cat"], 0.75),
                info(TurnEvent::Update, 0, &["the", "cat", "sat"], 1.0),
                info(TurnEvent::Update, 0, &["the", "cat", "sat"], 1.25),
                info(TurnEvent::EndOfTurn, 0, &["the", "cat", "sat", "down"], 1.5),
                info(TurnEvent::Update, 1, &[], 1.75),
                info(TurnEvent::StartOfTurn, 1, &["again"], 2.0),
                info(TurnEvent::EndOfTurn, 1, &["again"], 2.5),
            ];
            let mut ends = Vec::new();
            let mut split_seen = false;
            for e in &events {
                let m = seg.message(e);
                let segments = m["segments"].as_array().unwrap().clone();
                split_seen |= segments.len() == 2 && e.event == TurnEvent::Update;
                if string_ids {
                    assert!(segments.iter().all(|s| s["id"].is_string()), "{m}");
                }
                client.merge(&segments);
                for t in client.derive() {
                    if t.event == TurnEvent::EndOfTurn {
                        ends.push(t.transcript);
                    }
                }
            }
            assert!(split_seen);
            assert_eq!(ends, vec!["the cat sat down", "again"]);
        }
    }
}
