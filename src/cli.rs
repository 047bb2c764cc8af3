//! The command line: subcommands and the argument groups they share.

use crate::error::ExitCode;
use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod doctor;
mod load;
pub mod local;
mod serve;
mod sides;
pub use doctor::{ConfigArgs, DoctorArgs};
pub use load::LoadArgs;
pub use serve::ServeArgs;
pub use sides::{ReplayArgs, SidesArgs};

#[derive(Debug, Parser)]
#[command(
    name = "flux",
    version,
    about = "Conversational speech recognition from the terminal, with Deepgram Flux",
    long_about = "Conversational speech recognition from the terminal, with Deepgram Flux.\n\n\
        flux streams audio (a microphone, a WAV file, or raw PCM on stdin) to Deepgram's Flux model over \
        WebSocket and prints the conversation's turns: finished turns as text, or every event \
        as JSON lines. `flux serve` runs a local Flux-compatible server for offline work and CI.\n\n\
        Credentials: DEEPGRAM_API_KEY, or --api-key-file FILE; a temporary token: \
        DEEPGRAM_ACCESS_TOKEN, or --access-token-file FILE. Settings can also come from a config \
        file's profiles (docs/configuration.md; `flux config` shows what applies).",
    after_help = ExitCode::help_table(),
    propagate_version = true,
    // A repeated flag means its last value, as in rg and curl, so aliases and wrappers that
    // add a flag the user also typed keep working (repeatable flags such as --keyterm still
    // collect every value). Propagated to every subcommand.
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else
    /// ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md.
    #[arg(long, global = true, value_name = "FILE", env = "FLUX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Use the config file's [profile.NAME] on top of its [default] table.
    #[arg(long, global = true, value_name = "NAME", env = "FLUX_PROFILE")]
    pub profile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream WAV files through Flux (each its own stream), paced like live audio by default.
    #[command(after_help = ExitCode::help_table())]
    File(FileArgs),
    /// Stream live audio through Flux: a microphone (--mic) or raw PCM on stdin (--stdin).
    #[command(after_help = ExitCode::help_table())]
    Listen(ListenArgs),
    /// Re-render a session recorded with --jsonl (text, captions or the live view), at its
    /// recorded pace or faster, without any server.
    Replay(ReplayArgs),
    /// List audio input devices (ids for `flux listen --mic --device`).
    #[command(after_help = DEVICES_AFTER_HELP)]
    Devices(DevicesArgs),
    /// Run a local Flux-compatible server, for offline development and CI.
    #[command(after_help = serve::AFTER_HELP)]
    Serve(ServeArgs),
    /// Load-test a Flux deployment: N concurrent real-time streams looping WAV recordings.
    #[command(after_help = load::AFTER_HELP)]
    Load(LoadArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
    /// Print flux's manual page (roff) on stdout, e.g. `flux man | man -l -`.
    Man,
    /// Check what flux needs: audio input, credentials, DNS, TCP, TLS and a real handshake.
    #[command(after_help = doctor::AFTER_HELP)]
    Doctor(DoctorArgs),
    /// Print the effective settings (flags, environment, profile, defaults) and where each came
    /// from; credentials are never shown.
    Config(ConfigArgs),
}

