//! `--log FILE`: one JSON line per thing a client sent, flushed per line, so a test can
//! assert exactly what its client did. Secrets are masked before they reach the file. The
//! file is appended to, never truncated, so several runs can share one log.
//!
//! Lines (every one also has `t`, seconds since the server started, and `conn`):
//! - `handshake`: method, path, query (raw, `token` masked), headers (lowercase names,
//!   credentials masked), status (101 or the refusal), request_id
//! - `audio`: bytes, audio_start, audio_end (seconds of decoded audio before and after)
//! - `control`: `message` (the JSON as received) or `text` (when it was not JSON)
//! - `close`: code (null when none), reason, by (`client`, `server` or `drop`)

use crate::error::FluxError;
use serde_json::{Map, Value, json};
use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

const MASK: &str = "***";

#[derive(Debug)]
pub struct Logger {
    out: Mutex<LineWriter<File>>,
    start: Instant,
}

impl Logger {
    /// Opens `path` for appending (created when missing): a log kept across several runs, or
    /// shared with other tools, is never cut short (`--help` promises it appends).
    pub fn create(path: &Path, start: Instant) -> Result<Logger, FluxError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                FluxError::Usage(format!("cannot write the log {}: {e}", path.display()))
            })?;
        Ok(Logger {
            out: Mutex::new(LineWriter::new(file)),
            start,
        })
    }

    /// Writes one line: `t`, `conn`, `kind`, then `fields` in order.
    pub fn write(&self, conn: u64, kind: &str, fields: Value) {
        let mut line = Map::new();
        let t = self.start.elapsed().as_secs_f64();
        line.insert("t".into(), json!((t * 1000.0).round() / 1000.0));
        line.insert("conn".into(), json!(conn));
        line.insert("kind".into(), json!(kind));
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // A poisoned lock only means another session panicked mid-write; keep logging.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // The log is a diagnostic: a full disk must not take sessions down.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// A header value as it may appear in the log.
pub fn mask_header(name: &str, value: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "authorization" | "proxy-authorization" | "cf-aig-authorization" => {
            match value.trim().split_once(' ') {
                Some((scheme, _)) => format!("{scheme} {MASK}"),
                None => MASK.to_string(),
            }
        }
        "sec-websocket-protocol" => mask_subprotocols(value),
        // Whatever a client adds for its own proxy or Worker (`flux --header`), when the name
        // says it is a credential: `x-api-key`, `x-auth-token`, `cookie`...
        other if SECRET_WORDS.iter().any(|w| other.contains(w)) => MASK.to_string(),
        _ => value.to_string(),
    }
}

/// Header-name fragments that mark a credential.
const SECRET_WORDS: [&str; 7] = [
    "key",
    "token",
    "secret",
    "auth",
    "password",
    "cookie",
    "signature",
];

/// `token, KEY` → `token, ***`; `cf-aig-authorization.KEY` → `cf-aig-authorization.***`.
fn mask_subprotocols(value: &str) -> String {
    let mut previous = String::new();
    let mut items = Vec::new();
    for item in value.split(',').map(str::trim) {
        let masked = if matches!(previous.as_str(), "token" | "bearer") {
            MASK.to_string()
        } else if let Some((prefix, _)) = item.split_once('.') {
            if prefix.eq_ignore_ascii_case("cf-aig-authorization") {
                format!("{prefix}.{MASK}")
            } else {
                item.to_string()
            }
        } else {
            item.to_string()
        };
        previous = item.to_ascii_lowercase();
        items.push(masked);
    }
    items.join(", ")
}

/// The query string with the value of any `token` parameter masked; the rest untouched.
pub fn mask_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            let decoded: String = url::form_urlencoded::parse(key.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            if decoded == "token" {
                format!("{key}={MASK}")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        assert_eq!(mask_header("Authorization", "Token abc123"), "Token ***");
        assert_eq!(mask_header("authorization", "Bearer x.y.z"), "Bearer ***");
        assert_eq!(mask_header("authorization", "abc123"), "***");
        assert_eq!(
            mask_header("cf-aig-authorization", "Bearer k"),
            "Bearer ***"
        );
        assert_eq!(
            mask_header("sec-websocket-protocol", "token, abc123"),
            "token, ***"
        );
        assert_eq!(
            mask_header("sec-websocket-protocol", "cf-aig-authorization.secret"),
            "cf-aig-authorization.***"
        );
        assert_eq!(mask_header("user-agent", "token abc"), "token abc");
        for name in ["X-Api-Key", "x-auth-token", "Cookie", "x-amz-signature"] {
            assert_eq!(mask_header(name, "s3cr3t"), "***", "{name}");
        }
        assert_eq!(
            mask_query("model=flux-general-en&token=s3cr3t&tag=token"),
            "model=flux-general-en&token=***&tag=token"
        );
        assert_eq!(mask_query(""), "");
    }

    #[test]
    fn lines_are_json_with_t_conn_kind_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let log = Logger::create(&path, Instant::now()).unwrap();
        log.write(3, "audio", json!({"bytes": 2560}));
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["t", "conn", "kind", "bytes"]);
        assert_eq!(v["conn"], 3);
    }

    #[test]
    fn an_existing_log_is_appended_to_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "{\"kept\":true}\n").unwrap();
        let log = Logger::create(&path, Instant::now()).unwrap();
        log.write(1, "audio", json!({"bytes": 1}));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0], "{\"kept\":true}");
        assert!(lines[1].contains("\"kind\":\"audio\""), "{text}");
    }
}
