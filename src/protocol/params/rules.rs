//! The rules that tie `/v2/listen`'s parameters together: ranges, the dialect's subset,
//! encoding with sample rate, eager ≤ eot, language hints only on the multilingual model,
//! keyterm and tag limits. The client checks them before connecting and `flux serve` at the
//! handshake, so the two cannot drift apart.

use super::models::{MULTILINGUAL_MODEL, check_model};
use super::values::{
    EAGER_EOT_RANGE, EOT_TIMEOUT_RANGE_MS, LANGUAGES, MAX_KEYTERMS, MAX_TAG_CHARS, SAMPLE_RATES,
    base_language, format_number, list,
};
use super::{Dialect, Encoding, ParamError, StreamParams, bad};

impl StreamParams {
    /// Checks every documented range and cross-rule for `dialect`.
    pub fn validate(&self, dialect: Dialect) -> Result<(), ParamError> {
        self.check_dialect(dialect)?;
        if let Some(model) = &self.model {
            check_model(model)?;
        }
        match (self.encoding, self.sample_rate) {
            (Some(enc), None) => {
                return Err(bad(
                    "sample_rate",
                    format!(
                        "sample_rate is required with encoding={enc} (raw audio has no header)"
                    ),
                ));
            }
            (None, Some(_)) if dialect == Dialect::Deepgram => {
                return Err(bad(
                    "sample_rate",
                    "sample_rate was given without encoding: for containerized audio (WAV, Ogg, \
                     WebM) omit both; for raw audio also set encoding",
                ));
            }
            _ => {}
        }
        if let Some(rate) = self.sample_rate
            && !SAMPLE_RATES.contains(&rate)
        {
            return Err(bad(
                "sample_rate",
                format!(
                    "sample_rate={rate} is not supported; use one of {}",
                    list(&SAMPLE_RATES)
                ),
            ));
        }
        let max_eot = dialect.max_eot_threshold();
        if let Some(eot) = self.eot_threshold
            && !(0.5..=max_eot).contains(&eot)
        {
            return Err(bad(
                "eot_threshold",
                format!(
                    "eot_threshold={} is out of range; it must be between 0.5 and {}",
                    format_number(eot),
                    format_number(max_eot)
                ),
            ));
        }
        if let Some(eager) = self.eager_eot_threshold {
            let (lo, hi) = EAGER_EOT_RANGE;
            if !(lo..=hi).contains(&eager) {
                return Err(bad(
                    "eager_eot_threshold",
                    format!(
                        "eager_eot_threshold={} is out of range; it must be between {lo} and {hi}",
                        format_number(eager)
                    ),
                ));
            }
            let eot = self.eot_threshold_or_default();
            if eager > eot {
                return Err(bad(
                    "eager_eot_threshold",
                    format!(
                        "eager_eot_threshold={} must be less than or equal to eot_threshold={}",
                        format_number(eager),
                        format_number(eot)
                    ),
                ));
            }
        }
        if let Some(ms) = self.eot_timeout_ms {
            let (lo, hi) = EOT_TIMEOUT_RANGE_MS;
            if !(lo..=hi).contains(&ms) {
                return Err(bad(
                    "eot_timeout_ms",
                    format!(
                        "eot_timeout_ms={ms} is out of range; it must be between {lo} and {hi}"
                    ),
                ));
            }
        }
        validate_keyterms(&self.keyterms, "keyterm")?;
        if !self.language_hints.is_empty() && self.model_or_default() != MULTILINGUAL_MODEL {
            return Err(bad(
                "language_hint",
                format!(
                    "language_hint works only with model={MULTILINGUAL_MODEL}; {} detects no \
                     other language",
                    self.model_or_default()
                ),
            ));
        }
        validate_language_hints(&self.language_hints, "language_hint")?;
        for tag in &self.tags {
            if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS {
                return Err(bad(
                    "tag",
                    format!("each tag must be 1 to {MAX_TAG_CHARS} characters long"),
                ));
            }
        }
        Ok(())
    }

    fn check_dialect(&self, dialect: Dialect) -> Result<(), ParamError> {
        if dialect == Dialect::Cloudflare {
            for (name, present) in self.present_params() {
                if present && !dialect.accepts(name) {
                    return Err(bad(
                        name,
                        format!(
                            "{name} is not supported by Cloudflare's @cf/deepgram/flux; it \
                             accepts only encoding, sample_rate, eot_threshold, \
                             eager_eot_threshold, eot_timeout_ms, keyterm, mip_opt_out and tag"
                        ),
                    ));
                }
            }
            match self.encoding {
                Some(Encoding::Linear16) => {}
                Some(other) => {
                    return Err(bad(
                        "encoding",
                        format!(
                            "encoding={other} is not supported by @cf/deepgram/flux; it takes linear16 only"
                        ),
                    ));
                }
                None => {
                    return Err(bad(
                        "encoding",
                        "encoding is required by @cf/deepgram/flux (linear16)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Which parameters are set, named as in [`NAMES`](super::values::NAMES).
    fn present_params(&self) -> [(&'static str, bool); 13] {
        [
            ("model", self.model.is_some()),
            ("encoding", self.encoding.is_some()),
            ("sample_rate", self.sample_rate.is_some()),
            ("eot_threshold", self.eot_threshold.is_some()),
            ("eager_eot_threshold", self.eager_eot_threshold.is_some()),
            ("eot_timeout_ms", self.eot_timeout_ms.is_some()),
            ("keyterm", !self.keyterms.is_empty()),
            ("language_hint", !self.language_hints.is_empty()),
            ("numerals", self.numerals.is_some()),
            ("profanity_filter", self.profanity_filter.is_some()),
            ("redact", !self.redact.is_empty()),
            ("mip_opt_out", self.mip_opt_out.is_some()),
            ("tag", !self.tags.is_empty()),
        ]
    }
}

/// Keyterm rules shared by the query string and `Configure`.
pub fn validate_keyterms(terms: &[String], name: &str) -> Result<(), ParamError> {
    if terms.len() > MAX_KEYTERMS {
        return Err(bad(
            name,
            format!(
                "too many keyterms ({}); at most {MAX_KEYTERMS}",
                terms.len()
            ),
        ));
    }
    if terms.iter().any(|t| t.trim().is_empty()) {
        return Err(bad(name, "a keyterm must not be empty"));
    }
    Ok(())
}

/// Language-hint rules shared by the query string and `Configure`.
pub fn validate_language_hints(hints: &[String], name: &str) -> Result<(), ParamError> {
    for hint in hints {
        if base_language(hint).is_none() {
            return Err(bad(
                name,
                format!(
                    "language hint `{hint}` is not supported; use one of {}",
                    LANGUAGES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
