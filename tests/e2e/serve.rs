//! `flux serve` over real loopback sockets: the handshake, control messages, faults, the log
//! and many sessions at once.

use crate::serve_support;

use flux::error::FluxError;
use flux::serve::ServeOptions;
use serde_json::{Value, json};
use serve_support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "sekrit-key-123";

fn body_json(resp: &tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>) -> Value {
    serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).expect("JSON body")
}

fn assert_uuid_v4(id: &str) {
    let parsed = uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("not a UUID: {id:?}"));
    assert_eq!(parsed.get_version_num(), 4, "{id}");
}

/// Asserts a refusal: status, the dg headers, and returns the JSON body.
async fn refused(url: &str, path: &str, headers: &[(&str, &str)], status: u16) -> Value {
    let resp = match try_connect(url, path, headers).await {
        Ok(_) => panic!("{path} was accepted, expected {status}"),
        Err(resp) => resp,
    };
    assert_eq!(resp.status().as_u16(), status, "{path}");
    let id = header(&resp, "dg-request-id");
    assert_uuid_v4(&id);
    assert!(!header(&resp, "dg-error").is_empty(), "{path}: no dg-error");
    let body = body_json(&resp);
    if body.get("err_code").is_some() {
        assert_eq!(body["request_id"], id.as_str(), "{body}");
    }
    body
}

