//! The scheduling policy, as a pure plan over the queue and the cache state.
//!
//! Each engine step is plan → execute → commit (the shape of vLLM v1's `schedule` /
//! `execute_model` / `update_from_output`). This file is the plan: [`Planner::schedule`]
//! admits waiting requests into slots (taking over the cached slot that shares the longest
//! prefix), then walks the running sequences oldest first and gives each a piece of work — one
//! token for a decoding sequence, a prompt chunk for a prefilling one, within `n_batch` tokens
//! (prefill limited to a quarter of that while others decode, so a long prompt never stalls
//! their streams for long) — and the KV pages that work needs. When pages run out it drops
//! cached prefixes first, then pre-empts the youngest running sequence (its pages freed; it
//! waits at the head of the queue and later recomputes its tokens).
//!
//! The planner sees sequences only as [`SeqState`]s (token ids and counters) and pages only
//! through [`PagePool`], so every decision is tested here without a model, a sampler or a
//! channel. The engine thread (`scheduler.rs`) executes the plan and commits its results.

use std::collections::VecDeque;

use crate::api::FinishReason;
use crate::pages::PagePool;
use crate::prefix_cache::PrefixCache;

/// Fewest shared prompt tokens for which a request copies a running sequence's K/V rows (or
/// waits for them): below it, recomputing is about as cheap as waiting a step.
const SHARE_MIN: usize = 16;

/// Tokens `a` and `b` share from the start.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Identifies a request inside the engine.
pub(crate) type SeqId = u64;

/// What the planner knows of a sequence.
#[derive(Clone, Debug)]
pub(crate) struct SeqState {
    pub id: SeqId,
    /// Prompt then generated tokens.
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    /// Positions of `tokens` whose K/V rows are in the slot.
    pub n_computed: usize,
    pub slot: Option<usize>,
    /// Prompt tokens whose K/V rows came from the prefix cache (first admission only).
    pub cached_tokens: usize,
    /// Tokens generated so far.
    pub generated: usize,
    /// The logits of every prompt position are still wanted (prompt logprobs): nothing may
    /// be reused and prompt chunks report all their rows.
    pub wants_prompt_logits: bool,
    /// The LoRA adapter its K/V rows are computed with (`Adapter::id`; 0: the base model):
    /// a cached prefix is reused only by a sequence with the same one.
    pub adapter: u64,
    /// Tokens guessed to follow `tokens` (speculative decoding, `crate::spec`): a decoding
    /// sequence's work then covers its pending token and these, checked in one pass.
    pub draft: Vec<u32>,
}

impl SeqState {
    pub fn new(id: SeqId, prompt: Vec<u32>, wants_prompt_logits: bool) -> SeqState {
        SeqState {
            id,
            prompt_len: prompt.len(),
            tokens: prompt,
            n_computed: 0,
            slot: None,
            cached_tokens: 0,
            generated: 0,
            wants_prompt_logits,
            adapter: crate::adapters::BASE,
            draft: Vec::new(),
        }
    }

    /// Tokens whose K/V rows are not computed yet.
    pub fn pending(&self) -> usize {
        self.tokens.len() - self.n_computed
    }

    /// The prompt is done and one generated token waits to be fed back.
    pub fn decoding(&self) -> bool {
        self.pending() == 1 && self.n_computed >= self.prompt_len
    }
}

/// One piece of work in a step: the next `len` tokens of `running[seq]` (for a decoding
/// sequence with a draft: its pending token, then `len - 1` drafted tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Work {
    pub seq: usize,
    pub len: usize,
}

/// A step's plan. Kept between steps so planning allocates nothing once warm.
#[derive(Default)]
pub(crate) struct Plan {
    pub work: Vec<Work>,
    /// Sequences the planner had to end (their slots already freed).
    pub ended: Vec<(SeqState, FinishReason)>,
    /// Sequences pre-empted in this step.
    pub preempted: u64,
    /// Prompt tokens reused from the prefix cache by sequences admitted in this step.
    pub reused: u64,
}

impl Plan {
    fn clear(&mut self) {
        self.work.clear();
        self.ended.clear();
        self.preempted = 0;
        self.reused = 0;
    }
}

/// The sizes the policy works within.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Sequences running at once.
    pub parallel: usize,
    /// Most tokens in one forward pass.
    pub n_batch: usize,
}

