//! The commands: turn parsed arguments into a source, an endpoint and sinks, run the session,
//! and decide the exit code.

use crate::assertions::Expectations;
use crate::audio::mic::meter::{self, Screen};
use crate::audio::mic::{MicOptions, MicSource, devices};
use crate::audio::raw::{RawFormat, RawPcmSource};
use crate::audio::wav::WavSource;
use crate::cli::{
    Cli, Command, CompletionsArgs, DevicesArgs, FileArgs, ListenArgs, PaceArgs, Provider,
    RedactArg, SampleFormat, ServeArgs, StreamArgs,
};
use crate::completions;
use crate::error::{FluxError, exit};
use crate::protocol::params::DEFAULT_MODEL;
use crate::protocol::{Dialect, Encoding, ParamError, Redact, StreamParams};
use crate::provider::cloudflare::{self, CloudflareOptions};
use crate::provider::deepgram::{self, DeepgramOptions};
use crate::provider::{self, Endpoint};
use crate::serve;
use crate::session::SessionOptions;
use crate::session::tap::{Tap, WavTap};
use pipeline::{Extras, stream};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

mod batch;
mod pipeline;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the command line; `Ok` carries the exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::File(args) => run_file(args).await,
        Command::Listen(args) => run_listen(args).await,
        Command::Serve(args) => run_serve(args).await,
        Command::Devices(args) => run_devices(args),
        Command::Completions(args) => print_completions(args),
        Command::Man => print(&completions::man()?),
    }
}

/// `flux completions SHELL`: the script on stdout.
fn print_completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    print(&completions::completion(args.shell))
}

/// Writes generated text to stdout; a reader that goes away early is not an error.
fn print(bytes: &[u8]) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(exit::SUCCESS),
    }
}

async fn run_serve(args: ServeArgs) -> anyhow::Result<u8> {
    serve::run(serve::ServeOptions {
        listen: args.listen,
        api_key: args.api_key,
        script: args.script,
        log: args.log,
        faults: args.faults,
        asr: args.asr.map(|_| serve::asr::AsrOptions {
            model_dir: args.asr_model.unwrap_or_else(serve::asr::default_model_dir),
            workers: usize::from(args.asr_workers),
            partials: true,
        }),
    })
    .await?;
    Ok(exit::SUCCESS)
}

async fn run_file(args: FileArgs) -> anyhow::Result<u8> {
    // Checked first: a misused assertion flag is a usage error whatever the credentials.
    let expect = Expectations::from_args(&args.assert, !args.pace.fast)?;
    if args.paths.len() > 1 {
        let format = batch::check(&args)?;
        let plan = Plan::new(&args.stream, &args.pace)?;
        return batch::run(args, plan, expect, format).await;
    }
    let plan = Plan::new(&args.stream, &args.pace)?;
    let Some(path) = args.paths.first() else {
        return Err(FluxError::Usage("flux file needs a WAV file (or - for stdin)".into()).into());
    };
    let source = if path == Path::new("-") {
        WavSource::from_reader("stdin", Box::new(io::stdin()))?
    } else {
        WavSource::open(path)?
    };
    let extras = Extras {
        tap: save_tap(args.save_audio.as_deref(), &plan)?,
        expect,
        ..Extras::default()
    };
    stream(plan, source, &args.output, |_| None, extras).await
}

