//! Secrets never leak: every failure path runs with canary credentials in every place a
//! credential can come from (DEEPGRAM_API_KEY, --api-key-file, CLOUDFLARE_API_TOKEN,
//! --header), and everything flux and the emulator write (stdout with its JSONL, stderr, the
//! serve log) is scanned for them.
//!
//! The canaries all contain `CANARY`; the scan looks for `canary` in any case, so even part of
//! a value (a prefix, a lowercased copy) is caught.

use crate::common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DG_KEY: &str = "dgkey-CANARY-1111";
const FILE_KEY: &str = "filekey-CANARY-2222";
const CF_TOKEN: &str = "cftoken-CANARY-3333";
const HEADER: &str = "X-Upstream-Token: hdr-CANARY-4444";
/// The emulator's own key: its log and output must not show it either.
const SERVE_KEY: &str = "servekey-CANARY-5555";

/// Fails if any canary appears in the output or in any of the files.
fn assert_clean(label: &str, out: &Output, files: &[&Path]) {
    let mut everything = format!("{}\n{}", stdout(out), stderr(out));
    for f in files {
        everything.push_str(&std::fs::read_to_string(f).unwrap_or_default());
    }
    if let Some(at) = everything.to_ascii_lowercase().find("canary") {
        let from = everything[..at]
            .char_indices()
            .rev()
            .nth(80)
            .map_or(0, |(i, _)| i);
        panic!(
            "{label}: a secret leaked near: {:?}",
            &everything[from..(at + 40).min(everything.len())]
        );
    }
}

/// `flux file WAV --url URL --fast --jsonl` with the Deepgram key in the environment and a
/// secret user header.
fn deepgram(url: &str, wav: &Path, extra: &[&str]) -> Command {
    let mut cmd = flux();
    cmd.arg("file")
        .arg(wav)
        .args(["--url", url, "--fast", "--jsonl", "--header", HEADER])
        .args(extra)
        .env("DEEPGRAM_API_KEY", DG_KEY);
    cmd
}

fn key_file(dir: &Path, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("key-{mode:o}"));
    std::fs::write(&path, format!("{FILE_KEY}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Runs `cmd`, checks its exit code (`FAILED`: any failure), and scans everything for
/// canaries.
fn check(label: &str, cmd: Command, stdin: Option<&[u8]>, exit: i32, files: &[&Path]) {
    let out = run(cmd, stdin);
    if exit == FAILED {
        assert!(code(&out) > 0, "{label}: {}", stderr(&out));
    } else if exit != ANY {
        assert_eq!(code(&out), exit, "{label}: {}", stderr(&out));
    }
    assert_clean(label, &out, files);
}

/// Any exit code but 0 (whether a server error is retried is the session's business).
const FAILED: i32 = -100;
/// Any exit code (how a stall ends depends on pacing; only the output matters here).
const ANY: i32 = -101;

#[test]
fn handshake_refusals_never_show_the_key() {
    let wav = fixture("beckett.wav");
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(dir.path(), 0o600);

    // 401: the emulator wants another key. Key from the environment, then from a file.
    let serve = Serve::start(&["--api-key", SERVE_KEY]);
    check(
        "401 env",
        deepgram(&serve.url, &wav, &[]),
        None,
        3,
        &[&serve.log],
    );
    let mut cmd = deepgram(&serve.url, &wav, &[]);
    cmd.arg("--api-key-file").arg(&file);
    check("401 file", cmd, None, 3, &[&serve.log]);
    // The right key, sent as `Authorization` by --header: the user's header replaces flux's.
    let mut cmd = deepgram(&serve.url, &wav, &[]);
    cmd.args(["--header", &format!("Authorization: Token {SERVE_KEY}")]);
    check("accepted", cmd, None, 0, &[&serve.log]);
    assert_eq!(serve.log_kind("handshake").len(), 3);

    for (status, exit) in [
        ("400", 2),
        ("402", 3),
        ("403", 3),
        ("404", 4),
        ("429", 4),
        ("500", 6),
        ("503", 6),
    ] {
        let serve = Serve::start(&["--fault", &format!("reject:status={status}")]);
        check(
            &format!("reject {status}"),
            deepgram(&serve.url, &wav, &[]),
            None,
            exit,
            &[&serve.log],
        );
    }
}

#[test]
fn failures_mid_stream_never_show_the_key() {
    let wav = fixture("beckett.wav");
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(dir.path(), 0o600);
    for (label, fault, extra, exit) in [
        (
            "fatal Error",
            "error:at=1.0,code=INTERNAL_SERVER_ERROR,description=boom",
            &["--max-reconnects", "1"][..],
            FAILED,
        ),
        (
            "fatal Error, bad request",
            "error:at=1.0,code=BAD_REQUEST,description=nope,close=1008",
            &[][..],
            FAILED,
        ),
        (
            "drop",
            "drop:at=1.0",
            &["--max-reconnects", "0"][..],
            FAILED,
        ),
        // Reconnects, replaying the open turn.
        ("drop once", "drop:at=1.0,conn=1", &[][..], 0),
        (
            "stall",
            "stall:at=1.0",
            &["--stall-timeout", "0.5", "--max-reconnects", "0"][..],
            ANY,
        ),
        ("malformed", "malformed:at=0.5", &[][..], 0),
        ("unknown type", "unknown:at=0.5", &[][..], 0),
        ("typeless", "typeless", &[][..], 0),
    ] {
        let serve = Serve::start(&["--fault", fault]);
        let mut cmd = deepgram(&serve.url, &wav, extra);
        cmd.arg("--api-key-file").arg(&file);
        check(label, cmd, None, exit, &[&serve.log]);
    }

    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    check(
        "refused",
        deepgram(
            &format!("ws://127.0.0.1:{port}"),
            &wav,
            &["--max-reconnects", "0"],
        ),
        None,
        4,
        &[],
    );
}

#[test]
fn bad_input_and_bad_flags_never_show_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[]);
    let not_wav = dir.path().join("notes.wav");
    std::fs::write(&not_wav, b"ID3\x03 not audio").unwrap();
    let full = std::fs::read(fixture("beckett.wav")).unwrap();
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &full[..full.len() / 2 + 1]).unwrap();
    let missing = dir.path().join("missing.wav");
    let logs = [serve.log.as_path()];
    check(
        "not a WAV",
        deepgram(&serve.url, &not_wav, &[]),
        None,
        5,
        &logs,
    );
    check("truncated", deepgram(&serve.url, &cut, &[]), None, 5, &logs);
    check(
        "missing",
        deepgram(&serve.url, &missing, &[]),
        None,
        5,
        &logs,
    );

    // Raw PCM on stdin: an odd byte count, then nothing at all.
    for (label, data, exit) in [("odd bytes", &[1u8, 2, 3][..], 0), ("empty", &[][..], 5)] {
        let mut cmd = flux();
        cmd.args(["listen", "--stdin", "--rate", "16000", "--url", &serve.url])
            .args(["--fast", "--jsonl", "--header", HEADER])
            .env("DEEPGRAM_API_KEY", DG_KEY);
        check(label, cmd, Some(data), exit, &logs);
    }

    for (label, extra) in [
        ("bad parameter", &["--eot-threshold", "0.1"][..]),
        ("bad --url", &["--url", "not a url"][..]),
        ("bad --sample-rate", &["--sample-rate", "1"][..]),
        ("bad --ca-cert", &["--ca-cert", "/nonexistent/ca.pem"][..]),
    ] {
        check(
            label,
            deepgram(&serve.url, &fixture("beckett.wav"), extra),
            None,
            2,
            &logs,
        );
    }
    // Plain ws:// to a network address (TEST-NET-1, refused before any connection).
    check(
        "insecure",
        deepgram("ws://192.0.2.1:8787", &fixture("beckett.wav"), &[]),
        None,
        2,
        &[],
    );
}

