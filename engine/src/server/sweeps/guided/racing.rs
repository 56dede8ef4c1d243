//! Racing across items: a configuration is first tried on a few items and earns more only
//! while it can still beat the leader (its upper confidence bound is not below the leader's
//! lower bound on the same items) and it ranks in the best `1/reduction` of its rung, as
//! asynchronous successive halving promotes.

/// z for the two-sided 95% normal bounds.
const Z: f64 = 1.96;
/// The smallest spread assumed (scores are in [0, 1]): a few identical scores do not make a
/// configuration certain.
const MIN_STD: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub n: usize,
    pub mean: f64,
    pub lcb: f64,
    pub ucb: f64,
}

/// Mean and normal confidence bounds of per-item scores (`None` without scores).
pub fn bounds(xs: &[f64]) -> Option<Bounds> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let half = Z * var.sqrt().max(MIN_STD) / n.sqrt();
    Some(Bounds {
        n: xs.len(),
        mean,
        lcb: mean - half,
        ucb: mean + half,
    })
}

/// Items per rung: `first`, then × `reduction` until every item.
pub fn rungs(items: u32, first: u32, reduction: u32) -> Vec<u32> {
    let mut out = vec![first.clamp(1, items.max(1))];
    while let Some(&last) = out.last() {
        if last >= items {
            break;
        }
        out.push(last.saturating_mul(reduction.max(2)).min(items));
    }
    out
}

/// The default first rung: an eighth of the items, at least 2 (or all when fewer).
pub fn default_first(items: u32) -> u32 {
    items.div_ceil(8).max(2).min(items)
}

/// Which of a rung's population earn the next rung: the best `max(1, ⌊n/reduction⌋)` by mean.
/// `population` is (index, mean) of every configuration that completed the rung.
pub fn promoted(population: &[(usize, f64)], reduction: u32) -> Vec<usize> {
    let mut ranked: Vec<&(usize, f64)> = population.iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let quota = (population.len() / reduction.max(2) as usize).max(1);
    ranked.into_iter().take(quota).map(|(i, _)| *i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_widen_with_few_items_and_floor_the_spread() {
        let b = bounds(&[0.8, 0.8, 0.8]).unwrap();
        assert!((b.mean - 0.8).abs() < 1e-12);
        let half = 1.96 * 0.05 / 3f64.sqrt();
        assert!((b.ucb - (0.8 + half)).abs() < 1e-12);
        let many = bounds(&[0.8; 30]).unwrap();
        assert!(many.ucb - many.lcb < b.ucb - b.lcb);
        assert!(bounds(&[]).is_none());
    }

    #[test]
    fn rungs_grow_by_the_reduction_to_every_item() {
        assert_eq!(rungs(20, 3, 3), vec![3, 9, 20]);
        assert_eq!(rungs(40, 5, 2), vec![5, 10, 20, 40]);
        assert_eq!(rungs(4, 4, 3), vec![4]);
        assert_eq!(rungs(1, 2, 3), vec![1]);
        assert_eq!(default_first(20), 3);
        assert_eq!(default_first(3), 2);
        assert_eq!(default_first(1), 1);
    }

    #[test]
    fn the_best_share_of_a_rung_is_promoted() {
        let pop = [(0, 0.5), (1, 0.9), (2, 0.7), (3, 0.2), (4, 0.85), (5, 0.1)];
        assert_eq!(promoted(&pop, 3), vec![1, 4]);
        assert_eq!(promoted(&pop[..2], 3), vec![1], "at least the best");
    }
}
