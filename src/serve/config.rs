//! The configuration a session runs with: set by the query string, changed by `Configure`.
//!
//! `Configure` is atomic: the merged result is checked as a whole (ranges, eager ≤ eot,
//! ≤ 100 keyterms, language hints only on `flux-general-multi`) and either replaces the
//! active configuration or leaves it untouched with a `ConfigureFailure`.

use crate::protocol::params::{
    DEFAULT_EOT_THRESHOLD, DEFAULT_EOT_TIMEOUT_MS, EAGER_EOT_RANGE, EOT_TIMEOUT_RANGE_MS,
    MULTILINGUAL_MODEL, base_language, format_number, validate_keyterms, validate_language_hints,
};
use crate::protocol::{Configure, ConfigureSuccess, Dialect, Notice, StreamParams, Thresholds};

pub const INVALID_THRESHOLD: &str = "INVALID_THRESHOLD";
pub const INVALID_KEYTERMS: &str = "INVALID_KEYTERMS";
pub const INVALID_LANGUAGE_HINTS: &str = "INVALID_LANGUAGE_HINTS";

#[derive(Debug, Clone, PartialEq)]
pub struct ActiveConfig {
    pub dialect: Dialect,
    pub model: String,
    pub eot_threshold: f64,
    pub eager_eot_threshold: Option<f64>,
    pub eot_timeout_ms: u32,
    pub keyterms: Vec<String>,
    pub language_hints: Vec<String>,
    pub numerals: bool,
}

impl ActiveConfig {
    pub fn from_params(params: &StreamParams, dialect: Dialect) -> ActiveConfig {
        ActiveConfig {
            dialect,
            model: params.model_or_default().to_string(),
            eot_threshold: params.eot_threshold.unwrap_or(DEFAULT_EOT_THRESHOLD),
            eager_eot_threshold: params.eager_eot_threshold,
            eot_timeout_ms: params.eot_timeout_ms.unwrap_or(DEFAULT_EOT_TIMEOUT_MS),
            keyterms: params.keyterms.clone(),
            language_hints: params.language_hints.clone(),
            numerals: params.numerals.unwrap_or(false),
        }
    }

    pub fn is_multilingual(&self) -> bool {
        self.model == MULTILINGUAL_MODEL
    }

    /// Applies `Configure` entirely, or not at all (the error is the `ConfigureFailure`).
    pub fn apply(&mut self, c: &Configure) -> Result<(), Box<Notice>> {
        let mut next = self.clone();
        if let Some(t) = &c.thresholds {
            if let Some(x) = t.eot_threshold {
                next.eot_threshold = x;
            }
            if let Some(x) = t.eager_eot_threshold {
                next.eager_eot_threshold = Some(x);
            }
            if let Some(ms) = t.eot_timeout_ms {
                next.eot_timeout_ms = u32::try_from(ms).unwrap_or(u32::MAX);
            }
        }
        if let Some(k) = &c.keyterms {
            next.keyterms = k.clone();
        }
        if let Some(h) = &c.language_hints {
            if !h.is_empty() && !self.is_multilingual() {
                return Err(Box::new(Notice::new(
                    INVALID_LANGUAGE_HINTS,
                    format!(
                        "language_hints work only with model={MULTILINGUAL_MODEL}; this stream \
                         uses {}",
                        self.model
                    ),
                )));
            }
            next.language_hints = h.clone();
        }
        if let Some(n) = c.numerals {
            next.numerals = n;
        }
        next.check()?;
        *self = next;
        Ok(())
    }

    fn check(&self) -> Result<(), Box<Notice>> {
        let threshold = |msg: String| Box::new(Notice::new(INVALID_THRESHOLD, msg));
        let max_eot = self.dialect.max_eot_threshold();
        if !(0.5..=max_eot).contains(&self.eot_threshold) {
            return Err(threshold(format!(
                "eot_threshold must be between 0.5 and {}, got {}",
                format_number(max_eot),
                format_number(self.eot_threshold)
            )));
        }
        if let Some(eager) = self.eager_eot_threshold {
            let (lo, hi) = EAGER_EOT_RANGE;
            if !(lo..=hi).contains(&eager) {
                return Err(threshold(format!(
                    "eager_eot_threshold must be between {lo} and {hi}, got {}",
                    format_number(eager)
                )));
            }
            if eager > self.eot_threshold {
                return Err(threshold(format!(
                    "eager_eot_threshold ({}) must be less than or equal to eot_threshold ({})",
                    format_number(eager),
                    format_number(self.eot_threshold)
                )));
            }
        }
        let (lo, hi) = EOT_TIMEOUT_RANGE_MS;
        if !(lo..=hi).contains(&self.eot_timeout_ms) {
            return Err(threshold(format!(
                "eot_timeout_ms must be between {lo} and {hi}, got {}",
                self.eot_timeout_ms
            )));
        }
        validate_keyterms(&self.keyterms, "keyterms")
            .map_err(|e| Box::new(Notice::new(INVALID_KEYTERMS, e.message)))?;
        validate_language_hints(&self.language_hints, "language_hints")
            .map_err(|e| Box::new(Notice::new(INVALID_LANGUAGE_HINTS, e.message)))?;
        Ok(())
    }

