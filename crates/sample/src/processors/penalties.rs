//! Repetition, frequency and presence penalties over a history window.

use crate::{Candidates, LogitsProcessor};

/// llama.cpp-style penalties. For each token occurring `count > 0` times in
/// the last `last_n` history tokens:
///
/// 1. repetition: `logit > 0 ? logit / repeat : logit * repeat`;
/// 2. then `logit -= count * frequency + presence`.
///
/// Counting sorts a copy of the window in a reused buffer, so a step costs
/// O(n log n) in the window size and allocates nothing once warm (the
/// buffer is pre-sized for windows up to 4096 tokens).
#[derive(Clone, Debug)]
pub struct Penalties {
    last_n: usize,
    repeat: f32,
    frequency: f32,
    presence: f32,
    window: Vec<u32>,
}

impl Penalties {
    /// `last_n = 0` makes the processor a no-op.
    pub fn new(last_n: usize, repeat: f32, frequency: f32, presence: f32) -> Self {
        Self {
            last_n,
            repeat,
            frequency,
            presence,
            window: Vec::with_capacity(last_n.min(4096)),
        }
    }

    #[inline]
    fn penalize(&self, logit: f32, count: usize) -> f32 {
        let l = if logit > 0.0 {
            logit / self.repeat
        } else {
            logit * self.repeat
        };
        l - (count as f32 * self.frequency + self.presence)
    }
}

impl LogitsProcessor for Penalties {
    fn name(&self) -> &'static str {
        "penalties"
    }

    fn apply(&mut self, candidates: &mut Candidates, history: &[u32]) {
        if self.last_n == 0 || history.is_empty() {
            return;
        }
        let start = history.len().saturating_sub(self.last_n);
        self.window.clear();
        self.window.extend_from_slice(&history[start..]);
        self.window.sort_unstable();

        if candidates.is_by_id() {
            // O(window): visit each distinct token once.
            let mut i = 0;
            while let Some(&tok) = self.window.get(i) {
                let run = self.window[i..].partition_point(|&t| t == tok);
                i += run;
                if let Some(l) = candidates.logit_mut(tok) {
                    *l = self.penalize(*l, run);
                }
            }
        } else {
            // Arbitrary layout: binary-search each candidate in the window.
            for (id, l) in candidates.logits_mut() {
                let lo = self.window.partition_point(|&t| t < id);
                let count = self.window[lo..].partition_point(|&t| t == id);
                if count > 0 {
                    *l = self.penalize(*l, count);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Penalties, logits: &[f32], history: &[u32], shuffle: bool) -> Vec<f32> {
        let mut c = Candidates::new();
        c.fill_from_logits(logits);
        if shuffle {
            c.sort_descending();
        }
        p.apply(&mut c, history);
        let mut out = vec![0.0; logits.len()];
        for cand in c.as_slice() {
            out[cand.id as usize] = cand.logit;
        }
        out
    }

    #[test]
    fn repeat_divides_positive_multiplies_negative() {
        for shuffle in [false, true] {
            let mut p = Penalties::new(64, 2.0, 0.0, 0.0);
            let got = run(&mut p, &[4.0, -4.0, 4.0, 0.0], &[0, 1, 1, 3], shuffle);
            assert_eq!(got, vec![2.0, -8.0, 4.0, 0.0]);
        }
    }

    #[test]
    fn frequency_and_presence_use_counts() {
        for shuffle in [false, true] {
            let mut p = Penalties::new(64, 1.0, 0.5, 0.25);
            let got = run(&mut p, &[1.0, 1.0, 1.0], &[2, 0, 2, 2], shuffle);
            // token 0: count 1 -> 1 - 0.5 - 0.25; token 2: count 3 -> 1 - 1.5 - 0.25
            assert_eq!(got, vec![0.25, 1.0, -0.75]);
        }
    }

    #[test]
    fn only_last_n_tokens_count_and_out_of_vocab_ignored() {
        let mut p = Penalties::new(2, 1.0, 1.0, 0.0);
        let got = run(&mut p, &[0.0, 0.0, 0.0], &[0, 0, 0, 1, 1000], false);
        assert_eq!(got, vec![0.0, -1.0, 0.0]);
        let mut off = Penalties::new(0, 3.0, 1.0, 1.0);
        assert_eq!(run(&mut off, &[1.0, 2.0], &[0, 1], false), vec![1.0, 2.0]);
    }
}
