//! The candidate list every processor works on, and the two chain traits.

use std::cmp::Ordering;
use std::fmt;

/// One token still in the running, with its current (processed) logit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Token id (index into the raw logits).
    pub id: u32,
    /// Current logit; never NaN (NaN is mapped to `-inf` on entry).
    pub logit: f32,
}

/// Reusable list of [`Candidate`]s plus two facts that let processors skip
/// work: whether the list is still the identity layout (`items[i].id == i`,
/// so lookups by id are O(1)) and whether it is sorted by descending logit.
///
/// The vector is private so that every mutation keeps those flags honest.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    items: Vec<Candidate>,
    by_id: bool,
    sorted: bool,
}

/// Maps NaN to `-inf`; everything else unchanged.
#[inline]
pub(crate) fn sanitize(l: f32) -> f32 {
    if l.is_nan() {
        f32::NEG_INFINITY
    } else {
        l
    }
}

/// Descending logit, ties to the lower id: the one order used everywhere.
/// Total for NaN-free logits (and -0.0 == +0.0, as in argmax).
#[inline]
pub(crate) fn cmp_desc(a: &Candidate, b: &Candidate) -> Ordering {
    sanitize(b.logit)
        .partial_cmp(&sanitize(a.logit))
        .unwrap_or(Ordering::Equal)
        .then(a.id.cmp(&b.id))
}

/// Weight of a logit relative to the maximum, `exp(l - max)`, defined also
/// when `max` is infinite: tokens equal to the max weigh 1 (so all `-inf`
/// means uniform and `+inf` tokens share all the mass).
#[inline]
pub(crate) fn rel_weight(l: f32, max: f32) -> f64 {
    if l == max {
        1.0
    } else {
        (f64::from(l) - f64::from(max)).exp()
    }
}

