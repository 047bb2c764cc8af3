//! The end of a load test: per-stream and overall figures, as text or JSONL on stdout, and the
//! `--assert-*` checks that decide exit 7.

use super::metrics::{Samples, StreamStats};
use crate::event::Totals;
use crate::session::latency::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Percentiles of one measure, in milliseconds (nearest rank: the sample at rank ⌈q·n⌉).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// `None` when there are no samples.
    pub fn of(samples: &[f32]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f32::total_cmp);
        let at = |q: f64| {
            let rank = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len());
            round3(f64::from(v[rank - 1]))
        };
        Some(Percentiles {
            count: v.len() as u64,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        })
    }

    /// From the session's own histogram (10 µs buckets; upper bucket edges).
    pub fn of_histogram(h: &Histogram) -> Option<Percentiles> {
        (h.count() > 0).then(|| Percentiles {
            count: h.count(),
            p50_ms: h.quantile_ms(0.50),
            p90_ms: h.quantile_ms(0.90),
            p95_ms: h.quantile_ms(0.95),
            p99_ms: h.quantile_ms(0.99),
            max_ms: h.quantile_ms(1.0),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One stream's line.
#[derive(Debug, Clone, Serialize)]
pub(super) struct StreamLine {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// 1-based.
    pub stream: usize,
    /// The recording it began with.
    pub recording: String,
    pub ok: bool,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub request_ids: Vec<String>,
    pub attempts: u64,
    pub connections: u64,
    pub reconnects: u64,
    pub frames_sent: u64,
    pub audio_seconds: f64,
    pub turns: u64,
    pub unconfirmed_turns: u64,
    pub error_count: u64,
    pub errors: BTreeMap<String, u64>,
    /// How late its frames went after they were due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_late: Option<Percentiles>,
}

impl StreamLine {
    pub fn new(
        stream: usize,
        recording: String,
        stats: StreamStats,
        totals: &Totals,
        error: Option<String>,
        exit_code: u8,
        late: Option<&Histogram>,
    ) -> StreamLine {
        let error_count = stats.error_count();
        StreamLine {
            kind: "flux.load.stream",
            stream: stream + 1,
            recording,
            ok: error.is_none(),
            exit_code,
            error,
            request_ids: stats.request_ids,
            attempts: stats.attempts,
            connections: stats.connections,
            reconnects: stats.reconnects,
            frames_sent: totals.frames_sent,
            audio_seconds: round3(totals.audio_seconds),
            turns: stats.turns,
            unconfirmed_turns: stats.unconfirmed_turns,
            error_count,
            errors: stats.errors,
            frames_late: late.and_then(Percentiles::of_histogram),
        }
    }
}

/// One `--assert-*` check.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// The whole run's figures.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Summary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub streams: usize,
    pub ok: usize,
    pub failed: usize,
    /// Stopped by Ctrl-C before the planned end: the figures are what was measured until then.
    pub interrupted: bool,
    pub wall_seconds: f64,
    pub attempts: u64,
    pub connections: u64,
    pub reconnects: u64,
    pub frames_sent: u64,
    pub audio_seconds: f64,
    pub turns: u64,
    pub unconfirmed_turns: u64,
    pub error_count: u64,
    pub errors: BTreeMap<String, u64>,
    pub time_to_connected: Option<Percentiles>,
    pub first_update: Option<Percentiles>,
    pub eot_latency: Option<Percentiles>,
    pub frames_late: Option<Percentiles>,
    pub assertions: Vec<Check>,
    pub exit_code: u8,
}

impl Summary {
    pub fn new(
        lines: &[StreamLine],
        samples: &Samples,
        late: &Histogram,
        wall: f64,
        interrupted: bool,
    ) -> Summary {
        let mut errors = BTreeMap::new();
        for l in lines {
            for (k, n) in &l.errors {
                *errors.entry(k.clone()).or_insert(0) += n;
            }
        }
        let sum = |f: fn(&StreamLine) -> u64| lines.iter().map(f).sum::<u64>();
        let ok = lines.iter().filter(|l| l.ok).count();
        Summary {
            kind: "flux.load.summary",
            streams: lines.len(),
            ok,
            failed: lines.len() - ok,
            interrupted,
            wall_seconds: round3(wall),
            attempts: sum(|l| l.attempts),
            connections: sum(|l| l.connections),
            reconnects: sum(|l| l.reconnects),
            frames_sent: sum(|l| l.frames_sent),
            audio_seconds: round3(lines.iter().map(|l| l.audio_seconds).sum()),
            turns: sum(|l| l.turns),
            unconfirmed_turns: sum(|l| l.unconfirmed_turns),
            error_count: errors.values().sum(),
            errors,
            time_to_connected: Percentiles::of(&samples.connected),
            first_update: Percentiles::of(&samples.first_update),
            eot_latency: Percentiles::of(&samples.eot),
            frames_late: Percentiles::of_histogram(late),
            assertions: Vec::new(),
            exit_code: 0,
        }
    }

    /// `--assert-p95-eot-ms` and `--assert-errors`; `true` when all passed.
    pub fn check(&mut self, p95_eot_ms: Option<f64>, max_errors: Option<u64>) -> bool {
        if let Some(limit) = p95_eot_ms {
            let (passed, detail) = match &self.eot_latency {
                Some(p) => (
                    p.p95_ms <= limit,
                    format!(
                        "p95 end-of-turn latency {} ms over {} turns; at most {limit} ms allowed",
                        p.p95_ms, p.count
                    ),
                ),
                None => (
                    false,
                    "no EndOfTurn was measured, so the p95 end-of-turn latency is unknown"
                        .to_string(),
                ),
            };
            self.assertions.push(Check {
                name: "p95_eot_ms",
                passed,
                detail,
            });
        }
        if let Some(limit) = max_errors {
            self.assertions.push(Check {
                name: "errors",
                passed: self.error_count <= limit,
                detail: format!(
                    "{} error(s){}; at most {limit} allowed",
                    self.error_count,
                    self.errors_text()
                ),
            });
        }
        self.assertions.iter().all(|c| c.passed)
    }

    /// ` (dropped 1, handshake 429 2)`, or nothing.
    fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(" ({})", parts.join(", "))
    }
}

/// The report for people (stdout).
pub(super) fn text(summary: &Summary, lines: &[StreamLine]) -> String {
    let mut out = String::new();
    let s = summary;
    let _ = writeln!(
        out,
        "flux load: {} stream(s) in {:.1} s{}: {} ok, {} failed",
        s.streams,
        s.wall_seconds,
        if s.interrupted { " (interrupted)" } else { "" },
        s.ok,
        s.failed
    );
    let _ = writeln!(
        out,
        "connections: {} attempted, {} upgraded, {} reconnect(s)",
        s.attempts, s.connections, s.reconnects
    );
    let _ = writeln!(
        out,
        "audio: {:.1} s in {} frames; turns: {} finished, {} unconfirmed",
        s.audio_seconds, s.frames_sent, s.turns, s.unconfirmed_turns
    );
    let _ = writeln!(out, "errors: {}{}", s.error_count, s.errors_text());
    let _ = writeln!(
        out,
        "{:<24} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "(ms)", "count", "p50", "p90", "p95", "p99", "max"
    );
    for (name, p) in [
        ("time to Connected", &s.time_to_connected),
        ("first Update", &s.first_update),
        ("end of turn", &s.eot_latency),
        ("frames late", &s.frames_late),
    ] {
        match p {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "{name:<24} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                    p.count, p.p50_ms, p.p90_ms, p.p95_ms, p.p99_ms, p.max_ms
                );
            }
            None => {
                let _ = writeln!(out, "{name:<24} {:>7}", 0);
            }
        }
    }
    for c in &s.assertions {
        let verdict = if c.passed { "passed" } else { "FAILED" };
        let _ = writeln!(out, "assert {}: {verdict}: {}", c.name, c.detail);
    }
    let _ = writeln!(
        out,
        "{:>6}  {:<24} {:>6} {:>8} {:>10} {:>8} {:>6}  errors",
        "stream", "recording", "result", "attempts", "reconnects", "frames", "turns"
    );
    for l in lines {
        let errors: Vec<String> = l.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "{:>6}  {:<24} {:>6} {:>8} {:>10} {:>8} {:>6}  {}",
            l.stream,
            l.recording,
            if l.ok { "ok" } else { "failed" },
            l.attempts,
            l.reconnects,
            l.frames_sent,
            l.turns,
            if errors.is_empty() {
                "-".to_string()
            } else {
                errors.join(", ")
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f32> = (1..=100).map(|x| x as f32).collect();
        let p = Percentiles::of(&v).unwrap();
        assert_eq!(
            (p.count, p.p50_ms, p.p90_ms, p.p95_ms, p.p99_ms, p.max_ms),
            (100, 50.0, 90.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(Percentiles::of(&[7.0]).unwrap().p50_ms, 7.0);
        assert_eq!(Percentiles::of(&[]), None);
    }

    fn line(errors: &[(&str, u64)], ok: bool) -> StreamLine {
        let stats = StreamStats {
            attempts: 2,
            connections: 1,
            errors: errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            ..StreamStats::default()
        };
        let totals = Totals {
            frames_sent: 10,
            audio_seconds: 0.8,
            ..Totals::default()
        };
        let error = (!ok).then(|| "boom".to_string());
        StreamLine::new(0, "a.wav".into(), stats, &totals, error, 0, None)
    }

    #[test]
    fn the_summary_adds_up_streams_and_the_assertions_judge_it() {
        let lines = [
            line(&[("dropped", 1)], true),
            line(&[("dropped", 1), ("handshake 429", 1)], false),
        ];
        let samples = Samples {
            eot: vec![100.0, 200.0, 300.0],
            ..Samples::default()
        };
        let mut s = Summary::new(&lines, &samples, &Histogram::default(), 1.0, false);
        assert_eq!(
            (s.streams, s.ok, s.failed, s.attempts, s.frames_sent),
            (2, 1, 1, 4, 20)
        );
        assert_eq!(s.error_count, 3);
        assert_eq!(s.errors.get("dropped"), Some(&2));
        assert!(s.check(Some(300.0), Some(3)));
        assert!(!s.check(Some(299.0), None));
        assert!(!s.assertions[2].passed);
        let mut none = Summary::new(
            &lines,
            &Samples::default(),
            &Histogram::default(),
            1.0,
            false,
        );
        assert!(
            !none.check(Some(1000.0), None),
            "no turns measured is a failure"
        );
        let text = text(&s, &lines);
        assert!(
            text.contains("errors: 3 (dropped 2, handshake 429 1)"),
            "{text}"
        );
        assert!(text.contains("assert p95_eot_ms: FAILED"), "{text}");
    }
}
