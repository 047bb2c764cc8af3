//! `--provider sagemaker` end to end: the built binary, through the official AWS SDK, over
//! real TLS and HTTP/2 to `flux serve --sagemaker-listen`, whose front end bridges SageMaker's
//! event stream to the same turn engine the Deepgram dialect uses (issue 15).
//!
//! Every run carries canary AWS credentials (access key id, secret key, session token); the
//! outputs and the server's log are scanned for them, as tests/e2e/security.rs does for the
//! other providers. The AWS environment is cleared so nothing reaches a real AWS account,
//! instance metadata or a developer's profile.

use crate::common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const ACCESS_KEY: &str = "AKIDCANARY0000";
const SECRET_KEY: &str = "secret-CANARY-6666";
const SESSION_TOKEN: &str = "token-CANARY-7777";

/// `flux serve` with its SageMaker front end, on free loopback ports.
struct SmServe {
    child: Child,
    ws_url: String,
    https_url: String,
    ca: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl SmServe {
    fn start(args: &[&str]) -> SmServe {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.jsonl");
        let ca = dir.path().join("ca.pem");
        let mut child = flux()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sagemaker-listen",
                "127.0.0.1:0",
            ])
            .arg("--sagemaker-ca")
            .arg(&ca)
            .arg("--log")
            .arg(&log)
            .arg("--script")
            .arg(fixture("two_cities.txt"))
            .args(args)
            .env_remove("FLUX_SERVE_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn flux serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ws_url = lines.next().unwrap().unwrap();
        let https_url = lines.next().unwrap().unwrap();
        assert!(ws_url.starts_with("ws://127.0.0.1:"), "{ws_url}");
        assert!(https_url.starts_with("https://127.0.0.1:"), "{https_url}");
        SmServe {
            child,
            ws_url,
            https_url,
            ca,
            log,
            dir,
        }
    }

