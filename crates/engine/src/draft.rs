//! Speculation with a draft model (`--spec draft --draft-model M`): a smaller model of the same
//! vocabulary guesses the next tokens greedily, and the main model checks them in one pass
//! exactly as it checks prompt-lookup guesses (`crate::spec`, `Scheduler::commit`), so the
//! reply is the unspeculated reply whatever the draft model says; only the speed depends on it.
//!
//! **State.** The draft model has its own runner and paged KV cache, with a slot for every slot
//! of the main cache: a sequence drafts in the slot number it holds in the main cache. Each
//! draft slot remembers the tokens whose K/V rows it holds (`held`). Before drafting, the
//! sequence's tokens are compared with them: the common prefix stays, the rest is recomputed.
//! That one rule covers everything that can happen between two drafts: accepted and rejected
//! guesses, a reused cached prefix, pre-emption, and sequences that skipped drafting a while.
//!
//! **A step's drafting**, batched over the drafting sequences: one pass catches each up to its
//! pending token (the token sampled but not yet computed) and yields its first guess, the
//! argmax of that position's logits; then one pass per further guess, one position per
//! sequence still guessing. Prompts longer than the batch are caught up over several passes.
//!
//! **Cost.** Each guess costs a draft pass, so the policy weighs it: [`DraftModel::cost`] is a
//! draft pass's time relative to a main pass, added to what a checked position costs
//! (`crate::spec::Policy::budget`).

use std::time::Instant;

use owl_model::{Batch, KvCache, Logits, LogitsWanted, Runner};
use owl_text::Tokenizer;

use crate::config::EngineConfig;
use crate::error::EngineError;

/// A sequence asking for a draft: its slot, its tokens (the last one pending), how many guesses
/// it may make, and where they go.
pub(crate) struct DraftRequest<'a> {
    pub slot: usize,
    pub tokens: &'a [u32],
    pub max: usize,
    pub out: &'a mut Vec<u32>,
}

/// The draft model and its cache.
pub(crate) struct DraftModel {
    runner: Runner,
    kv: KvCache,
    /// Per slot: the tokens whose K/V rows the slot holds, positions `0..held.len()`.
    held: Vec<Vec<u32>>,
    /// Guesses are cut to the main model's vocabulary.
    n_vocab_main: usize,
    n_batch: usize,
    batch: Batch,
    logits: Logits,
    /// Exponentially weighted seconds of a one-position-per-sequence draft pass.
    pass_secs: Option<f64>,
}

/// Most tokens by which the two vocabularies may differ in size (padding rows of the
/// embedding matrices); every shared id must be the same token.
const VOCAB_SLACK: usize = 128;

impl DraftModel {
    /// Checks that `runner` can draft for a main model of tokenizer `main` and `n_vocab_main`
    /// logits, and gives it a cache of `n_slots` slots sharing `n_pages` pages, with the
    /// context and batch sizes of `cfg`.
    pub fn new(
        runner: Runner,
        draft_tok: &Tokenizer,
        main: &Tokenizer,
        n_vocab_main: usize,
        cfg: &EngineConfig,
        n_slots: usize,
        n_pages: usize,
    ) -> Result<DraftModel, EngineError> {
        let (n_ctx, n_batch) = (cfg.n_ctx, cfg.n_batch);
        let bad = |why: String| EngineError::BadConfig(format!("the draft model {why}"));
        if runner.model.is_encoder() {
            return Err(bad("is an encoder: it cannot generate".into()));
        }
        check_draft_vocabulary(draft_tok, main).map_err(bad)?;
        // Guesses fed to a sliding-window model move its window on; the pool keeps the
        // positions a rollback of every guess needs (see `prepare`).
        let kv = runner.model.new_paged_cache_with_rollback(
            n_ctx,
            n_slots,
            n_pages,
            n_batch,
            cfg.spec.max_draft,
        );
        Ok(DraftModel {
            runner,
            kv,
            held: vec![Vec::new(); n_slots],
            n_vocab_main,
            n_batch: n_batch.max(1),
            batch: Batch::new(),
            logits: Logits::default(),
            pass_secs: None,
        })
    }

