//! Temperature scaling.

use crate::{Candidates, LogitsProcessor};

/// Divides every logit by `t` (> 0). Applied last, as in llama.cpp, so the
/// filters before it see the untempered distribution.
#[derive(Clone, Debug)]
pub struct Temperature {
    t: f32,
}

impl Temperature {
    /// `t` must be positive for meaningful results; `t <= 0` (or NaN) leaves
    /// the logits untouched (greedy decoding is the selector's job).
    pub fn new(t: f32) -> Self {
        Self { t }
    }
}

impl LogitsProcessor for Temperature {
    fn name(&self) -> &'static str {
        "temperature"
    }

    fn apply(&mut self, candidates: &mut Candidates, _history: &[u32]) {
        if self.t.is_nan() || self.t <= 0.0 || self.t == 1.0 {
            return;
        }
        let t = self.t;
        for (_, l) in candidates.logits_mut() {
            *l /= t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divides_logits() {
        let mut c = Candidates::new();
        c.fill_from_logits(&[1.0, -2.0, f32::NEG_INFINITY]);
        Temperature::new(0.5).apply(&mut c, &[]);
        let l: Vec<f32> = c.as_slice().iter().map(|c| c.logit).collect();
        assert_eq!(l, vec![2.0, -4.0, f32::NEG_INFINITY]);
        Temperature::new(0.0).apply(&mut c, &[]);
        assert_eq!(c.as_slice()[0].logit, 2.0);
    }
}
