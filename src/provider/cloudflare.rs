//! Cloudflare Workers AI `@cf/deepgram/flux`: the REST WebSocket endpoint, AI Gateway, and a
//! user's own Worker that proxies the model.
//!
//! The dialect differs from Deepgram's: linear16 only, no model choice, a subset of the
//! parameters (see [`crate::protocol::Dialect::Cloudflare`]), TurnInfo messages possibly without
//! `type`, and neither `ForceEndTurn` nor `Configure` documented — so flux ends streams with
//! silence and does not send Configure. `Connected` is not documented either, so flux starts
//! streaming as soon as the WebSocket is open.

use super::{Capabilities, Endpoint, RefusalHints, Secret, check_transport, parse_base_url};
use crate::error::FluxError;
use crate::protocol::StreamParams;
use std::path::Path;
use url::Url;

pub const TOKEN_ENV: &str = "CLOUDFLARE_API_TOKEN";
pub const ACCOUNT_ENV: &str = "CLOUDFLARE_ACCOUNT_ID";
const API_HOST: &str = "api.cloudflare.com";
const GATEWAY_HOST: &str = "gateway.ai.cloudflare.com";
const MODEL: &str = "@cf/deepgram/flux";

pub struct CloudflareOptions<'a> {
    /// `--url`: the whole endpoint (REST, AI Gateway, or a Worker), used as given.
    pub url: Option<&'a str>,
    /// `--gateway`: route through this AI Gateway.
    pub gateway: Option<&'a str>,
    pub account_id: Option<String>,
    pub api_token: Option<Secret>,
    pub allow_insecure: bool,
}

/// Where the stream goes, decided by the URL's host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `api.cloudflare.com/client/v4/accounts/ID/ai/run/@cf/deepgram/flux`: `Authorization: Bearer`.
    Rest,
    /// `gateway.ai.cloudflare.com/v1/ID/GATEWAY/workers-ai?model=...`: `cf-aig-authorization`.
    Gateway,
    /// Anything else: a user's Worker (or `flux serve`). Cloudflare credentials are never sent
    /// there; the user adds what their Worker wants with `--header`.
    Worker,
}

fn route(url: &Url) -> Route {
    match url.host_str() {
        Some(h) if h.eq_ignore_ascii_case(API_HOST) => Route::Rest,
        Some(h) if h.eq_ignore_ascii_case(GATEWAY_HOST) => Route::Gateway,
        _ => Route::Worker,
    }
}

pub fn endpoint(opts: CloudflareOptions<'_>, params: &StreamParams) -> Result<Endpoint, FluxError> {
    let mut url = match (opts.url, opts.gateway) {
        (Some(_), Some(_)) => {
            return Err(FluxError::Usage(
                "--url and --gateway both name the endpoint; give one".into(),
            ));
        }
        (Some(u), None) => parse_base_url(u)?,
        (None, gateway) => {
            let account = opts.account_id.as_deref().ok_or_else(|| {
                FluxError::Auth(format!(
                    "no Cloudflare account id: set {ACCOUNT_ENV} (or pass --account-id), or give \
                     your Worker's address with --url"
                ))
            })?;
            let account = segment(account, "account id")?;
            let text = match gateway {
                Some(g) => format!(
                    "wss://{GATEWAY_HOST}/v1/{account}/{}/workers-ai",
                    segment(g, "--gateway")?
                ),
                None => format!("wss://{API_HOST}/client/v4/accounts/{account}/ai/run/{MODEL}"),
            };
            Url::parse(&text).map_err(|e| FluxError::Usage(format!("bad Cloudflare URL: {e}")))?
        }
    };
    check_transport(&url, opts.allow_insecure)?;
    let route = route(&url);
    if route == Route::Gateway && !url.query_pairs().any(|(k, _)| k == "model") {
        url.query_pairs_mut().append_pair("model", MODEL);
    }
    url.query_pairs_mut().extend_pairs(params.to_query_pairs());

    let header = match route {
        Route::Rest => Some("authorization"),
        Route::Gateway => Some("cf-aig-authorization"),
        Route::Worker => None,
    };
    let mut headers = Vec::new();
    if let Some(name) = header {
        let token = opts.api_token.ok_or_else(|| {
            FluxError::Auth(format!(
                "no Cloudflare API token: set {TOKEN_ENV} or pass --api-key-file FILE (a token \
                 with Workers AI permission)"
            ))
        })?;
        headers.push((
            name.to_string(),
            Secret::new(format!("Bearer {}", token.expose())),
        ));
    }
    let hints = hints(route, &url);
    Ok(Endpoint {
        provider: "cloudflare",
        url,
        headers,
        capabilities: Capabilities {
            force_end_turn: false,
            configure: false,
            sends_connected: false,
            close_finalizes: false,
            clear_state: false,
        },
        tls: None,
        hints,
        adapter: None,
        transport: None,
    })
}

