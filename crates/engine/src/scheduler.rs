//! The engine thread: continuous batching over a paged KV cache.
//!
//! Each step builds one ragged batch: a token for every decoding sequence, then prompt chunks
//! of sequences still prefilling, up to `n_batch` tokens (less while others decode, so a long
//! prompt never stalls their streams for long). New requests join between steps. KV pages are
//! claimed oldest sequence first; when the pool runs dry the engine first drops cached
//! prefixes, then pre-empts the youngest running sequence (its pages are freed, it waits at the
//! head of the queue and later recomputes its tokens). Recomputation reproduces the original
//! bits: every prompt position is computed with the prompt attention order and every generated
//! position with the decode order, whatever chunks they land in.
//!
//! Slots are KV-cache page tables. A finished sequence leaves its slot as a cached prefix
//! (pages kept, evictable, least recently used first); a new request whose tokens start the
//! same way takes that slot over and skips recomputing the shared part.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use owl_model::{Batch, KvCache, Logits, LogitsWanted, ModelError, Runner};
use owl_sample::{top_logprobs, Sampler};
use owl_text::Tokenizer;
use tokio::sync::mpsc::UnboundedSender;

use crate::api::{EngineStats, Event, Finish, FinishReason, Request, TokenLogprob};
use crate::handle::EngineConfig;
use crate::stop::{Released, StopText};
use crate::EngineError;

pub(crate) enum Command {
    Submit {
        req: Box<Request>,
        events: UnboundedSender<Event>,
        cancel: Arc<AtomicBool>,
    },
    Shutdown {
        grace: Duration,
    },
}

/// One request's sequence.
struct Seq {
    req: Box<Request>,
    events: UnboundedSender<Event>,
    cancel: Arc<AtomicBool>,
    sampler: Sampler,
    /// Prompt then generated tokens.
    tokens: Vec<u32>,
    prompt_len: usize,
    /// Positions of `tokens` whose K/V rows are in the slot.
    n_computed: usize,
    slot: usize,
    cached_tokens: usize,
    generated: usize,
    text: StopText,
    prompt_logprobs: Option<Vec<Option<TokenLogprob>>>,
}

impl Seq {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }

    fn pending(&self) -> usize {
        self.tokens.len() - self.n_computed
    }

    fn decoding(&self) -> bool {
        self.pending() == 1 && self.n_computed >= self.prompt_len
    }
}

enum SlotState {
    Free,
    Busy,
    /// A finished sequence's tokens, whose K/V rows the slot still holds.
    Cached {
        tokens: Vec<u32>,
        last_used: u64,
    },
}

/// One planned piece of work for a sequence in this step.
struct Work {
    /// Index into `running`.
    seq: usize,
    len: usize,
}

pub(crate) struct Scheduler {
    runner: Runner,
    tok: Arc<Tokenizer>,
    cfg: EngineConfig,
    stats: Arc<EngineStats>,
    queued: Arc<AtomicU64>,
    kv: KvCache,
    slots: Vec<SlotState>,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    batch: Batch,
    logits: Logits,
    clock: u64,
    deadline: Option<Instant>,
    last_step_end: Option<Instant>,
    /// `OWL_DEBUG_STEPS` was set at start: print each step's size and time.
    debug_steps: bool,
    /// This step's plan, kept between steps so planning allocates nothing once warm.
    work: Vec<Work>,
}

