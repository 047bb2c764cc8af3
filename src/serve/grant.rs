//! Temporary tokens, as Deepgram mints them: `POST /v1/auth/grant` (authenticated with the
//! API key, body `{"ttl_seconds": n}`, 1 to 3600, default 30) answers
//! `{"access_token": JWT, "expires_in": n}`; `/v2/listen` then accepts the token as
//! `Authorization: Bearer JWT` (or the browser subprotocols `bearer, JWT`) until it expires.
//! As with the service, a token only has to be valid at the upgrade: an open stream outlives it.
//!
//! The tokens are shaped like the service's JWTs (three base64url parts, `iat` and `exp` in the
//! payload) so clients that peek at the expiry work, but flux serve checks them against its own
//! table, not a signature: a token is known only to the server that granted it.

use crate::serve::handshake::RequestHead;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The route that mints tokens.
pub const GRANT_PATH: &str = "/v1/auth/grant";
/// The lifetimes the service grants, in seconds, and its default.
pub const TTL_MIN: u64 = 1;
pub const TTL_MAX: u64 = 3600;
pub const TTL_DEFAULT: u64 = 30;
/// Largest grant request accepted, head and body together.
const MAX_REQUEST: usize = 64 * 1024;
/// A client has this long to send its whole grant request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Expired tokens are remembered this long (to answer "expired" rather than "unknown"), then
/// forgotten so a long-running server's table stays small.
const REMEMBER_EXPIRED: Duration = Duration::from_secs(3600);

/// What the server knows of a Bearer credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Valid,
    Expired,
    Unknown,
}

/// The tokens this server granted, with their expiry. Times are passed in, so tests can move
/// the clock instead of sleeping.
#[derive(Debug, Default)]
pub struct Grants {
    tokens: Mutex<HashMap<String, Instant>>,
}

impl Grants {
    /// Mints a token valid for `ttl` seconds from `now`.
    pub fn mint(&self, ttl: u64, now: Instant) -> String {
        let token = jwt(ttl);
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, expiry| now.saturating_duration_since(*expiry) < REMEMBER_EXPIRED);
        tokens.insert(token.clone(), now + Duration::from_secs(ttl));
        token
    }

    /// Whether `token` may open a connection at `now`.
    pub fn check(&self, token: &str, now: Instant) -> TokenState {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match tokens.get(token) {
            Some(expiry) if now < *expiry => TokenState::Valid,
            Some(_) => TokenState::Expired,
            None => TokenState::Unknown,
        }
    }
}

/// Whether a request is for the grant route (any method: a wrong one is answered 405 there).
pub fn is_grant(head: &RequestHead) -> bool {
    head.path == GRANT_PATH
}

/// An answer to a grant request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Decides a grant request: `api_key` is the server's key (`None`: any caller may mint),
/// `body` the request body.
pub fn decide(
    head: &RequestHead,
    body: &[u8],
    api_key: Option<&str>,
    grants: &Grants,
    now: Instant,
    request_id: &str,
) -> Answer {
    let refuse = |status: u16, code: &str, message: &str| Answer {
        status,
        body: json!({"err_code": code, "err_msg": message, "request_id": request_id}),
    };
    if !head.method.eq_ignore_ascii_case("POST") {
        return refuse(
            405,
            "METHOD_NOT_ALLOWED",
            &format!(
                "Method {} is not allowed; POST {GRANT_PATH} with `Authorization: Token KEY` \
                 and a body such as {{\"ttl_seconds\": 30}}",
                head.method
            ),
        );
    }
    if let Some(key) = api_key {
        let header = head.header("authorization").map(str::trim).unwrap_or("");
        let (scheme, credential) = header.split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("token") || credential.trim() != key {
            let why = if scheme.eq_ignore_ascii_case("bearer") {
                "Invalid credentials: a temporary token cannot grant tokens; send the API key \
                 as `Authorization: Token KEY`"
            } else {
                "Invalid credentials."
            };
            return refuse(401, "INVALID_AUTH", why);
        }
    }
    match ttl(body) {
        Ok(ttl) => Answer {
            status: 200,
            body: json!({"access_token": grants.mint(ttl, now), "expires_in": ttl}),
        },
        Err(message) => refuse(400, "INVALID_REQUEST_BODY", &message),
    }
}

/// The lifetime asked for: `ttl_seconds` in a JSON body, or the default for an empty body.
fn ttl(body: &[u8]) -> Result<u64, String> {
    let range = format!("a whole number of seconds from {TTL_MIN} to {TTL_MAX}");
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TTL_DEFAULT);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("The body is not JSON ({e}); send {{\"ttl_seconds\": N}} with N {range}")
    })?;
    let Some(object) = value.as_object() else {
        return Err(format!(
            "The body must be a JSON object such as {{\"ttl_seconds\": 30}}, with {range}"
        ));
    };
    match object.get("ttl_seconds") {
        None | Some(Value::Null) => Ok(TTL_DEFAULT),
        Some(v) => match v.as_u64() {
            Some(n) if (TTL_MIN..=TTL_MAX).contains(&n) => Ok(n),
            _ => Err(format!("ttl_seconds is {v}; it must be {range}")),
        },
    }
}

