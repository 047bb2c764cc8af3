//! The WebSocket upgrade: routing, authentication and stream parameters, refused the way
//! the real services refuse them (status, JSON body, `dg-error`, `dg-request-id`).
//!
//! Routes:
//! - `/v2/listen`: Deepgram. Auth `Authorization: Token KEY`, or the browser form
//!   `Sec-WebSocket-Protocol: token, KEY` (the server then selects `token`); a temporary token
//!   from `/v1/auth/grant` (see `grant`) as `Authorization: Bearer JWT` or `bearer, JWT`.
//! - `/client/v4/accounts/{account_id}/ai/run/@cf/deepgram/flux`: Cloudflare Workers AI REST.
//! - `/`: the same Cloudflare dialect, as a user's Worker would expose it.
//! - `/v1/audio/transcriptions/streaming` (and `/v2/…`): Fireworks, decided in `serve::fireworks`.
//!
//! Cloudflare routes take `Authorization: Bearer KEY` and answer errors in Cloudflare's
//! envelope. Checks run in this order: route (404), `reject` fault, auth (401), parameters
//! (400, or 403 for a model), encodings flux serve cannot decode (400).

use crate::protocol::params::INSUFFICIENT_PERMISSIONS;
use crate::protocol::{Dialect, Encoding, ParamError, StreamParams};
use crate::serve::grant::TokenState;
use crate::serve::log::{mask_header, mask_query};
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

/// Cloudflare's REST path: `/client/v4/accounts/{id}` + this.
const CLOUDFLARE_MODEL_PATH: &str = "/ai/run/@cf/deepgram/flux";

/// What the server needs to know about a request, whether tungstenite parsed it or we did.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lowercase names, in the order received.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn from_request(req: &Request) -> RequestHead {
        RequestHead {
            method: req.method().as_str().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }

    /// The first value of a header (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Fields for the log's `handshake` line, secrets masked.
    pub fn log_fields(&self) -> Map<String, Value> {
        let mut headers = Map::new();
        // Names starting with `:` are our own notes (the HTTP version), not headers.
        for (name, value) in self.headers.iter().filter(|(n, _)| !n.starts_with(':')) {
            let masked = mask_header(name, value);
            // A repeated header becomes one comma-joined value, as HTTP allows.
            match headers.get_mut(name) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&masked);
                }
                _ => {
                    headers.insert(name.clone(), Value::String(masked));
                }
            }
        }
        let mut m = Map::new();
        m.insert("method".into(), json!(self.method));
        m.insert("path".into(), json!(self.path));
        m.insert("query".into(), json!(mask_query(&self.query)));
        m.insert("headers".into(), Value::Object(headers));
        m
    }
}

/// Which dialect a path speaks, or `None` for a path that does not exist.
pub fn route(path: &str) -> Option<Dialect> {
    if path == crate::protocol::LISTEN_PATH {
        return Some(Dialect::Deepgram);
    }
    if path == "/" {
        return Some(Dialect::Cloudflare);
    }
    let account = path
        .strip_prefix("/client/v4/accounts/")?
        .strip_suffix(CLOUDFLARE_MODEL_PATH)?;
    (!account.is_empty() && !account.contains('/')).then_some(Dialect::Cloudflare)
}

/// An upgrade the server will complete.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub dialect: Dialect,
    pub params: StreamParams,
    /// The subprotocol to select (`token` for browser-style auth), if the client offered any.
    pub subprotocol: Option<String>,
    /// A Fireworks route: the connection speaks Fireworks (see `serve::fireworks`).
    pub fireworks: Option<crate::serve::fireworks::FireworksConn>,
}

/// An upgrade the server refuses.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    /// The `dg-error` header: what was wrong, in one line.
    pub dg_error: String,
}

impl Refusal {
    /// A refusal in the body format of `dialect` (`None`: no route, Deepgram's format).
    fn new(dialect: Option<Dialect>, status: u16, code: &str, message: &str, id: &str) -> Self {
        let body = match dialect {
            Some(Dialect::Cloudflare) => {
                json!({"errors": [{"message": message}], "success": false, "result": {}})
            }
            _ => json!({"err_code": code, "err_msg": message, "request_id": id}),
        };
        Refusal {
            status,
            body: body.to_string(),
            content_type: "application/json",
            dg_error: message.to_string(),
        }
    }
}

/// Decides an upgrade request, knowing no temporary tokens.
pub fn evaluate(
    head: &RequestHead,
    api_key: Option<&str>,
    reject: Option<&(u16, Option<String>)>,
    request_id: &str,
) -> Result<Accepted, Refusal> {
    evaluate_with_tokens(head, api_key, &|_| TokenState::Unknown, reject, request_id)
}

