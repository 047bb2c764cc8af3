//! The rational resampler's kernels: rows of integer dot products `out[r] = round(Σ_u
//! coeffs[u] · x[start + r·step + u] / S)`, i16 samples against one set of i16 coefficients
//! scaled by `S`, windows `step` samples apart ([`dot_rows`]), or eight such phases at once
//! with their outputs side by side, as a polyphase filter's consecutive outputs are
//! ([`dot_grid`]). One kernel for AVX2 (`vpmaddwd`: sixteen
//! multiply-adds per instruction pair, where f32 FMA did eight per instruction), one with
//! AVX-VNNI (`vpdpwssd`, the multiply and the add in one instruction), one portable, chosen at
//! run time. The arithmetic is exact in i32 (see [`accumulator_fits`]), so every kernel gives
//! the same bits in any order of summation: the output depends neither on the CPU nor on how
//! the stream is cut into blocks.

/// Taps per phase come in multiples of this (one vector of i16).
pub(super) const DOT_LANES: usize = 16;

/// Whether `Σ_u |coeffs[u]| · 32768`, the largest magnitude an accumulator (and every
/// partial sum on the way, each a sum over a subset of the taps) can reach with any i16
/// input, fits an i32. The coefficient scale is chosen so that it does (`rational.rs`, once
/// per filter); the kernels rely on it for exact sums (their additions wrap, so a filter
/// that broke it would give wrong samples, never undefined behaviour).
pub(super) fn accumulator_fits(coeffs: &[i16]) -> bool {
    let sum: i64 = coeffs.iter().map(|&c| i64::from(c).abs()).sum();
    sum * 32768 <= i64::from(i32::MAX)
}

/// The exact sum back to the samples' scale: `acc` to f32 (rounded to nearest, which loses
/// at most 2^6 of a sum up to 2^31, under a thousandth of an output step), times `unscale`
/// (`1 / S` in f32), rounded to nearest (ties to even) and saturated to i16. The same IEEE
/// operations in every kernel (`vcvtdq2ps`, `vmulps`, `vcvtps2dq`, `vpackssdw` eight at a
/// time in the AVX2 ones, [`finish8_avx2`]), so the same bits.
#[inline(always)]
fn finish(acc: i32, unscale: f32) -> i16 {
    // Within ±2^31 / S (S ≥ 2^13), so the float-to-int conversion is exact and cannot wrap.
    ((acc as f32 * unscale).round_ties_even() as i32).clamp(-32768, 32767) as i16
}

/// What every row of a [`dot_rows`] call shares: the coefficients (a multiple of
/// [`DOT_LANES`], satisfying [`accumulator_fits`]) and the reciprocal of their scale
/// (`1 / S`, `S` at least 2^13), the input, where the first window starts and how far apart
/// windows are, and how far apart outputs go.
pub(super) struct Rows<'a> {
    pub(super) coeffs: &'a [i16],
    pub(super) unscale: f32,
    pub(super) x: &'a [i16],
    pub(super) start: usize,
    pub(super) step: usize,
    pub(super) out_step: usize,
}

/// `out[r·out_step] = round(Σ_u coeffs[u] · x[start + r·step + u] / S)` for `r` in
/// `0..rows`. Rows whose window does not fit in `x`, or whose output does not fit in `out`,
/// are not computed (the caller sizes both so that none is missing; the check keeps the
/// kernels free of bounds checks).
///
/// Rows go eight at a time: one coefficient vector load serves eight windows, and eight
/// independent sums hide the multiply-add latency. (For many phases at once, [`dot_grid`]
/// stores faster.)
pub(super) fn dot_rows(job: &Rows, rows: usize, out: &mut [i16]) {
    let taps = job.coeffs.len();
    if !taps.is_multiple_of(DOT_LANES) {
        return;
    }
    let fit_x = (job.x.len() + job.step)
        .checked_sub(job.start + taps)
        .map_or(0, |room| room / job.step.max(1));
    let fit_out = (out.len() + job.out_step - 1) / job.out_step.max(1);
    let rows = rows.min(fit_x).min(fit_out);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avxvnni") {
            // SAFETY: `rows_vnni` is only compiled for AVX2 and AVX-VNNI, and this CPU has
            // both (AVX-VNNI implies AVX2; checked just above); that is the whole contract of
            // calling a `target_feature` function.
            unsafe { rows_vnni(job, rows, out) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2.
            unsafe { rows_avx2(job, rows, out) };
            return;
        }
    }
    rows_portable(job, rows, out);
}

