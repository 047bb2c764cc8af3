//! Live microphone capture with cpal: [`MicSource`] is a [`Source`] like a WAV file, so the
//! same conditioner and session handle it.
//!
//! The device is opened in its own preferred format (sample type, rate, channels): many
//! devices refuse 16 kHz mono, and the conditioner converts in process anyway. The driver's
//! callback copies samples into a preallocated lock-free ring ([`ring`]); the audio thread
//! pops them into [`Block`]s. If the audio thread falls behind, the callback drops whole frames
//! and counts them; [`MicSource::drop_report`] turns the count into a warning.
//!
//! Capture ends when `stopped` is set (first Ctrl-C), when `--duration` worth of captured
//! frames has arrived (counted in device frames, not wall time, so an unpaced virtual device
//! stops at exactly the same sample every run), or when the device fails. What was captured
//! before the end is always delivered.

pub mod devices;
pub mod ring;

use super::{AudioError, Block, Source, SourceInfo};
use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{ErrorKind, SampleFormat, SizedSample};
use devices::{CaptureFormat, open_error};
use ring::{Reader, Shared, Writer};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Ring size when `FLUX_MIC_BUFFER_MS` is not set: absorbs two seconds of stall on the audio
/// thread (the feed channel behind it holds another ~2.5 s).
pub const DEFAULT_BUFFER_MS: u64 = 2000;

/// Environment variable overriding the ring size, in milliseconds (20 to 600000). Tests use it
/// to make an unpaced virtual device lossless, or to force drops.
pub const BUFFER_ENV: &str = "FLUX_MIC_BUFFER_MS";

/// Most frames per block handed to the conditioner.
const MAX_BLOCK_FRAMES: usize = 4096;

/// How often the audio thread looks at `stopped` and device errors when no audio arrives.
const POLL: Duration = Duration::from_millis(20);

/// Level readings are RMS over windows of this length.
const LEVEL_WINDOW_MS: u64 = 50;

/// Lowest level reported; digital silence would be -inf.
pub const LEVEL_FLOOR_DBFS: f32 = -100.0;

/// How to open the microphone.
#[derive(Debug, Clone, Default)]
pub struct MicOptions {
    /// `--device`: an id, or a unique part of an id or description; `None` for the default.
    pub device: Option<String>,
    /// `--duration` in seconds of captured audio.
    pub duration: Option<f64>,
    /// Set by the first Ctrl-C: stop capturing and end the stream.
    pub stopped: Arc<AtomicBool>,
    /// Ring capacity; `None` reads [`BUFFER_ENV`] or uses [`DEFAULT_BUFFER_MS`].
    pub buffer_ms: Option<u64>,
}

/// The latest input level in dBFS (RMS over 50 ms, all channels), shared lock-free with
/// whoever displays it (the stderr meter and the live view, both in `output/`): audio only
/// measures and publishes the value, it never draws. Stored as f32 bits; NaN
/// until the first audio arrives.
#[derive(Debug, Clone)]
pub struct Level(Arc<AtomicU32>);

impl Default for Level {
    fn default() -> Self {
        Level(Arc::new(AtomicU32::new(f32::NAN.to_bits())))
    }
}

impl Level {
    /// `None` until the device has delivered audio.
    pub fn dbfs(&self) -> Option<f32> {
        let x = f32::from_bits(self.0.load(Ordering::Relaxed));
        (!x.is_nan()).then_some(x)
    }

    /// The raw shared cell, for views that keep their own handle.
    pub fn cell(&self) -> Arc<AtomicU32> {
        self.0.clone()
    }

    fn set(&self, dbfs: f32) {
        self.0.store(dbfs.to_bits(), Ordering::Relaxed);
    }
}

/// What a display needs to know about a running capture.
#[derive(Debug, Clone)]
pub struct MicStatus {
    pub id: String,
    pub level: Level,
    /// True from open until capture ends (stopped, duration reached, device lost, dropped).
    pub capturing: Arc<AtomicBool>,
}

/// A microphone as a [`Source`].
pub struct MicSource {
    info: SourceInfo,
    format: CaptureFormat,
    id: String,
    /// Dropping the stream stops the driver thread; `None` once capture has stopped.
    stream: Option<cpal::Stream>,
    reader: Reader,
    stopped: Arc<AtomicBool>,
    device_error: Arc<OnceLock<cpal::Error>>,
    overruns: Arc<AtomicU64>,
    status: MicStatus,
    level_sum: f64,
    level_count: u64,
    level_window: u64,
    done: bool,
}

