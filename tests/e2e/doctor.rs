//! `flux doctor` against `flux serve` and its faults over real loopback sockets: every check
//! passing, a refused key, TLS with a CA flux does not trust (and with it, via --ca-cert), a
//! server that never answers, and a machine with nothing set up. Audio devices come from the
//! virtual ALSA configurations in tests/alsa.

use crate::alsa::use_devices;
use crate::common::*;
use crate::tls::{TlsFront, backend, pki, write_ca};
use serde_json::Value;
use std::net::TcpListener;
use std::process::Command;

const KEY: &str = "sk-doctor-canary-5f1e";

/// `flux doctor` seeing the virtual devices of `conf` (mic.conf has a default microphone,
/// nodevice.conf none).
fn doctor(conf: &str, dir: &tempfile::TempDir, args: &[&str]) -> Command {
    let raw = dir.path().join("mic.raw");
    std::fs::write(&raw, vec![0u8; 64_000]).unwrap();
    let mut c = flux();
    use_devices(&mut c, conf, &raw);
    c.arg("doctor").args(args);
    c
}

/// The JSONL report: the checks by name, and the summary.
fn report(out: &std::process::Output) -> (Vec<Value>, Value) {
    let mut lines = jsonl(out);
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["type"], "flux.doctor.summary", "{summary}");
    for l in &lines {
        assert_eq!(l["type"], "flux.doctor.check", "{l}");
    }
    let names: Vec<&str> = lines.iter().map(|l| l["check"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "audio",
            "config",
            "credentials",
            "dns",
            "tcp",
            "tls",
            "handshake"
        ]
    );
    (lines, summary)
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks.iter().find(|c| c["check"] == name).unwrap()
}

fn assert_no_canary(out: &std::process::Output) {
    for text in [stdout(out), stderr(out)] {
        assert!(!text.contains("canary"), "the key leaked: {text}");
    }
}

#[test]
fn every_check_passes_against_flux_serve_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&["--api-key", KEY]);
    let mut cmd = doctor("mic.conf", &dir, &["--url", &serve.url, "--jsonl"]);
    cmd.env("DEEPGRAM_API_KEY", KEY);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let (checks, summary) = report(&out);
    assert!(
        checks.iter().all(|c| c["ok"] == true && c["fix"].is_null()),
        "{checks:?}"
    );
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["failed"], 0);
    assert_eq!(check(&checks, "audio")["default"], "alsa:default");
    assert_eq!(
        check(&checks, "credentials")["present"],
        serde_json::json!(["API key from DEEPGRAM_API_KEY"])
    );
    // The request id is the server's, and the server got a second of silence, then the
    // client's clean ending.
    let handshake = check(&checks, "handshake");
    let id = handshake["request_id"].as_str().unwrap();
    let logged = serve.log_kind("handshake");
    assert_eq!(logged.len(), 1);
    assert!(logged[0].to_string().contains(id), "{} vs {id}", logged[0]);
    assert!(handshake["detail"].as_str().unwrap().contains("Connected"));
    assert_eq!(serve.audio_bytes(), 32_000);
    let controls: Vec<String> = serve
        .log_kind("control")
        .iter()
        .map(|c| c["message"]["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(controls.last().map(String::as_str), Some("CloseStream"));
    assert_eq!(serve.log_kind("close")[0]["by"], "server");
    assert_no_canary(&out);
}

#[test]
fn a_refused_key_fails_the_handshake_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&["--api-key", "the-right-key"]);
    let mut cmd = doctor("mic.conf", &dir, &["--url", &serve.url]);
    cmd.env("DEEPGRAM_API_KEY", KEY);
    let out = run(cmd, None);
    assert_eq!(code(&out), 10, "{}", stdout(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    for name in ["audio", "credentials", "dns", "tcp", "tls"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("✔ {name} "))),
            "{name}: {text}"
        );
    }
    let at = lines
        .iter()
        .position(|l| l.starts_with("✘ handshake"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(lines[at].contains("401"), "{text}");
    assert!(lines[at + 1].trim_start().starts_with("fix:"), "{text}");
    assert!(lines[at + 1].contains("credentials"), "{text}");
    assert_eq!(lines.last(), Some(&"1 of 7 checks failed."));
    assert_no_canary(&out);
}

#[test]
fn tls_with_an_unknown_ca_fails_and_passes_with_ca_cert() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&["localhost"]);
    let ca = write_ca(&dir, &pki);
    let serve = Serve::start(&[]);
    let front = TlsFront::start(&pki, backend(&serve));
    let url = format!("wss://localhost:{}", front.port);

    let out = run(doctor("mic.conf", &dir, &["--url", &url, "--jsonl"]), None);
    assert_eq!(code(&out), 10, "{}", stdout(&out));
    let (checks, _) = report(&out);
    assert_eq!(check(&checks, "tcp")["ok"], true);
    let tls = check(&checks, "tls");
    assert_eq!(tls["ok"], false, "{tls}");
    assert!(
        tls["detail"].as_str().unwrap().contains("UnknownIssuer"),
        "{tls}"
    );
    assert!(tls["fix"].as_str().unwrap().contains("--ca-cert"), "{tls}");
    let handshake = check(&checks, "handshake");
    assert_eq!(handshake["detail"], "not tried: the tls check failed");

    let trusted = ["--url", &url, "--jsonl", "--ca-cert", ca.to_str().unwrap()];
    let out = run(doctor("mic.conf", &dir, &trusted), None);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let (checks, _) = report(&out);
    let tls = check(&checks, "tls");
    assert_eq!(tls["issuer"], "CN=flux test CA", "{tls}");
    assert!(tls["expires"].as_str().unwrap().ends_with(" UTC"), "{tls}");
    assert!(
        tls["protocol"].as_str().unwrap().starts_with("TLSv1."),
        "{tls}"
    );
    assert_eq!(check(&checks, "handshake")["ok"], true);
}