    /// Bytes of the draft model's KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.kv.bytes()
    }

    /// A one-position draft pass's time relative to a main pass of `main_secs` (a prior before
    /// the first measurement).
    pub fn cost(&self, main_secs: Option<f64>) -> f64 {
        match (self.pass_secs, main_secs) {
            (Some(d), Some(m)) if m > 0.0 => (d / m).clamp(0.0, 2.0),
            _ => 0.2,
        }
    }

    /// Writes up to `r.max` greedy guesses into each `r.out`. A request whose slot cannot get
    /// pages, or a pass that fails, gets fewer (maybe none): drafting is only ever an offer.
    pub fn propose(&mut self, reqs: &mut [DraftRequest<'_>]) {
        let busy: Vec<usize> = reqs.iter().map(|r| r.slot).collect();
        for r in reqs.iter_mut() {
            r.out.clear();
            if r.max > 0 && !r.tokens.is_empty() && !self.prepare(r, &busy) {
                r.max = 0;
            }
        }
        // Catch up to the pending token; its logits give the first guess.
        loop {
            self.batch.clear();
            let mut room = self.n_batch;
            let mut members = Vec::new();
            for (i, r) in reqs.iter().enumerate() {
                let have = self.held[r.slot].len();
                if r.max == 0 || have >= r.tokens.len() || room == 0 {
                    continue;
                }
                let n = (r.tokens.len() - have).min(room);
                let last = have + n == r.tokens.len();
                let wants = if last {
                    LogitsWanted::Last
                } else {
                    LogitsWanted::None
                };
                self.batch
                    .push(r.slot, have, &r.tokens[have..have + n], wants);
                room -= n;
                members.push((i, n, last));
            }
            if members.is_empty() {
                break;
            }
            if !self.forward() {
                return self.abandon(reqs);
            }
            for (chunk, &(i, n, last)) in members.iter().enumerate() {
                let r = &mut reqs[i];
                let have = self.held[r.slot].len();
                self.held[r.slot].extend_from_slice(&r.tokens[have..have + n]);
                if last {
                    self.guess(chunk, r);
                }
            }
        }
        // Then one position per sequence that guesses further.
        let t0 = Instant::now();
        let mut passes = 0u32;
        loop {
            self.batch.clear();
            let mut members = Vec::new();
            for (i, r) in reqs.iter().enumerate() {
                if r.out.is_empty() || r.out.len() >= r.max {
                    continue;
                }
                let (pos, tok) = (r.tokens.len() + r.out.len() - 1, r.out[r.out.len() - 1]);
                self.batch.push(r.slot, pos, &[tok], LogitsWanted::Last);
                members.push(i);
            }
            if members.is_empty() {
                break;
            }
            if !self.forward() {
                return self.abandon(reqs);
            }
            passes += 1;
            for (chunk, &i) in members.iter().enumerate() {
                let r = &mut reqs[i];
                let fed = r.out[r.out.len() - 1];
                self.held[r.slot].push(fed);
                self.guess(chunk, r);
            }
        }
        if passes > 0 {
            let secs = t0.elapsed().as_secs_f64() / f64::from(passes);
            self.pass_secs = Some(match self.pass_secs {
                Some(s) => 0.8 * s + 0.2 * secs,
                None => secs,
            });
        }
    }

    /// Keeps what the slot holds of `r.tokens` (never the pending token itself, whose logits
    /// give the first guess: the slot is cut back past every rejected guess, at most
    /// `max_draft` positions, which a sliding-window cache made `with_rollback` keeps) and
    /// gives it pages through the last guess, freeing the slots of
    /// sequences that do not draft in this call (not in `busy`) if pages run out. `false`: no
    /// pages even so.
    fn prepare(&mut self, r: &DraftRequest<'_>, busy: &[usize]) -> bool {
        let held = &self.held[r.slot];
        let common = held
            .iter()
            .zip(r.tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(r.tokens.len() - 1);
        let kept = self.kv.truncate(r.slot, common);
        self.held[r.slot].truncate(kept);
        // The last guess is never fed back: positions up to len + max - 1.
        let end = r.tokens.len() + r.max - 1;
        if self.kv.ensure_chunk(r.slot, kept, end).is_ok() {
            return true;
        }
        // Out of pages: free the slots of sequences that are not drafting now.
        for s in 0..self.held.len() {
            if !busy.contains(&s) && !self.held[s].is_empty() {
                self.kv.release(s);
                self.held[s].clear();
            }
        }
        self.kv.ensure_chunk(r.slot, kept, end).is_ok()
    }

    /// One draft pass over `self.batch`; `false` when it failed or panicked.
    fn forward(&mut self) -> bool {
        let (batch, kv, logits) = (&self.batch, &mut self.kv, &mut self.logits);
        let runner = &mut self.runner;
        matches!(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                runner.forward(batch, kv, logits)
            })),
            Ok(Ok(()))
        )
    }

    /// Appends the argmax of chunk `chunk`'s last logits to `r.out`; a guess outside the main
    /// model's vocabulary ends the draft.
    fn guess(&mut self, chunk: usize, r: &mut DraftRequest<'_>) {
        let Some(row) = self.logits.last_of_chunk(chunk) else {
            r.max = r.out.len();
            return;
        };
        let best = owl_sample::argmax_of_logits(row);
        if (best as usize) < self.n_vocab_main {
            r.out.push(best);
        } else {
            r.max = r.out.len();
        }
    }

    /// After a failed pass: no guesses this step, and every slot starts afresh.
    fn abandon(&mut self, reqs: &mut [DraftRequest<'_>]) {
        for r in reqs.iter_mut() {
            r.out.clear();
        }
        for s in 0..self.held.len() {
            self.kv.release(s);
            self.held[s].clear();
        }
    }
}

/// Whether a model of tokenizer `draft` can guess tokens for one of tokenizer `main`: the
/// same tokens under the same ids (sizes may differ by a few padding ids). `Err` says how
/// they differ, as the end of a sentence that starts with "the draft model".
pub fn check_draft_vocabulary(draft: &Tokenizer, main: &Tokenizer) -> Result<(), String> {
    let (a, b) = (main.vocab_size(), draft.vocab_size());
    if a.abs_diff(b) > VOCAB_SLACK {
        return Err(format!(
            "has a vocabulary of {b} tokens, the model {a}: they must share one"
        ));
    }
    match (0..a.min(b) as u32).find(|&i| main.token_text(i) != draft.token_text(i)) {
        Some(id) => Err(format!(
            "has another vocabulary: token {id} is {:?} there, {:?} in the model",
            draft.token_text(id).unwrap_or(""),
            main.token_text(id).unwrap_or("")
        )),
        None => Ok(()),
    }
}