fn rows_portable(job: &Rows, rows: usize, out: &mut [i16]) {
    let taps = job.coeffs.len();
    for r in 0..rows {
        let at = job.start + r * job.step;
        let acc = job
            .coeffs
            .iter()
            .zip(&job.x[at..at + taps])
            .fold(0i32, |acc, (&c, &x)| {
                acc.wrapping_add(i32::from(c) * i32::from(x))
            });
        out[r * job.out_step] = finish(acc, job.unscale);
    }
}

/// Phases a [`Grid`] takes at once (the outputs of one row of them are consecutive).
pub(super) const GRID: usize = 8;

/// [`GRID`] phases' rows at once: phase `i` has coefficients `coeffs[i]` (all as long, a
/// multiple of [`DOT_LANES`], satisfying [`accumulator_fits`]) and its first window at
/// `starts[i]`; every phase's windows are `step` apart.
pub(super) struct Grid<'a> {
    pub(super) coeffs: [&'a [i16]; GRID],
    pub(super) unscale: f32,
    pub(super) x: &'a [i16],
    pub(super) starts: [usize; GRID],
    pub(super) step: usize,
    pub(super) out_step: usize,
}

impl<'a> Grid<'a> {
    /// Phase `i`'s rows from row `first` on, as a job of its own.
    pub(super) fn phase(&self, i: usize, first: usize) -> Rows<'a> {
        Rows {
            coeffs: self.coeffs[i],
            unscale: self.unscale,
            x: self.x,
            start: self.starts[i] + first * self.step,
            step: self.step,
            out_step: self.out_step,
        }
    }
}

/// `out[r·out_step + i] = round(Σ_u coeffs[i][u] · x[starts[i] + r·step + u] / S)` for `r`
/// in `0..rows` and `i` in `0..GRID`: [`dot_rows`] of each phase, the phases' outputs side by
/// side. Rows that do not fit `x` or `out` are not computed, as in [`dot_rows`].
///
/// For eight consecutive outputs of a polyphase filter (`out_step` the number of phases,
/// at least [`GRID`], so that rows do not overlap: nothing is computed otherwise), the x86
/// kernels store each row's eight outputs at once (`grid_vnni`).
pub(super) fn dot_grid(job: &Grid, rows: usize, out: &mut [i16]) {
    let taps = job.coeffs[0].len();
    if !taps.is_multiple_of(DOT_LANES)
        || job.coeffs.iter().any(|c| c.len() != taps)
        || job.out_step < GRID
    {
        return;
    }
    let latest = job.starts.iter().copied().max().unwrap_or(0);
    let fit_x = (job.x.len() + job.step)
        .checked_sub(latest + taps)
        .map_or(0, |room| room / job.step.max(1));
    let fit_out = (out.len() + job.out_step)
        .checked_sub(GRID)
        .map_or(0, |room| room / job.out_step.max(1));
    let rows = rows.min(fit_x).min(fit_out);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avxvnni") {
            // SAFETY: as in `dot_rows`.
            unsafe { grid_vnni(job, rows, out) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as in `dot_rows`, for AVX2.
            unsafe { grid_avx2(job, rows, out) };
            return;
        }
    }
    grid_by_phase(job, rows, out);
}

/// [`dot_grid`] without AVX2: [`dot_rows`] of each phase, its outputs `out_step` apart.
fn grid_by_phase(job: &Grid, rows: usize, out: &mut [i16]) {
    for i in 0..GRID {
        if let Some(out) = out.get_mut(i..) {
            dot_rows(&job.phase(i, 0), rows, out);
        }
    }
}

