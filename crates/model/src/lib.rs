//! owl-model: architectures built from shared blocks, the KV cache and the ragged batch.
//!
//! An architecture is a short file that reads hyper-parameters and names tensors; the compute
//! lives in shared blocks (`blocks::gqa`, `blocks::ffn`, `blocks::norm`) and the shared
//! pre-norm `decoder`. Adding an architecture means one file and one line in
//! `arch::ARCHITECTURES` — nothing else matches on the architecture name.
//!
//! Every forward pass takes a `Batch` of chunks from any number of sequences, so the same code
//! serves single-user decoding, prompt prefill and continuous batching. Weights stay in the
//! memory-mapped file unless `LoadOptions::copy_weights` says otherwise, and every shape is
//! checked at load time so the forward pass never meets a malformed tensor.

pub mod arch;
pub mod batch;
pub mod blocks;
pub mod decoder;
pub mod encoder;
mod error;
pub mod hparams;
pub mod keys;
pub mod kv_cache;
pub mod kv_pages;
pub mod loader;
pub mod lora;
pub mod pooling;
mod runner;
pub mod scratch;
pub mod tensors;

use std::sync::Arc;

pub use batch::{Batch, Logits, LogitsWanted, SeqChunk};
pub use error::ModelError;
pub use hparams::HParams;
pub use kv_cache::KvCache;
pub use loader::LoadOptions;
pub use lora::{LoraAdapter, LoraError};
pub use pooling::Pooling;
pub use runner::Runner;

use owl_gguf::GgufFile;
use owl_kernels::{Kernels, QMatrix};
use scratch::{Buffers, Compute};

/// A loaded model: one forward pass over a ragged batch.
pub trait Model: Send + Sync {
    fn hparams(&self) -> &HParams;

    /// A KV cache of `n_pages` (global-layer) pages for `n_slots` sequences of up to `n_ctx`
    /// positions each, computed in chunks of at most `max_chunk` tokens (sliding-window
    /// layers reserve their window plus one such chunk per slot).
    fn new_paged_cache(
        &self,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        max_chunk: usize,
    ) -> KvCache {
        self.new_paged_cache_with_rollback(n_ctx, n_slots, n_pages, max_chunk, 0)
    }

    /// [`Model::new_paged_cache`] whose sliding-window layers also keep the `rollback`
    /// positions before each chunk's window (`KvCache::windowed_with_rollback`), so a slot
    /// can always be cut back by up to `rollback` positions and resumed: a draft model drops
    /// its rejected guesses so. The attention still sees each layer's own window.
    fn new_paged_cache_with_rollback(
        &self,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        max_chunk: usize,
        rollback: usize,
    ) -> KvCache;

    /// A KV cache with room for `n_slots` full sequences of `n_ctx` positions, in chunks of
    /// any length.
    fn new_cache(&self, n_ctx: usize, n_slots: usize) -> KvCache {
        self.new_paged_cache(n_ctx, n_slots, n_slots * kv_cache::pages_for(n_ctx), n_ctx)
    }

    /// Runs `batch`, writing its K/V rows into `kv` and the requested logits into `logits`.
    fn forward(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        kv: &mut KvCache,
        buf: &mut Buffers,
        logits: &mut Logits,
    ) -> Result<(), ModelError>;

    /// The matrices a LoRA adapter may adapt (empty: this architecture takes no adapters).
    fn lora_targets(&self) -> Vec<lora::LoraTarget> {
        Vec::new()
    }

    /// The weight matrices, by role (for `owl show` and benchmarks).
    fn weights(&self) -> Vec<(&'static str, &QMatrix)>;

    /// The shared pre-norm decoder behind this model, when it is one (fine-tuning walks its
    /// layers; an architecture with a forward pass of its own returns `None`).
    fn as_decoder(&self) -> Option<&decoder::Decoder> {
        None
    }

    /// How an input's hidden states become its embedding: the file's `{arch}.pooling_type`,
    /// else the mean.
    fn pooling(&self) -> Pooling {
        self.hparams().pooling.unwrap_or(Pooling::Mean)
    }

    /// An encoder (BERT): no KV cache, no logits; inputs go through [`Model::encode`].
    fn is_encoder(&self) -> bool {
        false
    }

    /// A decoder reranker's scores (Qwen3-Reranker): the classification head applied to `n`
    /// pooled rows (`pooled`: [n, n_embd], final-normed last-token states); [n, n_out].
    fn classify(
        &self,
        cx: &Compute<'_>,
        pooled: &[f32],
        n: usize,
        buf: &mut Buffers,
    ) -> Result<Vec<f32>, ModelError> {
        let _ = (cx, pooled, n, buf);
        Err(ModelError::NoClassifier(self.hparams().arch.clone()))
    }

    /// Encoders only: runs every chunk of `batch` as one whole input (positions from 0,
    /// attention within the chunk in both directions) and writes one pooled row per chunk to
    /// `out` (`out.rows[i] = (chunk, 0)`, `out.n_vocab` the row width: `n_embd`, or the
    /// number of classifier outputs for [`Pooling::Rank`]).
    fn encode(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        buf: &mut Buffers,
        out: &mut Logits,
    ) -> Result<(), ModelError> {
        let _ = (cx, batch, buf, out);
        Err(ModelError::NotEncoder(self.hparams().arch.clone()))
    }
}

/// Loads the model in `file` with the architecture its metadata names.
pub fn load_model(
    file: &Arc<GgufFile>,
    kernels: &Kernels,
    opts: &LoadOptions,
) -> Result<Box<dyn Model>, ModelError> {
    let entry = arch::entry_for(file)?;
    let loader = loader::Loader {
        file,
        kernels,
        opts,
    };
    (entry.load)(&loader)
}
