//! Every `/v2/listen` message, server → client and client → server.
//!
//! Server messages are parsed leniently: unknown `type`s become [`ServerMessage::Unknown`],
//! unknown fields are kept in each struct's `extra` map, numbers sent as strings are accepted,
//! and a Cloudflare message without `type` but with `event` is read as `TurnInfo`. Nothing a
//! server sends is a parse failure except text that is not a JSON object.
//!
//! Client messages are parsed strictly, the way Flux does: the server side (`flux serve`) uses
//! [`ClientMessage::parse`] to reject what the real service rejects.

use super::read;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Declares an open string enum: known values get variants, anything else is kept verbatim.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name { $($variant,)+ Other(String) }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self { $(Self::$variant => $text,)+ Self::Other(s) => s }
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s { $($text => Self::$variant,)+ other => Self::Other(other.to_string()) }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(Self::from(s.as_str()))
            }
        }
    };
}

open_enum!(
    /// `TurnInfo.event`.
    TurnEvent {
        Update = "Update",
        StartOfTurn = "StartOfTurn",
        EagerEndOfTurn = "EagerEndOfTurn",
        TurnResumed = "TurnResumed",
        EndOfTurn = "EndOfTurn",
    }
);

open_enum!(
    /// `TurnInfo.trigger`, present on `EndOfTurn` only.
    Trigger {
        Model = "model",
        Manual = "manual",
        Timeout = "timeout",
    }
);

/// Accepts a JSON number or a string holding one (some generated docs type them as strings).
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    lenient_f64_of(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn lenient_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    lenient_opt_f64_of(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    lenient_u64_of(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// The rules of the lenient fields, shared by the serde derive and `read` (which reads the
/// parsed JSON without serde).
pub(super) fn lenient_f64_of(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "number out of range".to_string()),
        Value::String(s) => s.trim().parse().map_err(|e| format!("{e}")),
        Value::Null => Ok(0.0),
        other => Err(format!("expected a number, got {other}")),
    }
}

pub(super) fn lenient_opt_f64_of(v: &Value) -> Result<Option<f64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s.trim().parse().map(Some).map_err(|e| format!("{e}")),
        other => Err(format!("expected a number, got {other}")),
    }
}

pub(super) fn lenient_u64_of(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .ok_or_else(|| "expected a non-negative integer".to_string()),
        Value::String(s) => s.trim().parse().map_err(|e| format!("{e}")),
        Value::Null => Ok(0),
        other => Err(format!("expected an integer, got {other}")),
    }
}

/// `Connected`: the session is ready; always `sequence_id` 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Connected {
    #[serde(default)]
    pub request_id: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sequence_id: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One word of a turn. `start`/`end` are optional on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Word {
    #[serde(default)]
    pub word: String,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub confidence: f64,
    #[serde(
        default,
        deserialize_with = "lenient_opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `TurnInfo`: every transcript and turn event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnInfo {
    #[serde(default)]
    pub request_id: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sequence_id: u64,
    pub event: TurnEvent,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub turn_index: u64,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub audio_window_start: f64,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub audio_window_end: f64,
    /// The whole turn so far (cumulative, not a delta).
    #[serde(default)]
    pub transcript: String,
    #[serde(default)]
    pub words: Vec<Word>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub end_of_turn_confidence: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages_hinted: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TurnInfo {
    /// A TurnInfo of `event` with every other field empty (zero, `None`, no words).
    pub fn empty(event: TurnEvent) -> Self {
        TurnInfo {
            request_id: String::new(),
            sequence_id: 0,
            event,
            turn_index: 0,
            audio_window_start: 0.0,
            audio_window_end: 0.0,
            transcript: String::new(),
            words: Vec::new(),
            end_of_turn_confidence: 0.0,
            languages: None,
            languages_hinted: None,
            trigger: None,
            extra: Map::new(),
        }
    }
}

/// The `thresholds` object of `Configure` and `ConfigureSuccess`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Thresholds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eot_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eager_eot_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eot_timeout_ms: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `ConfigureSuccess`: echoes the whole active configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConfigureSuccess {
    #[serde(default)]
    pub request_id: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sequence_id: u64,
    #[serde(default)]
    pub thresholds: Thresholds,
    #[serde(default)]
    pub keyterms: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_hints: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerals: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `ConfigureFailure`, `Warning` and `Error` share a shape: a code and a description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Notice {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sequence_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Notice {
    pub fn new(code: &str, description: impl Into<String>) -> Self {
        Notice {
            code: Some(code.to_string()),
            description: Some(description.into()),
            ..Notice::default()
        }
    }

    /// "CODE: description", for people.
    pub fn summary(&self) -> String {
        match (&self.code, &self.description) {
            (Some(c), Some(d)) => format!("{c}: {d}"),
            (Some(c), None) => c.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "(no code or description given)".to_string(),
        }
    }
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Connected(Connected),
    TurnInfo(TurnInfo),
    ConfigureSuccess(ConfigureSuccess),
    ConfigureFailure(Notice),
    Warning(Notice),
    /// Fatal; the server closes after it. The wire `type` is `"Error"`.
    Error(Notice),
    /// A `type` this client does not know, or a known one whose body did not fit its schema.
    Unknown(Value),
}

/// A server message together with its JSON as received (normalized to always carry `type`),
/// so output can keep every field, known or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub message: ServerMessage,
    pub raw: Value,
}

/// Why a server text frame could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ServerParseError {
    #[error("server sent text that is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("server sent JSON that is not an object")]
    NotObject,
}

