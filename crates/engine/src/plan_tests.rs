//! The scheduling policy without a model: page accounting is a counter, "running the model"
//! is advancing counters, and every invariant is checked after every step.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::pages::CountingPages;

const PAGE: usize = 4;

struct Sim {
    planner: Planner,
    pool: CountingPages,
    plan: Plan,
    /// Tokens each sequence generates before it finishes, by id.
    max_tokens: Vec<usize>,
    ended: Vec<(SeqId, FinishReason)>,
    preempted: u64,
    next_id: SeqId,
}

impl Sim {
    fn new(parallel: usize, n_batch: usize, cache_slots: usize, pages: usize, n_ctx: usize) -> Sim {
        let n_slots = parallel + cache_slots;
        Sim {
            planner: Planner::new(Limits { parallel, n_batch }, n_slots, cache_slots),
            pool: CountingPages::new(n_slots, pages, PAGE, n_ctx),
            plan: Plan::default(),
            max_tokens: Vec::new(),
            ended: Vec::new(),
            preempted: 0,
            next_id: 0,
        }
    }

    fn submit(&mut self, prompt: Vec<u32>, max_tokens: usize) -> SeqId {
        self.submit_with(prompt, max_tokens, false)
    }

    fn submit_with(&mut self, prompt: Vec<u32>, max_tokens: usize, logits: bool) -> SeqId {
        let id = self.next_id;
        self.next_id += 1;
        self.max_tokens.push(max_tokens);
        self.planner.enqueue(SeqState::new(id, prompt, logits));
        id
    }

    /// Plans one step and "executes" it: computed positions advance, a finished prompt or
    /// decode step yields token `1000 + generated`, sequences end at their token budget.
    fn step(&mut self) -> Vec<Work> {
        self.planner.schedule(&mut self.pool, &mut self.plan);
        self.preempted += self.plan.preempted;
        for (s, r) in self.plan.ended.drain(..) {
            self.ended.push((s.id, r));
        }
        self.check();
        let work = self.plan.work.clone();
        let mut done = Vec::new();
        for w in &work {
            let s = &mut self.planner.running[w.seq];
            assert!(s.n_computed + w.len <= self.pool.held[s.slot.unwrap()] * PAGE);
            s.n_computed += w.len;
            if s.n_computed == s.tokens.len() {
                if s.generated >= self.max_tokens[s.id as usize] {
                    done.push(w.seq);
                    continue;
                }
                s.tokens.push(1000 + s.generated as u32);
                s.generated += 1;
                // As the engine does: the last token is reported, never fed back.
                if s.generated >= self.max_tokens[s.id as usize] {
                    done.push(w.seq);
                }
            }
        }
        for &i in done.iter().rev() {
            let s = self.planner.finish(i, true, &mut self.pool);
            self.ended.push((s.id, FinishReason::Length));
        }
        self.check();
        work
    }

    /// Invariants: pages never over-committed, running within `parallel`, each running
    /// sequence in its own busy slot.
    fn check(&self) {
        let held: usize = self.pool.held.iter().sum();
        assert!(
            held <= self.pool.total,
            "{held} pages held of {}",
            self.pool.total
        );
        assert!(self.planner.running.len() <= self.planner.limits.parallel);
        let mut slots: Vec<usize> = self
            .planner
            .running
            .iter()
            .map(|s| s.slot.unwrap())
            .collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(
            slots.len(),
            self.planner.running.len(),
            "two sequences share a slot"
        );
        assert!(self
            .planner
            .waiting
            .iter()
            .all(|s| s.slot.is_none() && s.n_computed == 0));
    }

    fn run_to_end(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            if self.planner.is_idle() {
                return;
            }
            self.step();
        }
        panic!("not finished after {max_steps} steps");
    }

    fn ended_ids(&self) -> Vec<SeqId> {
        let mut v: Vec<SeqId> = self.ended.iter().map(|(id, _)| *id).collect();
        v.sort_unstable();
        v
    }
}

fn prompt(seed: u32, len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| seed * 100 + i).collect()
}

