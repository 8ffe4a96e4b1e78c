//! The engine thread: one step at a time, plan → execute → commit.
//!
//! * **plan** (`plan.rs`): admission, prefix reuse, page budget and pre-emption decide which
//!   sequences advance and by how many tokens; pure, tested without a model.
//! * **execute**: the planned work becomes one ragged batch (prompt positions and generated
//!   positions in separate chunks, so each keeps its attention order) and one forward pass.
//! * **commit**: computed positions are recorded, a token is sampled for every sequence whose
//!   pending tokens are all computed, text is released through its stop-string filter, events
//!   go out, and finished sequences leave their slots as cached prefixes.
//!
//! Recomputation after pre-emption reproduces the original bits: every prompt position is
//! computed with the prompt attention order and every generated position with the decode
//! order, whatever chunks they land in. The same loop serves `owl serve` (many sequences) and
//! `owl run` / `owl chat` (one sequence): there is no other generation loop.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use owl_grammar::{GrammarError, Mask, TokenConstraint};
use owl_model::{Batch, KvCache, Logits, LogitsWanted, LoraAdapter, Runner};
use owl_sample::{top_logprobs, Sampler};
use owl_text::Tokenizer;
use tokio::sync::mpsc::UnboundedSender;

use crate::adapters::{self, Adapter, AdapterError, Registry};
use crate::api::{EngineStats, Event, Finish, FinishReason, Request, TokenLogprob};
use crate::command::Command;
use crate::config::EngineConfig;
use crate::draft::{DraftModel, DraftRequest};
use crate::error::EngineError;
use crate::lookup::{LookupDrafter, WordStarts};
use crate::plan::{Limits, Plan, Planner, SeqId, SeqState, Work};
use crate::spec::{Policy, SpecMode, StepCost};
use crate::stop::{Released, StopText};

/// The request side of a sequence: what the planner does not need.
struct Client {
    req: Box<Request>,
    events: UnboundedSender<Event>,
    cancel: Arc<AtomicBool>,
    sampler: Sampler,
    text: StopText,
    prompt_logprobs: Option<Vec<Option<TokenLogprob>>>,
    /// The grammar the reply follows, and the mask for the next token once computed.
    constraint: Option<TokenConstraint>,
    mask: Option<Result<Mask, GrammarError>>,
    /// The LoRA adapter it generates with, held until it ends (unloading its name does not
    /// take it away).
    adapter: Option<Arc<Adapter>>,
    /// When and how far it guesses ahead (speculative decoding): by prompt lookup (where its
    /// copy stands and its policy), and with the draft model (`--spec draft`), whose guesses
    /// cost a draft pass each.
    lookup: LookupDrafter,
    model_spec: Policy,
    /// Whether this step's draft came from the draft model (which policy learns from it).
    drafted_by_model: bool,
}

impl Client {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }
}

pub(crate) struct Scheduler {
    runner: Runner,
    tok: Arc<Tokenizer>,
    cfg: EngineConfig,
    stats: Arc<EngineStats>,
    queued: Arc<AtomicU64>,
    kv: KvCache,
    planner: Planner,
    clients: HashMap<SeqId, Client>,
    next_id: SeqId,
    batch: Batch,
    logits: Logits,
    plan: Plan,
    deadline: Option<Instant>,
    last_step_end: Option<Instant>,
    /// `OWL_DEBUG_STEPS` was set at start: print each step's size and time.
    debug_steps: bool,
    /// Scratch of the commit phase, kept so a warm step allocates nothing.
    finished: Vec<(usize, FinishReason)>,
    removed: Vec<SeqState>,
    /// A constrained sequence's logits with the disallowed tokens at −∞.
    masked: Vec<f32>,
    /// LoRA adapters by name.
    adapters: Registry,
    /// This step's adapters, in the order the batch's chunks index them.
    step_adapters: Vec<Arc<Adapter>>,
    /// A decoding chunk's tokens when it carries a draft (pending token, then the draft).
    drafted_chunk: Vec<u32>,
    /// What one more position costs in a decode pass (how far drafting pays).
    step_cost: StepCost,
    /// The draft model of `--spec draft`.
    draft: Option<DraftModel>,
    /// Which tokens begin a word (prompt lookup resumes a copy at one; empty with `--spec off`).
    words: WordStarts,
}

