//! Stream parameters of `/v2/listen`, shared by the client and `flux serve`.
//!
//! The client validates with these rules before connecting; `flux serve` validates the
//! handshake with the same rules, so the two cannot drift apart. By job:
//! - `values`: the documented values and ranges, encodings, redaction, dialects
//! - `models`: the Flux models, and the Deepgram models that are not Flux (named in errors)
//! - `rules`: checking a set of parameters as a whole (ranges and cross-rules)
//! - `query`: the query-string form, written by the client and read by the server
//!
//! This file holds the parameter set itself and the error a broken rule gives.

mod models;
mod query;
mod rules;
mod values;

pub use models::{DEFAULT_MODEL, MODELS, MULTILINGUAL_MODEL, check_model, non_flux_family};
pub use rules::{validate_keyterms, validate_language_hints};
pub use values::{
    DEFAULT_EOT_THRESHOLD, DEFAULT_EOT_TIMEOUT_MS, Dialect, EAGER_EOT_RANGE, EOT_TIMEOUT_RANGE_MS,
    Encoding, LANGUAGES, MAX_KEYTERMS, MAX_TAG_CHARS, NAMES, Redact, SAMPLE_RATES, base_language,
    format_number,
};

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
}
