//! Grouped-query attention with RoPE and an f16 KV cache.
//!
//! Options cover the dense families: optional Q/K/V biases (Qwen2) and the RoPE pairing order;
//! and gpt-oss: an output bias, per-head attention sinks and a sliding window (a token sees
//! itself and the `window - 1` positions before it, llama.cpp's LLAMA_SWA_TYPE_STANDARD);
//! and Gemma 3: Q scaled before attention instead of the scores.
//! Each (token, head) pair is an independent task for the thread pool; a token attends over its
//! own sequence's cache rows `0..=pos`, so the batch may mix sequences freely.

use half::f16;
use owl_kernels::attention::HeadOptions;
use owl_kernels::norm::rms_norm_in_place;
use owl_kernels::rope::RopeConfig;
use owl_kernels::{linear, linear_many, par_rows, ActBuffer, QMatrix};

use crate::batch::Batch;
use crate::blocks::attend::HeadTasks;
use crate::hparams::HParams;
use crate::kv_cache::KvCache;
use crate::lora::Target;
use crate::scratch::Compute;
use crate::tensors::Tensors;
use crate::ModelError;

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
    /// Q is multiplied by this after RoPE and the scores are not scaled again (Gemma 3's
    /// `f_attention_scale`, applied by llama.cpp with `ggml_scale` before Q meets the cache);
    /// `None`: the scores are scaled by `1/sqrt(head_dim)`.
    pub q_scale: Option<f32>,
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

impl Gqa {
    /// The layer's `attn_{q,k,v,output}` projections with whatever Q/K/V and output biases the
    /// file has (llama.cpp's loaders treat them as optional), the model's RoPE, and none of the
    /// options: an architecture that has Q/K norms, sinks, a window or a Q scale sets those
    /// fields itself (`Gqa { window, ..Gqa::load(t, hp)? }`).
    pub fn load(t: &Tensors<'_>, hp: &HParams) -> Result<Gqa, ModelError> {
        let (e, q_dim, kv_dim) = (hp.n_embd, hp.q_dim(), hp.kv_dim());
        Ok(Gqa {
            wq: t.matrix(Q, e, q_dim)?,
            wk: t.matrix(K, e, kv_dim)?,
            wv: t.matrix(V, e, kv_dim)?,
            wo: t.matrix(OUT, q_dim, e)?,
            bq: t.optional_bias(Q, q_dim)?,
            bk: t.optional_bias(K, kv_dim)?,
            bv: t.optional_bias(V, kv_dim)?,
            qk_norm: None,
            bo: t.optional_bias(OUT, e)?,
            sinks: None,
            window: None,
            q_scale: None,
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim: hp.head_dim,
            rope: hp.rope.clone(),
        })
    }

    /// [`Gqa::load`] with the Q/K/V biases required (Qwen2).
    pub fn load_biased(t: &Tensors<'_>, hp: &HParams) -> Result<Gqa, ModelError> {
        let (q_dim, kv_dim) = (hp.q_dim(), hp.kv_dim());
        Ok(Gqa {
            bq: Some(t.bias(Q, q_dim)?),
            bk: Some(t.bias(K, kv_dim)?),
            bv: Some(t.bias(V, kv_dim)?),
            ..Gqa::load(t, hp)?
        })
    }

    /// The output projection's bias (`attn_output.bias`, gpt-oss).
    pub fn load_output_bias(t: &Tensors<'_>, n_embd: usize) -> Result<Vec<f32>, ModelError> {
        t.bias(OUT, n_embd)
    }

    /// One sink logit per head (`attn_sinks`, gpt-oss).
    pub fn load_sinks(t: &Tensors<'_>, n_head: usize) -> Result<Vec<f32>, ModelError> {
        t.vector("attn_sinks", n_head)
    }
}

use crate::tensors::part::{ATTN_K as K, ATTN_OUT as OUT, ATTN_Q as Q, ATTN_V as V};

impl QkNorm {
    /// The per-head `attn_q_norm` / `attn_k_norm` weights of `head_dim` (Qwen3, Gemma 3).
    pub fn load(t: &Tensors<'_>, head_dim: usize, eps: f32) -> Result<QkNorm, ModelError> {
        Ok(QkNorm {
            q: t.vector("attn_q_norm", head_dim)?,
            k: t.vector("attn_k_norm", head_dim)?,
            eps,
        })
    }