/// The two x86 kernels differ only in the multiply-add: `vpmaddwd` + `vpaddd`, or `vpdpwssd`.
/// `rows` rows through `$block::<A>(job, first_row, out)`: blocks of eight, then one block of
/// the one to seven left (`A` is a constant, so each size is its own loop).
#[cfg(target_arch = "x86_64")]
macro_rules! in_blocks_of_eight {
    ($block:ident, $job:expr, $rows:expr, $out:expr) => {{
        let mut r = 0;
        while r + 8 <= $rows {
            $block::<8>($job, r, $out);
            r += 8;
        }
        match $rows - r {
            0 => {}
            1 => $block::<1>($job, r, $out),
            2 => $block::<2>($job, r, $out),
            3 => $block::<3>($job, r, $out),
            4 => $block::<4>($job, r, $out),
            5 => $block::<5>($job, r, $out),
            6 => $block::<6>($job, r, $out),
            _ => $block::<7>($job, r, $out),
        }
    }};
}

#[cfg(target_arch = "x86_64")]
macro_rules! x86_rows {
    (
        $rows:ident,
        $grid:ident,
        $gridblock:ident,
        $block:ident,
        $sums:ident,
        $features:literal,
        $madd:expr
    ) => {
        /// Eight rows at a time, then the rest together (one block of one to seven rows).
        #[target_feature(enable = $features)]
        fn $rows(job: &Rows, rows: usize, out: &mut [i16]) {
            in_blocks_of_eight!($block, job, rows, out);
        }

        /// `A` rows from row `first`, their outputs `out_step` apart.
        #[target_feature(enable = $features)]
        fn $block<const A: usize>(job: &Rows, first: usize, out: &mut [i16]) {
            use std::arch::x86_64::{__m128i, _mm_storeu_si128};
            let start = job.start + first * job.step;
            let fits = start + (A - 1) * job.step + job.coeffs.len() <= job.x.len()
                && (first + A - 1) * job.out_step < out.len();
            if !fits {
                // `dot_rows` only asks for rows that fit; this keeps the accesses in bounds.
                return;
            }
            // SAFETY: the rows' windows are within `x` (checked just above).
            let acc = unsafe { $sums::<A>(job.coeffs, job.x, start, job.step) };
            let mut y = [0i16; 8];
            let packed = finish8_avx2(&acc, job.unscale);
            // SAFETY: `y` holds eight i16; an unaligned store has no alignment requirement.
            unsafe { _mm_storeu_si128(y.as_mut_ptr().cast::<__m128i>(), packed) };
            let o = out.as_mut_ptr();
            for (a, &y) in y.iter().take(A).enumerate() {
                // SAFETY: `(first + a)·out_step < out.len()` for `a < A` by the check above.
                unsafe { *o.add((first + a) * job.out_step) = y };
            }
        }

        /// Blocks of eight rows of the eight phases, then one of the rest (one to seven
        /// rows): each phase's outputs of a block come out of [`finish8_avx2`] in one
        /// vector, and an 8 × 8 transpose turns the eight vectors into runs of eight
        /// consecutive outputs (one per row, the phases side by side), each stored at once.
        /// Eight two-byte stores `out_step` apart per block, as [`dot_rows`] makes, took
        /// about a fifth more time per output (docs/performance.md: 3.03 against 2.58 ns).
        #[target_feature(enable = $features)]
        fn $grid(job: &Grid, rows: usize, out: &mut [i16]) {
            in_blocks_of_eight!($gridblock, job, rows, out);
        }

        /// `A` rows of the grid's phases from row `first`: `A` runs of eight outputs.
        #[target_feature(enable = $features)]
        fn $gridblock<const A: usize>(job: &Grid, first: usize, out: &mut [i16]) {
            use std::arch::x86_64::{__m128i, _mm_setzero_si128, _mm_storeu_si128};
            let taps = job.coeffs[0].len();
            let last = first + A - 1;
            let fits = job.coeffs.iter().all(|c| c.len() == taps)
                && job
                    .starts
                    .iter()
                    .all(|&s| s + last * job.step + taps <= job.x.len())
                && last * job.out_step + GRID <= out.len();
            if !fits {
                // `dot_grid` only asks for rows that fit; this keeps the accesses in bounds.
                return;
            }
            let mut y = [_mm_setzero_si128(); GRID];
            for ((y, coeffs), start) in y.iter_mut().zip(job.coeffs).zip(job.starts) {
                let start = start + first * job.step;
                // SAFETY: the rows' windows are within `x` (checked above).
                let acc = unsafe { $sums::<A>(coeffs, job.x, start, job.step) };
                *y = finish8_avx2(&acc, job.unscale);
            }
            let o = out.as_mut_ptr();
            for (k, row) in transpose8_avx2(y).into_iter().take(A).enumerate() {
                // SAFETY: `(first + k)·out_step + 8 <= last·out_step + 8 <= out.len()`
                // (checked above); an unaligned store has no alignment requirement.
                unsafe {
                    _mm_storeu_si128(o.add((first + k) * job.out_step).cast::<__m128i>(), row)
                };
            }
        }

        /// The accumulators of `A` rows, windows from `start` `step` apart: per vector of
        /// sixteen taps, one coefficient load and `A` multiply-adds into eight i32 lanes of
        /// the row's accumulator. Rows past `A` are zero (so [`finish8_avx2`] takes any `A`).
        ///
        /// Raw pointers, each row's own kept in a register (addressed as `row + 16j`, every
        /// load is one instruction; with a slice per row the loop kept a bounds check per row
        /// and vector).
        ///
        /// # Safety
        ///
        /// `start + (A − 1)·step + coeffs.len() <= x.len()`, and `coeffs.len()` is a multiple
        /// of [`DOT_LANES`].
        #[target_feature(enable = $features)]
        #[inline]
        unsafe fn $sums<const A: usize>(
            coeffs: &[i16],
            x: &[i16],
            start: usize,
            step: usize,
        ) -> [std::arch::x86_64::__m256i; 8] {
            use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_setzero_si256};
            let c = coeffs.as_ptr();
            let mut row = [x.as_ptr(); A];
            for (a, row) in row.iter_mut().enumerate() {
                // SAFETY: `start + a·step + taps <= x.len()` (the caller's contract), so the
                // pointer is within `x`.
                *row = unsafe { x.as_ptr().add(start + a * step) };
            }
            // Opaque to the optimizer: otherwise it sees `row[a] = row[0] + a·step` and
            // derives each address again inside the loop.
            let row = std::hint::black_box(row);
            let mut acc = [_mm256_setzero_si256(); 8];
            for j in 0..coeffs.len() / DOT_LANES {
                // SAFETY: `j < taps / 16`, so the sixteen i16 at `c + 16j` are within
                // `coeffs`; row `a` reads `x[start + a·step + 16j ..][..16]`, within `x` by
                // the caller's contract. Unaligned loads have no alignment requirement.
                let cv = unsafe { _mm256_loadu_si256(c.add(DOT_LANES * j).cast::<__m256i>()) };
                for (acc, row) in acc.iter_mut().zip(&row) {
                    // SAFETY: as above.
                    let xv =
                        unsafe { _mm256_loadu_si256(row.add(DOT_LANES * j).cast::<__m256i>()) };
                    *acc = $madd(*acc, cv, xv);
                }
            }
            acc
        }
    };
}

