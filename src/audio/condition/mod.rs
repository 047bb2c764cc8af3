//! The conditioner: any [`Block`] in, fixed-size mono i16 LE [`Frame`]s at the target rate out.
//!
//! Steps, in order: downmix to mono (mean of channels), resample (skipped when the rates
//! match), quantize to i16, cut into `chunk_ms` frames. Every step works on whole slices, and
//! every buffer has a fixed bound set in [`Conditioner::new`]; a two-hour stream costs what a
//! two-second one does.
//!
//! Resampling takes one of three paths:
//! - **Integer decimation** (`in_rate = M × out_rate`, e.g. 48 kHz → 16 kHz, 48 → 24, 16 → 8):
//!   a linear-phase equiripple FIR run as an M-phase polyphase filter ([`Decimator`]), in f32.
//!   It keeps 0–0.45·out_rate flat within 0.1 dB and attenuates everything from 0.55·out_rate
//!   up by at least 70 dB (48k → 16k: passband to 7.2 kHz, stopband from 8.8 kHz). Only kept
//!   outputs are computed, so it costs 32 multiply-adds per input sample, and it adds no block
//!   latency.
//! - **Other rational ratios** with at most 1024 phases (44.1 kHz → 16 kHz is L/M = 160/441,
//!   22.05 → 16 is 320/441, 8 → 16 is 2/1): a polyphase FIR ([`Rational`]) to the same
//!   specification, relative to the narrower rate (44.1k → 16k: passband to 7.2 kHz,
//!   stopband from 8.8 kHz), 96 multiply-adds per output at 44.1 → 16 kHz, computed straight
//!   from the input as soon as its lookahead has arrived (no block latency). It runs in
//!   integers: the downmix goes straight to i16 into its buffer, i16 coefficients, exact i32
//!   sums, i16 out to the framer (no quantizing pass after).
//! - **Everything else** (odd rates such as 44 101 Hz, whose reduced ratio has thousands of
//!   phases): rubato's `Fft` resampler.
//!
//! Timing is exact on every path: the filter's group delay is dropped from the front and its
//! tail is flushed at the end, so output sample `k` is input time `k / out_rate`, and a stream
//! of `n` input frames yields exactly `round(n * out_rate / in_rate)` samples. The output never
//! depends on how the input is cut into blocks.
//!
//! The hot loops (downmix, the polyphase filters, quantization) are compiled twice, for
//! baseline x86-64 and for AVX2 (the rational filter also for AVX-VNNI, the decimator's for
//! AVX2 with FMA), and chosen at run time.

//!
//! One file per job:
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | [`Conditioner`] and [`Frame`]: the steps wired together, input checks |
//! | `mix.rs` | downmix to mono (mean of channels; to f32, or straight to i16), level limiting |
//! | `quantize.rs` | f32 to i16 LE, rounding and clamping |
//! | `decimate.rs` | integer-ratio decimation: the polyphase [`decimate::Decimator`] |
//! | `fir.rs` | the decimator's FIR kernels (AVX2 + FMA, portable) |
//! | `design.rs` | the filters' design (Parks–McClellan, Kaiser fallback, interpolated prototypes) |
//! | `rational.rs` | rational-ratio resampling: the polyphase [`rational::Rational`] |
//! | `rational_fir.rs` | its kernels: rows of i16 dot products (AVX-VNNI, AVX2, portable) |
//! | `resample.rs` | ratios with too many phases, through rubato's FFT resampler |
//! | `framer.rs` | fixed-size frames with their stream positions, split off shared slabs |

mod decimate;
mod design;
mod fir;
mod framer;
mod mix;
mod quantize;
mod rational;
mod rational_fir;
mod resample;

use bytes::Bytes;

use super::{AudioError, Block, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use decimate::Decimator;
use framer::Framer;
use mix::{downmix, downmix_s16_f32, within_level};
use rational::Rational;
use resample::Resample;

/// Output rates Flux accepts for linear16.
pub const TARGET_RATES: [u32; 5] = [8000, 16000, 24000, 44100, 48000];

/// Frame length Deepgram recommends for streaming.
pub const DEFAULT_CHUNK_MS: u32 = 80;

/// Longest frame we agree to build (10 s); longer makes no sense for live streaming.
pub const MAX_CHUNK_MS: u32 = 10_000;

/// Input frames downmixed at a time: bounds the scratch buffers whatever the block size. A
/// WAV file's whole read block (`wav::READ_BYTES` of 16-bit stereo), so the rational
/// resampler gets it in one piece (see its `CHUNK`).
const MIX_CHUNK: usize = 32768;

/// One frame of conditioned audio: mono, i16 little-endian, at `sample_rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub data: Bytes,
    /// 0-based position in the stream of frames.
    pub index: u64,
    /// Offset of the first sample since the start of the stream, in samples at `sample_rate`.
    pub start_sample: u64,
    pub sample_rate: u32,
}

