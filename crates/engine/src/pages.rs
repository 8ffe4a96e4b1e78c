//! The page accounting the planner needs, as a trait: the real paged KV cache implements it,
//! and the planner's tests use a counter that holds no K/V rows at all, so admission, prefix
//! reuse, budgets and pre-emption are tested without a model.

use owl_model::KvCache;

/// Pages of a KV pool, handed to slots (page tables).
pub(crate) trait PagePool {
    /// Pages no slot holds.
    fn free_pages(&self) -> usize;
    /// Free pages `slot` would need to hold `n` positions.
    fn pages_needed(&self, slot: usize, n: usize) -> usize;
    /// Gives `slot`, which holds positions `0..start`, the pages to compute `start..end`
    /// (sliding-window layers drop what no later position sees); false (nothing changed) if
    /// it cannot.
    fn ensure(&mut self, slot: usize, start: usize, end: usize) -> bool;
    /// Keeps the pages `slot` needs for `0..n` and frees the rest; returns the positions kept
    /// (fewer than `n`, down to 0, when the slot cannot resume at `n`: a sliding window has
    /// dropped pages that position still sees).
    fn truncate(&mut self, slot: usize, n: usize) -> usize;
    /// Frees every page of `slot`.
    fn release(&mut self, slot: usize) {
        self.truncate(slot, 0);
    }
    /// Whether `from` can give (now, or once it has computed them) positions `0..n` to a
    /// sequence resuming at `n`: false once a sliding window has dropped pages the window of
    /// `n` reaches.
    fn can_copy_prefix(&self, from: usize, n: usize) -> bool;
    /// Gives `to` (its pages released first) the K/V rows of positions `0..n` of `from`;
    /// returns the positions copied (`n`, or 0, leaving `to` as it was, where the pool cannot
    /// share prefixes or lacks the pages).
    fn copy_prefix(&mut self, from: usize, to: usize, n: usize) -> usize;
}

impl PagePool for KvCache {
    fn free_pages(&self) -> usize {
        KvCache::free_pages(self)
    }
    fn pages_needed(&self, slot: usize, n: usize) -> usize {
        KvCache::pages_needed(self, slot, n)
    }
    fn ensure(&mut self, slot: usize, start: usize, end: usize) -> bool {
        KvCache::ensure_chunk(self, slot, start, end).is_ok()
    }
    fn truncate(&mut self, slot: usize, n: usize) -> usize {
        KvCache::truncate(self, slot, n)
    }
    fn can_copy_prefix(&self, from: usize, n: usize) -> bool {
        KvCache::keeps_window_of(self, from, n)
    }
    fn copy_prefix(&mut self, from: usize, to: usize, n: usize) -> usize {
        KvCache::copy_prefix(self, from, to, n)
    }
}

/// Page accounting with no K/V rows behind it: the same rules as the KV cache (a slot holds
/// `ceil(n / page)` pages for `n` positions, at most `n_ctx` positions). With `window` set it
/// plays a sliding-window cache's rollback rule, position-exact rather than page-granular: a
/// slot resumes at `n` only if `n` is at least the start of its last chunk (the positions
/// before that chunk's window are gone), else `truncate` keeps nothing.
#[cfg(test)]
pub(crate) struct CountingPages {
    pub page: usize,
    pub n_ctx: usize,
    pub total: usize,
    pub held: Vec<usize>,
    pub window: Option<usize>,
    /// Per slot: the start of its last chunk.
    pub started: Vec<usize>,
    /// Every `copy_prefix` done: (from, to, positions).
    pub copies: Vec<(usize, usize, usize)>,
}

#[cfg(test)]
impl CountingPages {
    pub fn new(n_slots: usize, total: usize, page: usize, n_ctx: usize) -> CountingPages {
        CountingPages {
            page,
            n_ctx,
            total,
            held: vec![0; n_slots],
            window: None,
            started: vec![0; n_slots],
            copies: Vec::new(),
        }
    }

    fn pages_for(&self, n: usize) -> usize {
        n.div_ceil(self.page)
    }
}

#[cfg(test)]
impl PagePool for CountingPages {
    fn free_pages(&self) -> usize {
        self.total - self.held.iter().sum::<usize>()
    }
    fn pages_needed(&self, slot: usize, n: usize) -> usize {
        self.pages_for(n).saturating_sub(self.held[slot])
    }
    fn ensure(&mut self, slot: usize, start: usize, n: usize) -> bool {
        let need = self.pages_needed(slot, n);
        if n > self.n_ctx || need > self.free_pages() {
            return false;
        }
        self.held[slot] += need;
        self.started[slot] = start;
        true
    }
    fn truncate(&mut self, slot: usize, n: usize) -> usize {
        let n = match self.window {
            Some(_) if n < self.started[slot] => 0,
            _ => n,
        };
        if n == 0 {
            self.started[slot] = 0;
        }
        let keep = self.pages_for(n);
        self.held[slot] = self.held[slot].min(keep);
        n
    }
    fn can_copy_prefix(&self, from: usize, n: usize) -> bool {
        self.window.is_none() || n >= self.started[from]
    }
    fn copy_prefix(&mut self, from: usize, to: usize, n: usize) -> usize {
        if from == to
            || n == 0
            || n > self.n_ctx
            || !self.can_copy_prefix(from, n)
            || self.held[from] < self.pages_for(n)
            || self.pages_for(n) > self.free_pages() + self.held[to]
        {
            return 0;
        }
        self.release(to);
        if !self.ensure(to, n, n) {
            return 0;
        }
        self.copies.push((from, to, n));
        n
    }
}
