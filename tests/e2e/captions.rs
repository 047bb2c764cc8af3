//! `--format srt|vtt`: captions from the finished turns of a stream against `flux serve`,
//! which sends word times (the even spread used without them is unit-tested in
//! src/output/captions.rs).

use crate::common;

use common::*;

/// One parsed cue: (start, end) in seconds and its text lines.
type Cue = (f64, f64, Vec<String>);

fn seconds(stamp: &str, separator: char) -> f64 {
    let (hms, ms) = stamp.split_once(separator).expect("milliseconds");
    let parts: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts.len(), 3, "{stamp}");
    assert_eq!(ms.len(), 3, "{stamp}");
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2] + ms.parse::<f64>().unwrap() / 1000.0
}

/// Parses cue blocks (`[number]`, timing line, text lines), checking the format strictly.
fn cues(body: &str, numbered: bool, separator: char) -> Vec<Cue> {
    assert!(body.ends_with("\n\n"), "ends with a blank line: {body:?}");
    body.trim_end()
        .split("\n\n")
        .enumerate()
        .map(|(i, block)| {
            let mut lines = block.lines();
            if numbered {
                assert_eq!(lines.next(), Some((i + 1).to_string().as_str()), "{block}");
            }
            let timing = lines.next().unwrap();
            let (a, b) = timing.split_once(" --> ").expect(timing);
            let text: Vec<String> = lines.map(str::to_string).collect();
            assert!(!text.is_empty() && text.len() <= 2, "{block}");
            assert!(text.iter().all(|l| l.chars().count() <= 42), "{block}");
            (seconds(a, separator), seconds(b, separator), text)
        })
        .collect()
}

fn captions(format: &str) -> String {
    let serve = Serve::start(&["--script", fixture("two_cities.txt").to_str().unwrap()]);
    let out = run(
        file_cmd(&serve, &fixture("beckett.wav"), &["--format", format]),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

fn check_timeline(cues: &[Cue]) {
    let mut last_end = 0.0;
    for (start, end, _) in cues {
        assert!(*start >= last_end && end > start, "{cues:?}");
        last_end = *end;
    }
    // The audio is 9.96 s long.
    assert!(last_end <= 10.0, "{cues:?}");
}

#[test]
fn srt_cues_are_numbered_timed_by_the_words_and_hold_every_word() {
    let got = captions("srt");
    let cues = cues(&got, true, ',');
    check_timeline(&cues);
    // flux serve's first word starts at 0.28 s; turns follow the script.
    assert_eq!(cues[0].0, 0.28, "{got}");
    let text: Vec<String> = cues.iter().flat_map(|c| c.2.clone()).collect();
    let script = std::fs::read_to_string(fixture("two_cities.txt")).unwrap();
    let expected: Vec<&str> = script.lines().take(4).collect();
    assert_eq!(text.join(" "), expected.join(" "));
    // The first turn (53 characters) takes two lines of one cue.
    assert_eq!(
        cues[0].2,
        ["It was the best of times, it was the worst", "of times,"]
    );
}

#[test]
fn vtt_has_its_header_and_dot_milliseconds() {
    let got = captions("vtt");
    let body = got.strip_prefix("WEBVTT\n\n").expect("WEBVTT header");
    let cues = cues(body, false, '.');
    check_timeline(&cues);
    assert_eq!(cues.len(), 4, "{got}");
    assert_eq!(cues[3].2, ["it was the epoch of belief,"]);
}