    /// `ConfigureSuccess` echoing the whole active configuration.
    pub fn success(&self) -> ConfigureSuccess {
        ConfigureSuccess {
            thresholds: Thresholds {
                eot_threshold: Some(self.eot_threshold),
                eager_eot_threshold: self.eager_eot_threshold,
                eot_timeout_ms: Some(u64::from(self.eot_timeout_ms)),
                ..Thresholds::default()
            },
            keyterms: self.keyterms.clone(),
            language_hints: Some(self.language_hints.clone()),
            numerals: Some(self.numerals),
            ..ConfigureSuccess::default()
        }
    }

    /// `languages` for a `TurnInfo` of `flux-general-multi`: the first hinted language (the
    /// emulator detects none), English without hints; empty while nothing was said.
    pub fn languages(&self, transcript_empty: bool) -> Vec<String> {
        if transcript_empty {
            return Vec::new();
        }
        let first = self
            .language_hints
            .first()
            .and_then(|h| base_language(h))
            .unwrap_or("en");
        vec![first.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ClientMessage;

    fn configure(json: &str) -> Configure {
        match ClientMessage::parse(json).unwrap() {
            ClientMessage::Configure(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn active(query: &str) -> ActiveConfig {
        ActiveConfig::from_params(
            &StreamParams::from_query(query, Dialect::Deepgram).unwrap(),
            Dialect::Deepgram,
        )
    }

    #[test]
    fn merged_rules_and_atomicity() {
        let mut a = active("model=flux-general-en&eot_threshold=0.8&eager_eot_threshold=0.7");
        let before = a.clone();
        // Eager above the merged eot: refused, and the keyterms in the same message not applied.
        let err = a
            .apply(&configure(
                r#"{"type":"Configure","thresholds":{"eot_threshold":0.6},"keyterms":["x"]}"#,
            ))
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some(INVALID_THRESHOLD));
        assert_eq!(a, before);
        a.apply(&configure(
            r#"{"type":"Configure","thresholds":{"eot_threshold":0.9,"eot_timeout_ms":6000},"keyterms":["a","b"],"numerals":true}"#,
        ))
        .unwrap();
        assert_eq!(
            (a.eot_threshold, a.eot_timeout_ms, a.numerals),
            (0.9, 6000, true)
        );
        assert_eq!(a.eager_eot_threshold, Some(0.7));
        let too_many = format!(
            r#"{{"type":"Configure","keyterms":[{}]}}"#,
            vec!["\"k\""; 101].join(",")
        );
        let err = a.apply(&configure(&too_many)).unwrap_err();
        assert_eq!(err.code.as_deref(), Some(INVALID_KEYTERMS));
        let err = a
            .apply(&configure(
                r#"{"type":"Configure","language_hints":["es"]}"#,
            ))
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some(INVALID_LANGUAGE_HINTS));
        let err = a
            .apply(&configure(
                r#"{"type":"Configure","thresholds":{"eot_timeout_ms":100}}"#,
            ))
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some(INVALID_THRESHOLD));
    }

    #[test]
    fn multilingual_hints_replace_and_clear() {
        let mut a = active("model=flux-general-multi&language_hint=en");
        a.apply(&configure(
            r#"{"type":"Configure","language_hints":["es","fr"]}"#,
        ))
        .unwrap();
        assert_eq!(a.languages(false), ["es"]);
        a.apply(&configure(r#"{"type":"Configure","language_hints":[]}"#))
            .unwrap();
        assert!(a.language_hints.is_empty());
        assert_eq!(a.success().language_hints, Some(vec![]));
    }
}
