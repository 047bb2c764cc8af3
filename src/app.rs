//! The commands: turn parsed arguments into a source, an endpoint and sinks, run the session,
//! and decide the exit code.

use crate::audio::Source;
use crate::audio::condition::Conditioner;
use crate::audio::mic::meter::{self, Meter, Screen};
use crate::audio::mic::{MicOptions, MicSource, MicStatus, devices};
use crate::audio::raw::{RawFormat, RawPcmSource};
use crate::audio::wav::WavSource;
use crate::cli::{
    Cli, Command, DevicesArgs, FileArgs, Format, ListenArgs, OutputArgs, PaceArgs, Provider,
    RedactArg, SampleFormat, ServeArgs, StreamArgs,
};
use crate::error::{FluxError, exit};
use crate::flux::params::DEFAULT_MODEL;
use crate::flux::{Dialect, Encoding, ParamError, Redact, StreamParams};
use crate::output::jsonl::JsonlSink;
use crate::output::live::{self, LiveOptions, LiveView};
use crate::output::progress::{self, ProgressSink, Suspended};
use crate::output::status::StatusSink;
use crate::output::text::TextSink;
use crate::output::{Fanout, Sink};
use crate::provider::cloudflare::{self, CloudflareOptions};
use crate::provider::deepgram::{self, DeepgramOptions};
use crate::provider::{self, Endpoint};
use crate::serve;
use crate::session::tap::{Tap, WavTap};
use crate::session::{self, ClientEvent, Control, Event, Feed, SessionOptions, Summary};
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// After the first Ctrl-C, how long a live source may take to end its input by itself.
const LIVE_STOP_GRACE: Duration = Duration::from_secs(3);

