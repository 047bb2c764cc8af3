//! Endpoint dialects: where to connect, how to authenticate, what the server can do.
//!
//! Provider differences live here and nowhere else; the session asks for an [`Endpoint`] and
//! its [`Capabilities`] and never checks which provider it talks to.

pub mod cloudflare;
pub mod deepgram;
pub mod fireworks;
pub mod local;
pub mod sagemaker;
mod secret;

pub use secret::Secret;

use crate::error::FluxError;
use std::net::IpAddr;
use url::Url;

/// What a server supports beyond audio in, turns out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `ForceEndTurn` ends the open turn; without it the stream ends by sending silence.
    pub force_end_turn: bool,
    /// `Configure` changes settings mid-stream; without it flux refuses to send one.
    pub configure: bool,
    /// The server greets with `Connected` before it wants audio. Where that is not documented
    /// (Cloudflare), flux streams as soon as the WebSocket is open.
    pub sends_connected: bool,
    /// The request that closes the stream makes the server finish everything it owes first
    /// (Fireworks' trace): the session sends it at once, with no ForceEndTurn and no silence.
    pub close_finalizes: bool,
    /// The server clears its recognition context on request (`Control::ClearState`).
    pub clear_state: bool,
}

/// A provider whose messages are not Flux's wraps the stream's transport in its adapter,
/// which speaks the provider's dialect on the wire and Flux to the session.
#[derive(Clone, Copy)]
pub struct Adapter(
    pub  fn(
        std::sync::Arc<dyn crate::transport::Transport>,
    ) -> std::sync::Arc<dyn crate::transport::Transport>,
);

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Adapter")
    }
}

/// A transport an endpoint brings itself (`--provider local`'s in-process pipe), where its
/// URL does not say how to reach it.
#[derive(Clone)]
pub struct Carrier(pub std::sync::Arc<dyn crate::transport::Transport>);

impl std::fmt::Debug for Carrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Carrier")
    }
}

/// Everything needed to open one connection.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Provider name for people and JSONL (`deepgram`, `cloudflare`).
    pub provider: &'static str,
    /// The full URL, query included. Holds no secrets (credentials travel in headers).
    pub url: Url,
    /// Extra request headers (lowercase names); values are secrets and never printed.
    pub headers: Vec<(String, Secret)>,
    pub capabilities: Capabilities,
    /// TLS setup for `wss://` with private CAs (`--ca-cert`); `None` trusts the built-in
    /// webpki roots only.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// What to tell people when the server refuses the credentials: only the provider knows
    /// which credential went where.
    pub hints: RefusalHints,
    /// The provider's adapter, where its messages are not Flux's.
    pub adapter: Option<Adapter>,
    /// The endpoint's own transport; `None`: the one its URL calls for.
    pub transport: Option<Carrier>,
}

/// A provider's advice for refused connections, by status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefusalHints {
    /// 401: which credential was sent (or why none was), and how to fix it.
    pub unauthorized: String,
    /// 402.
    pub payment: String,
    /// 403.
    pub forbidden: String,
}

impl Endpoint {
    /// The provider's advice for a refused handshake with this status, where it has any.
    pub fn refusal_hint(&self, status: u16) -> Option<&str> {
        let hint = match status {
            401 => &self.hints.unauthorized,
            402 => &self.hints.payment,
            403 => &self.hints.forbidden,
            _ => return None,
        };
        (!hint.is_empty()).then_some(hint.as_str())
    }

    /// The transport that reaches this endpoint: its own, or the one its URL calls for.
    pub fn transport(&self) -> std::sync::Arc<dyn crate::transport::Transport> {
        match &self.transport {
            Some(carrier) => carrier.0.clone(),
            None => crate::transport::for_url(&self.url),
        }
    }

    /// The request that opens one connection to this endpoint.
    pub fn request(&self, timeout: std::time::Duration) -> crate::transport::Request {
        crate::transport::Request {
            url: self.url.clone(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.expose().to_string()))
                .collect(),
            tls: self.tls.clone(),
            timeout,
        }
    }
}

