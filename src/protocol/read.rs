//! Reading a server message cheaply, on the session's thread, for every message it gets.
//!
//! - The JSON tree: the same [`Value`] as `serde_json::from_str` gives (same keys in the same
//!   order, same numbers, a repeated key keeping its first place and its last value), but each
//!   object's entries are gathered first and its map is made once at its final size, instead
//!   of growing (and re-hashing) through 4, 8 and 16 entries.
//! - The typed bodies, read from that tree field by field. The serde derive of these structs
//!   has `#[serde(flatten)] extra`, which buffers the fields the struct does not name (`type`
//!   among them) as serde `Content` (a copy) on the way; reading the map here copies only what
//!   the structs keep. The derive stays the definition: the tests check that both read every
//!   message alike (a field of the wrong type makes the body not fit, and the message
//!   `Unknown`).

use super::messages::{
    ConfigureSuccess, Connected, Notice, Thresholds, Trigger, TurnEvent, TurnInfo, Word,
    lenient_f64_of, lenient_opt_f64_of, lenient_u64_of,
};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

thread_local! {
    /// The entries of the objects being read, innermost last; kept between messages so a
    /// message allocates no room for them.
    static ENTRIES: RefCell<Vec<(String, Value)>> = const { RefCell::new(Vec::new()) };
}

/// Entries of room [`ENTRIES`] keeps between messages, at most (a TurnInfo with a long
/// turn's words needs a few hundred).
const MAX_KEPT_ENTRIES: usize = 1024;

/// Parses JSON text into the tree `serde_json::from_str::<Value>` would give.
pub(super) fn value_from_str(text: &str) -> Result<Value, serde_json::Error> {
    let mut entries = ENTRIES.with(|e| e.take());
    entries.clear(); // a failed parse leaves what it had read
    let mut de = serde_json::Deserializer::from_str(text);
    let result = Tree {
        entries: &mut entries,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    entries.clear();
    // A huge message once should not pin its room for the thread's life.
    if entries.capacity() > MAX_KEPT_ENTRIES {
        entries = Vec::new();
    }
    ENTRIES.with(|e| *e.borrow_mut() = entries);
    result
}

/// serde_json's own `Value` visitor, but with each object's entries gathered on a shared
/// stack first.
struct Tree<'a> {
    entries: &'a mut Vec<(String, Value)>,
}