#[test]
fn admits_up_to_parallel_in_arrival_order() {
    let mut sim = Sim::new(2, 64, 2, 100, 64);
    let a = sim.submit(prompt(1, 5), 3);
    let b = sim.submit(prompt(2, 5), 3);
    let c = sim.submit(prompt(3, 5), 3);
    sim.step();
    let running: Vec<SeqId> = sim.planner.running.iter().map(|s| s.id).collect();
    assert_eq!(running, vec![a, b]);
    assert_eq!(sim.planner.waiting.front().map(|s| s.id), Some(c));
    sim.run_to_end(100);
    assert_eq!(sim.ended_ids(), vec![a, b, c]);
}

#[test]
fn step_budget_and_prefill_cap_while_decoding() {
    // n_batch 64: a decoding sequence gets 1 token and a prefilling one at most
    // max(64 / 4, 32) = 32 while someone decodes; alone, a prompt gets all 64.
    let mut sim = Sim::new(2, 64, 0, 1000, 1000);
    let a = sim.submit(prompt(1, 10), 50);
    let w = sim.step();
    assert_eq!(w, vec![Work { seq: 0, len: 10 }]);
    sim.submit(prompt(2, 200), 1);
    let w = sim.step();
    assert_eq!(w, vec![Work { seq: 0, len: 1 }, Work { seq: 1, len: 32 }]);
    assert_eq!(sim.planner.running[0].id, a);
    // Alone, the long prompt takes whole batches.
    let mut sim = Sim::new(1, 64, 0, 1000, 1000);
    sim.submit(prompt(2, 200), 1);
    assert_eq!(sim.step(), vec![Work { seq: 0, len: 64 }]);
    for _ in 0..10 {
        let w = sim.step();
        assert!(w.iter().map(|w| w.len).sum::<usize>() <= 64);
    }
}

#[test]
fn a_shared_prefix_is_reused_and_at_least_one_token_recomputed() {
    let mut sim = Sim::new(1, 64, 2, 100, 64);
    let first = prompt(1, 10);
    sim.submit(first.clone(), 2);
    sim.run_to_end(20);
    // The next turn starts with the first turn's prompt and reply.
    let mut next = first.clone();
    next.extend([1000, 1001, 7, 8]);
    sim.submit(next.clone(), 1);
    let w = sim.step();
    // 10 prompt tokens + 1 fed-back generated token were computed (the second generated
    // token was never fed back); the other 3 run.
    assert_eq!(sim.plan.reused, 11);
    assert_eq!(w, vec![Work { seq: 0, len: 3 }]);
    sim.run_to_end(20);
    // The same prompt again: everything but its last token is reused.
    sim.submit(next.clone(), 1);
    let w = sim.step();
    assert_eq!(sim.plan.reused as usize, next.len() - 1);
    assert_eq!(w, vec![Work { seq: 0, len: 1 }]);
    sim.run_to_end(20);
    // Prompt logprobs need every prompt position computed: nothing is reused.
    sim.submit_with(next.clone(), 1, true);
    let w = sim.step();
    assert_eq!(sim.plan.reused, 0);
    assert_eq!(
        w,
        vec![Work {
            seq: 0,
            len: next.len()
        }]
    );
}

#[test]
fn a_sliding_window_slot_is_reused_only_where_its_window_is_intact() {
    let mut sim = Sim::new(1, 64, 2, 100, 64);
    sim.pool.window = Some(4);
    let first = prompt(1, 20);
    sim.submit(first.clone(), 3);
    sim.run_to_end(20);
    // The slot computed 22 positions, the last chunk starting at 21.
    // Sharing only the first 10 tokens: the window of position 10 is gone, nothing is reused.
    let mut short = first[..10].to_vec();
    short.extend([5, 6, 7]);
    sim.submit(short.clone(), 1);
    let w = sim.step();
    assert_eq!(sim.plan.reused, 0);
    assert_eq!(
        w,
        vec![Work {
            seq: 0,
            len: short.len()
        }]
    );
    sim.run_to_end(20);
    // The same prompt again: that slot's only chunk started at 0, so everything but the last
    // token is reused.
    sim.submit(short.clone(), 1);
    let w = sim.step();
    assert_eq!(sim.plan.reused as usize, short.len() - 1);
    assert_eq!(w, vec![Work { seq: 0, len: 1 }]);
    assert!(sim.pool.held.iter().sum::<usize>() <= sim.pool.total);
}

