//! Deepgram's `/v2/listen`: hosted (`wss://api.deepgram.com`), regional hosts, self-hosted
//! deployments, and anything that speaks the same dialect (such as `flux serve`).

use super::{Capabilities, Endpoint, RefusalHints, Secret, check_transport, parse_base_url};
use crate::error::FluxError;
use crate::protocol::{LISTEN_PATH, StreamParams};
use std::path::Path;

pub const DEFAULT_BASE: &str = "wss://api.deepgram.com";
pub const API_KEY_ENV: &str = "DEEPGRAM_API_KEY";
/// A temporary token (a JWT from `POST /v1/auth/grant`), the variable Deepgram's JavaScript SDK
/// reads.
pub const ACCESS_TOKEN_ENV: &str = "DEEPGRAM_ACCESS_TOKEN";

/// What authenticates to Deepgram: an API key (`Authorization: Token KEY`) or a temporary
/// token (`Authorization: Bearer JWT`), which only has to be valid when a connection opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    ApiKey(Secret),
    AccessToken(Secret),
}

impl Credential {
    /// The `Authorization` header value.
    fn header(&self) -> Secret {
        match self {
            Credential::ApiKey(k) => Secret::new(format!("Token {}", k.expose())),
            Credential::AccessToken(t) => Secret::new(format!("Bearer {}", t.expose())),
        }
    }
}

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
    let credential = opts.api_key.clone().map(Credential::ApiKey);
    endpoint_with(opts, credential, params)
}

/// [`endpoint`] authenticated with `credential` (the options' own `api_key` is not used): a
/// temporary token goes as `Authorization: Bearer JWT`.
pub fn endpoint_with(
    opts: DeepgramOptions<'_>,
    credential: Option<Credential>,
    params: &StreamParams,
) -> Result<Endpoint, FluxError> {
    let mut url = parse_base_url(opts.base_url.unwrap_or(DEFAULT_BASE))?;
    check_transport(&url, opts.allow_insecure)?;
    let path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with(LISTEN_PATH) {
        url.set_path(&format!("{path}{LISTEN_PATH}"));
    }
    url.query_pairs_mut().extend_pairs(params.to_query_pairs());

    let mut headers = Vec::new();
    let unauthorized = match &credential {
        Some(Credential::AccessToken(_)) => format!(
            "Check the temporary token ({ACCESS_TOKEN_ENV} or --access-token-file): it is valid \
             for the ttl_seconds it was granted with (30 s by default) and must still be valid \
             when each connection opens, reconnections included; ask /v1/auth/grant for a new \
             one."
        ),
        _ => format!("Check the API key ({API_KEY_ENV} or --api-key-file)."),
    };
    match &credential {
        Some(c) => headers.push(("authorization".to_string(), c.header())),
        // A custom URL may be a local `flux serve` or a proxy that holds the key itself.
        None if opts.base_url.is_some() => {}
        None => {
            return Err(FluxError::Auth(format!(
                "no Deepgram API key: set {API_KEY_ENV} or pass --api-key-file FILE (or a \
                 temporary token: {ACCESS_TOKEN_ENV} or --access-token-file FILE). To try flux \
                 without an account, run `flux serve` and pass --url ws://127.0.0.1:8787"
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
            close_finalizes: false,
            clear_state: false,
        },
        tls: None,
        hints: RefusalHints {
            unauthorized,
            payment: "The project is out of credit.".into(),
            forbidden: "The key's project may not have access to this model (check --model)."
                .into(),
        },
        adapter: None,
        transport: None,
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
    fn a_temporary_token_goes_as_bearer_and_the_hint_names_it() {
        let token = Credential::AccessToken(Secret::new("jwt"));
        let e = endpoint_with(opts(None, Some("k")), Some(token), &params()).unwrap();
        assert_eq!(e.headers.len(), 1);
        assert_eq!(e.headers[0].1.expose(), "Bearer jwt");
        assert!(e.refusal_hint(401).unwrap().contains(ACCESS_TOKEN_ENV));
        let key = endpoint(opts(None, Some("k")), &params()).unwrap();
        assert!(key.refusal_hint(401).unwrap().contains(API_KEY_ENV));
    }

    #[test]
    fn hosted_deepgram_without_a_key_is_an_auth_error() {
        let err = endpoint(opts(None, None), &params()).unwrap_err();
        assert!(matches!(err, FluxError::Auth(ref m) if m.contains("DEEPGRAM_API_KEY")));
    }
}
