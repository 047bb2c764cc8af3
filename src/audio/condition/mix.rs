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

/// [`mix_stereo_i16_loop`] in AVX2 by hand, sixteen frames at a time: pairs summed by
/// `vhaddps`, [`quantize`]'s rounding (truncate, then the fraction's fix-up) and its clamp
/// (the saturating pack: values past i16 only ever round further out) on eight lanes, the
/// frames put back in order by one permutation. The compiler's version of the loop did the
/// same work half in 128-bit registers, at about twice the instructions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mix_stereo_i16_avx2(samples: &[f32], mono: &mut [i16]) -> bool {
    use std::arch::x86_64::{
        __m256, __m256i, _CMP_GE_OQ, _CMP_LE_OQ, _mm256_and_si256, _mm256_castps_si256,
        _mm256_cmp_ps, _mm256_cvtepi32_ps, _mm256_cvttps_epi32, _mm256_hadd_ps, _mm256_loadu_ps,
        _mm256_max_epu32, _mm256_mul_ps, _mm256_packs_epi32, _mm256_permutevar8x32_epi32,
        _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_si256,
        _mm256_storeu_si256, _mm256_sub_epi32, _mm256_sub_ps,
    };
    // `quantize` of eight means: `t = trunc(y)`, then `t + (frac ≥ 0.5) − (frac ≤ −0.5)`; the
    // comparisons' all-ones masks are −1 as integers, hence the subtraction and addition
    // swapped. `y` is within ±2^18 (levels are checked), so the truncation is exact.
    let round = |m: __m256| {
        let y = _mm256_mul_ps(
            _mm256_mul_ps(m, _mm256_set1_ps(0.5)),
            _mm256_set1_ps(32768.0),
        );
        let t = _mm256_cvttps_epi32(y);
        let frac = _mm256_sub_ps(y, _mm256_cvtepi32_ps(t));
        let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5)));
        let down = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(frac, _mm256_set1_ps(-0.5)));
        _mm256_sub_epi32(
            _mm256_sub_epi32(t, up),
            _mm256_sub_epi32(_mm256_setzero_si256(), down),
        )
    };
    let magnitude = _mm256_set1_epi32(MAGNITUDE_BITS as i32);
    // `vpackssdw` works per 128-bit half: frames come out as pairs (0,1)(4,5)(8,9)(12,13) |
    // (2,3)(6,7)(10,11)(14,15); this puts the pairs back in order.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let mut largest = _mm256_setzero_si256();
    let whole = (samples.len() / 32).min(mono.len() / 16);
    for i in 0..whole {
        let mut v = [_mm256_set1_ps(0.0); 4];
        for (k, v) in v.iter_mut().enumerate() {
            // SAFETY: `i < samples.len() / 32`, so the eight floats at `32i + 8k` (k < 4) are
            // within `samples`; an unaligned load has no alignment requirement.
            *v = unsafe { _mm256_loadu_ps(samples.as_ptr().add(32 * i + 8 * k)) };
            largest = _mm256_max_epu32(
                largest,
                _mm256_and_si256(_mm256_castps_si256(*v), magnitude),
            );
        }
        // Per half: frames 0, 1 of the first vector, then 0, 1 of the second: (a + b) of
        // frames 0, 1, 4, 5 | 2, 3, 6, 7 (and 8… for the second pair of vectors).
        let lo = round(_mm256_hadd_ps(v[0], v[1]));
        let hi = round(_mm256_hadd_ps(v[2], v[3]));
        let packed = _mm256_permutevar8x32_epi32(_mm256_packs_epi32(lo, hi), order);
        // SAFETY: `i < mono.len() / 16`, so the sixteen i16 at `16i` are within `mono`.
        unsafe { _mm256_storeu_si256(mono.as_mut_ptr().add(16 * i).cast::<__m256i>(), packed) };
    }
    let mut lanes = [0u32; 8];
    // SAFETY: `lanes` holds eight u32; an unaligned store has no alignment requirement.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), largest) };
    let within = lanes.into_iter().max().unwrap_or(0) <= MAX_LEVEL.to_bits();
    // The rest (fewer than sixteen frames) by the portable loop, which checks its own levels.
    let rest = mix_stereo_i16_loop(&samples[32 * whole..], &mut mono[16 * whole..]);
    within && rest
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

