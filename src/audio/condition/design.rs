//! Design of the resamplers' filters: an equiripple lowpass by the Parks–McClellan (Remez
//! exchange) method, with a Kaiser-windowed sinc as the decimator's fallback, and the rational
//! resampler's many-phase prototype interpolated from a short equiripple design. Runs once per
//! ratio and process (see `decimate::polyphase_filter`, `polyphase::prototype`); nothing here
//! is on the audio path.

use super::fir::FIR_SLAB;

/// The taps of the decimation filter for factor `M`: an equiripple (Parks–McClellan) lowpass of
/// 32·M − 1 taps with passband 0–0.45 and stopband from 0.55 of the output rate. Equiripple
/// spends the taps where the specification needs them: it keeps the passband within 0.07 dB
/// and the stopband 74 dB down with 32 taps per phase, where the Kaiser window used before
/// needed 41 for 0.1 dB and 70 dB, so each output costs a fifth less.
///
/// Should the exchange not converge (it does for every factor the conditioner can meet,
/// 2..=48, but it is a numerical method), a Kaiser-windowed sinc of twice the length takes its
/// place; it meets the same specification with a wide margin.
pub(super) fn decimation_filter(factor: usize) -> Vec<f64> {
    decimation_filter_with(factor, REMEZ_MAX_ITERATIONS)
}

fn decimation_filter_with(factor: usize, max_iterations: usize) -> Vec<f64> {
    let m = factor as f64;
    let (pass, stop) = (0.45 / m, 0.55 / m);
    equiripple_lowpass(FIR_SLAB * factor - 1, pass, stop, max_iterations)
        .unwrap_or_else(|| kaiser_lowpass(2 * FIR_SLAB * factor - 1, 0.5 / m, 10.0))
}

/// The equiripple lowpass of `n` taps (odd) with the given band edges (cycles per sample), or
/// `None` if the exchange does not converge or its error misses the specification.
fn equiripple_lowpass(n: usize, pass: f64, stop: f64, max_iterations: usize) -> Option<Vec<f64>> {
    remez_lowpass(n, pass, stop, REMEZ_STOP_WEIGHT, max_iterations)
        // The equiripple error is the passband's deviation from unity gain; the stopband's is
        // that divided by the weight. Both with some room for the response between grid points.
        .filter(|&(_, err)| err <= 0.01 && err / REMEZ_STOP_WEIGHT <= 2.5e-4)
        .map(|(h, _)| h)
}

/// Taps per output period of the narrower rate: the decimation filter's 32 per phase, so the
/// rational path meets the same specification at about the same cost.
const TAPS_PER_PERIOD: f64 = 32.0;

/// Longest filter the exchange is asked to design for the rational path; a ratio that needs
/// more is left to the FFT resampler.
const MAX_DESIGN_TAPS: usize = 1600;

/// How a rational resampler's prototype is designed: at `rate` × the input rate, then (when
/// `rate` < L) interpolated to L × with a windowed sinc of `reach` samples of the designed
/// filter.
struct Plan {
    rate: usize,
    reach: usize,
}

/// The interpolator's stopband, in dB: with the designed filter's own stopband of 74 dB, a
/// tone's images are then rejected by the designed filter alone.
const INTERPOLATOR_DB: f64 = 95.0;

/// The design rate is the smallest of 2, 4, 8 at which the interpolator has room for its
/// transition band (at least 0.6 of the designed filter's rate between the stopband edge and
/// its first image); the fewer the phases designed, the fewer of a tone's images reach the
/// output (at 2, only those around the input rate itself) and the cheaper the exchange.
fn plan(up: usize, down: usize) -> Plan {
    let stop_in = 0.55 * (up as f64 / down as f64).min(1.0);
    let rate = [2, 4, 8]
        .into_iter()
        .find(|&r| 1.0 - 2.0 * stop_in / r as f64 >= 0.6)
        .unwrap_or(8);
    if up <= rate {
        return Plan { rate: up, reach: 0 };
    }
    let gap = 1.0 - 2.0 * stop_in / rate as f64;
    // Kaiser's estimate of a windowed sinc's length for a stopband and transition width.
    let reach = ((INTERPOLATOR_DB - 7.95) / (14.36 * gap)).ceil() as usize;
    Plan {
        rate,
        reach: reach.next_multiple_of(2),
    }
}

