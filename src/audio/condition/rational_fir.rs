//! The rational resampler's kernels: rows of dot products `out[r] = Σ_u coeffs[u] · x[start +
//! r·step + u]`, one coefficient set against windows of the input `step` samples apart, one
//! kernel with AVX2 and FMA (chosen at run time) and one portable. Each output is summed in
//! one fixed order (eight lanes, taps in increasing order, then a fixed tree), so it never
//! depends on how many rows are computed together or on how the stream is cut into blocks.

/// Taps per phase come in multiples of this (one vector of f32).
pub(super) const DOT_LANES: usize = 8;

/// `out[r·out_step] = Σ_u coeffs[u] · x[start + r·step + u]` for `r` in `0..rows`;
/// `coeffs.len()` is a multiple of [`DOT_LANES`]. Rows whose window does not fit in `x`, or
/// whose output does not fit in `out`, are not computed (the caller sizes both so that none
/// is missing; the check keeps the kernels free of bounds checks).
///
/// Rows go eight at a time: one coefficient vector load serves eight windows, and eight
/// independent sums hide the multiply-add latency.
pub(super) fn dot_rows(
    coeffs: &[f32],
    x: &[f32],
    start: usize,
    step: usize,
    rows: usize,
    out: &mut [f32],
    out_step: usize,
) {
    let taps = coeffs.len() / DOT_LANES * DOT_LANES;
    let fit_x = (x.len() + step)
        .checked_sub(start + taps)
        .map_or(0, |room| room / step.max(1));
    let fit_out = (out.len() + out_step - 1) / out_step.max(1);
    let rows = rows.min(fit_x).min(fit_out);
    let coeffs = &coeffs[..taps];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: `dot_rows_avx2_fma` is only compiled for AVX2 and FMA, and this CPU has both
        // (checked just above); that is the whole contract of calling a `target_feature`
        // function.
        unsafe { dot_rows_avx2_fma(coeffs, x, start, step, rows, out, out_step) };
        return;
    }
    for r in 0..rows {
        let at = start + r * step;
        out[r * out_step] = dot_portable(coeffs, &x[at..at + taps]);
    }
}

/// Eight rows at a time, then the rest together (one block of one to seven rows).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_rows_avx2_fma(
    coeffs: &[f32],
    x: &[f32],
    start: usize,
    step: usize,
    rows: usize,
    out: &mut [f32],
    out_step: usize,
) {
    let mut r = 0;
    while r + 8 <= rows {
        block_avx2_fma::<8>(
            coeffs,
            x,
            start + r * step,
            step,
            out,
            r * out_step,
            out_step,
        );
        r += 8;
    }
    let (s, o) = (start + r * step, r * out_step);
    match rows - r {
        0 => {}
        1 => block_avx2_fma::<1>(coeffs, x, s, step, out, o, out_step),
        2 => block_avx2_fma::<2>(coeffs, x, s, step, out, o, out_step),
        3 => block_avx2_fma::<3>(coeffs, x, s, step, out, o, out_step),
        4 => block_avx2_fma::<4>(coeffs, x, s, step, out, o, out_step),
        5 => block_avx2_fma::<5>(coeffs, x, s, step, out, o, out_step),
        6 => block_avx2_fma::<6>(coeffs, x, s, step, out, o, out_step),
        _ => block_avx2_fma::<7>(coeffs, x, s, step, out, o, out_step),
    }
}

/// `A` rows: per vector of taps, one coefficient load and `A` fused multiply-adds, each into
/// its row's accumulator; then each accumulator summed across its lanes ([`hsum_avx`]).
///
/// Raw pointers, checked once: with a slice per row, the loop kept a bounds check per row and
/// vector, and spilled the rows' pointers (the kernel ran at half the speed).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn block_avx2_fma<const A: usize>(
    coeffs: &[f32],
    x: &[f32],
    start: usize,
    step: usize,
    out: &mut [f32],
    first: usize,
    out_step: usize,
) {
    use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps};
    let vectors = coeffs.len() / DOT_LANES;
    let fits = start + (A - 1) * step + vectors * DOT_LANES <= x.len()
        && first + (A - 1) * out_step < out.len();
    if !fits {
        // `dot_rows` only asks for rows that fit; this keeps the reads below in bounds anyway.
        return;
    }
    let c = coeffs.as_ptr();
    // Each row's own pointer, computed once and kept in a register: addressed as `row + 8j`,
    // every load is one instruction. Derived from `start + a·step` inside the loop, each row
    // cost an extra address computation per vector (x86 cannot scale by a variable stride),
    // a third of the loop's instructions.
    let mut row = [x.as_ptr(); A];
    for (a, row) in row.iter_mut().enumerate() {
        // SAFETY: `start + a·step + vectors·8 <= x.len()` by the check above, so the pointer
        // is within `x`.
        *row = unsafe { x.as_ptr().add(start + a * step) };
    }
    // Opaque to the optimizer: otherwise it sees `row[a] = row[0] + a·step` and derives each
    // address again inside the loop.
    let row = std::hint::black_box(row);
    let mut acc = [_mm256_setzero_ps(); A];
    for j in 0..vectors {
        // SAFETY: `j < vectors`, so the eight floats at `c + 8j` are within `coeffs`; row `a`
        // reads `x[start + a·step + 8j ..][..8]`, within `x` by the check above. Unaligned
        // loads have no alignment requirement.
        let cv = unsafe { _mm256_loadu_ps(c.add(DOT_LANES * j)) };
        for (acc, row) in acc.iter_mut().zip(&row) {
            // SAFETY: as above.
            let xv = unsafe { _mm256_loadu_ps(row.add(DOT_LANES * j)) };
            *acc = _mm256_fmadd_ps(cv, xv, *acc);
        }
    }
    if A == 8 {
        for (a, sum) in hsum8_avx(&acc).into_iter().enumerate() {
            out[first + a * out_step] = sum;
        }
        return;
    }
    for (a, acc) in acc.into_iter().enumerate() {
        out[first + a * out_step] = hsum_avx(acc);
    }
}