#[test]
fn a_server_that_never_answers_fails_the_handshake_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // Accepts TCP connections (the kernel does) and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", silent.local_addr().unwrap());
    let args = ["--url", url.as_str(), "--timeout", "1", "--jsonl"];
    let out = run(doctor("mic.conf", &dir, &args), None);
    assert_eq!(code(&out), 10, "{}", stdout(&out));
    let (checks, summary) = report(&out);
    assert_eq!(check(&checks, "tcp")["ok"], true);
    let handshake = check(&checks, "handshake");
    assert_eq!(handshake["ok"], false, "{handshake}");
    assert!(
        handshake["fix"].as_str().unwrap().contains("--timeout"),
        "{handshake}"
    );
    assert_eq!(summary["failed"], 1);
    drop(silent);
}

#[test]
fn nothing_set_up_fails_each_check_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", closed.local_addr().unwrap());
    drop(closed);
    let missing = dir.path().join("no-such-key");
    let args = [
        "--url",
        url.as_str(),
        "--api-key-file",
        missing.to_str().unwrap(),
    ];
    let out = run(doctor("nodevice.conf", &dir, &args), None);
    assert_eq!(code(&out), 10, "{}", stdout(&out));
    let text = stdout(&out);
    let failed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("✘ "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        failed,
        ["audio", "credentials", "tcp", "tls", "handshake"],
        "{text}"
    );
    assert!(text.contains("no-such-key"), "{text}");
    assert!(text.contains("connect a microphone"), "{text}");
    assert!(
        text.contains("is the server running") || text.contains("server is running"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("fix:")).count(),
        5,
        "{text}"
    );
    assert!(text.ends_with("5 of 7 checks failed.\n"), "{text}");
}

#[test]
fn bad_flags_are_usage_errors_not_checks() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--url", "not a url"][..],
        &["--control", "x.jsonl", "--url", "ws://127.0.0.1:9"],
        &["--timeout", "0"],
    ] {
        let out = run(doctor("mic.conf", &dir, args), None);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn the_config_file_is_a_check_naming_its_problem_or_its_profile() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[]);
    // A broken file: reported as the config check (file and line), not an abort.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[default]\neot_threshold = \"high\"\n").unwrap();
    let out = run(
        doctor(
            "mic.conf",
            &dir,
            &[
                "--config",
                bad.to_str().unwrap(),
                "--url",
                &serve.url,
                "--jsonl",
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 10, "{}\n{}", stdout(&out), stderr(&out));
    let (checks, _) = report(&out);
    let config = check(&checks, "config");
    assert_eq!(config["ok"], false, "{config}");
    let detail = config["detail"].as_str().unwrap();
    assert!(
        detail.contains("bad.toml") && detail.contains("eot_threshold"),
        "{detail}"
    );
    assert_eq!(
        check(&checks, "handshake")["ok"],
        true,
        "the rest still runs"
    );
    // A good file with a profile: named, and it applies.
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[profile.ci]\neot_threshold = 0.8\n").unwrap();
    let out = run(
        doctor(
            "mic.conf",
            &dir,
            &[
                "--config",
                good.to_str().unwrap(),
                "--profile",
                "ci",
                "--url",
                &serve.url,
                "--jsonl",
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let (checks, _) = report(&out);
    let detail = check(&checks, "config")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("good.toml") && detail.contains("profile `ci`"),
        "{detail}"
    );
}

/// Another provider's flag is a usage error naming the flag, as for `flux file`, not a failed
/// credentials check.
#[test]
fn another_providers_flag_is_a_usage_error_not_a_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [("--region", "eu-west-1"), ("--account-id", "abc")] {
        let out = doctor(
            "mic.conf",
            &dir,
            &["--url", "ws://127.0.0.1:9", flag, value],
        )
        .env("DEEPGRAM_API_KEY", KEY)
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{flag}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "no report: {}", stdout(&out));
        assert_no_canary(&out);
    }
}
