//! Min-p filtering relative to the most likely token.

use crate::{Candidates, LogitsProcessor};

/// Drops candidates whose probability is below `p * p_max`, i.e. whose logit
/// is below `max_logit + ln(p)` (llama.cpp's formulation; no softmax needed).
/// The best token always survives. `p <= 0` is a no-op. Order is preserved.
#[derive(Clone, Debug)]
pub struct MinP {
    p: f32,
}

impl MinP {
    /// `p <= 0` disables the filter; `p = 1` keeps only tokens tied at the max.
    pub fn new(p: f32) -> Self {
        Self { p }
    }
}

impl LogitsProcessor for MinP {
    fn name(&self) -> &'static str {
        "min_p"
    }

    fn apply(&mut self, candidates: &mut Candidates, _history: &[u32]) {
        if self.p.is_nan() || self.p <= 0.0 {
            return;
        }
        let Some(max) = candidates.max_logit() else {
            return;
        };
        let threshold = max + self.p.min(1.0).ln();
        if candidates.is_sorted() {
            let keep = candidates
                .as_slice()
                .partition_point(|c| c.logit >= threshold)
                .max(1);
            candidates.truncate(keep);
        } else {
            candidates.retain(|c| c.logit >= threshold);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_after(p: f32, logits: &[f32], sorted: bool) -> Vec<u32> {
        let mut c = Candidates::new();
        c.fill_from_logits(logits);
        if sorted {
            c.sort_descending();
        }
        MinP::new(p).apply(&mut c, &[]);
        let mut ids: Vec<u32> = c.as_slice().iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn filters_relative_to_max_probability() {
        // probs 0.4, 0.3, 0.2, 0.06, 0.04 -> relative 1, .75, .5, .15, .1
        let l: Vec<f32> = [0.4f32, 0.3, 0.2, 0.06, 0.04]
            .iter()
            .map(|p| p.ln())
            .collect();
        for sorted in [false, true] {
            assert_eq!(ids_after(0.6, &l, sorted), vec![0, 1]);
            assert_eq!(ids_after(0.12, &l, sorted), vec![0, 1, 2, 3]);
            assert_eq!(ids_after(0.05, &l, sorted), vec![0, 1, 2, 3, 4]);
            assert_eq!(ids_after(1.0, &l, sorted), vec![0]);
            assert_eq!(ids_after(0.0, &l, sorted), vec![0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn keeps_ties_at_max_and_all_banned() {
        assert_eq!(ids_after(1.0, &[2.0, 1.0, 2.0], false), vec![0, 2]);
        let inf = f32::NEG_INFINITY;
        assert_eq!(ids_after(0.5, &[inf, inf], true), vec![0, 1]);
    }
}
