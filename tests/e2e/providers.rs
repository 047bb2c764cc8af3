//! End-to-end tests of the destinations (Deepgram and Cloudflare dialects) and of mid-session
//! control (`--control`), against `flux serve` over loopback.

use crate::common;

use common::*;
use serde_json::Value;

fn beckett() -> std::path::PathBuf {
    fixture("beckett.wav")
}

fn cloudflare_cmd(serve: &Serve, path: &str, extra: &[&str]) -> std::process::Command {
    let mut c = flux();
    c.arg("file")
        .arg(beckett())
        .args(["--provider", "cloudflare", "--url"])
        .arg(format!("{}{path}", serve.url))
        .arg("--fast")
        .args(extra);
    c
}

#[test]
fn cloudflare_worker_route_with_its_own_auth_header_and_typeless_messages() {
    let serve = Serve::start(&["--api-key", "worker-secret", "--fault", "typeless"]);
    // Without the header the Worker refuses; the Cloudflare token is never sent to a Worker.
    let mut cmd = cloudflare_cmd(&serve, "/", &["--text"]);
    cmd.env("CLOUDFLARE_API_TOKEN", "cf-token-never-sent");
    let out = run(cmd, None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let hs = &serve.log_kind("handshake")[0];
    assert!(hs["headers"].get("authorization").is_none(), "{hs}");

    let out = run(
        cloudflare_cmd(
            &serve,
            "/",
            &["--jsonl", "--header", "Authorization: Bearer worker-secret"],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let hs = &serve.log_kind("handshake")[1];
    assert_eq!(hs["path"], "/");
    assert_eq!(hs["query"], "encoding=linear16&sample_rate=16000");
    assert_eq!(hs["headers"]["authorization"], "Bearer ***");
    let events = jsonl(&out);
    assert_eq!(events[0]["provider"], "cloudflare");
    // The server stripped `type`; flux put it back, first, and kept everything else.
    let turns: Vec<&Value> = events.iter().filter(|e| e.get("event").is_some()).collect();
    assert!(turns.iter().all(|e| e["type"] == "TurnInfo"));
    assert!(turns.iter().any(|e| e["event"] == "EndOfTurn"));
    let line = String::from_utf8_lossy(&out.stdout);
    let first_turn = line.lines().find(|l| l.contains("\"event\"")).unwrap();
    assert!(
        first_turn.starts_with(r#"{"type":"TurnInfo","#),
        "{first_turn}"
    );
}

#[test]
fn cloudflare_ends_with_silence_not_force_end_turn() {
    let serve = Serve::start(&[]);
    let out = run(
        cloudflare_cmd(
            &serve,
            "/client/v4/accounts/acc123/ai/run/@cf/deepgram/flux",
            &[
                "--jsonl",
                "--eot-threshold",
                "0.9",
                "--keyterm",
                "a",
                "--keyterm",
                "b",
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let hs = &serve.log_kind("handshake")[0];
    assert_eq!(hs["status"], 101);
    assert_eq!(
        hs["query"],
        "encoding=linear16&sample_rate=16000&eot_threshold=0.9&keyterm=a&keyterm=b"
    );
    let controls: Vec<Value> = serve.log_kind("control");
    assert_eq!(controls.len(), 1, "{controls:?}");
    assert_eq!(controls[0]["message"]["type"], "CloseStream");
    let events = jsonl(&out);
    let count = |e: &str| events.iter().filter(|x| x["event"] == e).count();
    assert!(count("StartOfTurn") > 0);
    assert_eq!(count("StartOfTurn"), count("EndOfTurn"));
}

#[test]
fn cloudflare_refuses_what_it_does_not_support_before_connecting() {
    let serve = Serve::start(&[]);
    for (args, needle) in [
        (vec!["--numerals"], "--numerals"),
        (vec!["--model", "flux-general-en"], "--model"),
        (vec!["--language-hint", "en"], "--language-hint"),
        (vec!["--redact", "numbers"], "--redact"),
        (vec!["--eot-threshold", "1.0"], "0.9"),
    ] {
        let out = run(cloudflare_cmd(&serve, "/", &args), None);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    // Hosted Cloudflare without credentials: exit 3, naming what to set.
    let mut cmd = flux();
    cmd.arg("file")
        .arg(beckett())
        .args(["--provider", "cloudflare"]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("CLOUDFLARE_ACCOUNT_ID"),
        "{}",
        stderr(&out)
    );
    let mut cmd = flux();
    cmd.arg("file")
        .arg(beckett())
        .args(["--provider", "cloudflare", "--account-id", "acc"]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("CLOUDFLARE_API_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert!(serve.log_kind("handshake").is_empty());
}

fn control_file(dir: &std::path::Path, lines: &[&str]) -> String {
    let p = dir.join("control.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn configure_round_trips_one_at_a_time_with_success_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let control = control_file(
        dir.path(),
        &[
            r#"{"type":"Configure","thresholds":{"eot_threshold":0.8,"eot_timeout_ms":6000},"keyterms":["Beckett"],"at":1.0}"#,
            r#"{"type":"Configure","thresholds":{"eager_eot_threshold":0.9},"at":1.0}"#,
            r#"{"type":"Configure","numerals":true,"at":1.0}"#,
        ],
    );
    // Delayed answers make a client that does not wait visible in the server's log.
    let serve = Serve::start(&["--fault", "delay:ms=300"]);
    let out = run(
        file_cmd(&serve, &beckett(), &["--jsonl", "--control", &control]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    let answers: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("Configure"))
        .collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["type"], "ConfigureSuccess");
    assert_eq!(answers[0]["thresholds"]["eot_threshold"], 0.8);
    assert_eq!(answers[0]["thresholds"]["eot_timeout_ms"], 6000);
    assert_eq!(answers[0]["keyterms"], serde_json::json!(["Beckett"]));
    // eager 0.9 > eot 0.8: refused, and the configuration stays as it was.
    assert_eq!(answers[1]["type"], "ConfigureFailure");
    assert!(answers[1]["code"].is_string() && answers[1]["description"].is_string());
    assert_eq!(answers[2]["type"], "ConfigureSuccess");
    assert_eq!(answers[2]["numerals"], true);
    assert_eq!(answers[2]["thresholds"]["eot_threshold"], 0.8);
    assert!(
        answers[2]["thresholds"]
            .get("eager_eot_threshold")
            .is_none()
    );
    // One in flight: each Configure reached the server only after the previous answer.
    let sent: Vec<f64> = serve
        .log_kind("control")
        .iter()
        .filter(|l| l["message"]["type"] == "Configure")
        .map(|l| l["t"].as_f64().unwrap())
        .collect();
    assert_eq!(sent.len(), 3);
    assert!(
        sent[1] - sent[0] >= 0.25 && sent[2] - sent[1] >= 0.25,
        "{sent:?}"
    );
    // They went out after 1 s of audio.
    let first = serve
        .log_lines()
        .iter()
        .position(|l| l["kind"] == "control")
        .unwrap();
    let audio_before: f64 = serve.log_lines()[..first]
        .iter()
        .filter(|l| l["kind"] == "audio")
        .map(|l| l["audio_end"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!((audio_before - 1.04).abs() < 0.05, "{audio_before}");
    // People see the outcome on stderr too.
    assert!(
        stderr(&out).contains("configuration applied: eot_threshold 0.8"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("configure failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_timed_force_end_turn_ends_the_turn_manually() {
    let dir = tempfile::tempdir().unwrap();
    // Mid-way through beckett's first turn (speech from about 0.6 s).
    let control = control_file(dir.path(), &[r#"{"type":"ForceEndTurn","at":1.5}"#]);
    let serve = Serve::start(&[]);
    let out = run(
        file_cmd(&serve, &beckett(), &["--jsonl", "--control", &control]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    let first_end = events.iter().find(|e| e["event"] == "EndOfTurn").unwrap();
    assert_eq!(first_end["trigger"], "manual");
    assert!(first_end["audio_window_end"].as_f64().unwrap() < 1.8);
}

#[test]
fn configure_is_not_sent_where_the_provider_does_not_support_it() {
    let dir = tempfile::tempdir().unwrap();
    let control = control_file(dir.path(), &[r#"{"type":"Configure","numerals":true}"#]);
    let serve = Serve::start(&[]);
    let out = run(
        cloudflare_cmd(&serve, "/", &["--jsonl", "--control", &control]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        jsonl(&out)
            .iter()
            .any(|e| e["type"] == "flux.warning" && e["code"] == "configure_unsupported")
    );
    assert!(
        !serve
            .log_kind("control")
            .iter()
            .any(|l| l["message"]["type"] == "Configure")
    );
}

#[test]
fn bad_control_lines_are_skipped_with_their_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let control = control_file(
        dir.path(),
        &[
            r#"{"type":"KeepAlive"}"#,
            r#"{"type":"ForceEndTurn","at":1.5}"#,
        ],
    );
    let serve = Serve::start(&[]);
    let out = run(
        file_cmd(&serve, &beckett(), &["--text", "--control", &control]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("line 1 skipped"), "{}", stderr(&out));
    let missing = dir.path().join("nope");
    let out = run(
        file_cmd(
            &serve,
            &beckett(),
            &["--control", missing.to_str().unwrap()],
        ),
        None,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn multilingual_turns_carry_their_languages_in_text_and_jsonl() {
    let serve = Serve::start(&[]);
    let args = [
        "--model",
        "flux-general-multi",
        "--language-hint",
        "es",
        "--language-hint",
        "en",
    ];
    let out = run(
        file_cmd(&serve, &beckett(), &[&args[..], &["--text"]].concat()),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.is_empty());
    assert!(text.lines().all(|l| l.starts_with("[es] ")), "{text}");
    let out = run(
        file_cmd(&serve, &beckett(), &[&args[..], &["--jsonl"]].concat()),
        None,
    );
    let end = jsonl(&out)
        .into_iter()
        .find(|e| e["event"] == "EndOfTurn")
        .unwrap();
    assert_eq!(end["languages"], serde_json::json!(["es"]));
    assert_eq!(end["languages_hinted"], serde_json::json!(["es", "en"]));
}

#[test]
fn deepgram_only_flags_are_refused_for_deepgram_and_user_headers_are_sent() {
    let serve = Serve::start(&[]);
    let out = run(file_cmd(&serve, &beckett(), &["--gateway", "gw"]), None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--provider cloudflare"));
    let out = run(
        file_cmd(
            &serve,
            &beckett(),
            &["--text", "--header", "X-Proxy-Key: hidden-value"],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let hs = &serve.log_kind("handshake")[0];
    // Sent (the log masks values of credential-like headers).
    assert_eq!(hs["headers"]["x-proxy-key"], "***");
    let out = run(
        file_cmd(&serve, &beckett(), &["--header", "no-colon"]),
        None,
    );
    assert_eq!(code(&out), 2);
}