#[test]
fn cached_prefixes_are_bounded_and_least_recently_used_goes_first() {
    let mut sim = Sim::new(1, 64, 2, 100, 64);
    for p in 1..=3 {
        sim.submit(prompt(p, 6), 1);
        sim.run_to_end(20);
    }
    assert_eq!(sim.planner.cache.n_cached(), 2);
    // Prompt 1 was evicted (least recently used), prompts 2 and 3 are still there.
    assert!(sim.planner.cache.best_match(&prompt(1, 6), 5).is_none());
    assert!(sim.planner.cache.best_match(&prompt(2, 6), 5).is_some());
    assert!(sim.planner.cache.best_match(&prompt(3, 6), 5).is_some());
}

#[test]
fn pages_run_dry_cached_prefixes_go_first_then_the_youngest_is_preempted() {
    // 12 pages of 4 positions = 48 positions; two sequences of 8 + 20 tokens need 14 pages.
    let mut sim = Sim::new(2, 64, 2, 12, 64);
    sim.submit(prompt(9, 8), 1);
    sim.run_to_end(10);
    assert_eq!(sim.planner.cache.n_cached(), 1);
    let a = sim.submit(prompt(1, 8), 20);
    let b = sim.submit(prompt(2, 8), 20);
    let mut saw_preemption = false;
    for _ in 0..200 {
        if sim.planner.is_idle() {
            break;
        }
        sim.step();
        if sim.preempted > 0 && !saw_preemption {
            saw_preemption = true;
            // The cached prefix went first; the younger sequence waits at the head.
            assert_eq!(sim.planner.cache.n_cached(), 0);
            assert_eq!(
                sim.planner.running.iter().map(|s| s.id).collect::<Vec<_>>(),
                vec![a]
            );
            let w = sim.planner.waiting.front().unwrap();
            assert_eq!((w.id, w.n_computed, w.slot), (b, 0, None));
        }
    }
    assert!(saw_preemption);
    assert!(sim.planner.is_idle());
    // Both got all their tokens, one after the other.
    assert_eq!(sim.ended_ids(), vec![0, a, b]);
    assert!(sim.ended.iter().all(|(_, r)| *r == FinishReason::Length));
}

#[test]
fn a_sequence_that_cannot_fit_even_alone_ends_at_length() {
    // 2 pages = 8 positions; the prompt alone needs 3 pages.
    let mut sim = Sim::new(1, 64, 0, 2, 64);
    let a = sim.submit(prompt(1, 10), 5);
    sim.step();
    assert_eq!(sim.ended, vec![(a, FinishReason::Length)]);
    assert!(sim.planner.is_idle());
    assert_eq!(sim.pool.free_pages(), 2);
}

#[test]
fn cancellation_frees_every_page() {
    let mut sim = Sim::new(2, 64, 2, 40, 64);
    let ids: Vec<SeqId> = (0..4).map(|i| sim.submit(prompt(i, 9), 30)).collect();
    for _ in 0..3 {
        sim.step();
    }
    assert!(sim.pool.free_pages() < 40);
    let mut out = Vec::new();
    sim.planner
        .remove_where(|id| ids.contains(&id), &mut sim.pool, &mut out);
    assert_eq!(out.len(), 4);
    assert!(sim.planner.is_idle());
    // Cancelled sequences leave no cached prefix behind; nothing else holds pages.
    while sim.planner.cache.evict_lru(&mut sim.pool) {}
    assert_eq!(sim.pool.free_pages(), 40);
}

