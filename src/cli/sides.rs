//! Arguments for conversations with sides: `--split-channels` and its labels, and
//! `flux replay` of a recorded session (src/app/sides.rs, src/app/replay.rs).

use super::{OutputArgs, parse_pace};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A session recorded with `flux ... --jsonl` (`-` reads it from stdin); a two-sided one
    /// (--split-channels) is shown with its labels.
    #[arg(value_name = "SESSION.jsonl")]
    pub path: PathBuf,
    /// Replay FACTOR times faster than recorded (0.1 to 1000; default 1, the recorded pace).
    #[arg(long, value_name = "FACTOR", conflicts_with = "fast", value_parser = parse_pace)]
    pub pace: Option<f64>,
    /// Render everything at once.
    #[arg(long)]
    pub fast: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Conversations with two (or more) sides: one stream per channel, one merged timeline
/// (docs/guide.md#two-sides).
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Sides")]
pub struct SidesArgs {
    /// Stream each channel of the input on its own (picked, not mixed): one connection per
    /// channel, one timeline ordered by audio time, every line naming its side.
    #[arg(long)]
    pub split_channels: bool,
    /// Names for the sides, one per channel (or per --device), comma-separated (default
    /// ch0,ch1,...): letters, digits, `-`, `_` and `.`.
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    pub channel_labels: Vec<String>,
}