impl Frame {
    /// Number of (mono, 16-bit) samples in the frame.
    pub fn samples(&self) -> usize {
        self.data.len() / 2
    }

    /// Audio time of the first sample, in seconds since the stream started.
    pub fn start_secs(&self) -> f64 {
        self.start_sample as f64 / f64::from(self.sample_rate)
    }

    /// Audio time just after the last sample.
    pub fn end_secs(&self) -> f64 {
        (self.start_sample + self.samples() as u64) as f64 / f64::from(self.sample_rate)
    }
}

/// Downmix, resample, quantize and frame a stream of [`Block`]s.
pub struct Conditioner {
    in_rate: u32,
    in_channels: u16,
    /// `None` when input and output rates match: samples pass straight through, bit-exact.
    resampler: Option<RateChange>,
    framer: Framer,
    /// Downmix output, reused for every block (the float paths; the rational one downmixes
    /// into its own buffer).
    mono: Vec<f32>,
    finished: bool,
}

/// The resampling paths (see the module docs).
enum RateChange {
    Decimate(Decimator),
    Rational(Rational),
    /// Boxed: rubato's state is several times the size of the others'.
    Resample(Box<Resample>),
}

impl Conditioner {
    /// Set up for a stream of `in_rate`/`in_channels` blocks going out at `out_rate` (one of
    /// [`TARGET_RATES`]) in frames of `chunk_ms` milliseconds.
    pub fn new(
        in_rate: u32,
        in_channels: u16,
        out_rate: u32,
        chunk_ms: u32,
    ) -> Result<Self, AudioError> {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&in_rate) {
            return Err(conversion(format!(
                "input rate {in_rate} Hz is out of range"
            )));
        }
        if !(1..=MAX_CHANNELS).contains(&in_channels) {
            return Err(conversion(format!(
                "{in_channels} input channels is out of range"
            )));
        }
        if !TARGET_RATES.contains(&out_rate) {
            return Err(conversion(format!(
                "output rate {out_rate} Hz is not one of {TARGET_RATES:?}"
            )));
        }
        if !(1..=MAX_CHUNK_MS).contains(&chunk_ms) {
            return Err(conversion(format!(
                "frame length {chunk_ms} ms is out of range (1..={MAX_CHUNK_MS})"
            )));
        }
        // At least 8 samples even at 8 kHz and 1 ms, so never zero.
        let frame_samples = (u64::from(out_rate) * u64::from(chunk_ms) / 1000) as usize;
        let resampler = if in_rate == out_rate {
            None
        } else if in_rate.is_multiple_of(out_rate) {
            Some(RateChange::Decimate(Decimator::new(in_rate, out_rate)))
        } else if let Some(r) = Rational::new(in_rate, out_rate) {
            Some(RateChange::Rational(r))
        } else {
            Some(RateChange::Resample(Box::new(Resample::new(
                in_rate, out_rate,
            )?)))
        };
        Ok(Conditioner {
            in_rate,
            in_channels,
            resampler,
            framer: Framer::new(frame_samples, out_rate),
            mono: Vec::with_capacity(MIX_CHUNK),
            finished: false,
        })
    }

    /// Bytes in every frame except possibly the last.
    pub fn frame_bytes(&self) -> usize {
        self.framer.frame_bytes()
    }

    /// Condition one block, calling `out` for every frame it completes.
    pub fn push(&mut self, block: &Block, out: &mut dyn FnMut(Frame)) -> Result<(), AudioError> {
        self.check_block(block)?;
        let channels = usize::from(self.in_channels);
        for chunk in block.pcm16.chunks(MIX_CHUNK * channels) {
            match &mut self.resampler {
                Some(RateChange::Rational(r)) => r.push_s16(chunk, channels, &mut self.framer, out),
                None if channels == 1 => self.framer.push_pcm(chunk, out),
                resampler => {
                    downmix_s16_f32(chunk, channels, &mut self.mono);
                    match resampler {
                        Some(RateChange::Decimate(d)) => d.push(&self.mono, &mut self.framer, out),
                        Some(RateChange::Resample(r)) => {
                            r.push(&self.mono, &mut self.framer, out)?;
                        }
                        _ => self.framer.push(&self.mono, out),
                    }
                }
            }
        }
        for chunk in block.samples.chunks(MIX_CHUNK * channels) {
            if let Some(RateChange::Rational(r)) = &mut self.resampler {
                // Downmixed straight into its own (integer) buffer.
                r.push(chunk, channels, &mut self.framer, out);
                continue;
            }
            // Mono within the level limit is its own downmix: no copy.
            let mono = if channels == 1 && within_level(chunk) {
                chunk
            } else {
                downmix(chunk, channels, &mut self.mono);
                &self.mono
            };
            match &mut self.resampler {
                Some(RateChange::Decimate(d)) => d.push(mono, &mut self.framer, out),
                // Taken above, before the float downmix.
                Some(RateChange::Rational(_)) => {}
                Some(RateChange::Resample(r)) => r.push(mono, &mut self.framer, out)?,
                None => self.framer.push(mono, out),
            }
        }
        Ok(())
    }

    /// End of stream: flush the resampler's tail and emit the last, possibly short, frame.
    /// Calling it again does nothing.
    pub fn finish(&mut self, out: &mut dyn FnMut(Frame)) -> Result<(), AudioError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        match &mut self.resampler {
            Some(RateChange::Decimate(d)) => d.flush(&mut self.framer, out),
            Some(RateChange::Rational(r)) => r.flush(&mut self.framer, out),
            Some(RateChange::Resample(r)) => r.flush(&mut self.framer, out)?,
            None => {}
        }
        self.framer.flush(out);
        Ok(())
    }

    fn check_block(&self, block: &Block) -> Result<(), AudioError> {
        if self.finished {
            return Err(conversion(
                "audio pushed after the end of the stream".into(),
            ));
        }
        if block.channels != self.in_channels || block.sample_rate != self.in_rate {
            return Err(conversion(format!(
                "the source changed format mid-stream ({} Hz {} ch, expected {} Hz {} ch)",
                block.sample_rate, block.channels, self.in_rate, self.in_channels
            )));
        }
        if !block.samples.is_empty() && !block.pcm16.is_empty() {
            return Err(conversion(
                "a block holds both float and 16-bit samples".into(),
            ));
        }
        if !block.len().is_multiple_of(usize::from(self.in_channels)) {
            return Err(conversion(format!(
                "a block of {} samples is not a whole number of {}-channel frames",
                block.len(),
                self.in_channels
            )));
        }
        Ok(())
    }
}