const COMPLETIONS_AFTER_HELP: &str = "\
Examples:
  flux completions bash > ~/.local/share/bash-completion/completions/flux
  flux completions zsh > ~/.zfunc/_flux        # with fpath+=(~/.zfunc) before compinit
  flux completions fish > ~/.config/fish/completions/flux.fish
  flux completions powershell >> $PROFILE
  flux completions elvish >> ~/.config/elvish/rc.elv";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The WAV files to stream (integer PCM 8/16/24/32-bit, 32-bit float or G.711 µ-law/A-law,
    /// any rate and channel count); `-` reads a WAV from stdin, also one streamed by
    /// `ffmpeg -f wav -`. Each file is its own stream; with several,
    /// each line of output says which file it came from (docs/guide.md#batches).
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Stream at most N files at once, up to 256 (default: as many as there are files, at
    /// most 4). Each stream has its own audio thread and connection; with --split-channels N
    /// counts streams (one per channel), not files.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Also write the audio exactly as sent (mono 16-bit PCM at --sample-rate, after
    /// conditioning) to this WAV file (one input file only).
    #[arg(long, value_name = "FILE.wav")]
    pub save_audio: Option<PathBuf>,
    #[command(flatten)]
    pub sides: SidesArgs,
    #[command(flatten)]
    pub assert: AssertArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Checks for smoke tests in CI: a failed one exits 7 with a report on stderr (and a
/// `flux.assertions` line in JSONL). With several files, each file is checked on its own.
#[derive(Debug, Args)]
#[command(next_help_heading = "Assertions")]
#[command(group(clap::ArgGroup::new("expect").args(["expect_text", "expect_file"])))]
pub struct AssertArgs {
    /// Expect this transcript: the finished turns, joined, are compared word by word after
    /// normalization (case, punctuation, spacing; docs/guide.md#assertions).
    #[arg(long, value_name = "TEXT", conflicts_with = "expect_file")]
    pub expect_text: Option<String>,
    /// Expect the transcript in FILE (UTF-8; line breaks count as spaces). With
    /// --split-channels, LABEL=FILE checks one side (repeat it for each side).
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub expect_file: Vec<PathBuf>,
    /// Word error rate allowed against --expect-text/--expect-file: word-level edits
    /// (substitutions + deletions + insertions) divided by the reference's words. Default 0:
    /// every word must match after normalization.
    #[arg(long, value_name = "RATE", value_parser = parse_wer, requires = "expect")]
    pub max_wer: Option<f64>,
    /// Expect exactly N turns (EndOfTurn, plus any turn left unconfirmed when the stream
    /// closed).
    #[arg(long, value_name = "N")]
    pub expect_turns: Option<u64>,
    /// Fail when an EndOfTurn arrives more than MS milliseconds after the end of its turn's
    /// audio was sent (wall time, at real-time pace; not with --fast).
    #[arg(long, value_name = "MS", value_parser = parse_latency)]
    pub max_eot_latency_ms: Option<f64>,
}

fn parse_wer(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!(
            "`{s}` is not a rate; use a number of at least 0 (0.1 allows one error in ten words)"
        )),
    }
}