pub(crate) struct Planner {
    limits: Limits,
    pub waiting: VecDeque<SeqState>,
    /// Oldest first.
    pub running: Vec<SeqState>,
    pub cache: PrefixCache,
}

impl Planner {
    /// A planner over `n_slots` slots keeping at most `cache_slots` cached prefixes.
    pub fn new(limits: Limits, n_slots: usize, cache_slots: usize) -> Planner {
        Planner {
            limits,
            waiting: VecDeque::new(),
            running: Vec::new(),
            cache: PrefixCache::new(n_slots, cache_slots),
        }
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    pub fn enqueue(&mut self, seq: SeqState) {
        self.waiting.push_back(seq);
    }

    /// Admits what fits, then plans this step's work into `plan`.
    pub fn schedule(&mut self, pool: &mut impl PagePool, plan: &mut Plan) {
        plan.clear();
        self.admit(pool, plan);
        self.plan_work(pool, plan);
    }

    /// Removes `running[idx]`, leaving its slot cached (with its computed tokens) when `cache`.
    pub fn finish(&mut self, idx: usize, cache: bool, pool: &mut impl PagePool) -> SeqState {
        let seq = self.running.remove(idx);
        self.vacate(&seq, cache, pool);
        seq
    }

    /// Removes every sequence (running or waiting) for which `gone` holds; slots released.
    pub fn remove_where(
        &mut self,
        mut gone: impl FnMut(SeqId) -> bool,
        pool: &mut impl PagePool,
        out: &mut Vec<SeqState>,
    ) {
        let mut i = 0;
        while i < self.running.len() {
            if gone(self.running[i].id) {
                out.push(self.finish(i, false, pool));
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.waiting.len() {
            if gone(self.waiting[i].id) {
                if let Some(seq) = self.waiting.remove(i) {
                    out.push(seq);
                }
            } else {
                i += 1;
            }
        }
    }

    fn vacate(&mut self, seq: &SeqState, cache: bool, pool: &mut impl PagePool) {
        if let Some(slot) = seq.slot {
            let tokens = cache.then(|| seq.tokens[..seq.n_computed].to_vec());
            self.cache.vacate_for(slot, seq.adapter, tokens, pool);
        }
    }

    /// The running sequence sharing the longest prefix with `seq` (same adapter), counted up
    /// to `max_reuse` tokens: `(shared, computed, slot)`, where `computed` of the `shared`
    /// tokens already have their K/V rows in its slot. Only a prompt is waited for: `shared`
    /// stops at the end of a still-prefilling source's prompt and, for a source already
    /// decoding, at what it has computed (its output may keep matching a longer request).
    /// `None` below `SHARE_MIN` tokens.
    fn running_source(&self, seq: &SeqState, max_reuse: usize) -> Option<(usize, usize, usize)> {
        self.running
            .iter()
            .filter(|r| r.adapter == seq.adapter)
            .filter_map(|r| {
                let limit = if r.n_computed < r.prompt_len {
                    r.prompt_len
                } else {
                    r.n_computed
                };
                let shared = common_prefix(&r.tokens, &seq.tokens)
                    .min(max_reuse)
                    .min(limit);
                Some((shared, shared.min(r.n_computed), r.slot?))
            })
            .filter(|&(shared, _, _)| shared >= SHARE_MIN)
            .max_by_key(|&(shared, computed, _)| (computed, shared))
    }

    /// Starts waiting requests while there is room, each in the slot that shares the longest
    /// prefix with it (or a free one, or the least recently used cached one). A request that
    /// shares a longer computed prefix with a running sequence copies those K/V rows
    /// (`PagePool::copy_prefix`); one whose shared prefix a running sequence is still
    /// computing waits for it (and the queue behind it, to keep arrival order), so concurrent
    /// requests with the same system prompt compute it once.
    fn admit(&mut self, pool: &mut impl PagePool, plan: &mut Plan) {
        while self.running.len() < self.limits.parallel {
            let Some(mut seq) = self.waiting.pop_front() else {
                break;
            };
            // At least one token must run to produce logits.
            let max_reuse = if seq.wants_prompt_logits {
                0
            } else {
                seq.tokens.len() - 1
            };
            let cached = self
                .cache
                .best_match_for(seq.adapter, &seq.tokens, max_reuse);
            // A running sequence is a better source only beyond what the cache gives.
            let source = self
                .running_source(&seq, max_reuse)
                .filter(|&(shared, _, from)| {
                    pool.can_copy_prefix(from, shared) && shared > cached.map_or(0, |c| c.0)
                });
            if matches!(source, Some((shared, computed, _)) if computed < shared) {
                self.waiting.push_front(seq);
                break;
            }
            let slot = match cached {
                Some((common, i)) => {
                    // A sliding-window slot may keep less (nothing) than the shared prefix.
                    let common = pool.truncate(i, common);
                    seq.n_computed = common;
                    if seq.generated == 0 {
                        seq.cached_tokens = common;
                        plan.reused += common as u64;
                    }
                    i
                }
                None => match self.cache.take_free(pool) {
                    Some(i) => i,
                    None => {
                        // Cannot happen: slots outnumber running sequences.
                        self.waiting.push_front(seq);
                        break;
                    }
                },
            };
            if let Some((_, computed, from)) = source.filter(|&(_, c, _)| c > seq.n_computed) {
                let copied = pool.copy_prefix(from, slot, computed);
                if copied > 0 {
                    if seq.generated == 0 {
                        plan.reused += (copied - seq.cached_tokens) as u64;
                        seq.cached_tokens = copied;
                    }
                    seq.n_computed = copied;
                }
            }
            self.cache.occupy(slot);
            seq.slot = Some(slot);
            self.running.push(seq);
        }
    }

    /// Frees pages until `need` are free: cached prefixes first, then running sequences,
    /// youngest first, down to (not including) index `keep`. False if impossible.
    fn make_room(
        &mut self,
        need: usize,
        keep: usize,
        pool: &mut impl PagePool,
        plan: &mut Plan,
    ) -> bool {
        while pool.free_pages() < need {
            if self.cache.evict_lru(pool) {
                continue;
            }
            if self.running.len() <= keep + 1 {
                return false;
            }
            if let Some(seq) = self.running.pop() {
                self.preempt(seq, pool, plan);
            }
        }
        true
    }

    /// Frees a running sequence's pages and puts it back at the head of the queue.
    fn preempt(&mut self, mut seq: SeqState, pool: &mut impl PagePool, plan: &mut Plan) {
        self.vacate(&seq, false, pool);
        seq.draft.clear();
        seq.slot = None;
        seq.n_computed = 0;
        plan.preempted += 1;
        self.waiting.push_front(seq);
    }

    fn plan_work(&mut self, pool: &mut impl PagePool, plan: &mut Plan) {
        let n_batch = self.limits.n_batch;
        let any_decoding = self.running.iter().any(SeqState::decoding);
        let mut budget = n_batch;
        let prefill_cap = if any_decoding {
            (n_batch / 4).max(32).min(n_batch)
        } else {
            n_batch
        };
        let mut prefill_used = 0;
        let mut i = 0;
        while i < self.running.len() {
            let s = &mut self.running[i];
            let len = if s.decoding() {
                1 + s.draft.len()
            } else {
                s.draft.clear();
                s.pending().min(prefill_cap - prefill_used)
            };
            let len = len.min(budget);
            // A draft cut by the budget is shorter, never a reason to skip the sequence.
            s.draft.truncate(len.saturating_sub(1));
            let Some(slot) = s.slot.filter(|_| len > 0) else {
                i += 1;
                continue;
            };
            let need = pool.pages_needed(slot, s.n_computed + len);
            if need > 0 && !self.make_room(need, i, pool, plan) {
                let seq = self.running.remove(i);
                if i > 0 {
                    // Older sequences hold the pages: wait for them.
                    self.preempt(seq, pool, plan);
                } else {
                    // Even alone this sequence cannot get the pages: the memory budget is
                    // smaller than its context. End it as if the context were full.
                    self.vacate(&seq, false, pool);
                    plan.ended.push((seq, FinishReason::Length));
                }
                continue;
            }
            let s = &self.running[i];
            if !pool.ensure(slot, s.n_computed, s.n_computed + len) {
                let seq = self.running.remove(i);
                self.vacate(&seq, false, pool);
                let why = FinishReason::Error("KV cache bookkeeping failed".into());
                plan.ended.push((seq, why));
                continue;
            }
            if !s.decoding() {
                prefill_used += len;
            }
            budget -= len;
            plan.work.push(Work { seq: i, len });
            i += 1;
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