impl MicSource {
    /// Picks the device, opens it in its own default format and starts capturing.
    pub fn open(opts: MicOptions) -> Result<MicSource, AudioError> {
        let host = devices::host()?;
        let candidate = devices::select(&host, opts.device.as_deref())?;
        let _quiet = devices::QuietAlsa::new();
        let id = candidate.id.clone();
        let device = candidate.device;
        let chosen = opts.device.is_some();
        let fail = |e: cpal::Error| {
            if !chosen && e.kind() == ErrorKind::DeviceNotAvailable {
                // The usual shape of "this machine has no microphone" on ALSA: `default`
                // exists as a name but has no hardware behind it.
                AudioError::Device {
                    device: "microphone".into(),
                    problem: format!(
                        "none found: the default input device ({id}) is not available; connect \
                         a microphone and check `flux devices`, or pipe audio in with \
                         `flux listen --stdin`"
                    ),
                }
            } else {
                open_error(&id, &e)
            }
        };
        let supported = device.default_input_config().map_err(fail)?;
        let format = CaptureFormat {
            sample_format: supported.sample_format(),
            sample_rate: supported.sample_rate(),
            channels: supported.channels(),
        };
        if format.channels == 0 || format.sample_rate == 0 {
            return Err(AudioError::Device {
                device: id,
                problem: format!("the device offers an unusable format ({format})"),
            });
        }
        let limit = match opts.duration {
            Some(secs) => (secs * f64::from(format.sample_rate)).round() as u64,
            None => u64::MAX,
        };
        let buffer_ms = opts.buffer_ms.unwrap_or_else(buffer_ms_from_env);
        let ring_frames = (u64::from(format.sample_rate) * buffer_ms / 1000).max(1) as usize;
        let shared = Shared::new(usize::from(format.channels), limit);
        let (writer, reader) = ring::ring(shared.clone(), ring_frames);

        let device_error: Arc<OnceLock<cpal::Error>> = Arc::new(OnceLock::new());
        let overruns = Arc::new(AtomicU64::new(0));
        let on_error = {
            let device_error = device_error.clone();
            let overruns = overruns.clone();
            let shared = shared.clone();
            move |e: cpal::Error| {
                match e.kind() {
                    // Audio lost inside the driver: counted, reported at the end.
                    ErrorKind::Xrun => {
                        overruns.fetch_add(1, Ordering::Relaxed);
                    }
                    ErrorKind::DeviceChanged | ErrorKind::RealtimeDenied => {}
                    _ => {
                        let _ = device_error.set(e);
                    }
                }
                if let Some(t) = shared.reader.get() {
                    t.unpark();
                }
            }
        };
        let stream = build_stream(
            &device,
            &supported.config(),
            format.sample_format,
            writer,
            on_error,
        )
        .map_err(fail)?;
        stream.play().map_err(fail)?;

        let level_window = (u64::from(format.sample_rate) * LEVEL_WINDOW_MS / 1000).max(1)
            * u64::from(format.channels);
        Ok(MicSource {
            info: SourceInfo {
                sample_rate: format.sample_rate,
                channels: format.channels,
                // Unknown even with --duration: a microphone has no length, and its indicator
                // is the level meter, not a progress bar.
                total_frames: None,
                description: format!("{id}: {format}"),
            },
            format,
            status: MicStatus {
                id: id.clone(),
                level: Level::default(),
                capturing: Arc::new(AtomicBool::new(true)),
            },
            id,
            stream: Some(stream),
            reader,
            stopped: opts.stopped,
            device_error,
            overruns,
            level_sum: 0.0,
            level_count: 0,
            level_window,
            done: false,
        })
    }

    /// The device's stable id (e.g. `alsa:default`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The format the device captures in.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Handles for displays: level and whether capture is still running.
    pub fn status(&self) -> MicStatus {
        self.status.clone()
    }

    /// Frames of captured audio so far (including any that were dropped).
    pub fn captured_frames(&self) -> u64 {
        self.reader.shared.captured.load(Ordering::Relaxed)
    }

    /// Frames lost because flux fell behind the device.
    pub fn dropped_frames(&self) -> u64 {
        self.reader.shared.dropped.load(Ordering::Relaxed)
    }

