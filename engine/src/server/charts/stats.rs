//! The few statistics charts need: a t-interval, quantiles and the Pareto frontier.

use crate::types::Spread;

/// The 0.975 quantile of Student's t with `df` degrees of freedom: a table up to 30, then
/// the Cornish-Fisher expansion (off by less than 0.001 there).
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if (1..=30).contains(&df) {
        return TABLE[df - 1];
    }
    let z: f64 = 1.959_964;
    let d = df.max(1) as f64;
    z + (z.powi(3) + z) / (4.0 * d)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
}

/// Mean, and its 95% t-interval (from 2 values on).
pub fn t_interval(values: &[f64]) -> Option<(f64, Option<(f64, f64)>)> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Some((mean, None));
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t975(n - 1) * (var / n as f64).sqrt();
    Some((mean, Some((mean - half, mean + half))))
}

/// The `q` quantile of sorted values, interpolating linearly (type 7, as R and NumPy).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Min, quartiles and max of some values.
pub fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(Spread {
        min: v[0],
        q1: quantile(&v, 0.25),
        median: quantile(&v, 0.5),
        q3: quantile(&v, 0.75),
        max: v[v.len() - 1],
    })
}

/// The points (x to minimise, y to maximise) no other point beats on both: their indices,
/// cheapest first. Of equal points only the first is kept.
pub fn pareto(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
            .then(a.cmp(&b))
    });
    let mut best = f64::NEG_INFINITY;
    let mut out = Vec::new();
    for i in order {
        if points[i].1 > best {
            best = points[i].1;
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_quantiles_and_the_frontier() {
        assert_eq!(t975(1), 12.706);
        assert!((t975(31) - 2.0395).abs() < 1e-3, "{}", t975(31));
        assert!((t975(1000) - 1.9623).abs() < 1e-3);
        let (m, ci) = t_interval(&[1.0, 2.0, 3.0]).unwrap();
        let (lo, hi) = ci.unwrap();
        // sd 1, n 3: 2 ± 4.303 / √3.
        assert!((m - 2.0).abs() < 1e-12 && (hi - 2.0 - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert!((lo + hi - 4.0).abs() < 1e-12);
        assert_eq!(t_interval(&[0.5]), Some((0.5, None)));
        assert_eq!(t_interval(&[]), None);

        let s = spread(&[4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_eq!(
            (s.min, s.q1, s.median, s.q3, s.max),
            (1.0, 2.0, 3.0, 4.0, 5.0)
        );
        assert_eq!(quantile(&[0.0, 1.0], 0.25), 0.25);

        // (cost, score): 1 is beaten by 0 (cheaper, better); 3 ties 2 on cost but scores less;
        // 5 equals 4.
        let pts = [
            (1.0, 0.5),
            (2.0, 0.4),
            (3.0, 0.9),
            (3.0, 0.7),
            (0.5, 0.2),
            (0.5, 0.2),
        ];
        assert_eq!(pareto(&pts), [4, 0, 2]);
        assert!(pareto(&[]).is_empty());
        use super::super::data::dollars;
        assert_eq!(
            [
                dollars(0.0000312),
                dollars(0.000545),
                dollars(0.01),
                dollars(2.5),
                dollars(0.0)
            ],
            ["$0.0000312", "$0.000545", "$0.0100", "$2.50", "$0.00"]
        );
    }
}
