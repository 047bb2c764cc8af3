//! Rational-ratio resampling (44.1 kHz → 16 kHz is 160/441, 22.05 → 16 is 320/441, 8 → 16 is
//! 2/1): a polyphase FIR in integers that computes each output straight from
//! the input, with exact timing (group delay dropped, tail flushed). The prototype filter comes from `design.rs`, the kernels
//! that run it from `rational_fir.rs`. Ratios whose reduced form has too many phases (a 44 101 Hz
//! input) stay with the FFT resampler (`resample.rs`).

use std::sync::{Arc, Mutex, PoisonError};

use super::design::{polyphase_prototype, polyphase_taps};
use super::framer::Framer;
use super::mix::{downmix_i16, downmix_s16};
use super::rational_fir::{DOT_LANES, GRID, Grid, Rows, accumulator_fits, dot_grid, dot_rows};
use super::{Frame, expected_output};

/// Most phases (L, the reduced output rate) the rational path takes; beyond, the FFT path.
const MAX_PHASES: usize = 1024;

/// Most coefficients (L × K) the rational path keeps, 512 KB of i16.
const MAX_COEFFS: usize = 1 << 18;

/// Input samples taken at a time (bounds the buffers; the outputs of one chunk are computed
/// together, eight phases at a time). A quarter of a 44.1 kHz stereo file's read block
/// (131 072 frames): at 44.1 → 16 kHz that is about 74 outputs per phase, nine blocks of
/// eight and one short block, where 8192 gave two and a short one (the short blocks share each coefficient load
/// among fewer outputs, and every chunk pays a window computation per phase). Live sources
/// deliver far less at a time, so this changes nothing for them.
const CHUNK: usize = 32768;

/// Resampling by L/M (`out_rate / in_rate` in lowest terms) with a polyphase FIR.
///
/// The prototype `h` (K·L − 1 taps at L × the input rate, centre `c`) is the input upsampled by
/// L and lowpassed; output `n` is `Σ_j x[j]·h[c + n·M − j·L]`, centred on input time `n·M/L`,
/// so nothing needs compensating beyond the lookahead. Output `n` uses phase
/// `φ = (c + n·M) mod L` of the filter (K taps) against K consecutive inputs, and outputs L
/// apart use the same phase on inputs M apart: the outputs of a block are computed eight
/// phases at a time (eight consecutive outputs and every L-th after them, [`dot_grid`]), each
/// phase's coefficients loaded once for eight of its outputs, and eight consecutive outputs
/// stored at once.
///
/// It runs in integers: the downmix goes straight to i16 into the resampler's buffer
/// ([`downmix_i16`], rounded as the quantizer rounds, so 16-bit mono input arrives unchanged),
/// the coefficients are i16 scaled by `S` (as large as i16 and an i32 accumulator allow), and
/// each output is an exact i32 sum rounded
/// to i16, handed to the framer as it is (no quantizing after). Each output is an exact sum
/// over its own window of the input, so the output is bit-identical for any blocking and on
/// any CPU (the kernels differ only in speed).
///
/// Float input beyond full scale is clipped at the downmix, before filtering, where the float
/// paths clip after it; that changes only the filter's ringing around such overshoot.
pub(super) struct Rational {
    up: u64,
    down: u64,
    taps: usize,
    centre: u64,
    /// Phase-major, each phase reversed: `coeffs[φ·K + u] = round(S · h[φ + (K − 1 − u)·L])`
    /// (with `h[K·L − 1] = 0`), so output `n` is `Σ_u coeffs[φ·K + u] · x'[start(n) + u] / S`.
    coeffs: Arc<[i16]>,
    /// `1 / S`: the kernels' way back to the samples' scale.
    unscale: f32,
    /// The stream preceded by K zeros (`x'`), from sample `buf_start` of it on.
    buf: Vec<i16>,
    buf_start: u64,
    /// The next output to compute.
    next: u64,
    output: Vec<i16>,
    frames_in: u64,
    in_rate: u64,
    out_rate: u64,
}

