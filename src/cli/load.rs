//! `flux load`'s arguments: the recordings, how many streams for how long, the checks, and
//! every connection flag of `flux file` (src/app/load/ runs it; docs/load.md).

use super::StreamArgs;
use clap::Args;
use std::path::PathBuf;

pub(super) const AFTER_HELP: &str = "\
Prints a live status on stderr and, at the end, per-stream and overall figures on stdout
(text, or JSON lines with --jsonl): counts, errors by kind, reconnects, and p50/p90/p95/p99/max
of time to Connected, first Update of a turn, end-of-turn latency and frame lateness.
Ctrl-C once finishes every stream and reports what was measured. See docs/load.md.

Exit status: 7 when an --assert-* check fails; otherwise, without --assert-errors, the worst
failed stream's status (4 for a connection given up, ...); 0 when all is well.

Examples:
  flux load call.wav --streams 100 --ramp 30 --duration 600 --url wss://flux.internal
  flux load a.wav b.wav --streams 50 --loops 3 --assert-p95-eot-ms 800 --assert-errors 0";

/// `flux load`: the recordings, how many streams for how long, the checks, and every
/// connection flag of `flux file`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// WAV recordings to stream (any rate, channels and PCM format `flux file` takes); each
    /// is read and conditioned once. Stream k begins with recording k (modulo their number)
    /// and goes on with the next ones, looping.
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Concurrent streams, 1 to 100000: each its own connection, paced in real time.
    #[arg(long, short = 'n', value_name = "N", required = true, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub streams: u32,
    /// Start the streams evenly over this many seconds (0 to 3600; default 0: all at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, value_parser = parse_ramp)]
    pub ramp: f64,
    /// Each stream sends this many seconds of audio, looping its recordings (more than 0,
    /// at most 86400).
    #[arg(long, value_name = "SECONDS", value_parser = super::parse_duration, conflicts_with = "loops")]
    pub duration: Option<f64>,
    /// Each stream plays its recordings this many times (default 1).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub loops: Option<u32>,
    /// Exit 7 when the 95th percentile of end-of-turn latency over all streams is above MS
    /// milliseconds (or no turn ended at all).
    #[arg(long, value_name = "MS", value_parser = super::parse_latency, help_heading = "Assertions")]
    pub assert_p95_eot_ms: Option<f64>,
    /// Exit 7 when more than N errors were counted (refused handshakes, drops, unexpected
    /// closes, server Error messages, stalls, failed streams); failed streams then do not
    /// decide the exit status themselves.
    #[arg(long, value_name = "N", help_heading = "Assertions")]
    pub assert_errors: Option<u64>,
    /// Write the report as JSON lines (one per stream, then the summary) instead of text.
    #[arg(long, help_heading = "Output")]
    pub jsonl: bool,
    /// No start line or live status on stderr (the report and errors are still written).
    #[arg(long, short = 'q', help_heading = "Output")]
    pub quiet: bool,
    #[command(flatten)]
    pub stream: StreamArgs,
}

fn parse_ramp(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=3600.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a number of seconds from 0 to 3600")),
    }
}