impl ServerMessage {
    /// Parses one text frame. Fails only on text that is not a JSON object.
    pub fn parse(text: &str) -> Result<Received, ServerParseError> {
        let value = read::value_from_str(text).map_err(ServerParseError::NotJson)?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Received, ServerParseError> {
        let Value::Object(mut map) = value else {
            return Err(ServerParseError::NotObject);
        };
        // `type` is looked for along the keys, not hashed: Flux sends it first.
        fn kind(map: &Map<String, Value>) -> Option<&Value> {
            map.iter().find(|(k, _)| *k == "type").map(|(_, v)| v)
        }
        // Cloudflare documents TurnInfo payloads without `type`; give them one so every
        // consumer can dispatch on `type` alone.
        if kind(&map).is_none() && map.contains_key("event") {
            let mut normalized = Map::with_capacity(map.len() + 1);
            normalized.insert("type".into(), Value::String("TurnInfo".into()));
            normalized.extend(map);
            map = normalized;
        }
        let kind = kind(&map).and_then(Value::as_str).unwrap_or("");
        // Read from the parsed JSON (copying only what the structs keep); `type` is the enum
        // tag, not a field of any of them.
        let typed = match kind {
            "Connected" => read::connected(&map).map(ServerMessage::Connected),
            "TurnInfo" => read::turn_info(&map).map(ServerMessage::TurnInfo),
            "ConfigureSuccess" => {
                read::configure_success(&map).map(ServerMessage::ConfigureSuccess)
            }
            "ConfigureFailure" => read::notice(&map).map(ServerMessage::ConfigureFailure),
            "Warning" => read::notice(&map).map(ServerMessage::Warning),
            "Error" => read::notice(&map).map(ServerMessage::Error),
            _ => None,
        };
        let raw = Value::Object(map);
        let message = typed.unwrap_or_else(|| ServerMessage::Unknown(raw.clone()));
        Ok(Received { message, raw })
    }

    /// The wire `type` of this message.
    pub fn type_name(&self) -> &str {
        match self {
            ServerMessage::Connected(_) => "Connected",
            ServerMessage::TurnInfo(_) => "TurnInfo",
            ServerMessage::ConfigureSuccess(_) => "ConfigureSuccess",
            ServerMessage::ConfigureFailure(_) => "ConfigureFailure",
            ServerMessage::Warning(_) => "Warning",
            ServerMessage::Error(_) => "Error",
            ServerMessage::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The message as JSON with `type` first, as Flux sends it.
    pub fn to_value(&self) -> Value {
        let body = match self {
            ServerMessage::Connected(m) => serde_json::to_value(m),
            ServerMessage::TurnInfo(m) => serde_json::to_value(m),
            ServerMessage::ConfigureSuccess(m) => serde_json::to_value(m),
            ServerMessage::ConfigureFailure(m)
            | ServerMessage::Warning(m)
            | ServerMessage::Error(m) => serde_json::to_value(m),
            ServerMessage::Unknown(v) => return v.clone(),
        };
        let mut out = Map::new();
        out.insert("type".into(), Value::String(self.type_name().to_string()));
        if let Ok(Value::Object(fields)) = body {
            out.extend(fields);
        }
        Value::Object(out)
    }

    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// Sets `sequence_id` (the server numbers every message it sends).
    pub fn set_sequence_id(&mut self, seq: u64) {
        match self {
            ServerMessage::Connected(m) => m.sequence_id = seq,
            ServerMessage::TurnInfo(m) => m.sequence_id = seq,
            ServerMessage::ConfigureSuccess(m) => m.sequence_id = seq,
            ServerMessage::ConfigureFailure(m)
            | ServerMessage::Warning(m)
            | ServerMessage::Error(m) => m.sequence_id = seq,
            ServerMessage::Unknown(Value::Object(map)) => {
                map.insert("sequence_id".into(), Value::from(seq));
            }
            ServerMessage::Unknown(_) => {}
        }
    }

    pub fn set_request_id(&mut self, id: &str) {
        match self {
            ServerMessage::Connected(m) => m.request_id = id.to_string(),
            ServerMessage::TurnInfo(m) => m.request_id = id.to_string(),
            ServerMessage::ConfigureSuccess(m) => m.request_id = id.to_string(),
            ServerMessage::ConfigureFailure(m)
            | ServerMessage::Warning(m)
            | ServerMessage::Error(m) => m.request_id = id.to_string(),
            ServerMessage::Unknown(Value::Object(map)) => {
                map.insert("request_id".into(), Value::from(id));
            }
            ServerMessage::Unknown(_) => {}
        }
    }
}

/// `Configure`: change thresholds, keyterms, language hints or numerals mid-stream.
/// Omitted fields stay as they are; `keyterms` and `language_hints` replace (`[]` clears).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Configure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyterms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_hints: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerals: Option<bool>,
}

/// A control message from the client (audio travels as binary frames, not here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    Configure(Configure),
    ForceEndTurn,
    CloseStream,
}

/// Why Flux would refuse a client text frame (it answers `Error` and closes).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{description}")]
pub struct ClientParseError {
    /// Flux's error code, e.g. `UNPARSABLE_CLIENT_MESSAGE`.
    pub code: &'static str,
    pub description: String,
}

pub const UNPARSABLE_CLIENT_MESSAGE: &str = "UNPARSABLE_CLIENT_MESSAGE";

fn unparsable(description: impl Into<String>) -> ClientParseError {
    ClientParseError {
        code: UNPARSABLE_CLIENT_MESSAGE,
        description: description.into(),
    }
}

impl ClientMessage {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a client text frame as strictly as Flux does: only `Configure`, `ForceEndTurn`
    /// and `CloseStream` exist on v2 (no `KeepAlive`, no `Finalize`); `Configure` takes only
    /// its documented fields with their JSON types (`numerals: "true"` is refused, as is the
    /// v1 `features` nesting).
    pub fn parse(text: &str) -> Result<ClientMessage, ClientParseError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| unparsable(format!("Client message is not valid JSON: {e}")))?;
        let Value::Object(map) = &value else {
            return Err(unparsable("Client message must be a JSON object"));
        };
        let kind = match map.get("type") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(unparsable("Client message field `type` must be a string")),
            None => return Err(unparsable("Client message has no `type` field")),
        };
        match kind {
            "ForceEndTurn" => Ok(ClientMessage::ForceEndTurn),
            "CloseStream" => Ok(ClientMessage::CloseStream),
            "Configure" => parse_configure(map).map(ClientMessage::Configure),
            "KeepAlive" | "Finalize" => Err(unparsable(format!(
                "`{kind}` is not a message of /v2/listen; Flux has only Configure, ForceEndTurn \
                 and CloseStream (keep a quiet stream alive by sending silence)"
            ))),
            other => Err(unparsable(format!(
                "Unknown client message type `{other}`; expected Configure, ForceEndTurn or \
                 CloseStream"
            ))),
        }
    }
}