fn parse_latency(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{s}` is not a number of milliseconds above 0")),
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["stdin", "mic"])))]
pub struct ListenArgs {
    /// Read raw PCM from stdin until end of input (e.g. from sox, ffmpeg or arecord).
    #[arg(long)]
    pub stdin: bool,
    /// Capture from a microphone (the default input device, or --device) until Ctrl-C or
    /// --duration. Ctrl-C once finishes the last turn and exits 0; twice exits at once.
    #[arg(long, conflicts_with_all = ["pace", "fast"])]
    pub mic: bool,
    /// Input device for --mic: an id from `flux devices`, or a unique part of an id or
    /// description (case-insensitive). Give it twice (or more) for one side per device
    /// (e.g. a headset and a monitor of what the computer plays), named by --channel-labels.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "stdin",
        help_heading = "Microphone",
        action = clap::ArgAction::Append
    )]
    pub device: Vec<String>,
    /// Stop after this many seconds of audio (more than 0, at most 86400), counted in audio
    /// frames from the device or stdin, not wall-clock time: caps a live capture.
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// Also write the audio exactly as sent (mono 16-bit PCM at --sample-rate, after
    /// conditioning) to this WAV file; `flux file FILE.wav` replays the session.
    #[arg(long, value_name = "FILE.wav")]
    pub save_audio: Option<PathBuf>,
    /// Sample rate of the PCM on stdin, in Hz: 1000 to 384000 (required with --stdin).
    #[arg(long, value_name = "HZ", required_if_eq("stdin", "true"), conflicts_with = "mic", value_parser = clap::value_parser!(u32).range(1000..=384_000))]
    pub rate: Option<u32>,
    /// Interleaved channels in the PCM on stdin; they are mixed down to mono.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub channels: u16,
    /// Sample format of the PCM on stdin.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = SampleFormat::S16le)]
    pub sample_format: SampleFormat,
    #[command(flatten)]
    pub sides: SidesArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_duration(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if x.is_finite() && x > 0.0 && x <= 86_400.0 {
        Ok(x)
    } else {
        Err(format!(
            "{s} is out of range; use more than 0 and at most 86400 seconds"
        ))
    }
}

const DEVICES_AFTER_HELP: &str = "\
The default input device is marked with `*`. Pass an id, or a unique part of an id or
description, to `flux listen --mic --device`. flux captures in each device's own default
format (default_config) and converts in process. See docs/microphone.md.";

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// One JSON object per device: {id, description, default, channels, sample_rates,
    /// default_config: {sample_format, sample_rate, channels}}.
    #[arg(long)]
    pub jsonl: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SampleFormat {
    /// Signed 16-bit little-endian integers.
    S16le,
    /// 32-bit little-endian IEEE floats in [-1, 1].
    F32le,
}

/// How fast audio is sent.
#[derive(Debug, Args)]
#[command(next_help_heading = "Pacing")]
pub struct PaceArgs {
    /// Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the
    /// default). Flux is built for live audio: its turn timers run on audio time, so results match real time,
    /// but Deepgram does not promise the same transcripts for bursts.
    #[arg(long, value_name = "FACTOR", conflicts_with = "fast", value_parser = parse_pace)]
    pub pace: Option<f64>,
    /// Send audio as fast as the connection takes it (for tests and batch jobs; same caveat
    /// as --pace).
    #[arg(long)]
    pub fast: bool,
}

fn parse_pace(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if x.is_finite() && (0.1..=1000.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!(
            "{s} is out of range; use 0.1 to 1000 (or --fast for no pacing)"
        ))
    }
}

/// Where the audio goes and how Flux should treat it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct StreamArgs {
    /// Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or
    /// an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`,
    /// the offline recognizer inside flux (no key; docs/providers.md#local).
    #[arg(long, value_name = "PROVIDER", default_value = "deepgram", env = "FLUX_PROVIDER", value_parser = ProviderParser)]
    pub provider: Provider,
    /// Send to this server instead. Deepgram: a base URL such as a `flux serve` address
    /// (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted
    /// Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare:
    /// the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL).
    /// Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with
    /// /v1/audio/transcriptions/streaming). SageMaker: the runtime's https:// base (default
    /// from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2).
    #[arg(long, value_name = "URL", env = "FLUX_URL")]
    pub url: Option<String>,
    /// Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file
    /// instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of
    /// `ps` and shell history).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of
    /// DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the
    /// one set at the higher level (flag > environment > profile) is used, the token on a tie,
    /// and stderr says which.
    #[arg(long, value_name = "FILE")]
    pub access_token_file: Option<PathBuf>,
    /// Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID).
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization).
    #[arg(long, value_name = "GATEWAY")]
    pub gateway: Option<String>,
    /// SageMaker: the name of the endpoint running Flux.
    #[arg(long, value_name = "NAME")]
    pub endpoint: Option<String>,
    /// SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS
    /// profile's region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// SageMaker: the endpoint's container build takes ForceEndTurn and Configure, so send
    /// them. Without this flux ends the last turn with silence and refuses Configure, which
    /// some builds answer by ending the session.
    #[arg(long)]
    pub sagemaker_controls: bool,
    /// Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants;
    /// repeatable. Values are never printed.
    // Kept as secrets from the moment they are parsed, so not even a `{:?}` of the parsed
    // arguments can show them.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_secret)]
    pub headers: Vec<crate::provider::Secret>,
    /// Allow plain ws:// to a host that is not loopback (the audio and API key travel
    /// unencrypted).
    #[arg(long)]
    pub allow_insecure: bool,
    /// Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS
    /// proxy); repeatable. Mozilla's roots stay trusted; certificates are always verified.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,
    /// The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending
    /// silence until the last turn ends instead. Implied for Cloudflare.
    #[arg(long)]
    pub no_force_end_turn: bool,
    /// Reconnect at most N times after the connection drops, fails or stalls (the count
    /// resets after a minute of healthy audio); 0 never reconnects. The open turn's audio is
    /// sent again, so no speech is lost.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_reconnects: u32,
    /// Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to
    /// 3600).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_stall_timeout)]
    pub stall_timeout: f64,
    /// Read control messages from FILE (a FIFO works) while streaming: one JSON object per
    /// line, as Flux's own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"},
    /// {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay
    /// it until then. See docs/control.md.
    #[arg(long, value_name = "FILE")]
    pub control: Option<PathBuf>,

    /// Flux model: flux-general-en (the default), or flux-general-multi for multilingual
    /// audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks:
    /// fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview).
    #[arg(long, value_name = "MODEL", help_heading = "Flux")]
    pub model: Option<String>,
    /// Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is
    /// resampled to it).
    #[arg(long, value_name = "HZ", default_value_t = 16000, value_parser = parse_sample_rate, help_heading = "Flux")]
    pub sample_rate: u32,
    /// Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80).
    #[arg(long, value_name = "MS", default_value_t = 80, value_parser = clap::value_parser!(u32).range(10..=1000), help_heading = "Flux")]
    pub chunk_ms: u32,
    /// End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to
    /// --eot-timeout-ms). Server default 0.7.
    #[arg(long, value_name = "X", help_heading = "Flux")]
    pub eot_threshold: Option<f64>,
    /// Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables
    /// EagerEndOfTurn and TurnResumed.
    #[arg(long, value_name = "X", help_heading = "Flux")]
    pub eager_eot_threshold: Option<f64>,
    /// End a turn after this much audio without speech, whatever the confidence
    /// (500 to 60000). Server default 5000.
    #[arg(long, value_name = "MS", help_heading = "Flux")]
    pub eot_timeout_ms: Option<u32>,
    /// Boost recognition of a term or phrase; repeat for several.
    #[arg(long = "keyterm", value_name = "TERM", help_heading = "Flux")]
    pub keyterms: Vec<String>,
    /// Read keyterms from FILE, one per line (blank lines and lines starting with # are
    /// skipped); added to --keyterm's. Repeatable.
    #[arg(long = "keyterm-file", value_name = "FILE", help_heading = "Flux")]
    pub keyterm_files: Vec<PathBuf>,
    /// Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl);
    /// repeat for several.
    #[arg(long = "language-hint", value_name = "LANG", help_heading = "Flux")]
    pub language_hints: Vec<String>,
    /// Usage-reporting label; repeat for several.
    #[arg(long = "tag", value_name = "TAG", help_heading = "Flux")]
    pub tags: Vec<String>,
    /// Write numbers as digits ("25" rather than "twenty five").
    #[arg(long, help_heading = "Flux")]
    pub numerals: bool,
    /// Mask profanity in transcripts.
    #[arg(long, help_heading = "Flux")]
    pub profanity_filter: bool,
    /// Redact numbers from transcripts; repeat for several kinds.
    #[arg(
        long = "redact",
        value_enum,
        value_name = "KIND",
        help_heading = "Flux"
    )]
    pub redact: Vec<RedactArg>,
    /// Opt out of Deepgram's Model Improvement Program.
    #[arg(long, help_heading = "Flux")]
    pub mip_opt_out: bool,

    /// Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant,
    /// zh-hans); left out, Fireworks detects it.
    #[arg(long, value_name = "LANG", help_heading = "Fireworks")]
    pub language: Option<String>,
    /// Fireworks: words or style to expect, e.g. "Um, here's, uh, what was recorded." keeps
    /// fillers.
    #[arg(long, value_name = "TEXT", help_heading = "Fireworks")]
    pub prompt: Option<String>,
    /// Fireworks: decoding temperature, 0 to 1 (server default 0).
    #[arg(long, value_name = "X", help_heading = "Fireworks")]
    pub temperature: Option<f64>,
    #[command(flatten)]
    pub local: local::LocalArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// Deepgram's /v2/listen (hosted, regional, self-hosted, or `flux serve`).
    Deepgram,
    /// Cloudflare Workers AI @cf/deepgram/flux (REST, AI Gateway, or your Worker).
    Cloudflare,
    /// Fireworks AI streaming transcription (segments, from which flux derives turns).
    Fireworks,
    /// An AWS SageMaker endpoint running Flux (HTTP/2 bidirectional stream, AWS credentials).
    Sagemaker,
    /// The local recognizer inside flux: offline, no key (scripts/fetch-model.sh first).
    Local,
}

