//! CI assertions on a finished stream: expected text (within a word error rate), the number
//! of turns, and end-of-turn latency. A failure exits 7 (unless the stream failed worse),
//! with a report on stderr and a `flux.assertions` line in JSONL.
//!
//! A [`Recorder`] watches the session's events as they happen: finished turns' text, and the
//! end-of-turn latencies the session measured against its own record of when each frame was
//! sent (`flux.eot_latency`; there is no second copy of the pacing rule here).
//! [`Expectations::check`] turns what it saw into a [`Report`].

pub mod wer;

use crate::error::FluxError;
use crate::event::{Check, ClientEvent, Diff, Event, Report, Sink, TurnLatency};
use crate::protocol::{ServerMessage, TurnEvent};
use std::io;
use std::path::PathBuf;

/// The checks asked for, as plain values: `app/` fills it from the command line, so this
/// module knows no flags. Names follow the flags, which the messages quote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssertConfig {
    pub expect_text: Option<String>,
    pub expect_file: Option<PathBuf>,
    pub max_wer: Option<f64>,
    pub expect_turns: Option<u64>,
    pub max_eot_latency_ms: Option<f64>,
}

/// What the flags ask to check.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The expected transcript and where it came from (for the report).
    pub text: Option<(String, String)>,
    pub max_wer: f64,
    pub turns: Option<u64>,
    pub max_eot_latency_ms: Option<f64>,
}

impl Expectations {
    /// The checks asked for, or `None` when there are none. `paced` is false with `--fast`,
    /// where latency has no meaning.
    pub fn from_config(
        args: &AssertConfig,
        paced: bool,
    ) -> Result<Option<Expectations>, FluxError> {
        if args.max_eot_latency_ms.is_some() && !paced {
            return Err(FluxError::Usage(
                "--max-eot-latency-ms measures how long EndOfTurn takes after the turn's audio \
                 was sent, which only means something when audio goes at real-time pace; \
                 drop --fast (or use --pace 1)"
                    .into(),
            ));
        }
        let text = match (&args.expect_text, &args.expect_file) {
            (Some(t), _) => Some((t.clone(), "--expect-text".to_string())),
            (None, Some(path)) => {
                let t = std::fs::read_to_string(path).map_err(|e| {
                    FluxError::Usage(format!("cannot read --expect-file {}: {e}", path.display()))
                })?;
                Some((t, format!("--expect-file {}", path.display())))
            }
            (None, None) => None,
        };
        if text.is_none() && args.expect_turns.is_none() && args.max_eot_latency_ms.is_none() {
            return Ok(None);
        }
        Ok(Some(Expectations {
            text,
            max_wer: args.max_wer.unwrap_or(0.0),
            turns: args.expect_turns,
            max_eot_latency_ms: args.max_eot_latency_ms,
        }))
    }

    /// Checks what was recorded.
    pub fn check(&self, rec: &Recorder) -> Report {
        let mut checks = Vec::new();
        if let Some((reference, source)) = &self.text {
            let got = rec.transcripts.join(" ");
            let w = wer::compare(reference, &got);
            let rate = (w.rate() * 10_000.0).round() / 10_000.0;
            let diff = wer::diff_lines(&w);
            checks.push(Check::Text {
                passed: w.rate() <= self.max_wer + 1e-12,
                source: source.clone(),
                wer: rate,
                max_wer: self.max_wer,
                reference_words: w.reference.len(),
                substitutions: w.substitutions,
                deletions: w.deletions,
                insertions: w.insertions,
                reference: w.reference.join(" "),
                got: w.got.join(" "),
                diff: diff.map(|(reference, got)| Diff { reference, got }),
            });
        }
        if let Some(expected) = self.turns {
            let got = rec.transcripts.len() as u64;
            checks.push(Check::Turns {
                passed: got == expected,
                expected,
                got,
            });
        }
        if let Some(max_ms) = self.max_eot_latency_ms {
            let slow: Vec<TurnLatency> = rec
                .latencies
                .iter()
                .filter(|l| l.latency_ms > max_ms)
                .cloned()
                .collect();
            checks.push(Check::EotLatency {
                passed: slow.is_empty(),
                max_ms,
                measured: rec.latencies.len(),
                worst_ms: rec.latencies.iter().map(|l| l.latency_ms).reduce(f64::max),
                slow,
            });
        }
        Report {
            passed: checks.iter().all(Check::passed),
            evaluated: true,
            reason: None,
            checks,
        }
    }

    /// The report when there was nothing to check (the stream never ran): no verdict, and
    /// why, so that a connection refused is not mistaken for a wrong transcript.
    pub fn not_evaluated(&self, reason: &str) -> Report {
        Report {
            passed: false,
            evaluated: false,
            reason: Some(format!(
                "{reason}; not checked: {}",
                self.flags().join(", ")
            )),
            checks: Vec::new(),
        }
    }