impl<'de> DeserializeSeed<'de> for Tree<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tree<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Tree {
            entries: &mut *self.entries,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let start = self.entries.len();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Tree {
                entries: &mut *self.entries,
            })?;
            self.entries.push((key, value));
        }
        let mut object = Map::with_capacity(self.entries.len() - start);
        // `insert`, as serde_json does: a repeated key keeps its first place, its last value.
        for (key, value) in self.entries.drain(start..) {
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A field read with the type's own `Deserialize` (straight from the tree: no copy of it).
fn plain<'a, T: Deserialize<'a>>(v: &'a Value) -> Option<T> {
    T::deserialize(v).ok()
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `extra`: a field the struct does not know, kept in the server's order.
fn keep(extra: &mut Map<String, Value>, key: &str, value: &Value) {
    extra.insert(key.to_owned(), value.clone());
}

/// The fields every message body has: `type` (the tag, not a field: skipped), `request_id`
/// and `sequence_id`. `Some(true)` when `key` is one of them (read into place), `Some(false)`
/// when it is not, `None` when its value does not fit.
fn common(key: &str, v: &Value, request_id: &mut String, sequence_id: &mut u64) -> Option<bool> {
    match key {
        "type" => {}
        "request_id" => *request_id = string(v)?,
        "sequence_id" => *sequence_id = lenient_u64_of(v).ok()?,
        _ => return Some(false),
    }
    Some(true)
}

/// `Connected` from the message's map (`type` is the tag, not a field).
pub(super) fn connected(map: &Map<String, Value>) -> Option<Connected> {
    let mut m = Connected::default();
    for (key, v) in map {
        match key.as_str() {
            k if common(k, v, &mut m.request_id, &mut m.sequence_id)? => {}
            _ => keep(&mut m.extra, key, v),
        }
    }
    Some(m)
}

pub(super) fn turn_info(map: &Map<String, Value>) -> Option<TurnInfo> {
    let mut event = None;
    // `event` replaced below: a TurnInfo without one does not fit.
    let mut m = TurnInfo::empty(TurnEvent::Update);
    for (key, v) in map {
        match key.as_str() {
            k if common(k, v, &mut m.request_id, &mut m.sequence_id)? => {}
            "event" => event = Some(TurnEvent::from(v.as_str()?)),
            "turn_index" => m.turn_index = lenient_u64_of(v).ok()?,
            "audio_window_start" => m.audio_window_start = lenient_f64_of(v).ok()?,
            "audio_window_end" => m.audio_window_end = lenient_f64_of(v).ok()?,
            "transcript" => m.transcript = string(v)?,
            "words" => m.words = v.as_array()?.iter().map(word).collect::<Option<Vec<_>>>()?,
            "end_of_turn_confidence" => m.end_of_turn_confidence = lenient_f64_of(v).ok()?,
            "languages" => m.languages = plain(v)?,
            "languages_hinted" => m.languages_hinted = plain(v)?,
            "trigger" => {
                m.trigger = match v {
                    Value::Null => None,
                    Value::String(s) => Some(Trigger::from(s.as_str())),
                    _ => return None,
                }
            }
            _ => keep(&mut m.extra, key, v),
        }
    }
    m.event = event?;
    Some(m)
}

fn word(v: &Value) -> Option<Word> {
    let mut w = Word::default();
    for (key, v) in v.as_object()? {
        match key.as_str() {
            "word" => w.word = string(v)?,
            "confidence" => w.confidence = lenient_f64_of(v).ok()?,
            "start" => w.start = lenient_opt_f64_of(v).ok()?,
            "end" => w.end = lenient_opt_f64_of(v).ok()?,
            _ => keep(&mut w.extra, key, v),
        }
    }
    Some(w)
}

pub(super) fn configure_success(map: &Map<String, Value>) -> Option<ConfigureSuccess> {
    let mut m = ConfigureSuccess::default();
    for (key, v) in map {
        match key.as_str() {
            k if common(k, v, &mut m.request_id, &mut m.sequence_id)? => {}
            "thresholds" => m.thresholds = thresholds(v)?,
            "keyterms" => m.keyterms = plain(v)?,
            "language_hints" => m.language_hints = plain(v)?,
            "numerals" => m.numerals = plain(v)?,
            _ => keep(&mut m.extra, key, v),
        }
    }
    Some(m)
}

fn thresholds(v: &Value) -> Option<Thresholds> {
    let mut t = Thresholds::default();
    for (key, v) in v.as_object()? {
        match key.as_str() {
            "eot_threshold" => t.eot_threshold = plain(v)?,
            "eager_eot_threshold" => t.eager_eot_threshold = plain(v)?,
            "eot_timeout_ms" => t.eot_timeout_ms = plain(v)?,
            _ => keep(&mut t.extra, key, v),
        }
    }
    Some(t)
}

/// `ConfigureFailure`, `Warning` and `Error`.
pub(super) fn notice(map: &Map<String, Value>) -> Option<Notice> {
    let mut m = Notice::default();
    for (key, v) in map {
        match key.as_str() {
            k if common(k, v, &mut m.request_id, &mut m.sequence_id)? => {}
            "code" => m.code = plain(v)?,
            "description" => m.description = plain(v)?,
            _ => keep(&mut m.extra, key, v),
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Received, ServerMessage};

    /// How messages were read before this module: serde_json's tree, then each body through
    /// its serde derive (the definition of what fits), `type` taken out of `extra`.
    fn by_derive(text: &str) -> Option<Received> {
        let value: Value = serde_json::from_str(text).ok()?;
        let Value::Object(mut map) = value else {
            return None;
        };
        if !map.contains_key("type") && map.contains_key("event") {
            let mut normalized = Map::new();
            normalized.insert("type".into(), Value::String("TurnInfo".into()));
            normalized.extend(map);
            map = normalized;
        }
        let raw = Value::Object(map);
        fn body<T: serde::de::DeserializeOwned>(
            raw: &Value,
            extra: fn(&mut T) -> &mut Map<String, Value>,
        ) -> Option<T> {
            let mut body = T::deserialize(raw).ok()?;
            extra(&mut body).shift_remove("type");
            Some(body)
        }
        let typed = match raw.get("type").and_then(Value::as_str).unwrap_or("") {
            "Connected" => {
                body(&raw, |m: &mut Connected| &mut m.extra).map(ServerMessage::Connected)
            }
            "TurnInfo" => body(&raw, |m: &mut TurnInfo| &mut m.extra).map(ServerMessage::TurnInfo),
            "ConfigureSuccess" => body(&raw, |m: &mut ConfigureSuccess| &mut m.extra)
                .map(ServerMessage::ConfigureSuccess),
            "ConfigureFailure" => {
                body(&raw, |m: &mut Notice| &mut m.extra).map(ServerMessage::ConfigureFailure)
            }
            "Warning" => body(&raw, |m: &mut Notice| &mut m.extra).map(ServerMessage::Warning),
            "Error" => body(&raw, |m: &mut Notice| &mut m.extra).map(ServerMessage::Error),
            _ => None,
        };
        let message = typed.unwrap_or_else(|| ServerMessage::Unknown(raw.clone()));
        Some(Received { message, raw })
    }

    /// Both readers agree on `text`, down to the order of every map; returns whether the body
    /// fit its type (not `Unknown`).
    fn same(text: &str) -> bool {
        let old = by_derive(text);
        let new = ServerMessage::parse(text).ok();
        // Debug, not `==`: a "NaN" read as a number is the same reading, but not `==`.
        assert_eq!(format!("{old:?}"), format!("{new:?}"), "{text}");
        if let (Some(old), Some(new)) = (&old, &new) {
            // `==` on maps ignores order; the text does not.
            assert_eq!(old.raw.to_string(), new.raw.to_string(), "{text}");
            assert_eq!(old.message.to_json(), new.message.to_json(), "{text}");
        }
        new.is_some_and(|r| !matches!(r.message, ServerMessage::Unknown(_)))
    }

    /// Values of every JSON type, and numbers as strings, for every field.
    const SAMPLES: &[&str] = &[
        "null",
        "0",
        "7",
        "-3",
        "2.5",
        "-2.5",
        "-0",
        "1e3",
        "1.5e300",
        "18446744073709551615",
        "18446744073709551616",
        r#""4""#,
        r#"" 4.25 ""#,
        r#""-1""#,
        r#""x""#,
        r#""""#,
        "true",
        "false",
        "[]",
        r#"["en","es"]"#,
        "[1]",
        "{}",
        r#"{"a":1}"#,
        r#""inf""#,
        r#""NaN""#,
    ];

    /// Each field of `base` set to each sample in turn, and left out.
    fn every_field(base: &str, fields: &[&str]) {
        let mut fit = 0;
        for field in fields {
            for sample in SAMPLES {
                let text = format!(r#"{{{base},"{field}":{sample}}}"#);
                fit += usize::from(same(&text));
                // First, in the middle of the unknown fields, and twice (the last one wins).
                same(&format!(r#"{{"{field}":{sample},"zz":1,{base},"aa":[2]}}"#));
                same(&format!(r#"{{{base},"{field}":1,"{field}":{sample}}}"#));
            }
        }
        assert!(
            fit > 0 && fit < fields.len() * SAMPLES.len(),
            "{base}: {fit}"
        );
    }

    #[test]
    fn every_field_of_every_message_is_read_as_the_derive_reads_it() {
        every_field(
            r#""type":"Connected""#,
            &["request_id", "sequence_id", "type", "other"],
        );
        every_field(
            r#""type":"TurnInfo","event":"Update""#,
            &[
                "request_id",
                "sequence_id",
                "event",
                "turn_index",
                "audio_window_start",
                "audio_window_end",
                "transcript",
                "words",
                "end_of_turn_confidence",
                "languages",
                "languages_hinted",
                "trigger",
                "other",
            ],
        );
        for kind in ["ConfigureFailure", "Warning", "Error"] {
            every_field(
                &format!(r#""type":"{kind}""#),
                &["request_id", "sequence_id", "code", "description", "other"],
            );
        }
        every_field(
            r#""type":"ConfigureSuccess""#,
            &[
                "request_id",
                "sequence_id",
                "thresholds",
                "keyterms",
                "language_hints",
                "numerals",
                "other",
            ],
        );
    }

    #[test]
    fn every_field_of_words_and_thresholds_is_read_as_the_derive_reads_it() {
        for field in ["word", "confidence", "start", "end", "type", "other"] {
            for sample in SAMPLES {
                same(&format!(
                    r#"{{"type":"TurnInfo","event":"Update","words":[{{"word":"a","{field}":{sample}}},{{"word":"b"}}]}}"#
                ));
                // A Cloudflare message: no `type`.
                same(&format!(
                    r#"{{"event":"Update","words":[{{"{field}":{sample},"word":"a"}}]}}"#
                ));
            }
        }
        for field in [
            "eot_threshold",
            "eager_eot_threshold",
            "eot_timeout_ms",
            "other",
        ] {
            for sample in SAMPLES {
                same(&format!(
                    r#"{{"type":"ConfigureSuccess","thresholds":{{"eot_threshold":0.7,"{field}":{sample}}}}}"#
                ));
            }
        }
        for words in ["null", "{}", "[1]", "[[]]", r#"[{"word":1}]"#, "[{}]"] {
            same(&format!(
                r#"{{"type":"TurnInfo","event":"Update","words":{words}}}"#
            ));
        }
    }

    #[test]
    fn a_turn_info_without_event_does_not_fit() {
        assert!(!same(r#"{"type":"TurnInfo","transcript":"a"}"#));
        assert!(same(
            r#"{"type":"TurnInfo","event":"EndOfTurn","trigger":"x"}"#
        ));
        assert!(!same(r#"{"type":"TurnInfo","event":null}"#));
    }

    #[test]
    fn the_tree_is_serde_jsons_tree_in_the_same_order() {
        for text in [
            r#"{"type":"TurnInfo","b":1,"a":{"z":[1,2,{"y":null,"x":true}],"c":-0.0},"a":"again"}"#,
            r#"{"n":[1.5,-2,18446744073709551615,1e-7,123456789012345678901234567890]}"#,
            r#"{"s":"\u00e9\n\"\\\/\ud83d\ude00","e":{},"l":[],"deep":[[[[{"k":[{}]}]]]]}"#,
            " { \"ws\" : [ 1 , 2 ] } ",
            "[1,{\"a\":2}]",
            "\"text\"",
            "12",
        ] {
            let ours = value_from_str(text).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
        }
    }

    #[test]
    fn text_that_is_not_json_fails_as_in_serde_json_and_leaves_nothing_behind() {
        for text in [
            "{not json",
            r#"{"a":[1,2}"#,
            r#"{"a":{"b":1}} trailing"#,
            "",
            r#"{"a":1,}"#,
            "1e400",
        ] {
            let ours = value_from_str(text).unwrap_err();
            let theirs = serde_json::from_str::<Value>(text).unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
        }
        // The next parse on this thread is whole (no entries of the failed one in it).
        let text = r#"{"a":{"b":1,"c":2},"d":3}"#;
        assert_eq!(value_from_str(text).unwrap().to_string(), text);
    }
}