/// K, the rational resampler's taps per phase for L/M (`up`/`down`): enough for the
/// specification's transition band (a tenth of the narrower rate), plus what the interpolator
/// takes, as whole vectors of `lanes`.
pub(super) fn polyphase_taps(up: usize, down: usize, lanes: usize) -> usize {
    let periods = (down as f64 / up as f64).max(1.0);
    let p = plan(up, down);
    let lost = p.reach as f64 / p.rate as f64;
    ((TAPS_PER_PERIOD * periods - 1.0 + lost).ceil() as usize).next_multiple_of(lanes)
}

/// The prototype lowpass of a rational resampler by `up`/`down` (L/M) with `taps` (K) taps per
/// phase: `K·L − 1` coefficients at L × the input rate, DC gain L (so each phase sums to about
/// 1). Same specification as the decimation filter, relative to the narrower of the two rates:
/// flat within 0.1 dB to 0.45 and at least 70 dB down from 0.55 of `min(in, out)` (44.1 → 16 kHz:
/// passband to 7.2 kHz, stopband from 8.8 kHz). `None` if the design fails or would be too
/// long (the caller then uses the FFT resampler).
///
/// An equiripple design of K·L taps is out of reach for many phases (15 359 taps at 44.1 →
/// 16 kHz: the exchange's cost grows with the square of the length). The filter is designed
/// at R × the input rate instead ([`plan`]: 2 at 44.1 → 16 kHz, 183 taps, a few milliseconds),
/// and evaluated at the L phases by bandlimited interpolation (a Kaiser-windowed sinc): the
/// designed filter has nothing above its stopband edge but its own images at multiples of R ×
/// the input rate, which the interpolator removes. The designed filter is shortened by the
/// interpolator's reach so that the result fits K·L − 1 taps exactly (no truncation). When
/// L ≤ R, the filter is designed directly at L × the input rate.
pub(super) fn polyphase_prototype(up: usize, down: usize, taps: usize) -> Option<Vec<f64>> {
    polyphase_prototype_with(up, down, taps, REMEZ_MAX_ITERATIONS)
}

fn polyphase_prototype_with(
    up: usize,
    down: usize,
    taps: usize,
    max_iterations: usize,
) -> Option<Vec<f64>> {
    // Band edges relative to the input rate.
    let narrow = (up as f64 / down as f64).min(1.0);
    let (pass_in, stop_in) = (0.45 * narrow, 0.55 * narrow);
    let Plan { rate, reach } = plan(up, down);
    let n = taps * up - 1;
    let n0 = (taps * rate).checked_sub(1 + reach)?;
    if !(3..=MAX_DESIGN_TAPS).contains(&n0) {
        return None;
    }
    let r = rate as f64;
    let p = equiripple_lowpass(n0, pass_in / r, stop_in / r, max_iterations)?;
    if reach == 0 {
        return Some(p.iter().map(|v| v * r).collect());
    }
    // Tap k of the prototype sits at t = (k − c)·R/L + c0 in samples of `p`. The taps of one
    // phase (k = φ + q·L) sit R apart, so they share their offsets from the samples of `p`
    // within reach: the interpolator is evaluated once per phase.
    let (c, c0) = ((n - 1) as f64 / 2.0, (n0 - 1) as f64 / 2.0);
    let half = reach as f64 / 2.0;
    let beta = 0.1102 * (INTERPOLATOR_DB - 8.7);
    let i0_beta = bessel_i0(beta);
    let g = |u: f64| {
        let s = u / half;
        if s.abs() >= 1.0 {
            return 0.0;
        }
        let sinc = if u == 0.0 {
            1.0
        } else {
            (std::f64::consts::PI * u).sin() / (std::f64::consts::PI * u)
        };
        sinc * bessel_i0(beta * (1.0 - s * s).sqrt()) / i0_beta
    };
    let mut h = vec![0.0; n];
    for phase in 0..up {
        let t0 = (phase as f64 - c) * r / up as f64 + c0;
        let first = (t0 - half).ceil();
        let weights: Vec<f64> = (0..=reach).map(|m| g(t0 - first - m as f64)).collect();
        for (q, tap) in h.iter_mut().skip(phase).step_by(up).enumerate() {
            let j0 = first + (q * rate) as f64;
            *tap = weights
                .iter()
                .enumerate()
                .filter_map(|(m, w)| {
                    let j = j0 + m as f64;
                    (j >= 0.0 && j < n0 as f64).then(|| p[j as usize] * w)
                })
                .sum::<f64>()
                * r;
        }
    }
    Some(h)
}

/// Weight of stopband error against passband error in the equiripple design: the passband
/// keeps within ±0.008 (0.07 dB) and the stopband below 0.008 / 40 (−74 dB), each with a
/// margin to the specification (0.1 dB, −70 dB).
const REMEZ_STOP_WEIGHT: f64 = 40.0;