/// Refuses plain `ws://` to anything but loopback unless the user allowed it: the audio and
/// the credentials would cross the network unencrypted.
pub fn check_transport(url: &Url, allow_insecure: bool) -> Result<(), FluxError> {
    match url.scheme() {
        "wss" => Ok(()),
        "ws" if allow_insecure || is_loopback(url) => Ok(()),
        "ws" => Err(FluxError::Usage(format!(
            "refusing plain ws:// to {}: audio and credentials would travel unencrypted; use \
             wss://, or pass --allow-insecure if this network is trusted",
            url.host_str().unwrap_or("?")
        ))),
        other => Err(FluxError::Usage(format!(
            "unsupported URL scheme `{other}:`; use wss:// (or ws:// for a local server)"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses a user-given base URL; `http(s)://` is taken to mean `ws(s)://`.
pub fn parse_base_url(text: &str) -> Result<Url, FluxError> {
    let mut url = Url::parse(text.trim()).map_err(|e| {
        FluxError::Usage(format!(
            "--url `{text}` is not a valid URL ({e}); expected e.g. wss://api.eu.deepgram.com or ws://127.0.0.1:8787"
        ))
    })?;
    let scheme = match url.scheme() {
        "http" => Some("ws"),
        "https" => Some("wss"),
        _ => None,
    };
    if let Some(s) = scheme {
        // Changing between these "special" schemes always succeeds.
        let _ = url.set_scheme(s);
    }
    if url.host().is_none() {
        return Err(FluxError::Usage(format!("--url `{text}` has no host")));
    }
    check_url_query(&url)?;
    Ok(url)
}

/// Refuses Flux stream parameters written into `--url`'s query (`?model=…`): flux appends
/// them itself from its flags, the server refuses one given twice, and flux must know the
/// values it streams with (the session's end-of-stream timing uses them). Any other parameter
/// (a proxy's, a Worker's, AI Gateway's `model=@cf/…`) is kept and sent as written.
pub fn check_url_query(url: &Url) -> Result<(), FluxError> {
    let mut keys: Vec<String> = Vec::new();
    for (key, value) in url.query_pairs() {
        let flux_sets = crate::protocol::params::NAMES.contains(&key.as_ref());
        if flux_sets
            && !(key == "model" && value.starts_with("@cf/"))
            && !keys.contains(&key.to_string())
        {
            keys.push(key.into_owned());
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let flags: Vec<String> = keys
        .iter()
        .filter(|k| *k != "encoding")
        .map(|k| format!("--{}", k.replace('_', "-")))
        .collect();
    let mut fix = Vec::new();
    if !flags.is_empty() {
        fix.push(format!("use {} instead", flags.join(", ")));
    }
    if keys.iter().any(|k| k == "encoding") {
        fix.push("drop `encoding=` (flux always sends linear16)".to_string());
    }
    Err(FluxError::Usage(format!(
        "--url has {} in its query, but flux writes the stream parameters itself, from its \
         flags (a server refuses one given twice, and flux must know the values it streams \
         with): {}. Other query parameters, such as a proxy's own, are sent as written",
        keys.iter()
            .map(|k| format!("`{k}=`"))
            .collect::<Vec<_>>()
            .join(", "),
        fix.join("; ")
    )))
}

/// The URL for people and JSONL: credentials someone wrote into `--url` (`user:pass@`, or a
/// query parameter named like a key or token) are replaced by `***`.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() {
        let _ = shown.set_username("***");
    }
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    if shown.query().is_some() {
        let pairs: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(k, v)| {
                // By whole name segment: `api_key` and `token` are secrets, `keyterm` is not.
                let lower = k.to_ascii_lowercase();
                let secret = lower.split(['_', '-', '.']).any(|part| {
                    matches!(
                        part,
                        "key"
                            | "apikey"
                            | "token"
                            | "secret"
                            | "password"
                            | "auth"
                            | "authorization"
                            | "signature"
                            | "sig"
                    )
                });
                let v = if secret {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// Parses `--header 'Name: Value'`. The value is kept as a secret (it usually holds one).
///
/// A malformed header is not quoted back: without its colon, or with a stray space in the
/// name, the text the user typed may be mostly secret (`--header 'Authorization Token KEY'`).
pub fn parse_header(spec: &str) -> Result<(String, Secret), FluxError> {
    let usage = || {
        FluxError::Usage(
            "a --header is not `Name: Value` with a valid header name, e.g. --header \
             'X-Api-Key: …' (its text is not shown: it may hold a secret)"
                .into(),
        )
    };
    let (name, value) = spec.split_once(':').ok_or_else(usage)?;
    let name = name.trim().to_ascii_lowercase();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(usage());
    }
    Ok((name, Secret::new(value.trim())))
}

/// Adds user headers after the provider's own; a user header of the same name replaces the
/// provider's (e.g. a proxy that wants a different Authorization).
pub fn with_user_headers(endpoint: &mut Endpoint, user: Vec<(String, Secret)>) {
    for (name, value) in user {
        endpoint.headers.retain(|(n, _)| *n != name);
        endpoint.headers.push((name, value));
    }
}

/// Reads a credential from a file (first line, trimmed). Warns when others can read it.
/// A file named by a flag that cannot be used is a usage error (exit 2), like every other
/// file flag (docs/exit-codes.md).
pub fn read_key_file(path: &std::path::Path) -> Result<Secret, FluxError> {
    read_secret_file(path, "API key")
}

/// Reads a credential of kind `what` ("API key", "access token") from a file: its first
/// line, trimmed. Warns when others can read it.
pub fn read_secret_file(path: &std::path::Path, what: &str) -> Result<Secret, FluxError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FluxError::Usage(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    let key = text.lines().next().unwrap_or("").trim();
    if key.is_empty() {
        return Err(FluxError::Usage(format!(
            "the {what} file {} is empty; put the {what} on its first line",
            path.display()
        )));
    }
    warn_if_shared(path);
    Ok(Secret::new(key))
}

#[cfg(unix)]
fn warn_if_shared(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "flux: warning: {} can be read by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &std::path::Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ws_only_to_loopback_unless_allowed() {
        for ok in [
            "ws://127.0.0.1:1/",
            "ws://localhost/",
            "ws://[::1]:9/",
            "wss://example.com/",
        ] {
            check_transport(&Url::parse(ok).unwrap(), false).unwrap();
        }
        let remote = Url::parse("ws://10.0.0.5/").unwrap();
        assert!(check_transport(&remote, false).is_err());
        check_transport(&remote, true).unwrap();
        assert!(check_transport(&Url::parse("ftp://x/").unwrap(), true).is_err());
    }

    #[test]
    fn headers_parse_and_hide_their_values() {
        let (n, v) = parse_header("X-Api-Key:  s3cret ").unwrap();
        assert_eq!((n.as_str(), v.expose()), ("x-api-key", "s3cret"));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
        for typo in [
            "Authorization Token sk-canary",
            "sk-canary",
            "Bad Name sk-canary: x",
        ] {
            let err = parse_header(typo).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(!err.to_string().contains("canary"), "{err}");
        }
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let u = Url::parse("wss://me:pw@stt.example/x?token=abc&model=m&api_key=k").unwrap();
        assert_eq!(
            redact_url(&u),
            "wss://***:***@stt.example/x?token=***&model=m&api_key=***"
        );
        let plain = Url::parse("ws://127.0.0.1:1/v2/listen?model=m&keyterm=a").unwrap();
        assert_eq!(redact_url(&plain), plain.as_str());
    }

    #[test]
    fn http_schemes_become_ws() {
        assert_eq!(
            parse_base_url("https://api.eu.deepgram.com")
                .unwrap()
                .scheme(),
            "wss"
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:8787").unwrap().scheme(),
            "ws"
        );
        assert!(parse_base_url("not a url").is_err());
    }

    #[test]
    fn stream_parameters_in_the_url_are_refused_naming_their_flags() {
        let err = parse_base_url(
            "ws://127.0.0.1:8787/v2/listen?model=flux-general-en&route=a&eot_threshold=0.8&model=x",
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let m = err.to_string();
        for needle in [
            "`model=`, `eot_threshold=`",
            "use --model, --eot-threshold instead",
        ] {
            assert!(m.contains(needle), "{needle}: {m}");
        }
        assert!(!m.contains("route"), "{m}");
        let enc = parse_base_url("wss://x.example/?encoding=mulaw").unwrap_err();
        assert!(enc.to_string().contains("drop `encoding=`"), "{enc}");
        assert!(!enc.to_string().contains("use "), "{enc}");
        // A proxy's own parameters and AI Gateway's model selector are kept.
        for ok in [
            "wss://proxy.example/stt?route=eu&session=7",
            "wss://gateway.ai.cloudflare.com/v1/a/g/workers-ai?model=@cf/deepgram/flux",
        ] {
            assert_eq!(parse_base_url(ok).unwrap().as_str(), ok);
        }
    }
}