#[test]
fn malformed_credentials_and_headers_are_not_quoted_back() {
    let wav = fixture("beckett.wav");
    let serve = Serve::start(&[]);
    let logs = [serve.log.as_path()];
    // A key with a line break (pasted badly) cannot go into a header.
    let mut cmd = deepgram(&serve.url, &wav, &[]);
    cmd.env("DEEPGRAM_API_KEY", format!("{DG_KEY}\nsecond line"));
    check("key with newline", cmd, None, 2, &logs);
    for header in [
        // Forgot the colon: the whole text would be the "name".
        "Authorization Token hdr-CANARY-6666".to_string(),
        "hdr-CANARY-6666".to_string(),
        // A control character in the value.
        "X-Api-Key: hdr-CANARY-6666\u{1}".to_string(),
    ] {
        let mut cmd = deepgram(&serve.url, &wav, &[]);
        cmd.args(["--header", &header]);
        check(&format!("--header {header:?}"), cmd, None, 2, &logs);
    }
    assert!(serve.log_kind("handshake").is_empty());
}

#[test]
fn key_file_problems_never_show_the_key() {
    let wav = fixture("beckett.wav");
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[]);
    let logs = [serve.log.as_path()];
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    // Tests may run as root, which reads any file whatever its mode: a directory is the
    // portable unreadable file.
    let unreadable = dir.path().join("a-directory");
    std::fs::create_dir(&unreadable).unwrap();
    for (label, path) in [
        ("missing key file", dir.path().join("missing")),
        ("empty key file", empty),
        ("unreadable key file", unreadable),
    ] {
        let mut cmd = deepgram(&serve.url, &wav, &[]);
        cmd.arg("--api-key-file").arg(&path);
        // Issue 13 item 15: an unusable file named by a flag is a usage error, like every
        // other file flag (docs/exit-codes.md).
        check(label, cmd, None, 2, &logs);
    }
    // Readable by others: a warning naming the file, never its content.
    let shared = key_file(dir.path(), 0o644);
    let mut cmd = deepgram(&serve.url, &wav, &[]);
    cmd.arg("--api-key-file").arg(&shared);
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    assert_clean("shared key file", &out, &logs);
}