/// The exchange converges in 11 to 16 iterations for every factor from 2 to 48.
const REMEZ_MAX_ITERATIONS: usize = 60;

/// A type-I linear-phase lowpass of `n` (odd) taps minimising the largest weighted error over
/// the passband `[0, pass]` (gain 1, weight 1) and the stopband `[stop, 0.5]` (gain 0, weight
/// `stop_weight`), frequencies in cycles per sample, by the Remez exchange (Parks and
/// McClellan, with barycentric Lagrange interpolation). Returns the taps and the equiripple
/// error, or `None` without convergence.
fn remez_lowpass(
    n: usize,
    pass: f64,
    stop: f64,
    stop_weight: f64,
    max_iterations: usize,
) -> Option<(Vec<f64>, f64)> {
    use std::f64::consts::PI;
    /// Grid points per extremal frequency.
    const DENSITY: usize = 16;
    let k = n / 2; // the response is a sum of cos(j·ω) for j in 0..=k
    let r = k + 2; // extremal frequencies
    let (wp, ws) = (2.0 * PI * pass, 2.0 * PI * stop);
    let points = DENSITY * (k + 1);
    let np = ((points as f64 * wp / (wp + PI - ws)).round() as usize).max(2);
    let ns = (points - np).max(2);
    // (cos ω, desired gain, weight), passband then stopband.
    let grid: Vec<(f64, f64, f64)> = (0..np)
        .map(|i| ((wp * i as f64 / (np - 1) as f64).cos(), 1.0, 1.0))
        .chain((0..ns).map(|i| {
            let w = ws + (PI - ws) * i as f64 / (ns - 1) as f64;
            (w.cos(), 0.0, stop_weight)
        }))
        .collect();
    let sign = |i: usize| if i.is_multiple_of(2) { 1.0 } else { -1.0 };
    let mut extremal: Vec<usize> = (0..r).map(|i| i * (grid.len() - 1) / (r - 1)).collect();
    for _ in 0..max_iterations {
        // The levelled error `delta` that the response takes, with alternating signs, at the
        // extremal frequencies; the response through r − 1 of them (the last then follows).
        let x: Vec<f64> = extremal.iter().map(|&i| grid[i].0).collect();
        let b = barycentric_weights(&x);
        let (num, den) = extremal
            .iter()
            .zip(&b)
            .enumerate()
            .fold((0.0, 0.0), |(num, den), (j, (&i, &b))| {
                (num + b * grid[i].1, den + sign(j) * b / grid[i].2)
            });
        let delta = num / den;
        let values: Vec<f64> = extremal[..r - 1]
            .iter()
            .enumerate()
            .map(|(j, &i)| grid[i].1 - sign(j) * delta / grid[i].2)
            .collect();
        let nodes = &x[..r - 1];
        let weights = barycentric_weights(nodes);
        let response = |x: f64| interpolate(nodes, &weights, &values, x);
        let err: Vec<f64> = grid
            .iter()
            .map(|&(x, d, w)| w * (d - response(x)))
            .collect();
        let worst = err.iter().fold(0.0f64, |m, e| m.max(e.abs()));
        if worst - delta.abs() <= 1e-3 * delta.abs() {
            // Converged: sample the response at ω = πj/k and invert the cosine series.
            let a: Vec<f64> = (0..=k)
                .map(|j| response((PI * j as f64 / k as f64).cos()))
                .collect();
            let mut h = vec![0.0; n];
            for (j, _) in a.iter().enumerate() {
                let c: f64 = a
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let end = if i == 0 || i == k { 0.5 } else { 1.0 };
                        end * v * (PI * (i * j) as f64 / k as f64).cos()
                    })
                    .sum::<f64>()
                    / k as f64;
                if j == 0 {
                    h[k] = c;
                } else {
                    let c = if j == k { c / 2.0 } else { c };
                    h[k - j] = c;
                    h[k + j] = c;
                }
            }
            return Some((h, delta.abs()));
        }
        extremal = exchange(&err, delta.abs(), r)?;
    }
    None
}