/// [`downmix_i16`] of 16-bit samples, without widening them: `samples[i]` stands for
/// `samples[i] / 32768`, and the result is what [`downmix_i16`] gives for those floats,
/// appended to `out`. Mono is a copy. Stereo is integer arithmetic: `(L + R) / 2` is exact in
/// f32 (17 bits), so [`quantize`]'s rounding half away from zero is `(s + (s > 0)) >> 1` of
/// `s = L + R`, and the result always fits an i16. More channels widen each frame and take
/// [`downmix_i16`]'s general formula (their f32 sums are exact; the scale is not).
pub(super) fn downmix_s16(samples: &[i16], channels: usize, out: &mut Vec<i16>) {
    match channels {
        0 => {}
        1 => out.extend_from_slice(samples),
        2 => {
            let at = out.len();
            out.resize(at + samples.len() / 2, 0);
            mix_stereo_s16(samples, &mut out[at..]);
        }
        _ => {
            let scale = 1.0 / channels as f32;
            out.extend(samples.chunks_exact(channels).map(|f| {
                quantize(
                    f.iter()
                        .map(|&x| f32::from(x) * (1.0 / 32768.0))
                        .sum::<f32>()
                        * scale,
                )
            }));
        }
    }
}

/// [`downmix`] of 16-bit samples (see [`downmix_s16`]) into `mono` (resized to the frame
/// count): the float paths' input. Mono widens; stereo is `(L + R) · 2^-16`, the exact value
/// `(L/32768 + R/32768) · 0.5` has.
pub(super) fn downmix_s16_f32(samples: &[i16], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    match channels {
        0 => {}
        1 => crate::audio::pcm::widen_s16(samples, mono),
        2 => mono.extend(
            samples
                .chunks_exact(2)
                .map(|f| (i32::from(f[0]) + i32::from(f[1])) as f32 * (1.0 / 65536.0)),
        ),
        _ => {
            let scale = 1.0 / channels as f32;
            mono.extend(samples.chunks_exact(channels).map(|f| {
                f.iter()
                    .map(|&x| f32::from(x) * (1.0 / 32768.0))
                    .sum::<f32>()
                    * scale
            }));
        }
    }
}

/// `mono[i] = round_half_away((L + R) / 2)` for each stereo frame of `samples`.
fn mix_stereo_s16(samples: &[i16], mono: &mut [i16]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `mix_stereo_s16_avx2` is only compiled for AVX2, and this CPU has AVX2
        // (checked just above); that is the whole contract of calling a `target_feature`
        // function.
        unsafe { mix_stereo_s16_avx2(samples, mono) };
        return;
    }
    mix_stereo_s16_loop(samples, mono);
}

/// [`mix_stereo_s16_loop`] in AVX2, sixteen frames at a time: `vpmaddwd` by ones sums each
/// frame's pair into an i32 lane, the rounding is a compare, a subtraction and a shift, and
/// the saturating pack (never saturating here) plus one permutation give the frames in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mix_stereo_s16_avx2(samples: &[i16], mono: &mut [i16]) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpgt_epi32, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_packs_epi32,
        _mm256_permute4x64_epi64, _mm256_set1_epi16, _mm256_setzero_si256, _mm256_srai_epi32,
        _mm256_storeu_si256, _mm256_sub_epi32,
    };
    let ones = _mm256_set1_epi16(1);
    // `(s + (s > 0)) >> 1`: the comparison's mask is −1 where `s > 0`.
    let round = |s: __m256i| {
        _mm256_srai_epi32::<1>(_mm256_sub_epi32(
            s,
            _mm256_cmpgt_epi32(s, _mm256_setzero_si256()),
        ))
    };
    let whole = (samples.len() / 32).min(mono.len() / 16);
    for i in 0..whole {
        // SAFETY: `i < samples.len() / 32`, so the 32 i16 at `32i` are within `samples`; an
        // unaligned load has no alignment requirement.
        let (a, b) = unsafe {
            let p = samples.as_ptr().add(32 * i).cast::<__m256i>();
            (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)))
        };
        let lo = round(_mm256_madd_epi16(a, ones));
        let hi = round(_mm256_madd_epi16(b, ones));
        // `vpackssdw` works per 128-bit half: frames 0–3, 8–11 | 4–7, 12–15; the 64-bit
        // permutation puts the quarters in order.
        let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(lo, hi));
        // SAFETY: `i < mono.len() / 16`, so the sixteen i16 at `16i` are within `mono`.
        unsafe { _mm256_storeu_si256(mono.as_mut_ptr().add(16 * i).cast::<__m256i>(), packed) };
    }
    mix_stereo_s16_loop(&samples[32 * whole..], &mut mono[16 * whole..]);
}

