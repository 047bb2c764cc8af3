//! Profiles end to end (issue 19): the config file's `[default]` and `[profile.NAME]` tables,
//! chosen by `--profile`/`FLUX_PROFILE` and found by `--config`/`FLUX_CONFIG` or the XDG
//! location; precedence flags > environment > profile > defaults, checked per setting through
//! `flux config` (a table) and by real runs against `flux serve`; problems named by file, line
//! and key; credentials only by reference; `--keyterm-file`.

use crate::common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One setting: its key, the profile's value (TOML), the environment variable that sets it
/// (if any) with a value, a flag with a value, and how `flux config` shows each level's value.
struct Row {
    key: &'static str,
    default: &'static str,
    profile: (&'static str, &'static str),
    env: Option<(&'static str, &'static str, &'static str)>,
    flag: (&'static [&'static str], &'static str),
}

const ROWS: &[Row] = &[
    Row {
        key: "provider",
        default: "\"deepgram\"",
        profile: ("\"cloudflare\"", "\"cloudflare\""),
        env: Some(("FLUX_PROVIDER", "deepgram", "\"deepgram\"")),
        flag: (&["--provider", "cloudflare"], "\"cloudflare\""),
    },
    Row {
        key: "url",
        default: "(not set)",
        profile: ("\"ws://127.0.0.1:1\"", "\"ws://127.0.0.1:1\""),
        env: Some(("FLUX_URL", "ws://127.0.0.1:2", "\"ws://127.0.0.1:2\"")),
        flag: (&["--url", "ws://127.0.0.1:3"], "\"ws://127.0.0.1:3\""),
    },
    Row {
        key: "model",
        default: "(not set)",
        profile: ("\"flux-general-multi\"", "\"flux-general-multi\""),
        env: None,
        flag: (&["--model", "flux-general-en"], "\"flux-general-en\""),
    },
    Row {
        key: "eot_threshold",
        default: "(not set)",
        profile: ("0.8", "0.8"),
        env: None,
        flag: (&["--eot-threshold", "0.9"], "0.9"),
    },
    Row {
        key: "keyterm",
        default: "(not set)",
        profile: ("[\"Flux\", \"Deepgram\"]", "[\"Flux\", \"Deepgram\"]"),
        env: None,
        flag: (&["--keyterm", "flux serve"], "[\"flux serve\"]"),
    },
    Row {
        key: "language_hint",
        default: "(not set)",
        profile: ("[\"en\", \"es\"]", "[\"en\", \"es\"]"),
        env: None,
        flag: (&["--language-hint", "fr"], "[\"fr\"]"),
    },
    Row {
        key: "tag",
        default: "(not set)",
        profile: ("\"ci\"", "[\"ci\"]"),
        env: None,
        flag: (&["--tag", "local"], "[\"local\"]"),
    },
    Row {
        key: "format",
        default: "(not set)",
        profile: ("\"jsonl\"", "\"jsonl\""),
        env: None,
        flag: (&["--format", "srt"], "\"srt\""),
    },
    Row {
        key: "pace",
        default: "(not set)",
        profile: ("2", "2"),
        env: None,
        flag: (&["--pace", "4"], "4"),
    },
    Row {
        key: "sample_rate",
        default: "16000",
        profile: ("8000", "8000"),
        env: None,
        flag: (&["--sample-rate", "24000"], "24000"),
    },
    Row {
        key: "numerals",
        default: "false",
        profile: ("true", "true"),
        env: None,
        flag: (&["--numerals"], "true"),
    },
    Row {
        key: "max_reconnects",
        default: "5",
        profile: ("1", "1"),
        env: None,
        flag: (&["--max-reconnects", "0"], "0"),
    },
    Row {
        key: "api_key_file",
        default: "(not set)",
        profile: ("\"/keys/profile\"", "\"/keys/profile\""),
        env: None,
        flag: (&["--api-key-file", "/keys/flag"], "\"/keys/flag\""),
    },
    Row {
        key: "keyterm_file",
        default: "(not set)",
        profile: ("\"/terms/profile.txt\"", "[\"/terms/profile.txt\"]"),
        env: None,
        flag: (
            &["--keyterm-file", "/terms/flag.txt"],
            "[\"/terms/flag.txt\"]",
        ),
    },
];

/// `flux config` with `args` and `env`; returns the `key = value  # origin` line for `key`.
fn shown(key: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = flux();
    cmd.arg("config").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    let text = stdout(&out);
    text.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
        .to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn each_setting_follows_flags_then_environment_then_profile_then_defaults() {
    let dir = tempfile::tempdir().unwrap();
    for row in ROWS {
        let key = row.key;
        // The [default] table has a value too; the profile's replaces it.
        let text = format!(
            "# team settings\n[default]\n{key} = {}\n\n[profile.p]\n{key} = {}\n",
            row.profile.0, row.profile.0
        );
        let config = write(dir.path(), &format!("{key}.toml"), &text);
        let config = config.to_str().unwrap();
        let with_profile = ["--config", config, "--profile", "p"];

        let line = shown(key, &[], &[]);
        assert_eq!(line, format!("{key} = {}  # default", row.default), "{key}");

        let line = shown(key, &with_profile, &[]);
        let place = format!("[profile.p] in {config}:6");
        assert_eq!(
            line,
            format!("{key} = {}  # {place}", row.profile.1),
            "{key}"
        );
        // Without --profile, the [default] table.
        let line = shown(key, &["--config", config], &[]);
        assert!(
            line.ends_with(&format!("# [default] in {config}:3")),
            "{line}"
        );

        let mut env: Vec<(&str, &str)> = Vec::new();
        if let Some((var, value, want)) = row.env {
            env.push((var, value));
            let line = shown(key, &with_profile, &env);
            assert_eq!(line, format!("{key} = {want}  # env {var}"), "{key}");
        }

        let mut args = with_profile.to_vec();
        args.extend(row.flag.0);
        let line = shown(key, &args, &env);
        assert_eq!(line, format!("{key} = {}  # flag", row.flag.1), "{key}");
    }
}

#[test]
fn the_credential_follows_the_same_order_and_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.toml",
        "[profile.ci]\napi_key_env = \"DG_KEY_CI\"\n",
    );
    let config = config.to_str().unwrap();
    let key_file = write(dir.path(), "key", "flagkey-CANARY-1\n");
    let args = ["--config", config, "--profile", "ci"];
    let line = shown("credential", &[], &[]);
    assert_eq!(line, "credential = (none)  # no key or token is set");
    let line = shown("credential", &args, &[]);
    assert!(
        line.contains("$DG_KEY_CI") && line.contains("NOT SET"),
        "{line}"
    );
    let line = shown("credential", &args, &[("DG_KEY_CI", "profilekey-CANARY-2")]);
    assert!(line.contains("value hidden"), "{line}");
    assert!(
        line.contains("the API key from $DG_KEY_CI (api_key_env, [profile.ci]"),
        "{line}"
    );
    assert!(
        line.ends_with(&format!("# [profile.ci] in {config}:2")),
        "{line}"
    );
    let env = [
        ("DG_KEY_CI", "profilekey-CANARY-2"),
        ("DEEPGRAM_API_KEY", "envkey-CANARY-3"),
    ];
    let line = shown("credential", &args, &env);
    assert!(line.ends_with("# env DEEPGRAM_API_KEY"), "{line}");
    let mut with_flag = args.to_vec();
    with_flag.extend(["--api-key-file", key_file.to_str().unwrap()]);
    let mut cmd = flux();
    cmd.arg("config").args(&with_flag);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd, None);
    let text = stdout(&out);
    assert!(
        text.contains("credential = \"the API key from --api-key-file"),
        "{text}"
    );
    assert!(text.contains("# also set, not used: the API key from DEEPGRAM_API_KEY"));
    assert!(!text.to_ascii_lowercase().contains("canary"), "{text}");
}