/// Decides an upgrade request; `tokens` says whether a Bearer token (Deepgram routes) is one
/// this server granted and still valid now.
pub fn evaluate_with_tokens(
    head: &RequestHead,
    api_key: Option<&str>,
    tokens: &dyn Fn(&str) -> TokenState,
    reject: Option<&(u16, Option<String>)>,
    request_id: &str,
) -> Result<Accepted, Refusal> {
    if let Some(string_ids) = crate::serve::fireworks::route(&head.path) {
        return crate::serve::fireworks::evaluate(head, string_ids, api_key, reject);
    }
    let Some(dialect) = route(&head.path) else {
        return Err(not_found(head, request_id));
    };
    if let Some((status, body)) = reject {
        return Err(injected_refusal(
            dialect,
            *status,
            body.as_deref(),
            request_id,
        ));
    }
    let offered: Vec<&str> = head
        .header("sec-websocket-protocol")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    // Deepgram's reference mentions a `token` query parameter for temporary tokens; it is
    // credentials, not a stream parameter, so it is taken out before the query is checked.
    let (query, query_token) = split_token(&head.query);
    if let Some(key) = api_key {
        let by_query = dialect == Dialect::Deepgram
            && query_token
                .as_deref()
                .is_some_and(|t| t == key || tokens(t) == TokenState::Valid);
        if !by_query {
            check_auth(head, dialect, &offered, key, tokens).map_err(|why| {
                Refusal::new(Some(dialect), 401, "INVALID_AUTH", &why, request_id)
            })?;
        }
    }
    let params = StreamParams::from_query(&query, dialect)
        .map_err(|e| param_refusal(dialect, &e, request_id))?;
    if let Some(enc @ (Encoding::Opus | Encoding::OggOpus)) = params.encoding {
        let message = format!(
            "encoding={enc}: flux serve does not decode Opus; send linear16, linear32, mulaw, \
             alaw or WAV"
        );
        return Err(Refusal::new(
            Some(dialect),
            400,
            "UNSUPPORTED_ENCODING",
            &message,
            request_id,
        ));
    }
    // A browser offering `token, KEY` (or `bearer, JWT`) must get `token` (`bearer`) back, or it
    // drops the connection.
    let subprotocol = offered.first().map(|s| s.to_string());
    Ok(Accepted {
        dialect,
        params,
        subprotocol,
        fireworks: None,
    })
}

/// The query without its `token` parameters, and the token's value.
fn split_token(query: &str) -> (String, Option<String>) {
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let mut parsed = url::form_urlencoded::parse(pair.as_bytes());
            match parsed.next() {
                Some((k, v)) if k == "token" => {
                    token = Some(v.into_owned());
                    false
                }
                _ => true,
            }
        })
        .collect();
    (rest.join("&"), token)
}

fn check_auth(
    head: &RequestHead,
    dialect: Dialect,
    offered: &[&str],
    key: &str,
    tokens: &dyn Fn(&str) -> TokenState,
) -> Result<(), String> {
    let header = head.header("authorization").map(str::trim);
    let (want, hint) = match dialect {
        Dialect::Deepgram => (
            "token",
            "send `Authorization: Token KEY` or `Bearer TEMPORARY_TOKEN` (or the subprotocols \
             `token`, KEY or `bearer`, TOKEN)",
        ),
        Dialect::Cloudflare => ("bearer", "send `Authorization: Bearer TOKEN`"),
    };
    if let Some(value) = header {
        let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
        if dialect == Dialect::Deepgram && scheme.eq_ignore_ascii_case("bearer") {
            return check_token(credential.trim(), key, tokens);
        }
        if !scheme.eq_ignore_ascii_case(want) {
            return Err(format!(
                "Invalid credentials: the Authorization scheme `{scheme}` is not accepted here; \
                 {hint}"
            ));
        }
        if credential.trim() != key {
            return Err("Invalid credentials.".to_string());
        }
        return Ok(());
    }
    if dialect == Dialect::Deepgram
        && let [scheme, credential, ..] = offered
    {
        if scheme.eq_ignore_ascii_case("token") && *credential == key {
            return Ok(());
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return check_token(credential, key, tokens);
        }
        if scheme.eq_ignore_ascii_case("token") {
            return Err("Invalid credentials.".to_string());
        }
    }
    Err(format!("Missing credentials; {hint}"))
}

/// A Bearer credential on a Deepgram route: only a token this server granted, before it expires
/// (a key sent as Bearer is the wrong scheme, as on the service).
fn check_token(
    credential: &str,
    key: &str,
    tokens: &dyn Fn(&str) -> TokenState,
) -> Result<(), String> {
    match tokens(credential) {
        TokenState::Valid => Ok(()),
        TokenState::Expired => Err(
            "Invalid credentials: the temporary token has expired; ask /v1/auth/grant for a new \
             one (a token only has to be valid when the connection opens)"
                .to_string(),
        ),
        TokenState::Unknown if credential == key => Err(
            "Invalid credentials: `Bearer` takes a temporary token from /v1/auth/grant; send an \
             API key as `Authorization: Token KEY`"
                .to_string(),
        ),
        TokenState::Unknown => Err("Invalid credentials.".to_string()),
    }
}

