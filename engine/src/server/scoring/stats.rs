//! The statistics behind the leaderboard: means, standard deviations, percentile-bootstrap
//! confidence intervals over items, and a paired comparison (bootstrap interval of the mean
//! difference and a sign-flip permutation test) of two configurations on shared items. Every
//! random draw comes from a seeded generator, so the same data always gives the same numbers.

/// Bootstrap resamples for a configuration's interval, and for a paired difference.
pub const BOOTSTRAP: usize = 1000;
pub const PAIRED_BOOTSTRAP: usize = 2000;
/// Random sign flips when there are too many items to enumerate them all.
pub const PERMUTATIONS: usize = 10_000;
/// Up to this many items, the permutation test enumerates every sign pattern (exact).
pub const EXACT_UP_TO: usize = 16;

/// SplitMix64: small, fast, and stable across versions (unlike library generators).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed derived from text (e.g. a configuration key).
    pub fn seeded(text: &str) -> Rng {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        Rng(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (n − 1); `None` below two values.
pub fn std_dev(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64;
    Some(var.sqrt())
}

/// The `q` quantile (0–1) of sorted values, by linear interpolation.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A 95% percentile-bootstrap interval of the mean of `values` (resampling them with
/// replacement); `None` below two values.
pub fn bootstrap_ci(values: &[f64], resamples: usize, rng: &mut Rng) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mut means = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let mut sum = 0.0;
        for _ in 0..n {
            sum += values[rng.below(n)];
        }
        means.push(sum / n as f64);
    }
    means.sort_by(f64::total_cmp);
    Some((quantile(&means, 0.025), quantile(&means, 0.975)))
}

/// A paired comparison of differences `d` (first − second, one per shared item).
#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    pub n: usize,
    pub mean: f64,
    pub ci: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
}

/// Differences this small are ties (scores are floats averaged over repeats).
const TIE: f64 = 1e-12;

/// From this many paired items on, the interval and the p-value use their normal
/// approximations (the mean ± 1.96 standard errors; the sign-flip sum against a normal with
/// variance Σd²), which the central limit theorem makes as good as resampling there, at a
/// cost that does not grow with resamples × items (10,000 items: ~1 ms instead of ~300 ms).
pub const NORMAL_FROM: usize = 1000;

pub fn paired(d: &[f64], rng: &mut Rng) -> Paired {
    let n = d.len();
    let mean = mean(d).unwrap_or(0.0);
    let wins = d.iter().filter(|x| **x > TIE).count();
    let losses = d.iter().filter(|x| **x < -TIE).count();
    let (ci, p_value) = if n >= NORMAL_FROM {
        let se = std_dev(d).unwrap_or(0.0) / (n as f64).sqrt();
        let squares: f64 = d.iter().map(|x| x * x).sum();
        let z = if squares > 0.0 {
            d.iter().sum::<f64>().abs() / squares.sqrt()
        } else {
            0.0
        };
        (
            Some((mean - 1.96 * se, mean + 1.96 * se)),
            Some((2.0 * normal_tail(z)).min(1.0)),
        )
    } else {
        (bootstrap_ci(d, PAIRED_BOOTSTRAP, rng), sign_flip_p(d, rng))
    };
    Paired {
        n,
        mean,
        ci,
        p_value,
        wins,
        ties: n - wins - losses,
        losses,
    }
}

/// P(Z > z) for a standard normal Z (Abramowitz and Stegun 26.2.17; error below 7.5e-8).
fn normal_tail(z: f64) -> f64 {
    if z < 0.0 {
        return 1.0 - normal_tail(-z);
    }
    let t = 1.0 / (1.0 + 0.231_641_9 * z);
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() * poly
}