impl Rational {
    /// The resampler for `in_rate` → `out_rate`, or `None` when the ratio has too many phases
    /// or its filter cannot be designed (the caller then uses the FFT resampler).
    pub(super) fn new(in_rate: u32, out_rate: u32) -> Option<Self> {
        let (up, down) = reduced(in_rate, out_rate);
        if up > MAX_PHASES {
            return None;
        }
        let taps = polyphase_taps(up, down, DOT_LANES);
        if up * taps > MAX_COEFFS {
            return None;
        }
        let (coeffs, unscale) = prototype(up, down, taps)?;
        Some(Rational {
            up: up as u64,
            down: down as u64,
            taps,
            centre: ((taps * up - 2) / 2) as u64,
            coeffs,
            unscale,
            // The lead-in of K zeros, room for a chunk and a window.
            buf: {
                let mut b = Vec::with_capacity(CHUNK + 2 * taps + down);
                b.resize(taps, 0);
                b
            },
            buf_start: 0,
            next: 0,
            output: Vec::new(),
            frames_in: 0,
            in_rate: u64::from(in_rate),
            out_rate: u64::from(out_rate),
        })
    }

    /// Take interleaved `samples` of `channels` (whole frames), downmixed straight into the
    /// input buffer.
    pub(super) fn push(
        &mut self,
        samples: &[f32],
        channels: usize,
        framer: &mut Framer,
        out: &mut dyn FnMut(Frame),
    ) {
        self.frames_in += (samples.len() / channels) as u64;
        for piece in samples.chunks(self.chunk() * channels) {
            downmix_i16(piece, channels, &mut self.buf);
            self.run(u64::MAX, framer, out);
        }
    }

    /// [`Rational::push`] for 16-bit samples (see `Block`), mixed to mono without widening.
    pub(super) fn push_s16(
        &mut self,
        samples: &[i16],
        channels: usize,
        framer: &mut Framer,
        out: &mut dyn FnMut(Frame),
    ) {
        self.frames_in += (samples.len() / channels) as u64;
        for piece in samples.chunks(self.chunk() * channels) {
            downmix_s16(piece, channels, &mut self.buf);
            self.run(u64::MAX, framer, out);
        }
    }

    /// Input frames downmixed at a time. Upsampling makes more outputs than inputs: smaller
    /// chunks keep the output buffer at about CHUNK samples.
    fn chunk(&self) -> usize {
        (CHUNK as u64 * self.down / self.up.max(self.down)).max(64) as usize
    }

    /// Feed silence until every output up to `round(frames_in · L / M)` exists, and stop there.
    pub(super) fn flush(&mut self, framer: &mut Framer, out: &mut dyn FnMut(Frame)) {
        let expected = expected_output(self.frames_in, self.in_rate, self.out_rate);
        let zeros = self.taps + self.down as usize + 1;
        // Each round completes at least one output, so this ends; the bound is a safeguard.
        for _ in 0..1_000_000 {
            if framer.total_samples() >= expected {
                return;
            }
            self.buf.resize(self.buf.len() + zeros, 0);
            self.run(expected, framer, out);
        }
    }

    /// Where output `n`'s window starts in `x'`, and its phase.
    fn window(&self, n: u64) -> (u64, usize) {
        let a = self.centre + n * self.down;
        (a / self.up + 1, (a % self.up) as usize)
    }

