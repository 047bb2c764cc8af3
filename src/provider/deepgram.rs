//! Deepgram's `/v2/listen`: hosted (`wss://api.deepgram.com`), regional hosts, self-hosted
//! deployments, and anything that speaks the same dialect (such as `flux serve`).

use super::{Capabilities, Endpoint, RefusalHints, Secret, check_transport, parse_base_url};
use crate::error::FluxError;
use crate::protocol::{LISTEN_PATH, StreamParams};
use std::path::Path;

pub const DEFAULT_BASE: &str = "wss://api.deepgram.com";
pub const API_KEY_ENV: &str = "DEEPGRAM_API_KEY";

/// Where and how to reach Deepgram, as the user asked.
pub struct DeepgramOptions<'a> {
    /// `--url`: a base (`scheme://host[:port][/prefix]`); `None` means hosted Deepgram.
    pub base_url: Option<&'a str>,
    pub api_key: Option<Secret>,
    pub allow_insecure: bool,
    /// False for servers without ForceEndTurn (self-hosted Deepgram).
    pub force_end_turn: bool,
}

/// Builds the endpoint: base URL + `/v2/listen` (unless the path already ends with it) +
/// the stream's query, and `Authorization: Token KEY`.
pub fn endpoint(opts: DeepgramOptions<'_>, params: &StreamParams) -> Result<Endpoint, FluxError> {
    let mut url = parse_base_url(opts.base_url.unwrap_or(DEFAULT_BASE))?;
    check_transport(&url, opts.allow_insecure)?;
    let path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with(LISTEN_PATH) {
        url.set_path(&format!("{path}{LISTEN_PATH}"));
    }
    url.query_pairs_mut().extend_pairs(params.to_query_pairs());

    let mut headers = Vec::new();
    match opts.api_key {
        Some(key) => headers.push((
            "authorization".to_string(),
            Secret::new(format!("Token {}", key.expose())),
        )),
        // A custom URL may be a local `flux serve` or a proxy that holds the key itself.
        None if opts.base_url.is_some() => {}
        None => {
            return Err(FluxError::Auth(format!(
                "no Deepgram API key: set {API_KEY_ENV} or pass --api-key-file FILE. To try \
                 flux without an account, run `flux serve` and pass --url ws://127.0.0.1:8787"
            )));
        }
    }
    Ok(Endpoint {
        provider: "deepgram",
        url,
        headers,
        capabilities: Capabilities {
            force_end_turn: opts.force_end_turn,
            configure: true,
            sends_connected: true,
        },
        tls: None,
        hints: RefusalHints {
            unauthorized: format!("Check the API key ({API_KEY_ENV} or --api-key-file)."),
            payment: "The project is out of credit.".into(),
            forbidden: "The key's project may not have access to this model (check --model)."
                .into(),
        },
    })
}

/// The API key from `--api-key-file`, else from the environment, else none.
pub fn api_key(file: Option<&Path>) -> Result<Option<Secret>, FluxError> {
    if let Some(path) = file {
        return super::read_key_file(path).map(Some);
    }
    Ok(std::env::var(API_KEY_ENV)
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .map(Secret::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encoding;

    fn params() -> StreamParams {
        StreamParams {
            model: Some("flux-general-en".into()),
            encoding: Some(Encoding::Linear16),
            sample_rate: Some(16000),
            ..Default::default()
        }
    }

    fn opts(base: Option<&str>, key: Option<&str>) -> DeepgramOptions<'static> {
        DeepgramOptions {
            base_url: base.map(|b| Box::leak(b.to_string().into_boxed_str()) as &str),
            api_key: key.map(Secret::new),
            allow_insecure: false,
            force_end_turn: true,
        }
    }

    #[test]
    fn hosted_url_and_token_auth() {
        let e = endpoint(opts(None, Some("k")), &params()).unwrap();
        assert_eq!(
            e.url.as_str(),
            "wss://api.deepgram.com/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000"
        );
        assert_eq!(e.headers[0].0, "authorization");
        assert_eq!(e.headers[0].1.expose(), "Token k");
    }

    #[test]
    fn base_urls_get_the_listen_path_once() {
        for (base, want) in [
            ("ws://127.0.0.1:8787", "ws://127.0.0.1:8787/v2/listen?"),
            ("ws://127.0.0.1:8787/", "ws://127.0.0.1:8787/v2/listen?"),
            (
                "wss://dg.internal.example/stt",
                "wss://dg.internal.example/stt/v2/listen?",
            ),
            (
                "wss://api.eu.deepgram.com/v2/listen",
                "wss://api.eu.deepgram.com/v2/listen?",
            ),
        ] {
            let e = endpoint(opts(Some(base), None), &params()).unwrap();
            assert!(e.url.as_str().starts_with(want), "{base} -> {}", e.url);
        }
    }

    #[test]
    fn hosted_deepgram_without_a_key_is_an_auth_error() {
        let err = endpoint(opts(None, None), &params()).unwrap_err();
        assert!(matches!(err, FluxError::Auth(ref m) if m.contains("DEEPGRAM_API_KEY")));
    }
}
