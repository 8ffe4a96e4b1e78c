//! A single-sequence generation session with prefix reuse.

use std::time::{Duration, Instant};

use owl_model::{Batch, KvCache, Logits, LogitsWanted, Runner};
use owl_sample::{Sampler, SamplingParams};

use crate::EngineError;

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    Eog,
    /// `max_tokens` were generated.
    Length,
    /// The context is full.
    ContextFull,
    /// The caller's callback asked to stop.
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct GenerateParams {
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Stop when the model emits an end-of-generation token (the token is not passed on).
    pub stop_at_eog: bool,
}

/// What one `generate` call did, with timings for `--verbose`.
#[derive(Clone, Debug)]
pub struct GenerateStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV rows were reused from the previous call.
    pub reused_tokens: usize,
    pub generated: usize,
    pub prompt_time: Duration,
    pub gen_time: Duration,
    pub stop: StopReason,
}

pub struct Session {
    runner: Runner,
    kv: KvCache,
    /// Tokens whose K/V rows are in slot 0, in order.
    cached: Vec<u32>,
    batch: Batch,
    logits: Logits,
    n_batch: usize,
    history: Vec<u32>,
}

impl Session {
    /// A session with a context of `n_ctx` tokens, prefilling `n_batch` tokens per pass.
    pub fn new(runner: Runner, n_ctx: usize, n_batch: usize) -> Session {
        let kv = runner.model.new_cache(n_ctx, 1);
        Session {
            runner,
            kv,
            cached: Vec::new(),
            batch: Batch::new(),
            logits: Logits::default(),
            n_batch: n_batch.max(1),
            history: Vec::new(),
        }
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    pub fn n_ctx(&self) -> usize {
        self.kv.n_ctx()
    }

    /// Forgets the cached tokens.
    pub fn reset(&mut self) {
        self.cached.clear();
    }

    /// Evaluates `prompt` (reusing the cached prefix) and returns the logits after its last
    /// token, plus the number of reused tokens.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(&[f32], usize), EngineError> {
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if prompt.len() > self.kv.n_ctx() {
            return Err(EngineError::PromptTooLong {
                prompt: prompt.len(),
                n_ctx: self.kv.n_ctx(),
            });
        }
        let mut reuse = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        // At least one token must run to produce logits.
        reuse = reuse.min(prompt.len() - 1);
        self.cached.truncate(reuse);
        let mut pos = reuse;
        while pos < prompt.len() {
            let end = (pos + self.n_batch).min(prompt.len());
            let wants = if end == prompt.len() {
                LogitsWanted::Last
            } else {
                LogitsWanted::None
            };
            self.batch.clear();
            self.batch.push(0, pos, &prompt[pos..end], wants);
            self.runner
                .forward(&self.batch, &mut self.kv, &mut self.logits)?;
            self.cached.extend_from_slice(&prompt[pos..end]);
            pos = end;
        }
        Ok((self.logits.row(0), reuse))
    }

    /// Runs one token at the end of the cached sequence and returns its logits.
    pub fn decode(&mut self, token: u32) -> Result<&[f32], EngineError> {
        let pos = self.cached.len();
        self.batch.clear();
        self.batch.push(0, pos, &[token], LogitsWanted::Last);
        self.runner
            .forward(&self.batch, &mut self.kv, &mut self.logits)?;
        self.cached.push(token);
        Ok(self.logits.row(0))
    }

    /// Generates up to `params.max_tokens` tokens after `prompt`, calling `on_token` with each
    /// (returning `false` stops). `is_eog` says which tokens end generation.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
        is_eog: &dyn Fn(u32) -> bool,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<GenerateStats, EngineError> {
        let mut sampler = Sampler::new(params.sampling.clone())?;
        let t0 = Instant::now();
        let (_, reused) = self.prefill(prompt)?;
        let prompt_time = t0.elapsed();
        self.history.clear();
        self.history.extend_from_slice(prompt);
        let t1 = Instant::now();
        let mut generated = 0;
        let mut stop = StopReason::Length;
        while generated < params.max_tokens {
            let tok = sampler.sample(self.logits.row(0), &self.history);
            if params.stop_at_eog && is_eog(tok) {
                stop = StopReason::Eog;
                break;
            }
            generated += 1;
            self.history.push(tok);
            if !on_token(tok) {
                stop = StopReason::Cancelled;
                break;
            }
            if generated == params.max_tokens {
                break;
            }
            if self.cached.len() >= self.kv.n_ctx() {
                stop = StopReason::ContextFull;
                break;
            }
            self.decode(tok)?;
        }
        Ok(GenerateStats {
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            generated,
            prompt_time,
            gen_time: t1.elapsed(),
            stop,
        })
    }
}