#[test]
fn every_sequence_finishes_under_pressure_and_all_pages_come_back() {
    // Many sequences, a tight page budget, small batches: whatever the interleaving, every
    // request ends with all its tokens and no page is lost.
    let mut rng = 0x9e37_79b9_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n) as usize
    };
    let mut sim = Sim::new(4, 24, 3, 16, 64);
    let mut want = Vec::new();
    for i in 0..24 {
        let len = 1 + next(30);
        let max = next(20);
        // Some prompts share a prefix with earlier ones.
        let p = if i % 3 == 0 {
            prompt(1, len)
        } else {
            prompt(i, len)
        };
        want.push((sim.submit(p, max), max));
    }
    sim.run_to_end(5000);
    assert_eq!(sim.ended_ids(), (0..24).collect::<Vec<_>>());
    assert!(sim.ended.iter().all(|(_, r)| *r == FinishReason::Length));
    while sim.planner.cache.evict_lru(&mut sim.pool) {}
    assert_eq!(sim.pool.free_pages(), 16);
    assert!(
        sim.preempted > 0,
        "the budget was meant to force pre-emption"
    );
}

#[test]
fn a_draft_widens_a_decoding_sequences_work_within_the_step_budget() {
    let mut sim = Sim::new(1, 8, 0, 1000, 1000);
    sim.submit(prompt(1, 6), 50);
    sim.step();
    assert!(sim.planner.running[0].decoding());
    // Pending token + three drafted ones, with pages for all four positions.
    sim.planner.running[0].draft = vec![7, 8, 9];
    sim.planner.schedule(&mut sim.pool, &mut sim.plan);
    assert_eq!(sim.plan.work, vec![Work { seq: 0, len: 4 }]);
    let s = &sim.planner.running[0];
    assert!(sim.pool.held[s.slot.unwrap()] * PAGE >= s.n_computed + 4);
    // A draft longer than the step allows is cut to fit.
    sim.planner.running[0].draft = vec![1; 20];
    sim.planner.schedule(&mut sim.pool, &mut sim.plan);
    assert_eq!(sim.plan.work, vec![Work { seq: 0, len: 8 }]);
    assert_eq!(sim.planner.running[0].draft.len(), 7);
    // A sequence still reading its prompt never carries a draft.
    let mut sim = Sim::new(1, 4, 0, 1000, 1000);
    sim.submit(prompt(2, 10), 5);
    sim.planner.schedule(&mut sim.pool, &mut sim.plan);
    sim.planner.running[0].draft = vec![3, 4];
    sim.planner.schedule(&mut sim.pool, &mut sim.plan);
    assert_eq!(sim.plan.work, vec![Work { seq: 0, len: 4 }]);
    assert!(sim.planner.running[0].draft.is_empty());
}

/// `tail_seed`'s tokens after a shared `prefix`.
fn with_prefix(prefix: &[u32], tail_seed: u32, tail: usize) -> Vec<u32> {
    let mut p = prefix.to_vec();
    p.extend(prompt(tail_seed, tail));
    p
}

#[test]
fn concurrent_requests_with_a_shared_prefix_compute_it_once() {
    let mut sim = Sim::new(4, 256, 0, 1000, 256);
    let system = prompt(9, 20);
    let a = sim.submit(with_prefix(&system, 1, 5), 3);
    let b = sim.submit(with_prefix(&system, 2, 6), 3);
    let c = sim.submit(with_prefix(&system, 3, 7), 3);
    // Step 1: the first computes its prompt; the others wait for the shared part.
    let w = sim.step();
    assert_eq!(w, vec![Work { seq: 0, len: 25 }]);
    assert_eq!(sim.planner.waiting.len(), 2);
    // Step 2: they copy the 20 shared rows and compute only their own tails.
    let w = sim.step();
    assert_eq!(sim.plan.reused, 40);
    // The first copies from `a`; the next from `a` or from the one that just copied.
    let slot_a = sim.planner.running[0].slot.unwrap();
    let copies = &sim.pool.copies;
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0].0, slot_a);
    assert!(copies.iter().all(|&(from, to, n)| n == 20 && from != to));
    assert_eq!(
        w,
        vec![
            Work { seq: 0, len: 1 },
            Work { seq: 1, len: 6 },
            Work { seq: 2, len: 7 }
        ]
    );
    assert_eq!(sim.planner.running[1].cached_tokens, 20);
    sim.run_to_end(50);
    assert_eq!(sim.ended_ids(), vec![a, b, c]);
}