fn param_refusal(dialect: Dialect, e: &ParamError, request_id: &str) -> Refusal {
    if e.code == INSUFFICIENT_PERMISSIONS {
        // Hosted Deepgram's own words first, so a client's handling of them is exercised; then
        // what the name actually is.
        let message = format!(
            "Project does not have access to the requested model: {}",
            e.message
        );
        return Refusal::new(Some(dialect), e.status, e.code, &message, request_id);
    }
    Refusal::new(Some(dialect), e.status, e.code, &e.message, request_id)
}

fn not_found(head: &RequestHead, request_id: &str) -> Refusal {
    let message = format!(
        "No such endpoint `{}`; flux serve answers on /v2/listen (Deepgram), \
         /client/v4/accounts/ACCOUNT_ID/ai/run/@cf/deepgram/flux and / (Cloudflare), \
         /v1/audio/transcriptions/streaming (Fireworks)",
        head.path
    );
    Refusal::new(None, 404, "NOT_FOUND", &message, request_id)
}

/// A request to an existing path that is not a WebSocket upgrade.
pub fn not_websocket(head: &RequestHead, request_id: &str) -> Refusal {
    if let Some(refusal) = crate::serve::fireworks::not_websocket(head) {
        return refusal;
    }
    let Some(dialect) = route(&head.path) else {
        return not_found(head, request_id);
    };
    if !head.method.eq_ignore_ascii_case("GET") {
        let message = format!(
            "Method {} is not allowed; Flux is WebSocket only (GET with Upgrade)",
            head.method
        );
        return Refusal::new(
            Some(dialect),
            405,
            "METHOD_NOT_ALLOWED",
            &message,
            request_id,
        );
    }
    Refusal::new(
        Some(dialect),
        426,
        "UPGRADE_REQUIRED",
        "Flux is WebSocket only: connect with a WebSocket client (Upgrade: websocket)",
        request_id,
    )
}

/// The refusal of a `reject` fault: the given body, or the service's usual one for the status.
fn injected_refusal(
    dialect: Dialect,
    status: u16,
    body: Option<&str>,
    request_id: &str,
) -> Refusal {
    if let Some(body) = body {
        let is_json = serde_json::from_str::<Value>(body).is_ok();
        return Refusal {
            status,
            body: body.to_string(),
            content_type: if is_json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            },
            dg_error: format!("flux serve: injected refusal with status {status}"),
        };
    }
    let (code, message) = match status {
        401 => ("INVALID_AUTH", "Invalid credentials."),
        402 => (
            "ASR_PAYMENT_REQUIRED",
            "Project does not have enough credits for an ASR request and does not have an \
             overage agreement.",
        ),
        403 => (
            "INSUFFICIENT_PERMISSIONS",
            "Project does not have access to the requested model.",
        ),
        429 => (
            "TOO_MANY_REQUESTS",
            "Too many requests. Please try again later",
        ),
        400..=499 => (
            "BAD_REQUEST",
            "The request was refused (flux serve injected fault).",
        ),
        _ => (
            "INTERNAL_SERVER_ERROR",
            "The server had an error (flux serve injected fault).",
        ),
    };
    Refusal::new(Some(dialect), status, code, message, request_id)
}

/// Header values must be visible ASCII; anything else becomes `?`.
fn header_value(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("?"))
}

/// The refusal as tungstenite's error response.
pub fn error_response(refusal: &Refusal, request_id: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(refusal.body.clone()));
    *resp.status_mut() = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static(refusal.content_type),
    );
    h.insert("content-length", HeaderValue::from(refusal.body.len()));
    h.insert(crate::protocol::REQUEST_ID_HEADER, header_value(request_id));
    h.insert(
        crate::protocol::ERROR_HEADER,
        header_value(&refusal.dg_error),
    );
    h.insert("connection", HeaderValue::from_static("close"));
    resp
}

