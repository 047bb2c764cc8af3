//! Everything before the network: audio sources (WAV files, raw PCM, microphones), the one PCM
//! decoder they share (`pcm`), and the conditioner that turns whatever they give into
//! fixed-size mono i16 frames at the provider's rate.
//!
//! Sources hand out [`Block`]s of interleaved `f32` (or, 16-bit PCM, `i16`) in their native
//! format; the [`condition::Conditioner`] does all format conversion in one place so that
//! every source is treated alike and memory stays flat however long the stream is.

pub mod condition;
pub mod mic;
pub mod pcm;
pub mod raw;
pub mod wav;

use std::io;

/// Highest sample rate a source may declare. Anything above is almost certainly a corrupt
/// header, and refusing it keeps resampler sizes sane.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// Lowest sample rate a source may declare. Real audio starts at a few kHz (8 kHz telephony);
/// below this a rate is a corrupt header or a typo, and converting it up to 48 kHz would make
/// the resampler's FFT blocks (which grow as the rates' ratio) absurdly large: at 1 Hz the
/// conditioner alone would take about 500 MB. `flux serve` applies the same bounds.
pub const MIN_SAMPLE_RATE: u32 = 1000;

/// Highest channel count a source may declare (same reasoning as [`MAX_SAMPLE_RATE`]).
pub const MAX_CHANNELS: u16 = 64;

/// Interleaved samples as the source gave them, with their format: f32 in [-1, 1], or, from
/// 16-bit PCM sources (WAV, raw), the i16 samples themselves, so that the conditioner's integer
/// path never widens them to f32 and back. Exactly one of `samples` and `pcm16` is non-empty
/// (or both are empty); `pcm16[i]` means `pcm16[i] / 32768`, the value `pcm::Encoding::S16Le`
/// decodes it to.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub samples: Vec<f32>,
    pub pcm16: Vec<i16>,
    pub channels: u16,
    pub sample_rate: u32,
}

impl Block {
    /// A block of f32 samples.
    pub fn from_f32(samples: Vec<f32>, channels: u16, sample_rate: u32) -> Self {
        Block {
            samples,
            pcm16: Vec::new(),
            channels,
            sample_rate,
        }
    }

    /// Number of samples (all channels) in the block, whichever form they are in.
    pub fn len(&self) -> usize {
        self.samples.len() + self.pcm16.len()
    }

    /// Whether the block holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of whole frames (one sample per channel) in the block.
    pub fn frames(&self) -> usize {
        match self.channels {
            0 => 0,
            ch => self.len() / usize::from(ch),
        }
    }

    /// Keep the first `n` samples.
    pub fn truncate(&mut self, n: usize) {
        self.samples.truncate(n);
        self.pcm16.truncate(n);
    }

    /// The block with its samples as f32 (16-bit ones widened exactly), for consumers that
    /// only work on floats.
    pub fn into_f32(mut self) -> Self {
        if !self.pcm16.is_empty() {
            pcm::widen_s16(&self.pcm16, &mut self.samples);
            self.pcm16 = Vec::new();
        }
        self
    }
}

/// What a source is, as far as the rest of the pipeline needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub sample_rate: u32,
    pub channels: u16,
    /// Length in frames when the container says so (WAV with a real length); `None` for
    /// streams whose end is only known when it comes.
    pub total_frames: Option<u64>,
    /// Human-readable format, e.g. "48000 Hz, 2 ch, 16-bit integer PCM".
    pub description: String,
}

/// A producer of audio blocks. `next_block` returns `Ok(None)` at the clean end of the stream;
/// after an error it also returns `Ok(None)`, so callers never see the same failure twice.
pub trait Source: Send {
    fn info(&self) -> &SourceInfo;
    fn next_block(&mut self) -> Result<Option<Block>, AudioError>;

    /// Give back a block this source handed out, once its samples are used, so the source can
    /// read the next block into its memory (a WAV file's 16-bit blocks are read straight into
    /// their vectors: no copy and no allocation per block). Optional for callers; sources
    /// that have no use for it drop the block.
    fn recycle(&mut self, block: Block) {
        drop(block);
    }
}