    /// The flags of the checks asked for, as the user would recognise them.
    fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some((_, source)) = &self.text {
            flags.push(source.clone());
        }
        if let Some(n) = self.turns {
            flags.push(format!("--expect-turns {n}"));
        }
        if let Some(ms) = self.max_eot_latency_ms {
            flags.push(format!("--max-eot-latency-ms {ms}"));
        }
        flags
    }
}

/// What happened in a stream that the checks need, with arrival times.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Finished turns' transcripts in order (EndOfTurn, and turns left unconfirmed).
    transcripts: Vec<String>,
    /// The session's own EndOfTurn latencies (`flux.eot_latency`), measured against when
    /// each frame was really sent.
    latencies: Vec<TurnLatency>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Client(ClientEvent::EotLatency(l)) => self.latencies.push(l.clone()),
            Event::Server(r) => {
                if let ServerMessage::TurnInfo(t) = &r.message
                    && t.event == TurnEvent::EndOfTurn
                {
                    self.transcripts.push(t.transcript.clone());
                }
            }
            Event::Client(ClientEvent::UnconfirmedTurn { transcript, .. }) => {
                self.transcripts.push(transcript.clone());
            }
            Event::Client(_) => {}
        }
    }
}

/// A sink that shows every event to a [`Recorder`] before passing it on.
pub struct Recording<'a> {
    pub inner: &'a mut dyn Sink,
    pub recorder: &'a mut Recorder,
}

impl Sink for Recording<'_> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        // Record first: the arrival time should not include the time spent writing output.
        self.recorder.observe(event);
        self.inner.event(event)
    }

    fn take(&mut self, event: Event) -> io::Result<()> {
        self.recorder.observe(&event);
        self.inner.take(event)
    }

    fn begin_batch(&mut self) {
        self.inner.begin_batch();
    }

    fn end_batch(&mut self) -> io::Result<()> {
        self.inner.end_batch()
    }
}

impl Check {
    pub fn passed(&self) -> bool {
        match self {
            Check::Text { passed, .. }
            | Check::Turns { passed, .. }
            | Check::EotLatency { passed, .. } => *passed,
        }
    }
}

impl Report {
    /// The report for people: one line per check, failures with their details. Lines start
    /// with `flux: ` and `who` (a file label and `: `, or nothing).
    pub fn render(&self, who: &str) -> String {
        let mut out = String::new();
        if !self.evaluated {
            let reason = self.reason.as_deref().unwrap_or("the stream never ran");
            out.push_str(&format!("flux: {who}assertions not evaluated: {reason}\n"));
        }
        for check in &self.checks {
            let verdict = if check.passed() {
                "assertion passed"
            } else {
                "assertion FAILED"
            };
            out.push_str(&format!("flux: {who}{verdict}: {}\n", check.summary()));
            if !check.passed() {
                for line in check.details() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        }
        out
    }
}

impl Check {
    fn summary(&self) -> String {
        match self {
            Check::Text {
                source,
                wer,
                max_wer,
                reference_words,
                substitutions,
                deletions,
                insertions,
                passed,
                ..
            } => {
                let errors = substitutions + deletions + insertions;
                format!(
                    "{source}: WER {wer:.3} {} --max-wer {max_wer} ({errors} error(s) in \
                     {reference_words} reference word(s): {substitutions} wrong, {deletions} \
                     missing, {insertions} extra)",
                    if *passed { "<=" } else { ">" }
                )
            }
            Check::Turns { expected, got, .. } => {
                format!("--expect-turns {expected}: got {got} turn(s)")
            }
            Check::EotLatency {
                max_ms,
                measured,
                worst_ms,
                slow,
                ..
            } => {
                let worst =
                    worst_ms.map_or("none measured".to_string(), |w| format!("worst {w:.0} ms"));
                if slow.is_empty() {
                    format!("--max-eot-latency-ms {max_ms}: {measured} EndOfTurn(s), {worst}")
                } else {
                    format!(
                        "--max-eot-latency-ms {max_ms}: {} of {measured} EndOfTurn(s) late, {worst}",
                        slow.len()
                    )
                }
            }
        }
    }