    /// A warning for people when audio was lost; `None` when every captured frame was sent.
    pub fn drop_report(&self) -> Option<String> {
        let shared = &self.reader.shared;
        let dropped = shared.dropped.load(Ordering::Relaxed);
        let gaps = shared.gaps.load(Ordering::Relaxed);
        let overruns = self.overruns.load(Ordering::Relaxed);
        let mut parts = Vec::new();
        if dropped > 0 {
            parts.push(format!(
                "{:.3} s of microphone audio ({dropped} frames, in {gaps} gap(s)) was lost because \
                 flux fell behind the device; the transcript has holes there (is the machine \
                 overloaded? a larger {BUFFER_ENV} absorbs longer stalls)",
                dropped as f64 / f64::from(self.format.sample_rate)
            ));
        }
        if overruns > 0 {
            parts.push(format!(
                "the audio device reported {overruns} overrun(s): the driver lost audio before \
                 flux saw it"
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn stop_capture(&mut self) {
        // Dropping the stream joins the driver thread: no callback runs after this.
        self.stream = None;
        self.status.capturing.store(false, Ordering::Relaxed);
    }

    fn finish(
        &mut self,
        result: Result<Option<Block>, AudioError>,
    ) -> Result<Option<Block>, AudioError> {
        self.stop_capture();
        self.done = true;
        result
    }

    /// Publish the level: RMS over fixed windows, so the reading does not depend on how the
    /// driver happens to slice its callbacks.
    fn measure(&mut self, samples: &[f32]) {
        for &x in samples {
            self.level_sum += f64::from(x) * f64::from(x);
            self.level_count += 1;
            if self.level_count >= self.level_window {
                let mean = self.level_sum / self.level_count as f64;
                let db = if mean > 0.0 {
                    10.0 * mean.log10()
                } else {
                    f64::NEG_INFINITY
                };
                self.status.level.set((db as f32).max(LEVEL_FLOOR_DBFS));
                self.level_sum = 0.0;
                self.level_count = 0;
            }
        }
    }
}

impl Source for MicSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_block(&mut self) -> Result<Option<Block>, AudioError> {
        if self.done {
            return Ok(None);
        }
        // The callback wakes this thread when audio arrives (first call registers it).
        let _ = self.reader.shared.reader.set(std::thread::current());
        loop {
            let mut samples = Vec::new();
            if self.reader.pop_into(&mut samples, MAX_BLOCK_FRAMES) > 0 {
                self.measure(&samples);
                return Ok(Some(Block::from_f32(
                    samples,
                    self.format.channels,
                    self.format.sample_rate,
                )));
            }
            // The ring is empty. Every end condition below is checked before the ring is
            // looked at again, so audio that arrived in between is still delivered.
            if self.reader.reached_limit() {
                if self.reader.frames_ready() == 0 {
                    return self.finish(Ok(None));
                }
                continue;
            }
            if self.stream.is_none() {
                // Capture was stopped and the ring drained.
                return match self.device_error.get() {
                    Some(e) => {
                        let e = device_lost(&self.id, e);
                        self.finish(Err(e))
                    }
                    None => self.finish(Ok(None)),
                };
            }
            if self.stopped.load(Ordering::Relaxed) || self.device_error.get().is_some() {
                self.stop_capture();
                continue;
            }
            std::thread::park_timeout(POLL);
        }
    }
}

impl Drop for MicSource {
    fn drop(&mut self) {
        self.stop_capture();
    }
}

/// The error for a device that failed while capturing.
fn device_lost(id: &str, e: &cpal::Error) -> AudioError {
    AudioError::Device {
        device: id.to_string(),
        problem: format!(
            "capture stopped: {}; the audio captured before was sent",
            devices::kind_problem(e.kind())
        ),
    }
}

fn buffer_ms_from_env() -> u64 {
    std::env::var(BUFFER_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|ms| ms.clamp(20, 600_000))
        .unwrap_or(DEFAULT_BUFFER_MS)
}

/// Builds the input stream in the device's own sample type; every type converts to f32 in the
/// callback (exactly, for the integer types up to 24 bits).
fn build_stream<E>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: SampleFormat,
    writer: Writer,
    on_error: E,
) -> Result<cpal::Stream, cpal::Error>
where
    E: FnMut(cpal::Error) + Send + 'static,
{
    fn typed<T, E>(
        device: &cpal::Device,
        config: &cpal::StreamConfig,
        mut writer: Writer,
        on_error: E,
    ) -> Result<cpal::Stream, cpal::Error>
    where
        T: SizedSample,
        f32: cpal::FromSample<T>,
        E: FnMut(cpal::Error) + Send + 'static,
    {
        device.build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _: &cpal::InputCallbackInfo| writer.push(data),
            on_error,
            None,
        )
    }
    match format {
        SampleFormat::I8 => typed::<i8, E>(device, config, writer, on_error),
        SampleFormat::I16 => typed::<i16, E>(device, config, writer, on_error),
        SampleFormat::I24 => typed::<cpal::I24, E>(device, config, writer, on_error),
        SampleFormat::I32 => typed::<i32, E>(device, config, writer, on_error),
        SampleFormat::I64 => typed::<i64, E>(device, config, writer, on_error),
        SampleFormat::U8 => typed::<u8, E>(device, config, writer, on_error),
        SampleFormat::U16 => typed::<u16, E>(device, config, writer, on_error),
        SampleFormat::U24 => typed::<cpal::U24, E>(device, config, writer, on_error),
        SampleFormat::U32 => typed::<u32, E>(device, config, writer, on_error),
        SampleFormat::U64 => typed::<u64, E>(device, config, writer, on_error),
        SampleFormat::F32 => typed::<f32, E>(device, config, writer, on_error),
        SampleFormat::F64 => typed::<f64, E>(device, config, writer, on_error),
        other => Err(cpal::Error::with_message(
            ErrorKind::UnsupportedConfig,
            format!("its default sample format {other} is not PCM"),
        )),
    }
}
