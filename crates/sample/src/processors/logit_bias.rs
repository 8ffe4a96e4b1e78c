//! Additive per-token bias on the raw logits.

use crate::candidates::sanitize;
use crate::{Candidates, LogitsProcessor};

/// Adds a fixed bias to chosen tokens. `-inf` bans a token; ids not in the
/// candidate list are ignored; a repeated id has its biases added.
#[derive(Clone, Debug)]
pub struct LogitBias {
    bias: Vec<(u32, f32)>,
}

impl LogitBias {
    /// Biases as `(token id, additive bias)`.
    pub fn new(bias: &[(u32, f32)]) -> Self {
        Self {
            bias: bias.to_vec(),
        }
    }
}

impl LogitsProcessor for LogitBias {
    fn name(&self) -> &'static str {
        "logit_bias"
    }

    fn apply(&mut self, candidates: &mut Candidates, _history: &[u32]) {
        for &(id, b) in &self.bias {
            if let Some(l) = candidates.logit_mut(id) {
                // -inf + +inf would be NaN: keep the token banned instead.
                *l = sanitize(*l + b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_bias_bans_and_ignores_out_of_range() {
        let mut c = Candidates::new();
        c.fill_from_logits(&[1.0, 2.0, 3.0]);
        let mut p = LogitBias::new(&[(0, 0.5), (2, f32::NEG_INFINITY), (0, 0.25), (99, 1.0)]);
        p.apply(&mut c, &[]);
        let l: Vec<f32> = c.as_slice().iter().map(|c| c.logit).collect();
        assert_eq!(l, vec![1.75, 2.0, f32::NEG_INFINITY]);
    }

    #[test]
    fn never_produces_nan() {
        let mut c = Candidates::new();
        c.fill_from_logits(&[f32::NEG_INFINITY, f32::INFINITY]);
        let mut p = LogitBias::new(&[(0, f32::INFINITY), (1, f32::NEG_INFINITY)]);
        p.apply(&mut c, &[]);
        assert!(c.as_slice().iter().all(|c| c.logit == f32::NEG_INFINITY));
    }
}