/// The portable loop behind [`mix_stereo_s16`].
fn mix_stereo_s16_loop(samples: &[i16], mono: &mut [i16]) {
    for (y, f) in mono.iter_mut().zip(samples.chunks_exact(2)) {
        let s = i32::from(f[0]) + i32::from(f[1]);
        *y = ((s + i32::from(s > 0)) >> 1) as i16;
    }
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
        // Means exactly halfway between two steps, both signs (rounded away from zero), and
        // their neighbours one float step either side.
        // Equal in each pair, so that the stereo mean is the value itself.
        for (i, v) in samples[64..256].iter_mut().enumerate() {
            let half = (2 * (i as i32 / 6) - 16 + 1) as f32 / 65536.0;
            *v = match i / 2 % 3 {
                0 => half,
                1 => f32::from_bits(half.to_bits() + 1),
                _ => f32::from_bits(half.to_bits() - 1),
            };
        }
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

    /// 16-bit samples mixed without widening give what the float paths give for their
    /// decoded values, bit for bit: random and extreme input (full scale both ways, every
    /// tie `L + R` odd, both signs), every length up to a few vectors and a long one, every
    /// channel count to 8 and 64; the result is appended.
    #[test]
    fn s16_downmix_is_the_float_downmix_of_the_decoded_samples() {
        let mut rng = Rng(0x5eed);
        let extremes = [
            i16::MIN,
            i16::MIN + 1,
            -2,
            -1,
            0,
            1,
            2,
            i16::MAX - 1,
            i16::MAX,
        ];
        let mut samples: Vec<i16> = Vec::new();
        for &a in &extremes {
            for &b in &extremes {
                samples.extend([a, b]);
            }
        }
        for _ in 0..5000 {
            let r = rng.next();
            // Small values too, where ties and their neighbours crowd.
            let v = if r & 1 == 0 {
                (r >> 16) as i16
            } else {
                (r >> 16) as i16 >> 12
            };
            samples.push(v);
        }
        let mut lengths: Vec<usize> = (0..=70).collect();
        lengths.push(samples.len());
        for channels in (1..=8).chain([64]) {
            for &len in &lengths {
                let input = &samples[..len / channels * channels];
                let mut wide = Vec::new();
                crate::audio::pcm::widen_s16(input, &mut wide);
                let mut want = vec![7i16];
                downmix_i16(&wide, channels, &mut want);
                let mut got = vec![7i16];
                downmix_s16(input, channels, &mut got);
                assert_eq!(got, want, "{channels} channels, {len} samples");
                let mut want_f = Vec::new();
                downmix(&wide, channels, &mut want_f);
                let mut got_f = vec![3.0];
                downmix_s16_f32(input, channels, &mut got_f);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got_f), bits(&want_f), "{channels} ch, {len}, f32");
            }
        }
        // Every sum of a stereo pair, through the vector path (whole vectors of 16 frames).
        let pairs: Vec<i16> = (i32::from(i16::MIN)..=i32::from(i16::MAX))
            .flat_map(|l| [l as i16, (l / 3 - 7) as i16, l as i16, -(l / 2) as i16])
            .collect();
        let mut got = Vec::new();
        downmix_s16(&pairs, 2, &mut got);
        let mut want = vec![0; pairs.len() / 2];
        mix_stereo_s16_loop(&pairs, &mut want);
        assert_eq!(got, want);
        let quantized: Vec<i16> = pairs
            .chunks_exact(2)
            .map(|f| quantize((f32::from(f[0]) / 32768.0 + f32::from(f[1]) / 32768.0) * 0.5))
            .collect();
        assert_eq!(got, quantized);
    }
}