#[test]
fn short_shared_prefixes_and_prompt_logits_neither_wait_nor_copy() {
    // 15 shared tokens (below SHARE_MIN): both run at once, nothing copied.
    let mut sim = Sim::new(2, 256, 0, 1000, 256);
    let system = prompt(9, SHARE_MIN - 1);
    sim.submit(with_prefix(&system, 1, 5), 1);
    sim.submit(with_prefix(&system, 2, 5), 1);
    assert_eq!(sim.step().len(), 2);
    assert!(sim.pool.copies.is_empty());
    // Prompt logprobs need every position computed: no waiting, no copy.
    let mut sim = Sim::new(2, 256, 0, 1000, 256);
    let system = prompt(9, 30);
    sim.submit(with_prefix(&system, 1, 5), 1);
    sim.submit_with(with_prefix(&system, 2, 5), 1, true);
    assert_eq!(sim.step().len(), 2);
    assert!(sim.pool.copies.is_empty());
    assert_eq!(sim.plan.reused, 0);
}

#[test]
fn a_source_that_decodes_is_copied_up_to_what_it_computed() {
    // The second request's prompt is the first's prompt and reply so far, and more: it
    // copies the computed rows once the first decodes and never waits on its output.
    let mut sim = Sim::new(2, 256, 0, 1000, 256);
    let first = prompt(4, 20);
    sim.submit(first.clone(), 10);
    sim.step();
    sim.step();
    // first: 20 prompt tokens + 1000 computed, 1001 pending.
    let mut next = first.clone();
    next.extend([1000, 1001, 1002, 5, 6]);
    sim.submit(next, 1);
    let w = sim.step();
    assert_eq!(sim.pool.copies.last().map(|c| c.2), Some(21));
    assert_eq!(w[1], Work { seq: 1, len: 4 });
}

#[test]
fn a_sliding_window_source_is_copied_while_it_holds_the_window() {
    // The source computes its whole prompt in one chunk (from 0): the window of the shared
    // part is intact, so the second waits a step and copies it, as without a window.
    let mut sim = Sim::new(2, 256, 0, 1000, 256);
    sim.pool.window = Some(8);
    let system = prompt(9, 30);
    sim.submit(with_prefix(&system, 1, 5), 3);
    sim.submit(with_prefix(&system, 2, 5), 3);
    assert_eq!(sim.step().len(), 1);
    let w = sim.step();
    assert_eq!(sim.pool.copies.len(), 1);
    assert_eq!(sim.pool.copies[0].2, 30);
    assert_eq!(w[1], Work { seq: 1, len: 5 });
}

#[test]
fn no_waiting_where_copies_cannot_help() {
    // A source whose sliding window has moved past the shared part (chunks of 8: its last
    // chunk starts at 32, after the 30 shared tokens) cannot give it: no wait, no copy.
    let system = prompt(9, 30);
    let mut sim = Sim::new(2, 8, 0, 1000, 256);
    sim.pool.window = Some(8);
    sim.submit(with_prefix(&system, 1, 30), 1);
    for _ in 0..5 {
        sim.step();
    }
    assert_eq!(sim.planner.running[0].n_computed, 40);
    sim.submit(with_prefix(&system, 2, 5), 1);
    sim.step();
    assert!(sim.planner.waiting.is_empty(), "admitted at once");
    assert_eq!(sim.planner.running[1].n_computed, 0);
    assert!(sim.pool.copies.is_empty());
    // The cache already holds the shared part: no wait for a running sequence computing it.
    let mut sim = Sim::new(2, 256, 2, 1000, 256);
    sim.submit(with_prefix(&system, 1, 5), 1);
    sim.run_to_end(20);
    sim.submit(with_prefix(&system, 2, 5), 3);
    sim.submit(with_prefix(&system, 3, 5), 3);
    let w = sim.step();
    assert_eq!(w.len(), 2, "both admitted: {w:?}");
    assert!(sim.plan.reused >= 30);
}