#[cfg(target_arch = "x86_64")]
x86_rows!(
    rows_avx2,
    grid_avx2,
    gridblock_avx2,
    block_avx2,
    sums_avx2,
    "avx2",
    |acc, c, x| {
        use std::arch::x86_64::{_mm256_add_epi32, _mm256_madd_epi16};
        _mm256_add_epi32(acc, _mm256_madd_epi16(c, x))
    }
);

#[cfg(target_arch = "x86_64")]
x86_rows!(
    rows_vnni,
    grid_vnni,
    gridblock_vnni,
    block_vnni,
    sums_vnni,
    "avx2,avxvnni",
    |acc, c, x| { std::arch::x86_64::_mm256_dpwssd_avx_epi32(acc, c, x) }
);

/// An 8 × 8 transpose of i16: `out[k][i] = v[i][k]` (three rounds of interleaves).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn transpose8_avx2(v: [std::arch::x86_64::__m128i; 8]) -> [std::arch::x86_64::__m128i; 8] {
    use std::arch::x86_64::{
        _mm_unpackhi_epi16, _mm_unpackhi_epi32, _mm_unpackhi_epi64, _mm_unpacklo_epi16,
        _mm_unpacklo_epi32, _mm_unpacklo_epi64,
    };
    // Pairs of vectors, element by element: (v0[0], v1[0], v0[1], v1[1], …).
    let a = [
        _mm_unpacklo_epi16(v[0], v[1]),
        _mm_unpackhi_epi16(v[0], v[1]),
        _mm_unpacklo_epi16(v[2], v[3]),
        _mm_unpackhi_epi16(v[2], v[3]),
        _mm_unpacklo_epi16(v[4], v[5]),
        _mm_unpackhi_epi16(v[4], v[5]),
        _mm_unpacklo_epi16(v[6], v[7]),
        _mm_unpackhi_epi16(v[6], v[7]),
    ];
    // Quads: b[0] = (v0..3 [0], v0..3 [1]), b[1] = elements 2, 3, b[2] = 4, 5, b[3] = 6, 7;
    // b[4..] the same of v4..7.
    let b = [
        _mm_unpacklo_epi32(a[0], a[2]),
        _mm_unpackhi_epi32(a[0], a[2]),
        _mm_unpacklo_epi32(a[1], a[3]),
        _mm_unpackhi_epi32(a[1], a[3]),
        _mm_unpacklo_epi32(a[4], a[6]),
        _mm_unpackhi_epi32(a[4], a[6]),
        _mm_unpacklo_epi32(a[5], a[7]),
        _mm_unpackhi_epi32(a[5], a[7]),
    ];
    [
        _mm_unpacklo_epi64(b[0], b[4]),
        _mm_unpackhi_epi64(b[0], b[4]),
        _mm_unpacklo_epi64(b[1], b[5]),
        _mm_unpackhi_epi64(b[1], b[5]),
        _mm_unpacklo_epi64(b[2], b[6]),
        _mm_unpackhi_epi64(b[2], b[6]),
        _mm_unpacklo_epi64(b[3], b[7]),
        _mm_unpackhi_epi64(b[3], b[7]),
    ]
}

