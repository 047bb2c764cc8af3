//! CI assertions of `flux file`: expected text within a word error rate, the number of turns,
//! and end-of-turn latency — each passing and failing, against `flux serve`.

use crate::common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// flux serve with the Two Cities script: two_cities.wav gives its 14 lines, beckett.wav the
/// first 4.
fn serve_two_cities(extra: &[&str]) -> Serve {
    let script = fixture("two_cities.txt");
    let mut args = vec!["--script", script.to_str().unwrap()];
    args.extend_from_slice(extra);
    Serve::start(&args)
}

/// The first `secs` of beckett.wav: two turns in 6.2 s, so real-time runs stay short.
fn beckett_clip(dir: &Path, secs: f64) -> PathBuf {
    let (mono, rate) = read_wav_mono(&fixture("beckett.wav"));
    let n = ((secs * rate as f64) as usize).min(mono.len());
    let p = dir.join("clip.wav");
    write_wav(&p, &mono[..n], rate, 1, 16, false);
    p
}

#[test]
fn expected_text_from_a_file_and_the_turn_count_pass() {
    let serve = serve_two_cities(&[]);
    let expect = fixture("two_cities.txt");
    let out = run(
        file_cmd(
            &serve,
            &fixture("two_cities.wav"),
            &[
                "--text",
                "--expect-file",
                expect.to_str().unwrap(),
                "--expect-turns",
                "14",
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("assertion passed: --expect-file")
            && err.contains("WER 0.000 <= --max-wer 0 (0 error(s) in 119 reference word(s)"),
        "{err}"
    );
    assert!(
        err.contains("assertion passed: --expect-turns 14: got 14 turn(s)"),
        "{err}"
    );
}

#[test]
fn case_punctuation_and_dashes_do_not_count() {
    let serve = serve_two_cities(&[]);
    let reference = "IT WAS THE BEST OF TIMES -- it was the worst of times; \
                     it was the age of wisdom it was the age of foolishness... \
                     \"It was the epoch of belief!\"";
    let out = run(
        file_cmd(
            &serve,
            &fixture("beckett.wav"),
            &["--text", "--expect-text", reference],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn wrong_text_fails_with_exit_7_and_a_report_marking_the_words() {
    let serve = serve_two_cities(&[]);
    // Beckett's 4 turns are 30 words; this reference has 29: one swapped, one left out.
    let reference = "It was the best of times, it was the worst of crimes, \
                     it was the age of wisdom, it was the age of foolishness, \
                     it was the epoch of";
    let out = run(
        file_cmd(
            &serve,
            &fixture("beckett.wav"),
            &["--jsonl", "--expect-text", reference],
        ),
        None,
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "assertion FAILED: --expect-text: WER 0.069 > --max-wer 0 (2 error(s) in 29 \
             reference word(s): 1 wrong, 0 missing, 1 extra)"
        ),
        "{err}"
    );
    assert!(
        err.contains("  reference: … the worst of [crimes] it was the … the epoch of []\n"),
        "{err}"
    );
    assert!(
        err.contains("  got:       … the worst of [times] it was the … the epoch of [belief]\n"),
        "{err}"
    );
    // JSONL: the report comes just before the summary, which carries the exit code.
    let events = jsonl(&out);
    let n = events.len();
    let report = &events[n - 2];
    assert_eq!(report["type"], "flux.assertions");
    assert_eq!(report["passed"], false);
    let check = &report["checks"][0];
    assert_eq!(check["check"], "text");
    assert_eq!(check["wer"], 0.069);
    assert_eq!(check["substitutions"], 1);
    assert_eq!(check["insertions"], 1);
    assert!(check["got"].as_str().unwrap().ends_with("epoch of belief"));
    assert_eq!(events[n - 1]["type"], "flux.summary");
    assert_eq!(events[n - 1]["exit_code"], 7);

    // 2 errors in 29 words (0.0690) pass --max-wer 0.07 and fail 0.068.
    for (max, want) in [("0.07", 0), ("0.068", 7)] {
        let out = run(
            file_cmd(
                &serve,
                &fixture("beckett.wav"),
                &["--text", "--expect-text", reference, "--max-wer", max],
            ),
            None,
        );
        assert_eq!(code(&out), want, "--max-wer {max}: {}", stderr(&out));
    }
}

#[test]
fn wrong_turn_count_fails_and_quiet_still_reports_failures() {
    let serve = serve_two_cities(&[]);
    let out = run(
        file_cmd(
            &serve,
            &fixture("beckett.wav"),
            &["--text", "--quiet", "--expect-turns", "5"],
        ),
        None,
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "flux: assertion FAILED: --expect-turns 5: got 4 turn(s)\n"
    );
    // Turns are still printed: the check does not change the output.
    assert_eq!(stdout(&out).lines().count(), 4);
}

#[test]
fn flag_misuse_is_a_usage_error() {
    let serve = serve_two_cities(&[]);
    let beckett = fixture("beckett.wav");
    // Latency needs real-time pace.
    let out = run(
        file_cmd(&serve, &beckett, &["--max-eot-latency-ms", "300"]),
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--max-eot-latency-ms") && stderr(&out).contains("drop --fast"),
        "{}",
        stderr(&out)
    );
    // A WER bound needs a reference; a reference file must exist.
    let out = run(file_cmd(&serve, &beckett, &["--max-wer", "0.1"]), None);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = run(
        file_cmd(&serve, &beckett, &["--expect-file", "/nonexistent/ref.txt"]),
        None,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot read --expect-file"));
    assert!(serve.log_kind("handshake").is_empty(), "nothing streamed");
}

/// `flux file CLIP --url URL --pace 1 --jsonl --max-eot-latency-ms MS`
fn latency_run(serve: &Serve, clip: &Path, max_ms: &str) -> (i32, String, Value) {
    let mut cmd = flux();
    cmd.arg("file")
        .arg(clip)
        .args(["--url", &serve.url, "--pace", "1", "--jsonl"])
        .args(["--max-eot-latency-ms", max_ms]);
    let out = run(cmd, None);
    let report = jsonl(&out)
        .into_iter()
        .find(|e| e["type"] == "flux.assertions")
        .expect("a flux.assertions line");
    (code(&out), stderr(&out), report)
}

#[test]
fn prompt_end_of_turn_passes_the_latency_bound() {
    let dir = tempfile::tempdir().unwrap();
    let clip = beckett_clip(dir.path(), 6.2);
    let serve = serve_two_cities(&[]);
    let (code, err, report) = latency_run(&serve, &clip, "400");
    assert_eq!(code, 0, "{err}");
    let check = &report["checks"][0];
    assert_eq!(check["check"], "eot_latency");
    assert_eq!(check["measured"], 2, "{report}");
    // flux serve answers at once: what is measured is flux's own overhead, well under this.
    assert!(check["worst_ms"].as_f64().unwrap() < 400.0, "{report}");
}

#[test]
fn a_slow_server_fails_the_latency_bound_naming_the_turns() {
    let dir = tempfile::tempdir().unwrap();
    let clip = beckett_clip(dir.path(), 6.2);
    // Every message arrives 600 ms after the server produced it.
    let serve = serve_two_cities(&["--fault", "delay:ms=600"]);
    let (code, err, report) = latency_run(&serve, &clip, "300");
    assert_eq!(code, 7, "{err}");
    let check = &report["checks"][0];
    assert_eq!(check["passed"], false);
    let slow = check["slow"].as_array().unwrap();
    assert_eq!(slow.len(), 2, "{report}");
    for turn in slow {
        let ms = turn["latency_ms"].as_f64().unwrap();
        assert!((550.0..1500.0).contains(&ms), "{report}");
    }
    assert!(
        err.contains("assertion FAILED: --max-eot-latency-ms 300: 2 of 2 EndOfTurn(s) late"),
        "{err}"
    );
    assert!(
        err.contains("turn 0 (its audio ends at 4.56s): EndOfTurn after"),
        "{err}"
    );
}
