//! Fireworks AI streaming transcription: where to connect, how to authenticate, which
//! parameters it takes, and the adapter that turns its segments into Flux-shaped turns.
//!
//! Facts (docs.fireworks.ai, and the reference notes): 16 kHz mono linear16 in 50–400 ms binary
//! frames; the key goes raw in `Authorization` (no `Bearer`); the model is chosen by host
//! (`fireworks-asr-large` on v1, production; `fireworks-asr-v2` on v2, a preview); parameters
//! are `language`, `prompt`, `temperature`, `response_format=verbose_json` and
//! `timestamp_granularities=word,segment`. There is no greeting, no ForceEndTurn and no
//! Configure: the stream ends with an `stt.input.trace` whose answer comes after all earlier
//! audio has been transcribed (see [`adapter`]).

pub mod adapter;
pub mod segments;

use super::{Capabilities, Endpoint, RefusalHints, Secret, check_transport, read_key_file};
use crate::error::FluxError;
use std::path::Path;
use url::Url;

pub const KEY_ENV: &str = "FIREWORKS_API_KEY";
/// The models, as Fireworks names them, and their hosts.
pub const MODEL_V1: &str = "fireworks-asr-large";
pub const MODEL_V2: &str = "fireworks-asr-v2";
const HOST_V1: &str = "audio-streaming.api.fireworks.ai";
const HOST_V2: &str = "audio-streaming-v2.api.fireworks.ai";
/// The streaming path, the same on both hosts.
pub const PATH: &str = "/v1/audio/transcriptions/streaming";
/// The only sample rate Fireworks takes.
pub const SAMPLE_RATE: u32 = 16_000;
/// Audio per binary frame Fireworks accepts, in milliseconds.
pub const FRAME_MS: std::ops::RangeInclusive<u32> = 50..=400;
/// The parameters flux writes; given in `--url` they would be sent twice.
pub const PARAMS: [&str; 5] = [
    "language",
    "prompt",
    "temperature",
    "response_format",
    "timestamp_granularities",
];

/// Language codes Fireworks lists for streaming transcription (ISO 639-1, plus `yue`,
/// `haw`, `zh-hant` and `zh-hans`).
pub const LANGUAGES: &[&str] = &[
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da",
    "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he",
    "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la",
    "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl",
    "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "sn", "so",
    "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "uk", "ur", "uz",
    "vi", "yi", "yo", "yue", "zh", "zh-hant", "zh-hans",
];

pub struct FireworksOptions<'a> {
    /// `--url`: the whole endpoint, used as given (e.g. `flux serve`'s).
    pub url: Option<&'a str>,
    /// `--model`: picks the host when `--url` is not given.
    pub model: Option<&'a str>,
    pub api_key: Option<Secret>,
    pub allow_insecure: bool,
    pub language: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub temperature: Option<f64>,
}

/// The key: `--api-key-file`, else `FIREWORKS_API_KEY`.
pub fn api_key(file: Option<&Path>) -> Result<Option<Secret>, FluxError> {
    if let Some(path) = file {
        return read_key_file(path).map(Some);
    }
    Ok(std::env::var(KEY_ENV)
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .map(Secret::new))
}

/// Checks `--language` and `--temperature` against what Fireworks takes.
pub fn check_params(language: Option<&str>, temperature: Option<f64>) -> Result<(), FluxError> {
    if let Some(lang) = language
        && !LANGUAGES.contains(&lang)
    {
        return Err(FluxError::Usage(format!(
            "invalid --language `{lang}`: Fireworks takes an ISO 639-1 code such as en, de, \
             es, fr, ja, zh (or yue, zh-hant, zh-hans); leave it out to detect the language"
        )));
    }
    if let Some(t) = temperature
        && !(0.0..=1.0).contains(&t)
    {
        return Err(FluxError::Usage(format!(
            "invalid --temperature {t}: use 0 to 1 (0, the default, decodes greedily)"
        )));
    }
    Ok(())
}

/// The host for a model name.
fn host(model: Option<&str>) -> Result<&'static str, FluxError> {
    match model.unwrap_or(MODEL_V1) {
        MODEL_V1 => Ok(HOST_V1),
        MODEL_V2 => Ok(HOST_V2),
        other => Err(FluxError::Usage(format!(
            "invalid --model `{other}` for Fireworks: use {MODEL_V1} (v1, production, the \
             default) or {MODEL_V2} (v2, preview)"
        ))),
    }
}