/// Problems with input audio. Every message names the input, says what is wrong, and says what
/// to do about it, in one or two lines.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    // The io::Error is part of the message, so it is not also the error's `source()`:
    // printing the chain (`{:#}`) would say it twice.
    #[error("cannot open {input}: {reason}; check the path and its permissions")]
    Open { input: String, reason: io::Error },

    #[error(
        "{input} is not a WAV file ({reason}); convert it first (e.g. `sox in.mp3 out.wav`) \
         or send raw PCM with `flux listen --stdin --rate R --channels C`"
    )]
    NotWav { input: String, reason: String },

    /// A WAV format or container flux does not read; `fix` says how to get one it does.
    #[error("{input}: unsupported WAV format: {what}; {fix}")]
    Unsupported {
        input: String,
        what: String,
        fix: String,
    },

    /// A WAV header whose fields are impossible or contradict each other: `problem` names the
    /// field, `fix` the way out.
    #[error("{input}: {problem}; {fix}")]
    BadHeader {
        input: String,
        problem: String,
        fix: String,
    },

    #[error(
        "{input} is a directory, not an audio file; give the path of a WAV file in it, \
         or several (`flux file {input}/*.wav`)"
    )]
    NotAFile { input: String },

    #[error("{input} contains no audio samples; check that the recording is not empty")]
    Empty { input: String },

    #[error(
        "{input} is truncated: audio data ended after {frames_read} frames{expected}; \
         the file was cut short or is still being written",
        expected = match .expected_frames {
            Some(n) => format!(" of the {n} its header announced"),
            None => String::from(" in the middle of a sample frame"),
        }
    )]
    Truncated {
        input: String,
        /// Complete frames delivered before the data ran out.
        frames_read: u64,
        /// What the header promised, when it promised anything.
        expected_frames: Option<u64>,
    },

    #[error("error reading {input}: {reason}")]
    Read { input: String, reason: io::Error },

    #[error(
        "invalid raw PCM parameters for {input}: {problem}; \
         pass --rate 1000..=384000 and --channels 1..=64"
    )]
    InvalidRaw { input: String, problem: String },

    /// The conditioner was misconfigured or fed blocks that do not match its setup. This is a
    /// programming error rather than bad input, but it is reported, never panicked on.
    #[error("cannot convert audio: {problem}")]
    Conversion { problem: String },

    /// A capture device could not be found, opened, or kept running (microphone input).
    /// `problem` says what happened and what to try.
    #[error("{device}: {problem}")]
    Device { device: String, problem: String },
}

impl AudioError {
    /// True when the input ended early but everything before the cut was delivered. The
    /// caller may finish streaming the good part before reporting the error.
    pub fn is_truncation(&self) -> bool {
        matches!(self, AudioError::Truncated { .. })
    }

    /// The display name of the input concerned (a path or "stdin"), if the error has one.
    pub fn input(&self) -> Option<&str> {
        match self {
            AudioError::Open { input, .. }
            | AudioError::NotWav { input, .. }
            | AudioError::Unsupported { input, .. }
            | AudioError::BadHeader { input, .. }
            | AudioError::NotAFile { input }
            | AudioError::Empty { input }
            | AudioError::Truncated { input, .. }
            | AudioError::Read { input, .. }
            | AudioError::InvalidRaw { input, .. } => Some(input),
            AudioError::Device { device, .. } => Some(device),
            AudioError::Conversion { .. } => None,
        }
    }
}

/// Replace values that must never reach the resampler or the wire: NaN becomes silence and
/// infinities become full scale. Finite values pass unchanged (clamping happens at
/// quantization, after resampling, so legitimate overshoot is not distorted twice).
pub(crate) fn sanitize(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else if x.is_infinite() {
        x.signum()
    } else {
        x
    }
}

/// Wraps a reader to retry `Interrupted` reads, which neither hound nor our own loops should
/// treat as failures (a signal arriving during a blocking read of stdin is not an error).
pub(crate) struct RetryInterrupted<R>(pub R);

impl<R: io::Read> io::Read for RetryInterrupted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_replaces_non_finite() {
        assert_eq!(sanitize(f32::NAN), 0.0);
        assert_eq!(sanitize(f32::INFINITY), 1.0);
        assert_eq!(sanitize(f32::NEG_INFINITY), -1.0);
        assert_eq!(sanitize(0.25), 0.25);
        assert_eq!(sanitize(1.5), 1.5);
    }

    #[test]
    fn truncation_is_recognised_and_messages_name_the_input() {
        let e = AudioError::Truncated {
            input: "a.wav".into(),
            frames_read: 10,
            expected_frames: Some(20),
        };
        assert!(e.is_truncation());
        let msg = e.to_string();
        assert!(
            msg.contains("a.wav") && msg.contains("10") && msg.contains("20"),
            "{msg}"
        );
        let e = AudioError::Empty {
            input: "stdin".into(),
        };
        assert!(!e.is_truncation());
        assert_eq!(e.input(), Some("stdin"));
    }
}