impl Scheduler {
    pub(crate) fn new(
        runner: Runner,
        tok: Arc<Tokenizer>,
        cfg: EngineConfig,
        stats: Arc<EngineStats>,
        queued: Arc<AtomicU64>,
        draft: Option<(Runner, Arc<Tokenizer>)>,
    ) -> Result<Scheduler, EngineError> {
        let n_pages = owl_model::kv_cache::pages_for(cfg.kv_budget());
        let n_slots = cfg.parallel + cfg.cache_slots;
        let kv = runner
            .model
            .new_paged_cache(cfg.n_ctx, n_slots, n_pages, cfg.n_batch);
        let draft = match (draft, cfg.spec.mode) {
            (Some((d, dtok)), SpecMode::Draft) => Some(DraftModel::new(
                d,
                &dtok,
                &tok,
                runner.model.hparams().n_vocab,
                &cfg,
                n_slots,
                n_pages,
            )?),
            (None, SpecMode::Draft) => {
                return Err(EngineError::BadConfig(
                    "speculation mode 'draft' needs a draft model (--draft-model)".into(),
                ))
            }
            (Some(_), mode) => {
                return Err(EngineError::BadConfig(format!(
                    "a draft model was given with speculation mode {mode:?}: use 'draft'"
                )))
            }
            (None, _) => None,
        };
        stats
            .kv_pages_total
            .store(n_pages as u64, Ordering::Relaxed);
        stats
            .kv_page_size
            .store(owl_kernels::attention::KV_PAGE as u64, Ordering::Relaxed);
        let limits = Limits {
            parallel: cfg.parallel,
            n_batch: cfg.n_batch,
        };
        let words = if cfg.spec.mode == SpecMode::Off {
            WordStarts::default()
        } else {
            WordStarts::new(&tok)
        };
        Ok(Scheduler {
            runner,
            tok,
            stats,
            queued,
            kv,
            planner: Planner::new(limits, n_slots, cfg.cache_slots),
            clients: HashMap::new(),
            next_id: 0,
            batch: Batch::new(),
            logits: Logits::default(),
            plan: Plan::default(),
            deadline: None,
            last_step_end: None,
            debug_steps: std::env::var_os("OWL_DEBUG_STEPS").is_some(),
            finished: Vec::new(),
            removed: Vec::new(),
            masked: Vec::new(),
            adapters: Registry::default(),
            step_adapters: Vec::new(),
            drafted_chunk: Vec::new(),
            step_cost: StepCost::default(),
            draft,
            words,
            cfg,
        })
    }

    /// Bytes of the paged KV caches (the draft model's too).
    pub(crate) fn kv_bytes(&self) -> usize {
        self.kv.bytes() + self.draft.as_ref().map_or(0, DraftModel::kv_bytes)
    }