/// [`hsum_avx`] of eight vectors at once, each sum the same tree on the same values (so the
/// same bits): the three levels of additions done for all eight rows together in 21
/// instructions, where one row at a time took seven each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
fn hsum8_avx(v: &[std::arch::x86_64::__m256]) -> [f32; 8] {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
    };
    // Level 1, `lo + hi` of each row: row a in the low half, row a + 4 in the high half.
    let mut s = [v[0]; 4];
    for (a, s) in s.iter_mut().enumerate() {
        *s = _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(v[a], v[a + 4]),
            _mm256_permute2f128_ps::<0x31>(v[a], v[a + 4]),
        );
    }
    // Level 2, `(s0 + s2, s1 + s3)` of each row: rows a, a + 1 (and a + 4, a + 5) side by side.
    let t01 = _mm256_add_ps(
        _mm256_shuffle_ps::<0x44>(s[0], s[1]),
        _mm256_shuffle_ps::<0xEE>(s[0], s[1]),
    );
    let t23 = _mm256_add_ps(
        _mm256_shuffle_ps::<0x44>(s[2], s[3]),
        _mm256_shuffle_ps::<0xEE>(s[2], s[3]),
    );
    // Level 3, `t0 + t1`: rows 0–3 in the low half, 4–7 in the high half, in order.
    let sums = _mm256_add_ps(
        _mm256_shuffle_ps::<0x88>(t01, t23),
        _mm256_shuffle_ps::<0xDD>(t01, t23),
    );
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds eight floats; an unaligned store has no alignment requirement.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sums) };
    out
}

/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`: the same tree as [`hsum`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
fn hsum_avx(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::{
        _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
        _mm256_castps256_ps128, _mm256_extractf128_ps,
    };
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps::<1>(t, t)))
}

/// One row, unfused: eight lane sums over the taps in increasing order, then [`hsum`].
fn dot_portable(coeffs: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; DOT_LANES];
    for (c, x) in coeffs
        .chunks_exact(DOT_LANES)
        .zip(x.chunks_exact(DOT_LANES))
    {
        for ((a, &c), &x) in acc.iter_mut().zip(c).zip(x) {
            *a += c * x;
        }
    }
    hsum(&acc)
}

/// The lanes' fixed summation tree.
fn hsum(a: &[f32; DOT_LANES]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::condition::test_support::*;

    /// Every row count (blocks of eight and each remainder) gives, for each row, the bits of a
    /// one-row reference: lanes summed with fused multiply-adds where the CPU has AVX2 and FMA,
    /// unfused elsewhere, then the fixed tree.
    #[test]
    fn dot_kernels_match_the_reference_bit_for_bit() {
        let mut rng = Rng(17);
        let taps = 11 * DOT_LANES;
        let (step, out_step) = (3, 5);
        let coeffs: Vec<f32> = (0..taps).map(|_| rng.uniform() * 0.1).collect();
        let x: Vec<f32> = (0..40 * step + taps + 7).map(|_| rng.uniform()).collect();
        #[cfg(target_arch = "x86_64")]
        let fused = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let fused = false;
        let reference = |w: &[f32]| {
            let mut acc = [0.0f32; DOT_LANES];
            for u in 0..taps {
                let l = u % DOT_LANES;
                acc[l] = if fused {
                    coeffs[u].mul_add(w[u], acc[l])
                } else {
                    acc[l] + coeffs[u] * w[u]
                };
            }
            hsum(&acc).to_bits()
        };
        for rows in (0..=17).chain([40]) {
            for start in [0, 5] {
                let mut out = vec![f32::NAN; rows * out_step];
                dot_rows(&coeffs, &x, start, step, rows, &mut out, out_step);
                for r in 0..rows {
                    let at = start + r * step;
                    assert_eq!(
                        out[r * out_step].to_bits(),
                        reference(&x[at..at + taps]),
                        "{rows} rows from {start}, row {r}"
                    );
                }
            }
        }
        // Rows past the end of the input are left alone, not read out of bounds.
        let mut out = vec![f32::NAN; 100];
        dot_rows(&coeffs, &x, x.len() - taps, step, 100, &mut out, 1);
        assert!(!out[0].is_nan());
        assert!(out[1].is_nan());
    }
}