impl Scheduler {
    pub(crate) fn new(
        runner: Runner,
        tok: Arc<Tokenizer>,
        cfg: EngineConfig,
        stats: Arc<EngineStats>,
        queued: Arc<AtomicU64>,
    ) -> Result<Scheduler, EngineError> {
        let budget = cfg.kv_tokens.unwrap_or(cfg.n_ctx * cfg.parallel);
        let n_pages = owl_model::kv_cache::pages_for(budget.max(1));
        let n_slots = cfg.parallel + cfg.cache_slots;
        let kv = runner.model.new_paged_cache(cfg.n_ctx, n_slots, n_pages);
        stats
            .kv_pages_total
            .store(n_pages as u64, Ordering::Relaxed);
        stats
            .kv_page_size
            .store(owl_kernels::attention::KV_PAGE as u64, Ordering::Relaxed);
        Ok(Scheduler {
            runner,
            tok,
            stats,
            queued,
            kv,
            slots: (0..n_slots).map(|_| SlotState::Free).collect(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            batch: Batch::new(),
            logits: Logits::default(),
            clock: 0,
            deadline: None,
            last_step_end: None,
            debug_steps: std::env::var_os("OWL_DEBUG_STEPS").is_some(),
            work: Vec::new(),
            cfg,
        })
    }

    pub(crate) fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let idle = self.running.is_empty() && self.waiting.is_empty();
            if idle && self.deadline.is_some() {
                break;
            }
            let mut disconnected = false;
            if idle {
                match rx.recv() {
                    Ok(c) => self.command(c),
                    Err(_) => break,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(c) => self.command(c),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if disconnected && self.deadline.is_none() {
                self.deadline = Some(Instant::now());
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                self.cancel_all();
                break;
            }
            self.drop_cancelled();
            self.admit();
            self.step();
            self.publish();
        }
        self.publish();
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Submit {
                req,
                events,
                cancel,
            } => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                let sampler = match Sampler::new(req.sampling.clone()) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = events.send(Event::Done(finish_only(
                            &req,
                            FinishReason::Error(e.to_string()),
                        )));
                        return;
                    }
                };
                let prompt_logprobs = req.prompt_logprobs.then(|| vec![None]);
                let seq = Seq {
                    tokens: req.prompt.clone(),
                    prompt_len: req.prompt.len(),
                    text: StopText::new(&req.stop, req.render_special),
                    req,
                    events,
                    cancel,
                    sampler,
                    n_computed: 0,
                    slot: usize::MAX,
                    cached_tokens: 0,
                    generated: 0,
                    prompt_logprobs,
                };
                self.waiting.push_back(seq);
            }
            Command::Shutdown { grace } => {
                self.deadline = Some(Instant::now() + grace);
            }
        }
    }

    fn publish(&self) {
        let s = &self.stats;
        s.waiting
            .store(self.waiting.len() as u64, Ordering::Relaxed);
        s.running
            .store(self.running.len() as u64, Ordering::Relaxed);
        s.kv_pages_used.store(
            (self.kv.n_pages() - self.kv.free_pages()) as u64,
            Ordering::Relaxed,
        );
    }

    fn cancel_all(&mut self) {
        let all: Vec<Seq> = self
            .running
            .drain(..)
            .chain(self.waiting.drain(..))
            .collect();
        for seq in all {
            self.end(seq, FinishReason::Cancelled, false);
        }
    }

    fn drop_cancelled(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].cancelled() {
                let seq = self.running.remove(i);
                self.end(seq, FinishReason::Cancelled, false);
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].cancelled() {
                if let Some(seq) = self.waiting.remove(i) {
                    self.end(seq, FinishReason::Cancelled, false);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Sends `Done` and frees the sequence's slot (kept as a cached prefix when `cache`).
    fn end(&mut self, mut seq: Seq, reason: FinishReason, cache: bool) {
        let text = match reason {
            FinishReason::Stop | FinishReason::Length => seq.text.finish(),
            _ => String::new(),
        };
        let _ = seq.events.send(Event::Done(Finish {
            reason,
            text,
            prompt_tokens: seq.prompt_len,
            cached_tokens: seq.cached_tokens,
            completion_tokens: seq.generated,
            prompt_logprobs: seq.prompt_logprobs.take(),
        }));
        if seq.slot != usize::MAX {
            self.free_slot(
                seq.slot,
                cache.then(|| seq.tokens[..seq.n_computed].to_vec()),
            );
        }
    }

    fn free_slot(&mut self, slot: usize, cached: Option<Vec<u32>>) {
        match cached {
            Some(tokens) if !tokens.is_empty() => {
                self.clock += 1;
                self.slots[slot] = SlotState::Cached {
                    tokens,
                    last_used: self.clock,
                };
                // Keep at most `cache_slots` cached prefixes.
                let n_cached = self
                    .slots
                    .iter()
                    .filter(|s| matches!(s, SlotState::Cached { .. }))
                    .count();
                if n_cached > self.cfg.cache_slots {
                    self.evict_lru();
                }
            }
            _ => {
                self.kv.release(slot);
                self.slots[slot] = SlotState::Free;
            }
        }
    }

    /// Drops the least recently used cached prefix; false when there is none.
    fn evict_lru(&mut self) -> bool {
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
                self.kv.release(i);
                self.slots[i] = SlotState::Free;
                true
            }
            None => false,
        }
    }

    /// Starts waiting requests while there is room, each in the slot that shares the longest
    /// prefix with it (or a free one, or the least recently used cached one).
    fn admit(&mut self) {
        while self.running.len() < self.cfg.parallel {
            let Some(mut seq) = self.waiting.pop_front() else {
                break;
            };
            // Logits of every prompt position are needed for prompt logprobs: reuse nothing.
            let max_reuse = if seq.prompt_logprobs.as_ref().is_some_and(|v| v.len() == 1) {
                0
            } else {
                seq.tokens.len() - 1
            };
            let mut best: Option<(usize, usize)> = None; // (common prefix, slot)
            for (i, s) in self.slots.iter().enumerate() {
                if let SlotState::Cached { tokens, .. } = s {
                    let common = tokens
                        .iter()
                        .zip(&seq.tokens)
                        .take_while(|(a, b)| a == b)
                        .count()
                        .min(max_reuse);
                    if common > 0 && best.is_none_or(|(c, _)| common > c) {
                        best = Some((common, i));
                    }
                }
            }
            let slot = match best {
                Some((common, i)) => {
                    self.kv.truncate(i, common);
                    seq.n_computed = common;
                    if seq.generated == 0 {
                        seq.cached_tokens = common;
                        self.stats
                            .prompt_tokens_cached
                            .fetch_add(common as u64, Ordering::Relaxed);
                    }
                    i
                }
                None => {
                    let free = self.slots.iter().position(|s| matches!(s, SlotState::Free));
                    match free {
                        Some(i) => i,
                        None => {
                            if !self.evict_lru() {
                                // Cannot happen: slots outnumber running sequences.
                                self.waiting.push_front(seq);
                                break;
                            }
                            match self.slots.iter().position(|s| matches!(s, SlotState::Free)) {
                                Some(i) => i,
                                None => {
                                    self.waiting.push_front(seq);
                                    break;
                                }
                            }
                        }
                    }
                }
            };
            self.slots[slot] = SlotState::Busy;
            seq.slot = slot;
            self.running.push(seq);
        }
    }

    /// Frees pages until `need` are free: cached prefixes first, then running sequences,
    /// youngest first, down to (not including) index `keep`. False if impossible.
    fn make_room(&mut self, need: usize, keep: usize) -> bool {
        while self.kv.free_pages() < need {
            if self.evict_lru() {
                continue;
            }
            if self.running.len() <= keep + 1 {
                return false;
            }
            if let Some(seq) = self.running.pop() {
                self.preempt(seq);
            }
        }
        true
    }

    /// Frees a running sequence's pages and puts it back at the head of the queue.
    fn preempt(&mut self, mut seq: Seq) {
        self.kv.release(seq.slot);
        self.slots[seq.slot] = SlotState::Free;
        seq.slot = usize::MAX;
        seq.n_computed = 0;
        self.stats.preemptions.fetch_add(1, Ordering::Relaxed);
        self.waiting.push_front(seq);
    }

    /// Plans, runs and samples one forward pass.
    fn step(&mut self) {
        let mut work = std::mem::take(&mut self.work);
        work.clear();
        self.plan_and_run(&mut work);
        self.work = work;
    }

    fn plan_and_run(&mut self, work: &mut Vec<Work>) {
        if self.running.is_empty() {
            return;
        }
        let any_decoding = self.running.iter().any(Seq::decoding);
        let mut budget = self.cfg.n_batch;
        let prefill_cap = if any_decoding {
            (self.cfg.n_batch / 4).max(32)
        } else {
            self.cfg.n_batch
        };
        let mut prefill_used = 0;
        let mut i = 0;
        while i < self.running.len() {
            let s = &self.running[i];
            let len = if s.decoding() {
                1
            } else {
                s.pending().min(prefill_cap - prefill_used)
            };
            let len = len.min(budget);
            if len == 0 {
                i += 1;
                continue;
            }
            let need = self.kv.pages_needed(s.slot, s.n_computed + len);
            if need > 0 && !self.make_room(need, i) {
                let seq = self.running.remove(i);
                if i > 0 {
                    // Older sequences hold the pages: wait for them.
                    self.preempt(seq);
                } else {
                    // Even alone this sequence cannot get the pages: the memory budget is
                    // smaller than its context. End it as if the context were full.
                    self.end(seq, FinishReason::Length, false);
                }
                continue;
            }
            if i >= self.running.len() {
                break;
            }
            let s = &self.running[i];
            if self.kv.ensure(s.slot, s.n_computed + len).is_err() {
                let seq = self.running.remove(i);
                self.end(
                    seq,
                    FinishReason::Error("KV cache bookkeeping failed".into()),
                    false,
                );
                continue;
            }
            if !s.decoding() {
                prefill_used += len;
            }
            budget -= len;
            work.push(Work { seq: i, len });
            i += 1;
        }
        if work.is_empty() {
            return;
        }
        self.batch.clear();
        for w in work.iter() {
            let s = &self.running[w.seq];
            let (p0, end) = (s.n_computed, s.n_computed + w.len);
            let last = end == s.tokens.len();
            let all = s
                .prompt_logprobs
                .as_ref()
                .is_some_and(|v| v.len() < s.prompt_len);
            // Prompt positions and generated positions go in separate chunks (attention order).
            let split = s.prompt_len.clamp(p0, end);
            if split > p0 {
                let wants = match (all, last && split == end) {
                    (true, _) => LogitsWanted::All,
                    (false, true) => LogitsWanted::Last,
                    (false, false) => LogitsWanted::None,
                };
                self.batch
                    .push_with_order(s.slot, p0, &s.tokens[p0..split], wants, true);
            }
            if end > split {
                let wants = if last {
                    LogitsWanted::Last
                } else {
                    LogitsWanted::None
                };
                self.batch
                    .push_with_order(s.slot, split, &s.tokens[split..end], wants, false);
            }
        }
        let t0 = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.runner
                .forward(&self.batch, &mut self.kv, &mut self.logits)
        }));
        if self.debug_steps {
            eprintln!(
                "step: {} chunks {} tokens {:?} gap {:?}",
                self.batch.chunks.len(),
                self.batch.n_tokens(),
                t0.elapsed(),
                self.last_step_end.map(|t| t0 - t)
            );
        }
        self.stats.steps.fetch_add(1, Ordering::Relaxed);
        self.last_step_end = Some(Instant::now());
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(model_error(e)),
            Err(_) => Some("internal error: the forward pass panicked".to_string()),
        };
        if let Some(msg) = failure {
            // Fail the sequences of this batch; the others go on.
            let mut idx: Vec<usize> = work.iter().map(|w| w.seq).collect();
            idx.sort_unstable();
            for &i in idx.iter().rev() {
                let seq = self.running.remove(i);
                self.end(seq, FinishReason::Error(msg.clone()), false);
            }
            return;
        }
        self.after_forward(work);
    }

    /// Advances every sequence of the batch: records computed positions, samples, reports.
    fn after_forward(&mut self, work: &[Work]) {
        let mut finished: Vec<(usize, FinishReason)> = Vec::new();
        // Chunk index in the batch where each work item starts.
        let mut chunk = 0;
        for w in work {
            let s = &mut self.running[w.seq];
            let (p0, end) = (s.n_computed, s.n_computed + w.len);
            let split = s.prompt_len.clamp(p0, end);
            let n_chunks = usize::from(split > p0) + usize::from(end > split);
            let prompt_evaluated = split - p0;
            self.stats
                .prompt_tokens_evaluated
                .fetch_add(prompt_evaluated.min(s.prompt_len) as u64, Ordering::Relaxed);
            // Prompt logprobs: row r of the prompt chunk predicts token p0 + r + 1.
            if split > p0 {
                if let Some(pl) = s.prompt_logprobs.as_mut() {
                    let n_top = s.req.logprobs.unwrap_or(0);
                    for (i, &(c, r)) in self.logits.rows.iter().enumerate() {
                        if c != chunk {
                            continue;
                        }
                        let next = p0 + r + 1;
                        if next < s.prompt_len && pl.len() == next {
                            let (lp, top) = top_logprobs(self.logits.row(i), s.tokens[next], n_top);
                            pl.push(Some(TokenLogprob { logprob: lp, top }));
                        }
                    }
                }
            }
            s.n_computed = end;
            let last_chunk = chunk + n_chunks - 1;
            chunk += n_chunks;
            if end < s.tokens.len() {
                continue;
            }
            let Some(row) = self.logits.last_of_chunk(last_chunk) else {
                finished.push((
                    w.seq,
                    FinishReason::Error("no logits for the sequence".into()),
                ));
                continue;
            };
            if s.generated >= s.req.max_tokens {
                finished.push((w.seq, FinishReason::Length));
                continue;
            }
            let tok = s.sampler.sample(row, &s.tokens);
            if s.req.stop_at_eog && self.tok.is_eog(tok) {
                finished.push((w.seq, FinishReason::Stop));
                continue;
            }
            let logprob = s.req.logprobs.map(|n| {
                let (lp, top) = top_logprobs(row, tok, n);
                TokenLogprob { logprob: lp, top }
            });
            s.tokens.push(tok);
            s.generated += 1;
            self.stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
            match s.text.push(&self.tok, tok) {
                Released::Text(text) => {
                    let _ = s.events.send(Event::Token {
                        id: tok,
                        text,
                        logprob,
                    });
                }
                Released::Stop(before) => {
                    let _ = s.events.send(Event::Token {
                        id: tok,
                        text: before,
                        logprob,
                    });
                    finished.push((w.seq, FinishReason::Stop));
                    continue;
                }
            }
            if s.generated >= s.req.max_tokens || s.tokens.len() >= self.cfg.n_ctx {
                finished.push((w.seq, FinishReason::Length));
            }
        }
        finished.sort_by_key(|(i, _)| *i);
        for (i, reason) in finished.into_iter().rev() {
            let seq = self.running.remove(i);
            let cache = !matches!(reason, FinishReason::Error(_));
            self.end(seq, reason, cache);
        }
    }
}

fn model_error(e: ModelError) -> String {
    format!("model error: {e}")
}

fn finish_only(req: &Request, reason: FinishReason) -> Finish {
    Finish {
        reason,
        text: String::new(),
        prompt_tokens: req.prompt.len(),
        cached_tokens: 0,
        completion_tokens: 0,
        prompt_logprobs: None,
    }
}