#[test]
fn a_profile_drives_a_real_run_and_flags_still_win() {
    let serve = Serve::start(&["--api-key", "servekey"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "key", "servekey\n");
    write(dir.path(), "terms.txt", "# product names\nFluxCo\n\nC#\n");
    let config_dir = dir.path().join("xdg");
    std::fs::create_dir_all(config_dir.join("flux")).unwrap();
    // Relative paths are the config file's directory's: the file works from anywhere.
    std::fs::copy(dir.path().join("key"), config_dir.join("flux/key")).unwrap();
    std::fs::copy(
        dir.path().join("terms.txt"),
        config_dir.join("flux/terms.txt"),
    )
    .unwrap();
    write(
        &config_dir.join("flux"),
        "config.toml",
        &format!(
            "[default]\nformat = \"text\"\naccount_id = \"for-cloudflare-runs\"\n\n[profile.ci]\nurl = \"{}\"\napi_key_file = \"key\"\n\
             keyterm = [\"Beckett\"]\nkeyterm_file = \"terms.txt\"\ntag = [\"nightly\"]\n\
             eot_threshold = 0.8\nformat = \"jsonl\"\nfast = true\n",
            serve.url
        ),
    );
    let wav = fixture("beckett.wav");
    let file = |extra: &[&str]| {
        let mut cmd = flux();
        cmd.arg("file")
            .arg(&wav)
            .args(extra)
            .env("XDG_CONFIG_HOME", &config_dir)
            .current_dir(dir.path().parent().unwrap());
        cmd
    };
    // FLUX_PROFILE picks the profile from the default location.
    let mut cmd = file(&[]);
    cmd.env("FLUX_PROFILE", "ci");
    let out = run(cmd, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !jsonl(&out).is_empty(),
        "the profile's jsonl: {}",
        stdout(&out)
    );
    let hs = serve.log_kind("handshake");
    let query = hs.last().unwrap()["query"].as_str().unwrap().to_string();
    for part in [
        "keyterm=Beckett&keyterm=FluxCo&keyterm=C%23",
        "tag=nightly",
        "eot_threshold=0.8",
    ] {
        assert!(query.contains(part), "{part} missing from {query}");
    }
    // The [default] table's Cloudflare account id does not stop a Deepgram run.
    // A flag beats the profile; one that conflicts with a profile value (--text against
    // format) drops it; the default table alone still applies without a profile.
    let out = run(
        file(&["--profile", "ci", "--text", "--keyterm", "Godot"]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).lines().all(|l| !l.starts_with('{')),
        "{}",
        stdout(&out)
    );
    let query = serve.log_kind("handshake").last().unwrap()["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(query.contains("keyterm=Godot&keyterm=FluxCo"), "{query}");
    assert!(!query.contains("Beckett"), "{query}");
    // Without the profile there is no URL: hosted Deepgram wants a key.
    let out = run(file(&["--fast"]), None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
}

#[test]
fn problems_in_the_file_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let wav = fixture("beckett.wav");
    for (text, needles) in [
        (
            "[default]\nmodel = \"flux-general-en\"\neot_treshold = 0.8\n",
            &[":3:", "`eot_treshold`", "unknown key", "eot_threshold"][..],
        ),
        (
            "[profile.ci]\n\npace = 5000\n",
            &[":3:", "`pace`", "[profile.ci]", "0.1 to 1000"],
        ),
        (
            "[default]\nformat = \"xml\"\n",
            &[":2:", "`format`", "possible values"],
        ),
        (
            "[default]\neot_threshold = 2.0\n",
            &[
                "`eot_threshold`",
                "[default] in",
                ":2",
                "between 0.5 and 1.0",
            ],
        ),
        (
            "[default]\napi_key = \"sk-CANARY-literal\"\n",
            &[":2:", "`api_key`", "shared and committed", "api_key_env"],
        ),
        ("[default\n", &[":1:", "not valid TOML"]),
    ] {
        let config = write(dir.path(), "bad.toml", text);
        let out = run(
            {
                let mut cmd = flux();
                cmd.arg("file").arg(&wav).arg("--config").arg(&config);
                cmd
            },
            None,
        );
        assert_eq!(code(&out), 2, "{text}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(config.to_str().unwrap()), "{err}");
        for n in needles {
            assert!(err.contains(n), "{text:?}: {n} missing from {err}");
        }
        assert!(!err.to_ascii_lowercase().contains("canary"), "{err}");
    }
    // A profile that is not in the file, and a --config that does not exist.
    let config = write(dir.path(), "ok.toml", "[profile.a]\n[profile.b]\n");
    let out = run(
        {
            let mut cmd: Command = flux();
            cmd.args(["config", "--profile", "c", "--config"])
                .arg(&config);
            cmd
        },
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no profile `c`") && stderr(&out).contains("it has: a, b"));
    let out = run(
        {
            let mut cmd = flux();
            cmd.args(["config"])
                .env("FLUX_CONFIG", dir.path().join("none.toml"));
            cmd
        },
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("none.toml"), "{}", stderr(&out));
    // Commands without settings never read the file.
    let out = run(
        {
            let mut cmd = flux();
            cmd.args(["completions", "bash"])
                .env("FLUX_CONFIG", dir.path().join("bad.toml"));
            cmd
        },
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn keyterm_files_add_to_keyterms_for_file_and_listen() {
    let serve = Serve::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let terms = write(dir.path(), "terms.txt", "# names\nAcme\n\n  Flux serve  \n");
    let out = run(
        {
            let mut cmd = flux();
            cmd.args(["listen", "--stdin", "--rate", "16000", "--fast", "--text"])
                .args(["--url", &serve.url, "--keyterm", "first", "--keyterm-file"])
                .arg(&terms);
            cmd
        },
        Some(&vec![0u8; 32000]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let query = serve.log_kind("handshake")[0]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        query.contains("keyterm=first&keyterm=Acme&keyterm=Flux+serve")
            || query.contains("keyterm=first&keyterm=Acme&keyterm=Flux%20serve"),
        "{query}"
    );
    let out = run(
        {
            let mut cmd = flux();
            cmd.arg("file")
                .arg(fixture("beckett.wav"))
                .args(["--url", &serve.url, "--keyterm-file"])
                .arg(dir.path().join("missing.txt"));
            cmd
        },
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing.txt"), "{}", stderr(&out));
}
