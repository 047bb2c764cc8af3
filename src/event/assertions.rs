//! The `flux.assertions` record: the result of every CI check, as data. The checks themselves
//! live in `assertions/`; this is what they report, so that sinks can render it.

use serde::Serialize;

/// The result of every check; the `flux.assertions` JSONL event (docs/jsonl.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub passed: bool,
    /// False when the stream never ran (e.g. the connection was refused): there was nothing
    /// to check, `passed` is false and `checks` is empty.
    pub evaluated: bool,
    /// Why the checks were not evaluated, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// `--expect-text` / `--expect-file` with `--max-wer`.
    Text {
        passed: bool,
        /// Which flag gave the reference.
        source: String,
        wer: f64,
        max_wer: f64,
        reference_words: usize,
        substitutions: usize,
        deletions: usize,
        insertions: usize,
        /// Both texts as compared, after normalization.
        reference: String,
        got: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<Diff>,
    },
    /// `--expect-turns`.
    Turns {
        passed: bool,
        expected: u64,
        got: u64,
    },
    /// `--max-eot-latency-ms`.
    EotLatency {
        passed: bool,
        max_ms: f64,
        /// EndOfTurn events measured.
        measured: usize,
        worst_ms: Option<f64>,
        /// The turns over the bound.
        slow: Vec<TurnLatency>,
    },
}

/// The differing words marked in [brackets], with long matching runs elided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    pub reference: String,
    pub got: String,
}

/// One EndOfTurn's latency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnLatency {
    pub turn_index: u64,
    /// Where the turn's audio ends, in seconds of the stream.
    pub audio_window_end: f64,
    pub latency_ms: f64,
}