/// Reads a grant request from the socket (its head was only peeked at), answers it, and
/// returns the status for the log.
pub async fn serve(
    tcp: &mut TcpStream,
    head: &RequestHead,
    api_key: Option<&str>,
    grants: &Grants,
    request_id: &str,
) -> u16 {
    let answer = match tokio::time::timeout(READ_TIMEOUT, read_body(tcp, head)).await {
        Ok(Ok(body)) => decide(head, &body, api_key, grants, Instant::now(), request_id),
        Ok(Err(message)) => Answer {
            status: 400,
            body: json!({"err_code": "BAD_REQUEST", "err_msg": message, "request_id": request_id}),
        },
        // A client that never finishes its request gets no answer, like any stalled upload.
        Err(_) => return 408,
    };
    let _ = tcp.write_all(&response(&answer, request_id)).await;
    let _ = tcp.shutdown().await;
    answer.status
}

/// Consumes the request head and returns its body (`Content-Length` bytes).
async fn read_body(tcp: &mut TcpStream, head: &RequestHead) -> Result<Vec<u8>, String> {
    if head.header("transfer-encoding").is_some() {
        return Err(
            "flux serve reads grant requests with a Content-Length, not chunked; send the body \
             whole"
                .into(),
        );
    }
    let length: usize = match head.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("Content-Length `{v}` is not a number"))?,
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let start = end + 4;
            if start + length > MAX_REQUEST {
                return Err(format!("the request is over {MAX_REQUEST} bytes"));
            }
            if buf.len() >= start + length {
                return Ok(buf[start..start + length].to_vec());
            }
        } else if buf.len() > MAX_REQUEST {
            return Err(format!("the request head is over {MAX_REQUEST} bytes"));
        }
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the request: {e}"))?;
        if n == 0 {
            return Err("the request ended before its Content-Length was sent".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The answer as HTTP/1.1 bytes, with the request id the service always sends.
fn response(answer: &Answer, request_id: &str) -> Vec<u8> {
    let body = answer.body.to_string();
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let id: String = request_id
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect();
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {}: {id}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        answer.status,
        body.len(),
        crate::protocol::REQUEST_ID_HEADER,
    )
    .into_bytes()
}

/// A JWT-shaped token: header and payload as the service's (`iat`, `exp`), and random bytes where a
/// signature would be, so no two tokens are alike and none can be guessed.
fn jwt(ttl: u64) -> String {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = json!({"alg": "HS256", "typ": "JWT"}).to_string();
    let payload = json!({
        "iss": "flux serve",
        "iat": iat,
        "exp": iat + ttl,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
    .to_string();
    // Two v4 UUIDs: 244 bits from the operating system's random source (fastrand's are
    // guessable).
    let signature: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| *u.as_bytes())
        .collect();
    [header.as_bytes(), payload.as_bytes(), &signature]
        .map(base64url)
        .join(".")
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=group.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "POST".into(),
            path: GRANT_PATH.into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), want);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn tokens_are_valid_until_their_ttl_then_expired() {
        let grants = Grants::default();
        let t0 = Instant::now();
        let token = grants.mint(30, t0);
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(grants.check(&token, t0), TokenState::Valid);
        assert_eq!(
            grants.check(&token, t0 + Duration::from_millis(29_999)),
            TokenState::Valid
        );
        assert_eq!(
            grants.check(&token, t0 + Duration::from_secs(30)),
            TokenState::Expired
        );
        assert_eq!(grants.check("made-up", t0), TokenState::Unknown);
        // Long-expired tokens are forgotten when the next one is minted.
        grants.mint(1, t0 + REMEMBER_EXPIRED + Duration::from_secs(31));
        assert_eq!(grants.check(&token, t0), TokenState::Unknown);
    }

    #[test]
    fn grants_need_the_key_and_a_ttl_in_range() {
        let grants = Grants::default();
        let now = Instant::now();
        let key = [("authorization", "Token k")];
        let ok = decide(
            &post(&key),
            br#"{"ttl_seconds": 5}"#,
            Some("k"),
            &grants,
            now,
            "id",
        );
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body["expires_in"], 5);
        let token = ok.body["access_token"].as_str().unwrap();
        assert_eq!(grants.check(token, now), TokenState::Valid);
        let default = decide(&post(&key), b"", Some("k"), &grants, now, "id");
        assert_eq!(default.body["expires_in"], TTL_DEFAULT);
        for body in [
            &br#"{"ttl_seconds": 0}"#[..],
            br#"{"ttl_seconds": 3601}"#,
            br#"{"ttl_seconds": 1.5}"#,
            br#"{"ttl_seconds": "30"}"#,
            b"[]",
            b"ttl=30",
        ] {
            let r = decide(&post(&key), body, Some("k"), &grants, now, "id");
            assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
            assert!(r.body["err_msg"].as_str().unwrap().contains("3600"));
        }
        for auth in [
            &[][..],
            &[("authorization", "Token nope")],
            &[("authorization", &*format!("Bearer {token}"))],
        ] {
            let r = decide(&post(auth), b"", Some("k"), &grants, now, "id");
            assert_eq!(
                (r.status, r.body["err_code"].as_str()),
                (401, Some("INVALID_AUTH"))
            );
            assert_eq!(r.body["request_id"], "id");
        }
        let mut get = post(&key);
        get.method = "GET".into();
        assert_eq!(decide(&get, b"", Some("k"), &grants, now, "id").status, 405);
        // Without --api-key anyone may mint, as anyone may stream.
        assert_eq!(
            decide(&post(&[]), b"", None, &grants, now, "id").status,
            200
        );
    }
}
