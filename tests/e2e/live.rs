//! End-to-end tests of the live terminal view: the built binary runs inside tmux (a real
//! terminal emulator) against a `flux serve` with a scripted conversation, and the tests read
//! the screen with `capture-pane`. They wait for what should appear (polling, generous
//! timeouts) rather than sleeping, so a loaded machine only makes them slower.
//!
//! Needs tmux (scripts/setup-debian.sh installs it): without it these tests fail under CI and
//! are skipped elsewhere, with a note on stderr (`common::tmux_available`).

use crate::common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a slow CI machine; the tests normally take a few seconds.
const WAIT: Duration = Duration::from_secs(40);

/// The conversation flux serve plays over beckett.wav: four turns (the fixture has four
/// stretches of speech). The first is long, to wrap on narrow screens.
const SCRIPT: [&str; 4] = [
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november",
    "second turn is here",
    "third one",
    "fourth",
];

fn serve_with_script(dir: &Path) -> Serve {
    let path = dir.join("script.txt");
    std::fs::write(&path, SCRIPT.join("\n")).unwrap();
    Serve::start(&["--script", path.to_str().unwrap()])
}

/// One tmux server (its own socket) with one window running a shell script.
struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Runs `body` (shell) in a `cols`×`rows` window. After it, the script prints the exit
    /// status of the last command and the terminal's echo/icanon modes, then idles so the
    /// screen can still be read.
    fn start(name: &str, cols: u16, rows: u16, body: &str) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(
            &script,
            format!(
                "unset DEEPGRAM_API_KEY FLUX_URL NO_COLOR\n\
                 export LANG=C.UTF-8 LC_ALL=C.UTF-8\n\
                 cd '{dir}'\n\
                 {body}\n\
                 echo \"EXIT=$?\"\n\
                 echo \"TTY=$(stty -a | tr ' ;' '\\n\\n' | grep -x -e '-*echo' -e '-*icanon' | tr '\\n' ' ')\"\n\
                 exec sleep 600\n",
                dir = dir.path().display()
            ),
        )
        .unwrap();
        let socket = format!("flux-live-{}-{name}", std::process::id());
        let t = Tmux { socket, dir };
        t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            &format!("sh '{}'", script.display()),
        ]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-u")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible screen, one string per row (trailing spaces trimmed by tmux).
    fn screen(&self) -> Vec<String> {
        self.tmux(&["capture-pane", "-p", "-t", "main"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The visible screen with wrapped rows joined into their logical lines: rows the
    /// terminal wrapped, and the rows flux wraps itself, which hang under the text (they start
    /// with spaces).
    fn joined(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for row in self
            .tmux(&["capture-pane", "-p", "-J", "-t", "main"])
            .lines()
        {
            let row = row.trim_end();
            match lines.last_mut() {
                Some(last) if row.starts_with(' ') && !last.is_empty() => {
                    last.push(' ');
                    last.push_str(row.trim_start());
                }
                _ => lines.push(row.to_string()),
            }
        }
        lines
    }

    /// The visible screen with its colours and attributes as escape sequences.
    fn with_escapes(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e", "-t", "main"])
    }

    /// Polls the screen until `ready` holds; fails with the last screen after [`WAIT`].
    fn wait_for(&self, what: &str, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; screen:\n{}",
                    screen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    fn wait_exit(&self) -> (String, String) {
        let screen = self.wait_for("the command to end", |s| {
            s.iter().any(|l| l.starts_with("TTY="))
        });
        let find = |p: &str| {
            screen
                .iter()
                .find(|l| l.starts_with(p))
                .cloned()
                .unwrap_or_default()
        };
        (find("EXIT="), find("TTY="))
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn resize(&self, cols: u16, rows: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            "main",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

/// `flux file beckett.wav` against `serve`, as a shell command line.
fn flux_file(serve: &Serve, args: &str) -> String {
    format!(
        "'{BIN}' file '{}' --url '{}' {args}",
        fixture("beckett.wav").display(),
        serve.url
    )
}

/// The terminal is back in cooked mode with echo on.
fn assert_sane(tty: &str) {
    let modes: Vec<&str> = tty.trim_start_matches("TTY=").split_whitespace().collect();
    assert!(
        modes.contains(&"echo") && modes.contains(&"icanon"),
        "terminal not restored: {tty:?}"
    );
}

fn is_status(line: &str) -> bool {
    [
        "[connecting]",
        "[connected]",
        "[streaming]",
        "[finishing",
        "[reconnecting",
        "[error]",
    ]
    .iter()
    .any(|s| line.starts_with(s))
}

fn last_non_empty(screen: &[String]) -> &str {
    screen
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(String::as_str)
        .unwrap_or("")
}

/// `#N 0:00.3-0:04.1  text  (0.70 model)`: a finished turn's permanent line, with its
/// EndOfTurn confidence and `trigger`.
fn finished(lines: &[String], n: usize, text: &str, trigger: &str) -> bool {
    lines.iter().any(|l| {
        // A wrapped line joined again may have one space before the meta where it had two.
        let Some((head, meta)) = l.rsplit_once(" (") else {
            return false;
        };
        let head = head.trim_end();
        let meta = meta.strip_suffix(')').unwrap_or("");
        let (confidence, got_trigger) = meta.split_once(' ').unwrap_or(("", ""));
        l.starts_with(&format!("#{n} "))
            && head.ends_with(&format!("  {text}"))
            && confidence
                .parse::<f64>()
                .is_ok_and(|c| (0.0..=1.0).contains(&c))
            && confidence.len() == 4
            && got_trigger == trigger
    })
}

#[test]
fn turns_appear_live_at_two_widths_and_across_a_resize() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(dir.path());
    let t = Tmux::start(
        "resize",
        80,
        24,
        &format!("NO_COLOR=1 {}", flux_file(&serve, "--pace 1")),
    );

    // The open turn updates in place, under a status line, before it is finished.
    let screen = t.wait_for("the open first turn", |s| {
        s.iter()
            .any(|l| l.starts_with("#1 ") && l.contains(" [speaking] alpha bravo"))
    });
    assert!(
        !finished(&screen, 1, SCRIPT[0], "model"),
        "{}",
        screen.join("\n")
    );
    let status = last_non_empty(&screen);
    assert!(
        is_status(status) && status.contains("flux-general-en") && status.contains("0:10.0"),
        "status line: {status:?}"
    );
    assert!(status.chars().count() < 80);

    // The finished turn is a permanent line with its span, confidence and trigger.
    t.wait_for("the first turn to finish", |_| {
        finished(&t.joined(), 1, SCRIPT[0], "model")
    });

    // Narrower: everything is repainted at the new width, with no debris of the old layout.
    t.resize(40, 24);
    let screen = t.wait_for("the second turn at 40 columns", |s| {
        is_status(last_non_empty(s)) && finished(&t.joined(), 2, SCRIPT[1], "model")
    });
    let text = screen.join("\n");
    for line in &screen {
        assert!(
            line.chars().count() <= 40,
            "row wider than the screen:\n{text}"
        );
    }
    let status_rows = screen.iter().filter(|l| l.contains('·')).count();
    assert_eq!(status_rows, 1, "one status line only:\n{text}");
    let open_rows = screen.iter().filter(|l| l.contains(" [speaking] ")).count();
    assert!(open_rows <= 1, "one open turn only:\n{text}");
    assert!(finished(&t.joined(), 1, SCRIPT[0], "model"), "{text}");

    // The end: every turn printed once, the region gone, the terminal given back.
    let (exit, tty) = t.wait_exit();
    assert_eq!(exit, "EXIT=0");
    assert_sane(&tty);
    let lines = t.joined();
    for (i, turn) in SCRIPT.iter().enumerate().skip(1) {
        let count = lines
            .iter()
            .filter(|l| l.starts_with(&format!("#{} ", i + 1)))
            .count();
        assert_eq!(count, 1, "turn {} once:\n{}", i + 1, lines.join("\n"));
        assert!(
            finished(&lines, i + 1, turn, "model"),
            "{}",
            lines.join("\n")
        );
    }
    assert!(!lines.iter().any(|l| is_status(l)), "{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.starts_with("flux: 4 turn(s)")));
    // NO_COLOR: no colours or attributes were drawn.
    assert!(!t.with_escapes().contains("\x1b["), "escapes with NO_COLOR");
}

#[test]
fn keys_force_the_end_of_a_turn_and_ctrl_c_finishes_cleanly() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(dir.path());
    let t = Tmux::start("keys", 50, 20, &flux_file(&serve, "--pace 1"));

    // At 50 columns the growing first turn wraps under its text (hanging indent).
    let screen = t.wait_for("the open turn to wrap", |s| {
        s.windows(2).any(|w| {
            w[0].starts_with("#1 ")
                && w[0].contains(" [speaking] alpha")
                && w[1].len() > 21
                && w[1].starts_with(&" ".repeat(21))
                && !w[1][21..].starts_with(' ')
        })
    });
    assert!(is_status(last_non_empty(&screen)), "{}", screen.join("\n"));
    // Colour is on (no NO_COLOR).
    assert!(t.with_escapes().contains("\x1b["), "no colour drawn");

    // `e` ends the turn now: EndOfTurn with trigger manual, before the script's end.
    t.keys(&["e"]);
    let screen = t.wait_for("the turn to end by ForceEndTurn", |_| {
        t.joined()
            .iter()
            .any(|l| l.starts_with("#1 ") && l.ends_with(" manual)"))
    });
    let joined = t.joined();
    let line = joined
        .iter()
        .find(|l| l.starts_with("#1 "))
        .unwrap_or_else(|| panic!("{}", screen.join("\n")));
    assert!(line.contains("  alpha bravo"), "{line}");

    // `+` raises eot_threshold by 0.05 with a Configure; the server's answer shows in the view.
    t.keys(&["+"]);
    t.wait_for("the Configure to be applied", |_| {
        t.joined()
            .iter()
            .any(|l| l.contains("configuration applied: eot_threshold 0.75"))
    });

    // Ctrl-C (a key in raw mode) finishes the stream like end of input: exit 0.
    t.keys(&["C-c"]);
    let (exit, tty) = t.wait_exit();
    assert_eq!(exit, "EXIT=0", "{}", t.screen().join("\n"));
    assert_sane(&tty);
    assert!(!t.screen().iter().any(|l| is_status(l)));
    assert_eq!(
        t.tmux(&["display", "-p", "-t", "main", "#{cursor_flag}"])
            .trim(),
        "1"
    );
}

#[test]
fn second_ctrl_c_exits_130_with_the_terminal_restored() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(dir.path());
    let t = Tmux::start("abort", 80, 24, &flux_file(&serve, "--pace 1"));
    t.wait_for("the open turn", |s| {
        s.iter().any(|l| l.contains(" [speaking] "))
    });
    // Both in one write, so flux reads them together: the second arrives while finishing.
    t.keys(&["C-c", "C-c"]);
    let (exit, tty) = t.wait_exit();
    assert_eq!(exit, "EXIT=130", "{}", t.screen().join("\n"));
    assert_sane(&tty);
    let screen = t.screen();
    assert!(
        !screen.iter().any(|l| is_status(l)),
        "{}",
        screen.join("\n")
    );
    assert_eq!(
        t.tmux(&["display", "-p", "-t", "main", "#{cursor_flag}"])
            .trim(),
        "1"
    );
}

#[test]
fn pipes_and_dumb_terminals_get_plain_text_and_the_bar_stays_on_stderr() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(dir.path());

    // Outside any terminal: the default format is text, with no escape codes.
    let out = run(file_cmd(&serve, &fixture("beckett.wav"), &[]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b));
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), SCRIPT);

    // stdout to a file, stderr on the terminal: text in the file, the bar on the terminal.
    let t = Tmux::start(
        "pipe",
        80,
        24,
        &format!(
            "{} > out.txt\n{} --text\nTERM=dumb {} --fast",
            flux_file(&serve, "--pace 4"),
            flux_file(&serve, "--pace 4"),
            flux_file(&serve, "")
        ),
    );
    t.wait_for("the progress bar", |s| {
        s.iter().any(|l| l.contains(" / 0:10.0"))
    });
    let (exit, tty) = t.wait_exit();
    assert_eq!(exit, "EXIT=0", "{}", t.screen().join("\n"));
    assert_sane(&tty);
    let file = std::fs::read(t.path("out.txt")).unwrap();
    assert!(!file.contains(&0x1b), "escape codes in piped output");
    assert_eq!(
        String::from_utf8_lossy(&file).lines().collect::<Vec<_>>(),
        SCRIPT
    );

    // Turns printed to the terminal while the bar ran are whole lines; no bar is left; with
    // TERM=dumb the same turns come as plain text too. So every turn shows exactly twice.
    let screen = t.joined();
    let text = screen.join("\n");
    for turn in SCRIPT {
        let n = screen.iter().filter(|l| l.as_str() == turn).count();
        assert_eq!(n, 2, "{turn:?} as a whole line twice:\n{text}");
    }
    assert!(
        !text.contains(" / 0:10.0"),
        "progress bar left behind:\n{text}"
    );
    assert!(!screen.iter().any(|l| is_status(l)), "{text}");
    assert_eq!(
        screen
            .iter()
            .filter(|l| l.starts_with("flux: 4 turn(s)"))
            .count(),
        3,
        "{text}"
    );
}

/// Issue 13: the progress bar is cleared after Ctrl-C (docs/live.md), both when the stream
/// finishes (one Ctrl-C) and when flux quits at once (a second one while finishing, here
/// against a server that stops answering so the finish takes its time).
#[test]
fn ctrl_c_leaves_no_progress_bar_behind() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(dir.path());
    let stalled = Serve::start(&["--fault", "stall:at=1"]);
    for (name, server, twice) in [("baronce", &serve, false), ("bartwice", &stalled, true)] {
        // Ctrl-C here is a signal to the whole foreground group: the shell must outlive it
        // (a trap with a command is reset to the default in flux).
        let t = Tmux::start(
            name,
            80,
            24,
            &format!("trap : INT\n{} > out.txt", flux_file(server, "--pace 1")),
        );
        t.wait_for("the progress bar", |s| {
            s.iter().any(|l| l.contains(" / 0:10.0"))
        });
        // Past the first second of audio (where the stalled server stops answering).
        t.wait_for("a second of audio sent", |_| server.audio_bytes() > 48_000);
        t.keys(&["C-c"]);
        if twice {
            t.wait_for("the stream to be finishing", |s| {
                s.iter().any(|l| l.contains("flux: finishing the stream"))
            });
            t.keys(&["C-c"]);
        }
        let (exit, tty) = t.wait_exit();
        let want = if twice { "EXIT=130" } else { "EXIT=0" };
        assert_eq!(exit, want, "{}", t.screen().join("\n"));
        assert_sane(&tty);
        let screen = t.joined();
        let text = screen.join("\n");
        assert!(
            !text.contains(" / 0:10.0"),
            "progress bar left behind:\n{text}"
        );
        // The message is a whole line of its own, not glued to a bar.
        assert!(
            screen
                .iter()
                .any(|l| l.starts_with("flux: finishing the stream")),
            "{text}"
        );
    }
}

