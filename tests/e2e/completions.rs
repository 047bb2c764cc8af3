//! Shell completions and the man page: the checked-in copies match what the binary
//! generates from its clap definition, and the bash script really completes in bash.

use crate::common;

use common::*;
use std::path::Path;
use std::process::Command;

const REFRESH: &str = "run scripts/gen-completions.sh to regenerate completions/ and docs/flux.1";

fn generated(args: &[&str]) -> String {
    let out = run(
        {
            let mut c = flux();
            c.args(args);
            c
        },
        None,
    );
    assert_eq!(code(&out), 0, "flux {args:?}: {}", stderr(&out));
    stdout(&out)
}

fn checked_in(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{path}: {e}; {REFRESH}"))
}

#[test]
fn checked_in_completions_and_man_page_are_current() {
    let mut stale = Vec::new();
    for (shell, path) in [
        ("bash", "completions/flux.bash"),
        ("zsh", "completions/_flux"),
        ("fish", "completions/flux.fish"),
        ("powershell", "completions/_flux.ps1"),
        ("elvish", "completions/flux.elv"),
    ] {
        if generated(&["completions", shell]) != checked_in(path) {
            stale.push(path);
        }
    }
    if generated(&["man"]) != checked_in("docs/flux.1") {
        stale.push("docs/flux.1");
    }
    assert!(stale.is_empty(), "stale: {stale:?}; {REFRESH}");
}

/// Asks bash's completion function what it offers for `words`, the last being completed.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/flux.bash");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    // Bash passes the completion function (command, word being completed, previous word).
    let program = format!(
        "source '{}' && COMP_WORDS=({}) && COMP_CWORD={cword} && _flux flux '{}' '{prev}' \
         && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    assert_eq!(bash_complete(&["flux", "fi"]), ["file"]);
    assert_eq!(bash_complete(&["flux", "file", "--jso"]), ["--jsonl"]);
    assert_eq!(
        bash_complete(&["flux", "file", "--expect-t"]),
        ["--expect-text", "--expect-turns"]
    );
    let shells = bash_complete(&["flux", "completions", ""]);
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
}

#[test]
fn man_page_describes_every_command_and_the_exit_codes() {
    let page = generated(&["man"]);
    for section in [
        "FLUX FILE",
        "FLUX LISTEN",
        "FLUX DEVICES",
        "FLUX SERVE",
        "FLUX COMPLETIONS",
        "EXIT STATUS",
        "ENVIRONMENT",
    ] {
        assert!(
            page.contains(&format!(".SH \"{section}\""))
                || page.contains(&format!(".SH {section}\n")),
            "{section}"
        );
    }
    assert!(page.contains("\\fB\\-\\-max\\-eot\\-latency\\-ms\\fR"));
    assert!(page.contains("\\fBDEEPGRAM_API_KEY\\fR"));
}