#[test]
fn cloudflare_paths_never_show_the_token() {
    let wav = fixture("beckett.wav");
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(dir.path(), 0o600);
    let cloudflare = |url: Option<&str>| {
        let mut cmd = flux();
        cmd.arg("file")
            .arg(&wav)
            .args(["--provider", "cloudflare", "--fast", "--jsonl"])
            .env("CLOUDFLARE_API_TOKEN", CF_TOKEN);
        if let Some(url) = url {
            cmd.args(["--url", url]);
        }
        cmd
    };
    // Hosted Cloudflare without an account id: refused before connecting anywhere.
    check("no account id", cloudflare(None), None, 3, &[]);
    // With an account id but the token unreadable: also before connecting.
    let mut cmd = cloudflare(None);
    cmd.env("CLOUDFLARE_ACCOUNT_ID", "acct")
        .arg("--api-key-file")
        .arg(dir.path().join("missing"));
    check("missing token file", cmd, None, 2, &[]);

    // The emulator's Cloudflare routes, as a Worker would expose them, with the token passed
    // by --header (flux never sends the Cloudflare token to a host that is not Cloudflare's).
    let serve = Serve::start(&["--api-key", SERVE_KEY]);
    let route = format!(
        "{}/client/v4/accounts/acct/ai/run/@cf/deepgram/flux",
        serve.url
    );
    for url in [serve.url.as_str(), route.as_str()] {
        let mut cmd = cloudflare(Some(url));
        cmd.args(["--header", &format!("Authorization: Bearer {CF_TOKEN}")]);
        check(&format!("401 {url}"), cmd, None, 3, &[&serve.log]);
        let mut cmd = cloudflare(Some(url));
        cmd.arg("--api-key-file").arg(&file);
        check(&format!("no auth {url}"), cmd, None, 3, &[&serve.log]);
    }
    let serve = Serve::start(&["--fault", "error:at=1.0,code=X,description=y"]);
    let mut cmd = cloudflare(Some(&serve.url));
    cmd.args(["--max-reconnects", "0"]);
    check("fatal Error", cmd, None, FAILED, &[&serve.log]);
}

/// Debug output (which a panic message or a future log line could include) shows no secret:
/// the parsed command line, endpoints, and the errors built from them.
#[test]
fn debug_output_shows_no_secret() {
    use clap::Parser;
    use flux::cli::{Cli, Command as Sub};
    use flux::protocol::{Dialect, Encoding, StreamParams};
    use flux::provider::{cloudflare, deepgram, parse_header};

    let cli = Cli::try_parse_from([
        "flux",
        "file",
        "x.wav",
        "--header",
        HEADER,
        "--header",
        "Authorization: Token hdr-CANARY-7777",
    ])
    .unwrap();
    let shown = format!("{cli:?}");
    assert!(!shown.to_lowercase().contains("canary"), "{shown}");
    let Sub::File(args) = &cli.command else {
        panic!("parsed as another command");
    };
    assert_eq!(args.stream.headers.len(), 2);
    // flux serve's key too, from the flag and from the environment variable alike.
    let serve = Cli::try_parse_from(["flux", "serve", "--api-key", "serve-CANARY-5150"]).unwrap();
    let shown = format!("{serve:?} {serve:#?}");
    assert!(!shown.to_lowercase().contains("canary"), "{shown}");
    let Sub::Serve(serve) = &serve.command else {
        panic!("parsed as another command");
    };
    let key = serve.api_key.as_ref().map(flux::provider::Secret::expose);
    assert_eq!(key, Some("serve-CANARY-5150"));

    let params = StreamParams {
        model: Some("flux-general-en".into()),
        encoding: Some(Encoding::Linear16),
        sample_rate: Some(16000),
        ..StreamParams::default()
    };
    assert!(params.validate(Dialect::Deepgram).is_ok());
    let mut dg = deepgram::endpoint(
        deepgram::DeepgramOptions {
            base_url: Some("wss://dg.example"),
            api_key: Some(flux::provider::Secret::new(DG_KEY)),
            allow_insecure: false,
            force_end_turn: true,
        },
        &params,
    )
    .unwrap();
    flux::provider::with_user_headers(&mut dg, vec![parse_header(HEADER).unwrap()]);
    let cf = cloudflare::endpoint(
        cloudflare::CloudflareOptions {
            url: None,
            gateway: Some("gw"),
            account_id: Some("acct".into()),
            api_token: Some(flux::provider::Secret::new(CF_TOKEN)),
            allow_insecure: false,
        },
        &StreamParams::default(),
    )
    .unwrap();
    let shown = format!("{dg:?} {cf:?} {dg:#?}");
    assert!(!shown.to_lowercase().contains("canary"), "{shown}");
    // The values are there, for the wire.
    assert!(dg.headers.iter().any(|(_, v)| v.expose().contains(DG_KEY)));

    // A panic carrying such a value prints only the mask.
    let caught = std::panic::catch_unwind(|| panic!("while connecting: {:?}", dg.headers));
    let message = caught.unwrap_err();
    let text = message.downcast_ref::<String>().unwrap();
    assert!(text.contains("***") && !text.to_lowercase().contains("canary"));
}