/// The lane sums of eight accumulators at once (three levels of `vphaddd` and one of
/// cross-half additions, wrapping i32 additions, exact since the true sums fit
/// [`accumulator_fits`]), then [`finish`] of all eight, packed to eight i16 in one vector:
/// 15 instructions for eight outputs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn finish8_avx2(v: &[std::arch::x86_64::__m256i; 8], unscale: f32) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::_mm_packs_epi32;
    use std::arch::x86_64::{
        _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi32_ps, _mm256_cvtps_epi32,
        _mm256_extracti128_si256, _mm256_hadd_epi32, _mm256_mul_ps, _mm256_permute2x128_si256,
        _mm256_set1_ps,
    };
    // Per half: (row a, lanes 0+1, 2+3; row a + 1, …), then rows 0–3 in each half.
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    let q0 = _mm256_hadd_epi32(h01, h23); // rows 0–3: low-half sums | high-half sums
    let q1 = _mm256_hadd_epi32(h45, h67); // rows 4–7
    let sums = _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(q0, q1),
        _mm256_permute2x128_si256::<0x31>(q0, q1),
    );
    // `finish`: to f32, scaled, rounded to nearest even (the default rounding mode, which
    // Rust code never changes), then saturated to i16 by the pack.
    let rounded = _mm256_cvtps_epi32(_mm256_mul_ps(
        _mm256_cvtepi32_ps(sums),
        _mm256_set1_ps(unscale),
    ));
    _mm_packs_epi32(
        _mm256_castsi256_si128(rounded),
        _mm256_extracti128_si256::<1>(rounded),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::condition::test_support::*;

    /// The exact result in i64, for comparison.
    fn reference(coeffs: &[i16], unscale: f32, w: &[i16]) -> i16 {
        let acc: i64 = coeffs
            .iter()
            .zip(w)
            .map(|(&c, &x)| i64::from(c) * i64::from(x))
            .sum();
        let acc = i32::try_from(acc).expect("the bound holds");
        let y = f64::from(acc as f32 * unscale).round_ties_even();
        y.clamp(-32768.0, 32767.0) as i16
    }

    fn check(coeffs: &[i16], unscale: f32, x: &[i16], label: &str) {
        let taps = coeffs.len();
        assert!(accumulator_fits(coeffs), "{label}: bound");
        let (step, out_step) = (3, 5);
        for rows in (0..=17).chain([40]) {
            for start in [0, 5] {
                let want: Vec<i16> = (0..rows)
                    .map(|r| reference(coeffs, unscale, &x[start + r * step..][..taps]))
                    .collect();
                let job = Rows {
                    coeffs,
                    unscale,
                    x,
                    start,
                    step,
                    out_step,
                };
                let mut out = vec![i16::MIN; rows * out_step];
                dot_rows(&job, rows, &mut out);
                let got: Vec<i16> = (0..rows).map(|r| out[r * out_step]).collect();
                assert_eq!(got, want, "{label}: {rows} rows from {start}");
                let mut portable = vec![i16::MIN; rows * out_step];
                rows_portable(&job, rows, &mut portable);
                assert_eq!(portable, out, "{label}: portable, {rows} rows from {start}");
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut avx2 = vec![i16::MIN; rows * out_step];
                    // SAFETY: this CPU has AVX2 (checked just above).
                    unsafe { rows_avx2(&job, rows, &mut avx2) };
                    assert_eq!(avx2, out, "{label}: AVX2, {rows} rows from {start}");
                }
            }
        }
    }

    /// The grid kernels (dispatched, phase by phase, and each x86 one this CPU has) give every
    /// phase's exact rows, side by side, for every row count (blocks of eight and each
    /// remainder), with each phase's own coefficients and windows, on random and on
    /// full-scale input.
    #[test]
    fn grid_kernels_are_exact() {
        let mut rng = Rng(29);
        let taps = 6 * DOT_LANES;
        let unscale = 1.0 / (32768.0 * 1.37);
        let step = 11;
        let out_step = 13;
        let coeffs: Vec<Vec<i16>> = (0..GRID)
            .map(|_| (0..taps).map(|_| (rng.uniform() * 600.0) as i16).collect())
            .collect();
        let random: Vec<i16> = (0..40 * step + taps + 30)
            .map(|_| rng.next() as i16)
            .collect();
        let loud: Vec<i16> = (0..40 * step + taps + 30)
            .map(|i| if i % 2 == 0 { i16::MIN } else { i16::MAX })
            .collect();
        for (x, label) in [(&random, "random"), (&loud, "full scale")] {
            for rows in (0..=17).chain([40]) {
                let job = Grid {
                    coeffs: std::array::from_fn(|i| &coeffs[i][..]),
                    unscale,
                    x,
                    starts: [3, 0, 7, 1, 20, 5, 2, 9],
                    step,
                    out_step,
                };
                let mut want = vec![i16::MIN; (rows + 1) * out_step];
                for r in 0..rows {
                    for i in 0..GRID {
                        let at = job.starts[i] + r * step;
                        want[r * out_step + i] = reference(&coeffs[i], unscale, &x[at..][..taps]);
                    }
                }
                let mut got = vec![i16::MIN; want.len()];
                dot_grid(&job, rows, &mut got);
                assert_eq!(got, want, "{label}: {rows} rows, dispatched");
                let mut by_phase = vec![i16::MIN; want.len()];
                grid_by_phase(&job, rows, &mut by_phase);
                assert_eq!(by_phase, want, "{label}: {rows} rows, phase by phase");
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx2") {
                        let mut avx2 = vec![i16::MIN; want.len()];
                        // SAFETY: this CPU has AVX2 (checked just above).
                        unsafe { grid_avx2(&job, rows, &mut avx2) };
                        assert_eq!(avx2, want, "{label}: {rows} rows, AVX2");
                    }
                    if std::arch::is_x86_feature_detected!("avxvnni") {
                        let mut vnni = vec![i16::MIN; want.len()];
                        // SAFETY: this CPU has AVX-VNNI (checked just above).
                        unsafe { grid_vnni(&job, rows, &mut vnni) };
                        assert_eq!(vnni, want, "{label}: {rows} rows, AVX-VNNI");
                    }
                }
            }
        }
        // Rows past the end of the input, or of the output, are left alone.
        let job = Grid {
            coeffs: std::array::from_fn(|i| &coeffs[i][..]),
            unscale,
            x: &random,
            starts: [0; GRID],
            step,
            out_step,
        };
        let fit_x = (random.len() - taps) / step + 1;
        let mut out = vec![i16::MIN; (fit_x + 5) * out_step];
        dot_grid(&job, fit_x + 5, &mut out);
        assert_ne!(out[(fit_x - 1) * out_step], i16::MIN);
        assert!(out[fit_x * out_step..].iter().all(|&y| y == i16::MIN));
        let mut short = vec![i16::MIN; 2 * out_step + 3];
        dot_grid(&job, 8, &mut short);
        assert_ne!(short[out_step + 7], i16::MIN);
        assert!(short[2 * out_step..].iter().all(|&y| y == i16::MIN));
    }

    /// Every kernel (the dispatched one, the portable one, AVX2 where the dispatch picked
    /// AVX-VNNI), every row count (blocks of eight and each remainder) gives the exact result,
    /// on random input and on the worst case for the accumulator: full-scale input of the
    /// coefficients' signs, with coefficients as large as the bound allows.
    #[test]
    fn kernels_are_exact_on_random_and_full_scale_input() {
        let mut rng = Rng(17);
        let taps = 6 * DOT_LANES;
        // A scale of 2^15 · 1.37 (not a power of two, as the resampler's are not).
        let unscale = 1.0 / (32768.0 * 1.37);
        let coeffs: Vec<i16> = (0..taps).map(|_| (rng.uniform() * 600.0) as i16).collect();
        let x: Vec<i16> = (0..40 * 3 + taps + 7).map(|_| rng.next() as i16).collect();
        check(&coeffs, unscale, &x, "random");
        // The largest coefficients the bound admits: Σ|c|·32768 ≤ i32::MAX, exactly.
        let total = i64::from(i32::MAX) / 32768;
        let big = total / taps as i64;
        let mut coeffs: Vec<i16> = (0..taps)
            .map(|u| if u % 3 == 0 { -big } else { big } as i16)
            .collect();
        coeffs[1] += (total % taps as i64) as i16;
        // Windows 3 apart start at offsets 0, 3, 6…: a signal with period 3 in `u % 3` puts
        // every product at its largest, positive, in every row.
        let x: Vec<i16> = (0..40 * 3 + taps + 7)
            .map(|i| if i % 3 == 0 { i16::MIN } else { i16::MAX })
            .collect();
        check(&coeffs, unscale, &x, "full scale");
        let mut one_more = coeffs.clone();
        one_more[1] += 1;
        assert!(!accumulator_fits(&one_more), "the bound is tight");
        // Rows past the end of the input are left alone, not read out of bounds.
        let mut out = vec![i16::MIN; 100];
        let job = Rows {
            coeffs: &coeffs,
            unscale,
            x: &x,
            start: x.len() - taps,
            step: 3,
            out_step: 1,
        };
        dot_rows(&job, 100, &mut out);
        assert_ne!(out[0], i16::MIN);
        assert_eq!(out[1], i16::MIN);
    }
}