pub fn endpoint(opts: FireworksOptions<'_>) -> Result<Endpoint, FluxError> {
    check_params(opts.language, opts.temperature)?;
    let mut url = match opts.url {
        Some(text) => {
            let url = super::parse_base_url(text)?;
            let given: Vec<String> = url
                .query_pairs()
                .map(|(k, _)| k.into_owned())
                .filter(|k| PARAMS.contains(&k.as_str()) || k.eq_ignore_ascii_case("authorization"))
                .collect();
            if let Some(k) = given.first() {
                let fix = if k.eq_ignore_ascii_case("authorization") {
                    "the key goes in a header (FIREWORKS_API_KEY or --api-key-file), never in \
                     the URL"
                        .to_string()
                } else {
                    "flux writes it from its flags (--language, --prompt, --temperature)"
                        .to_string()
                };
                return Err(FluxError::Usage(format!(
                    "--url has `{k}=` in its query; drop it: {fix}"
                )));
            }
            url
        }
        None => Url::parse(&format!("wss://{}{PATH}", host(opts.model)?))
            .map_err(|e| FluxError::Usage(format!("bad Fireworks URL: {e}")))?,
    };
    if opts.url.is_some() {
        // The model is the host's: with --url it can still be checked, not used.
        host(opts.model)?;
    }
    check_transport(&url, opts.allow_insecure)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_format", "verbose_json");
        // One pair, as the docs write it for URLs built by hand.
        q.append_pair("timestamp_granularities", "word,segment");
        if let Some(lang) = opts.language {
            q.append_pair("language", lang);
        }
        if let Some(prompt) = opts.prompt {
            q.append_pair("prompt", prompt);
        }
        if let Some(t) = opts.temperature {
            q.append_pair("temperature", &t.to_string());
        }
    }
    let key = opts.api_key.ok_or_else(|| {
        FluxError::Auth(format!(
            "no Fireworks API key: set {KEY_ENV} or pass --api-key-file FILE"
        ))
    })?;
    Ok(Endpoint {
        provider: "fireworks",
        url,
        // The raw key, no scheme: what Fireworks documents and its own examples send.
        headers: vec![("authorization".into(), key)],
        capabilities: Capabilities {
            force_end_turn: false,
            configure: false,
            sends_connected: false,
            close_finalizes: true,
            clear_state: true,
        },
        tls: None,
        hints: RefusalHints {
            unauthorized: format!(
                "Check the Fireworks API key ({KEY_ENV} or --api-key-file); it is sent raw in \
                 the Authorization header."
            ),
            payment: "Check the Fireworks account's billing.".into(),
            forbidden: format!(
                "The key may not have access to streaming transcription ({KEY_ENV} or \
                 --api-key-file)."
            ),
        },
        adapter: Some(super::Adapter(adapter::wrap)),
        transport: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(url: Option<&'a str>, model: Option<&'a str>) -> FireworksOptions<'a> {
        FireworksOptions {
            url,
            model,
            api_key: Some(Secret::new("fw-canary")),
            allow_insecure: false,
            language: Some("de"),
            prompt: Some("Um, uh"),
            temperature: Some(0.2),
        }
    }

    #[test]
    fn the_model_picks_the_host_and_the_key_goes_raw_in_a_header() {
        let v1 = endpoint(opts(None, None)).unwrap();
        assert_eq!(v1.url.host_str(), Some(HOST_V1));
        assert_eq!(v1.url.path(), PATH);
        let q: Vec<(String, String)> = v1.url.query_pairs().into_owned().collect();
        for (k, v) in [
            ("response_format", "verbose_json"),
            ("timestamp_granularities", "word,segment"),
            ("language", "de"),
            ("prompt", "Um, uh"),
            ("temperature", "0.2"),
        ] {
            assert!(q.contains(&(k.into(), v.into())), "{k}: {q:?}");
        }
        assert!(!v1.url.as_str().contains("canary"));
        assert_eq!(v1.headers[0].0, "authorization");
        assert_eq!(v1.headers[0].1.expose(), "fw-canary");
        let v2 = endpoint(opts(None, Some(MODEL_V2))).unwrap();
        assert_eq!(v2.url.host_str(), Some(HOST_V2));
        let bad = endpoint(opts(None, Some("whisper-v3"))).unwrap_err();
        assert_eq!(bad.exit_code(), 2);
        assert!(bad.to_string().contains(MODEL_V2), "{bad}");
    }

    #[test]
    fn url_is_used_as_given_without_our_parameters_or_the_key() {
        let e = endpoint(opts(
            Some("ws://127.0.0.1:8787/v1/audio/transcriptions/streaming?x=1"),
            None,
        ))
        .unwrap();
        assert_eq!(e.url.path(), PATH);
        assert!(
            e.url
                .as_str()
                .starts_with("ws://127.0.0.1:8787/v1/audio/transcriptions/streaming?x=1&")
        );
        for bad in [
            "ws://127.0.0.1:1/?language=en",
            "ws://127.0.0.1:1/?Authorization=k",
        ] {
            let err = endpoint(opts(Some(bad), None)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let mut no_key = opts(None, None);
        no_key.api_key = None;
        let err = endpoint(no_key).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains(KEY_ENV));
    }

    #[test]
    fn language_and_temperature_are_checked() {
        assert!(check_params(Some("en"), Some(0.0)).is_ok());
        assert!(check_params(Some("zh-hant"), None).is_ok());
        assert_eq!(
            check_params(Some("english"), None).unwrap_err().exit_code(),
            2
        );
        assert_eq!(check_params(None, Some(1.5)).unwrap_err().exit_code(), 2);
    }
}
