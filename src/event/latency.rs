//! `flux.summary`'s `added_latency`: the percentiles of what flux added, as data. The
//! histogram that measures them lives in the session (`session/latency.rs`).

use serde::Serialize;

/// One measured path, as reported in JSONL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// `flux.summary`'s `added_latency`: what flux added on the way out and on the way back.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AddedLatency {
    /// Frame ready (conditioned, and due at the pace in use) → written to the socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<LatencySummary>,
    /// Server message received → its output written (and flushed) on stdout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<LatencySummary>,
}

impl AddedLatency {
    pub fn is_empty(&self) -> bool {
        self.send.is_none() && self.output.is_none()
    }
}