/// Two-sided p-value of the sign-flip permutation test of "the mean difference is 0": the
/// share of sign patterns whose mean is at least as far from 0 as the observed one. Exact
/// up to `EXACT_UP_TO` items, else `PERMUTATIONS` random patterns (with the +1 correction).
pub fn sign_flip_p(d: &[f64], rng: &mut Rng) -> Option<f64> {
    let n = d.len();
    if n == 0 {
        return None;
    }
    let observed = d.iter().sum::<f64>().abs() - 1e-12;
    if n <= EXACT_UP_TO {
        let patterns = 1u64 << n;
        let mut extreme = 0u64;
        for mask in 0..patterns {
            let s: f64 = d
                .iter()
                .enumerate()
                .map(|(i, x)| if mask >> i & 1 == 1 { -x } else { *x })
                .sum();
            if s.abs() >= observed {
                extreme += 1;
            }
        }
        return Some(extreme as f64 / patterns as f64);
    }
    let mut extreme = 0usize;
    for _ in 0..PERMUTATIONS {
        let mut s = 0.0;
        let mut bits = 0u64;
        for (i, x) in d.iter().enumerate() {
            if i % 64 == 0 {
                bits = rng.next_u64();
            }
            s += if bits >> (i % 64) & 1 == 1 { -x } else { *x };
        }
        if s.abs() >= observed {
            extreme += 1;
        }
    }
    Some((extreme + 1) as f64 / (PERMUTATIONS + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_samples_use_normal_approximations_that_agree_with_resampling() {
        let mut rng = Rng::new(7);
        let d: Vec<f64> = (0..1500)
            .map(|i| ((i * 37 % 101) as f64 - 48.0) / 400.0)
            .collect();
        let fast = paired(&d, &mut rng);
        let ci = bootstrap_ci(&d, PAIRED_BOOTSTRAP, &mut rng).unwrap();
        let (lo, hi) = fast.ci.unwrap();
        assert!(
            (lo - ci.0).abs() < 0.003 && (hi - ci.1).abs() < 0.003,
            "{:?} vs {ci:?}",
            fast.ci
        );
        let p = sign_flip_p(&d, &mut rng).unwrap();
        assert!(
            (fast.p_value.unwrap() - p).abs() < 0.03,
            "{:?} vs {p}",
            fast.p_value
        );
        assert!((normal_tail(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn means_and_deviations() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), Some(2.0));
        assert_eq!(std_dev(&[1.0]), None);
        assert!((std_dev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap() - 2.138).abs() < 1e-3);
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_mean_and_is_reproducible() {
        let values: Vec<f64> = (0..50).map(|i| (i % 10) as f64 / 10.0).collect();
        let (lo, hi) = bootstrap_ci(&values, BOOTSTRAP, &mut Rng::seeded("k")).unwrap();
        let m = mean(&values).unwrap();
        assert!(lo < m && m < hi, "{lo} {m} {hi}");
        assert!(hi - lo < 0.25, "{lo} {hi}");
        assert_eq!(
            bootstrap_ci(&values, BOOTSTRAP, &mut Rng::seeded("k")),
            Some((lo, hi)),
            "same seed, same interval"
        );
        let same = [0.5; 10];
        assert_eq!(bootstrap_ci(&same, 100, &mut Rng::new(1)), Some((0.5, 0.5)));
        assert_eq!(bootstrap_ci(&[0.5], 100, &mut Rng::new(1)), None);
    }

    #[test]
    fn the_paired_test_tells_a_real_difference_from_noise() {
        let mut rng = Rng::new(7);
        // Clearly better on 30 of 30 items.
        let clear: Vec<f64> = (0..30).map(|i| 0.05 + (i % 3) as f64 * 0.01).collect();
        let p = paired(&clear, &mut rng);
        assert!(p.p_value.unwrap() < 0.001, "{p:?}");
        assert!(p.ci.unwrap().0 > 0.0);
        assert_eq!((p.wins, p.losses), (30, 0));
        // Symmetric noise: no difference.
        let noise: Vec<f64> = (0..30)
            .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let p = paired(&noise, &mut rng);
        assert!(p.p_value.unwrap() > 0.5, "{p:?}");
        let (lo, hi) = p.ci.unwrap();
        assert!(lo < 0.0 && hi > 0.0);
        // Exact for few items: 4 positive differences → p = 2 / 16.
        assert_eq!(sign_flip_p(&[0.1, 0.2, 0.1, 0.3], &mut rng), Some(0.125));
        assert_eq!(sign_flip_p(&[0.0, 0.0], &mut rng), Some(1.0));
    }

    #[test]
    fn rng_draws_are_uniform_enough() {
        let mut rng = Rng::new(42);
        let mut counts = [0usize; 10];
        for _ in 0..10_000 {
            counts[rng.below(10)] += 1;
        }
        assert!(counts.iter().all(|c| (900..1100).contains(c)), "{counts:?}");
    }
}