/// The refusal as raw HTTP/1.1 bytes, for requests that never reach tungstenite.
pub fn raw_response(refusal: &Refusal, request_id: &str) -> Vec<u8> {
    let resp = error_response(refusal, request_id);
    let reason = resp.status().canonical_reason().unwrap_or("Error");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", resp.status().as_u16());
    for (name, value) in resp.headers() {
        out.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap_or("?")));
    }
    out.push_str("\r\n");
    out.push_str(&refusal.body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(path_and_query: &str, headers: &[(&str, &str)]) -> RequestHead {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        RequestHead {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const Q: &str = "?model=flux-general-en&encoding=linear16&sample_rate=16000";
    const CF: &str = "/client/v4/accounts/abc123/ai/run/@cf/deepgram/flux";

    #[test]
    fn routes() {
        assert_eq!(route("/v2/listen"), Some(Dialect::Deepgram));
        assert_eq!(route("/"), Some(Dialect::Cloudflare));
        assert_eq!(route(CF), Some(Dialect::Cloudflare));
        assert_eq!(route("/client/v4/accounts//ai/run/@cf/deepgram/flux"), None);
        assert_eq!(route("/v1/listen"), None);
        assert_eq!(route("/v2/listen/"), None);
    }

    #[test]
    fn auth_per_route() {
        let ok = |p: &str, h: &[(&str, &str)]| evaluate(&head(p, h), Some("k"), None, "id");
        let dg = format!("/v2/listen{Q}");
        assert!(ok(&dg, &[("authorization", "Token k")]).is_ok());
        assert!(ok(&dg, &[("authorization", "token k")]).is_ok());
        let browser = ok(&dg, &[("sec-websocket-protocol", "token, k")]).unwrap();
        assert_eq!(browser.subprotocol.as_deref(), Some("token"));
        for bad in [
            vec![],
            vec![("authorization", "Token nope")],
            vec![("authorization", "Bearer k")],
            vec![("sec-websocket-protocol", "token, nope")],
        ] {
            let r = ok(&dg, &bad).unwrap_err();
            assert_eq!(r.status, 401, "{bad:?}");
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["err_code"], "INVALID_AUTH");
            assert_eq!(body["request_id"], "id");
        }
        let cf = "?encoding=linear16&sample_rate=16000";
        assert!(ok(&format!("{CF}{cf}"), &[("authorization", "Bearer k")]).is_ok());
        assert!(ok(&format!("/{cf}"), &[("authorization", "Bearer k")]).is_ok());
        let r = ok(&format!("{CF}{cf}"), &[("authorization", "Token k")]).unwrap_err();
        assert_eq!(r.status, 401);
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["success"], false);
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("Bearer")
        );
        // Without --api-key anything goes.
        assert!(evaluate(&head(&dg, &[]), None, None, "id").is_ok());
    }

    #[test]
    fn granted_tokens_open_deepgram_routes_as_bearer() {
        let tokens = |t: &str| match t {
            "fresh" => TokenState::Valid,
            "old" => TokenState::Expired,
            _ => TokenState::Unknown,
        };
        let ok = |p: &str, h: &[(&str, &str)]| {
            evaluate_with_tokens(&head(p, h), Some("k"), &tokens, None, "id")
        };
        let dg = format!("/v2/listen{Q}");
        assert!(ok(&dg, &[("authorization", "Bearer fresh")]).is_ok());
        let browser = ok(&dg, &[("sec-websocket-protocol", "bearer, fresh")]).unwrap();
        assert_eq!(browser.subprotocol.as_deref(), Some("bearer"));
        assert!(ok(&format!("{dg}&token=fresh"), &[]).is_ok());
        for (bad, says) in [
            (("authorization", "Bearer old"), "expired"),
            (("sec-websocket-protocol", "bearer, old"), "expired"),
            (
                ("authorization", "Bearer k"),
                "`Bearer` takes a temporary token",
            ),
            (("authorization", "Bearer made-up"), "Invalid credentials."),
        ] {
            let r = ok(&dg, &[bad]).unwrap_err();
            assert_eq!(r.status, 401, "{bad:?}");
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["err_code"], "INVALID_AUTH");
            assert!(r.dg_error.contains(says), "{bad:?}: {}", r.dg_error);
        }
        assert_eq!(ok(&format!("{dg}&token=old"), &[]).unwrap_err().status, 401);
        // Cloudflare's Bearer is its API token, never a Deepgram grant.
        let cf = format!("{CF}?encoding=linear16&sample_rate=16000");
        assert_eq!(
            ok(&cf, &[("authorization", "Bearer fresh")])
                .unwrap_err()
                .status,
            401
        );
    }

    #[test]
    fn opus_is_refused_and_params_are_checked() {
        let r = evaluate(
            &head(
                "/v2/listen?model=flux-general-en&encoding=opus&sample_rate=48000",
                &[],
            ),
            None,
            None,
            "id",
        )
        .unwrap_err();
        assert_eq!(r.status, 400);
        assert!(r.dg_error.contains("does not decode Opus"));
        let r = evaluate(&head("/v2/listen?model=nova-3", &[]), None, None, "id").unwrap_err();
        assert_eq!(r.status, 403);
    }
}
