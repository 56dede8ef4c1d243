//! A Tree-structured Parzen Estimator, as Optuna's independent TPE does it: observations are
//! split into the best `γ` and the rest; each dimension gets a density for each part (Parzen
//! windows of truncated Gaussians for numbers, smoothed counts for categories); candidates
//! drawn from the good density are ranked by how much likelier they are under it than under
//! the other, and the best new one is taken. Deterministic for a given random source.

use rand::Rng;
use rand::rngs::StdRng;

use super::space::{Kind, Point, Space};

/// Configurations drawn at random before the model has enough to go on.
pub const STARTUP: usize = 10;
/// Candidates drawn per suggestion.
const CANDIDATES: usize = 24;
/// Share of observations counted as good (at least 1, at most 25, as Optuna's default).
fn good_count(n: usize) -> usize {
    ((n as f64 * 0.15).ceil() as usize).clamp(1, 25)
}

pub struct Observation {
    pub point: Point,
    pub score: f64,
}

/// A uniformly random point.
pub fn random_point(space: &Space, rng: &mut StdRng) -> Point {
    (0..space.dims.len())
        .map(|d| match space.dims[d].kind {
            Kind::Categorical(n) => rng.random_range(0..n) as f64,
            Kind::Numeric { .. } => space.snap(d, space.scaled(d, rng.random::<f64>())),
        })
        .collect()
}

