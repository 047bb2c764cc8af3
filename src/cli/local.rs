//! The flags of `--provider local` (the recognizer inside flux; src/app/local.rs wires it,
//! docs/providers.md#local describes it).

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(next_help_heading = "Local recognizer (--provider local)")]
pub struct LocalArgs {
    /// The model directory, as for `flux serve --asr-model` [default:
    /// $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e.
    /// ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh].
    #[arg(long, value_name = "DIR")]
    pub asr_model: Option<PathBuf>,
    /// Decoding threads, each with its own copy of the model (about 150 MB each), shared by
    /// every stream of the run [default: 1, as for flux serve; one gives one real-time stream
    /// Updates at full cadence, two give a call's two sides theirs on two cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub asr_workers: Option<u16>,
}