    fn log_kind(&self, kind: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l["kind"] == kind)
            .collect()
    }

    /// The control messages the container received on connection `conn` (1-based).
    fn controls(&self, conn: u64) -> Vec<String> {
        self.log_kind("control")
            .iter()
            .filter(|l| l["conn"] == conn)
            .filter_map(|l| l["message"]["type"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for SmServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `flux` with no AWS setting from the developer's environment, no instance metadata, and
/// profile files that do not exist.
fn aws_clean(dir: &Path) -> Command {
    let mut c = flux();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        c.env_remove(var);
    }
    c.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"));
    c
}

/// `flux file WAV --provider sagemaker` to the front end, trusting its CA, with canary keys;
/// `--fast` unless `extra` paces it.
fn sm_file(serve: &SmServe, wav: &Path, extra: &[&str]) -> Command {
    sm_file_trusting(serve, wav, extra, true)
}

fn sm_file_trusting(serve: &SmServe, wav: &Path, extra: &[&str], trust: bool) -> Command {
    let mut c = aws_clean(serve.dir.path());
    c.arg("file")
        .arg(wav)
        .args([
            "--provider",
            "sagemaker",
            "--endpoint",
            "my-flux",
            "--region",
            "us-east-2",
        ])
        .args(["--url", &serve.https_url]);
    if !extra.contains(&"--pace") {
        c.arg("--fast");
    }
    if trust {
        c.arg("--ca-cert").arg(&serve.ca);
    }
    c.args(extra)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    c
}

/// No canary in stdout, stderr or the server's log.
fn assert_clean(label: &str, out: &Output, serve: &SmServe) {
    let log = std::fs::read_to_string(&serve.log).unwrap_or_default();
    let all = format!("{}\n{}\n{log}", stdout(out), stderr(out)).to_ascii_lowercase();
    assert!(
        !all.contains("canary"),
        "{label}: an AWS credential leaked:\n{all}"
    );
}

fn end_of_turn_texts(out: &Output) -> Vec<String> {
    jsonl(out)
        .iter()
        .filter(|e| e["type"] == "TurnInfo" && e["event"] == "EndOfTurn")
        .map(|e| e["transcript"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sagemaker_gets_the_same_turns_as_the_deepgram_dialect_and_ends_by_silence() {
    let serve = SmServe::start(&[]);
    let wav = fixture("two_cities.wav");
    let mut reference = aws_clean(serve.dir.path());
    reference
        .arg("file")
        .arg(&wav)
        .args(["--url", &serve.ws_url, "--fast", "--jsonl"]);
    let reference = run(reference, None);
    assert_eq!(code(&reference), 0, "{}", stderr(&reference));
    let expected = end_of_turn_texts(&reference);
    assert!(expected.len() >= 10, "{expected:?}");

    let out = run(sm_file(&serve, &wav, &["--jsonl"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        end_of_turn_texts(&out),
        expected,
        "the last turn must not be lost"
    );
    assert_clean("jsonl", &out, &serve);

    // The container saw SageMaker's path and the Flux query; the default ending is silence
    // then CloseStream (no ForceEndTurn, no Configure).
    let handshakes = serve.log_kind("handshake");
    let sm = handshakes.last().unwrap();
    assert_eq!(sm["path"], "/v2/listen");
    let query = sm["query"].as_str().unwrap();
    assert!(
        query.contains("encoding=linear16") && query.contains("sample_rate=16000"),
        "{query}"
    );
    assert_eq!(
        serve.controls(1),
        ["ForceEndTurn", "CloseStream"],
        "the Deepgram run"
    );
    assert_eq!(serve.controls(2), ["CloseStream"], "the SageMaker run");
    assert!(stderr(&out).contains("sagemaker"), "{}", stderr(&out));
}

#[test]
fn text_output_and_assertions_work_unchanged() {
    let serve = SmServe::start(&[]);
    let wav = fixture("two_cities.wav");
    let expect = fixture("two_cities.txt");
    let expect = expect.to_str().unwrap();
    let out = run(
        sm_file(&serve, &wav, &["--text", "--expect-file", expect]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("It was the best of times"),
        "{}",
        stdout(&out)
    );
    let wrong = run(
        sm_file(
            &serve,
            &wav,
            &["--text", "--expect-text", "nothing like the script"],
        ),
        None,
    );
    assert_eq!(code(&wrong), 7, "{}", stderr(&wrong));
    assert_clean("text", &out, &serve);
}

#[test]
fn opting_in_sends_force_end_turn() {
    let serve = SmServe::start(&[]);
    let out = run(
        sm_file(
            &serve,
            &fixture("two_cities.wav"),
            &["--text", "--sagemaker-controls"],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(serve.controls(1), ["ForceEndTurn", "CloseStream"]);
}

#[test]
fn a_dropped_stream_reconnects_and_replays_like_the_deepgram_dialect() {
    // The emulator's script starts again on each connection, so the reference is the same
    // drop over the Deepgram dialect: SageMaker's stream must give exactly its events.
    let wav = fixture("two_cities.wav");
    let fault = ["--fault", "drop:at=12,conn=1"];
    let ws = SmServe::start(&fault);
    let mut reference = aws_clean(ws.dir.path());
    reference.arg("file").arg(&wav).args([
        "--url",
        &ws.ws_url,
        "--fast",
        "--jsonl",
        "--no-force-end-turn",
    ]);
    let reference = run(reference, None);
    assert_eq!(code(&reference), 0, "{}", stderr(&reference));
    let dropping = SmServe::start(&fault);
    let out = run(sm_file(&dropping, &wav, &["--jsonl"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        dropping.log_kind("handshake").len(),
        2,
        "one drop, one reconnect"
    );
    assert_eq!(end_of_turn_texts(&out), end_of_turn_texts(&reference));
    let turns = |o: &Output| -> Vec<(u64, String)> {
        jsonl(o)
            .iter()
            .filter(|e| e["type"] == "TurnInfo" && e["event"] == "EndOfTurn")
            .map(|e| {
                (
                    e["turn_index"].as_u64().unwrap(),
                    e["audio_window_end"].to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        turns(&out),
        turns(&reference),
        "indices and times continue as over WebSocket"
    );
    let indices: Vec<u64> = turns(&out).iter().map(|t| t.0).collect();
    assert_eq!(indices, (0..indices.len() as u64).collect::<Vec<_>>());
    // The replayed audio reached the container on the second connection.
    assert!(dropping.log_kind("audio").iter().any(|a| a["conn"] == 2));
    // The container's drop reached flux as SageMaker's retryable platform fault, after
    // every answer the container had given.
    assert!(
        stderr(&out).contains("InternalStreamFailure"),
        "{}",
        stderr(&out)
    );
    assert_clean("drop", &out, &dropping);
}

#[test]
fn a_capped_stream_moves_on_with_a_continuous_timeline() {
    // Each stream ends after 15 s of audio (SageMaker's 30-minute cap, shortened); flux goes
    // on in the next stream, replaying the open turn. ForceEndTurn ends the last turn, so
    // the last stream's length does not depend on how much silence a loaded machine sends
    // before the turn's end arrives (with silence, the cap could land in the closing).
    let serve = SmServe::start(&["--sagemaker-session-cap", "15"]);
    let out = run(
        sm_file(
            &serve,
            &fixture("two_cities.wav"),
            &["--jsonl", "--sagemaker-controls"],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        serve.log_kind("handshake").len() >= 3,
        "44 s of audio in 15 s streams"
    );
    let turns: Vec<(u64, f64)> = jsonl(&out)
        .iter()
        .filter(|e| e["type"] == "TurnInfo" && e["event"] == "EndOfTurn")
        .map(|e| {
            (
                e["turn_index"].as_u64().unwrap(),
                e["audio_window_end"].as_f64().unwrap(),
            )
        })
        .collect();
    let indices: Vec<u64> = turns.iter().map(|t| t.0).collect();
    assert_eq!(indices, (0..indices.len() as u64).collect::<Vec<_>>());
    assert!(
        turns.windows(2).all(|w| w[0].1 < w[1].1),
        "times only move forward: {turns:?}"
    );
    assert!(
        turns.last().unwrap().1 > 40.0,
        "the audio's last turn is there: {turns:?}"
    );
    assert_clean("cap", &out, &serve);
}

#[test]
fn refused_credentials_are_exit_3_naming_the_iam_action() {
    let (out, serve) = refused_run(&["--api-key", "AKIDSOMEONEELSE"], &[]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_says(
        &out,
        &[
            "403",
            "UnrecognizedClientException",
            "sagemaker:InvokeEndpointWithBidirectionalStream",
        ],
    );
    assert_clean("refused", &out, &serve);
}

#[test]
fn missing_credentials_are_exit_3_before_anything_is_sent() {
    let serve = SmServe::start(&[]);
    let mut cmd = aws_clean(serve.dir.path());
    cmd.arg("file")
        .arg(fixture("two_cities.wav"))
        .args([
            "--provider",
            "sagemaker",
            "--endpoint",
            "my-flux",
            "--region",
            "us-east-2",
        ])
        .args(["--url", &serve.https_url, "--fast", "--text"])
        .arg("--ca-cert")
        .arg(&serve.ca);
    let out = run(cmd, None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("AWS_ACCESS_KEY_ID"),
        "{}",
        stderr(&out)
    );
    assert!(serve.log_kind("handshake").is_empty());
}

#[test]
fn a_container_refusal_is_sagemakers_424_with_what_to_check() {
    let (out, serve) = refused_run(&["--fault", "reject:status=400"], &[]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_says(
        &out,
        &[
            "424",
            "Failed to establish WebSocket connection",
            "listen_v2",
        ],
    );
    assert_clean("424", &out, &serve);
}

#[test]
fn an_untrusted_certificate_is_a_tls_error_pointing_at_ca_cert() {
    let serve = SmServe::start(&[]);
    let cmd = sm_file_trusting(&serve, &fixture("two_cities.wav"), &["--text"], false);
    let out = run(cmd, None);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("--ca-cert"), "{}", stderr(&out));
    assert_clean("tls", &out, &serve);
}

#[test]
fn malformed_endpoint_overrides_are_usage_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    for (env, url) in [
        (Some("not a url"), None),
        (Some("http://127.0.0.1:1"), None),
        (None, Some("https://127.0.0.1:1/some/path")),
        (None, Some("ftp://x")),
    ] {
        let mut cmd = aws_clean(dir.path());
        cmd.arg("file").arg(fixture("two_cities.wav")).args([
            "--provider",
            "sagemaker",
            "--endpoint",
            "my-flux",
            "--region",
            "us-east-2",
        ]);
        if let Some(e) = env {
            cmd.env("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2", e);
        }
        if let Some(u) = url {
            cmd.args(["--url", u]);
        }
        let out = run(cmd, None);
        assert_eq!(code(&out), 2, "{env:?} {url:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("https://HOST[:PORT]"), "{err}");
    }
}

#[test]
fn sagemaker_flags_need_their_provider_and_an_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut no_name = aws_clean(dir.path());
    no_name.arg("file").arg(fixture("two_cities.wav")).args([
        "--provider",
        "sagemaker",
        "--region",
        "us-east-2",
    ]);
    let out = run(no_name, None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--endpoint NAME"), "{}", stderr(&out));
    let mut no_region = aws_clean(dir.path());
    no_region.arg("file").arg(fixture("two_cities.wav")).args([
        "--provider",
        "sagemaker",
        "--endpoint",
        "x",
    ]);
    let out = run(no_region, None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--region"), "{}", stderr(&out));
    let mut elsewhere = aws_clean(dir.path());
    elsewhere.arg("file").arg(fixture("two_cities.wav")).args([
        "--endpoint",
        "x",
        "--url",
        "ws://127.0.0.1:1",
    ]);
    let out = run(elsewhere, None);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--endpoint is for --provider sagemaker"),
        "{}",
        stderr(&out)
    );
}

/// `(turn_index, audio_window_end)` of every EndOfTurn: where each turn ends in the audio,
/// which does not depend on how the stream was split into connections.
fn turn_ends(out: &Output) -> Vec<(u64, String)> {
    jsonl(out)
        .iter()
        .filter(|e| e["type"] == "TurnInfo" && e["event"] == "EndOfTurn")
        .map(|e| {
            (
                e["turn_index"].as_u64().unwrap(),
                e["audio_window_end"].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_rotation_before_the_cap_carries_on_with_nothing_lost() {
    // SageMaker's 30-minute cap, seen mid-file: flux gives each stream 4 s of wall time
    // (FLUX_SAGEMAKER_ROTATE_AFTER, for tests) while the file plays at 4x, so it moves to a
    // new stream about every 16 s of audio. Every turn must come out once, where it ends in
    // the audio, numbered as in one stream. A rotation is planned, not a failure: it happens
    // with reconnecting disabled, at once (no backoff).
    //
    // The trigger is wall time, as SageMaker's cap is; the assertions are not.
    let serve = SmServe::start(&[]);
    let wav = fixture("two_cities.wav");
    let mut reference = aws_clean(serve.dir.path());
    reference
        .arg("file")
        .arg(&wav)
        .args(["--url", &serve.ws_url, "--fast", "--jsonl"]);
    let reference = run(reference, None);
    assert_eq!(code(&reference), 0, "{}", stderr(&reference));

    let mut cmd = sm_file(
        &serve,
        &wav,
        &["--jsonl", "--pace", "4", "--max-reconnects", "0"],
    );
    cmd.env("FLUX_SAGEMAKER_ROTATE_AFTER", "4");
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let moves = jsonl(&out)
        .into_iter()
        .filter(|e| e["type"] == "flux.reconnecting")
        .collect::<Vec<_>>();
    assert!(
        moves
            .iter()
            .all(|e| e["planned"] == true && e["delay_ms"] == 0 && e["attempt"] == 0),
        "{moves:?}"
    );
    let rotations = moves
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert!(rotations.len() >= 2, "{rotations:?}");
    assert!(
        rotations
            .iter()
            .all(|r| r.contains("moving to the next stream after 4s, before the cap")),
        "{rotations:?}"
    );
    assert_eq!(serve.log_kind("handshake").len(), 2 + rotations.len());
    assert_eq!(
        turn_ends(&out),
        turn_ends(&reference),
        "every turn once, at its place in the audio, numbered as in one stream"
    );
    let summary = jsonl(&out)
        .into_iter()
        .find(|e| e["type"] == "flux.summary")
        .unwrap();
    assert_eq!(summary["unconfirmed_turns"], 0);
    assert_clean("rotation", &out, &serve);

    // The knob takes only shorter-than-default values, as a usage error otherwise.
    for bad in ["0", "3600", "soon"] {
        let mut cmd = sm_file(&serve, &wav, &["--text"]);
        cmd.env("FLUX_SAGEMAKER_ROTATE_AFTER", bad);
        let out = run(cmd, None);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("FLUX_SAGEMAKER_ROTATE_AFTER"),
            "{}",
            stderr(&out)
        );
    }
}

/// `flux file … --text` against a front end with these serve arguments: its output.
fn refused_run(serve_args: &[&str], extra: &[&str]) -> (Output, SmServe) {
    let serve = SmServe::start(serve_args);
    let mut args = if extra.contains(&"--jsonl") {
        vec![]
    } else {
        vec!["--text"]
    };
    args.extend_from_slice(extra);
    let out = run(sm_file(&serve, &fixture("two_cities.wav"), &args), None);
    (out, serve)
}

fn assert_says(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    for needle in needles {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn expired_credentials_are_exit_3_saying_to_refresh_them() {
    let (out, serve) = refused_run(&["--fault", "sagemaker-expired-token"], &[]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_says(
        &out,
        &[
            "403",
            "ExpiredTokenException",
            "the AWS credentials have expired",
            "aws sso login",
        ],
    );
    assert!(
        serve.log_kind("handshake").is_empty(),
        "nothing reached the container"
    );
    assert_clean("expired", &out, &serve);
}

#[test]
fn an_unknown_endpoint_is_exit_2_naming_the_endpoint_and_region() {
    let (out, serve) = refused_run(&["--fault", "sagemaker-unknown-endpoint"], &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_says(
        &out,
        &[
            "400",
            "ValidationError",
            "Endpoint my-flux of account 000000000000 not found",
            "check --endpoint `my-flux` and --region `us-east-2`",
            "aws sagemaker list-endpoints --region us-east-2",
        ],
    );
    assert_clean("unknown endpoint", &out, &serve);
}

#[test]
fn access_denied_is_exit_3_naming_the_iam_action_and_the_endpoint() {
    let (out, serve) = refused_run(&["--fault", "sagemaker-access-denied"], &[]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_says(
        &out,
        &[
            "403",
            "AccessDeniedException",
            "sagemaker:InvokeEndpointWithBidirectionalStream",
            "arn:aws:sagemaker:us-east-2:ACCOUNT:endpoint/my-flux",
        ],
    );
    assert_clean("denied", &out, &serve);
}

#[test]
fn a_request_that_is_never_answered_times_out_with_exit_4() {
    let (out, serve) = refused_run(&["--fault", "sagemaker-no-answer"], &[]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_says(&out, &["timed out after 15s connecting to 127.0.0.1:"]);
    assert!(serve.log_kind("handshake").is_empty());
    assert_clean("no answer", &out, &serve);
}

#[test]
fn a_stream_without_connected_is_given_up_with_exit_4() {
    // The container answers everything 12 s late, so Flux's `Connected` does not come within
    // the 10 s flux waits for it.
    let (out, serve) = refused_run(&["--fault", "delay:ms=12000"], &["--max-reconnects", "0"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_says(
        &out,
        &[
            "sent no Connected message within 10s",
            "reconnecting is disabled",
        ],
    );
    assert_clean("no connected", &out, &serve);
}

#[test]
fn a_model_stream_error_is_reported_with_its_code_or_retried_when_retryable() {
    // The container fails with a code flux cannot fix by retrying: exit 6 with its words and
    // SageMaker's ModelStreamError code.
    let (out, serve) = refused_run(
        &[
            "--fault",
            "error:at=6,code=MODEL_BROKE,close=4001,description=the model gave up",
        ],
        &[],
    );
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_says(
        &out,
        &[
            "MODEL_BROKE",
            "the model gave up",
            "closed with code 4001 (SageMaker ModelStreamError 4001",
        ],
    );
    assert_clean("model error", &out, &serve);

    // A server-side failure (close 1011) is retried: the second stream finishes the file.
    let (out, serve) = refused_run(&["--fault", "error:at=6,conn=1"], &["--jsonl"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_says(&out, &["ModelStreamError 1011", "reconnecting"]);
    assert_eq!(serve.log_kind("handshake").len(), 2);
    let texts = end_of_turn_texts(&out);
    assert!(texts.len() >= 10, "{texts:?}");
    assert_clean("retried", &out, &serve);
}