/// Up to `k` new points (`is_new` says which are new); fewer when the space runs out.
pub fn suggest(
    space: &Space,
    observations: &[Observation],
    k: usize,
    rng: &mut StdRng,
    mut is_new: impl FnMut(&Point) -> bool,
) -> Vec<(Point, &'static str)> {
    let mut out: Vec<(Point, &'static str)> = Vec::new();
    let model = (observations.len() >= STARTUP).then(|| Model::fit(space, observations));
    for _ in 0..k {
        let mut chosen = None;
        if let Some(m) = &model {
            let mut best: Option<(f64, Point)> = None;
            for _ in 0..CANDIDATES {
                let p = m.draw(space, rng);
                if !is_new(&p) || out.iter().any(|(o, _)| *o == p) {
                    continue;
                }
                let s = m.ratio(space, &p);
                if best.as_ref().is_none_or(|(b, _)| s > *b) {
                    best = Some((s, p));
                }
            }
            chosen = best.map(|(_, p)| (p, "tpe"));
        }
        if chosen.is_none() {
            // Startup, or every candidate was tried: a random new point.
            for _ in 0..200 {
                let p = random_point(space, rng);
                if is_new(&p) && !out.iter().any(|(o, _)| *o == p) {
                    chosen = Some((p, if model.is_some() { "random" } else { "startup" }));
                    break;
                }
            }
        }
        match chosen {
            Some(c) => out.push(c),
            None => break,
        }
    }
    out
}

/// Per-dimension densities of the good (`l`) and other (`g`) observations.
struct Model {
    good: Vec<Density>,
    rest: Vec<Density>,
}

enum Density {
    Categorical(Vec<f64>),
    /// Truncated Gaussians on [0, 1]: (mean, sigma), equal weights.
    Parzen(Vec<(f64, f64)>),
}

impl Model {
    fn fit(space: &Space, observations: &[Observation]) -> Model {
        let mut order: Vec<&Observation> = observations.iter().collect();
        order.sort_by(|a, b| b.score.total_cmp(&a.score));
        let n_good = good_count(order.len());
        let (good, rest) = order.split_at(n_good);
        let build = |part: &[&Observation]| -> Vec<Density> {
            (0..space.dims.len())
                .map(|d| match space.dims[d].kind {
                    Kind::Categorical(n) => {
                        // Counts plus a prior of one observation spread over the options.
                        let mut w = vec![1.0 / n as f64; n];
                        for o in part {
                            w[(o.point[d] as usize).min(n - 1)] += 1.0;
                        }
                        let total: f64 = w.iter().sum();
                        Density::Categorical(w.into_iter().map(|x| x / total).collect())
                    }
                    Kind::Numeric { .. } => {
                        let mus: Vec<f64> =
                            part.iter().map(|o| space.unit(d, o.point[d])).collect();
                        Density::Parzen(parzen(&mus))
                    }
                })
                .collect()
        };
        Model {
            good: build(good),
            rest: build(rest),
        }
    }

    fn draw(&self, space: &Space, rng: &mut StdRng) -> Point {
        self.good
            .iter()
            .enumerate()
            .map(|(d, density)| match density {
                Density::Categorical(p) => {
                    let mut u: f64 = rng.random();
                    let mut pick = p.len() - 1;
                    for (i, w) in p.iter().enumerate() {
                        if u < *w {
                            pick = i;
                            break;
                        }
                        u -= w;
                    }
                    pick as f64
                }
                Density::Parzen(kernels) => {
                    let (mu, sigma) = kernels[rng.random_range(0..kernels.len())];
                    let mut u = None;
                    for _ in 0..32 {
                        let x = mu + sigma * normal(rng);
                        if (0.0..=1.0).contains(&x) {
                            u = Some(x);
                            break;
                        }
                    }
                    let u = u.unwrap_or_else(|| rng.random());
                    space.snap(d, space.scaled(d, u))
                }
            })
            .collect()
    }

    /// log l(x) − log g(x), summed over dimensions.
    fn ratio(&self, space: &Space, p: &Point) -> f64 {
        (0..p.len())
            .map(|d| {
                let x = match space.dims[d].kind {
                    Kind::Categorical(_) => p[d],
                    Kind::Numeric { .. } => space.unit(d, p[d]),
                };
                log_density(&self.good[d], x) - log_density(&self.rest[d], x)
            })
            .sum()
    }
}

/// Kernels at the observations plus a wide prior at the centre; each kernel's width is the
/// larger gap to its neighbours, clipped as Optuna clips it.
fn parzen(mus: &[f64]) -> Vec<(f64, f64)> {
    let mut points: Vec<f64> = mus.to_vec();
    points.push(0.5);
    let mut sorted = points.clone();
    sorted.sort_by(f64::total_cmp);
    let n = points.len();
    let min_sigma = 1.0 / (n as f64 + 1.0).min(100.0);
    points
        .iter()
        .enumerate()
        .map(|(i, &mu)| {
            if i == n - 1 {
                return (0.5, 1.0);
            }
            let at = sorted.iter().position(|&s| s == mu).unwrap_or(0);
            let left = if at == 0 { mu } else { mu - sorted[at - 1] };
            let right = if at + 1 >= sorted.len() {
                1.0 - mu
            } else {
                sorted[at + 1] - mu
            };
            (mu, left.max(right).clamp(min_sigma, 1.0))
        })
        .collect()
}

fn log_density(density: &Density, x: f64) -> f64 {
    match density {
        Density::Categorical(p) => p[(x as usize).min(p.len() - 1)].max(1e-12).ln(),
        Density::Parzen(kernels) => {
            let sum: f64 = kernels
                .iter()
                .map(|&(mu, sigma)| {
                    let z = (x - mu) / sigma;
                    let mass = phi((1.0 - mu) / sigma) - phi(-mu / sigma);
                    (-0.5 * z * z).exp()
                        / (sigma * (2.0 * std::f64::consts::PI).sqrt() * mass.max(1e-12))
                })
                .sum::<f64>()
                / kernels.len() as f64;
            sum.max(1e-300).ln()
        }
    }
}

/// Standard normal by Box–Muller.
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The standard normal CDF (Abramowitz–Stegun 7.1.26 erf, error < 1.5e-7).
fn phi(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-z * z).exp();
    0.5 * (1.0 + if z >= 0.0 { y } else { -y })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn phi_is_the_normal_cdf() {
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(1.96) - 0.975).abs() < 1e-4);
        assert!((phi(-1.0) - 0.158_655).abs() < 1e-4);
    }

    #[test]
    fn parzen_kernels_cover_the_points_and_the_prior() {
        let k = parzen(&[0.2, 0.25, 0.9]);
        assert_eq!(k.len(), 4);
        assert_eq!(k[3], (0.5, 1.0));
        assert!(k.iter().all(|(_, s)| *s > 0.0 && *s <= 1.0));
        // A point near others has a narrower kernel than a lone one.
        assert!(k[1].1 < k[2].1);
    }

    #[test]
    fn normal_draws_have_the_right_spread() {
        let mut rng = StdRng::seed_from_u64(7);
        let xs: Vec<f64> = (0..20_000).map(|_| normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}

#[cfg(test)]
mod search {
    use super::*;
    use crate::types::{Dimension, StageSpace};
    use rand::SeedableRng;

    /// A 1-D space (temperature 0–1, step 0.01) and a narrow optimum at 0.73: TPE's later
    /// suggestions sit near it far more often than uniform draws would.
    #[test]
    fn suggestions_concentrate_where_the_scores_are_high() {
        let e = super::super::test_experiment(StageSpace {
            params: [(
                "temperature".to_owned(),
                Dimension::Range {
                    min: 0.0,
                    max: 1.0,
                    step: Some(0.01),
                },
            )]
            .into(),
            ..Default::default()
        });

        let space = super::super::space::Space::new(&e).unwrap();
        let f = |x: f64| 1.0 - (x - 0.73).abs();
        let mut rng = StdRng::seed_from_u64(11);
        let mut obs: Vec<Observation> = Vec::new();
        let mut near = 0;
        for round in 0..40 {
            let got = suggest(&space, &obs, 1, &mut rng, |p| {
                !obs.iter().any(|o| o.point == *p)
            });
            let (p, origin) = got.into_iter().next().unwrap();
            if round >= STARTUP {
                assert_eq!(origin, "tpe");
                if (p[0] - 0.73).abs() <= 0.1 {
                    near += 1;
                }
            }
            obs.push(Observation {
                score: f(p[0]),
                point: p,
            });
        }
        // Uniform draws land within ±0.1 about 20 % of the time (6 of 30).
        assert!(near >= 15, "{near} of 30 suggestions near the optimum");
    }
}
