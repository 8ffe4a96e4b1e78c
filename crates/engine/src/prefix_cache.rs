//! Slots and the prefix cache: which KV slot is free, busy, or holds a finished sequence's
//! tokens for the next request that starts the same way (least recently used evicted first).
//!
//! A slot is a page table in the KV pool. A finished sequence leaves its slot *cached*: its
//! pages stay, so a request whose prompt shares a prefix with it takes the slot over and skips
//! recomputing the shared part (the next turn of a chat). Cached slots are the first thing
//! given up when pages run short.

use crate::pages::PagePool;

pub(crate) enum SlotState {
    Free,
    Busy,
    /// A finished sequence's tokens, whose K/V rows the slot still holds.
    Cached {
        tokens: Vec<u32>,
        last_used: u64,
        /// The LoRA adapter the rows were computed with (0: the base model).
        adapter: u64,
    },
}

pub(crate) struct PrefixCache {
    slots: Vec<SlotState>,
    /// Most cached slots kept.
    capacity: usize,
    clock: u64,
}

impl PrefixCache {
    pub fn new(n_slots: usize, capacity: usize) -> PrefixCache {
        PrefixCache {
            slots: (0..n_slots).map(|_| SlotState::Free).collect(),
            capacity,
            clock: 0,
        }
    }

    pub fn n_cached(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, SlotState::Cached { .. }))
            .count()
    }

    /// The cached slot sharing the longest prefix with `tokens` (at most `max_reuse` tokens
    /// counted): `(common, slot)`, `None` when no slot shares a token.
    #[cfg(test)]
    pub fn best_match(&self, tokens: &[u32], max_reuse: usize) -> Option<(usize, usize)> {
        self.best_match_for(crate::adapters::BASE, tokens, max_reuse)
    }

    /// `best_match` among the prefixes computed with LoRA adapter `adapter` (0: the base).
    pub fn best_match_for(
        &self,
        adapter: u64,
        tokens: &[u32],
        max_reuse: usize,
    ) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if let SlotState::Cached {
                tokens: held,
                adapter: a,
                ..
            } = s
            {
                if *a != adapter {
                    continue;
                }
                let common = held
                    .iter()
                    .zip(tokens)
                    .take_while(|(a, b)| a == b)
                    .count()
                    .min(max_reuse);
                if common > 0 && best.is_none_or(|(c, _)| common > c) {
                    best = Some((common, i));
                }
            }
        }
        best
    }

    /// A free slot, evicting the least recently used cached one if none is free.
    pub fn take_free(&mut self, pool: &mut impl PagePool) -> Option<usize> {
        let free = |c: &PrefixCache| c.slots.iter().position(|s| matches!(s, SlotState::Free));
        if let Some(i) = free(self) {
            return Some(i);
        }
        if !self.evict_lru(pool) {
            return None;
        }
        free(self)
    }

    pub fn occupy(&mut self, slot: usize) {
        self.slots[slot] = SlotState::Busy;
    }

    /// Frees a busy slot: cached with `tokens` (their K/V rows stay), or released.
    /// (Rows computed with LoRA adapter `adapter`; 0: the base model.)
    pub fn vacate_for(
        &mut self,
        slot: usize,
        adapter: u64,
        tokens: Option<Vec<u32>>,
        pool: &mut impl PagePool,
    ) {
        match tokens {
            Some(tokens) if !tokens.is_empty() && self.capacity > 0 => {
                self.clock += 1;
                self.slots[slot] = SlotState::Cached {
                    tokens,
                    last_used: self.clock,
                    adapter,
                };
                if self.n_cached() > self.capacity {
                    self.evict_lru(pool);
                }
            }
            _ => {
                pool.release(slot);
                self.slots[slot] = SlotState::Free;
            }
        }
    }

    /// Drops the least recently used cached prefix; false when there is none.
    pub fn evict_lru(&mut self, pool: &mut impl PagePool) -> bool {
        let lru = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                SlotState::Cached { last_used, .. } => Some((*last_used, i)),
                _ => None,
            })
            .min();
        match lru {
            Some((_, i)) => {
                pool.release(i);
                self.slots[i] = SlotState::Free;
                true
            }
            None => false,
        }
    }
}
