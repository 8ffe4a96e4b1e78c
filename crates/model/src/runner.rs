//! A model together with what it computes with: kernels, thread pool and scratch buffers.

use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_kernels::{Kernels, ThreadPool};

use crate::lora::{LoraAdapter, LoraError, LoraRows};
use crate::scratch::{Buffers, Compute, TraceFn};
use crate::{load_model, Batch, KvCache, LoadOptions, Logits, Model, ModelError};

pub struct Runner {
    pub model: Box<dyn Model>,
    pub file: Arc<GgufFile>,
    kernels: Kernels,
    pool: ThreadPool,
    buf: Buffers,
    trace: Option<Box<TraceFn>>,
}

impl Runner {
    /// Loads the model of `file` and prepares `n_threads` threads.
    pub fn new(
        file: Arc<GgufFile>,
        kernels: Kernels,
        n_threads: usize,
        opts: &LoadOptions,
    ) -> Result<Runner, ModelError> {
        let model = load_model(&file, &kernels, opts)?;
        Ok(Runner {
            model,
            file,
            kernels,
            pool: ThreadPool::new(n_threads),
            buf: Buffers::default(),
            trace: None,
        })
    }

    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }

    /// Installs a tracer that receives every named intermediate tensor of later passes.
    pub fn set_trace(&mut self, trace: Option<Box<TraceFn>>) {
        self.trace = trace;
    }

    /// One forward pass of the base model (every chunk's `adapter` must be `None`).
    pub fn forward(
        &mut self,
        batch: &Batch,
        kv: &mut KvCache,
        logits: &mut Logits,
    ) -> Result<(), ModelError> {
        self.forward_with(batch, &[], kv, logits)
    }

    /// One forward pass where a chunk's `adapter` indexes `adapters`.
    pub fn forward_with(
        &mut self,
        batch: &Batch,
        adapters: &[&LoraAdapter],
        kv: &mut KvCache,
        logits: &mut Logits,
    ) -> Result<(), ModelError> {
        let rows = LoraRows::new(batch, adapters)?;
        let cx = Compute {
            kernels: &self.kernels,
            pool: &self.pool,
            trace: self.trace.as_deref(),
            lora: (!rows.is_empty()).then_some(&rows),
        };
        self.model.forward(&cx, batch, kv, &mut self.buf, logits)
    }

    /// Loads the LoRA adapter in `file` (named `source` in messages) for this model, its
    /// products scaled by `scale` (1: as trained).
    pub fn load_adapter(
        &self,
        file: &GgufFile,
        source: &str,
        scale: f32,
    ) -> Result<LoraAdapter, LoraError> {
        let targets = self.model.lora_targets();
        crate::lora::load(file, source, &targets, &self.model.hparams().arch, scale)
    }

    /// A decoder reranker's scores for `n` pooled rows (see [`Model::classify`]).
    pub fn classify(&mut self, pooled: &[f32], n: usize) -> Result<Vec<f32>, ModelError> {
        let cx = Compute {
            kernels: &self.kernels,
            pool: &self.pool,
            trace: self.trace.as_deref(),
            lora: None,
        };
        self.model.classify(&cx, pooled, n, &mut self.buf)
    }

    /// One encoder pass (see [`Model::encode`]): every chunk of `batch` a whole input, one
    /// pooled row per chunk in `out`.
    pub fn encode(&mut self, batch: &Batch, out: &mut Logits) -> Result<(), ModelError> {
        let cx = Compute {
            kernels: &self.kernels,
            pool: &self.pool,
            trace: self.trace.as_deref(),
            lora: None,
        };
        self.model.encode(&cx, batch, &mut self.buf, out)
    }
}
