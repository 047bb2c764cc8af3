//! The documented values of `/v2/listen`'s stream parameters: sample rates, languages,
//! threshold ranges, encodings, redaction modes, which dialect accepts which parameter, and
//! how numbers are written. Plain data; the rules that combine them are in `rules`.

use std::fmt;

/// Sample rates Flux accepts for raw audio.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 24000, 44100, 48000];
/// Language hints `flux-general-multi` understands (locale subtags like `en-GB` map to `en`).
pub const LANGUAGES: [&str; 10] = ["en", "es", "fr", "de", "hi", "ru", "pt", "ja", "it", "nl"];
pub const DEFAULT_EOT_THRESHOLD: f64 = 0.7;
pub const DEFAULT_EOT_TIMEOUT_MS: u32 = 5000;
pub const EOT_TIMEOUT_RANGE_MS: (u32, u32) = (500, 60000);
pub const EAGER_EOT_RANGE: (f64, f64) = (0.3, 0.9);
pub const MAX_KEYTERMS: usize = 100;
pub const MAX_TAG_CHARS: usize = 128;

/// Every parameter `/v2/listen` accepts, in the order flux writes them.
pub const NAMES: [&str; 13] = [
    "model",
    "encoding",
    "sample_rate",
    "eot_threshold",
    "eager_eot_threshold",
    "eot_timeout_ms",
    "keyterm",
    "language_hint",
    "numerals",
    "profanity_filter",
    "redact",
    "mip_opt_out",
    "tag",
];

/// Parameters of `/v1/listen` that `/v2/listen` rejects; named so the error can say why.
pub(super) const V1_ONLY: &[&str] = &[
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
    pub(super) fn accepts(self, name: &str) -> bool {
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

/// `8000, 16000, ...` for an error message.
pub(super) fn list(rates: &[u32]) -> String {
    rates
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_format_like_the_docs() {
        assert_eq!(format_number(1.0), "1.0");
        assert_eq!(format_number(0.7), "0.7");
    }

    #[test]
    fn locale_hints_map_to_their_base_language() {
        assert_eq!(base_language("en-GB"), Some("en"));
        assert_eq!(base_language("PT_br"), Some("pt"));
        assert_eq!(base_language("xx"), None);
    }
}
