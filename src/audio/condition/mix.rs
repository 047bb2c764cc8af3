//! Downmix: the mean of a frame's channels, one mono sample per input frame. Integer sources
//! take a fast path; values no real audio holds (NaN, infinities, 1e38 in a corrupt float WAV)
//! are sanitized and limited here, before they can reach the resampler.

use super::quantize::quantize;
use crate::audio::sanitize;
/// Mean of the channels of each frame, non-finite values sanitized and every value limited to
/// ±[`MAX_LEVEL`] first, into `mono` (resized to the frame count; every element is written).
///
/// Stereo, the common case, first tries the plain mean while it tracks the largest magnitude
/// read; only when that finds a value beyond ±[`MAX_LEVEL`] (or NaN, or an infinity), which
/// integer sources never produce, is the chunk mixed again with the per-sample sanitizing. The
/// fast loop's arithmetic is the general formula's (`(a + b) * 0.5` is what
/// `[a, b].sum() * (1 / 2)` computes, and sanitizing leaves values within the limit alone), so
/// results do not depend on the path taken.
pub(super) fn downmix(samples: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.resize(samples.len() / channels, 0.0);
    if channels == 2 && mix_stereo(samples, mono) {
        return;
    }
    // Finite but absurd values (a corrupt float WAV can hold 1e38) are limited too: the FFT
    // resampler overflows on them to a NaN spectrum, on which rubato panics.
    let sanitize = |x: f32| sanitize(x).clamp(-MAX_LEVEL, MAX_LEVEL);
    match channels {
        1 => {
            for (y, &x) in mono.iter_mut().zip(samples) {
                *y = sanitize(x);
            }
        }
        2 => {
            for (y, f) in mono.iter_mut().zip(samples.chunks_exact(2)) {
                *y = (sanitize(f[0]) + sanitize(f[1])) * 0.5;
            }
        }
        _ => {
            let scale = 1.0 / channels as f32;
            for (y, f) in mono.iter_mut().zip(samples.chunks_exact(channels)) {
                *y = f.iter().map(|&x| sanitize(x)).sum::<f32>() * scale;
            }
        }
    }
}

/// Largest input level passed on (+18 dBFS). Legitimate float audio overshoots full scale a
/// little and is clipped only at quantization, after resampling; far beyond this it is garbage.
pub(super) const MAX_LEVEL: f32 = 8.0;

/// The bits of a float with the sign cleared order like its magnitude, and NaN and the
/// infinities come above every finite value: one unsigned maximum checks a whole slice.
const MAGNITUDE_BITS: u32 = 0x7fff_ffff;

