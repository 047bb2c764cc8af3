//! Opening one WebSocket connection, and explaining a refused one.

use crate::error::FluxError;
use crate::protocol::{ERROR_HEADER, REQUEST_ID_HEADER};
use crate::provider::Endpoint;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, tungstenite};

// TLS is part of connecting; declared here so the file sits beside this one.

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest server message accepted. Real messages are a few KiB; the cap keeps a hostile or
/// broken server from growing the client's memory without bound.
const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Socket read size: a few typical messages per read.
const READ_BUFFER_BYTES: usize = 8 * 1024;

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
    pub ws: Ws,
    /// `dg-request-id` from the upgrade response.
    pub request_id: Option<String>,
}

/// Connects, within `timeout`, and maps every failure to the error kind (and exit code) a
/// user can act on.
pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Connection, FluxError> {
    connect_classified(endpoint, timeout)
        .await
        .map_err(|f| f.error)
}

/// [`connect`], saying whether a failure is worth retrying.
pub async fn connect_classified(
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<Connection, ConnectFailure> {
    let never = |error| ConnectFailure {
        error,
        retry: Retry::Never,
    };
    let mut request = endpoint.url.as_str().into_client_request().map_err(|e| {
        never(FluxError::Usage(format!(
            "cannot use URL {}: {e}",
            crate::provider::redact_url(&endpoint.url)
        )))
    })?;
    for (name, value) in &endpoint.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            never(FluxError::Usage(format!(
                "`{name}` is not a valid HTTP header name"
            )))
        })?;
        let value = HeaderValue::from_str(value.expose()).map_err(|_| {
            never(FluxError::Usage(format!(
                "the {name} credential contains characters not allowed in an HTTP header (check \
                 for a stray newline or quote)"
            )))
        })?;
        request.headers_mut().insert(name, value);
    }
    // tungstenite zero-fills its whole read buffer before every read, including the ones
    // that find nothing: at the default 128 KiB that was a visible share of the session's
    // CPU. Flux's messages are a few hundred bytes; longer ones still arrive whole (the
    // buffer grows to the frame's length).
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    // Always flux's own rustls setup (webpki roots plus --ca-cert), never the library's default.
    let tls = match &endpoint.tls {
        Some(tls) => tls.clone(),
        None => super::tls::default_config().map_err(never)?,
    };
    let attempt = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        Some(Connector::Rustls(tls)),
    );
    let host = host_port(endpoint);
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err(ConnectFailure {
            error: FluxError::Connection(format!(
                "timed out after {}s connecting to {host}; check the URL and your network",
                timeout.as_secs()
            )),
            retry: Retry::Network,
        }),
        Ok(Ok((ws, response))) => Ok(Connection {
            ws,
            request_id: header(&response, REQUEST_ID_HEADER),
        }),
        Ok(Err(e)) => Err(explain(e, &host)),
    }
}

fn host_port(endpoint: &Endpoint) -> String {
    let url = &endpoint.url;
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.to_string(),
    }
}

fn header<T>(response: &Response<T>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| sanitize(s, 200))
}

fn explain(err: tungstenite::Error, host: &str) -> ConnectFailure {
    let (error, retry) = match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let retry = if status == 429 || status >= 500 {
                Retry::Busy
            } else {
                Retry::Never
            };
            (refused(&response), retry)
        }
        // rustls reports a failed handshake as an I/O error wrapping its own error. A
        // certificate problem does not fix itself by retrying.
        tungstenite::Error::Io(e) if tls_error(&e).is_some() => {
            (FluxError::Connection(tls_message(&e, host)), Retry::Never)
        }
        tungstenite::Error::Io(e) => (
            FluxError::Connection(format!(
                "cannot connect to {host}: {e}; is the server running and the URL right?"
            )),
            Retry::Network,
        ),
        // A certificate problem does not fix itself by retrying.
        tungstenite::Error::Tls(e) => (
            FluxError::Connection(format!("TLS handshake with {host} failed: {e}")),
            Retry::Never,
        ),
        tungstenite::Error::Url(e) => (
            FluxError::Usage(format!("bad URL for {host}: {e}")),
            Retry::Never,
        ),
        other => (
            FluxError::Connection(format!("WebSocket handshake with {host} failed: {other}")),
            Retry::Network,
        ),
    };
    ConnectFailure { error, retry }
}

