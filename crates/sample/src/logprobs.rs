//! Log-softmax helper for reporting logprobs.

use crate::candidates::{cmp_desc, rel_weight, sanitize, Candidate};

/// Above this `n`, pick the top entries by partial selection instead of a
/// bounded insertion list.
const INSERTION_MAX: usize = 64;

/// Log-softmax of the *raw* logits: returns the logprob of `chosen` and the
/// top `n` `(token, logprob)` pairs, best first (ties: lower id first).
///
/// Computed in `f64` (max-shifted log-sum-exp). NaN logits count as `-inf`;
/// if some logits are `+inf` they share all the mass; if all are `-inf`
/// the distribution is uniform. A `chosen` id outside the vocabulary gets
/// `-inf`. `n` is clamped to the vocabulary size.
pub fn top_logprobs(logits: &[f32], chosen: u32, n: usize) -> (f32, Vec<(u32, f32)>) {
    let Some(max) = logits.iter().map(|&l| sanitize(l)).reduce(f32::max) else {
        return (f32::NEG_INFINITY, Vec::new());
    };
    let log_total = logits
        .iter()
        .map(|&l| rel_weight(sanitize(l), max))
        .sum::<f64>()
        .ln();
    let logprob = |l: f32| -> f32 {
        let l = sanitize(l);
        let shifted = if l == max {
            0.0
        } else {
            f64::from(l) - f64::from(max)
        };
        (shifted - log_total) as f32
    };

    let chosen_lp = logits
        .get(chosen as usize)
        .map_or(f32::NEG_INFINITY, |&l| logprob(l));

    let n = n.min(logits.len());
    let all = (0..=u32::MAX).zip(logits).map(|(id, &l)| Candidate {
        id,
        logit: sanitize(l),
    });
    let top: Vec<Candidate> = if n == 0 {
        Vec::new()
    } else if n <= INSERTION_MAX {
        let mut top: Vec<Candidate> = Vec::with_capacity(n + 1);
        for c in all {
            let worse_than_all = top.len() == n
                && top
                    .last()
                    .is_some_and(|w| cmp_desc(&c, w) != std::cmp::Ordering::Less);
            if worse_than_all {
                continue;
            }
            let pos = top.partition_point(|x| cmp_desc(x, &c) == std::cmp::Ordering::Less);
            top.insert(pos, c);
            top.truncate(n);
        }
        top
    } else {
        let mut v: Vec<Candidate> = all.collect();
        if n < v.len() {
            v.select_nth_unstable_by(n - 1, cmp_desc);
            v.truncate(n);
        }
        v.sort_unstable_by(cmp_desc);
        v
    };
    let list = top.iter().map(|c| (c.id, logprob(c.logit))).collect();
    (chosen_lp, list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(logits: &[f32]) -> Vec<f64> {
        let m = logits
            .iter()
            .fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let s: f64 = logits.iter().map(|&l| (l as f64 - m).exp()).sum();
        logits.iter().map(|&l| l as f64 - m - s.ln()).collect()
    }

    fn pseudo_logits(len: usize) -> Vec<f32> {
        let mut st = 12345u64;
        (0..len)
            .map(|_| {
                (crate::rng::splitmix64(&mut st) >> 40) as f32 / (1u64 << 24) as f32 * 20.0 - 10.0
            })
            .collect()
    }

    #[test]
    fn matches_naive_f64_log_softmax() {
        let logits = pseudo_logits(1000);
        let want = naive(&logits);
        for n in [0usize, 1, 5, 20, 64, 65, 300, 1000, 5000] {
            let (lp, top) = top_logprobs(&logits, 17, n);
            assert!((lp as f64 - want[17]).abs() < 1e-5);
            assert_eq!(top.len(), n.min(1000));
            let mut order: Vec<usize> = (0..1000).collect();
            order.sort_by(|&a, &b| want[b].total_cmp(&want[a]).then(a.cmp(&b)));
            for (k, &(id, l)) in top.iter().enumerate() {
                assert_eq!(id as usize, order[k], "n={n} rank {k}");
                assert!((l as f64 - want[id as usize]).abs() < 1e-5);
            }
            let mass: f64 = top.iter().map(|&(_, l)| (l as f64).exp()).sum();
            assert!(mass <= 1.0 + 1e-6, "mass {mass}");
            if n >= 1000 {
                assert!((mass - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn ties_and_special_values() {
        let (lp, top) = top_logprobs(&[1.0, 2.0, 2.0, f32::NAN], 3, 3);
        assert_eq!(lp, f32::NEG_INFINITY);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2, 0]);
        let (lp, top) = top_logprobs(&[0.0, f32::INFINITY, f32::INFINITY], 1, 3);
        assert!((lp - 0.5f32.ln()).abs() < 1e-7);
        assert_eq!(top[2], (0, f32::NEG_INFINITY));
        let (lp, _) = top_logprobs(&[f32::NEG_INFINITY; 4], 0, 1);
        assert!((lp - 0.25f32.ln()).abs() < 1e-7);
        assert_eq!(top_logprobs(&[], 0, 5), (f32::NEG_INFINITY, Vec::new()));
        assert_eq!(top_logprobs(&[1.0], 9, 0).0, f32::NEG_INFINITY);
    }
}
