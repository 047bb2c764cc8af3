//! The commands: turn parsed arguments into a source, an endpoint and sinks, run the session,
//! and decide the exit code.

use crate::audio::Source;
use crate::audio::condition::Conditioner;
use crate::audio::raw::{RawFormat, RawPcmSource};
use crate::audio::wav::WavSource;
use crate::cli::{
    Cli, Command, FileArgs, Format, ListenArgs, OutputArgs, PaceArgs, RedactArg, SampleFormat,
    ServeArgs, StreamArgs,
};
use crate::error::{FluxError, exit};
use crate::flux::{Dialect, Encoding, ParamError, Redact, StreamParams};
use crate::output::jsonl::JsonlSink;
use crate::output::status::StatusSink;
use crate::output::text::TextSink;
use crate::output::{Fanout, Sink};
use crate::provider::deepgram::{self, DeepgramOptions};
use crate::serve;
use crate::session::{self, ClientEvent, Control, Event, Feed, SessionOptions, Summary};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the command line; `Ok` carries the exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::File(args) => run_file(args).await,
        Command::Listen(args) => run_listen(args).await,
        Command::Serve(args) => run_serve(args).await,
    }
}

async fn run_serve(args: ServeArgs) -> anyhow::Result<u8> {
    serve::run(serve::ServeOptions {
        listen: args.listen,
        api_key: args.api_key,
        script: args.script,
        log: args.log,
        faults: args.faults,
    })
    .await?;
    Ok(exit::SUCCESS)
}

async fn run_file(args: FileArgs) -> anyhow::Result<u8> {
    let plan = Plan::new(&args.stream, &args.pace)?;
    let source = if args.path == Path::new("-") {
        WavSource::from_reader("stdin", Box::new(io::stdin()))?
    } else {
        WavSource::open(&args.path)?
    };
    stream(plan, source, &args.output, |_| None).await
}

async fn run_listen(args: ListenArgs) -> anyhow::Result<u8> {
    let plan = Plan::new(&args.stream, &args.pace)?;
    let format = match args.sample_format {
        SampleFormat::S16le => RawFormat::S16Le,
        SampleFormat::F32le => RawFormat::F32Le,
    };
    let source = RawPcmSource::new(
        "stdin",
        Box::new(io::stdin()),
        args.rate,
        args.channels,
        format,
    )?;
    stream(plan, source, &args.output, |s: &RawPcmSource| {
        let n = s.trailing_bytes();
        (n > 0).then(|| {
            format!(
                "stdin ended with {n} byte(s) that do not make a whole sample frame; they were \
                 not sent (check --sample-format and --channels)"
            )
        })
    })
    .await
}

/// Everything decided from the flags before any audio is read or any connection made.
struct Plan {
    session: SessionOptions,
    chunk_ms: u32,
}

impl Plan {
    fn new(stream: &StreamArgs, pace: &PaceArgs) -> Result<Plan, FluxError> {
        let params = stream_params(stream);
        params
            .validate(Dialect::Deepgram)
            .map_err(|e| FluxError::Usage(flag_error(&e)))?;
        let api_key = deepgram::api_key(stream.api_key_file.as_deref())?;
        let endpoint = deepgram::endpoint(
            DeepgramOptions {
                base_url: stream.url.as_deref(),
                api_key,
                allow_insecure: stream.allow_insecure,
                force_end_turn: !stream.no_force_end_turn,
            },
            &params,
        )?;
        let frame_samples = stream.sample_rate as usize * stream.chunk_ms as usize / 1000;
        Ok(Plan {
            session: SessionOptions {
                endpoint,
                model: params.model_or_default().to_string(),
                sample_rate: stream.sample_rate,
                frame_bytes: frame_samples * 2,
                eot_timeout_ms: params.eot_timeout_ms_or_default(),
                pace: if pace.fast {
                    None
                } else {
                    Some(pace.pace.unwrap_or(1.0))
                },
                connect_timeout: CONNECT_TIMEOUT,
            },
            chunk_ms: stream.chunk_ms,
        })
    }
}

