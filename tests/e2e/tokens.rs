//! Temporary tokens end to end (issue 19): `flux serve --api-key KEY` grants them on
//! `POST /v1/auth/grant` and takes them as `Bearer` on `/v2/listen` until they expire; the
//! client sends `DEEPGRAM_ACCESS_TOKEN` / `--access-token-file` as `Bearer`, says which
//! credential it uses when a key is set too, and never prints one. The canary scan follows
//! security.rs: every output and the serve log are searched for `canary` in any case, and for
//! the granted tokens themselves.

use crate::common;
use crate::serve_support;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SERVE_KEY: &str = "servekey-CANARY-7777";
const WRONG_KEY: &str = "dgkey-CANARY-8888";
const BOGUS_TOKEN: &str = "token-CANARY-9999";

/// `POST /v1/auth/grant` over a real socket: the status, the JSON body and the request id.
fn grant(url: &str, auth: Option<&str>, method: &str, body: &str) -> (u16, Value, String) {
    let addr = url.trim_start_matches("ws://");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        tcp,
        "{method} /v1/auth/grant HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("dg-request-id: "))
        .unwrap_or("")
        .to_string();
    (status, serde_json::from_str(body).expect("a JSON body"), id)
}

/// A token for `ttl` seconds from the server's key.
fn token(serve_url: &str, ttl: u64) -> String {
    let body = format!(r#"{{"ttl_seconds": {ttl}}}"#);
    let (status, answer, _) = grant(
        serve_url,
        Some(&format!("Token {SERVE_KEY}")),
        "POST",
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["expires_in"], ttl);
    let token = answer["access_token"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped: {token}");
    token
}

fn file_run(url: &str) -> Command {
    let mut cmd = flux();
    cmd.arg("file")
        .arg(fixture("beckett.wav"))
        .args(["--url", url, "--fast", "--jsonl"]);
    cmd
}

fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Fails if a canary, or any of `secrets`, appears in the output or the files.
fn assert_clean(label: &str, out: &Output, files: &[&Path], secrets: &[&str]) {
    let mut everything = format!("{}\n{}", stdout(out), stderr(out));
    for f in files {
        everything.push_str(&std::fs::read_to_string(f).unwrap_or_default());
    }
    let lower = everything.to_ascii_lowercase();
    assert!(
        !lower.contains("canary"),
        "{label}: a secret leaked:\n{everything}"
    );
    for s in secrets {
        assert!(
            !everything.contains(s),
            "{label}: a token leaked:\n{everything}"
        );
    }
}

#[test]
fn a_granted_token_streams_as_bearer_from_the_environment_or_a_file() {
    let serve = Serve::start(&["--api-key", SERVE_KEY]);
    let token = token(&serve.url, 600);
    let dir = tempfile::tempdir().unwrap();

    let mut cmd = file_run(&serve.url);
    cmd.env("DEEPGRAM_ACCESS_TOKEN", &token);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        jsonl(&out)
            .iter()
            .any(|e| e["type"] == "TurnInfo" && e["event"] == "EndOfTurn")
    );
    // Only one credential was set: nothing to say about the choice.
    assert!(!stderr(&out).contains("not used"), "{}", stderr(&out));

    let mut cmd = file_run(&serve.url);
    cmd.arg("--access-token-file")
        .arg(secret_file(dir.path(), "token", &token));
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let upgrades: Vec<Value> = serve
        .log_kind("handshake")
        .into_iter()
        .filter(|h| h["path"] == "/v2/listen")
        .collect();
    assert_eq!(upgrades.len(), 2);
    for h in &upgrades {
        assert_eq!(h["status"], 101);
        assert_eq!(h["headers"]["authorization"], "Bearer ***");
    }
    assert_clean("granted", &out, &[&serve.log], &[&token]);
}

#[test]
fn the_grant_route_wants_the_key_a_post_and_a_ttl_in_range() {
    let serve = Serve::start(&["--api-key", SERVE_KEY]);
    let key = format!("Token {SERVE_KEY}");
    let (status, body, id) = grant(&serve.url, Some(&key), "POST", "");
    assert_eq!((status, body["expires_in"].as_u64()), (200, Some(30)));
    assert!(!id.is_empty(), "the service always sends dg-request-id");
    let token = body["access_token"].as_str().unwrap().to_string();
    for (auth, body, method, want, says) in [
        (
            Some(format!("Token {WRONG_KEY}")),
            "",
            "POST",
            401,
            "Invalid credentials",
        ),
        (None, "", "POST", 401, "Invalid credentials"),
        (
            Some(format!("Bearer {token}")),
            "",
            "POST",
            401,
            "cannot grant tokens",
        ),
        (
            Some(key.clone()),
            r#"{"ttl_seconds": 0}"#,
            "POST",
            400,
            "3600",
        ),
        (
            Some(key.clone()),
            r#"{"ttl_seconds": 3601}"#,
            "POST",
            400,
            "3600",
        ),
        (Some(key.clone()), "ttl=30", "POST", 400, "not JSON"),
        (Some(key.clone()), "", "GET", 405, "POST"),
    ] {
        let (status, answer, id) = grant(&serve.url, auth.as_deref(), method, body);
        assert_eq!(status, want, "{auth:?} {body} {method}: {answer}");
        assert!(
            answer["err_msg"].as_str().unwrap().contains(says),
            "{answer}"
        );
        assert_eq!(answer["request_id"].as_str(), Some(id.as_str()));
    }
    let log = std::fs::read_to_string(&serve.log).unwrap();
    assert!(!log.to_ascii_lowercase().contains("canary"), "{log}");
}

#[test]
fn with_a_key_and_a_token_set_stderr_says_which_is_used() {
    let serve = Serve::start(&["--api-key", SERVE_KEY]);
    let token = token(&serve.url, 600);
    let dir = tempfile::tempdir().unwrap();

    // Both in the environment: the token (the wrong key is never sent).
    let mut cmd = file_run(&serve.url);
    cmd.env("DEEPGRAM_ACCESS_TOKEN", &token)
        .env("DEEPGRAM_API_KEY", WRONG_KEY);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("using the temporary token from DEEPGRAM_ACCESS_TOKEN")
            && err.contains("not used: the API key from DEEPGRAM_API_KEY"),
        "{err}"
    );
    assert_clean("env both", &out, &[&serve.log], &[&token]);

    // A key file on the command line beats a token in the environment (flags first).
    let key_file = secret_file(dir.path(), "key", SERVE_KEY);
    let mut cmd = file_run(&serve.url);
    cmd.arg("--api-key-file")
        .arg(&key_file)
        .env("DEEPGRAM_ACCESS_TOKEN", BOGUS_TOKEN);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("using the API key from --api-key-file")
            && err.contains("not used: the temporary token from DEEPGRAM_ACCESS_TOKEN"),
        "{err}"
    );
    assert_clean("flag key, env token", &out, &[&serve.log], &[&token]);
    assert!(
        serve
            .log_kind("handshake")
            .iter()
            .filter(|h| h["path"] == "/v2/listen")
            .all(|h| h["status"] == 101)
    );
}

