//! Opening one connection over the stream's transport, and explaining a refused one: the
//! failure's kind (and exit code) follows the status, the advice comes from the provider.

use crate::error::FluxError;
use crate::protocol::{ERROR_HEADER, REQUEST_ID_HEADER};
use crate::provider::Endpoint;
use crate::transport::{self, OpenError, Pipe, Refusal, Transport};
use serde_json::Value;
use std::time::Duration;

/// Whether a failed connection attempt is worth repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Credentials, parameters, certificates: the same request fails the same way.
    Never,
    /// The server is overloaded or failing (429, 5xx): back off and try again.
    Busy,
    /// The network failed (refused, reset, timed out): try again when reconnecting.
    Network,
}

/// A failed connection attempt: what to tell the user, and whether to try again.
#[derive(Debug)]
pub struct ConnectFailure {
    pub error: FluxError,
    pub retry: Retry,
}

pub struct Connection {
    pub pipe: Pipe,
    /// `dg-request-id` from the handshake's response.
    pub request_id: Option<String>,
}

/// Connects, within `timeout`, and maps every failure to the error kind (and exit code) a
/// user can act on, with the provider's advice, and whether it is worth retrying.
pub async fn connect(
    transport: &dyn Transport,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<Connection, ConnectFailure> {
    let request = endpoint.request(timeout);
    let host = request.host_port();
    match transport::open(transport, request).await {
        Ok(pipe) => {
            let request_id = pipe.header(REQUEST_ID_HEADER).map(|v| sanitize(v, 200));
            Ok(Connection { pipe, request_id })
        }
        Err(e) => Err(explain(e, endpoint, &host, timeout)),
    }
}

fn explain(err: OpenError, endpoint: &Endpoint, host: &str, timeout: Duration) -> ConnectFailure {
    let (error, retry) = match err {
        OpenError::Refused(r) => {
            let retry = if r.status == 429 || r.status >= 500 {
                Retry::Busy
            } else {
                Retry::Never
            };
            (refused(&r, endpoint), retry)
        }
        OpenError::Invalid(m) => (FluxError::Usage(m), Retry::Never),
        // A certificate problem does not fix itself by retrying.
        OpenError::Tls(m) => (FluxError::Connection(m), Retry::Never),
        OpenError::Network(m) => (FluxError::Connection(m), Retry::Network),
        OpenError::Timeout => (
            FluxError::Connection(format!(
                "timed out after {}s connecting to {host}; check the URL and your network",
                timeout.as_secs()
            )),
            Retry::Network,
        ),
    };
    ConnectFailure { error, retry }
}

/// Turns a refused handshake into one message: status, the server's error code and message,
/// the request id, and what to do; the error kind follows the status.
fn refused(r: &Refusal, endpoint: &Endpoint) -> FluxError {
    let request_id = r.header(REQUEST_ID_HEADER).map(|v| sanitize(v, 200));
    let detail = body_detail(&r.body).or_else(|| r.header(ERROR_HEADER).map(|v| sanitize(v, 200)));
    let mut message = format!(
        "the server refused the connection: HTTP {} {}",
        r.status,
        r.reason()
    )
    .trim_end()
    .to_string();
    if let Some(d) = detail {
        message.push_str(&format!(": {d}"));
    }
    if let Some(id) = request_id {
        message.push_str(&format!(" (request id {id})"));
    }
    let with_hint = |message: String| match endpoint.refusal_hint(r.status) {
        Some(hint) => format!("{message}. {hint}"),
        None => message,
    };
    match r.status {
        401..=403 => FluxError::Auth(with_hint(message)),
        400 => FluxError::Usage(format!("{message}. Fix the parameter named above.")),
        429 => FluxError::Connection(format!(
            "{message}. Too many concurrent streams; try again later."
        )),
        404 | 405 => {
            FluxError::Connection(format!("{message}. Is --url pointing at a Flux server?"))
        }
        _ => FluxError::Server(message),
    }
}

/// `CODE: message` from a Deepgram (`err_code`/`err_msg`), Cloudflare (`errors[].message`) or
/// other JSON error body; the body text itself when it is not JSON.
fn body_detail(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let Ok(json) = serde_json::from_str::<Value>(&text) else {
        return Some(sanitize(&text, 300));
    };
    let s = |v: &Value| v.as_str().map(str::to_string);
    let code = json
        .get("err_code")
        .and_then(s)
        .or_else(|| json.get("category").and_then(s));
    let msg = json
        .get("err_msg")
        .and_then(s)
        .or_else(|| json.get("message").and_then(s))
        .or_else(|| json.get("description").and_then(s))
        .or_else(|| {
            json.get("errors")?
                .as_array()?
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .next()
                .map(str::to_string)
        });
    let detail = match (code, msg) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => text.to_string(),
    };
    Some(sanitize(&detail, 300))
}

pub use crate::protocol::sanitize::sanitize_max as sanitize;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::StreamParams;
    use crate::provider::deepgram::{self, DeepgramOptions};

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> Refusal {
        Refusal {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn dg() -> Endpoint {
        deepgram::endpoint(
            DeepgramOptions {
                base_url: Some("ws://127.0.0.1:1"),
                api_key: None,
                allow_insecure: false,
                force_end_turn: true,
            },
            &StreamParams::default(),
        )
        .unwrap()
    }

    #[test]
    fn refusals_map_to_exit_codes_with_code_message_and_request_id() {
        let e = dg();
        let r = response(
            401,
            r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"x"}"#,
            &[("dg-request-id", "req-1")],
        );
        let err = refused(&r, &e);
        assert_eq!(err.exit_code(), 3);
        let m = err.to_string();
        assert!(
            m.contains("401")
                && m.contains("INVALID_AUTH: Invalid credentials.")
                && m.contains("req-1")
                && m.contains("DEEPGRAM_API_KEY"),
            "{m}"
        );
        assert_eq!(refused(&response(402, "", &[]), &e).exit_code(), 3);
        assert_eq!(refused(&response(403, "", &[]), &e).exit_code(), 3);
        assert_eq!(
            refused(&response(400, "", &[("dg-error", "bad eot")]), &e).exit_code(),
            2
        );
        assert!(
            refused(&response(400, "", &[("dg-error", "bad eot")]), &e)
                .to_string()
                .contains("bad eot")
        );
        assert_eq!(refused(&response(429, "", &[]), &e).exit_code(), 4);
        assert_eq!(refused(&response(500, "", &[]), &e).exit_code(), 6);
        let cf = refused(
            &response(
                400,
                r#"{"errors":[{"message":"no model"}],"success":false}"#,
                &[],
            ),
            &e,
        );
        assert!(cf.to_string().contains("no model"));
    }

    #[test]
    fn the_hint_is_the_providers_own() {
        let mut e = dg();
        e.hints = Default::default();
        let m = refused(&response(401, "", &[]), &e).to_string();
        assert!(!m.contains("DEEPGRAM"), "{m}");
        assert!(m.contains("401 Unauthorized"), "{m}");
    }

    #[test]
    fn server_text_is_sanitized() {
        assert_eq!(sanitize("a\x1b[2Jb\n", 100), "ab");
        assert_eq!(sanitize("abcdef", 3), "abc…");
    }
}
