//! The commands: turn parsed arguments into a source, an endpoint and sinks, run the session,
//! and decide the exit code.

use crate::assertions::{AssertConfig, Expectations};
use crate::audio::mic::{LEVEL_FLOOR_DBFS, MicOptions, MicSource, devices};
use crate::audio::raw::{RawFormat, RawPcmSource};
use crate::audio::wav::WavSource;
use crate::cli::{
    AssertArgs, Cli, Command, CompletionsArgs, ConfigArgs, DevicesArgs, FileArgs, ListenArgs,
    PaceArgs, Provider, RedactArg, SampleFormat, ServeArgs, StreamArgs,
};
use crate::completions;
use crate::error::{ExitCode, FluxError};
use crate::output::meter::MeterInput;
use crate::protocol::params::DEFAULT_MODEL;
use crate::protocol::{Dialect, Encoding, ParamError, Redact, StreamParams};
use crate::serve;
use crate::session::SessionOptions;
use crate::session::tap::{Tap, WavTap};
use capped::Capped;
use endpoint::{endpoint, with_user_settings};
use files::{Input, refuse_overwriting_inputs};
use output_watch::print;
use pipeline::{Extras, stream};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

mod batch;
mod capped;
pub mod config;
mod control_file;
mod controller;
mod doctor;
mod doctor_cert;
mod doctor_net;
mod endpoint;
mod fdlimit;
mod files;
mod fireworks;
mod keys;
mod load;
mod local;
mod output_watch;
mod pipeline;
mod replay;
mod sides;
mod terminal;
mod writer;

pub use terminal::error_text;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the command line; `Ok` carries the exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::File(args) => run_file(args).await,
        Command::Listen(args) => run_listen(args).await,
        Command::Serve(args) => run_serve(args).await,
        Command::Load(args) => load::run(args).await,
        Command::Devices(args) => run_devices(args),
        Command::Completions(args) => print_completions(args),
        Command::Man => print(&completions::man()?),
        Command::Doctor(args) => doctor::run(args).await,
        Command::Config(args) => print_config(args),
        Command::Replay(args) => replay::run(args).await,
    }
}

/// `flux config`: the effective settings and where each came from, on stdout.
fn print_config(args: ConfigArgs) -> anyhow::Result<u8> {
    let env = |k: &str| std::env::var(k).ok();
    print(config::show::render(config::current(), &args.stream.headers, &env).as_bytes())
}

/// `flux completions SHELL`: the script on stdout.
fn print_completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    print(&completions::completion(args.shell))
}

async fn run_serve(args: ServeArgs) -> anyhow::Result<u8> {
    // Each client holds a descriptor: a thousand of them pass the usual soft limit of 1,024.
    fdlimit::raise_open_files();
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
        idle_timeout: (args.idle_timeout > 0.0).then(|| Duration::from_secs_f64(args.idle_timeout)),
        sagemaker_listen: args.sagemaker_listen,
        sagemaker_ca: args.sagemaker_ca,
        sagemaker_session_cap: args.sagemaker_session_cap,
        replay: args.replay,
    })
    .await?;
    Ok(ExitCode::Success.code())
}

async fn run_file(args: FileArgs) -> anyhow::Result<u8> {
    if args.sides.split_channels {
        return sides::start::split_file(args).await;
    }
    if !args.sides.channel_labels.is_empty() {
        return Err(FluxError::Usage(
            "--channel-labels names the sides of --split-channels; add --split-channels".into(),
        )
        .into());
    }
    if args.assert.expect_file.len() > 1 {
        return Err(FluxError::Usage(
            "--expect-file is given more than once; give it once (or LABEL=FILE per side with \
             --split-channels)"
                .into(),
        )
        .into());
    }
    // Checked first: a misused assertion flag is a usage error whatever the credentials.
    let expect = Expectations::from_config(&assert_config(&args.assert), !args.pace.fast)?;
    let term = terminal::detect(args.output.color_forced());
    if args.paths.len() > 1 {
        let format = batch::check(&args, &term)?;
        let plan = Plan::new(&args.stream, &args.pace)?;
        return batch::run(args, plan, expect, format).await;
    }
    let plan = Plan::new(&args.stream, &args.pace)?;
    let Some(path) = args.paths.first() else {
        return Err(FluxError::Usage("flux file needs a WAV file (or - for stdin)".into()).into());
    };
    // Before the input is opened or the output created, so that nothing is touched.
    if let Some(out) = &args.save_audio {
        refuse_overwriting_inputs("--save-audio", out, &[Input::Path(path)])?;
    }
    let source = if path == Path::new("-") {
        WavSource::from_reader("stdin", Box::new(io::stdin()))?
    } else {
        WavSource::open(path)?
    };
    let extras = Extras {
        // Created only now that the input is open.
        tap: save_tap(args.save_audio.as_deref(), &plan)?,
        expect,
        ..Extras::default()
    };
    stream(plan, source, &args.output, term, |_| None, extras).await
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
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(output_watch::output_error(&e.to_string()).into());
        }
        _ => {}
    }
    if list.is_empty() {
        eprintln!("flux: no audio input devices found; connect a microphone");
    }
    Ok(ExitCode::Success.code())
}