/// `--provider`, parsed as clap parses any value list, except that a bad value taken from
/// `FLUX_PROVIDER` says so: the user did not type it, and clap's own message would only name
/// `--provider`.
#[derive(Clone)]
struct ProviderParser;

const PROVIDER_ENV: &str = "FLUX_PROVIDER";

impl TypedValueParser for ProviderParser {
    type Value = Provider;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Provider, clap::Error> {
        EnumValueParser::<Provider>::new()
            .parse_ref(cmd, arg, value)
            .map_err(|e| {
                let typed = std::env::args_os()
                    .any(|a| a == "--provider" || a.to_string_lossy().starts_with("--provider="));
                if typed || std::env::var_os(PROVIDER_ENV).as_deref() != Some(value) {
                    return e;
                }
                let known: Vec<String> = Provider::value_variants()
                    .iter()
                    .filter_map(|p| p.to_possible_value())
                    .map(|p| p.get_name().to_string())
                    .collect();
                clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "the environment variable {PROVIDER_ENV} is `{}`, which is not a \
                         provider; set it to one of: {}; or unset it (--provider takes \
                         precedence)\n",
                        value.to_string_lossy(),
                        known.join(", ")
                    ),
                )
                .with_cmd(cmd)
            })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            Provider::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RedactArg {
    /// Redact numbers.
    Numbers,
    /// Redact numbers more aggressively.
    #[value(name = "aggressive_numbers", alias = "aggressive-numbers")]
    AggressiveNumbers,
}