    pub(crate) fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let idle = self.planner.is_idle();
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
                self.end_where(|_, _| true, FinishReason::Cancelled);
                break;
            }
            self.drop_cancelled();
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
                let adapter = match &req.adapter {
                    None => None,
                    Some(name) => match self.adapters.get(name) {
                        Some(a) => Some(Arc::clone(a)),
                        None => {
                            let msg = AdapterError::NotLoaded(name.clone()).to_string();
                            let _ = events
                                .send(Event::Done(finish_only(&req, FinishReason::Error(msg))));
                            return;
                        }
                    },
                };
                let id = self.next_id;
                self.next_id += 1;
                let mut seq = SeqState::new(id, req.prompt.clone(), req.prompt_logprobs);
                seq.adapter = adapter.as_ref().map_or(adapters::BASE, |a| a.id);
                let mut req = req;
                let constraint = req.constraint.take();
                let client = Client {
                    constraint,
                    mask: None,
                    text: StopText::new(&req.stop, req.render_special),
                    prompt_logprobs: req.prompt_logprobs.then(|| vec![None]),
                    req,
                    events,
                    cancel,
                    sampler,
                    adapter,
                    lookup: LookupDrafter::new(self.cfg.spec),
                    model_spec: Policy::new(self.cfg.spec),
                    drafted_by_model: false,
                };
                self.clients.insert(id, client);
                self.planner.enqueue(seq);
            }
            Command::Embed {
                inputs,
                normalize,
                reply,
            } => {
                let gate = self.cfg.gate.clone();
                let _ = reply.send(crate::embed::embed(
                    &mut self.runner,
                    gate.as_ref(),
                    self.cfg.n_batch,
                    &inputs,
                    normalize,
                ));
            }
            Command::LoadAdapter { adapter, reply } => {
                let _ = reply.send(self.adapters.add(adapter));
            }
            Command::UnloadAdapter { name, reply } => {
                let _ = reply.send(self.adapters.remove(&name));
            }
            Command::ListAdapters { reply } => {
                let _ = reply.send(self.adapters.list());
            }
            Command::Shutdown { grace } => {
                self.deadline = Some(Instant::now() + grace);
            }
        }
    }

    fn publish(&self) {
        let s = &self.stats;
        s.waiting
            .store(self.planner.waiting.len() as u64, Ordering::Relaxed);
        s.running
            .store(self.planner.running.len() as u64, Ordering::Relaxed);
        s.kv_pages_used.store(
            (self.kv.n_pages() - self.kv.free_pages()) as u64,
            Ordering::Relaxed,
        );
    }

    /// Ends the sequences whose clients cancelled or went away.
    fn drop_cancelled(&mut self) {
        if self.clients.values().any(Client::cancelled) {
            self.end_where(
                |id, clients| clients.get(&id).is_none_or(Client::cancelled),
                FinishReason::Cancelled,
            );
        }
    }

    /// Ends every sequence for which `gone` holds with `reason` (no prefix kept).
    fn end_where(
        &mut self,
        gone: impl Fn(SeqId, &HashMap<SeqId, Client>) -> bool,
        reason: FinishReason,
    ) {
        let mut removed = std::mem::take(&mut self.removed);
        let clients = &self.clients;
        self.planner
            .remove_where(|id| gone(id, clients), &mut self.kv, &mut removed);
        for seq in removed.drain(..) {
            self.report_end(seq, reason.clone());
        }
        self.removed = removed;
    }

    /// Sends `Done` for a sequence that has left the planner.
    fn report_end(&mut self, seq: SeqState, reason: FinishReason) {
        let Some(mut c) = self.clients.remove(&seq.id) else {
            return;
        };
        let text = match reason {
            FinishReason::Stop | FinishReason::Length => c.text.finish(),
            _ => String::new(),
        };
        let _ = c.events.send(Event::Done(Finish {
            reason,
            text,
            prompt_tokens: seq.prompt_len,
            cached_tokens: seq.cached_tokens,
            completion_tokens: seq.generated,
            prompt_logprobs: c.prompt_logprobs.take(),
        }));
    }

    /// One step: plan, execute, commit.
    fn step(&mut self) {
        let mut plan = std::mem::take(&mut self.plan);
        self.propose_drafts();
        self.planner.schedule(&mut self.kv, &mut plan);
        self.stats
            .prompt_tokens_cached
            .fetch_add(plan.reused, Ordering::Relaxed);
        self.stats
            .preemptions
            .fetch_add(plan.preempted, Ordering::Relaxed);
        for (seq, reason) in plan.ended.drain(..) {
            self.report_end(seq, reason);
        }
        if !plan.work.is_empty() {
            let gate = self.cfg.gate.clone();
            let pass = gate.as_ref().map(|g| g.enter());
            let executed = self.execute_and_mask(&plan.work);
            drop(pass);
            match executed {
                Ok(()) => self.commit(&plan.work),
                Err(msg) => {
                    // Fail the sequences of this batch; the others go on.
                    let mut idx: Vec<usize> = plan.work.iter().map(|w| w.seq).collect();
                    idx.sort_unstable();
                    for &i in idx.iter().rev() {
                        let seq = self.planner.finish(i, false, &mut self.kv);
                        self.report_end(seq, FinishReason::Error(msg.clone()));
                    }
                }
            }
        }
        self.plan = plan;
    }

    /// Gives each decoding sequence that may guess ahead a draft to check in this step's pass
    /// (see `crate::spec`): from its own context when that has a match, else from the draft
    /// model when there is one. Not for constrained sequences (their masks are computed one token
    /// at a time). Sliding-window caches draft too: a chunk drops only the pages its *first*
    /// position can no longer see (`PagePool::ensure`), and the next chunk starts after that
    /// position whatever is rejected, so a rejected draft never costs a page still needed.
    fn propose_drafts(&mut self) {
        if self.cfg.spec.mode == SpecMode::Off {
            return;
        }
        let n_ctx = self.cfg.n_ctx;
        let decoding = self.planner.running.iter().filter(|s| s.decoding()).count();
        // A checked position costs `beta` of a pass; a draft model's guess a draft pass too.
        let beta = self.step_cost.beta(decoding);
        let model_guess = beta
            + self
                .draft
                .as_ref()
                .map_or(0.0, |d| d.cost(self.step_cost.secs(decoding)));
        let mut asks: Vec<DraftRequest<'_>> = Vec::new();
        for s in &mut self.planner.running {
            s.draft.clear();
            if !s.decoding() {
                continue;
            }
            let Some(c) = self.clients.get_mut(&s.id) else {
                continue;
            };
            if c.constraint.is_some() {
                continue;
            }
            // Every drafted token may be accepted and one more sampled: stay within the
            // request's tokens and the context.
            let room = c
                .req
                .max_tokens
                .saturating_sub(s.generated + 1)
                .min(n_ctx.saturating_sub(s.tokens.len() + 1));
            // Prompt lookup first (its guesses cost nothing to make), then the draft model.
            c.drafted_by_model = false;
            c.lookup
                .propose(&s.tokens, beta, room, &self.words, &mut s.draft);
            if let (Some(_), Some(slot), true) = (&self.draft, s.slot, s.draft.is_empty()) {
                let max = c.model_spec.budget(model_guess).min(room);
                if max > 0 {
                    c.drafted_by_model = true;
                    asks.push(DraftRequest {
                        slot,
                        tokens: &s.tokens,
                        max,
                        out: &mut s.draft,
                    });
                }
            }
        }
        if let Some(d) = self.draft.as_mut() {
            if !asks.is_empty() {
                d.propose(&mut asks);
            }
        }
    }

    /// Runs the forward pass while the grammar masks of the constrained sequences that sample
    /// this step are computed beside it, one thread each: a mask depends only on the tokens
    /// accepted so far, so it never waits for the logits, and constrained sequences neither
    /// serialise the step nor slow the unconstrained ones in the batch.
    fn execute_and_mask(&mut self, work: &[Work]) -> Result<(), String> {
        let mut jobs = Vec::new();
        for w in work {
            let s = &self.planner.running[w.seq];
            if s.n_computed + w.len - s.draft.len() < s.tokens.len() {
                continue;
            }
            if let Some(c) = self.clients.get_mut(&s.id) {
                if c.mask.is_none() {
                    if let Some(tc) = c.constraint.take() {
                        jobs.push((s.id, tc));
                    }
                }
            }
        }
        if jobs.is_empty() {
            return self.execute(work);
        }
        std::thread::scope(|scope| {
            let running: Vec<_> = jobs
                .into_iter()
                .map(|(id, mut tc)| {
                    scope.spawn(move || {
                        let m = tc.mask();
                        (id, tc, m)
                    })
                })
                .collect();
            let result = self.execute(work);
            for h in running {
                // llguidance catches its own panics; a panic here is a bug, not a grammar.
                if let Ok((id, tc, m)) = h.join() {
                    if let Some(c) = self.clients.get_mut(&id) {
                        c.constraint = Some(tc);
                        c.mask = Some(m);
                    }
                }
            }
            result
        })
    }

    /// Builds the ragged batch of the planned work and runs the forward pass.
    fn execute(&mut self, work: &[Work]) -> Result<(), String> {
        self.batch.clear();
        self.step_adapters.clear();
        for w in work {
            let s = &self.planner.running[w.seq];
            let slot = s.slot.unwrap_or(usize::MAX);
            let adapter = self
                .clients
                .get(&s.id)
                .and_then(|c| c.adapter.as_ref())
                .map(|a| step_index(&mut self.step_adapters, a));
            // The planner cut a draft to the work's length: `end` is where known tokens end.
            let drafted = s.draft.len();
            let (p0, end) = (s.n_computed, s.n_computed + w.len - drafted);
            let last = end == s.tokens.len();
            // Prompt positions and generated positions go in separate chunks (attention order).
            let split = s.prompt_len.clamp(p0, end);
            if split > p0 {
                let wants = match (s.wants_prompt_logits, last && split == end) {
                    (true, _) => LogitsWanted::All,
                    (false, true) => LogitsWanted::Last,
                    (false, false) => LogitsWanted::None,
                };
                self.batch
                    .push_with_order(slot, p0, &s.tokens[p0..split], wants, true);
                self.batch.set_last_adapter(adapter);
            }
            if end > split && drafted > 0 {
                // The drafted positions go in the decode order like any generated position,
                // each row with its logits to check the next draft token against.
                self.drafted_chunk.clear();
                self.drafted_chunk.extend_from_slice(&s.tokens[split..end]);
                self.drafted_chunk.extend_from_slice(&s.draft);
                self.batch.push_with_order(
                    slot,
                    split,
                    &self.drafted_chunk,
                    LogitsWanted::All,
                    false,
                );
                self.batch.set_last_adapter(adapter);
            } else if end > split {
                let wants = if last {
                    LogitsWanted::Last
                } else {
                    LogitsWanted::None
                };
                self.batch
                    .push_with_order(slot, split, &s.tokens[split..end], wants, false);
                self.batch.set_last_adapter(adapter);
            }
        }
        let t0 = Instant::now();
        let lora: Vec<&LoraAdapter> = self.step_adapters.iter().map(|a| &a.lora).collect();
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.runner
                .forward_with(&self.batch, &lora, &mut self.kv, &mut self.logits)
        }));
        drop(lora);
        if self.batch.chunks.iter().all(|c| !c.tiled_attention) {
            // A decode-only step: it tells what a wider decode pass costs.
            self.step_cost
                .record(self.batch.n_tokens(), t0.elapsed().as_secs_f64());
        }
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
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("model error: {e}")),
            Err(_) => Err("internal error: the forward pass panicked".to_string()),
        }
    }

    /// Records computed positions, samples, reports, and ends finished sequences.
    fn commit(&mut self, work: &[Work]) {
        let mut finished = std::mem::take(&mut self.finished);
        finished.clear();
        // Chunk index in the batch where each work item starts, and the first logit row not
        // yet visited (rows come in chunk order).
        let mut chunk = 0;
        let mut row_cursor = 0;
        for w in work {
            let s = &mut self.planner.running[w.seq];
            let Some(c) = self.clients.get_mut(&s.id) else {
                finished.push((w.seq, FinishReason::Error("lost request".into())));
                continue;
            };
            let drafted = s.draft.len();
            let (p0, end) = (s.n_computed, s.n_computed + w.len - drafted);
            let split = s.prompt_len.clamp(p0, end);
            let n_chunks = usize::from(split > p0) + usize::from(end > split);
            self.stats
                .prompt_tokens_evaluated
                .fetch_add((split - p0) as u64, Ordering::Relaxed);
            // Prompt logprobs: row r of the prompt chunk predicts token p0 + r + 1.
            if split > p0 && s.wants_prompt_logits {
                if let Some(pl) = c.prompt_logprobs.as_mut() {
                    let n_top = c.req.logprobs.unwrap_or(0);
                    let rows = self.logits.chunk_rows(chunk, row_cursor);
                    row_cursor = rows.start;
                    for i in rows {
                        let r = self.logits.rows[i].1;
                        let next = p0 + r + 1;
                        if next < s.prompt_len && pl.len() == next {
                            let (lp, top) = top_logprobs(self.logits.row(i), s.tokens[next], n_top);
                            pl.push(Some(TokenLogprob { logprob: lp, top }));
                        }
                    }
                    if pl.len() >= s.prompt_len {
                        s.wants_prompt_logits = false;
                    }
                }
            }
            s.n_computed = end;
            let last_chunk = chunk + n_chunks - 1;
            chunk += n_chunks;
            if end < s.tokens.len() {
                continue;
            }
            // Row j of a drafted chunk follows the pending token and the first j draft tokens.
            let rows = self.logits.chunk_rows(last_chunk, row_cursor);
            row_cursor = rows.end;
            let first_row = match (rows.is_empty(), drafted > 0) {
                (true, _) => None,
                (false, true) => Some(rows.start),
                (false, false) => Some(rows.end - 1),
            };
            let Some(first_row) = first_row else {
                finished.push((
                    w.seq,
                    FinishReason::Error("no logits for the sequence".into()),
                ));
                continue;
            };
            let mut accepted = 0;
            for j in 0..=drafted {
                let row = self.logits.row(first_row + j);
                let next = next_token(
                    s,
                    c,
                    row,
                    &mut self.masked,
                    &self.tok,
                    &self.stats,
                    self.cfg.n_ctx,
                );
                match next {
                    Err(reason) => {
                        finished.push((w.seq, reason));
                        break;
                    }
                    // The drafted token was right: its K/V row, computed in this pass, stays.
                    Ok(tok) if j < drafted && tok == s.draft[j] => {
                        s.n_computed += 1;
                        accepted += 1;
                    }
                    Ok(_) => break,
                }
            }
            if drafted > 0 {
                if self.debug_steps {
                    eprintln!(
                        "spec: drafted {drafted} accepted {accepted}: {:?} → {:?} (beta alone {:.3}{})",
                        self.tok.decode(&s.draft, false),
                        self.tok.decode(&s.tokens[s.tokens.len().saturating_sub(accepted + 1)..], false),
                        self.step_cost.beta(1),
                        if c.drafted_by_model {
                            ", draft model"
                        } else {
                            ""
                        }
                    );
                }
                if c.drafted_by_model {
                    c.model_spec.record(drafted, accepted, None);
                    self.stats
                        .spec_model_drafted
                        .fetch_add(drafted as u64, Ordering::Relaxed);
                    self.stats
                        .spec_model_accepted
                        .fetch_add(accepted as u64, Ordering::Relaxed);
                } else {
                    c.lookup.record(drafted, accepted, &s.tokens);
                }
                self.stats
                    .spec_drafted
                    .fetch_add(drafted as u64, Ordering::Relaxed);
                self.stats
                    .spec_accepted
                    .fetch_add(accepted as u64, Ordering::Relaxed);
                s.draft.clear();
            }
        }
        finished.sort_by_key(|(i, _)| *i);
        for (i, reason) in finished.drain(..).rev() {
            let cache = !matches!(reason, FinishReason::Error(_));
            let seq = self.planner.finish(i, cache, &mut self.kv);
            self.report_end(seq, reason);
        }
        self.finished = finished;
    }
}

