//! Fireworks' segment state and the turns flux derives from it.
//!
//! Fireworks sends `verbose_json` transcripts whose `segments` carry ids and are updated in
//! place. The state is kept exactly by the documented rule, made safe for every client the
//! reference lists: upsert each segment of a message by id, then drop every id above the
//! message's highest (the server retracts or merges trailing segments that way). Ids come as
//! integers from some hosts and as strings from others; both are read as integers, so ordering
//! is numeric (`"10"` after `"9"`).
//!
//! Fireworks has no turn events, so flux derives them: segments are taken in id order, and
//! the lowest segment not yet reported becomes a finished turn (`EndOfTurn`) once every one of
//! its words is final. Everything after it is the open turn, whose text drives `StartOfTurn`
//! and `Update`. A segment already reported as a finished turn is never reported again, even
//! if the server revises it. The derived messages are Flux `TurnInfo`s marked
//! `"derived": true`, so every sink, assertion and the session's turn tracking work unchanged.

use crate::protocol::{ServerMessage, TurnEvent, TurnInfo, Word};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One word as Fireworks sends it, the fields flux uses.
#[derive(Debug, Clone, PartialEq)]
pub struct FwWord {
    pub word: String,
    pub probability: f64,
    pub is_final: bool,
    pub start: Option<f64>,
    pub end: Option<f64>,
}

/// One segment of the state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segment {
    pub text: String,
    pub words: Vec<FwWord>,
    pub start: Option<f64>,
    pub end: Option<f64>,
}

impl Segment {
    /// Every word is final (a segment without words is not: its finality is unknown).
    pub fn is_final(&self) -> bool {
        !self.words.is_empty() && self.words.iter().all(|w| w.is_final)
    }