fn parse_secret(s: &str) -> Result<crate::provider::Secret, std::convert::Infallible> {
    Ok(crate::provider::Secret::new(s))
}

fn parse_stall_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.5..=3600.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0.5 and 3600"
        )),
    }
}

fn parse_sample_rate(s: &str) -> Result<u32, String> {
    let rates = crate::protocol::params::SAMPLE_RATES;
    match s.parse::<u32>() {
        Ok(r) if rates.contains(&r) => Ok(r),
        _ => Err(format!(
            "Flux accepts {}",
            rates.map(|r| r.to_string()).join(", ")
        )),
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// What to print on stdout: `live` shows turns as they happen in the terminal
    /// (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event
    /// as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns
    /// finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise.
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with_all = ["text", "jsonl"])]
    pub format: Option<Format>,
    /// Shorthand for --format text.
    #[arg(long, conflicts_with = "jsonl")]
    pub text: bool,
    /// Shorthand for --format jsonl.
    #[arg(long)]
    pub jsonl: bool,
    /// Print no status or warnings on stderr (errors are still printed).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Colour in the live view and progress bar: auto (unless NO_COLOR is set and not
    /// empty, or TERM=dumb), always or never. Nothing else is ever coloured.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

impl OutputArgs {
    /// The format asked for; the default is `live` when `live_ok` (stdout is a terminal that
    /// can redraw, as the commands' terminal value says).
    pub fn format(&self, live_ok: bool) -> Format {
        match (self.format, self.text, self.jsonl) {
            (Some(f), _, _) => f,
            (None, _, true) => Format::Jsonl,
            (None, true, _) => Format::Text,
            _ if live_ok => Format::Live,
            _ => Format::Text,
        }
    }

    /// `--color` as a decision: `Some` when forced, `None` for auto.
    pub fn color_forced(&self) -> Option<bool> {
        match self.color {
            ColorChoice::Auto => None,
            ColorChoice::Always => Some(true),
            ColorChoice::Never => Some(false),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Turns as they happen, redrawn in the terminal (stdout must be a terminal).
    Live,
    /// One line per finished turn.
    Text,
    /// Every event, one JSON object per line.
    Jsonl,
    /// SubRip captions from finished turns (docs/captions.md).
    Srt,
    /// WebVTT captions from finished turns (docs/captions.md).
    Vtt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn long_help(sub: &str, flag: &str) -> String {
        let mut cmd = Cli::command();
        cmd.build();
        let sub = cmd.find_subcommand(sub).unwrap();
        let arg = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap();
        arg.get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn sample_rate_help_lists_what_flux_accepts() {
        let help = long_help("file", "sample-rate");
        for rate in crate::protocol::params::SAMPLE_RATES {
            assert!(help.contains(&rate.to_string()), "{rate} missing: {help}");
        }
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value() {
        let cli = Cli::try_parse_from([
            "flux",
            "file",
            "a.wav",
            "--eot-threshold",
            "0.7",
            "--eot-threshold",
            "0.8",
            "--fast",
            "--fast",
            "-q",
            "-q",
            "--keyterm",
            "a",
            "--keyterm",
            "b",
        ])
        .unwrap();
        let Command::File(args) = cli.command else {
            panic!("not file")
        };
        assert_eq!(args.stream.eot_threshold, Some(0.8));
        assert!(args.pace.fast && args.output.quiet);
        assert_eq!(args.stream.keyterms, ["a", "b"]);
    }

    #[test]
    fn duration_is_allowed_with_stdin() {
        let cli = Cli::try_parse_from([
            "flux",
            "listen",
            "--stdin",
            "--rate",
            "16000",
            "--duration",
            "2",
        ])
        .unwrap();
        let Command::Listen(args) = cli.command else {
            panic!("not listen")
        };
        assert_eq!(args.duration, Some(2.0));
    }
}
