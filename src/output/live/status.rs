//! The live view's status line: connection state, provider and model, request id, audio time
//! and speed, microphone level, reconnects and the key hints, fitted to any width by giving
//! up the least important parts first.

use super::lines::{Line, Tone, span};
use super::text::{truncate, width};
use super::view::clock;

#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// The WebSocket is open; the server's `Connected` has not arrived yet.
    Upgraded,
    Streaming,
    /// No more input; the last turn is being finished.
    Finishing {
        reason: String,
    },
    /// The connection was lost, or given up on purpose (`planned`: SageMaker's 30-minute
    /// cap); a new one is being made.
    Reconnecting {
        attempt: u32,
        max_attempts: u32,
        planned: bool,
    },
    Failed,
}

/// The status line's facts.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub request_id: Option<String>,
    /// `None` until the WebSocket is open.
    pub connection: Option<Connection>,
    /// Audio the server has reported on, in seconds (max `audio_window_end`), or all audio
    /// sent once input has ended.
    pub audio: f64,
    /// Length of the input, when known (files).
    pub total: Option<f64>,
    /// Successful reconnects.
    pub reconnects: u32,
    /// Microphone level in dBFS, when a microphone is the source.
    pub mic_db: Option<f32>,
    /// Keys are read (raw mode is on): show the key hints.
    pub keys: bool,
}

impl Status {
    /// The status row, at most `cols` columns: the parts that fit, shortened or dropped in
    /// order of importance. `elapsed` is the wall time since streaming began (for the speed).
    pub fn row(&self, cols: usize, elapsed: Option<f64>) -> Line {
        let s = self;
        let (state, tone) = match &s.connection {
            None => ("connecting", Tone::Warn),
            Some(Connection::Upgraded) => ("connected", Tone::Warn),
            Some(Connection::Streaming) => ("streaming", Tone::Good),
            Some(Connection::Finishing { reason }) if reason == "interrupted" => {
                ("finishing (stopped)", Tone::Accent)
            }
            Some(Connection::Finishing { .. }) => ("finishing", Tone::Accent),
            Some(Connection::Failed) => ("error", Tone::Bad),
            Some(Connection::Reconnecting { .. }) => ("reconnecting", Tone::Warn),
        };
        let state = match &s.connection {
            Some(Connection::Reconnecting { planned: true, .. }) => "next stream".to_string(),
            Some(Connection::Reconnecting {
                attempt,
                max_attempts,
                ..
            }) => format!("{state} {attempt}/{max_attempts}"),
            _ => state.to_string(),
        };
        let mut parts = [
            Part::new(vec![format!("[{state}]")], tone),
            Part::new(Vec::new(), Tone::Plain),
            Part::new(Vec::new(), Tone::Dim),
            Part::new(Vec::new(), Tone::Plain),
            Part::new(Vec::new(), Tone::Plain),
            Part::new(Vec::new(), Tone::Dim),
            Part::new(Vec::new(), Tone::Dim),
        ];
        if let Some(p) = &s.provider {
            let model = s.model.as_deref().unwrap_or("");
            parts[PROVIDER].forms = vec![format!("{p} {model}"), model.to_string()];
        }
        if let Some(id) = &s.request_id {
            let short: String = id.chars().take(8).collect();
            parts[REQUEST].forms = vec![format!("req {id}"), format!("req {short}")];
        }
        let (now, total) = (clock(s.audio), s.total.map(clock));
        let speed = elapsed
            .filter(|e| *e >= 1.0 && s.audio > 0.0)
            .map(|e| format!(" {:.1}x", s.audio / e))
            .unwrap_or_default();
        parts[AUDIO].forms = match &total {
            Some(t) => vec![
                format!("audio {now} / {t}{speed}"),
                format!("{now}/{t}{speed}"),
                format!("{now}/{t}"),
                now.clone(),
            ],
            // The same steps as with a total, so the ladder never drops the audio time.
            None => vec![
                format!("audio {now}{speed}"),
                format!("audio {now}{speed}"),
                format!("audio {now}"),
                now.clone(),
            ],
        };
        if let Some(db) = s.mic_db {
            let level = if db.is_finite() {
                format!("{:.0} dB", db.max(-120.0))
            } else {
                "-- dB".to_string()
            };
            parts[MIC].forms = vec![format!("mic {level} {}", meter(db)), format!("mic {level}")];
        }
        let reconnects = s.reconnects;
        parts[RECONNECTS].forms = vec![format!("reconnects {reconnects}")];
        if reconnects > 0 {
            parts[RECONNECTS].tone = Tone::Warn;
        }
        if s.keys {
            // The short form still fits an 80-column status line.
            parts[KEYS].forms = vec![
                "q quit, e end turn, +/- eot".to_string(),
                "keys q e +/-".to_string(),
            ];
        }
        // What gives way first when the line is too long: the long key hints, then detail,
        // then whole parts (the short hints before the model). Reconnects outrank the request
        // id once there have been any.
        let ladder: &[usize] = if reconnects > 0 {
            &[
                KEYS, REQUEST, MIC, AUDIO, PROVIDER, REQUEST, KEYS, PROVIDER, AUDIO, MIC,
                RECONNECTS, AUDIO,
            ]
        } else {
            &[
                KEYS, REQUEST, MIC, AUDIO, PROVIDER, REQUEST, RECONNECTS, KEYS, PROVIDER, AUDIO,
                MIC, AUDIO,
            ]
        };
        fit(parts, ladder, cols)
    }
}