/// Issue 13 polish: at 80 columns a finished turn longer than the screen is wrapped at words
/// with its continuation under the text (not cut mid-word by the terminal), and the status
/// line still shows the keys, in short.
#[test]
fn finished_turns_wrap_at_words_and_key_hints_fit_80_columns() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_script(dir.path());
    let t = Tmux::start(
        "wrap",
        80,
        24,
        &format!("NO_COLOR=1 {}", flux_file(&serve, "--pace 2")),
    );
    // A finished turn's first row has its time span (`0:00.3-0:04.1`); its meta ends a row.
    let is_finished_head = |l: &str| l.starts_with("#1 0:") && l.contains("-0:");
    let screen = t.wait_for("the first turn to finish", |s| {
        s.iter()
            .position(|l| is_finished_head(l))
            .is_some_and(|i| s[i..].iter().any(|l| l.ends_with(" model)")))
    });
    let text = screen.join("\n");
    let first = screen
        .iter()
        .position(|l| is_finished_head(l))
        .unwrap_or_else(|| panic!("{text}"));
    let (head, next) = (&screen[first], &screen[first + 1]);
    // The first row ends at a word of the script, the next hangs under the text.
    let indent = head.find("  alpha").unwrap() + 2;
    let last_word = head.rsplit(' ').next().unwrap();
    assert!(SCRIPT[0].split(' ').any(|w| w == last_word), "{text}");
    assert!(head.chars().count() < 80, "{text}");
    assert!(next.starts_with(&" ".repeat(indent)), "{text}");
    let first_word = next.trim_start().split(' ').next().unwrap();
    assert!(SCRIPT[0].split(' ').any(|w| w == first_word), "{text}");
    let status = last_non_empty(&screen);
    assert!(
        is_status(status) && status.ends_with("keys q e +/-"),
        "status line: {status:?}"
    );
    t.keys(&["q"]);
    let (exit, tty) = t.wait_exit();
    assert_eq!(exit, "EXIT=0", "{}", t.screen().join("\n"));
    assert_sane(&tty);
}