/// The rustls error inside an I/O error, if the I/O error came from the TLS handshake.
fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A failed TLS handshake in words, with what to do about it.
fn tls_message(e: &std::io::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let hint = match tls_error(e) {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::UnknownIssuer | C::BadSignature => {
                "the server's certificate is not signed by a trusted CA; for a private CA, pass \
                 --ca-cert FILE (PEM)"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate is not for this host name; check the host in --url"
            }
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => {
                "the server's certificate is outside its validity period; check the server's \
                 certificate and this machine's clock"
            }
            _ => "the server's certificate was rejected",
        },
        Some(rustls::Error::InvalidMessage(_)) => {
            "the server does not speak TLS; for a plain WebSocket server use ws://"
        }
        _ => "check the URL and the server's TLS setup",
    };
    format!("TLS handshake with {host} failed: {e}; {hint}")
}

/// Turns a refused upgrade into one message: status, the server's error code and message,
/// the request id, and what to do; the error kind follows the status.
fn refused(response: &Response<Option<Vec<u8>>>) -> FluxError {
    let status = response.status();
    let request_id = header(response, REQUEST_ID_HEADER);
    let body = response.body().as_deref().unwrap_or(&[]);
    let detail = body_detail(body).or_else(|| header(response, ERROR_HEADER));
    let mut message = format!(
        "the server refused the connection: HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string();
    if let Some(d) = detail {
        message.push_str(&format!(": {d}"));
    }
    if let Some(id) = request_id {
        message.push_str(&format!(" (request id {id})"));
    }
    match status.as_u16() {
        401 => FluxError::Auth(format!(
            "{message}. Check the API key (DEEPGRAM_API_KEY or --api-key-file)."
        )),
        402 => FluxError::Auth(format!("{message}. The project is out of credit.")),
        403 => FluxError::Auth(format!(
            "{message}. The key's project may not have access to this model (check --model)."
        )),
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

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> Response<Option<Vec<u8>>> {
        let mut b = Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Some(body.as_bytes().to_vec())).unwrap()
    }

    #[test]
    fn refusals_map_to_exit_codes_with_code_message_and_request_id() {
        let r = response(
            401,
            r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"x"}"#,
            &[("dg-request-id", "req-1")],
        );
        let e = refused(&r);
        assert_eq!(e.exit_code(), 3);
        let m = e.to_string();
        assert!(
            m.contains("401")
                && m.contains("INVALID_AUTH: Invalid credentials.")
                && m.contains("req-1"),
            "{m}"
        );
        assert_eq!(refused(&response(402, "", &[])).exit_code(), 3);
        assert_eq!(refused(&response(403, "", &[])).exit_code(), 3);
        assert_eq!(
            refused(&response(400, "", &[("dg-error", "bad eot")])).exit_code(),
            2
        );
        assert!(
            refused(&response(400, "", &[("dg-error", "bad eot")]))
                .to_string()
                .contains("bad eot")
        );
        assert_eq!(refused(&response(429, "", &[])).exit_code(), 4);
        assert_eq!(refused(&response(500, "", &[])).exit_code(), 6);
        let cf = refused(&response(
            400,
            r#"{"errors":[{"message":"no model"}],"success":false}"#,
            &[],
        ));
        assert!(cf.to_string().contains("no model"));
    }

    #[test]
    fn server_text_is_sanitized() {
        assert_eq!(sanitize("a\x1b[2Jb\n", 100), "ab");
        assert_eq!(sanitize("abcdef", 3), "abc…");
    }
}
