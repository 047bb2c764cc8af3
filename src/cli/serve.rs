//! `flux serve`'s arguments: where it listens, what it answers with (a script, a recorded
//! session or the local recognizer), faults, the log, and the SageMaker front end
//! (src/serve/ runs it; docs/serve.md).

use super::doctor::seconds;
use crate::provider::Secret;
use clap::Args;
use std::path::PathBuf;

pub(super) const AFTER_HELP: &str = "\
Routes: /v2/listen (Deepgram), /client/v4/accounts/ID/ai/run/@cf/deepgram/flux and /
(Cloudflare), /v1/audio/transcriptions/streaming (Fireworks), POST /v1/auth/grant (temporary tokens for /v2/listen). Prints its ws:// address as one line on stdout. See docs/serve.md for the
script format, fault specs and log format.

Examples:
  flux serve --listen 127.0.0.1:8787 --script turns.txt
  flux serve --asr moonshine          # real words, offline (scripts/fetch-model.sh first)
  flux serve --listen 127.0.0.1:0 --log serve.jsonl --fault drop:at=2.5,conn=1";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Require this API key (`Authorization: Token KEY`, or `Bearer KEY` on Cloudflare routes,
    /// or the raw KEY on Fireworks routes; on the SageMaker front end, the SigV4 access key
    /// id); /v2/listen also takes `Bearer TOKEN` with a token from POST /v1/auth/grant.
    #[arg(
        long,
        value_name = "KEY",
        env = "FLUX_SERVE_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<Secret>,
    /// Transcript script: one line per turn, revealed word by word as the turn's speech goes on.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Answer every connection with the server messages of a session recorded with
    /// `flux ... --jsonl`, each sent when the incoming audio reaches its time (docs/serve.md).
    #[arg(long, value_name = "SESSION.jsonl", conflicts_with = "script")]
    pub replay: Option<PathBuf>,
    /// Append one JSON line per thing received (handshakes, audio frames, control messages,
    /// closes) to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Inject a fault, e.g. `drop:at=2.5,conn=1`, `reject:status=429`, `delay:ms=200`;
    /// repeatable (docs/serve.md lists them all).
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// Recognize the words with a local model instead of a script: `moonshine` (Moonshine
    /// base-en on the CPU; fetch it once with scripts/fetch-model.sh).
    #[arg(long, value_name = "ENGINE", value_parser = ["moonshine"], conflicts_with_all = ["script", "replay"])]
    pub asr: Option<String>,
    /// The model directory for --asr [default: $XDG_DATA_HOME/flux/models/moonshine-base-en,
    /// i.e. ~/.local/share/flux/models/moonshine-base-en].
    #[arg(long, value_name = "DIR", requires = "asr")]
    pub asr_model: Option<PathBuf>,
    /// Decoding threads for --asr, each with its own copy of the model (about 150 MB each);
    /// streams share them.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "asr",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub asr_workers: u16,
    /// Close a connection that has received no audio for SECONDS, as Deepgram does (a fatal
    /// `Error` NET-0001, then close 1011), so keep-alive logic can be tested; 0 never closes.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = |s: &str| seconds(s, 0.0, 86_400.0))]
    pub idle_timeout: f64,
    /// Also serve AWS SageMaker's bidirectional stream (HTTPS, HTTP/2, a certificate made at
    /// start) on this address; its https:// URL is printed on stdout after the ws:// one.
    #[arg(long, value_name = "ADDR")]
    pub sagemaker_listen: Option<String>,
    /// Write the SageMaker front end's CA certificate (PEM) to FILE, for clients to trust
    /// (`flux --ca-cert FILE`, `AWS_CA_BUNDLE=FILE`).
    #[arg(long, value_name = "FILE", requires = "sagemaker_listen")]
    pub sagemaker_ca: Option<PathBuf>,
    /// End each SageMaker stream after SECONDS of audio with a ModelStreamError, as
    /// SageMaker ends streams at its 30-minute cap (audio time, so tests are repeatable).
    #[arg(long, value_name = "SECONDS", requires = "sagemaker_listen")]
    pub sagemaker_session_cap: Option<f64>,
}
