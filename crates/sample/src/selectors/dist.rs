//! Seeded categorical draw from the softmax of the candidates' logits.

use crate::candidates::rel_weight;
use crate::{Candidates, Selector, Xoshiro256StarStar};

/// Draws one token with probability `softmax(logits)`, using exactly one
/// 64-bit PRNG output per call (even with a single candidate), so the random
/// stream position depends only on the number of steps.
///
/// Weights are computed in `f64`; no buffer, so no allocation ever.
#[derive(Clone, Debug)]
pub struct Dist {
    rng: Xoshiro256StarStar,
}

impl Dist {
    /// `None` seeds from entropy.
    pub fn new(seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => Xoshiro256StarStar::seed_from_u64(s),
            None => Xoshiro256StarStar::from_entropy(),
        };
        Self { rng }
    }
}

impl Selector for Dist {
    fn name(&self) -> &'static str {
        "dist"
    }

    fn select(&mut self, candidates: &Candidates) -> u32 {
        let u = self.rng.next_f64();
        let items = candidates.as_slice();
        let Some(max) = candidates.max_logit() else {
            return 0;
        };
        // Two passes recomputing the weights (bit-identical both times)
        // instead of a buffer that could grow on a later, larger list.
        let total: f64 = items.iter().map(|c| rel_weight(c.logit, max)).sum();
        let target = u * total;
        let mut cum = 0.0;
        let mut last_nonzero = None;
        for c in items {
            let w = rel_weight(c.logit, max);
            if w > 0.0 {
                cum += w;
                last_nonzero = Some(c.id);
                if target < cum {
                    return c.id;
                }
            }
        }
        // Rounding left `target` at/after the end: take the last live token.
        last_nonzero.or(items.first().map(|c| c.id)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_picks_zero_weight_tokens() {
        let mut d = Dist::new(Some(7));
        let mut c = Candidates::new();
        let inf = f32::NEG_INFINITY;
        c.fill_from_logits(&[inf, 0.0, inf, 0.0, inf]);
        for _ in 0..1000 {
            let t = d.select(&c);
            assert!(t == 1 || t == 3);
        }
    }

    #[test]
    fn infinite_logits_do_not_break_it() {
        let mut d = Dist::new(Some(1));
        let mut c = Candidates::new();
        c.fill_from_logits(&[0.0, f32::INFINITY, 5.0]);
        for _ in 0..100 {
            assert_eq!(d.select(&c), 1);
        }
        c.fill_from_logits(&[f32::NEG_INFINITY; 4]);
        for _ in 0..100 {
            assert!(d.select(&c) < 4);
        }
    }
}