    fn transcript(&self) -> String {
        let text = self.text.trim();
        if !text.is_empty() || self.words.is_empty() {
            return text.to_string();
        }
        self.words
            .iter()
            .map(|w| w.word.trim())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Where the segment's audio ends: its own `end`, or its last timed word's.
    fn end_time(&self) -> Option<f64> {
        self.end
            .or_else(|| self.words.iter().rev().find_map(|w| w.end))
    }
}

/// A segment id: an integer, or a string holding one.
pub fn segment_id(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_word(v: &Value) -> FwWord {
    FwWord {
        word: v
            .get("word")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        probability: num(v.get("probability")).unwrap_or(0.0),
        is_final: v.get("is_final").and_then(Value::as_bool).unwrap_or(false),
        start: num(v.get("start")),
        end: num(v.get("end")),
    }
}

fn parse_segment(v: &Value) -> Segment {
    Segment {
        text: v
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        words: v
            .get("words")
            .and_then(Value::as_array)
            .map(|ws| ws.iter().map(parse_word).collect())
            .unwrap_or_default(),
        start: num(v.get("start")),
        end: num(v.get("end")),
    }
}

/// What one message did to the state, besides the derived events.
#[derive(Debug, Default, PartialEq)]
pub struct Merged {
    /// Segments whose id was neither an integer nor a string holding one (skipped).
    pub bad_ids: usize,
}

/// The segment state of one connection and the turns derived from it so far.
#[derive(Debug, Default)]
pub struct Segments {
    state: BTreeMap<i64, Segment>,
    /// The highest id reported as a finished turn.
    finished_upto: Option<i64>,
    /// Turns finished on this connection (the next turn's index).
    turn_index: u64,
    /// The open turn has had its `StartOfTurn`.
    open_started: bool,
    /// The open turn's text as last reported.
    open_text: String,
    /// Where the last finished turn's audio ended (the next turn's window start).
    last_end: f64,
    /// The latest audio time any word or segment reached.
    heard: f64,
}

impl Segments {
    /// The state, in id order (for tests and people).
    pub fn texts(&self) -> Vec<(i64, String)> {
        self.state
            .iter()
            .map(|(id, s)| (*id, s.text.clone()))
            .collect()
    }

    /// Applies the documented rule to one message's `segments`: upsert each by id, then drop
    /// every id above the message's highest. A message without segments changes nothing.
    pub fn merge(&mut self, segments: &[Value]) -> Merged {
        let mut merged = Merged::default();
        let mut highest: Option<i64> = None;
        for v in segments {
            let Some(id) = v.get("id").and_then(segment_id) else {
                merged.bad_ids += 1;
                continue;
            };
            let segment = parse_segment(v);
            for t in [segment.start, segment.end]
                .into_iter()
                .chain(segment.words.iter().flat_map(|w| [w.start, w.end]))
                .flatten()
            {
                self.heard = self.heard.max(t);
            }
            self.state.insert(id, segment);
            highest = Some(highest.map_or(id, |h| h.max(id)));
        }
        if let Some(h) = highest {
            self.state.retain(|id, _| *id <= h);
        }
        merged
    }

    /// The Flux-shaped events the state now calls for: finished turns in id order, then the
    /// open turn's start or update (only when its text changed).
    pub fn derive(&mut self) -> Vec<TurnInfo> {
        let mut out = Vec::new();
        loop {
            let next = self
                .state
                .range(self.after()..)
                .next()
                .map(|(id, s)| (*id, s.clone()));
            let Some((id, segment)) = next else { break };
            if !segment.is_final() {
                break;
            }
            self.finished_upto = Some(id);
            let transcript = segment.transcript();
            if transcript.is_empty() {
                continue;
            }
            let end = segment.end_time().unwrap_or(self.heard).max(self.last_end);
            if !self.open_started {
                out.push(self.info(TurnEvent::StartOfTurn, std::slice::from_ref(&segment), end));
            }
            let mut done = self.info(TurnEvent::EndOfTurn, &[segment], end);
            done.end_of_turn_confidence = 1.0;
            out.push(done);
            self.turn_index += 1;
            self.last_end = end;
            self.open_started = false;
            self.open_text.clear();
        }
        let open: Vec<Segment> = self
            .state
            .range(self.after()..)
            .map(|(_, s)| s.clone())
            .collect();
        let text = joined(&open);
        if text != self.open_text {
            let event = if self.open_started || text.is_empty() {
                TurnEvent::Update
            } else {
                TurnEvent::StartOfTurn
            };
            let end = self.heard.max(self.last_end);
            out.push(self.info(event, &open, end));
            self.open_started = self.open_started || !text.is_empty();
            self.open_text = text;
        }
        out
    }

    /// The lowest id that may still become a turn.
    fn after(&self) -> i64 {
        self.finished_upto
            .map_or(i64::MIN, |id| id.saturating_add(1))
    }

    fn info(&self, event: TurnEvent, segments: &[Segment], end: f64) -> TurnInfo {
        let words = segments
            .iter()
            .flat_map(|s| s.words.iter())
            .map(|w| Word {
                word: w.word.trim().to_string(),
                confidence: w.probability,
                start: w.start,
                end: w.end,
                extra: Map::new(),
            })
            .collect();
        TurnInfo {
            request_id: String::new(),
            sequence_id: 0,
            event,
            turn_index: self.turn_index,
            audio_window_start: self.last_end,
            audio_window_end: end,
            transcript: joined(segments),
            words,
            end_of_turn_confidence: 0.0,
            languages: None,
            languages_hinted: None,
            trigger: None,
            extra: Map::new(),
        }
    }
}

fn joined(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(Segment::transcript)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A derived turn as the JSON text the session reads: a Flux `TurnInfo` marked as derived.
pub fn derived_json(info: TurnInfo) -> String {
    let mut value = ServerMessage::TurnInfo(info).to_value();
    if let Value::Object(map) = &mut value {
        // Fireworks numbers nothing and has no request ids: zeros would only mislead.
        map.remove("request_id");
        map.remove("sequence_id");
        map.insert("derived".into(), Value::Bool(true));
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn word(w: &str, fin: bool, start: f64) -> Value {
        json!({"word": w, "language": "en", "probability": 0.9, "hallucination_score": 0.0,
               "is_final": fin, "start": start, "end": start + 0.2})
    }

    fn seg(id: Value, words: &[(&str, bool)]) -> Value {
        let ws: Vec<Value> = words
            .iter()
            .enumerate()
            .map(|(i, (w, f))| word(w, *f, i as f64 * 0.3))
            .collect();
        let text = words.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(" ");
        json!({"id": id, "text": text, "words": ws})
    }

    fn events(s: &mut Segments, segments: Vec<Value>) -> Vec<(String, String)> {
        s.merge(&segments);
        s.derive()
            .into_iter()
            .map(|t| (t.event.to_string(), t.transcript))
            .collect()
    }

    #[test]
    fn the_documented_example_upserts_by_id() {
        let mut s = Segments::default();
        s.merge(&[
            json!({"id": "0", "text": "This is the first sentence"}),
            json!({"id": "1", "text": "This is the second sentence"}),
        ]);
        s.merge(&[
            json!({"id": "1", "text": "This is the second sentence modified"}),
            json!({"id": "2", "text": "This is the third sentence"}),
        ]);
        assert_eq!(
            s.texts(),
            vec![
                (0, "This is the first sentence".into()),
                (1, "This is the second sentence modified".into()),
                (2, "This is the third sentence".into()),
            ]
        );
    }

    #[test]
    fn ids_above_the_messages_highest_are_dropped_and_ids_order_numerically() {
        let mut s = Segments::default();
        s.merge(&[
            json!({"id": 8, "text": "a"}),
            json!({"id": "9", "text": "b"}),
            json!({"id": 10, "text": "c"}),
            json!({"id": "11", "text": "d"}),
        ]);
        // String "10" compares after "9" numerically, not before it as text would.
        s.merge(&[
            json!({"id": "9", "text": "b2"}),
            json!({"id": "10", "text": "c2"}),
        ]);
        assert_eq!(
            s.texts(),
            vec![(8, "a".into()), (9, "b2".into()), (10, "c2".into())]
        );
        // Bad ids are skipped and counted; an empty message changes nothing.
        let m = s.merge(&[json!({"id": "x", "text": "?"}), json!({"text": "?"})]);
        assert_eq!(m.bad_ids, 2);
        s.merge(&[]);
        assert_eq!(s.texts().len(), 3);
    }

    #[test]
    fn a_segment_becomes_a_turn_when_all_its_words_are_final() {
        let mut s = Segments::default();
        let e = events(
            &mut s,
            vec![seg(json!(0), &[("hello", true), ("there", false)])],
        );
        assert_eq!(e, vec![("StartOfTurn".into(), "hello there".into())]);
        let e = events(
            &mut s,
            vec![seg(json!(0), &[("hello", true), ("there", false)])],
        );
        assert!(e.is_empty(), "no change, no event: {e:?}");
        let e = events(
            &mut s,
            vec![
                seg(json!(0), &[("hello", true), ("there", true)]),
                seg(json!(1), &[("next", false)]),
            ],
        );
        assert_eq!(
            e,
            vec![
                ("EndOfTurn".into(), "hello there".into()),
                ("StartOfTurn".into(), "next".into())
            ]
        );
        // A revision of a finished segment is kept in the state but never reported again.
        let e = events(
            &mut s,
            vec![
                seg(json!(0), &[("hullo", true), ("there", true)]),
                seg(json!(1), &[("next", false), ("one", false)]),
            ],
        );
        assert_eq!(e, vec![("Update".into(), "next one".into())]);
        assert_eq!(s.texts()[0].1, "hullo there");
    }

    #[test]
    fn turns_finish_in_id_order_and_indices_count_up() {
        let mut s = Segments::default();
        s.merge(&[
            seg(json!("0"), &[("one", false)]),
            seg(json!("1"), &[("two", true)]),
        ]);
        let e = s.derive();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].transcript, "one two");
        s.merge(&[
            seg(json!("0"), &[("one", true)]),
            seg(json!("1"), &[("two", true)]),
        ]);
        let e = s.derive();
        let ends: Vec<(u64, &str)> = e
            .iter()
            .filter(|t| t.event == TurnEvent::EndOfTurn)
            .map(|t| (t.turn_index, t.transcript.as_str()))
            .collect();
        assert_eq!(ends, vec![(0, "one"), (1, "two")]);
        // The second turn had no StartOfTurn of its own yet: it gets one before its end.
        assert_eq!(e[1].event, TurnEvent::StartOfTurn);
        assert_eq!(e[2].turn_index, 1);
        assert!(e[2].audio_window_start >= e[0].audio_window_end - 1e-9);
    }

    #[test]
    fn a_dropped_speculative_segment_leaves_no_trace() {
        let mut s = Segments::default();
        events(
            &mut s,
            vec![
                seg(json!(0), &[("the", true), ("cat", false)]),
                seg(json!(1), &[("sat", false)]),
            ],
        );
        let e = events(
            &mut s,
            vec![seg(
                json!(0),
                &[("the", true), ("cat", true), ("sat", true)],
            )],
        );
        assert_eq!(e, vec![("EndOfTurn".into(), "the cat sat".into())]);
        assert_eq!(s.texts().len(), 1);
        // The dropped text is not reported as the open turn.
        assert!(s.derive().is_empty());
    }

    #[test]
    fn derived_json_is_a_flux_turn_marked_derived() {
        let mut s = Segments::default();
        s.merge(&[seg(json!(3), &[("hi", true)])]);
        let mut e = s.derive();
        let end = e.pop().unwrap();
        let text = derived_json(end);
        let r = ServerMessage::parse(&text).unwrap();
        assert_eq!(r.raw["derived"], true);
        assert_eq!(r.raw["type"], "TurnInfo");
        assert_eq!(r.raw["words"][0]["start"], 0.0);
        let ServerMessage::TurnInfo(t) = r.message else {
            panic!("{text}")
        };
        assert_eq!(t.event, TurnEvent::EndOfTurn);
        assert_eq!(t.transcript, "hi");
    }
}