/// Advice for refusals: which credential went to this host, and how to change it.
fn hints(route: Route, url: &Url) -> RefusalHints {
    match route {
        Route::Rest | Route::Gateway => RefusalHints {
            unauthorized: format!(
                "Check the Cloudflare API token ({TOKEN_ENV} or --api-key-file); it needs \
                 Workers AI permission."
            ),
            // Cloudflare documents no 402 for Workers AI: no advice rather than a guess.
            payment: String::new(),
            forbidden: format!(
                "The token may not have Workers AI permission for this account (check \
                 {ACCOUNT_ENV} and the token's permissions)."
            ),
        },
        Route::Worker => {
            let host = url.host_str().unwrap_or("this host");
            let advice = format!(
                "The Cloudflare API token is not sent to {host} (it is not Cloudflare's API); \
                 pass what your Worker expects with --header, e.g. --header 'Authorization: \
                 Bearer …'."
            );
            RefusalHints {
                unauthorized: advice.clone(),
                payment: String::new(),
                forbidden: advice,
            }
        }
    }
}

/// An id that goes into a URL path: letters, digits, `-` and `_` only, so it cannot change the
/// path or the host.
fn segment<'a>(value: &'a str, what: &str) -> Result<&'a str, FluxError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value)
    } else {
        Err(FluxError::Usage(format!(
            "{what} `{value}` may contain only letters, digits, `-` and `_`"
        )))
    }
}

/// The API token from `--api-key-file`, else the environment.
pub fn api_token(file: Option<&Path>) -> Result<Option<Secret>, FluxError> {
    if let Some(path) = file {
        return super::read_key_file(path).map(Some);
    }
    Ok(env_value(TOKEN_ENV).map(Secret::new))
}

pub fn account_id(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string).or_else(|| env_value(ACCOUNT_ENV))
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encoding;

    fn params() -> StreamParams {
        StreamParams {
            encoding: Some(Encoding::Linear16),
            sample_rate: Some(16000),
            keyterms: vec!["a".into(), "b".into()],
            ..Default::default()
        }
    }

    fn opts<'a>(url: Option<&'a str>, gateway: Option<&'a str>) -> CloudflareOptions<'a> {
        CloudflareOptions {
            url,
            gateway,
            account_id: Some("acc123".into()),
            api_token: Some(Secret::new("tok")),
            allow_insecure: false,
        }
    }

    #[test]
    fn rest_endpoint_with_bearer_token() {
        let e = endpoint(opts(None, None), &params()).unwrap();
        assert_eq!(
            e.url.as_str(),
            "wss://api.cloudflare.com/client/v4/accounts/acc123/ai/run/@cf/deepgram/flux?encoding=linear16&sample_rate=16000&keyterm=a&keyterm=b"
        );
        assert_eq!(e.headers[0].0, "authorization");
        assert_eq!(e.headers[0].1.expose(), "Bearer tok");
        assert!(!e.capabilities.force_end_turn && !e.capabilities.sends_connected);
    }

    #[test]
    fn gateway_endpoint_with_its_own_header_and_model() {
        let e = endpoint(opts(None, Some("my-gw")), &params()).unwrap();
        assert_eq!(
            e.url.as_str(),
            "wss://gateway.ai.cloudflare.com/v1/acc123/my-gw/workers-ai?model=%40cf%2Fdeepgram%2Fflux&encoding=linear16&sample_rate=16000&keyterm=a&keyterm=b"
        );
        assert_eq!(e.headers[0].0, "cf-aig-authorization");
        assert_eq!(e.headers[0].1.expose(), "Bearer tok");
    }

    #[test]
    fn a_worker_url_is_used_as_given_and_gets_no_cloudflare_token() {
        let e = endpoint(
            opts(Some("wss://stt.example.workers.dev/flux?x=1"), None),
            &params(),
        )
        .unwrap();
        assert_eq!(
            e.url.as_str(),
            "wss://stt.example.workers.dev/flux?x=1&encoding=linear16&sample_rate=16000&keyterm=a&keyterm=b"
        );
        assert!(
            e.headers.is_empty(),
            "the Cloudflare token must not go to a third party"
        );
        let hint = e.refusal_hint(401).unwrap();
        assert!(
            hint.contains("not sent to stt.example.workers.dev") && hint.contains("--header"),
            "{hint}"
        );
        assert!(!hint.contains("DEEPGRAM"), "{hint}");
        let rest = endpoint(opts(None, None), &params()).unwrap();
        assert!(rest.refusal_hint(401).unwrap().contains(TOKEN_ENV));
    }

    #[test]
    fn missing_credentials_and_hostile_ids_are_refused() {
        let mut o = opts(None, None);
        o.api_token = None;
        assert_eq!(endpoint(o, &params()).unwrap_err().exit_code(), 3);
        let mut o = opts(None, None);
        o.account_id = None;
        assert_eq!(endpoint(o, &params()).unwrap_err().exit_code(), 3);
        let mut o = opts(None, None);
        o.account_id = Some("../evil".into());
        assert_eq!(endpoint(o, &params()).unwrap_err().exit_code(), 2);
        assert_eq!(
            endpoint(opts(Some("wss://x/"), Some("g")), &params())
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
