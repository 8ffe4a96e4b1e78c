//! Argmax selection.

use crate::candidates::{cmp_desc, Candidate};
use crate::{Candidates, Selector};

/// Picks the highest logit; ties go to the lowest token id. Consumes no
/// randomness.
#[derive(Clone, Copy, Debug, Default)]
pub struct Greedy;

/// Argmax over candidates with the crate-wide tie-break (lowest id).
pub(crate) fn argmax(candidates: &[Candidate]) -> Option<u32> {
    candidates
        .iter()
        .min_by(|a, b| cmp_desc(a, b))
        .map(|c| c.id)
}

impl Selector for Greedy {
    fn name(&self) -> &'static str {
        "greedy"
    }

    fn select(&mut self, candidates: &Candidates) -> u32 {
        if candidates.is_sorted() {
            return candidates.as_slice().first().map_or(0, |c| c.id);
        }
        argmax(candidates.as_slice()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_ties_to_lowest_id() {
        let mut c = Candidates::new();
        c.fill_from_logits(&[1.0, 3.0, f32::NAN, 3.0, -0.0]);
        assert_eq!(Greedy.select(&c), 1);
        c.fill_from_logits(&[0.0, -0.0]);
        assert_eq!(Greedy.select(&c), 0);
        c.fill_from_logits(&[-0.0, 0.0]);
        assert_eq!(Greedy.select(&c), 0);
        c.fill_from_logits(&[f32::NEG_INFINITY; 3]);
        assert_eq!(Greedy.select(&c), 0);
    }
}