/// `flux devices`: input devices as a table, or JSONL for scripts.
fn run_devices(args: DevicesArgs) -> anyhow::Result<u8> {
    let list = devices::list(&devices::host()?)?;
    let mut out = io::stdout().lock();
    let written = if args.jsonl {
        list.iter().try_for_each(|d| {
            serde_json::to_writer(&mut out, d).map_err(io::Error::from)?;
            writeln!(out)
        })
    } else if list.is_empty() {
        Ok(())
    } else {
        out.write_all(devices::table(&list).as_bytes())
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if list.is_empty() {
        eprintln!("flux: no audio input devices found; connect a microphone");
    }
    Ok(exit::SUCCESS)
}

/// The `--save-audio` file, created before streaming so a bad path fails at once.
fn save_tap(path: Option<&Path>, plan: &Plan) -> Result<Option<Box<dyn Tap>>, FluxError> {
    path.map(|p| {
        WavTap::create(p, plan.session.sample_rate)
            .map(|t| Box::new(t) as Box<dyn Tap>)
            .map_err(|e| {
                FluxError::Usage(format!(
                    "invalid --save-audio: cannot create {}: {e}",
                    p.display()
                ))
            })
    })
    .transpose()
}

/// `flux listen --mic`: capture from a device until Ctrl-C, --duration or a device failure.
async fn run_mic(args: ListenArgs) -> anyhow::Result<u8> {
    let mut plan = Plan::new(&args.stream, &args.pace)?;
    // The device's clock paces the audio; pacing it again would only add delay.
    plan.session.pace = None;
    plan.session.live_source = true;
    let tap = save_tap(args.save_audio.as_deref(), &plan)?;
    let stopped = Arc::new(AtomicBool::new(false));
    let source = MicSource::open(MicOptions {
        device: args.device.clone(),
        duration: args.duration,
        stopped: stopped.clone(),
        buffer_ms: None,
    })?;
    if !args.output.quiet {
        let until = match args.duration {
            Some(d) => format!("for {d} s of audio (Ctrl-C to finish early)"),
            None => "Ctrl-C to finish".into(),
        };
        eprintln!(
            "flux: capturing from {} ({}); {until}",
            source.id(),
            source.format()
        );
    }
    let meter = meter::enabled(args.output.quiet).then(|| (Screen::default(), source.status()));
    let extras = Extras {
        stopped,
        live: true,
        tap,
        meter,
        level: Some(source.status().level.cell()),
        expect: None,
    };
    stream(
        plan,
        source,
        &args.output,
        |s: &MicSource| s.drop_report(),
        extras,
    )
    .await
}

async fn run_listen(args: ListenArgs) -> anyhow::Result<u8> {
    if args.mic {
        return run_mic(args).await;
    }
    let mut plan = Plan::new(&args.stream, &args.pace)?;
    // Raw PCM on stdin is often a capture program (`arecord ... | flux listen --stdin`).
    plan.session.live_source = true;
    let Some(rate) = args.rate else {
        return Err(FluxError::Usage("--stdin needs --rate HZ".into()).into());
    };
    let tap = save_tap(args.save_audio.as_deref(), &plan)?;
    let format = match args.sample_format {
        SampleFormat::S16le => RawFormat::S16Le,
        SampleFormat::F32le => RawFormat::F32Le,
    };
    let source = RawPcmSource::new("stdin", Box::new(io::stdin()), rate, args.channels, format)?;
    stream(
        plan,
        source,
        &args.output,
        |s: &RawPcmSource| {
            let n = s.trailing_bytes();
            (n > 0).then(|| {
                format!(
                    "stdin ended with {n} byte(s) that do not make a whole sample frame; they were \
                 not sent (check --sample-format and --channels)"
                )
            })
        },
        Extras {
            tap,
            ..Extras::default()
        },
    )
    .await
}

/// Everything decided from the flags before any audio is read or any connection made.
struct Plan {
    session: SessionOptions,
    chunk_ms: u32,
    /// `--control FILE`: requests to read while streaming.
    control: Option<std::path::PathBuf>,
}

impl Plan {
    fn new(stream: &StreamArgs, pace: &PaceArgs) -> Result<Plan, FluxError> {
        let dialect = match stream.provider {
            Provider::Deepgram => Dialect::Deepgram,
            Provider::Cloudflare => Dialect::Cloudflare,
        };
        let params = stream_params(stream, dialect);
        params
            .validate(dialect)
            .map_err(|e| FluxError::Usage(flag_error(&e)))?;
        let mut endpoint = endpoint(stream, &params)?;
        let user_headers = stream
            .headers
            .iter()
            .map(|h| provider::parse_header(h.expose()))
            .collect::<Result<Vec<_>, _>>()?;
        provider::with_user_headers(&mut endpoint, user_headers);
        // Read now, so a bad CA file fails (exit 2) before any audio is read.
        if !stream.ca_certs.is_empty() {
            endpoint.tls = Some(crate::session::tls::client_config(&stream.ca_certs)?);
        }
        let frame_samples = stream.sample_rate as usize * stream.chunk_ms as usize / 1000;
        Ok(Plan {
            session: SessionOptions {
                endpoint,
                model: params.model_or_default().to_string(),
                sample_rate: stream.sample_rate,
                frame_bytes: frame_samples * 2,
                eot_timeout_ms: params.eot_timeout_ms_or_default(),
                eot_threshold: params.eot_threshold_or_default(),
                pace: if pace.fast {
                    None
                } else {
                    Some(pace.pace.unwrap_or(1.0))
                },
                live_source: false,
                connect_timeout: CONNECT_TIMEOUT,
                max_reconnects: stream.max_reconnects,
                stall_timeout: Duration::from_secs_f64(stream.stall_timeout),
            },
            chunk_ms: stream.chunk_ms,
            control: stream.control.clone(),
        })
    }
}

/// The provider's endpoint for these flags.
fn endpoint(stream: &StreamArgs, params: &StreamParams) -> Result<Endpoint, FluxError> {
    match stream.provider {
        Provider::Deepgram => {
            for (flag, given) in [
                ("--account-id", stream.account_id.is_some()),
                ("--gateway", stream.gateway.is_some()),
            ] {
                if given {
                    return Err(FluxError::Usage(format!(
                        "{flag} is for --provider cloudflare"
                    )));
                }
            }
            deepgram::endpoint(
                DeepgramOptions {
                    base_url: stream.url.as_deref(),
                    api_key: deepgram::api_key(stream.api_key_file.as_deref())?,
                    allow_insecure: stream.allow_insecure,
                    force_end_turn: !stream.no_force_end_turn,
                },
                params,
            )
        }
        Provider::Cloudflare => cloudflare::endpoint(
            CloudflareOptions {
                url: stream.url.as_deref(),
                gateway: stream.gateway.as_deref(),
                account_id: cloudflare::account_id(stream.account_id.as_deref()),
                api_token: cloudflare::api_token(stream.api_key_file.as_deref())?,
                allow_insecure: stream.allow_insecure,
            },
            params,
        ),
    }
}

/// The stream parameters the flags ask for. flux always sends raw linear16 (it conditions
/// every input itself), so encoding and sample_rate are always set.
fn stream_params(s: &StreamArgs, dialect: Dialect) -> StreamParams {
    StreamParams {
        // Deepgram requires a model; Cloudflare has no choice of model and takes none.
        model: match dialect {
            Dialect::Deepgram => Some(s.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into())),
            Dialect::Cloudflare => s.model.clone(),
        },
        encoding: Some(Encoding::Linear16),
        sample_rate: Some(s.sample_rate),
        eot_threshold: s.eot_threshold,
        eager_eot_threshold: s.eager_eot_threshold,
        eot_timeout_ms: s.eot_timeout_ms,
        keyterms: s.keyterms.clone(),
        language_hints: s.language_hints.clone(),
        numerals: s.numerals.then_some(true),
        profanity_filter: s.profanity_filter.then_some(true),
        redact: s
            .redact
            .iter()
            .map(|r| match r {
                RedactArg::Numbers => Redact::Numbers,
                RedactArg::AggressiveNumbers => Redact::AggressiveNumbers,
            })
            .collect(),
        mip_opt_out: s.mip_opt_out.then_some(true),
        tags: s.tags.clone(),
    }
}

/// A parameter rule broken, phrased with the flag the user typed.
fn flag_error(e: &ParamError) -> String {
    match &e.param {
        Some(p) => {
            let flag = match p.as_str() {
                "keyterm" | "language_hint" | "tag" => format!("--{}", p.replace('_', "-")),
                other => format!("--{}", other.replace('_', "-")),
            };
            format!("invalid {flag}: {}", e.message)
        }
        None => e.message.clone(),
    }
}
