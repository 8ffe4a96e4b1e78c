//! Grouped-query attention with RoPE and an f16 KV cache.
//!
//! Options cover the dense families: optional Q/K/V biases (Qwen2) and the RoPE pairing order;
//! and gpt-oss: an output bias, per-head attention sinks and a sliding window (a token sees
//! itself and the `window - 1` positions before it, llama.cpp's LLAMA_SWA_TYPE_STANDARD).
//! Each (token, head) pair is an independent task for the thread pool; a token attends over its
//! own sequence's cache rows `0..=pos`, so the batch may mix sequences freely.

use half::f16;
use owl_kernels::attention::{attend_head, AttnScratch as HeadScratch, HeadOptions};
use owl_kernels::norm::rms_norm_in_place;
use owl_kernels::pool::{chunking, SharedMut};
use owl_kernels::rope::RopeConfig;
use owl_kernels::{linear, linear_many, ActBuffer, QMatrix};

use crate::batch::Batch;
use crate::kv_cache::KvCache;
use crate::scratch::Compute;

pub struct Gqa {
    pub wq: QMatrix,
    pub wk: QMatrix,
    pub wv: QMatrix,
    pub wo: QMatrix,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    /// Per-head RMSNorm weights (`[head_dim]`) applied to Q and K before RoPE (Qwen3).
    pub qk_norm: Option<QkNorm>,
    /// Output projection bias (`attn_output.bias`, gpt-oss).
    pub bo: Option<Vec<f32>>,
    /// One sink logit per query head (`attn_sinks`, gpt-oss).
    pub sinks: Option<Vec<f32>>,
    /// Sliding window: keys at positions `pos - window` and older are masked.
    pub window: Option<usize>,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub rope: RopeConfig,
}

/// RMSNorm of every Q and K head, each with its own weight vector of `head_dim`.
pub struct QkNorm {
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub eps: f32,
}

impl QkNorm {
    fn apply(&self, q: &mut [f32], k: &mut [f32]) {
        for head in q.chunks_exact_mut(self.q.len()) {
            rms_norm_in_place(head, &self.q, self.eps);
        }
        for head in k.chunks_exact_mut(self.k.len()) {
            rms_norm_in_place(head, &self.k, self.eps);
        }
    }
}

/// Buffers the attention block works in.
pub struct AttnScratch<'a> {
    /// Layer index (KV-cache layer and trace names).
    pub layer: usize,
    /// [n, q_dim]
    pub q: &'a mut [f32],
    /// [n, kv_dim]
    pub k: &'a mut [f32],
    /// [n, kv_dim]
    pub v: &'a mut [f32],
    /// [n, q_dim]
    pub attn: &'a mut [f32],
    /// [n_threads][n_ctx_pad]
    pub scores: &'a mut [f32],
    /// [n_threads][n_ctx_pad + head_dim]
    pub f16s: &'a mut [f16],
    /// [n_dims / 2]
    pub cos_sin: &'a mut [(f32, f32)],
    pub act: &'a mut ActBuffer,
}

fn add_bias(x: &mut [f32], bias: &Option<Vec<f32>>) {
    if let Some(b) = bias {
        for row in x.chunks_exact_mut(b.len()) {
            for (v, &bb) in row.iter_mut().zip(b) {
                *v += bb;
            }
        }
    }
}

