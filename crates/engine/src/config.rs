//! How big the serving engine is: one plain struct, read by the handle (to refuse requests that
//! cannot fit) and by the scheduler (to size the KV cache and each step).

use crate::gate::ComputeGate;
use crate::spec::SpecConfig;

/// Sizes of the serving engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Positions one sequence may hold (prompt + generated).
    pub n_ctx: usize,
    /// Sequences advanced together in one forward pass.
    pub parallel: usize,
    /// KV cache budget in positions, shared by all sequences (rounded up to whole pages).
    /// `None`: `n_ctx * parallel`.
    pub kv_tokens: Option<usize>,
    /// Most tokens in one forward pass (decode tokens plus prefill chunks).
    pub n_batch: usize,
    /// Most requests waiting to start.
    pub queue: usize,
    /// Finished sequences kept (with their KV pages, evictable) for prefix reuse.
    pub cache_slots: usize,
    /// Shared with the other engines of the process, so only one computes at a time
    /// (`None`: this engine has the cores to itself).
    pub gate: Option<ComputeGate>,
    /// Speculative decoding (guessing tokens ahead and checking them in one pass).
    pub spec: SpecConfig,
}

impl EngineConfig {
    /// A server's engine: `parallel` sequences of `n_ctx` positions.
    pub fn new(n_ctx: usize, parallel: usize) -> EngineConfig {
        EngineConfig {
            n_ctx,
            parallel,
            kv_tokens: None,
            n_batch: 512,
            queue: 256,
            cache_slots: parallel.max(4),
            gate: None,
            spec: SpecConfig::default(),
        }
    }

    /// The command line's engine: one sequence, and one cached prefix so the next turn of a
    /// chat reuses the previous one's K/V rows.
    pub fn single(n_ctx: usize) -> EngineConfig {
        EngineConfig {
            queue: 4,
            cache_slots: 1,
            ..EngineConfig::new(n_ctx, 1)
        }
    }

    /// KV positions the pool holds.
    pub fn kv_budget(&self) -> usize {
        self.kv_tokens.unwrap_or(self.n_ctx * self.parallel).max(1)
    }
}