#[test]
fn unknown_and_expired_tokens_get_the_services_401() {
    let serve = Serve::start(&["--api-key", SERVE_KEY]);

    let mut cmd = file_run(&serve.url);
    cmd.env("DEEPGRAM_ACCESS_TOKEN", BOGUS_TOKEN);
    let out = run(cmd, None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("DEEPGRAM_ACCESS_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert_clean("unknown token", &out, &[&serve.log], &[]);

    // The shortest lifetime the service grants; wait it out (a second) and use it.
    let granted = Instant::now();
    let expired = token(&serve.url, 1);
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(granted.elapsed()));
    let mut cmd = file_run(&serve.url);
    cmd.env("DEEPGRAM_ACCESS_TOKEN", &expired);
    let out = run(cmd, None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert_clean("expired token", &out, &[&serve.log], &[&expired]);
    let refused: Vec<Value> = serve
        .log_kind("handshake")
        .into_iter()
        .filter(|h| h["path"] == "/v2/listen")
        .collect();
    assert!(refused.iter().all(|h| h["status"] == 401), "{refused:?}");
}

/// As with the service, a token is checked at the upgrade only: a stream opened with it goes
/// on after it expires, and the browser form (`bearer`, TOKEN) works the same.
#[tokio::test]
async fn a_token_only_has_to_be_valid_when_the_connection_opens() {
    use serve_support::{Incoming, connect, dg_query, fixture_at, try_connect};
    let serve = Serve::start(&["--api-key", SERVE_KEY]);
    let url = serve.url.clone();
    let granted = Instant::now();
    let short = tokio::task::spawn_blocking(move || token(&url, 1))
        .await
        .unwrap();
    let bearer = format!("Bearer {short}");
    let mut client = connect(&serve.url, &dg_query(""), &[("authorization", &bearer)]).await;
    assert_eq!(client.until("Connected").await["type"], "Connected");
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(granted.elapsed())).await;
    client
        .audio_frames(&fixture_at("beckett.wav", 16000), 2560)
        .await;
    let (messages, end) = client.close_stream().await;
    assert!(
        messages.iter().any(|m| m["event"] == "EndOfTurn"),
        "the open stream outlived its token: {messages:?}"
    );
    assert!(matches!(end, Incoming::Close(_)), "{end:?}");
    // A new connection with the expired token is refused.
    let refused = try_connect(&serve.url, &dg_query(""), &[("authorization", &bearer)])
        .await
        .err()
        .expect("an expired token is refused");
    assert_eq!(refused.status(), 401);
    let body: Value = serde_json::from_slice(refused.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["err_code"], "INVALID_AUTH");

    let url = serve.url.clone();
    let fresh = tokio::task::spawn_blocking(move || token(&url, 600))
        .await
        .unwrap();
    let browser = format!("bearer, {fresh}");
    let client = connect(
        &serve.url,
        &dg_query(""),
        &[("sec-websocket-protocol", &browser)],
    )
    .await;
    assert_eq!(
        serve_support::header(&client.response, "sec-websocket-protocol"),
        "bearer"
    );
    let log = std::fs::read_to_string(&serve.log).unwrap();
    assert!(log.contains("bearer, ***"), "{log}");
    assert!(!log.contains(&fresh) && !log.contains(&short), "{log}");
}