// Status line parts, in display order.
const PROVIDER: usize = 1;
const REQUEST: usize = 2;
const AUDIO: usize = 3;
const MIC: usize = 4;
const RECONNECTS: usize = 5;
const KEYS: usize = 6;

/// A piece of the status line: its forms from longest to shortest (empty: not shown).
struct Part {
    forms: Vec<String>,
    /// The form shown; `forms.len()` or more means the part is dropped.
    level: usize,
    tone: Tone,
}

impl Part {
    fn new(forms: Vec<String>, tone: Tone) -> Part {
        Part {
            forms,
            level: 0,
            tone,
        }
    }

    fn text(&self) -> Option<&str> {
        self.forms.get(self.level).map(String::as_str)
    }
}

const SEP: &str = " · ";

/// Steps down the ladder (each step shortens or drops one part) until the line fits `cols`;
/// whatever still does not fit is cut with `…`.
fn fit<const N: usize>(mut parts: [Part; N], ladder: &[usize], cols: usize) -> Line {
    let total = |parts: &[Part]| {
        let shown: Vec<&str> = parts.iter().filter_map(Part::text).collect();
        shown.iter().map(|t| width(t)).sum::<usize>() + width(SEP) * shown.len().saturating_sub(1)
    };
    for &i in ladder {
        if total(&parts) <= cols {
            break;
        }
        if let Some(p) = parts.get_mut(i) {
            p.level += 1;
        }
    }
    let mut line = Vec::new();
    let mut used = 0;
    for p in &parts {
        let Some(text) = p.text() else { continue };
        if !line.is_empty() {
            if used + width(SEP) >= cols {
                break;
            }
            line.push(span(SEP, Tone::Dim));
            used += width(SEP);
        }
        let text = truncate(text, cols.saturating_sub(used));
        used += width(&text);
        line.push(span(text, p.tone));
    }
    line
}

/// A six-cell level meter from -60 dBFS (empty) to 0 dBFS (full).
fn meter(db: f32) -> String {
    let filled = (((db + 60.0) / 10.0).clamp(0.0, 6.0)).round() as usize;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(6 - filled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::live::view::plain;

    fn streaming_from_a_file(keys: bool) -> Status {
        Status {
            provider: Some("deepgram".into()),
            model: Some("flux-general-en".into()),
            request_id: Some("0b9d7c2e-5a61-4f4e-9b1c-1f2e3d4c5b6a".into()),
            connection: Some(Connection::Streaming),
            audio: 2.5,
            total: Some(10.0),
            keys,
            ..Status::default()
        }
    }

    #[test]
    fn key_hints_show_in_short_form_at_80_columns() {
        let wide = plain(&streaming_from_a_file(true).row(199, Some(2.5)));
        assert!(wide.ends_with("q quit, e end turn, +/- eot"), "{wide}");
        let row = plain(&streaming_from_a_file(true).row(79, Some(2.5)));
        assert!(row.ends_with(" · keys q e +/-"), "{row}");
        assert!(
            row.contains("flux-general-en") && row.contains("0:10.0"),
            "{row}"
        );
        assert!(width(&row) <= 79);
        // Without keys being read, nothing is hinted.
        let row = plain(&streaming_from_a_file(false).row(79, Some(2.5)));
        assert!(!row.contains("keys"), "{row}");
        // Very narrow: the hints give way before the audio time.
        let row = plain(&streaming_from_a_file(true).row(30, Some(2.5)));
        assert!(!row.contains("keys") && row.contains("0:02.5"), "{row}");
    }
}
