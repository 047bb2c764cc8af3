//! Stream parameters of `/v2/listen`: their documented values and ranges, the rules that tie
//! them together, and their query-string form (repeated keys for lists, lowercase booleans).
//!
//! The client validates with these rules before connecting; `flux serve` validates the
//! handshake with the same rules, so the two cannot drift apart.

use std::fmt;

/// Sample rates Flux accepts for raw audio.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 24000, 44100, 48000];
/// Models Flux serves.
pub const MODELS: [&str; 2] = ["flux-general-en", "flux-general-multi"];
pub const DEFAULT_MODEL: &str = "flux-general-en";
pub const MULTILINGUAL_MODEL: &str = "flux-general-multi";
/// Language hints `flux-general-multi` understands (locale subtags like `en-GB` map to `en`).
pub const LANGUAGES: [&str; 10] = ["en", "es", "fr", "de", "hi", "ru", "pt", "ja", "it", "nl"];
pub const DEFAULT_EOT_THRESHOLD: f64 = 0.7;
pub const DEFAULT_EOT_TIMEOUT_MS: u32 = 5000;
pub const EOT_TIMEOUT_RANGE_MS: (u32, u32) = (500, 60000);
pub const EAGER_EOT_RANGE: (f64, f64) = (0.3, 0.9);
pub const MAX_KEYTERMS: usize = 100;
pub const MAX_TAG_CHARS: usize = 128;

/// Parameters of `/v1/listen` that `/v2/listen` rejects; named so the error can say why.
const V1_ONLY: &[&str] = &[
    "language",
    "smart_format",
    "punctuate",
    "channels",
    "multichannel",
    "diarize",
    "diarize_version",
    "interim_results",
    "endpointing",
    "utterance_end_ms",
    "vad_events",
    "keywords",
    "filler_words",
    "dictation",
    "search",
    "replace",
    "detect_language",
    "alternatives",
    "paragraphs",
    "utterances",
    "tier",
    "version",
    "callback",
    "callback_method",
    "no_delay",
];

/// Which endpoint dialect a set of parameters is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Deepgram's `/v2/listen` (hosted, regional or self-hosted).
    Deepgram,
    /// Cloudflare Workers AI `@cf/deepgram/flux`: linear16 only, no model choice, and only
    /// encoding, sample_rate, eot_threshold (0.5–0.9), eager_eot_threshold, eot_timeout_ms,
    /// keyterm, mip_opt_out and tag.
    Cloudflare,
}

impl Dialect {
    /// The highest `eot_threshold` the dialect accepts (Cloudflare documents 0.5–0.9).
    pub fn max_eot_threshold(self) -> f64 {
        match self {
            Dialect::Deepgram => 1.0,
            Dialect::Cloudflare => 0.9,
        }
    }

    /// Parameters this dialect accepts at all.
    fn accepts(self, name: &str) -> bool {
        match self {
            Dialect::Deepgram => true,
            Dialect::Cloudflare => matches!(
                name,
                "encoding"
                    | "sample_rate"
                    | "eot_threshold"
                    | "eager_eot_threshold"
                    | "eot_timeout_ms"
                    | "keyterm"
                    | "mip_opt_out"
                    | "tag"
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Linear16,
    Linear32,
    Mulaw,
    Alaw,
    Opus,
    OggOpus,
}

impl Encoding {
    pub const ALL: [Encoding; 6] = [
        Encoding::Linear16,
        Encoding::Linear32,
        Encoding::Mulaw,
        Encoding::Alaw,
        Encoding::Opus,
        Encoding::OggOpus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Linear16 => "linear16",
            Encoding::Linear32 => "linear32",
            Encoding::Mulaw => "mulaw",
            Encoding::Alaw => "alaw",
            Encoding::Opus => "opus",
            Encoding::OggOpus => "ogg-opus",
        }
    }

    pub fn parse(s: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redact {
    Numbers,
    AggressiveNumbers,
}

impl Redact {
    pub fn as_str(self) -> &'static str {
        match self {
            Redact::Numbers => "numbers",
            Redact::AggressiveNumbers => "aggressive_numbers",
        }
    }

    pub fn parse(s: &str) -> Option<Redact> {
        match s {
            "numbers" => Some(Redact::Numbers),
            "aggressive_numbers" => Some(Redact::AggressiveNumbers),
            _ => None,
        }
    }
}

/// Every stream parameter of `/v2/listen`. `None`/empty means "not sent" (server default).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamParams {
    pub model: Option<String>,
    pub encoding: Option<Encoding>,
    pub sample_rate: Option<u32>,
    pub eot_threshold: Option<f64>,
    pub eager_eot_threshold: Option<f64>,
    pub eot_timeout_ms: Option<u32>,
    pub keyterms: Vec<String>,
    pub language_hints: Vec<String>,
    pub numerals: Option<bool>,
    pub profanity_filter: Option<bool>,
    pub redact: Vec<Redact>,
    pub mip_opt_out: Option<bool>,
    pub tags: Vec<String>,
}

/// A parameter the server would refuse, with the HTTP status and Deepgram error code it would
/// answer with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    /// 400 for a bad query, 403 for a model the project cannot use.
    pub status: u16,
    /// Deepgram's `err_code`, e.g. `INVALID_QUERY_PARAMETER`.
    pub code: &'static str,
    /// The query parameter at fault, where there is one.
    pub param: Option<String>,
    pub message: String,
}

pub const INVALID_QUERY_PARAMETER: &str = "INVALID_QUERY_PARAMETER";
pub const INSUFFICIENT_PERMISSIONS: &str = "INSUFFICIENT_PERMISSIONS";

fn bad(param: &str, message: impl Into<String>) -> ParamError {
    ParamError {
        status: 400,
        code: INVALID_QUERY_PARAMETER,
        param: Some(param.to_string()),
        message: message.into(),
    }
}

/// Formats a threshold the way Deepgram's docs write them (`0.7`, `1.0`).
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// The base language of a hint (`en-GB` → `en`), if Flux knows it.
pub fn base_language(hint: &str) -> Option<&'static str> {
    let base = hint
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    LANGUAGES.into_iter().find(|l| *l == base)
}

