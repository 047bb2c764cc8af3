//! The commands that stream several sides: a file or raw stdin split by channel, and one
//! side per microphone. Each checks its flags, opens its inputs and `--save-audio` files
//! before anything is streamed, and hands the sides to [`super::run`].

use crate::app::capped::Capped;
use crate::app::files::{Input, refuse_overwriting_inputs};
use crate::app::{Plan, assert_config, pipeline, terminal};
use crate::audio::mic::{LEVEL_FLOOR_DBFS, MicOptions, MicSource};
use crate::audio::raw::RawPcmSource;
use crate::audio::wav::WavSource;
use crate::cli::{FileArgs, ListenArgs};
use crate::error::FluxError;
use crate::output::meter::MeterInput;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// `flux file call.wav --split-channels`: one stream per channel, one timeline.
pub(in crate::app) async fn split_file(args: FileArgs) -> anyhow::Result<u8> {
    if args.paths.len() > 1 {
        let term = terminal::detect(args.output.color_forced());
        let format = crate::app::batch::check(&args, &term)?;
        let plan = Plan::new(&args.stream, &args.pace)?;
        return crate::app::batch::run(args, plan, None, format).await;
    }
    if args.stream.control.is_some() {
        return Err(FluxError::Usage(
            "--control works with one stream, and --split-channels makes one per channel".into(),
        )
        .into());
    }
    let mut config = assert_config(&args.assert);
    config.expect_file = None;
    // A misused assertion flag is a usage error whatever the credentials.
    super::expectations(&config, &[], &[], !args.pace.fast)?;
    let term = terminal::detect(args.output.color_forced());
    let plan = Plan::new(&args.stream, &args.pace)?;
    let Some(path) = args.paths.first() else {
        return Err(FluxError::Usage("flux file needs a WAV file (or - for stdin)".into()).into());
    };
    let source = if path == Path::new("-") {
        WavSource::from_reader("stdin", Box::new(io::stdin()))?
    } else {
        WavSource::open(path)?
    };
    let labels = super::labels(
        &args.sides.channel_labels,
        crate::audio::Source::info(&source).channels,
    )?;
    let expect = super::expectations(&config, &args.assert.expect_file, &labels, !args.pace.fast)?;
    if let Some(out) = &args.save_audio {
        for label in &labels {
            refuse_overwriting_inputs(
                "--save-audio",
                &super::side_path(out, label),
                &[Input::Path(path)],
            )?;
        }
    }
    let taps = super::taps(
        args.save_audio.as_deref(),
        &labels,
        plan.session.sample_rate,
    )?;
    let notes = super::Notes {
        input: crate::output::text::one_line(&path.display().to_string()),
        labels: labels.clone(),
        quiet: args.output.quiet,
    };
    let sources = super::split(source, notes, |_| None)?;
    let sides = super::Sides {
        plan: Arc::new(plan),
        labels,
        expect,
        taps,
        batch: None,
    };
    super::run(sides, sources, &args.output, &term).await
}

/// `flux listen --mic --device A --device B`: one side per device, one timeline. Every
/// device is opened before anything starts, so one that cannot be is an error at once.
pub(in crate::app) async fn mic_sides(args: ListenArgs) -> anyhow::Result<u8> {
    let mut plan = Plan::new(&args.stream, &args.pace)?;
    plan.session.pace = None;
    plan.session.live_source = true;
    if args.stream.control.is_some() {
        return Err(FluxError::Usage(
            "--control works with one stream, and each --device is a stream of its own".into(),
        )
        .into());
    }
    let count = u16::try_from(args.device.len()).unwrap_or(u16::MAX);
    let labels = super::labels_for(&args.sides.channel_labels, count, "--device")?;
    let stopped = Arc::new(AtomicBool::new(false));
    let sources = args
        .device
        .iter()
        .map(|device| {
            MicSource::open(MicOptions {
                device: Some(device.clone()),
                duration: args.duration,
                stopped: stopped.clone(),
                buffer_ms: None,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(out) = &args.save_audio {
        for label in &labels {
            refuse_overwriting_inputs("--save-audio", &super::side_path(out, label), &[])?;
        }
    }
    let taps = super::taps(
        args.save_audio.as_deref(),
        &labels,
        plan.session.sample_rate,
    )?;
    // Each device's level on the meter, named by its side.
    let meters = sources
        .iter()
        .zip(&labels)
        .map(|(source, label)| {
            let status = source.status();
            MeterInput {
                id: label.clone(),
                level: status.level.cell(),
                capturing: status.capturing.clone(),
                floor_dbfs: LEVEL_FLOOR_DBFS,
            }
        })
        .collect();
    if !args.output.quiet {
        for (source, label) in sources.iter().zip(&labels) {
            eprintln!(
                "flux: {label}: capturing from {} ({})",
                source.id(),
                source.format()
            );
        }
    }
    let expect = labels.iter().map(|_| None).collect();
    let sides = super::Sides {
        plan: Arc::new(plan),
        labels,
        expect,
        taps,
        batch: None,
    };
    let term = terminal::detect(args.output.color_forced());
    let live = super::Live {
        stopped,
        grace: Some(pipeline::LIVE_STOP_GRACE),
        watch: None,
        meters,
    };
    super::run_live(
        sides,
        sources,
        MicSource::drop_report,
        live,
        &args.output,
        &term,
    )
    .await
}

/// `flux listen --stdin --channels N --split-channels`: one stream per channel.
pub(in crate::app) async fn split_stdin(
    args: ListenArgs,
    plan: Plan,
    source: Capped<RawPcmSource>,
) -> anyhow::Result<u8> {
    if args.stream.control.is_some() {
        return Err(FluxError::Usage(
            "--control works with one stream, and --split-channels makes one per channel".into(),
        )
        .into());
    }
    let labels = super::labels(&args.sides.channel_labels, args.channels)?;
    if let Some(out) = &args.save_audio {
        for label in &labels {
            refuse_overwriting_inputs(
                "--save-audio",
                &super::side_path(out, label),
                &[Input::Stdin],
            )?;
        }
    }
    let taps = super::taps(
        args.save_audio.as_deref(),
        &labels,
        plan.session.sample_rate,
    )?;
    let notes = super::Notes {
        input: "stdin".into(),
        labels: labels.clone(),
        quiet: args.output.quiet,
    };
    let sources = super::split(source, notes, |s: &Capped<RawPcmSource>| {
        let n = s.inner.trailing_bytes();
        (n > 0).then(|| {
            format!(
                "stdin ended with {n} byte(s) that do not make a whole sample frame; they were \
                 not sent (check --sample-format and --channels)"
            )
        })
    })?;
    let expect = labels.iter().map(|_| None).collect();
    let sides = super::Sides {
        plan: Arc::new(plan),
        labels,
        expect,
        taps,
        batch: None,
    };
    let term = terminal::detect(args.output.color_forced());
    super::run(sides, sources, &args.output, &term).await
}