/// The stream parameters the flags ask for. flux always sends raw linear16 (it conditions
/// every input itself), so encoding and sample_rate are always set.
fn stream_params(s: &StreamArgs) -> StreamParams {
    StreamParams {
        model: Some(s.model.clone()),
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

/// Streams one source through one session and renders it; returns the exit code.
async fn stream<S, N>(plan: Plan, source: S, output: &OutputArgs, end_note: N) -> anyhow::Result<u8>
where
    S: Source + 'static,
    N: FnOnce(&S) -> Option<String> + Send + 'static,
{
    let info = source.info().clone();
    let conditioner = Conditioner::new(
        info.sample_rate,
        info.channels,
        plan.session.sample_rate,
        plan.chunk_ms,
    )?;
    let feed: mpsc::Receiver<Feed> = session::feed::spawn(source, conditioner, end_note);
    let (control_tx, controls) = mpsc::channel(16);
    let stopped = Arc::new(AtomicBool::new(false));
    handle_interrupts(control_tx, stopped);
    let mut sinks: Vec<Box<dyn Sink>> = vec![match output.format() {
        Format::Text => Box::new(TextSink::new(io::stdout())),
        Format::Jsonl => Box::new(JsonlSink::new(io::stdout())),
    }];
    if !output.quiet {
        sinks.push(Box::new(StatusSink::new(io::stderr())));
    }
    let mut sink = Fanout(sinks);

    let started = Instant::now();
    let outcome = session::run(&plan.session, feed, &mut sink, controls).await;
    let wall = started.elapsed().as_secs_f64();

    let (code, error): (u8, Option<anyhow::Error>) = match (outcome.error, outcome.input_error) {
        (Some(e), _) => (e.exit_code(), Some(e.into())),
        (None, Some(e)) => (exit::INPUT, Some(e.into())),
        (None, None) => (exit::SUCCESS, None),
    };
    let summary = Summary {
        request_id: outcome.request_id,
        audio_seconds: round3(outcome.audio_seconds),
        input_seconds: round3(outcome.input_seconds),
        frames_sent: outcome.frames_sent,
        bytes_sent: outcome.bytes_sent,
        turns: outcome.turns,
        unconfirmed_turns: outcome.unconfirmed_turns,
        wall_seconds: round3(wall),
        exit_code: code,
        error: error.as_ref().map(|e| format!("{e:#}")),
    };
    if outcome.output_closed {
        // The reader went away (`| head -1`): that is how pipes end, not an error.
        return Ok(if code == exit::SUCCESS || error.is_none() {
            exit::SUCCESS
        } else {
            code
        });
    }
    if !output.quiet {
        eprintln!(
            "flux: {} turn(s), {:.2}s of audio sent in {:.2}s",
            summary.turns + summary.unconfirmed_turns,
            summary.audio_seconds,
            summary.wall_seconds
        );
    }
    if output.format() == Format::Jsonl {
        // A failed write here means stdout closed at the very end; nothing is left to lose.
        let _ = sink.0[0].event(&Event::Client(ClientEvent::Summary(Box::new(summary))));
    }
    match error {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// First Ctrl-C (or SIGTERM): finish the stream like end of input (`stopped` tells live
/// sources to stop capturing). Second Ctrl-C: exit 130 at once, after any line being written
/// is complete (the stdout lock is taken first, so JSONL never ends in half a line).
fn handle_interrupts(controls: mpsc::Sender<Control>, stopped: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut interrupts = 0u32;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    if r.is_err() { return; }
                }
                _ = terminate() => {}
            }
            interrupts += 1;
            if interrupts == 1 {
                stopped.store(true, Ordering::SeqCst);
                let _ = controls.send(Control::Finish).await;
                eprintln!("flux: finishing the stream (Ctrl-C again to quit at once)");
            } else {
                let _out = io::stdout().lock();
                let _ = io::stderr().flush();
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    });
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}
