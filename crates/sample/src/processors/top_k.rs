//! Keep the `k` highest logits.

use crate::{Candidates, LogitsProcessor};

/// Keeps the `k` best candidates (ties: lower id wins) and leaves them
/// sorted. Uses a partial selection, O(n + k log k). `k = 0` is a no-op.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
}

impl TopK {
    /// `k = 0` disables the filter.
    pub fn new(k: usize) -> Self {
        Self { k }
    }
}

impl LogitsProcessor for TopK {
    fn name(&self) -> &'static str {
        "top_k"
    }

    fn apply(&mut self, candidates: &mut Candidates, _history: &[u32]) {
        if self.k == 0 || self.k >= candidates.len() {
            return;
        }
        candidates.sort_prefix(self.k);
        candidates.truncate(self.k);
        candidates.set_sorted();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_k_sorted_with_id_tiebreak() {
        let mut c = Candidates::new();
        c.fill_from_logits(&[1.0, 5.0, 3.0, 5.0, 4.0]);
        TopK::new(3).apply(&mut c, &[]);
        let ids: Vec<u32> = c.as_slice().iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![1, 3, 4]);
        assert!(c.is_sorted());
    }

    #[test]
    fn zero_or_large_k_is_noop() {
        let mut c = Candidates::new();
        c.fill_from_logits(&[1.0, 2.0]);
        TopK::new(0).apply(&mut c, &[]);
        TopK::new(5).apply(&mut c, &[]);
        assert_eq!(c.len(), 2);
        assert!(c.is_by_id());
    }
}