/// Samples the token that follows `s` from its logit `row` (the grammar's mask applied), appends
/// it and reports it. `Ok(token)` while the sequence goes on; `Err(why)` when it ends here.
fn next_token(
    s: &mut SeqState,
    c: &mut Client,
    row: &[f32],
    masked: &mut Vec<f32>,
    tokenizer: &Tokenizer,
    stats: &EngineStats,
    n_ctx: usize,
) -> Result<u32, FinishReason> {
    if s.generated >= c.req.max_tokens {
        return Err(FinishReason::Length);
    }
    // A constrained sequence samples from its logits with the grammar's mask applied.
    let row = match c.constraint.as_mut() {
        None => row,
        Some(tc) => {
            let mask = c.mask.take().unwrap_or_else(|| tc.mask());
            match mask {
                Ok(m) if m.count() > 0 => {
                    masked.clear();
                    masked.extend_from_slice(row);
                    m.apply(masked);
                    &masked[..]
                }
                Ok(_) => {
                    return Err(FinishReason::Error(
                        "the grammar allows no next token".into(),
                    ))
                }
                Err(e) => return Err(FinishReason::Error(e.to_string())),
            }
        }
    };
    let tok = c.sampler.sample(row, &s.tokens);
    if c.req.stop_at_eog && tokenizer.is_eog(tok) {
        return Err(FinishReason::Stop);
    }
    if let Some(tc) = c.constraint.as_mut() {
        if let Err(e) = tc.accept(tok) {
            return Err(FinishReason::Error(e.to_string()));
        }
    }
    let logprob = c.req.logprobs.map(|n| {
        let (lp, top) = top_logprobs(row, tok, n);
        TokenLogprob { logprob: lp, top }
    });
    s.tokens.push(tok);
    s.generated += 1;
    stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
    match c.text.push(tokenizer, tok) {
        Released::Text(text) => {
            let _ = c.events.send(Event::Token {
                id: tok,
                text,
                logprob,
            });
        }
        Released::Stop(before) => {
            let _ = c.events.send(Event::Token {
                id: tok,
                text: before,
                logprob,
            });
            return Err(FinishReason::Stop);
        }
    }
    if c.constraint
        .as_ref()
        .is_some_and(TokenConstraint::is_finished)
    {
        Err(FinishReason::Stop)
    } else if s.generated >= c.req.max_tokens || s.tokens.len() >= n_ctx {
        Err(FinishReason::Length)
    } else {
        Ok(tok)
    }
}

/// The index of `a` in this step's adapters, appending it on first use.
fn step_index(step: &mut Vec<Arc<Adapter>>, a: &Arc<Adapter>) -> usize {
    match step.iter().position(|x| x.id == a.id) {
        Some(i) => i,
        None => {
            step.push(Arc::clone(a));
            step.len() - 1
        }
    }
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