/// The next extremal set: the largest error of each run of one sign (these alternate), keeping
/// those at least as large as the levelled error, then trimming the ends down to `r`.
fn exchange(err: &[f64], delta: f64, r: usize) -> Option<Vec<usize>> {
    let runs = alternating_peaks(err, 0..err.len());
    // The previous extremals sit exactly at ±delta, up to rounding; hence the tolerance.
    let mut set = alternating_peaks(
        err,
        runs.iter()
            .copied()
            .filter(|&i| err[i].abs() >= delta * (1.0 - 1e-9)),
    );
    if set.len() < r {
        set = runs;
    }
    while set.len() > r {
        if err[set[0]].abs() < err[set[set.len() - 1]].abs() {
            set.remove(0);
        } else {
            set.pop();
        }
    }
    (set.len() == r).then_some(set)
}

/// Of the indices given (in increasing order), one per run of errors of one sign: the largest.
fn alternating_peaks(err: &[f64], indices: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut peaks: Vec<usize> = Vec::new();
    for i in indices {
        match peaks.last_mut() {
            Some(last) if (err[*last] >= 0.0) == (err[i] >= 0.0) => {
                if err[i].abs() > err[*last].abs() {
                    *last = i;
                }
            }
            _ => peaks.push(i),
        }
    }
    peaks
}

/// Weights `1 / Π_{j≠i} (x_i − x_j)` of barycentric Lagrange interpolation, up to a common
/// factor (which cancels). Computed as logarithms: the plain products over- and underflow from
/// about 500 points on.
fn barycentric_weights(x: &[f64]) -> Vec<f64> {
    let logs: Vec<(f64, f64)> = x
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            x.iter().enumerate().filter(|&(j, _)| j != i).fold(
                (0.0, 1.0),
                |(log, sign), (_, &xj)| {
                    let d = xi - xj;
                    (log - d.abs().ln(), if d < 0.0 { -sign } else { sign })
                },
            )
        })
        .collect();
    let top = logs.iter().fold(f64::MIN, |m, &(log, _)| m.max(log));
    logs.iter()
        .map(|&(log, sign)| sign * (log - top).exp())
        .collect()
}

/// The polynomial through `(nodes[i], values[i])` at `x` (barycentric formula).
fn interpolate(nodes: &[f64], weights: &[f64], values: &[f64], x: f64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for ((&xi, &w), &v) in nodes.iter().zip(weights).zip(values) {
        if x == xi {
            return v;
        }
        let t = w / (x - xi);
        num += t * v;
        den += t;
    }
    num / den
}

/// A Kaiser-windowed sinc lowpass of `n` (odd) taps with cutoff `fc` (fraction of the sample
/// rate), normalized to unit gain at DC. Computed in f64 once per stream.
fn kaiser_lowpass(n: usize, fc: f64, beta: f64) -> Vec<f64> {
    use std::f64::consts::PI;
    let c = (n / 2) as f64;
    let i0_beta = bessel_i0(beta);
    let mut h: Vec<f64> = (0..n)
        .map(|k| {
            let t = k as f64 - c;
            let sinc = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * PI * fc * t).sin() / (PI * t)
            };
            let r = t / c;
            sinc * bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta
        })
        .collect();
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|v| *v /= sum);
    h
}

/// The modified Bessel function I0, by its power series (converges fast for the β used here).
fn bessel_i0(x: f64) -> f64 {
    let y = x * x / 4.0;
    let (mut sum, mut term) = (1.0, 1.0);
    for k in 1..100 {
        term *= y / (k * k) as f64;
        sum += term;
        if term < 1e-16 * sum {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::condition::test_support::*;

    /// The equiripple design converges for every factor the conditioner can meet (where it
    /// does not, the Kaiser fallback would take its place), and the fallback meets the
    /// specification too.
    #[test]
    fn equiripple_design_converges_and_the_fallback_meets_the_spec() {
        for factor in [2, 3, 4, 5, 6, 8, 12, 48] {
            let m = factor as f64;
            let designed = remez_lowpass(
                FIR_SLAB * factor - 1,
                0.45 / m,
                0.55 / m,
                REMEZ_STOP_WEIGHT,
                REMEZ_MAX_ITERATIONS,
            );
            let (h, err) = designed.unwrap_or_else(|| panic!("factor {factor}: no convergence"));
            assert!(err < 0.008, "factor {factor}: error {err}");
            filter_spec(&h, factor, &format!("equiripple, factor {factor}"));
        }
        for factor in [2, 3, 6] {
            let h = decimation_filter_with(factor, 0);
            assert_eq!(h.len(), 2 * FIR_SLAB * factor - 1, "the fallback");
            let (pass, stop) =
                filter_spec(&h, factor, &format!("Kaiser fallback, factor {factor}"));
            eprintln!(
                "Kaiser fallback, factor {factor}: passband {pass:.4} dB, stopband {stop:.1} dB"
            );
        }
    }
}
