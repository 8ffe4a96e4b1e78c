//! One pool of KV pages and the slots' page tables into it: the bookkeeping half of the KV
//! cache, with no notion of what a page holds beyond its size.
//!
//! A slot's table lists its pages in position order: entry `i` holds positions
//! `i * KV_PAGE .. (i + 1) * KV_PAGE`. A pool that serves sliding-window layers (`window`
//! set) also *drops* pages: before a chunk starting at position `start` is computed, every
//! page whose positions all lie before `start + 1 - window` is returned to the free list, since
//! no token of that chunk or any later one can see them (a token at `pos` sees
//! `pos + 1 - window ..= pos`). A dropped entry stays in the table as `DROPPED`, so positions
//! still map to entries by division; the dropped entries are always a prefix of the table, and
//! attention starts its walk at the window's first page, which is never before them. That is
//! how a sliding layer holds its window plus the chunk being computed, whatever the sequence's
//! length, while the numbers attention reads are exactly those of a full-length table.
//!
//! The pool is fixed at creation and tables are allocated once (`pages_for(n_ctx)` entries), so
//! growing, sliding and releasing allocate nothing.

use owl_kernels::attention::KV_PAGE;

use crate::ModelError;

/// A table entry whose page was returned to the pool (its positions left every window).
pub const DROPPED: u32 = u32::MAX;

/// Pages needed for `n` positions.
pub fn pages_for(n: usize) -> usize {
    n.div_ceil(KV_PAGE)
}

pub struct PagePool {
    n_pages: usize,
    /// Sliding window of the layers this pool serves; `None` keeps every position.
    window: Option<usize>,
    /// Per slot: its pages in position order, `DROPPED` entries first.
    tables: Vec<Vec<u32>>,
    /// Per slot: how many leading entries are `DROPPED`.
    dropped: Vec<usize>,
    /// Free page ids (a stack).
    free: Vec<u32>,
}

/// What `ensure` would do to one slot's table: entries to drop and pages to take.
struct Growth {
    /// Table entries before this index must be dropped.
    dead: usize,
    /// Live pages the drop returns to the pool.
    freed: usize,
    /// Free pages taken for new entries.
    need: usize,
}

impl PagePool {
    pub fn new(n_pages: usize, n_slots: usize, n_ctx: usize, window: Option<usize>) -> PagePool {
        let per_slot = pages_for(n_ctx);
        PagePool {
            n_pages,
            window,
            tables: (0..n_slots).map(|_| Vec::with_capacity(per_slot)).collect(),
            dropped: vec![0; n_slots],
            free: (0..n_pages as u32).rev().collect(),
        }
    }

    pub fn n_pages(&self) -> usize {
        self.n_pages
    }

    pub fn n_slots(&self) -> usize {
        self.tables.len()
    }

    /// The sliding window this pool drops pages behind; `None` keeps every position.
    pub fn window(&self) -> Option<usize> {
        self.window
    }

    pub fn free_pages(&self) -> usize {
        self.free.len()
    }

    /// Live pages `slot` holds (dropped entries not counted).
    pub fn live_pages(&self, slot: usize) -> usize {
        self.tables
            .get(slot)
            .map_or(0, |t| t.len() - self.dropped[slot])
    }

    /// Table entries of `slot` before this one are dropped.
    pub fn dropped(&self, slot: usize) -> usize {
        self.dropped.get(slot).copied().unwrap_or(0)
    }

    /// The table of `slot`, in position order (dropped entries are `DROPPED`).
    pub fn table(&self, slot: usize) -> &[u32] {
        &self.tables[slot]
    }

    /// The page holding position `pos` of `slot`.
    #[inline]
    pub fn page_of(&self, slot: usize, pos: usize) -> usize {
        let page = self.tables[slot][pos / KV_PAGE];
        debug_assert!(page != DROPPED, "position {pos} of slot {slot} was dropped");
        page as usize
    }

    /// Entries no chunk starting at `start` can see.
    fn dead_before(&self, start: usize) -> usize {
        self.window
            .map_or(0, |w| (start + 1).saturating_sub(w) / KV_PAGE)
    }

    fn growth(&self, slot: usize, start: usize, end: usize) -> Growth {
        let len = self.tables[slot].len();
        let dead = self.dead_before(start);
        let freed = dead.min(len).saturating_sub(self.dropped[slot]);
        let need = pages_for(end).saturating_sub(len.max(dead));
        Growth { dead, freed, need }
    }

    /// Free pages `slot` would need to hold positions up to `n` (ignoring what sliding would
    /// return: the planner's conservative count).
    pub fn pages_needed(&self, slot: usize, n: usize) -> usize {
        let len = self.tables.get(slot).map_or(0, Vec::len);
        pages_for(n).saturating_sub(len)
    }

    /// Prepares `slot` to compute positions `start..end`: drops the pages no token from
    /// `start` on can see, then takes pages up to `end`. Fails, changing nothing, when the
    /// pool has too few free pages.
    pub fn ensure(&mut self, slot: usize, start: usize, end: usize) -> Result<(), ModelError> {
        let g = self.growth(slot, start, end);
        let free = self.free.len() + g.freed;
        if g.need > free {
            return Err(ModelError::KvFull { need: g.need, free });
        }
        let table = &mut self.tables[slot];
        while self.dropped[slot] < g.dead.min(table.len()) {
            let at = self.dropped[slot];
            self.free.push(table[at]);
            table[at] = DROPPED;
            self.dropped[slot] += 1;
        }
        while table.len() < pages_for(end) {
            if table.len() < g.dead {
                table.push(DROPPED);
                self.dropped[slot] += 1;
            } else if let Some(p) = self.free.pop() {
                table.push(p);
            }
        }
        Ok(())
    }

    /// Table entries a slot resuming at position `n` needs live: from the first page the
    /// window of `n` reaches to the page holding `n - 1` (`first..pages_for(n)`).
    pub fn live_for(&self, n: usize) -> std::ops::Range<usize> {
        self.dead_before(n)..pages_for(n)
    }

    /// Whether `slot` can continue from position `n` (the next chunk starts there): every
    /// page the window of position `n` reaches is still live.
    pub fn can_resume(&self, slot: usize, n: usize) -> bool {
        n == 0 || self.dropped(slot) <= self.dead_before(n)
    }

    /// Keeps the pages `slot` needs for positions `0..n` and frees the rest; `n` must pass
    /// `can_resume` (else the whole table is freed).
    pub fn truncate(&mut self, slot: usize, n: usize) {
        let keep = if self.can_resume(slot, n) {
            pages_for(n)
        } else {
            0
        };
        let Some(t) = self.tables.get_mut(slot) else {
            return;
        };
        while t.len() > keep {
            if let Some(p) = t.pop() {
                if p != DROPPED {
                    self.free.push(p);
                }
            }
        }
        self.dropped[slot] = self.dropped[slot].min(t.len());
    }
}
