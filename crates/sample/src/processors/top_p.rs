//! Nucleus (top-p) filtering.

use crate::candidates::rel_weight;
use crate::{Candidates, LogitsProcessor};

/// Prefix size tried first on large unsorted lists before a full sort.
const ADAPTIVE_PREFIX: usize = 256;
/// Lists at most this long are simply sorted in full.
const SMALL_LIST: usize = 1024;

/// Keeps the smallest set of highest-probability candidates whose
/// cumulative probability (softmax of the current logits) is `>= p`, and at
/// least one. Leaves the list sorted. `p >= 1` is a no-op.
///
/// As in llama.cpp, a large unsorted list is first partially sorted on its
/// best 256 entries; only when those don't reach `p` is the rest sorted.
#[derive(Clone, Debug)]
pub struct TopP {
    p: f32,
}

impl TopP {
    /// `p >= 1` disables the filter; `p <= 0` keeps only the best token.
    pub fn new(p: f32) -> Self {
        Self { p }
    }
}

impl LogitsProcessor for TopP {
    fn name(&self) -> &'static str {
        "top_p"
    }

    fn apply(&mut self, candidates: &mut Candidates, _history: &[u32]) {
        if self.p >= 1.0 || candidates.is_empty() {
            return;
        }
        let Some(max) = candidates.max_logit() else {
            return;
        };
        let total: f64 = candidates
            .as_slice()
            .iter()
            .map(|c| rel_weight(c.logit, max))
            .sum();
        let target = f64::from(self.p) * total;

        let mut sorted_upto = candidates.len();
        if !candidates.is_sorted() {
            if candidates.len() > SMALL_LIST {
                sorted_upto = ADAPTIVE_PREFIX;
                candidates.sort_prefix(sorted_upto);
            } else {
                candidates.sort_descending();
            }
        }

        let mut cum = 0.0f64;
        let mut keep = candidates.len();
        let mut i = 0;
        while i < candidates.len() {
            if i == sorted_upto {
                candidates.sort_tail_after_prefix(sorted_upto);
                sorted_upto = candidates.len();
            }
            cum += rel_weight(candidates.as_slice()[i].logit, max);
            if cum >= target {
                keep = i + 1;
                break;
            }
            i += 1;
        }
        // Either the whole list is sorted now, or we stopped inside the
        // sorted prefix: both ways the kept prefix is sorted.
        candidates.truncate(keep);
        candidates.set_sorted();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_after(p: f32, logits: &[f32]) -> Vec<u32> {
        let mut c = Candidates::new();
        c.fill_from_logits(logits);
        TopP::new(p).apply(&mut c, &[]);
        assert!(c.is_sorted() || p >= 1.0);
        c.as_slice().iter().map(|c| c.id).collect()
    }

    #[test]
    fn keeps_smallest_prefix_reaching_p() {
        // probs 0.5, 0.25, 0.125, 0.125 (ids 2, 0, 1, 3)
        let l = [0.25f32.ln(), 0.125f32.ln(), 0.5f32.ln(), 0.125f32.ln()];
        assert_eq!(ids_after(0.5, &l), vec![2]);
        assert_eq!(ids_after(0.6, &l), vec![2, 0]);
        assert_eq!(ids_after(0.75, &l), vec![2, 0]);
        assert_eq!(ids_after(0.8, &l), vec![2, 0, 1]);
        assert_eq!(ids_after(1e-9, &l), vec![2]);
        assert_eq!(ids_after(1.0, &l), vec![0, 1, 2, 3]);
    }

    #[test]
    fn large_lists_match_full_sort() {
        // Flat-ish distribution over 5000 tokens forces the adaptive path to
        // go past its 256-entry prefix.
        let logits: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 5000) as f32 * 1e-3)
            .collect();
        for p in [0.01f32, 0.3, 0.9] {
            let got = ids_after(p, &logits);
            let mut idx: Vec<u32> = (0..5000).collect();
            idx.sort_by(|&a, &b| {
                logits[b as usize]
                    .total_cmp(&logits[a as usize])
                    .then(a.cmp(&b))
            });
            let max = logits[idx[0] as usize] as f64;
            let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
            let mut cum = 0.0;
            let mut n = 0;
            for &i in &idx {
                cum += (logits[i as usize] as f64 - max).exp();
                n += 1;
                if cum >= p as f64 * total {
                    break;
                }
            }
            assert_eq!(got, idx[..n].to_vec(), "p = {p}");
        }
    }
}