/// The assertion flags as the plain values `assertions` takes.
fn assert_config(args: &AssertArgs) -> AssertConfig {
    AssertConfig {
        expect_text: args.expect_text.clone(),
        expect_file: args.expect_file.first().cloned(),
        max_wer: args.max_wer,
        expect_turns: args.expect_turns,
        max_eot_latency_ms: args.max_eot_latency_ms,
    }
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
    if args.sides.split_channels {
        return Err(FluxError::Usage(
            "--split-channels reads a stereo file or raw PCM on stdin (flux listen --stdin \
             --channels N); for one side per microphone give --device once per device"
                .into(),
        )
        .into());
    }
    if args.device.len() > 1 {
        return sides::start::mic_sides(args).await;
    }
    if !args.sides.channel_labels.is_empty() {
        return Err(FluxError::Usage(
            "--channel-labels names the sides of --split-channels or of several --device".into(),
        )
        .into());
    }
    let mut plan = Plan::new(&args.stream, &args.pace)?;
    // The device's clock paces the audio; pacing it again would only add delay.
    plan.session.pace = None;
    plan.session.live_source = true;
    let stopped = Arc::new(AtomicBool::new(false));
    let source = MicSource::open(MicOptions {
        device: args.device.first().cloned(),
        duration: args.duration,
        stopped: stopped.clone(),
        buffer_ms: None,
    })?;
    // Created once the device is open: a microphone that fails leaves no empty file behind.
    let tap = save_tap(args.save_audio.as_deref(), &plan)?;
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
    let status = source.status();
    let extras = Extras {
        stopped,
        live: true,
        tap,
        meter: Some(MeterInput {
            id: status.id.clone(),
            level: status.level.cell(),
            capturing: status.capturing.clone(),
            floor_dbfs: LEVEL_FLOOR_DBFS,
        }),
        level: Some(status.level.cell()),
        expect: None,
    };
    stream(
        plan,
        source,
        &args.output,
        terminal::detect(args.output.color_forced()),
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
    if let Some(out) = &args.save_audio {
        refuse_overwriting_inputs("--save-audio", out, &[Input::Stdin])?;
    }
    let format = match args.sample_format {
        SampleFormat::S16le => RawFormat::S16Le,
        SampleFormat::F32le => RawFormat::F32Le,
    };
    let source = RawPcmSource::new("stdin", Box::new(io::stdin()), rate, args.channels, format)?;
    // Before any audio is read: a wrong count of labels is a usage error.
    if args.sides.split_channels {
        sides::labels(&args.sides.channel_labels, args.channels)?;
    } else if !args.sides.channel_labels.is_empty() {
        return Err(FluxError::Usage(
            "--channel-labels names the sides of --split-channels; add --split-channels".into(),
        )
        .into());
    }
    // `--duration` caps the capture; without it the cap is never reached.
    let source = Capped::new(source, args.duration.unwrap_or(f64::INFINITY));
    if args.sides.split_channels {
        return sides::start::split_stdin(args, plan, source).await;
    }
    let tap = save_tap(args.save_audio.as_deref(), &plan)?;
    stream(
        plan,
        source,
        &args.output,
        terminal::detect(args.output.color_forced()),
        |s: &Capped<RawPcmSource>| {
            let n = s.inner.trailing_bytes();
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
        fireworks::refuse_own_flags(stream)?;
        local::refuse_own_flags(stream)?;
        let dialect = match stream.provider {
            Provider::Deepgram => Dialect::Deepgram,
            // Fireworks takes no Flux parameter: `fireworks::endpoint` refuses every one given.
            Provider::Cloudflare | Provider::Fireworks => Dialect::Cloudflare,
            // SageMaker passes Deepgram's dialect through to the container untouched; the
            // local recognizer is flux serve's /v2/listen.
            Provider::Sagemaker | Provider::Local => Dialect::Deepgram,
        };
        let mut params = stream_params(stream, dialect);
        params
            .keyterms
            .extend(config::keyterms::read_all(&stream.keyterm_files)?);
        let (mut endpoint, model) = if stream.provider == Provider::Fireworks {
            fireworks::endpoint(stream)?
        } else {
            params
                .validate(dialect)
                .map_err(|e| FluxError::Usage(flag_error(&e)))?;
            let model = params.model_or_default().to_string();
            (endpoint(stream, &params)?, model)
        };
        // Read now, so a bad header or CA file fails (exit 2) before any audio is read.
        with_user_settings(&mut endpoint, stream)?;
        if let Some(path) = &stream.control {
            check_control_file(path)?;
        }
        let frame_samples = stream.sample_rate as usize * stream.chunk_ms as usize / 1000;
        Ok(Plan {
            session: SessionOptions {
                endpoint,
                model,
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

/// `--control FILE` must be something to read lines from: a file or a FIFO. Opening a FIFO
/// would block until a writer comes, so it is only examined here; a directory opens but never
/// reads, and would be ignored silently. Like every file flag, a bad one is exit 2.
fn check_control_file(path: &Path) -> Result<(), FluxError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(FluxError::Usage(format!(
            "cannot read --control {}: it is a directory; give a file or a FIFO of JSON lines \
             (docs/control.md)",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) => Err(FluxError::Usage(format!(
            "cannot read --control {}: {e}",
            path.display()
        ))),
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
            let key = p.replace('-', "_");
            match config::current().origin(&key) {
                config::Origin::Profile(place) => {
                    format!("invalid `{key}` ({place}): {}", e.message)
                }
                _ => format!("invalid {flag}: {}", e.message),
            }
        }
        None => e.message.clone(),
    }
}