fn parse_configure(map: &Map<String, Value>) -> Result<Configure, ClientParseError> {
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "type" | "thresholds" | "keyterms" | "language_hints" | "numerals"
        ) {
            return Err(unparsable(format!(
                "Unknown field `{key}` in Configure; expected thresholds, keyterms, \
                 language_hints or numerals"
            )));
        }
    }
    let thresholds = match map.get("thresholds") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => Some(parse_thresholds(t)?),
        Some(_) => return Err(unparsable("Configure `thresholds` must be an object")),
    };
    let keyterms = string_list(map.get("keyterms"), "keyterms")?;
    let language_hints = string_list(map.get("language_hints"), "language_hints")?;
    let numerals = match map.get("numerals") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(unparsable(format!(
                "Configure `numerals` must be a JSON boolean, got {other}"
            )));
        }
    };
    Ok(Configure {
        thresholds,
        keyterms,
        language_hints,
        numerals,
    })
}

fn parse_thresholds(t: &Map<String, Value>) -> Result<Thresholds, ClientParseError> {
    let mut out = Thresholds::default();
    for (key, value) in t {
        let number = match value {
            Value::Null => continue,
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            other => {
                return Err(unparsable(format!(
                    "Configure thresholds.{key} must be a JSON number, got {other}"
                )));
            }
        };
        match key.as_str() {
            "eot_threshold" => out.eot_threshold = Some(number),
            "eager_eot_threshold" => out.eager_eot_threshold = Some(number),
            "eot_timeout_ms" => {
                if number.fract() != 0.0 || number < 0.0 {
                    return Err(unparsable(format!(
                        "Configure thresholds.eot_timeout_ms must be a whole number of \
                         milliseconds, got {number}"
                    )));
                }
                out.eot_timeout_ms = Some(number as u64);
            }
            other => {
                return Err(unparsable(format!(
                    "Unknown field `{other}` in Configure thresholds; expected eot_threshold, \
                     eager_eot_threshold or eot_timeout_ms"
                )));
            }
        }
    }
    Ok(out)
}

