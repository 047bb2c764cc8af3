//! Rate changes neither polyphase path takes (odd rates such as 44 101 Hz or 7 999 Hz, whose
//! reduced ratio has thousands of phases): rubato's FFT resampler, with its delay compensated
//! and the output length exact.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler, WindowFunction};

use super::framer::Framer;
use super::{Frame, conversion, expected_output};
use crate::audio::AudioError;

/// Lower bound on the FFT block, in frames, on the shorter side of the resampler. The FFT
/// resampler's anti-aliasing filter is as long as its input block, so this sets the filter's
/// sharpness: at 512, 48k→16k keeps the passband flat past 7.2 kHz and rejects aliases by
/// more than 100 dB, for a group delay (compensated) of 16 ms.
const MIN_FFT_BLOCK: usize = 512;

/// Mono resampling with rubato's FFT resampler, delay compensation and exact output length.
///
/// rubato's `Fft` with `FixedSync::Input` and one FFT block per chunk: every call consumes
/// exactly `input.len()` frames and produces exactly `output.len()`, so the resampler's
/// behaviour is independent of how the caller's blocks are sized.
pub(super) struct Resample {
    rs: Fft<f32>,
    in_rate: u64,
    out_rate: u64,
    /// Input staging; the first `filled` frames are valid.
    input: Vec<f32>,
    filled: usize,
    output: Vec<f32>,
    /// Output frames of group delay still to drop from the front of the stream.
    skip: usize,
    frames_in: u64,
}

impl Resample {
    pub(super) fn new(in_rate: u32, out_rate: u32) -> Result<Self, AudioError> {
        let fft_in = fft_block(in_rate, out_rate);
        let rs = Fft::<f32>::new_custom(
            in_rate as usize,
            out_rate as usize,
            fft_in,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Input,
        )
        .map_err(|e| {
            conversion(format!(
                "cannot build a {in_rate}→{out_rate} Hz resampler: {e}"
            ))
        })?;
        Ok(Resample {
            input: vec![0.0; rs.input_frames_next()],
            output: vec![0.0; rs.output_frames_max()],
            skip: rs.output_delay(),
            rs,
            in_rate: u64::from(in_rate),
            out_rate: u64::from(out_rate),
            filled: 0,
            frames_in: 0,
        })
    }

    /// Stage `mono` a chunk at a time, running the resampler on every full chunk.
    pub(super) fn push(
        &mut self,
        mut mono: &[f32],
        framer: &mut Framer,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), AudioError> {
        self.frames_in += mono.len() as u64;
        while !mono.is_empty() {
            let n = (self.input.len() - self.filled).min(mono.len());
            self.input[self.filled..self.filled + n].copy_from_slice(&mono[..n]);
            self.filled += n;
            mono = &mono[n..];
            if self.filled == self.input.len() {
                self.run(None, u64::MAX, framer, out)?;
            }
        }
        Ok(())
    }

    /// Process the staged chunk (or its first `partial` frames, the rest read as silence) and
    /// pass at most `limit` total output samples on to the framer.
    fn run(
        &mut self,
        partial: Option<usize>,
        limit: u64,
        framer: &mut Framer,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), AudioError> {
        let failed = |e: &dyn std::fmt::Display| conversion(format!("resampler failed: {e}"));
        let frames_out = self.output.len();
        let input =
            InterleavedSlice::new(&self.input[..], 1, self.input.len()).map_err(|e| failed(&e))?;
        let mut output = InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out)
            .map_err(|e| failed(&e))?;
        let indexing = Indexing {
            partial_len: partial,
            ..Indexing::default()
        };
        let (_, produced) = self
            .rs
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| failed(&e))?;
        self.filled = 0;
        let dropped = self.skip.min(produced);
        self.skip -= dropped;
        let room = limit.saturating_sub(framer.total_samples());
        let end = produced.min(dropped.saturating_add(usize::try_from(room).unwrap_or(usize::MAX)));
        framer.push(&self.output[dropped..end], out);
        Ok(())
    }

    /// Feed the last partial chunk, then silence until the delayed tail is out, stopping at
    /// exactly `round(frames_in * out_rate / in_rate)` samples.
    pub(super) fn flush(
        &mut self,
        framer: &mut Framer,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), AudioError> {
        let expected = expected_output(self.frames_in, self.in_rate, self.out_rate);
        if self.filled > 0 {
            self.run(Some(self.filled), expected, framer, out)?;
        }
        // The delay is half an output block, so one or two rounds of silence always suffice;
        // the bound only guards against an infinite loop should rubato ever change.
        for _ in 0..8 {
            if framer.total_samples() >= expected {
                return Ok(());
            }
            self.run(Some(0), expected, framer, out)?;
        }
        Err(conversion("resampler did not flush its tail".into()))
    }
}

