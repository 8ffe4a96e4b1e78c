//! Buffers reused across forward passes, so decoding allocates nothing per token: each buffer
//! grows to the largest batch seen and then stays.

use half::f16;
use owl_kernels::{ActBuffer, Kernels, ThreadPool};

use crate::lora::{LoraRows, Target};

/// Working memory of one forward pass.
#[derive(Default)]
pub struct Buffers {
    /// [n_tokens, n_embd] residual stream
    pub x: Vec<f32>,
    /// [n_tokens, n_embd] normalized input of a block
    pub h: Vec<f32>,
    /// [n_tokens, n_embd] block output
    pub o: Vec<f32>,
    /// [n_tokens, q_dim]
    pub q: Vec<f32>,
    /// [n_tokens, kv_dim]
    pub k: Vec<f32>,
    /// [n_tokens, kv_dim]
    pub v: Vec<f32>,
    /// [n_tokens, q_dim] attention output before the output projection
    pub attn: Vec<f32>,
    /// [n_tokens, n_ff]
    pub ff_a: Vec<f32>,
    /// [n_tokens, n_ff]
    pub ff_b: Vec<f32>,
    /// Per-thread attention scores (`HeadTasks::run` grows it)
    pub attn_scores: Vec<f32>,
    /// Per-thread f16 probabilities and queries (`HeadTasks::run` grows it)
    pub attn_f16: Vec<f16>,
    /// [n_out, n_embd] rows that produce logits
    pub out_rows: Vec<f32>,
    /// [n_dims / 2] RoPE angles
    pub cos_sin: Vec<(f32, f32)>,
    pub act: ActBuffer,
    /// Mixture-of-experts working memory (grows on first use).
    pub moe: crate::blocks::moe::MoeBuffers,
    /// Multi-head latent attention working memory (grows on first use).
    pub mla: crate::blocks::mla::MlaBuffers,
}

fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

impl Buffers {
    /// Makes every buffer large enough for a batch of `n` tokens.
    pub fn reserve(&mut self, n: usize, d: &Dims) {
        grow(&mut self.x, n * d.n_embd);
        grow(&mut self.h, n * d.n_embd);
        grow(&mut self.o, n * d.n_embd);
        grow(&mut self.q, n * d.q_dim);
        grow(&mut self.k, n * d.kv_dim);
        grow(&mut self.v, n * d.kv_dim);
        grow(&mut self.attn, n * d.q_dim);
        grow(&mut self.ff_a, n * d.n_ff);
        grow(&mut self.ff_b, n * d.n_ff);
        grow(&mut self.out_rows, n * d.n_embd);
        if self.cos_sin.len() < d.head_dim {
            self.cos_sin.resize(d.head_dim, (0.0, 0.0));
        }
    }
}

/// The sizes buffers depend on.
pub struct Dims {
    pub n_embd: usize,
    pub q_dim: usize,
    pub kv_dim: usize,
    pub n_ff: usize,
    pub head_dim: usize,
}

/// Receives named intermediate tensors (`attn_norm-0`, `Qcur-0`, ... as llama.cpp names them),
/// row-major `[n_tokens, width]`, for layer-by-layer comparisons.
pub type TraceFn = dyn Fn(&str, &[f32]) + Send + Sync;

/// What a block needs to compute: the kernel table, the thread pool and an optional tracer.
pub struct Compute<'a> {
    pub kernels: &'a Kernels,
    pub pool: &'a ThreadPool,
    pub trace: Option<&'a TraceFn>,
    /// The batch's rows grouped by LoRA adapter; `None` when no row uses one.
    pub lora: Option<&'a LoraRows<'a>>,
}

impl Compute<'_> {
    /// Adds the LoRA products of `target` in `layer` to `y` (the matmul of `x`), for the rows
    /// whose adapter adapts it.
    pub fn lora_add(&self, layer: usize, target: Target, x: &[f32], y: &mut [f32]) {
        if let Some(l) = self.lora {
            l.add(self.pool, layer, target, x, y);
        }
    }

    /// Reports `data` as `{name}-{layer}` (or `name` when `layer` is `None`) to the tracer.
    pub fn trace(&self, name: &str, layer: Option<usize>, data: &[f32]) {
        if let Some(t) = self.trace {
            match layer {
                Some(l) => t(&format!("{name}-{l}"), data),
                None => t(name, data),
            }
        }
    }
}