/// Whether every sample is finite and within ±[`MAX_LEVEL`], i.e. sanitizing would leave the
/// slice unchanged.
pub(super) fn within_level(samples: &[f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `within_level_avx2` is only compiled for AVX2, and this CPU has AVX2 (checked
        // just above); that is the whole contract of calling a `target_feature` function.
        return unsafe { within_level_avx2(samples) };
    }
    largest_magnitude(samples) <= MAX_LEVEL.to_bits()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn within_level_avx2(samples: &[f32]) -> bool {
    largest_magnitude(samples) <= MAX_LEVEL.to_bits()
}

#[inline(always)]
fn largest_magnitude(samples: &[f32]) -> u32 {
    samples
        .iter()
        .fold(0, |m, x| m.max(x.to_bits() & MAGNITUDE_BITS))
}

/// `mono[i] = (a + b) * 0.5` for each stereo frame, without sanitizing; returns whether that
/// was right, i.e. every sample was within ±[`MAX_LEVEL`] (see [`downmix`]).
fn mix_stereo(samples: &[f32], mono: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `mix_stereo_avx2` is only compiled for AVX2, and this CPU has AVX2 (checked
        // just above); that is the whole contract of calling a `target_feature` function.
        return unsafe { mix_stereo_avx2(samples, mono) };
    }
    mix_stereo_loop(samples, mono)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mix_stereo_avx2(samples: &[f32], mono: &mut [f32]) -> bool {
    mix_stereo_loop(samples, mono)
}

/// The loop behind [`mix_stereo`]: the mean and the magnitude check in one pass, eight frames
/// at a time so that the check runs on the interleaved samples as loaded (no shuffles) and
/// keeps its maxima in a vector until the end.
#[inline(always)]
fn mix_stereo_loop(samples: &[f32], mono: &mut [f32]) -> bool {
    let mut largest = [0u32; 16];
    let mut src = samples.chunks_exact(16);
    let mut dst = mono.chunks_exact_mut(8);
    for (f, y) in (&mut src).zip(&mut dst) {
        for (m, x) in largest.iter_mut().zip(f) {
            *m = (*m).max(x.to_bits() & MAGNITUDE_BITS);
        }
        for (y, f) in y.iter_mut().zip(f.chunks_exact(2)) {
            *y = (f[0] + f[1]) * 0.5;
        }
    }
    let rest = src.remainder();
    for (y, f) in dst.into_remainder().iter_mut().zip(rest.chunks_exact(2)) {
        *y = (f[0] + f[1]) * 0.5;
    }
    largest
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(largest_magnitude(rest))
        <= MAX_LEVEL.to_bits()
}

/// [`downmix`] then [`quantize`], appended to `out` in one pass with no f32 buffer between:
/// the integer resampler's input (`rational.rs`). Mono is quantized as it is (quantizing
/// sanitizes and clamps just as limiting then quantizing would); stereo takes the fast mean
/// while checking levels, as [`mix_stereo`] does, and mixes again sanitizing when the check
/// fails. Every path gives `quantize` of what [`downmix`] gives.
pub(super) fn downmix_i16(samples: &[f32], channels: usize, out: &mut Vec<i16>) {
    let frames = samples.len() / channels.max(1);
    let at = out.len();
    out.resize(at + frames, 0);
    let mono = &mut out[at..];
    if channels == 1 || (channels == 2 && mix_stereo_i16(samples, mono)) {
        if channels == 1 {
            quantize_mono(samples, mono);
        }
        return;
    }
    let sanitize = |x: f32| sanitize(x).clamp(-MAX_LEVEL, MAX_LEVEL);
    let scale = 1.0 / channels as f32;
    for (y, f) in mono.iter_mut().zip(samples.chunks_exact(channels)) {
        *y = quantize(if channels == 2 {
            (sanitize(f[0]) + sanitize(f[1])) * 0.5
        } else {
            f.iter().map(|&x| sanitize(x)).sum::<f32>() * scale
        });
    }
}

/// `mono[i] = quantize(samples[i])`, vectorized where the CPU has AVX2.
fn quantize_mono(samples: &[f32], mono: &mut [i16]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `quantize_mono_avx2` is only compiled for AVX2, and this CPU has AVX2
        // (checked just above); that is the whole contract of calling a `target_feature`
        // function.
        unsafe { quantize_mono_avx2(samples, mono) };
        return;
    }
    quantize_mono_loop(samples, mono);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quantize_mono_avx2(samples: &[f32], mono: &mut [i16]) {
    quantize_mono_loop(samples, mono);
}

/// Sixteen at a time through an array: the shape the compiler vectorizes (as in
/// `quantize.rs`).
#[inline(always)]
fn quantize_mono_loop(samples: &[f32], mono: &mut [i16]) {
    let mut src = samples.chunks_exact(16);
    let mut dst = mono.chunks_exact_mut(16);
    for (x, y) in (&mut src).zip(&mut dst) {
        let mut q = [0i16; 16];
        for (q, &x) in q.iter_mut().zip(x) {
            *q = quantize(x);
        }
        y.copy_from_slice(&q);
    }
    for (y, &x) in dst.into_remainder().iter_mut().zip(src.remainder()) {
        *y = quantize(x);
    }
}

/// `mono[i] = quantize((a + b) * 0.5)` for each stereo frame, without sanitizing; returns
/// whether that was right (every sample within ±[`MAX_LEVEL`]), as [`mix_stereo`] does.
fn mix_stereo_i16(samples: &[f32], mono: &mut [i16]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `mix_stereo_i16_avx2` is only compiled for AVX2, and this CPU has AVX2
        // (checked just above); that is the whole contract of calling a `target_feature`
        // function.
        return unsafe { mix_stereo_i16_avx2(samples, mono) };
    }
    mix_stereo_i16_loop(samples, mono)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mix_stereo_i16_avx2(samples: &[f32], mono: &mut [i16]) -> bool {
    mix_stereo_i16_loop(samples, mono)
}

/// The loop behind [`mix_stereo_i16`]: [`mix_stereo_loop`]'s shape, sixteen frames at a time,
/// the means into an array and quantized from it (the shape the compiler vectorizes).
#[inline(always)]
fn mix_stereo_i16_loop(samples: &[f32], mono: &mut [i16]) -> bool {
    let mut largest = [0u32; 32];
    let mut src = samples.chunks_exact(32);
    let mut dst = mono.chunks_exact_mut(16);
    for (f, y) in (&mut src).zip(&mut dst) {
        for (m, x) in largest.iter_mut().zip(f) {
            *m = (*m).max(x.to_bits() & MAGNITUDE_BITS);
        }
        let mut mean = [0.0f32; 16];
        for (m, f) in mean.iter_mut().zip(f.chunks_exact(2)) {
            *m = (f[0] + f[1]) * 0.5;
        }
        let mut q = [0i16; 16];
        for (q, &m) in q.iter_mut().zip(&mean) {
            *q = quantize(m);
        }
        y.copy_from_slice(&q);
    }
    let rest = src.remainder();
    for (y, f) in dst.into_remainder().iter_mut().zip(rest.chunks_exact(2)) {
        *y = quantize((f[0] + f[1]) * 0.5);
    }
    largest
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(largest_magnitude(rest))
        <= MAX_LEVEL.to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::condition::test_support::*;

    /// Found by fuzzing (fuzz/harness.rs, `wav`): a float WAV holding 1e38 made the FFT
    /// resampler's spectrum NaN and rubato panicked. Every rate path, every channel layout.
    #[test]
    fn absurd_float_values_are_limited_not_panicked_on() {
        let hostile = [
            1e38,
            -1e38,
            f32::MAX,
            f32::MIN,
            f32::NAN,
            f32::INFINITY,
            3e30,
            0.5,
        ];
        let signal: Vec<f32> = hostile
            .iter()
            .cycle()
            .take(3 * 22050 * 3)
            .copied()
            .collect();
        for (in_rate, out_rate) in [(22050, 16000), (48000, 16000), (16000, 16000)] {
            for channels in [1, 2, 3] {
                let frames = run(&signal, channels, in_rate, out_rate, &[4096]);
                assert!(!frames.is_empty());
            }
        }
    }

    /// The stereo fast path and the sanitizing one agree: a hostile value anywhere in a chunk
    /// changes only its own frame.
    #[test]
    fn downmix_paths_agree() {
        let sanitized = |a: f32, b: f32| {
            let s = |x: f32| crate::audio::sanitize(x).clamp(-MAX_LEVEL, MAX_LEVEL);
            (s(a) + s(b)) * 0.5
        };
        let clean = noise(2 * 1000, 17);
        let mut mono = Vec::new();
        downmix(&clean, 2, &mut mono);
        let want: Vec<f32> = clean.chunks(2).map(|f| sanitized(f[0], f[1])).collect();
        assert_eq!(mono, want);
        for (at, bad) in [
            (0, f32::NAN),
            (777, 1e38),
            (1999, f32::NEG_INFINITY),
            (5, 8.5),
        ] {
            let mut samples = clean.clone();
            samples[at] = bad;
            downmix(&samples, 2, &mut mono);
            let want: Vec<f32> = samples.chunks(2).map(|f| sanitized(f[0], f[1])).collect();
            assert_eq!(mono, want, "{bad} at {at}");
            assert!(!within_level(&samples));
        }
        assert!(within_level(&clean) && within_level(&[8.0, -8.0]));
    }

    /// The one-pass downmix to i16 is the quantized downmix, on every path (mono, the stereo
    /// fast and sanitizing paths, more channels), hostile values included, and appends.
    #[test]
    fn downmix_i16_is_the_quantized_downmix() {
        let mut samples = noise(3000, 23);
        // Full scale and beyond, where rounding and clamping matter.
        samples[10..16].copy_from_slice(&[1.0, 1.0, -1.0, -1.0, 0.99998, 1.00002]);
        let clean = samples.clone();
        samples[1501] = f32::NAN;
        samples[2000] = 1e38;
        samples[2001] = f32::NEG_INFINITY;
        for signal in [&clean, &samples] {
            for channels in [1, 2, 3] {
                let mut mono = Vec::new();
                downmix(signal, channels, &mut mono);
                let mut want = vec![7i16];
                want.extend(mono.iter().map(|&y| quantize(y)));
                let mut got = vec![7i16];
                downmix_i16(signal, channels, &mut got);
                assert_eq!(got, want, "{channels} channels");
            }
        }
    }
}
