//! Quantization: f32 in [-1, 1] to i16 little-endian bytes, rounded half away from zero and
//! clamped, vectorized (AVX2 chosen at run time).

/// f32 in [-1, 1] to i16: round half away from zero, clamp overshoot, NaN to silence.
///
/// The same result as `(x * 32768.0).round().clamp(-32768.0, 32767.0) as i16`, without
/// `f32::round` (on baseline x86-64, without SSE4.1, a libm call per sample) and without a
/// saturating float-to-int cast (which the compiler does not vectorize): NaN becomes 0 and the
/// value is clamped first, so truncation to an integer cannot overflow, and a fix-up of the
/// fraction gives the rounding. Clamping before rounding gives the same values (the bounds are
/// integers).
#[inline(always)]
pub(super) fn quantize(x: f32) -> i16 {
    let y = (x * 32768.0).clamp(-32768.0, 32767.0);
    let y = if x.is_nan() { 0.0 } else { y };
    // SAFETY: `y` is finite and within [-32768, 32767] (clamping turns infinities into the
    // bounds, and NaN was replaced just above), so it is representable as an i32 after
    // truncation, which is all `to_int_unchecked` requires.
    let t: i32 = unsafe { y.to_int_unchecked() };
    // Exact: `t` is `y` without its fraction.
    let frac = y - t as f32;
    (t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)) as i16
}

/// [`quantize`] each sample into `out` as little-endian bytes (`out.len() == 2 * samples.len()`).
pub(super) fn quantize_into(samples: &[f32], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `quantize_avx2` is only compiled for AVX2, and this CPU has AVX2 (checked
        // just above); that is the whole contract of calling a `target_feature` function.
        unsafe { quantize_avx2(samples, out) };
        return;
    }
    quantize_slice(samples, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quantize_avx2(samples: &[f32], out: &mut [u8]) {
    quantize_slice(samples, out);
}

/// Sixteen samples at a time through an array: the loop shape the compiler vectorizes (a loop
/// straight into the byte slice stayed scalar and cost 11 % of the audio thread).
#[inline(always)]
fn quantize_slice(samples: &[f32], out: &mut [u8]) {
    let mut src = samples.chunks_exact(16);
    let mut dst = out.chunks_exact_mut(32);
    for (x, y) in (&mut src).zip(&mut dst) {
        let mut q = [0i16; 16];
        for (q, &x) in q.iter_mut().zip(x) {
            *q = quantize(x);
        }
        for (y, q) in y.chunks_exact_mut(2).zip(q) {
            y.copy_from_slice(&q.to_le_bytes());
        }
    }
    for (y, &x) in dst
        .into_remainder()
        .chunks_exact_mut(2)
        .zip(src.remainder())
    {
        y.copy_from_slice(&quantize(x).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::condition::test_support::*;

    /// The vectorized quantizer gives what the one-sample function gives, for every length
    /// (whole groups of 16 and a remainder) and every kind of value.
    #[test]
    fn quantize_into_matches_quantize() {
        let mut rng = Rng(13);
        let values: Vec<f32> = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.5 / 32768.0]
            .into_iter()
            .chain((0..1000).map(|_| rng.uniform() * 1.2))
            .collect();
        for len in [0, 1, 15, 16, 17, 100, values.len()] {
            let mut bytes = vec![0xAA; 2 * len];
            quantize_into(&values[..len], &mut bytes);
            let want: Vec<u8> = values[..len]
                .iter()
                .flat_map(|&x| quantize(x).to_le_bytes())
                .collect();
            assert_eq!(bytes, want, "{len} samples");
        }
    }

    #[test]
    fn quantize_matches_round_then_clamp() {
        let reference = |x: f32| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        let mut rng = Rng(3);
        let edges = [
            0.5f32, -0.5, 1.5, -1.5, 2.5, 32766.5, 32767.5, -32767.5, -32768.5,
        ];
        let specials = edges.iter().map(|&e| e / 32768.0).chain([
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.0001,
            -1.0001,
            3.0,
            f32::MAX,
            f32::MIN,
        ]);
        for x in specials.chain((0..100_000).map(|_| rng.uniform() * 1.1)) {
            assert_eq!(quantize(x), reference(x), "{x}");
        }
    }
}