    /// [`QkNorm::load`] when the file has `attn_q_norm` (GLM-4.5 has them on some sizes only).
    pub fn load_if_present(
        t: &Tensors<'_>,
        head_dim: usize,
        eps: f32,
    ) -> Result<Option<QkNorm>, ModelError> {
        if t.has("attn_q_norm") {
            Ok(Some(QkNorm::load(t, head_dim, eps)?))
        } else {
            Ok(None)
        }
    }

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
    /// Per-thread attention scores (grown by `HeadTasks::run`)
    pub scores: &'a mut Vec<f32>,
    /// Per-thread f16 probabilities and queries (grown by `HeadTasks::run`)
    pub f16s: &'a mut Vec<f16>,
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

/// Most rotated pairs a head's RoPE may have for the rows to be rotated on every thread (with
/// a stack buffer of angles each); longer heads take the serial loop.
const ROPE_PAIRS_MAX: usize = 256;

impl Gqa {
    /// RoPE on every token's Q and K rows, then its K and V rows into `kv`: per token, on
    /// every thread for a wide batch (`par_rows`; rows are independent, so the same bits).
    fn rope_and_store(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        kv: &mut KvCache,
        layer: usize,
        (q, k, v): (&mut [f32], &mut [f32], &[f32]),
        cos_sin: &mut [(f32, f32)],
    ) {
        let hd = self.head_dim;
        let (q_dim, kv_dim) = (self.n_head * hd, self.n_head_kv * hd);
        let pairs = self.rope.n_dims / 2;
        let fused = cx.kernels.rope_fused();
        let to_f16 = cx.kernels.scale_to_f16();
        let writer = kv.layer_writer(layer);
        // Rows `rows` of the batch, with their Q and K rows.
        let run = |rows: std::ops::Range<usize>,
                   q: &mut [f32],
                   k: &mut [f32],
                   cos_sin: &mut [(f32, f32)]| {
            for (i, row) in rows.enumerate() {
                let c = batch.chunk_of(row);
                let pos = c.pos0 + row - c.start;
                let (qr, kr) = (
                    &mut q[i * q_dim..(i + 1) * q_dim],
                    &mut k[i * kv_dim..(i + 1) * kv_dim],
                );
                self.rope.angles(pos as u32, cos_sin, fused);
                self.rope.apply(qr, hd, cos_sin, fused);
                self.rope.apply(kr, hd, cos_sin, fused);
                let vr = &v[row * kv_dim..(row + 1) * kv_dim];
                // SAFETY: a chunk's rows are distinct positions of its slot, and rows of
                // different chunks run on several threads only when no slot has two chunks
                // (`slots_once`), so no (slot, position) pair is stored twice at once.
                unsafe { writer.store(to_f16, c.slot, pos, kr, vr) };
            }
        };
        // A batch that names a slot twice could name a position twice; such a (strange but
        // legal) batch is stored in order on one thread, as before.
        let slots_once = batch
            .chunks
            .iter()
            .enumerate()
            .all(|(i, c)| batch.chunks[..i].iter().all(|b| b.slot != c.slot));
        if pairs > ROPE_PAIRS_MAX || !slots_once {
            let n = batch.n_tokens();
            run(0..n, q, k, &mut cos_sin[..pairs]);
            return;
        }
        par_rows::rows_mut2(cx.pool, (q, q_dim), (k, kv_dim), 1, |rows, q, k| {
            let mut angles = [(0f32, 0f32); ROPE_PAIRS_MAX];
            run(rows, q, k, &mut angles[..pairs]);
        });
    }

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
        cx.lora_add(layer, Target::AttnQ, h, q);
        cx.lora_add(layer, Target::AttnK, h, k);
        cx.lora_add(layer, Target::AttnV, h, v);
        add_bias(q, &self.bq);
        add_bias(k, &self.bk);
        add_bias(v, &self.bv);
        if let Some(norm) = &self.qk_norm {
            norm.apply(q, k);
            cx.trace("Qcur_normed", Some(layer), q);
            cx.trace("Kcur_normed", Some(layer), k);
        }

        self.rope_and_store(cx, batch, kv, layer, (q, k, v), s.cos_sin);

        cx.trace("Qcur", Some(layer), q);
        cx.trace("Kcur", Some(layer), k);
        cx.trace("Vcur", Some(layer), v);
        if let Some(qs) = self.q_scale {
            for x in q.iter_mut() {
                *x *= qs;
            }
        }
        let attn = &mut s.attn[..n * q_dim];
        let group = self.n_head / self.n_head_kv;
        let tasks = HeadTasks {
            n_head: self.n_head,
            group,
            q_width: hd,
            out_width: hd,
            scale: self.q_scale.map_or(1.0 / (hd as f32).sqrt(), |_| 1.0),
            n_pad: kv.n_ctx_pad(),
        };
        let kv = &*kv;
        tasks.run(
            cx,
            batch,
            q,
            attn,
            s.scores,
            s.f16s,
            |slot, head| kv.head_view(slot, layer, head / group, hd),
            |head, pos| HeadOptions {
                first: self.window.map_or(0, |w| (pos + 1).saturating_sub(w)),
                sink: self.sinks.as_ref().map(|s| s[head]),
            },
        );
        cx.trace("kqv_out", Some(layer), attn);
        linear(cx.kernels, cx.pool, &self.wo, attn, n, out, s.act);
        cx.lora_add(layer, Target::AttnOut, attn, out);
        add_bias(out, &self.bo);
    }
}