/// Runs the command line; `Ok` carries the exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::File(args) => run_file(args).await,
        Command::Listen(args) => run_listen(args).await,
        Command::Serve(args) => run_serve(args).await,
        Command::Devices(args) => run_devices(args),
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
    let extras = Extras {
        tap: save_tap(args.save_audio.as_deref(), &plan)?,
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
    let plan = Plan::new(&args.stream, &args.pace)?;
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
            .map(|h| provider::parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        provider::with_user_headers(&mut endpoint, user_headers);
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

/// What some sources add to streaming.
#[derive(Default)]
struct Extras {
    /// Set by the first Ctrl-C; a live source stops capturing when it sees it.
    stopped: Arc<AtomicBool>,
    /// The source ends by itself once `stopped` is set (a microphone), so the first Ctrl-C
    /// ends the input and everything captured is still sent, as at end of input.
    live: bool,
    /// `--save-audio`.
    tap: Option<Box<dyn Tap>>,
    /// A level meter to draw on stderr while capturing, and the screen it shares.
    meter: Option<(Screen, MicStatus)>,
    /// The microphone level (f32 bits, dBFS) for the live view's status line.
    level: Option<Arc<std::sync::atomic::AtomicU32>>,
}

/// Streams one source through one session and renders it; returns the exit code.
async fn stream<S, N>(
    plan: Plan,
    source: S,
    output: &OutputArgs,
    end_note: N,
    extras: Extras,
) -> anyhow::Result<u8>
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
    if let Some(path) = &plan.control {
        session::control_file::spawn(path.clone(), control_tx.clone()).map_err(|e| {
            FluxError::Usage(format!("cannot read --control {}: {e}", path.display()))
        })?;
    }
    let format = match output.format() {
        Format::Live if !live::available() => {
            if !output.quiet {
                eprintln!("flux: warning: --format live needs a terminal on stdout; printing text");
            }
            Format::Text
        }
        f => f,
    };
    // The live view shows the level, progress and status itself: no stderr meter or bar.
    let extras_meter = extras.meter.filter(|_| format != Format::Live);
    let total = info
        .total_frames
        .map(|frames| frames as f64 / f64::from(info.sample_rate.max(1)));
    let bar = match total {
        Some(t) if format != Format::Live && !output.quiet && progress::available() => {
            Some(progress::bar(t, output.color_forced()))
        }
        _ => None,
    };
    // The view owns stderr too when it is the same terminal: status goes into the view.
    let notes_in_view = format == Format::Live && io::stderr().is_terminal();
    let (live_view, mut live_sink) = match format {
        Format::Live => {
            let (view, sink) = LiveView::start(LiveOptions {
                color: live::colour_wanted(output.color_forced()),
                controls: Some(control_tx.clone()),
                stopped: Some(extras.stopped.clone()),
                finish_grace: extras.live.then_some(LIVE_STOP_GRACE),
                total_seconds: total,
                mic_level: extras.level.clone(),
                notes: notes_in_view && !output.quiet,
            });
            (Some(view), Some(sink))
        }
        _ => (None, None),
    };
    let stdout_bar = bar.clone().filter(|_| io::stdout().is_terminal());
    let screen = extras_meter.as_ref().map(|(screen, _)| screen.clone());
    handle_interrupts(control_tx, extras.stopped, extras.live, screen.clone());
    let mut sinks: Vec<Box<dyn Sink>> = vec![match (format, &screen) {
        (Format::Live, _) if live_sink.is_some() => match live_sink.take() {
            Some(sink) => Box::new(sink),
            None => Box::new(TextSink::new(io::stdout())),
        },
        // With a meter on the terminal, writers that share it erase the meter line first.
        (Format::Text, Some(s)) if io::stdout().is_terminal() => {
            Box::new(TextSink::new(s.writer(io::stdout())))
        }
        (Format::Jsonl, Some(s)) if io::stdout().is_terminal() => {
            Box::new(JsonlSink::new(s.writer(io::stdout())))
        }
        (Format::Text | Format::Live, _) => Box::new(TextSink::new(Suspended::new(
            stdout_bar.clone(),
            io::stdout(),
        ))),
        (Format::Jsonl, _) => Box::new(JsonlSink::new(Suspended::new(stdout_bar, io::stdout()))),
    }];
    if !output.quiet && !notes_in_view {
        sinks.push(match &screen {
            Some(s) => Box::new(StatusSink::new(s.writer(io::stderr()))),
            None => Box::new(StatusSink::new(Suspended::new(bar.clone(), io::stderr()))),
        });
    }
    if let (Some(bar), Some(total)) = (&bar, total) {
        sinks.push(Box::new(ProgressSink::new(bar.clone(), total)));
    }
    let mut sink = Fanout(sinks);

    let meter = extras_meter.map(|(screen, status)| Meter::start(screen, status));
    let started = Instant::now();
    let outcome = session::run(&plan.session, feed, &mut sink, controls, extras.tap).await;
    let wall = started.elapsed().as_secs_f64();
    // Erase the meter, give the terminal back and clear the bar before the closing lines.
    drop(meter);
    if let Some(view) = live_view {
        view.finish();
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

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
        reconnects: outcome.reconnects,
        filled_seconds: round3(outcome.filled_seconds),
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
    if format == Format::Jsonl {
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
///
/// A live source ends its input itself once `stopped` is set, after handing over what it
/// captured, so the session is only told to finish if that has not happened after
/// [`LIVE_STOP_GRACE`] (e.g. a driver that hangs on close).
fn handle_interrupts(
    controls: mpsc::Sender<Control>,
    stopped: Arc<AtomicBool>,
    live: bool,
    screen: Option<Screen>,
) {
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
                let message = "flux: finishing the stream (Ctrl-C again to quit at once)";
                match &screen {
                    Some(s) => {
                        let _ = writeln!(s.writer(io::stderr()), "{message}");
                    }
                    // The live view shows "finishing" itself; a line here would tear it.
                    None if live::is_active() => {}
                    None => eprintln!("{message}"),
                }
                if live {
                    let controls = controls.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(LIVE_STOP_GRACE).await;
                        // Ignored by the session when the input has already ended.
                        let _ = controls.send(Control::Finish).await;
                    });
                } else {
                    let _ = controls.send(Control::Finish).await;
                }
            } else {
                live::restore_terminal();
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