    /// Compute every output whose window is complete, hand at most `limit` (in total over the
    /// stream) to the framer, and drop the inputs no later output needs.
    fn run(&mut self, limit: u64, framer: &mut Framer, out: &mut dyn FnMut(Frame)) {
        let avail = self.buf_start + self.buf.len() as u64;
        // Output n is complete when start(n) + K ≤ avail, that is c + n·M < L·(avail − K).
        let end = match (self.up * (avail.saturating_sub(self.taps as u64))).checked_sub(1) {
            Some(top) if top >= self.centre => (top - self.centre) / self.down + 1,
            _ => 0,
        };
        let ready = end.saturating_sub(self.next) as usize;
        if ready == 0 {
            return;
        }
        let (up, taps) = (self.up as usize, self.taps);
        self.output.clear();
        self.output.resize(ready, 0);
        let phases = ready.min(up);
        let mut s = 0;
        while s < phases {
            if s + GRID > phases {
                // The last few phases (a ratio whose L is not a multiple of eight), or fewer
                // outputs than phases: each its own.
                let (start, phase) = self.window(self.next + s as u64);
                let job = Rows {
                    coeffs: &self.coeffs[phase * taps..(phase + 1) * taps],
                    unscale: self.unscale,
                    x: &self.buf,
                    start: (start - self.buf_start) as usize,
                    step: self.down as usize,
                    out_step: up,
                };
                dot_rows(&job, (ready - s).div_ceil(up), &mut self.output[s..]);
                s += 1;
                continue;
            }
            // Eight consecutive outputs (eight phases), and every L-th after them: the rows
            // they all have together, then the one more some of the first have.
            let windows: [(u64, usize); GRID] =
                std::array::from_fn(|i| self.window(self.next + (s + i) as u64));
            let coeffs = windows.map(|(_, phase)| &self.coeffs[phase * taps..(phase + 1) * taps]);
            let job = Grid {
                coeffs,
                unscale: self.unscale,
                x: &self.buf,
                starts: windows.map(|(start, _)| (start - self.buf_start) as usize),
                step: self.down as usize,
                out_step: up,
            };
            let common = (ready - (s + GRID - 1)).div_ceil(up);
            dot_grid(&job, common, &mut self.output[s..]);
            for i in 0..GRID {
                let rows = (ready - (s + i)).div_ceil(up);
                if rows > common {
                    let out = &mut self.output[s + i + common * up..];
                    dot_rows(&job.phase(i, common), rows - common, out);
                }
            }
            s += GRID;
        }
        self.next = end;
        let (keep_from, _) = self.window(self.next);
        let drop = (keep_from - self.buf_start).min(self.buf.len() as u64);
        self.buf.drain(..drop as usize);
        self.buf_start += drop;
        let room = limit.saturating_sub(framer.total_samples());
        let keep = ready.min(usize::try_from(room).unwrap_or(usize::MAX));
        framer.push_pcm(&self.output[..keep], out);
    }
}

/// `out_rate / in_rate` in lowest terms, as (L, M).
fn reduced(in_rate: u32, out_rate: u32) -> (usize, usize) {
    let (mut a, mut b) = (in_rate, out_rate);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let g = a.max(1);
    ((out_rate / g) as usize, (in_rate / g) as usize)
}

/// The prototype for L/M laid out for the kernels, in i16, and the reciprocal of its scale.
/// Designed once per process and ratio and shared (`flux file --jobs` starts a conditioner
/// per file); `None` if the design fails.
fn prototype(up: usize, down: usize, taps: usize) -> Option<(Arc<[i16]>, f32)> {
    // Failures are remembered too: a failed design costs as much as a good one.
    type Designed = Vec<((usize, usize, usize), Option<(Arc<[i16]>, f32)>)>;
    static DESIGNED: Mutex<Designed> = Mutex::new(Vec::new());
    let mut designed = DESIGNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, coeffs)) = designed.iter().find(|d| d.0 == (up, down, taps)) {
        return coeffs.clone();
    }
    let Some(h) = polyphase_prototype(up, down, taps) else {
        designed.push(((up, down, taps), None));
        return None;
    };
    let quantized = quantize_prototype(&h, up, taps);
    designed.push(((up, down, taps), quantized.clone()));
    quantized
}