pub(super) fn conversion(problem: String) -> AudioError {
    AudioError::Conversion { problem }
}

/// `round(frames * out / in)` in integers (no float error on long streams).
pub(super) fn expected_output(frames: u64, in_rate: u64, out_rate: u64) -> u64 {
    let num = u128::from(frames) * u128::from(out_rate) * 2 + u128::from(in_rate);
    (num / (u128::from(in_rate) * 2)) as u64
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::quantize::quantize;
    use super::*;
    use crate::audio::condition::test_support::*;

    #[test]
    fn block_boundaries_do_not_change_output() {
        for (in_rate, out_rate) in RATE_PAIRS.into_iter().chain([(16000, 16000)]) {
            // Mono and stereo, each with a hostile value (so some chunks take the downmix's
            // sanitizing path and others its fast one).
            for channels in [1, 2] {
                // 1.3 s stereo, 0.5 s mono (pushing single frames is slow in a debug build).
                let frames = in_rate as usize * [5, 13][channels - 1] / 10 + 17;
                let mut signal = noise(channels * frames, u64::from(in_rate));
                signal[channels * frames / 3] = f32::NAN;
                let one_shot = run(
                    &signal,
                    channels as u16,
                    in_rate,
                    out_rate,
                    &[usize::MAX / 4],
                );
                let run = |sizes: &[usize]| run(&signal, channels as u16, in_rate, out_rate, sizes);
                for sizes in [
                    &[1usize][..],
                    &[7],
                    &[333],
                    &[4096],
                    &[1, 7, 333, 4096, 2, 1000],
                ] {
                    assert_eq!(
                        run(sizes),
                        one_shot,
                        "{in_rate}->{out_rate}, {channels} ch, blocks {sizes:?}"
                    );
                }
                let mut rng = Rng(7);
                let random: Vec<usize> =
                    (0..50).map(|_| (rng.next() % 5000) as usize + 1).collect();
                assert_eq!(
                    run(&random),
                    one_shot,
                    "{in_rate}->{out_rate}, {channels} ch"
                );
            }
        }
    }

    /// 16-bit blocks (as WAV and raw sources give them) condition to the same frames as their
    /// f32 decoding, on every rate path and channel layout, in uneven blocks; a block holding
    /// both forms is refused.
    #[test]
    fn pcm16_blocks_condition_as_their_float_decoding() {
        let mut rng = Rng(99);
        for (in_rate, out_rate) in RATE_PAIRS.into_iter().chain([(16000, 16000)]) {
            for channels in [1usize, 2, 3] {
                let frames = in_rate as usize * 3 / 10 + 17;
                let mut pcm16: Vec<i16> =
                    (0..channels * frames).map(|_| rng.next() as i16).collect();
                pcm16[..6].copy_from_slice(&[i16::MIN, i16::MIN, i16::MAX, i16::MAX, -1, 0]);
                let mut wide = Vec::new();
                crate::audio::pcm::widen_s16(&pcm16, &mut wide);
                let want = run(&wide, channels as u16, in_rate, out_rate, &[4096]);
                let mut c =
                    Conditioner::new(in_rate, channels as u16, out_rate, DEFAULT_CHUNK_MS).unwrap();
                let mut got = Vec::new();
                let mut sink = |f: Frame| got.push(f);
                for piece in pcm16.chunks(1234 * channels) {
                    let b = Block {
                        samples: Vec::new(),
                        pcm16: piece.to_vec(),
                        channels: channels as u16,
                        sample_rate: in_rate,
                    };
                    c.push(&b, &mut sink).unwrap();
                }
                c.finish(&mut sink).unwrap();
                assert_eq!(got, want, "{in_rate}->{out_rate}, {channels} ch");
            }
        }
        let mut c = Conditioner::new(48000, 1, 16000, DEFAULT_CHUNK_MS).unwrap();
        let both = Block {
            samples: vec![0.0; 2],
            pcm16: vec![0; 2],
            channels: 1,
            sample_rate: 48000,
        };
        assert!(c.push(&both, &mut |_| {}).is_err());
    }

    #[test]
    fn same_rate_is_bit_exact_passthrough() {
        let mut rng = Rng(11);
        let values: Vec<i16> = (0..40_000)
            .map(|_| rng.next() as i16)
            .chain([i16::MIN, i16::MAX, 0])
            .collect();
        let mono: Vec<f32> = values.iter().map(|&v| f32::from(v) / 32768.0).collect();
        assert_eq!(pcm(&run(&mono, 1, 16000, 16000, &[333])), values);
        // Identical channels average back to the same values.
        let stereo: Vec<f32> = mono.iter().flat_map(|&x| [x, x]).collect();
        assert_eq!(pcm(&run(&stereo, 2, 16000, 16000, &[7])), values);
        let c = Conditioner::new(16000, 1, 16000, 80).unwrap();
        assert!(c.resampler.is_none());
        assert_eq!(c.frame_bytes(), 2560);
    }

    #[test]
    fn downmix_and_quantize() {
        let samples = vec![
            0.5,
            -0.5,
            1.0,
            1.0,
            f32::NAN,
            0.5,
            2.0,
            2.0,
            -3.0,
            0.0,
            f32::INFINITY,
            0.0,
        ];
        let out = pcm(&run(&samples, 2, 8000, 8000, &[100]));
        assert_eq!(out, vec![0, 32767, 8192, 32767, -32768, 16384]);
        assert_eq!(quantize(f32::NAN), 0);
        assert_eq!(quantize(-1.0), -32768);
        assert_eq!(quantize(0.49 / 32768.0), 0);
        assert_eq!(quantize(0.51 / 32768.0), 1);
    }

    #[test]
    fn bad_setup_and_misuse_are_errors_not_panics() {
        for (i, ch, o, ms) in [
            (0, 1, 16000, 80),
            (999, 1, 48000, 80),
            (400_000, 1, 16000, 80),
            (16000, 0, 16000, 80),
            (16000, 65, 16000, 80),
            (16000, 1, 22050, 80),
            (16000, 1, 16000, 0),
            (16000, 1, 16000, 10_001),
        ] {
            assert!(
                matches!(
                    Conditioner::new(i, ch, o, ms),
                    Err(AudioError::Conversion { .. })
                ),
                "{i} {ch} {o} {ms}"
            );
        }
        let mut c = Conditioner::new(48000, 2, 16000, 80).unwrap();
        let mut sink = |_f: Frame| {};
        assert!(
            c.push(&block(vec![0.0; 3], 2, 48000), &mut sink).is_err(),
            "partial frame"
        );
        assert!(
            c.push(&block(vec![0.0; 4], 1, 48000), &mut sink).is_err(),
            "channel change"
        );
        assert!(
            c.push(&block(vec![0.0; 4], 2, 44100), &mut sink).is_err(),
            "rate change"
        );
        c.push(&block(vec![0.1; 4000], 2, 48000), &mut sink)
            .unwrap();
        c.finish(&mut sink).unwrap();
        c.finish(&mut sink).unwrap();
        assert!(
            c.push(&block(vec![0.0; 4], 2, 48000), &mut sink).is_err(),
            "after finish"
        );
    }

    /// End to end through the conditioner, on every resampling path: a tone in the passband
    /// (0.45 × the narrower rate) is kept within 0.5 dB; going down, one above the new Nyquist
    /// frequency (0.55 × the output rate, which would alias to 0.45) is attenuated by at least
    /// 60 dB; going up, the image of the kept tone (at 0.55 × the input rate) is.
    #[test]
    fn passband_kept_and_aliases_rejected_on_every_path() {
        for (in_rate, out_rate) in [
            (48000, 16000),
            (48000, 24000),
            (16000, 8000),
            (44100, 16000),
            (22050, 16000),
            (32000, 24000),
            (24000, 16000),
            (44100, 8000),
            (8000, 16000),
            (11025, 16000),
            (22050, 24000),
            (44101, 16000),
        ] {
            let amp = 0.5;
            let narrow = f64::from(out_rate.min(in_rate));
            let through = |freq: f64| {
                let out = pcm(&run(
                    &tone(freq, in_rate, in_rate as usize * 2, amp),
                    1,
                    in_rate,
                    out_rate,
                    &[4096],
                ));
                let skip = out_rate as usize / 10; // the abrupt start and end
                out[skip..out.len() - skip].to_vec()
            };
            let passed = through(0.45 * narrow);
            let kept = level_db(&passed, 0.45 * narrow, out_rate, amp);
            let alias = if out_rate < in_rate {
                rms_db(&through(0.55 * narrow), amp)
            } else {
                level_db(&passed, 0.55 * narrow, out_rate, amp)
            };
            assert!(
                kept.abs() < 0.5,
                "{in_rate}->{out_rate}: passband tone {kept:.3} dB"
            );
            assert!(alias < -60.0, "{in_rate}->{out_rate}: alias {alias:.1} dB");
        }
    }

    /// Which path each ratio takes: integer decimation, the rational polyphase filter for
    /// ratios of up to 1024 phases, the FFT resampler for the rest.
    #[test]
    fn each_ratio_takes_its_path() {
        let path = |i: u32, o: u32| match Conditioner::new(i, 2, o, 80).unwrap().resampler {
            None => "none",
            Some(RateChange::Decimate(_)) => "decimate",
            Some(RateChange::Rational(_)) => "rational",
            Some(RateChange::Resample(_)) => "fft",
        };
        assert_eq!(path(48000, 16000), "decimate");
        assert_eq!(path(16000, 16000), "none");
        for (i, o) in [
            (44100, 16000),
            (22050, 16000),
            (11025, 16000),
            (32000, 24000),
            (24000, 16000),
            (8000, 16000),
            (48000, 44100),
            (384_000, 44100),
        ] {
            assert_eq!(path(i, o), "rational", "{i}->{o}");
        }
        assert_eq!(path(44_101, 16000), "fft");
        assert_eq!(path(7_999, 16000), "fft");
    }
}
