//! `flux doctor`'s and `flux config`'s arguments: the checks' timeout and output, and the
//! stream flags whose effect they report (src/app/doctor.rs, src/app/config/).

use super::{OutputArgs, PaceArgs, StreamArgs};
use clap::Args;

pub(super) const AFTER_HELP: &str = "\
Each check prints ✔ or ✘, and a fix for each ✘; the handshake sends one second of silence
and closes. Exit status: 0 when every check passed, 10 when one failed, 2 for bad flags.
Examples:
  flux doctor
  flux doctor --provider cloudflare --jsonl
  flux doctor --url ws://127.0.0.1:8787          # a flux serve
See docs/guide.md#doctor.";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// One JSON object per check ({type, check, ok, detail, fix, ...}) and a summary line.
    #[arg(long)]
    pub jsonl: bool,
    /// Give each network step (DNS, TCP, TLS, the handshake) this long: 0.1 to 300 seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = |s: &str| seconds(s, 0.1, 300.0))]
    pub timeout: f64,
    #[command(flatten)]
    pub stream: StreamArgs,
}

/// A number of seconds from `min` to `max` (`--timeout`, `--idle-timeout`).
pub(super) fn seconds(s: &str, min: f64, max: f64) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
        _ => Err(format!(
            "`{s}` is not a number of seconds from {min} to {max}"
        )),
    }
}

/// `flux config` takes the settings `file` and `listen` take, to show what they would use.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}