    fn details(&self) -> Vec<String> {
        match self {
            Check::Text {
                diff: Some(d), got, ..
            } => {
                let mut lines = vec![
                    format!("reference: {}", d.reference),
                    format!("got:       {}", d.got),
                ];
                if got.is_empty() {
                    lines.push("(no finished turns)".into());
                }
                lines
            }
            Check::Text { reference, got, .. } => vec![
                format!("reference: {}", clip(reference)),
                format!("got:       {}", clip(got)),
            ],
            Check::Turns { .. } => Vec::new(),
            Check::EotLatency { max_ms, slow, .. } => slow
                .iter()
                .map(|l| {
                    format!(
                        "turn {} (its audio ends at {:.2}s): EndOfTurn after {:.0} ms, {:.0} ms over",
                        l.turn_index,
                        l.audio_window_end,
                        l.latency_ms,
                        l.latency_ms - max_ms
                    )
                })
                .collect(),
        }
    }
}

/// A long text cut for a terminal line (the JSONL report keeps it whole).
fn clip(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_the_sessions_measure_and_nothing_else() {
        let mut rec = Recorder::new();
        let eot = Event::Server(
            ServerMessage::parse(
                r#"{"type":"TurnInfo","event":"EndOfTurn","turn_index":0,"audio_window_end":1.0,"transcript":"x"}"#,
            )
            .unwrap(),
        );
        rec.observe(&eot);
        assert!(rec.latencies.is_empty());
        let measured = TurnLatency {
            turn_index: 0,
            audio_window_end: 1.0,
            latency_ms: 212.5,
        };
        rec.observe(&Event::Client(ClientEvent::EotLatency(measured.clone())));
        assert_eq!(rec.latencies, vec![measured]);
        assert_eq!(rec.transcripts, vec!["x".to_string()]);
    }
    use crate::protocol::ServerMessage;

    fn eot(text: &str) -> Event {
        Event::Server(
            ServerMessage::parse(&format!(
                r#"{{"type":"TurnInfo","event":"EndOfTurn","transcript":"{text}"}}"#
            ))
            .unwrap(),
        )
    }

    fn expect(text: Option<&str>, max_wer: f64, turns: Option<u64>) -> Expectations {
        Expectations {
            text: text.map(|t| (t.to_string(), "--expect-text".to_string())),
            max_wer,
            turns,
            max_eot_latency_ms: None,
        }
    }

    #[test]
    fn text_and_turns_pass_and_fail() {
        let mut rec = Recorder::new();
        rec.observe(&eot("Hello there."));
        rec.observe(&Event::Client(ClientEvent::UnconfirmedTurn {
            turn_index: 1,
            transcript: "General Kenobi".into(),
            audio_window_start: 0.0,
            audio_window_end: 1.0,
            words: vec![],
            confirmed: false,
            reason: "stream_closed".into(),
        }));
        let ok = expect(Some("hello there general kenobi"), 0.0, Some(2)).check(&rec);
        assert!(ok.passed, "{ok:?}");
        let bad = expect(Some("hello there general grievous"), 0.0, Some(3)).check(&rec);
        assert!(!bad.passed);
        let text = bad.render("a.wav: ");
        assert!(
            text.contains("flux: a.wav: assertion FAILED: --expect-text: WER 0.250 > --max-wer 0"),
            "{text}"
        );
        assert!(
            text.contains("  reference: hello there general [grievous]\n  got:       hello there general [kenobi]\n"),
            "{text}"
        );
        assert!(text.contains("--expect-turns 3: got 2 turn(s)"), "{text}");
        // One wrong word in four is within 0.25.
        assert!(
            expect(Some("hello there general grievous"), 0.25, None)
                .check(&rec)
                .passed
        );
    }

    #[test]
    fn the_report_serializes_with_a_check_tag() {
        let rec = Recorder::new();
        let report = expect(None, 0.0, Some(0)).check(&rec);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["passed"], true);
        assert_eq!(json["checks"][0]["check"], "turns");
        assert_eq!(json["checks"][0]["got"], 0);
    }

    #[test]
    fn a_stream_that_never_ran_is_not_evaluated() {
        let report = expect(Some("hello"), 0.0, Some(2)).not_evaluated("the stream never ran");
        assert!(!report.passed && !report.evaluated && report.checks.is_empty());
        let text = report.render("a.wav: ");
        assert_eq!(
            text,
            "flux: a.wav: assertions not evaluated: the stream never ran; not checked: \
             --expect-text, --expect-turns 2\n"
        );
        assert!(!text.contains("FAILED"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["evaluated"], false);
        assert!(json["reason"].as_str().unwrap().contains("never ran"));
        let ran = serde_json::to_value(expect(None, 0.0, Some(0)).check(&Recorder::new())).unwrap();
        assert_eq!(ran["evaluated"], true);
        assert!(ran.get("reason").is_none());
    }

    #[test]
    fn config_without_checks_is_none_and_latency_needs_pacing() {
        assert!(
            Expectations::from_config(&AssertConfig::default(), true)
                .unwrap()
                .is_none()
        );
        let latency = AssertConfig {
            max_eot_latency_ms: Some(300.0),
            ..AssertConfig::default()
        };
        assert_eq!(
            Expectations::from_config(&latency, false)
                .unwrap_err()
                .exit_code(),
            2
        );
        assert!(Expectations::from_config(&latency, true).unwrap().is_some());
    }
}