impl Candidates {
    /// An empty list; buffers grow on first fill and are reused afterwards.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the contents with one candidate per logit (id = index).
    /// NaN logits become `-inf`. Does not allocate once capacity suffices.
    pub fn fill_from_logits(&mut self, logits: &[f32]) {
        self.items.clear();
        self.items
            .extend((0..=u32::MAX).zip(logits).map(|(id, &l)| Candidate {
                id,
                logit: sanitize(l),
            }));
        self.by_id = true;
        self.sorted = false;
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no candidate is left.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Read-only view.
    pub fn as_slice(&self) -> &[Candidate] {
        &self.items
    }

    /// True while `as_slice()[i].id == i` for every `i`.
    pub fn is_by_id(&self) -> bool {
        self.by_id
    }

    /// True when sorted by descending logit (ties: lower id first).
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// Mutable access to the logit of token `id`, if it is still a candidate.
    /// O(1) in identity layout, a linear scan otherwise.
    pub fn logit_mut(&mut self, id: u32) -> Option<&mut f32> {
        self.sorted = false;
        if self.by_id {
            return self.items.get_mut(id as usize).map(|c| &mut c.logit);
        }
        self.items
            .iter_mut()
            .find(|c| c.id == id)
            .map(|c| &mut c.logit)
    }

    /// Mutable access to all `(id, logit)` pairs; clears the sorted flag.
    pub fn logits_mut(&mut self) -> impl Iterator<Item = (u32, &mut f32)> {
        self.sorted = false;
        self.items.iter_mut().map(|c| (c.id, &mut c.logit))
    }

    /// Largest logit, `None` if empty. O(1) when sorted.
    pub fn max_logit(&self) -> Option<f32> {
        if self.sorted {
            return self.items.first().map(|c| sanitize(c.logit));
        }
        self.items
            .iter()
            .map(|c| sanitize(c.logit))
            .reduce(f32::max)
    }

    /// Sorts by descending logit (ties: lower id). No-op when already sorted.
    pub fn sort_descending(&mut self) {
        if !self.sorted {
            self.items.sort_unstable_by(cmp_desc);
            self.sorted = true;
            self.by_id = false;
        }
    }

    /// Moves the `k` best candidates to the front, sorted; the rest stay
    /// behind them in unspecified order (all no better than the `k`-th).
    /// Sorts fully when `k >= len`.
    pub fn sort_prefix(&mut self, k: usize) {
        if self.sorted {
            return;
        }
        if k >= self.items.len() {
            self.sort_descending();
            return;
        }
        if k > 0 {
            self.items.select_nth_unstable_by(k - 1, cmp_desc);
            self.items[..k].sort_unstable_by(cmp_desc);
            self.by_id = false;
        }
    }

    /// Sorts the tail `from..` only; with a prior `sort_prefix(from)` this
    /// completes a full sort.
    pub(crate) fn sort_tail_after_prefix(&mut self, from: usize) {
        if let Some(tail) = self.items.get_mut(from..) {
            tail.sort_unstable_by(cmp_desc);
        }
        self.sorted = true;
        self.by_id = false;
    }

    /// Keeps the first `n` candidates (whatever the current order).
    pub fn truncate(&mut self, n: usize) {
        self.items.truncate(n);
    }

    /// Marks the list sorted; only for callers that just established it.
    pub(crate) fn set_sorted(&mut self) {
        self.sorted = true;
    }

    /// Keeps candidates matching `keep`, preserving order.
    pub fn retain(&mut self, keep: impl FnMut(&Candidate) -> bool) {
        let before = self.items.len();
        self.items.retain(keep);
        if self.items.len() != before {
            self.by_id = false;
        }
    }
}

/// One stage of the chain: edits logits and/or removes candidates.
///
/// Contract: never remove every candidate (keep at least one), never produce
/// NaN logits. `history` is prompt + generated tokens so far.
pub trait LogitsProcessor: fmt::Debug + Send {
    /// Short stable name, used in errors and [`Sampler::chain_names`](crate::Sampler::chain_names).
    fn name(&self) -> &'static str;
    /// Applies the processor in place.
    fn apply(&mut self, candidates: &mut Candidates, history: &[u32]);
}

/// Final stage of the chain: picks one token from a non-empty list.
pub trait Selector: fmt::Debug + Send {
    /// Short stable name.
    fn name(&self) -> &'static str;
    /// Returns the chosen token id; `candidates` is guaranteed non-empty.
    fn select(&mut self, candidates: &Candidates) -> u32;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &Candidates) -> Vec<u32> {
        c.as_slice().iter().map(|c| c.id).collect()
    }

    #[test]
    fn fill_sanitizes_and_tracks_flags() {
        let mut c = Candidates::new();
        c.fill_from_logits(&[1.0, f32::NAN, 3.0, 3.0]);
        assert!(c.is_by_id() && !c.is_sorted());
        assert_eq!(c.as_slice()[1].logit, f32::NEG_INFINITY);
        assert_eq!(c.max_logit(), Some(3.0));
        if let Some(l) = c.logit_mut(0) {
            *l = 5.0;
        }
        c.sort_descending();
        assert_eq!(ids(&c), vec![0, 2, 3, 1]);
        assert!(c.is_sorted() && !c.is_by_id());
        assert_eq!(c.logit_mut(3).map(|l| *l), Some(3.0));
        assert!(!c.is_sorted());
    }

    #[test]
    fn sort_prefix_then_tail_is_full_sort() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32).collect();
        let mut a = Candidates::new();
        a.fill_from_logits(&logits);
        a.sort_prefix(7);
        let mut full = Candidates::new();
        full.fill_from_logits(&logits);
        full.sort_descending();
        assert_eq!(&a.as_slice()[..7], &full.as_slice()[..7]);
        a.sort_tail_after_prefix(7);
        assert_eq!(a.as_slice(), full.as_slice());
    }

    #[test]
    fn rel_weight_handles_infinities() {
        assert_eq!(rel_weight(f32::NEG_INFINITY, f32::NEG_INFINITY), 1.0);
        assert_eq!(rel_weight(f32::INFINITY, f32::INFINITY), 1.0);
        assert_eq!(rel_weight(3.0, f32::INFINITY), 0.0);
        assert!((rel_weight(0.0, 1.0) - (-1.0f64).exp()).abs() < 1e-15);
    }
}