impl StreamParams {
    /// The model in force (Flux's default when none is given).
    pub fn model_or_default(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    pub fn eot_threshold_or_default(&self) -> f64 {
        self.eot_threshold.unwrap_or(DEFAULT_EOT_THRESHOLD)
    }

    pub fn eot_timeout_ms_or_default(&self) -> u32 {
        self.eot_timeout_ms.unwrap_or(DEFAULT_EOT_TIMEOUT_MS)
    }

    /// Checks every documented range and cross-rule for `dialect`.
    pub fn validate(&self, dialect: Dialect) -> Result<(), ParamError> {
        self.check_dialect(dialect)?;
        if let Some(model) = &self.model {
            if !MODELS.contains(&model.as_str()) {
                return Err(ParamError {
                    status: 403,
                    code: INSUFFICIENT_PERMISSIONS,
                    param: Some("model".into()),
                    message: format!(
                        "Project does not have access to the requested model `{model}`; Flux \
                         models are {}",
                        MODELS.join(" and ")
                    ),
                });
            }
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
        if let Some(rate) = self.sample_rate {
            if !SAMPLE_RATES.contains(&rate) {
                return Err(bad(
                    "sample_rate",
                    format!(
                        "sample_rate={rate} is not supported; use one of {}",
                        list(&SAMPLE_RATES)
                    ),
                ));
            }
        }
        let max_eot = dialect.max_eot_threshold();
        if let Some(eot) = self.eot_threshold {
            if !(0.5..=max_eot).contains(&eot) {
                return Err(bad(
                    "eot_threshold",
                    format!(
                        "eot_threshold={} is out of range; it must be between 0.5 and {}",
                        format_number(eot),
                        format_number(max_eot)
                    ),
                ));
            }
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

    /// The query string pairs, in a stable order; lists as repeated keys, booleans lowercase.
    pub fn to_query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut q: Vec<(&'static str, String)> = Vec::new();
        if let Some(m) = &self.model {
            q.push(("model", m.clone()));
        }
        if let Some(e) = self.encoding {
            q.push(("encoding", e.as_str().to_string()));
        }
        if let Some(r) = self.sample_rate {
            q.push(("sample_rate", r.to_string()));
        }
        if let Some(x) = self.eot_threshold {
            q.push(("eot_threshold", format_number(x)));
        }
        if let Some(x) = self.eager_eot_threshold {
            q.push(("eager_eot_threshold", format_number(x)));
        }
        if let Some(x) = self.eot_timeout_ms {
            q.push(("eot_timeout_ms", x.to_string()));
        }
        q.extend(self.keyterms.iter().map(|k| ("keyterm", k.clone())));
        q.extend(
            self.language_hints
                .iter()
                .map(|l| ("language_hint", l.clone())),
        );
        if let Some(b) = self.numerals {
            q.push(("numerals", b.to_string()));
        }
        if let Some(b) = self.profanity_filter {
            q.push(("profanity_filter", b.to_string()));
        }
        q.extend(
            self.redact
                .iter()
                .map(|r| ("redact", r.as_str().to_string())),
        );
        if let Some(b) = self.mip_opt_out {
            q.push(("mip_opt_out", b.to_string()));
        }
        q.extend(self.tags.iter().map(|t| ("tag", t.clone())));
        q
    }

    /// Reads a query string as the server does: unknown and v1-only parameters, malformed
    /// values and repeated single-valued keys are refused; then every rule is checked.
    pub fn from_query(query: &str, dialect: Dialect) -> Result<StreamParams, ParamError> {
        let mut p = StreamParams::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (key, value) = (key.as_ref(), value.into_owned());
            if !dialect.accepts(key) && is_known(key) {
                return Err(bad(
                    key,
                    format!(
                        "{key} is not supported by Cloudflare's @cf/deepgram/flux; it accepts only \
                         encoding, sample_rate, eot_threshold, eager_eot_threshold, \
                         eot_timeout_ms, keyterm, mip_opt_out and tag"
                    ),
                ));
            }
            match key {
                "model" => set_once(&mut p.model, key, value)?,
                "encoding" => {
                    let enc = Encoding::parse(&value).ok_or_else(|| {
                        bad(
                            key,
                            format!(
                                "encoding={value} is not supported; use one of linear16, \
                                 linear32, mulaw, alaw, opus, ogg-opus (or omit it for WAV)"
                            ),
                        )
                    })?;
                    set_once(&mut p.encoding, key, enc)?;
                }
                "sample_rate" => {
                    let rate = value.parse::<u32>().map_err(|_| {
                        bad(
                            key,
                            format!("sample_rate={value} is not a whole number of Hz"),
                        )
                    })?;
                    set_once(&mut p.sample_rate, key, rate)?;
                }
                "eot_threshold" => set_once(&mut p.eot_threshold, key, number(key, &value)?)?,
                "eager_eot_threshold" => {
                    set_once(&mut p.eager_eot_threshold, key, number(key, &value)?)?
                }
                "eot_timeout_ms" => {
                    let ms = value.parse::<u32>().map_err(|_| {
                        bad(
                            key,
                            format!("eot_timeout_ms={value} is not a whole number of milliseconds"),
                        )
                    })?;
                    set_once(&mut p.eot_timeout_ms, key, ms)?;
                }
                "keyterm" => p.keyterms.push(value),
                "language_hint" => p.language_hints.push(value),
                "numerals" => set_once(&mut p.numerals, key, boolean(key, &value)?)?,
                "profanity_filter" => {
                    set_once(&mut p.profanity_filter, key, boolean(key, &value)?)?
                }
                "redact" => p.redact.push(Redact::parse(&value).ok_or_else(|| {
                    bad(
                        key,
                        format!(
                            "redact={value} is not supported; use numbers or aggressive_numbers"
                        ),
                    )
                })?),
                "mip_opt_out" => set_once(&mut p.mip_opt_out, key, boolean(key, &value)?)?,
                "tag" => p.tags.push(value),
                _ if V1_ONLY.contains(&key) => {
                    return Err(bad(
                        key,
                        format!(
                            "{key} is a /v1/listen parameter; /v2/listen (Flux) does not accept it"
                        ),
                    ));
                }
                _ => {
                    return Err(bad(key, format!("unknown query parameter `{key}`")));
                }
            }
        }
        if dialect == Dialect::Deepgram && p.model.is_none() {
            return Err(bad(
                "model",
                format!("model is required; use {}", MODELS.join(" or ")),
            ));
        }
        p.validate(dialect)?;
        Ok(p)
    }
}

fn is_known(key: &str) -> bool {
    matches!(
        key,
        "model"
            | "encoding"
            | "sample_rate"
            | "eot_threshold"
            | "eager_eot_threshold"
            | "eot_timeout_ms"
            | "keyterm"
            | "language_hint"
            | "numerals"
            | "profanity_filter"
            | "redact"
            | "mip_opt_out"
            | "tag"
    )
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

fn list(rates: &[u32]) -> String {
    rates
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), ParamError> {
    if slot.is_some() {
        return Err(bad(key, format!("{key} was given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

fn number(key: &str, value: &str) -> Result<f64, ParamError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| bad(key, format!("{key}={value} is not a number")))
}

fn boolean(key: &str, value: &str) -> Result<bool, ParamError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(
            key,
            format!("{key}={value} must be true or false (lowercase)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> StreamParams {
        StreamParams {
            model: Some(MULTILINGUAL_MODEL.into()),
            encoding: Some(Encoding::Linear16),
            sample_rate: Some(16000),
            eot_threshold: Some(0.8),
            eager_eot_threshold: Some(0.5),
            eot_timeout_ms: Some(7000),
            keyterms: vec!["customer service".into(), "Flux".into()],
            language_hints: vec!["en".into(), "es".into()],
            numerals: Some(true),
            profanity_filter: Some(false),
            redact: vec![Redact::Numbers],
            mip_opt_out: Some(true),
            tags: vec!["ci".into(), "run 7".into()],
        }
    }

    fn query(p: &StreamParams) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p.to_query_pairs())
            .finish()
    }

    #[test]
    fn query_string_round_trips_with_repeated_keys_and_lowercase_booleans() {
        let p = full();
        let q = query(&p);
        assert_eq!(
            q,
            "model=flux-general-multi&encoding=linear16&sample_rate=16000&eot_threshold=0.8&\
             eager_eot_threshold=0.5&eot_timeout_ms=7000&keyterm=customer+service&keyterm=Flux&\
             language_hint=en&language_hint=es&numerals=true&profanity_filter=false&\
             redact=numbers&mip_opt_out=true&tag=ci&tag=run+7"
        );
        assert_eq!(StreamParams::from_query(&q, Dialect::Deepgram).unwrap(), p);
    }

    #[test]
    fn thresholds_format_like_the_docs() {
        assert_eq!(format_number(1.0), "1.0");
        assert_eq!(format_number(0.7), "0.7");
    }

    #[test]
    fn each_rule_is_enforced() {
        let cases: Vec<(&str, &str, u16)> = vec![
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&language=en",
                "language",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&foo=1",
                "foo",
                400,
            ),
            (
                "model=flux&encoding=linear16&sample_rate=16000",
                "model",
                403,
            ),
            ("encoding=linear16&sample_rate=16000", "model", 400),
            (
                "model=flux-general-en&encoding=linear16",
                "sample_rate",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=22050",
                "sample_rate",
                400,
            ),
            (
                "model=flux-general-en&encoding=mp3&sample_rate=16000",
                "encoding",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=0.4",
                "eot_threshold",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=1.1",
                "eot_threshold",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eager_eot_threshold=0.8",
                "eager_eot_threshold",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=0.6&eager_eot_threshold=0.7",
                "eager_eot_threshold",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_timeout_ms=400",
                "eot_timeout_ms",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_timeout_ms=60001",
                "eot_timeout_ms",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&language_hint=en",
                "language_hint",
                400,
            ),
            (
                "model=flux-general-multi&encoding=linear16&sample_rate=16000&language_hint=xx",
                "language_hint",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&numerals=True",
                "numerals",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&redact=pci",
                "redact",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&keyterm=",
                "keyterm",
                400,
            ),
            (
                "model=flux-general-en&model=flux-general-en&encoding=linear16&sample_rate=16000",
                "model",
                400,
            ),
            (
                "model=flux-general-en&sample_rate=16000",
                "sample_rate",
                400,
            ),
        ];
        for (q, param, status) in cases {
            let err = StreamParams::from_query(q, Dialect::Deepgram).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{q}: {err}");
            assert_eq!(err.status, status, "{q}: {err}");
        }
        // The boundaries themselves are valid.
        StreamParams::from_query(
            "model=flux-general-multi&encoding=linear16&sample_rate=8000&eot_threshold=1.0&eager_eot_threshold=0.9&eot_timeout_ms=60000&language_hint=en-GB",
            Dialect::Deepgram,
        )
        .unwrap();
        // WAV (containerized) audio: no encoding, no sample rate.
        StreamParams::from_query("model=flux-general-en", Dialect::Deepgram).unwrap();
    }

    #[test]
    fn cloudflare_accepts_only_its_subset() {
        let ok = "encoding=linear16&sample_rate=16000&eot_threshold=0.9&eager_eot_threshold=0.4&eot_timeout_ms=5000&keyterm=a&keyterm=b&mip_opt_out=false&tag=x";
        let p = StreamParams::from_query(ok, Dialect::Cloudflare).unwrap();
        assert_eq!(p.keyterms, vec!["a", "b"]);
        for (q, param) in [
            (
                "encoding=linear16&sample_rate=16000&model=flux-general-en",
                "model",
            ),
            (
                "encoding=linear16&sample_rate=16000&numerals=true",
                "numerals",
            ),
            (
                "encoding=linear16&sample_rate=16000&language_hint=en",
                "language_hint",
            ),
            ("encoding=mulaw&sample_rate=8000", "encoding"),
            ("sample_rate=16000", "encoding"),
            (
                "encoding=linear16&sample_rate=16000&eot_threshold=1.0",
                "eot_threshold",
            ),
        ] {
            let err = StreamParams::from_query(q, Dialect::Cloudflare).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{q}: {err}");
        }
    }
}