/// Lay the prototype out phase-major, each phase reversed, and scale it to i16 by the largest
/// `S` for which every coefficient fits an i16 and every phase passes [`accumulator_fits`]
/// (its `Σ|h| · S · 32768` fits an i32). Each phase's DC gain is `Σ h ≈ 1`, its `Σ|h|` a
/// little above 1 and its peak about `min(1, L/M)`, so `S` is about 2^15 · 1.5 when
/// downsampling (the i32 bound) and 2^15 when upsampling (the i16 bound, the centre tap near
/// 1): coefficients to 2^-16 or finer, whose rounding costs the stopband about a decibel
/// (the spec test measures the quantized filter). Returns the coefficients and `1 / S` in
/// f32 (whose rounding changes the gain by under 10^-7).
fn quantize_prototype(h: &[f64], up: usize, taps: usize) -> Option<(Arc<[i16]>, f32)> {
    let mut laid = vec![0.0f64; taps * up];
    for (k, &v) in h.iter().enumerate() {
        let (phase, q) = (k % up, k / up);
        laid[phase * taps + (taps - 1 - q)] = v;
    }
    let peak = laid.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let widest = laid
        .chunks_exact(taps)
        .map(|phase| phase.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0f64, f64::max);
    // A hair under each bound, so that rounding up cannot cross it; checked below anyway.
    let mut scale = (32767.0 / peak).min(f64::from(i32::MAX) / 32768.0 / widest) * 0.999;
    // Rounding can still push a phase's sum over; a few smaller scales settle it.
    for _ in 0..8 {
        if !scale.is_finite() || scale < f64::from(1u32 << 13) {
            return None;
        }
        let coeffs: Vec<i16> = laid.iter().map(|&v| (v * scale).round() as i16).collect();
        if coeffs.chunks_exact(taps).all(accumulator_fits) {
            return Some((coeffs.into(), (1.0 / scale) as f32));
        }
        scale *= 0.999;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::condition::quantize::quantize;
    use crate::audio::condition::test_support::*;

    /// Rate pairs the rational path takes: the common recording rates to the Flux rates, both
    /// ways.
    const RATIONAL_PAIRS: [(u32, u32); 9] = [
        (44100, 16000),
        (22050, 16000),
        (11025, 16000),
        (32000, 24000),
        (24000, 16000),
        (8000, 16000),
        (44100, 8000),
        (48000, 44100),
        (44100, 48000),
    ];

    /// The prototype as the resampler holds it (undoing the layout and the scale, so the
    /// quantized coefficients are what is measured), with unit DC gain.
    fn taps_of(r: &Rational) -> Vec<f64> {
        let (up, k) = (r.up as usize, r.taps);
        let scale = up as f64 / f64::from(r.unscale);
        (0..k * up - 1)
            .map(|i| f64::from(r.coeffs[(i % up) * k + (k - 1 - i / up)]) / scale)
            .collect()
    }

    /// The prototype meets the decimation filter's specification, relative to the narrower
    /// rate, on the shared coarse grid and on a fine one over the stopband's first stretch
    /// and the first image of the input band, where its lobes are narrower than the coarse
    /// grid's step.
    #[test]
    fn prototype_meets_the_specification() {
        for (in_rate, out_rate) in RATIONAL_PAIRS {
            let r = Rational::new(in_rate, out_rate).expect("a rational path");
            let (up, down) = (r.up as usize, r.down as usize);
            let h = taps_of(&r);
            let label = format!("{in_rate}->{out_rate}");
            let (pass, stop) = filter_spec(&h, up.max(down), &label);
            // Fine grid: a quarter of a lobe, from the stopband edge to 1.5 × the input rate.
            let fb = 1.0 / up.max(down) as f64; // the narrower rate, in cycles per sample
            let (lo, hi) = (0.55 * fb, (1.5 / up as f64).min(0.5));
            let step = 0.25 / h.len() as f64;
            let mut fine = f64::MIN;
            let mut f = lo;
            while f <= hi {
                fine = fine.max(gain_db(&h, f));
                f += step;
            }
            assert!(
                fine <= -70.0,
                "{label}: stopband only {fine:.1} dB (fine grid)"
            );
            eprintln!(
                "{label}: L {up}, M {down}, {} taps per phase, passband {pass:.4} dB, stopband {stop:.1} dB coarse, {fine:.1} dB fine",
                r.taps
            );
        }
    }

    /// Gain of `h` at `f` cycles per sample, in dB, by a rotating phasor (no trigonometry per
    /// tap: the filters here are long).
    fn gain_db(h: &[f64], f: f64) -> f64 {
        let w = -2.0 * std::f64::consts::PI * f;
        let (c, s) = (w.cos(), w.sin());
        let (mut pr, mut pi) = (1.0, 0.0);
        let (mut re, mut im) = (0.0, 0.0);
        for &v in h {
            re += v * pr;
            im += v * pi;
            (pr, pi) = (pr * c - pi * s, pr * s + pi * c);
        }
        10.0 * (re * re + im * im).log10()
    }

    fn through(freq: f64, in_rate: u32, out_rate: u32, amp: f64) -> Vec<i16> {
        let out = pcm(&run(
            &tone(freq, in_rate, in_rate as usize * 2, amp),
            1,
            in_rate,
            out_rate,
            &[4096],
        ));
        let skip = out_rate as usize / 10; // the abrupt start and end
        out[skip..out.len() - skip].to_vec()
    }

    /// 44.1 kHz → 16 kHz end to end: 1 kHz comes out at 1 kHz at its amplitude, the passband
    /// holds to its edge (7.2 kHz), a tone in the transition band just under the new Nyquist
    /// frequency (7.9 kHz) comes through attenuated but at its own frequency, and everything
    /// from the stopband edge (8.8 kHz: its alias would land at 7.2 kHz) up is at least 70 dB
    /// down.
    #[test]
    fn tones_44k1_to_16k() {
        let amp = 0.5;
        let one = through(1000.0, 44100, 16000, amp);
        let kept = level_db(&one, 1000.0, 16000, amp);
        assert!(kept.abs() < 0.1, "1 kHz: {kept:.4} dB");
        let noise = rms_db(&one, amp) - kept;
        assert!(
            noise.abs() < 0.01,
            "1 kHz: energy elsewhere ({noise:.4} dB)"
        );
        let edge = level_db(&through(7200.0, 44100, 16000, amp), 7200.0, 16000, amp);
        assert!(edge.abs() < 0.1, "7.2 kHz: {edge:.4} dB");
        let high = through(7900.0, 44100, 16000, amp);
        let own = level_db(&high, 7900.0, 16000, amp);
        let all = rms_db(&high, amp);
        assert!(
            (all - own).abs() < 0.01 && own < 0.1,
            "7.9 kHz: {own:.2} dB at 7.9 kHz, {all:.2} dB in all"
        );
        for f in [8800.0, 9000.0, 10_000.0, 15_000.0, 22_000.0] {
            let alias = rms_db(&through(f, 44100, 16000, amp), amp);
            assert!(alias < -70.0, "{f} Hz: {alias:.1} dB");
        }
        eprintln!("44.1k->16k: 1 kHz {kept:.4} dB, 7.2 kHz {edge:.4} dB, 7.9 kHz {own:.2} dB");
    }

    /// Feeding the same audio in blocks of any size gives the same bits, on every pair the
    /// rational path takes (the conditioner's own test covers the pairs in `RATE_PAIRS`).
    #[test]
    fn blocks_do_not_change_output() {
        for (in_rate, out_rate) in RATIONAL_PAIRS {
            let signal = noise(in_rate as usize / 4 + 29, u64::from(out_rate));
            let at_once = run(&signal, 1, in_rate, out_rate, &[usize::MAX / 4]);
            for sizes in [&[1usize][..], &[3, 440, 1, 4097], &[160], &[441]] {
                assert_eq!(
                    run(&signal, 1, in_rate, out_rate, sizes),
                    at_once,
                    "{in_rate}->{out_rate}, blocks {sizes:?}"
                );
            }
        }
    }

    /// Nothing is lost at the end: an impulse in the last output period comes out at its
    /// time and its full height (a lowpass's centre tap: `min(1, out/in)`), and the stream
    /// has exactly `round(n · out/in)` samples.
    #[test]
    fn tail_is_flushed() {
        for (in_rate, out_rate) in RATIONAL_PAIRS {
            let (up, down) = reduced(in_rate, out_rate);
            let q = 2000 / down + 1;
            // The impulse at q·M (output q·L), as near the end as keeps that output in range.
            let n = q * down + down.div_ceil(2 * up) + 1;
            let mut signal = vec![0.0f32; n];
            signal[q * down] = 0.9;
            let out = pcm(&run(&signal, 1, in_rate, out_rate, &[1000]));
            assert_eq!(
                out.len() as u64,
                expected_output(n as u64, u64::from(in_rate), u64::from(out_rate)),
                "{in_rate}->{out_rate}"
            );
            let peak = (0..out.len())
                .max_by_key(|&i| out[i].unsigned_abs())
                .unwrap();
            assert_eq!(peak, q * up, "{in_rate}->{out_rate}");
            let height = f64::from(out[peak]) / 32768.0;
            let want = 0.9 * (f64::from(out_rate) / f64::from(in_rate)).min(1.0);
            assert!(
                (height / want - 1.0).abs() < 0.05,
                "{in_rate}->{out_rate}: {height:.4}, not {want:.4}"
            );
        }
    }

    /// The resampler computes `y[n] = round(Σ_j x[j]·h[c + n·M − j·L] / S)` exactly
    /// (checked in i64 against the i16 taps it holds, on the input quantized as the downmix
    /// quantizes it), from the first output to the flushed last one, including full-scale
    /// input that saturates.
    #[test]
    fn output_is_the_polyphase_sum() {
        for (in_rate, out_rate) in [(44100, 16000), (8000, 16000), (48000, 44100)] {
            let r = Rational::new(in_rate, out_rate).unwrap();
            let (up, down, c) = (r.up as usize, r.down as usize, r.centre as usize);
            let (k, unscale) = (r.taps, r.unscale);
            let h: Vec<i64> = (0..k * up)
                .map(|i| i64::from(r.coeffs[(i % up) * k + (k - 1 - i / up)]))
                .collect();
            let mut x = noise(3000, 5);
            // A stretch of alternating full scale: the largest sums the filter can make.
            for (i, v) in x[1000..1400].iter_mut().enumerate() {
                *v = if i % 2 == 0 { 1.0 } else { -1.0 };
            }
            let xq: Vec<i64> = x.iter().map(|&v| i64::from(quantize(v))).collect();
            let mut framer = Framer::new(1 << 20, out_rate);
            let mut got = Vec::new();
            let mut r = r;
            r.push(&x, 1, &mut framer, &mut |_| {});
            r.flush(&mut framer, &mut |_| {});
            framer.flush(&mut |f| got = pcm(&[f]));
            for (n, &y) in got.iter().enumerate() {
                let acc: i64 = (0..x.len())
                    .filter_map(|j| {
                        let k = (c + n * down).checked_sub(j * up)?;
                        h.get(k).map(|&v| v * xq[j])
                    })
                    .sum();
                let acc = i32::try_from(acc).expect("the bound holds");
                let want = f64::from(acc as f32 * unscale)
                    .round_ties_even()
                    .clamp(-32768.0, 32767.0);
                assert_eq!(
                    f64::from(y),
                    want,
                    "{in_rate}->{out_rate}: output {n} is {y}, not {want}"
                );
            }
        }
    }

    #[test]
    fn awkward_ratios_are_left_to_the_fft_path() {
        assert!(Rational::new(44_101, 16000).is_none(), "L = 16000");
        assert!(Rational::new(7_999, 16000).is_none(), "L = 16000");
        assert_eq!(reduced(44100, 16000), (160, 441));
        assert_eq!(polyphase_taps(160, 441, DOT_LANES), 96);
        assert_eq!(polyphase_taps(2, 1, DOT_LANES), 32);
    }
}