impl Gqa {
    /// Attention for every token of `batch`: `h` [n, n_embd] in, `out` [n, n_embd] out.
    /// The batch's K/V rows are written to `kv` at their positions first.
    pub fn forward(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        kv: &mut KvCache,
        h: &[f32],
        out: &mut [f32],
        s: AttnScratch<'_>,
    ) {
        let n = batch.n_tokens();
        let layer = s.layer;
        let hd = self.head_dim;
        let q_dim = self.n_head * hd;
        let kv_dim = self.n_head_kv * hd;
        let q = &mut s.q[..n * q_dim];
        let k = &mut s.k[..n * kv_dim];
        let v = &mut s.v[..n * kv_dim];
        linear_many(
            cx.kernels,
            cx.pool,
            h,
            n,
            &mut [
                (&self.wq, &mut *q),
                (&self.wk, &mut *k),
                (&self.wv, &mut *v),
            ],
            s.act,
        );
        add_bias(q, &self.bq);
        add_bias(k, &self.bk);
        add_bias(v, &self.bv);
        if let Some(norm) = &self.qk_norm {
            norm.apply(q, k);
            cx.trace("Qcur_normed", Some(layer), q);
            cx.trace("Kcur_normed", Some(layer), k);
        }

        let cos_sin = &mut s.cos_sin[..self.rope.n_dims / 2];
        let fused = cx.kernels.rope_fused();
        for c in &batch.chunks {
            for i in 0..c.len {
                let row = c.start + i;
                let pos = c.pos0 + i;
                self.rope.angles(pos as u32, cos_sin, fused);
                self.rope
                    .apply(&mut q[row * q_dim..(row + 1) * q_dim], hd, cos_sin, fused);
                self.rope
                    .apply(&mut k[row * kv_dim..(row + 1) * kv_dim], hd, cos_sin, fused);
                kv.store(
                    c.slot,
                    layer,
                    pos,
                    &k[row * kv_dim..(row + 1) * kv_dim],
                    &v[row * kv_dim..(row + 1) * kv_dim],
                );
            }
        }

        cx.trace("Qcur", Some(layer), q);
        cx.trace("Kcur", Some(layer), k);
        cx.trace("Vcur", Some(layer), v);
        let attn = &mut s.attn[..n * q_dim];
        let n_tasks = n * self.n_head;
        let group = self.n_head / self.n_head_kv;
        let scale = 1.0 / (hd as f32).sqrt();
        let n_pad = kv.n_ctx_pad();
        let per_scores = s.scores.len() / cx.pool.n_threads();
        let per_f16 = s.f16s.len() / cx.pool.n_threads();
        let scores = SharedMut::new(s.scores);
        let f16s = SharedMut::new(s.f16s);
        let outp = SharedMut::new(attn);
        let q = &*q;
        let kv = &*kv;
        // Row -> chunk lookup without allocation: chunks are sorted by `start`.
        let chunk_of = |row: usize| batch.chunks.partition_point(|c| c.start + c.len <= row);
        let (n_chunks, chunk_tasks) = chunking(n_tasks, cx.pool.n_threads(), 4, 1);
        cx.pool.run_chunks(n_chunks, |chunk, ith| {
            // SAFETY: each thread takes its own disjoint slices of the scratch buffers, whose
            // lengths are `n_threads` times the per-thread sizes.
            let (sc, f) = unsafe {
                (
                    scores.slice(ith * per_scores, per_scores),
                    f16s.slice(ith * per_f16, per_f16),
                )
            };
            let (p16, q16) = f.split_at_mut(n_pad);
            let mut hs = HeadScratch {
                scores: sc,
                p16,
                q16,
            };
            for task in chunk * chunk_tasks..((chunk + 1) * chunk_tasks).min(n_tasks) {
                let (row, head) = (task / self.n_head, task % self.n_head);
                let c = &batch.chunks[chunk_of(row)];
                let pos = c.pos0 + (row - c.start);
                let view = kv.head_view(c.slot, layer, head / group, hd);
                let qh = &q[row * q_dim + head * hd..row * q_dim + (head + 1) * hd];
                let opts = HeadOptions {
                    first: self.window.map_or(0, |w| (pos + 1).saturating_sub(w)),
                    sink: self.sinks.as_ref().map(|s| s[head]),
                };
                // SAFETY: task (row, head) owns attn[row][head*hd..(head+1)*hd]; tasks are
                // disjoint across threads.
                let o = unsafe { outp.slice(row * q_dim + head * hd, hd) };
                attend_head(
                    cx.kernels,
                    qh,
                    &view,
                    pos + 1,
                    scale,
                    c.tiled_attention,
                    opts,
                    &mut hs,
                    o,
                );
            }
        });
        cx.trace("kqv_out", Some(layer), attn);
        linear(cx.kernels, cx.pool, &self.wo, attn, n, out, s.act);
        add_bias(out, &self.bo);
    }
}