/// The FFT block size on the input side for `in_rate`→`out_rate`.
///
/// Block sizes must be whole multiples of the rates' minimal blocks (`rate / gcd`). We take
/// the smallest multiple that gives both sides at least [`MIN_FFT_BLOCK`] frames, then make the
/// output block even so the group delay (half the output block) is a whole number of samples
/// and can be dropped exactly.
fn fft_block(in_rate: u32, out_rate: u32) -> usize {
    let g = gcd(in_rate, out_rate) as usize;
    let (min_in, min_out) = (in_rate as usize / g, out_rate as usize / g);
    let mut n = MIN_FFT_BLOCK.div_ceil(min_in.min(min_out));
    if (n * min_out) % 2 == 1 {
        n += 1;
    }
    n * min_in
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::condition::test_support::*;

    #[test]
    fn output_length_is_exact() {
        for (in_rate, out_rate) in RATE_PAIRS {
            let chunk = Resample::new(in_rate, out_rate).unwrap().input.len();
            for n in [
                0,
                1,
                2,
                3,
                99,
                chunk - 1,
                chunk,
                chunk + 1,
                3 * chunk + 5,
                50_001,
            ] {
                let frames = run(&noise(n, 3), 1, in_rate, out_rate, &[4096]);
                let total: usize = frames.iter().map(Frame::samples).sum();
                let want = (n as f64 * f64::from(out_rate) / f64::from(in_rate)).round() as usize;
                assert_eq!(total, want, "{in_rate}->{out_rate}, {n} frames");
            }
        }
    }

    #[test]
    fn resampler_delay_is_compensated() {
        for (in_rate, out_rate) in RATE_PAIRS {
            // An impulse at a time that falls on an output sample exactly.
            let g = gcd(in_rate, out_rate) as usize;
            let t_in = (in_rate as usize / g) * (1 + 4000 / (in_rate as usize / g));
            let t_out = t_in * out_rate as usize / in_rate as usize;
            let mut signal = vec![0.0f32; t_in * 2 + 10_000];
            signal[t_in] = 0.9;
            let out = pcm(&run(&signal, 1, in_rate, out_rate, &[1000]));
            let peak = (0..out.len())
                .max_by_key(|&i| out[i].unsigned_abs())
                .unwrap();
            assert!(
                peak.abs_diff(t_out) <= 1,
                "{in_rate}->{out_rate}: impulse at {t_out} came out at {peak}"
            );
        }
    }

    #[test]
    fn odd_rates_work() {
        // Coprime rates make the FFT block one second long; slow to start but still exact.
        for in_rate in [44_101u32, 7_999, 384_000] {
            let n = in_rate as usize / 3 + 11;
            let frames = run(&noise(n, 9), 1, in_rate, 16000, &[4096]);
            let total: u64 = frames.iter().map(|f| f.samples() as u64).sum();
            assert_eq!(total, expected_output(n as u64, u64::from(in_rate), 16000));
        }
    }

    #[test]
    fn integer_helpers() {
        assert_eq!(gcd(48000, 16000), 16000);
        assert_eq!(gcd(44100, 16000), 100);
        assert_eq!(expected_output(3, 48000, 16000), 1);
        assert_eq!(expected_output(1, 48000, 16000), 0);
        assert_eq!(expected_output(2, 48000, 16000), 1); // 0.667 rounds up
        assert_eq!(expected_output(441, 44100, 16000), 160);
        assert_eq!(fft_block(48000, 16000), 1536);
        assert_eq!(fft_block(16000, 48000), 512);
        assert_eq!(fft_block(44100, 16000) % 441, 0);
    }
}