// ---------------------------------------------------------------------------------------
// Handshake

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_connects_and_request_ids_match() {
    let server = serve_default().await;
    let url = server.url();
    let cf_query = "?encoding=linear16&sample_rate=16000";
    for path in [
        dg_query(""),
        format!("{CF}{cf_query}"),
        format!("/{cf_query}"),
    ] {
        let mut c = connect(&url, &path, &[]).await;
        let id = c.request_id();
        assert_uuid_v4(&id);
        let connected = c.json().await;
        assert_eq!(
            connected,
            json!({"type": "Connected", "request_id": id, "sequence_id": 0})
        );
        c.audio(&utterances(16000, &[(0.6, 0.6)])).await;
        let (rest, _) = c.close_stream().await;
        assert!(rest.iter().all(|m| m["request_id"] == id.as_str()));
        assert!(rest.iter().any(|m| m["event"] == "EndOfTurn"), "{path}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_with_json() {
    let server = serve_default().await;
    for path in [
        "/v1/listen?model=flux-general-en",
        "/v2/listen/x",
        "/client/v4/accounts/a/ai/run/@cf/deepgram/nova-3",
    ] {
        let body = refused(&server.url(), path, &[], 404).await;
        assert_eq!(body["err_code"], "NOT_FOUND", "{body}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_every_route() {
    let server = serve(ServeOptions {
        api_key: Some(flux::provider::Secret::new(KEY)),
        ..Default::default()
    })
    .await;
    let url = server.url();
    let dg = dg_query("");
    let token = format!("Token {KEY}");
    let bearer = format!("Bearer {KEY}");
    let browser = format!("token, {KEY}");

    // Deepgram: Token, or the browser subprotocol form (the server selects `token`).
    connect(&url, &dg, &[("authorization", &token)]).await;
    let c = connect(&url, &dg, &[("sec-websocket-protocol", &browser)]).await;
    assert_eq!(header(&c.response, "sec-websocket-protocol"), "token");
    for headers in [
        vec![],
        vec![("authorization", "Token wrong")],
        vec![("authorization", bearer.as_str())],
        vec![("sec-websocket-protocol", "token, wrong")],
    ] {
        let body = refused(&url, &dg, &headers, 401).await;
        assert_eq!(body["err_code"], "INVALID_AUTH", "{headers:?}");
    }

    // Cloudflare (REST path and Worker-style root): Bearer, Cloudflare's error envelope.
    for path in [
        format!("{CF}?encoding=linear16&sample_rate=16000"),
        "/?encoding=linear16&sample_rate=16000".to_string(),
    ] {
        connect(&url, &path, &[("authorization", &bearer)]).await;
        for headers in [
            vec![],
            vec![("authorization", token.as_str())],
            vec![("authorization", "Bearer no")],
        ] {
            let body = refused(&url, &path, &headers, 401).await;
            assert_eq!(body["success"], false, "{body}");
            assert!(body["errors"][0]["message"].is_string(), "{body}");
            assert_eq!(body["result"], json!({}));
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_refused_like_deepgram() {
    let server = serve_default().await;
    let url = server.url();
    let cases: &[(&str, u16, &str)] = &[
        ("&language=en", 400, "language"),
        ("&smart_format=true", 400, "smart_format"),
        ("&foo=bar", 400, "foo"),
        ("&eot_threshold=0.4", 400, "eot_threshold"),
        ("&eot_timeout_ms=100", 400, "eot_timeout_ms"),
        (
            "&eot_threshold=0.6&eager_eot_threshold=0.7",
            400,
            "eager_eot_threshold",
        ),
        ("&language_hint=es", 400, "language_hint"),
    ];
    for (extra, status, word) in cases {
        let resp = try_connect(&url, &dg_query(extra), &[])
            .await
            .err()
            .unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{extra}");
        let body = body_json(&resp);
        assert_eq!(
            body["err_code"], "INVALID_QUERY_PARAMETER",
            "{extra}: {body}"
        );
        assert_eq!(body["request_id"], header(&resp, "dg-request-id").as_str());
        assert!(
            header(&resp, "dg-error").contains(word),
            "{extra}: {}",
            header(&resp, "dg-error")
        );
    }
    let body = refused(
        &url,
        &format!("{DG}?model=flux-general-en&encoding=linear16"),
        &[],
        400,
    )
    .await;
    assert!(
        body["err_msg"].as_str().unwrap().contains("sample_rate"),
        "{body}"
    );
    let body = refused(
        &url,
        &format!("{DG}?model=nova-3&encoding=linear16&sample_rate=16000"),
        &[],
        403,
    )
    .await;
    assert_eq!(body["err_code"], "INSUFFICIENT_PERMISSIONS");
    // Deepgram's words, then what the name is.
    let msg = body["err_msg"].as_str().unwrap();
    assert!(
        msg.starts_with("Project does not have access to the requested model")
            && msg.contains("`nova-3` is a Deepgram Nova"),
        "{body}"
    );
    for enc in ["opus", "ogg-opus"] {
        let body = refused(
            &url,
            &format!("{DG}?model=flux-general-en&encoding={enc}&sample_rate=48000"),
            &[],
            400,
        )
        .await;
        assert!(
            body["err_msg"]
                .as_str()
                .unwrap()
                .contains("does not decode Opus"),
            "{body}"
        );
    }
    // Cloudflare: its subset only, its envelope.
    for extra in ["&model=flux-general-en", "&numerals=true"] {
        let body = refused(
            &url,
            &format!("{CF}?encoding=linear16&sample_rate=16000{extra}"),
            &[],
            400,
        )
        .await;
        assert_eq!(body["success"], false, "{body}");
    }
    refused(&url, "/?encoding=mulaw&sample_rate=8000", &[], 400).await;
    refused(
        &url,
        "/?encoding=linear16&sample_rate=16000&eot_threshold=1.0",
        &[],
        400,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_gets_an_answer() {
    let server = serve_default().await;
    let ask = |request: &'static str| {
        let addr = server.local_addr();
        async move {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(request.as_bytes()).await.unwrap();
            let mut out = String::new();
            tokio::time::timeout(TIMEOUT, tcp.read_to_string(&mut out))
                .await
                .unwrap()
                .unwrap();
            out
        }
    };
    let post = ask(
        "POST /v2/listen?model=flux-general-en HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(post.contains("dg-request-id: "), "{post}");
    let get = ask("GET /v2/listen HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(get.starts_with("HTTP/1.1 426"), "{get}");
    let nope = ask("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(nope.starts_with("HTTP/1.1 404"), "{nope}");
    assert!(nope.contains(r#""err_code":"NOT_FOUND""#), "{nope}");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Control messages

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_success_echoes_everything_and_failure_changes_nothing() {
    let server = serve_default().await;
    let mut c = connect(
        &server.url(),
        &dg_query("&eager_eot_threshold=0.5&keyterm=alpha"),
        &[],
    )
    .await;
    c.json().await;
    c.text(r#"{"type":"Configure","thresholds":{"eot_threshold":0.8},"keyterms":["apple","banana"],"numerals":true}"#).await;
    let ok = c.json().await;
    assert_eq!(
        ok,
        json!({"type": "ConfigureSuccess", "request_id": c.request_id(), "sequence_id": 1,
               "thresholds": {"eot_threshold": 0.8, "eager_eot_threshold": 0.5, "eot_timeout_ms": 5000},
               "keyterms": ["apple", "banana"], "language_hints": [], "numerals": true})
    );
    // Atomic: the eager threshold above the merged eot fails, and the keyterms with it.
    c.text(r#"{"type":"Configure","thresholds":{"eager_eot_threshold":0.9},"keyterms":["x"]}"#)
        .await;
    let failed = c.json().await;
    assert_eq!(failed["type"], "ConfigureFailure");
    assert_eq!(failed["sequence_id"], 2);
    assert_eq!(failed["code"], "INVALID_THRESHOLD");
    assert!(
        failed["description"]
            .as_str()
            .unwrap()
            .contains("eager_eot_threshold")
    );
    let many: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    c.text(&json!({"type": "Configure", "keyterms": many}).to_string())
        .await;
    assert_eq!(c.json().await["code"], "INVALID_KEYTERMS");
    c.text(r#"{"type":"Configure","language_hints":["es"]}"#)
        .await;
    assert_eq!(c.json().await["code"], "INVALID_LANGUAGE_HINTS");
    c.text(r#"{"type":"Configure","thresholds":{"eot_timeout_ms":70000}}"#)
        .await;
    assert_eq!(c.json().await["code"], "INVALID_THRESHOLD");
    c.text(r#"{"type":"Configure"}"#).await;
    let unchanged = c.json().await;
    assert_eq!(unchanged["sequence_id"], 6);
    assert_eq!(unchanged["thresholds"], ok["thresholds"]);
    assert_eq!(unchanged["keyterms"], ok["keyterms"]);

    // A Configure takes effect on the audio after it: eot 0.99 needs 0.6 s of silence, so a
    // 0.5 s pause no longer ends the turn.
    c.text(r#"{"type":"Configure","thresholds":{"eot_threshold":0.99}}"#)
        .await;
    c.json().await;
    c.audio(&utterances(16000, &[(0.6, 0.5), (0.6, 1.0)])).await;
    let (m, _) = c.close_stream().await;
    let events = turn_events(&m);
    assert_eq!(
        events.iter().filter(|e| e.starts_with("EndOfTurn")).count(),
        1,
        "{events:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multilingual_turns_carry_languages() {
    let server = serve_default().await;
    let q = format!(
        "{DG}?model=flux-general-multi&encoding=linear16&sample_rate=16000&language_hint=es"
    );
    let mut c = connect(&server.url(), &q, &[]).await;
    c.text(r#"{"type":"Configure","language_hints":["fr","de"]}"#)
        .await;
    c.audio(&utterances(16000, &[(0.6, 0.6)])).await;
    let (m, _) = c.close_stream().await;
    assert_eq!(m[1]["language_hints"], json!(["fr", "de"]));
    let end = m.iter().find(|m| m["event"] == "EndOfTurn").unwrap();
    assert_eq!(end["languages"], json!(["fr"]));
    assert_eq!(end["languages_hinted"], json!(["fr", "de"]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_end_turn_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.txt");
    std::fs::write(
        &script,
        "hello there general kenobi you are a bold one\nsecond\n",
    )
    .unwrap();
    let server = serve(ServeOptions {
        script: Some(script),
        ..Default::default()
    })
    .await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    c.json().await;
    c.text(r#"{"type":"ForceEndTurn"}"#).await;
    let warning = c.json().await;
    assert_eq!(warning["type"], "Warning");
    assert_eq!(warning["code"], "FORCE_END_TURN_NO_ACTIVE_TURN");
    assert_eq!(warning["sequence_id"], 1);
    // Half a second of speech, no pause: the turn is open, with only some words.
    let speech = utterances(16000, &[(0.5, 0.0)]);
    c.audio(&speech).await;
    let start = c.until("StartOfTurn").await;
    assert_eq!(start["transcript"], "hello");
    c.text(r#"{"type":"ForceEndTurn"}"#).await;
    let end = c.until("EndOfTurn").await;
    assert_eq!(end["trigger"], "manual");
    assert_eq!(end["turn_index"], 0);
    assert_eq!(
        end["transcript"],
        "hello there general kenobi you are a bold one"
    );
    assert_eq!(end["audio_window_end"], 1.0);
    // The next turn is turn 1, with the next line.
    c.audio(&utterances(16000, &[(0.6, 0.6)])).await;
    let next = c.until("EndOfTurn").await;
    assert_eq!(
        (next["turn_index"].clone(), next["transcript"].clone()),
        (json!(1), json!("second"))
    );
    assert_eq!(next["audio_window_start"], 1.0);
    c.text(r#"{"type":"ForceEndTurn"}"#).await;
    assert_eq!(
        c.until("Warning").await["code"],
        "FORCE_END_TURN_NO_ACTIVE_TURN"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stream_reports_the_rest_and_closes_without_status() {
    let server = serve_default().await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    // Speech that is still going on at the end, plus 0.055 s (not a whole hop).
    let mut audio = utterances(16000, &[(1.0, 0.0)]);
    audio.extend(vec![0u8; 2 * 880]);
    c.audio_frames(&audio, 2560).await;
    let (m, end) = c.close_stream().await;
    assert!(
        matches!(end, Incoming::Close(None)),
        "expected 1005, got {end:?}"
    );
    assert!(m.iter().any(|m| m["event"] == "StartOfTurn"));
    assert!(!m.iter().any(|m| m["event"] == "EndOfTurn"));
    let last = m.last().unwrap();
    assert_eq!(last["event"], "Update");
    assert_eq!(last["audio_window_end"], 1.555);
    assert_ne!(last["transcript"], "");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_messages_are_fatal() {
    let server = serve_default().await;
    let url = server.url();
    for bad in [
        Message::text(r#"{"type":"KeepAlive"}"#),
        Message::text("not json"),
        Message::text(r#"{"type":"Finalize"}"#),
        Message::text(r#"{"type":"Configure","numerals":"true"}"#),
        Message::text(r#"{"type":"Configure","features":{"numerals":true}}"#),
        Message::text(r#"{"type":"Dance"}"#),
        Message::binary(Vec::<u8>::new()),
    ] {
        let mut c = connect(&url, &dg_query(""), &[]).await;
        c.json().await;
        c.raw(bad.clone()).await.unwrap();
        let (m, end) = c.rest().await;
        assert_eq!(m.len(), 1, "{bad:?}: {m:?}");
        assert_eq!(m[0]["type"], "Error", "{bad:?}");
        assert_eq!(m[0]["code"], "UNPARSABLE_CLIENT_MESSAGE");
        assert_eq!(m[0]["sequence_id"], 1);
        assert!(!m[0]["description"].as_str().unwrap().is_empty());
        assert!(matches!(end, Incoming::Close(None)), "{bad:?}: {end:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_huge_frames_refused() {
    let server = serve_default().await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    c.json().await;
    c.raw(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    match c.recv().await {
        Incoming::Pong(p) => assert_eq!(p, b"hi"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // Bigger than the 1 MiB limit: closed with 1009, the server lives on.
    let _ = c.raw(Message::binary(vec![0u8; 2 << 20])).await;
    let (_, end) = c.rest().await;
    assert!(matches!(end, Incoming::Close(Some((1009, _)))), "{end:?}");
    connect(&server.url(), &dg_query(""), &[])
        .await
        .json()
        .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_container_audio_is_a_fatal_error() {
    let server = serve_default().await;
    let mut c = connect(&server.url(), &format!("{DG}?model=flux-general-en"), &[]).await;
    c.json().await;
    c.audio(b"OggS\0\x02 this is not going to work").await;
    let (m, end) = c.rest().await;
    assert_eq!(m[0]["type"], "Error");
    assert_eq!(m[0]["code"], "UNSUPPORTED_AUDIO_FORMAT");
    assert!(m[0]["description"].as_str().unwrap().contains("Opus"));
    assert!(matches!(end, Incoming::Close(Some((1008, _)))), "{end:?}");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Faults

fn faults(specs: &[&str]) -> ServeOptions {
    ServeOptions {
        faults: specs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fault_specs_are_usage_errors() {
    for spec in [
        "boom",
        "drop:at=x",
        "reject:status=200",
        "error:close=1005",
        "delay",
    ] {
        let err = flux::serve::start(ServeOptions {
            listen: "127.0.0.1:0".into(),
            ..faults(&[spec])
        })
        .await
        .unwrap_err();
        let usage = err.downcast_ref::<FluxError>();
        assert!(
            matches!(usage, Some(FluxError::Usage(m)) if m.contains(spec) && m.contains("valid forms")),
            "{err}"
        );
    }
    let err = flux::serve::start(ServeOptions {
        listen: "127.0.0.1:0".into(),
        script: Some("/nonexistent/script.txt".into()),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err.downcast_ref::<FluxError>(), Some(FluxError::Usage(_))),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_only_the_first_connection() {
    let server = serve(faults(&[r#"reject:status=429,conn=1,body={"err_code":"TOO_MANY_REQUESTS","err_msg":"slow down, please"}"#])).await;
    let resp = try_connect(&server.url(), &dg_query(""), &[])
        .await
        .err()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(body_json(&resp)["err_msg"], "slow down, please");
    assert_uuid_v4(&header(&resp, "dg-request-id"));
    assert!(!header(&resp, "dg-error").is_empty());
    connect(&server.url(), &dg_query(""), &[])
        .await
        .json()
        .await;

    let server = serve(faults(&["reject:status=503"])).await;
    for _ in 0..2 {
        let body = refused(&server.url(), &dg_query(""), &[], 503).await;
        assert!(body["err_code"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_at_an_audio_time() {
    let server = serve(faults(&["drop:at=1.0,conn=1"])).await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    // Sending may fail once the server is gone; what matters is what the client saw.
    for chunk in utterances(16000, &[(1.0, 1.5)]).chunks(2560) {
        if c.raw(Message::binary(chunk.to_vec())).await.is_err() {
            break;
        }
    }
    let (m, end) = c.rest().await;
    assert!(
        matches!(end, Incoming::Ended(_)),
        "no close frame expected: {end:?}"
    );
    // Everything up to 1.0 s of audio arrived (the last Update was at 0.95), nothing after.
    let last_end = m.last().unwrap()["audio_window_end"].as_f64().unwrap();
    assert!((0.9..=1.0).contains(&last_end), "{:?}", m.last());
    assert!(m.iter().any(|m| m["event"] == "StartOfTurn"));
    // Only connection 1 is dropped.
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    c.audio(&utterances(16000, &[(1.0, 1.5)])).await;
    let (m, _) = c.close_stream().await;
    assert!(m.iter().any(|m| m["event"] == "EndOfTurn"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_then_close_code() {
    let server = serve(faults(&[
        "error:at=0.5,code=NET-0001,close=1011,description=stream idle, closing",
    ]))
    .await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    let _ = c.raw(Message::binary(silence(16000, 1.0))).await;
    let (m, end) = c.rest().await;
    let err = m.last().unwrap();
    assert_eq!(err["type"], "Error");
    assert_eq!(err["code"], "NET-0001");
    assert_eq!(err["description"], "stream idle, closing");
    assert_eq!(
        err["sequence_id"], 3,
        "Connected and two Updates come first"
    );
    assert!(matches!(end, Incoming::Close(Some((1011, _)))), "{end:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_keeps_the_socket_but_sends_nothing() {
    let server = serve(faults(&["stall:at=1"])).await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    c.audio(&utterances(16000, &[(1.0, 1.0)])).await;
    // Events flow up to the stall at 1.0 s of audio (the last is the Update at 0.95)...
    let mut last = c.json().await;
    while last["audio_window_end"].as_f64().unwrap_or(0.0) < 0.95 {
        last = c.json().await;
    }
    assert_eq!(last["event"], "Update");
    // ...then nothing: CloseStream is ignored, but the socket is open and pings answered.
    c.text(r#"{"type":"CloseStream"}"#).await;
    c.raw(Message::Ping(b"p".to_vec().into())).await.unwrap();
    match c.recv().await {
        Incoming::Pong(p) => assert_eq!(p, b"p"),
        other => panic!("expected only a pong after the stall, got {other:?}"),
    }
    c.close().await;
    let (after, end) = c.rest().await;
    assert!(after.is_empty(), "{after:?}");
    assert!(matches!(end, Incoming::Close(_)), "{end:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_and_typeless_messages() {
    let server = serve(faults(&["malformed:at=0.25", "unknown:at=0.5", "typeless"])).await;
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    c.audio(&silence(16000, 0.6)).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(c.recv().await);
    }
    let Incoming::Json(connected) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(
        connected["type"], "Connected",
        "only TurnInfo loses its type"
    );
    let Incoming::Json(update) = &got[1] else {
        panic!("{got:?}")
    };
    assert!(update.get("type").is_none(), "{update}");
    assert_eq!(
        (update["event"].clone(), update["sequence_id"].clone()),
        (json!("Update"), json!(1))
    );
    assert!(
        matches!(&got[2], Incoming::Text(t) if serde_json::from_str::<Value>(t).is_err()),
        "{got:?}"
    );
    let Incoming::Json(second) = &got[3] else {
        panic!("{got:?}")
    };
    assert_eq!(
        second["sequence_id"], 2,
        "malformed text takes no sequence number"
    );
    let Incoming::Json(unknown) = &got[4] else {
        panic!("{got:?}")
    };
    assert_eq!(unknown["type"], "FluxServeUnknown");
    assert_eq!(unknown["sequence_id"], 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_holds_every_message_back() {
    let server = serve(faults(&["delay:ms=300"])).await;
    let started = tokio::time::Instant::now();
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    c.json().await;
    // A lower bound only: never flaky on a slow machine.
    assert!(started.elapsed() >= Duration::from_millis(290));
    c.audio(&silence(16000, 0.5)).await;
    let (m, _) = c.close_stream().await;
    assert_eq!(m.len(), 2, "two Updates, in order: {m:?}");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Log, concurrency, the binary

fn read_log(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("log line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_records_what_clients_sent_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.jsonl");
    let server = serve(ServeOptions {
        api_key: Some(flux::provider::Secret::new(KEY)),
        log: Some(log.clone()),
        ..Default::default()
    })
    .await;
    let url = server.url();
    let browser = format!("token, {KEY}");
    let mut c = connect(
        &url,
        &format!("{}&token={KEY}", dg_query("&tag=ci")).replace("&token", "&tag=x&token"),
        &[
            ("sec-websocket-protocol", &browser),
            ("cf-aig-authorization", "Bearer cfsecret"),
        ],
    )
    .await;
    let id = c.request_id();
    c.audio(&vec![0u8; 2560]).await;
    c.audio(&vec![0u8; 1001]).await;
    c.text(r#"{"type":"Configure","keyterms":["x"]}"#).await;
    c.text("hello?").await;
    c.rest().await;
    let refused = try_connect(
        &url,
        &dg_query(""),
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await;
    assert!(refused.is_err());
    let mut c = connect(
        &url,
        &dg_query(""),
        &[("authorization", &format!("Token {KEY}"))],
    )
    .await;
    c.json().await;
    c.raw(Message::Close(Some(
        tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        },
    )))
    .await
    .unwrap();
    c.rest().await;
    server.shutdown().await;

    let lines = read_log(&log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(KEY), "the key leaked into the log:\n{text}");
    assert!(!text.contains("cfsecret"), "{text}");
    let hs = &lines[0];
    assert_eq!(hs["kind"], "handshake");
    assert_eq!(hs["conn"], 1);
    assert_eq!(hs["method"], "GET");
    assert_eq!(hs["path"], "/v2/listen");
    assert!(
        hs["query"]
            .as_str()
            .unwrap()
            .ends_with("&tag=ci&tag=x&token=***"),
        "{hs}"
    );
    assert_eq!(hs["headers"]["sec-websocket-protocol"], "token, ***");
    assert_eq!(hs["headers"]["cf-aig-authorization"], "Bearer ***");
    assert_eq!(hs["status"], 101);
    assert_eq!(hs["request_id"], id.as_str());
    assert!(hs["t"].as_f64().unwrap() >= 0.0);
    let kinds: Vec<(u64, &str)> = lines
        .iter()
        .map(|l| (l["conn"].as_u64().unwrap(), l["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "handshake"),
            (1, "audio"),
            (1, "audio"),
            (1, "control"),
            (1, "control"),
            (1, "close"),
            (2, "handshake"),
            (3, "handshake"),
            (3, "close")
        ]
    );
    assert_eq!(
        lines[1],
        json!({"t": lines[1]["t"], "conn": 1, "kind": "audio", "bytes": 2560, "audio_start": 0.0, "audio_end": 0.08})
    );
    assert_eq!(
        (
            lines[2]["bytes"].clone(),
            lines[2]["audio_start"].clone(),
            lines[2]["audio_end"].clone()
        ),
        (json!(1001), json!(0.08), json!(0.111))
    );
    assert_eq!(
        lines[3]["message"],
        json!({"type": "Configure", "keyterms": ["x"]})
    );
    assert_eq!(lines[4]["text"], "hello?");
    assert_eq!(
        (lines[5]["by"].clone(), lines[5]["code"].clone()),
        (json!("server"), Value::Null)
    );
    assert_eq!(lines[6]["status"], 401);
    assert_eq!(lines[6]["headers"]["authorization"], "Bearer ***");
    assert_eq!(lines[7]["headers"]["authorization"], "Token ***");
    assert_eq!(
        (
            lines[8]["by"].clone(),
            lines[8]["code"].clone(),
            lines[8]["reason"].clone()
        ),
        (json!("client"), json!(1000), json!("bye"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sessions_at_once_get_the_same_turns() {
    let server = serve_default().await;
    let audio = std::sync::Arc::new(fixture_at("beckett.wav", 16000));
    let sessions: Vec<_> = (0..20)
        .map(|i| {
            let (url, audio) = (server.url(), audio.clone());
            tokio::spawn(async move {
                let mut c = connect(&url, &dg_query(""), &[]).await;
                // Different framings, same audio.
                c.audio_frames(&audio, 1000 + 97 * i).await;
                c.audio(&silence(16000, 1.0)).await;
                let (m, _) = c.close_stream().await;
                without_request_ids(&m)
            })
        })
        .collect();
    let mut results = Vec::new();
    for s in sessions {
        results.push(s.await.unwrap());
    }
    assert_eq!(turns(&results[0]).len(), 4);
    assert!(results.iter().all(|r| *r == results[0]));
    // A client that vanishes mid-stream does not take the server down.
    let mut c = connect(&server.url(), &dg_query(""), &[]).await;
    c.audio(&audio[..64000]).await;
    drop(c);
    connect(&server.url(), &dg_query(""), &[])
        .await
        .json()
        .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_its_url_and_serves() {
    use std::io::BufRead;
    let mut child = crate::common::flux()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run flux serve");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let url = line.trim_end().to_string();
    assert!(
        url.starts_with("ws://127.0.0.1:") && !url.ends_with(":0"),
        "{line:?}"
    );
    let mut c = connect(&url, &dg_query(""), &[]).await;
    assert_eq!(c.json().await["type"], "Connected");
    c.audio(&utterances(16000, &[(0.6, 0.6)])).await;
    let (m, end) = c.close_stream().await;
    assert!(m.iter().any(|m| m["event"] == "EndOfTurn"));
    assert!(matches!(end, Incoming::Close(None)));
    let _ = child.kill();
    let _ = child.wait();

    // A bad fault spec is a usage error (exit 2) that names the spec.
    crate::common::flux_cmd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "explode:at=1",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("explode:at=1"));
}