fn string_list(value: Option<&Value>, name: &str) -> Result<Option<Vec<String>>, ClientParseError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(unparsable(format!(
                    "Configure `{name}` must be a list of strings, found {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(unparsable(format!(
            "Configure `{name}` must be a list of strings, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_info_with_every_field_round_trips() {
        let text = r#"{"type":"TurnInfo","request_id":"550e8400-e29b-41d4-a716-446655440000","sequence_id":42,"event":"EndOfTurn","turn_index":3,"audio_window_start":1.5,"audio_window_end":4.2,"transcript":"hello world","words":[{"word":"hello","confidence":0.98,"start":1.6,"end":1.9},{"word":"world","confidence":0.9}],"end_of_turn_confidence":0.91,"trigger":"model","languages":["en"],"languages_hinted":["en","es"],"future_field":{"x":1}}"#;
        let got = ServerMessage::parse(text).unwrap();
        let ServerMessage::TurnInfo(t) = &got.message else {
            panic!("not TurnInfo: {got:?}")
        };
        assert_eq!(t.event, TurnEvent::EndOfTurn);
        assert_eq!(t.trigger, Some(Trigger::Model));
        assert_eq!(t.turn_index, 3);
        assert_eq!(t.words[0].start, Some(1.6));
        assert_eq!(t.words[1].start, None);
        assert_eq!(
            t.languages_hinted.as_deref(),
            Some(&["en".into(), "es".into()][..])
        );
        assert_eq!(t.extra["future_field"]["x"], 1);
        assert!(!t.extra.contains_key("type"), "the tag is not a field");
        // Re-serializing keeps every field, unknown ones included.
        let back: Value = serde_json::from_str(&got.message.to_json()).unwrap();
        let orig: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn unknown_fields_keep_the_servers_order_without_the_tag() {
        let text = r#"{"type":"Warning","zeta":1,"code":"C","alpha":2,"mid":3,"description":"d"}"#;
        let got = ServerMessage::parse(text).unwrap();
        let ServerMessage::Warning(n) = &got.message else {
            panic!("not a Warning: {got:?}")
        };
        assert_eq!(n.code.as_deref(), Some("C"));
        let keys: Vec<&str> = n.extra.keys().map(String::as_str).collect();
        assert_eq!(keys, ["zeta", "alpha", "mid"]);
        assert_eq!(got.raw.to_string(), text, "the JSON as received");
    }

    #[test]
    fn unknown_type_and_unknown_event_are_kept() {
        let got = ServerMessage::parse(r#"{"type":"Heartbeat","sequence_id":3,"x":[1]}"#).unwrap();
        assert!(matches!(got.message, ServerMessage::Unknown(_)));
        assert_eq!(got.message.type_name(), "Heartbeat");
        assert_eq!(got.raw["x"][0], 1);
        let got = ServerMessage::parse(
            r#"{"type":"TurnInfo","event":"SomethingNew","turn_index":0,"transcript":""}"#,
        )
        .unwrap();
        let ServerMessage::TurnInfo(t) = got.message else {
            panic!()
        };
        assert_eq!(t.event, TurnEvent::Other("SomethingNew".into()));
    }

    #[test]
    fn cloudflare_message_without_type_is_turn_info() {
        let got = ServerMessage::parse(
            r#"{"event":"StartOfTurn","turn_index":0,"audio_window_start":"0.0","audio_window_end":"0.6","transcript":"Hi","words":[{"word":"Hi","confidence":"0.95"}],"end_of_turn_confidence":0.1,"request_id":"r","sequence_id":1}"#,
        )
        .unwrap();
        assert_eq!(got.raw["type"], "TurnInfo");
        assert_eq!(got.raw.as_object().unwrap().keys().next().unwrap(), "type");
        let ServerMessage::TurnInfo(t) = got.message else {
            panic!()
        };
        assert_eq!(t.audio_window_end, 0.6);
        assert_eq!(t.words[0].confidence, 0.95);
    }

    #[test]
    fn error_warning_and_configure_replies_parse() {
        let e = ServerMessage::parse(
            r#"{"type":"Error","sequence_id":1,"code":"ERR_001","description":"test error"}"#,
        )
        .unwrap();
        assert_eq!(
            e.message,
            ServerMessage::Error(Notice {
                sequence_id: 1,
                ..Notice::new("ERR_001", "test error")
            })
        );
        let w = ServerMessage::parse(
            r#"{"type":"Warning","code":"FORCE_END_TURN_NO_ACTIVE_TURN","description":"d"}"#,
        )
        .unwrap();
        assert!(
            matches!(w.message, ServerMessage::Warning(ref n) if n.code.as_deref() == Some("FORCE_END_TURN_NO_ACTIVE_TURN"))
        );
        let s = ServerMessage::parse(r#"{"type":"ConfigureSuccess","request_id":"r","sequence_id":17,"thresholds":{"eager_eot_threshold":0.4,"eot_threshold":0.7,"eot_timeout_ms":6000},"keyterms":["apple"],"language_hints":["en","es"],"numerals":false}"#).unwrap();
        let ServerMessage::ConfigureSuccess(s) = s.message else {
            panic!()
        };
        assert_eq!(s.thresholds.eot_timeout_ms, Some(6000));
        assert_eq!(s.numerals, Some(false));
        let f = ServerMessage::parse(r#"{"type":"ConfigureFailure","sequence_id":42}"#).unwrap();
        assert!(matches!(f.message, ServerMessage::ConfigureFailure(ref n) if n.code.is_none()));
    }

    #[test]
    fn not_json_is_an_error_not_a_panic() {
        assert!(ServerMessage::parse("{not json").is_err());
        assert!(ServerMessage::parse("[1,2]").is_err());
    }

    #[test]
    fn client_messages_serialize_as_flux_expects() {
        assert_eq!(
            ClientMessage::ForceEndTurn.to_json(),
            r#"{"type":"ForceEndTurn"}"#
        );
        assert_eq!(
            ClientMessage::CloseStream.to_json(),
            r#"{"type":"CloseStream"}"#
        );
        let c = ClientMessage::Configure(Configure {
            thresholds: Some(Thresholds {
                eot_threshold: Some(0.8),
                ..Default::default()
            }),
            keyterms: Some(vec![]),
            ..Default::default()
        });
        assert_eq!(
            c.to_json(),
            r#"{"type":"Configure","thresholds":{"eot_threshold":0.8},"keyterms":[]}"#
        );
        assert_eq!(ClientMessage::parse(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn strict_client_parsing_refuses_what_flux_refuses() {
        for bad in [
            r#"{"type":"KeepAlive"}"#,
            r#"{"type":"Finalize"}"#,
            r#"{"type":"Configure","features":{"numerals":true}}"#,
            r#"{"type":"Configure","numerals":"true"}"#,
            r#"{"type":"Configure","thresholds":{"eot_threshold":"0.7"}}"#,
            r#"{"type":"Configure","thresholds":{"eot":0.7}}"#,
            r#"{"type":"Configure","keyterms":"a,b"}"#,
            r#"not json"#,
            r#"{"no":"type"}"#,
        ] {
            let err = ClientMessage::parse(bad).unwrap_err();
            assert_eq!(err.code, UNPARSABLE_CLIENT_MESSAGE, "{bad}");
        }
        assert_eq!(
            ClientMessage::parse(r#"{"type":"Configure","language_hints":null}"#).unwrap(),
            ClientMessage::Configure(Configure::default())
        );
    }
}
