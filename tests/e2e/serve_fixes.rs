//! What a new user tripped over in `flux serve` and around it (issue 13): `--log` appends,
//! `--listen` on every interface says so, an empty `--script` is refused, a model that is not
//! Flux and a query string in `--url` are caught before connecting. Also the shared test
//! helpers' own rules (a missing tool fails under CI).

use crate::common;

use common::*;
use predicates::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long to wait for a line the server should print at once (a loaded machine is slow).
const WAIT: Duration = Duration::from_secs(30);

/// A `flux serve` child with its stdout URL and its stderr, line by line.
struct Server {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = flux()
            .arg("serve")
            .args(args)
            .env_remove("FLUX_SERVE_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flux serve");
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .expect("read the address");
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            url: url.trim().to_string(),
            stderr,
        }
    }

    /// The first stderr line containing `needle`, or every line seen when none came.
    fn stderr_line(&self, needle: &str) -> Result<String, Vec<String>> {
        let mut seen = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(WAIT) {
            if line.contains(needle) {
                return Ok(line);
            }
            seen.push(line);
        }
        Err(seen)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `flux file beckett.wav --fast --text` against `url`.
fn stream_to(url: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = flux();
    cmd.arg("file")
        .arg(fixture("beckett.wav"))
        .args(["--url", url, "--fast", "--text"])
        .args(extra);
    run(cmd, None)
}

fn log_kinds(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("log line is JSON");
            v["kind"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn serve_log_appends_to_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.jsonl");
    let earlier = "{\"kind\":\"from an earlier run\"}\n";
    std::fs::write(&log, earlier).unwrap();
    let server = Server::start(&["--listen", "127.0.0.1:0", "--log", log.to_str().unwrap()]);
    let out = stream_to(&server.url, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with(earlier),
        "the earlier run's log was lost: {text:.300}"
    );
    assert!(
        log_kinds(&log).iter().any(|k| k == "handshake"),
        "{text:.300}"
    );
}

#[test]
fn listening_on_every_interface_warns_and_prints_a_url_that_works() {
    let server = Server::start(&["--listen", "0.0.0.0:0"]);
    // stdout: a URL this machine can use (0.0.0.0 is not an address to connect to).
    assert!(server.url.starts_with("ws://127.0.0.1:"), "{}", server.url);
    let warning = server
        .stderr_line("all interfaces")
        .unwrap_or_else(|seen| panic!("no warning about all interfaces: {seen:?}"));
    for needle in ["unencrypted", "no --api-key", "--listen 127.0.0.1:"] {
        assert!(warning.contains(needle), "{needle}: {warning}");
    }
    let out = stream_to(&server.url, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !stdout(&out).trim().is_empty(),
        "no turns over {}",
        server.url
    );

    // Loopback is not warned about.
    let local = Server::start(&["--listen", "127.0.0.1:0"]);
    let status = local.stderr_line("listening on").unwrap();
    assert!(!status.contains("warning"), "{status}");
    assert!(
        local
            .stderr
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "a loopback server printed more than its status line"
    );
}

#[test]
fn an_empty_script_is_refused_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("empty.txt", ""), ("blank.txt", "\n   \n\n")] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        flux_cmd()
            .args(["serve", "--listen", "127.0.0.1:0", "--script"])
            .arg(&path)
            // Before the fix the server started and ran until killed.
            .timeout(Duration::from_secs(20))
            .assert()
            .code(2)
            .stdout("")
            .stderr(
                predicate::str::contains(path.to_str().unwrap())
                    .and(predicate::str::contains("no turns"))
                    .and(predicate::str::contains("one turn per line"))
                    .and(predicate::str::contains("leave out --script")),
            );
    }
}

#[test]
fn a_model_that_is_not_flux_is_named_before_connecting() {
    let serve = Serve::start(&[]);
    for (model, family) in [
        ("nova-3", "Nova"),
        ("nova-2-phonecall", "Nova"),
        ("whisper-large", "Whisper"),
        ("enhanced", "Enhanced"),
        ("base", "Base"),
        ("aura-2-thalia-en", "Aura"),
        ("flux-general-xx", "not a Flux model"),
    ] {
        let out = stream_to(&serve.url, &["--model", model]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{model}: {err}");
        for needle in [
            "--model",
            &format!("`{model}`"),
            family,
            "flux-general-en and flux-general-multi",
        ] {
            assert!(err.contains(needle), "{model}: {needle}: {err}");
        }
        assert!(
            !err.contains("does not have access"),
            "{model}: reads like a server 403: {err}"
        );
    }
    // Both Flux models are accepted.
    for model in ["flux-general-en", "flux-general-multi"] {
        let out = stream_to(&serve.url, &["--model", model]);
        assert_eq!(code(&out), 0, "{model}: {}", stderr(&out));
    }
    let handshakes = serve.log_kind("handshake");
    assert_eq!(handshakes.len(), 2, "{handshakes:?}");
}

#[test]
fn stream_parameters_in_the_url_query_are_refused_before_connecting() {
    let serve = Serve::start(&[]);
    for (query, keys, flags) in [
        ("/v2/listen?model=flux-general-multi", "`model=`", "--model"),
        (
            "?eot_threshold=0.8&keyterm=refund",
            "`eot_threshold=`, `keyterm=`",
            "--eot-threshold, --keyterm",
        ),
        ("?sample_rate=8000", "`sample_rate=`", "--sample-rate"),
    ] {
        let url = format!("{}{query}", serve.url);
        let out = stream_to(&url, &[]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{query}: {err}");
        assert!(err.contains(keys), "{query}: {err}");
        assert!(
            err.contains(&format!("use {flags} instead")),
            "{query}: {err}"
        );
    }
    // Cloudflare's --url is the whole endpoint: the same rule.
    let out = stream_to(
        &format!("{}/?eot_timeout_ms=900", serve.url),
        &["--provider", "cloudflare"],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--eot-timeout-ms"),
        "{}",
        stderr(&out)
    );
    assert!(serve.log_kind("handshake").is_empty());

    // Another parameter (a proxy's own) is sent as written, before flux's; here the server is
    // the one to refuse it, as Deepgram itself would.
    let out = stream_to(&format!("{}?route=eu", serve.url), &[]);
    assert!(
        stderr(&out).contains("unknown query parameter `route`"),
        "{}",
        stderr(&out)
    );
    let handshakes = serve.log_kind("handshake");
    assert_eq!(handshakes.len(), 1, "{handshakes:?}");
    let query = handshakes[0]["query"].as_str().unwrap();
    assert!(
        query.starts_with("route=eu&model=flux-general-en&"),
        "{query}"
    );
}

#[test]
fn a_missing_tool_fails_under_ci_and_skips_elsewhere() {
    assert_eq!(missing_tool_verdict(true, true, "tmux", "x"), Ok(true));
    assert_eq!(missing_tool_verdict(true, false, "tmux", "x"), Ok(true));
    assert_eq!(missing_tool_verdict(false, false, "tmux", "x"), Ok(false));
    let err = missing_tool_verdict(false, true, "tmux", "the live-view tests").unwrap_err();
    assert!(err.contains("CI") && err.contains("tmux"), "{err}");
    // The real check, in whichever environment this runs.
    let probe = || {
        tool_available(
            "flux-no-such-tool",
            &[],
            "this deliberate probe",
            "expected",
        )
    };
    if std::env::var_os("CI").is_some() {
        assert!(std::panic::catch_unwind(probe).is_err(), "CI must fail");
    } else {
        assert!(!probe());
    }
}
