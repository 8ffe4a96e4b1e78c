//! The post-norm encoder of the BERT family: every input seen whole, no KV cache.
//!
//! Embedding models and cross-encoder rerankers do not generate: they read an input once and
//! turn it into one vector. So this is not the decoder with a flag but its own short pass:
//! token + token-type + absolute position embeddings, a LayerNorm, then per layer
//! `x = norm(x + attn(x)); x = norm(x + ffn(x))` (LayerNorm *after* each residual add, with
//! biases everywhere, a GELU FFN without a gate), and the pooling the file states (mean, the
//! `[CLS]` token, the last token, or the `[CLS]` token through a classification head for
//! rerankers). Attention is bidirectional within each input (`blocks::bidir`), so one pass runs
//! many inputs side by side, one `Batch` chunk each, and its matrix products serve all of them
//! at once. The float order is llama.cpp's `bert` graph (`src/models/bert.cpp`,
//! `build_pooling`) on its CPU backend.

use owl_kernels::gelu::gelu_in_place_par;
use owl_kernels::rope::RopeConfig;
use owl_kernels::{linear_many_gemm, Layout, QMatrix};

use crate::batch::{Batch, Logits};
use crate::blocks::affine::{add_bias, Affine};
use crate::blocks::bidir::attend_within_inputs;
use crate::blocks::ffn::{FfnScratch, SwiGluFfn};
use crate::blocks::layer_norm::LayerNorm;
use crate::hparams::HParams;
use crate::kv_cache::KvCache;
use crate::pooling::{ClassifierHead, Pooling};
use crate::scratch::{Buffers, Compute, Dims};
use crate::tensors::part::{ATTN_K, ATTN_OUT, ATTN_Q, ATTN_V, FFN_DOWN, FFN_UP};
use crate::tensors::Tensors;
use crate::{Model, ModelError};

impl EncoderLayer {
    /// A BERT layer's tensors under `t` (`blk.N`): biased projections, a GELU FFN of `n_ff`,
    /// LayerNorms after each residual add.
    pub fn load(t: &Tensors<'_>, n_embd: usize, n_ff: usize, eps: f32) -> Result<Self, ModelError> {
        let affine = |part: &str, cols: usize, rows: usize| Affine::load(t, part, cols, rows);
        let norm = |part: &str| LayerNorm::load(t, part, n_embd, eps);
        Ok(EncoderLayer {
            q: affine(ATTN_Q, n_embd, n_embd)?,
            k: affine(ATTN_K, n_embd, n_embd)?,
            v: affine(ATTN_V, n_embd, n_embd)?,
            o: affine(ATTN_OUT, n_embd, n_embd)?,
            attn_out_norm: norm("attn_output_norm")?,
            ffn: EncoderFfn::Gelu {
                up: affine(FFN_UP, n_embd, n_ff)?,
                down: affine(FFN_DOWN, n_ff, n_embd)?,
            },
            out_norm: norm("layer_output_norm")?,
        })
    }
}

impl EncoderLayer {
    /// A nomic-bert layer: Q/K/V from the fused `attn_qkv` (or separate, whichever the file
    /// has; biases where present), a SwiGLU FFN of `n_ff` without biases, the same LayerNorms.
    pub fn load_swiglu(
        t: &Tensors<'_>,
        n_embd: usize,
        n_ff: usize,
        eps: f32,
    ) -> Result<Self, ModelError> {
        let (q, k, v) = if t.has("attn_qkv") {
            let [q, k, v] = t.split_rows("attn_qkv", n_embd, [n_embd; 3])?;
            let b = t.optional_bias("attn_qkv", 3 * n_embd)?;
            let part = |i: usize| b.as_ref().map(|b| b[i * n_embd..(i + 1) * n_embd].to_vec());
            (
                Affine { w: q, b: part(0) },
                Affine { w: k, b: part(1) },
                Affine { w: v, b: part(2) },
            )
        } else {
            (
                Affine::load(t, ATTN_Q, n_embd, n_embd)?,
                Affine::load(t, ATTN_K, n_embd, n_embd)?,
                Affine::load(t, ATTN_V, n_embd, n_embd)?,
            )
        };
        Ok(EncoderLayer {
            q,
            k,
            v,
            o: Affine::load(t, ATTN_OUT, n_embd, n_embd)?,
            attn_out_norm: LayerNorm::load(t, "attn_output_norm", n_embd, eps)?,
            ffn: EncoderFfn::SwiGlu(SwiGluFfn::load(t, n_embd, n_ff)?),
            out_norm: LayerNorm::load(t, "layer_output_norm", n_embd, eps)?,
        })
    }
}

pub struct EncoderLayer {
    pub q: Affine,
    pub k: Affine,
    pub v: Affine,
    pub o: Affine,
    /// After the attention's residual add.
    pub attn_out_norm: LayerNorm,
    pub ffn: EncoderFfn,
    /// After the FFN's residual add.
    pub out_norm: LayerNorm,
}

/// The feed-forward half of an encoder layer.
pub enum EncoderFfn {
    /// BERT: `down(gelu(up(x)))`, biased; up is [n_ff, n_embd], down [n_embd, n_ff].
    Gelu { up: Affine, down: Affine },
    /// nomic-bert: `down(silu(gate(x)) * up(x))`, no biases.
    SwiGlu(SwiGluFfn),
}

/// Where an encoder's tokens learn their positions.
pub enum Positions {
    /// BERT: a learned row per position added to the embeddings ([n_pos, n_embd], row layout).
    Absolute(QMatrix),
    /// nomic-bert: RoPE on Q and K of every layer, up to `n_pos` positions.
    Rope { rope: RopeConfig, n_pos: usize },
}

impl Positions {
    /// Positions an input may span.
    fn n_pos(&self) -> usize {
        match self {
            Positions::Absolute(m) => m.rows,
            Positions::Rope { n_pos, .. } => *n_pos,
        }
    }
}

pub struct Encoder {
    pub hp: HParams,
    pub pooling: Pooling,
    /// [n_vocab, n_embd], row layout
    pub token_embd: QMatrix,
    /// [n_embd]: row 0 of `token_types` (every token is "sentence A", as in llama.cpp).
    pub type_embd: Option<Vec<f32>>,
    pub positions: Positions,
    pub embd_norm: LayerNorm,
    pub layers: Vec<EncoderLayer>,
    /// Classification head (rerankers, `Pooling::Rank`).
    pub head: Option<ClassifierHead>,
}

impl Encoder {
    /// Width of a pooled row: the classifier's outputs for `Rank`, else `n_embd`.
    pub fn n_out(&self) -> usize {
        match (self.pooling, &self.head) {
            (Pooling::Rank, Some(h)) => h.n_out(),
            _ => self.hp.n_embd,
        }
    }
}

impl Model for Encoder {
    fn hparams(&self) -> &HParams {
        &self.hp
    }

    fn new_paged_cache_with_rollback(
        &self,
        n_ctx: usize,
        n_slots: usize,
        _n_pages: usize,
        _max_chunk: usize,
        _rollback: usize,
    ) -> KvCache {
        // No layer keeps keys or values between passes.
        KvCache::new(0, 0, n_ctx, n_slots, 0)
    }

    fn weights(&self) -> Vec<(&'static str, &QMatrix)> {
        let mut w = vec![("token_embd", &self.token_embd)];
        for l in &self.layers {
            w.extend([
                ("attn_q", &l.q.w),
                ("attn_k", &l.k.w),
                ("attn_v", &l.v.w),
                ("attn_output", &l.o.w),
            ]);
            match &l.ffn {
                EncoderFfn::Gelu { up, down } => {
                    w.extend([("ffn_up", &up.w), ("ffn_down", &down.w)]);
                }
                EncoderFfn::SwiGlu(f) => {
                    w.extend([
                        ("ffn_gate", &f.gate),
                        ("ffn_up", &f.up),
                        ("ffn_down", &f.down),
                    ]);
                }
            }
        }
        if let Some(h) = &self.head {
            w.extend(h.weights());
        }
        w
    }

    fn pooling(&self) -> Pooling {
        self.pooling
    }

    fn is_encoder(&self) -> bool {
        true
    }

    fn forward(
        &self,
        _cx: &Compute<'_>,
        _batch: &Batch,
        _kv: &mut KvCache,
        _buf: &mut Buffers,
        _logits: &mut Logits,
    ) -> Result<(), ModelError> {
        Err(ModelError::EncoderOnly(self.hp.arch.clone()))
    }

    fn encode(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        buf: &mut Buffers,
        out: &mut Logits,
    ) -> Result<(), ModelError> {
        let hp = &self.hp;
        let (n, e) = (batch.n_tokens(), hp.n_embd);
        let n_pos = self.positions.n_pos();
        for c in &batch.chunks {
            if c.pos0 + c.len > n_pos {
                return Err(ModelError::TooLong {
                    len: c.pos0 + c.len,
                    n_pos,
                });
            }
        }
        for &t in &batch.tokens {
            if t as usize >= hp.n_vocab {
                return Err(ModelError::BadToken {
                    id: t,
                    n_vocab: hp.n_vocab,
                });
            }
        }
        if self.token_embd.layout != Layout::Rows {
            return Err(ModelError::NotRowLayout("token_embd.weight"));
        }
        if let Positions::Absolute(p) = &self.positions {
            if p.layout != Layout::Rows {
                return Err(ModelError::NotRowLayout("position_embd.weight"));
            }
        }
        buf.reserve(
            n,
            &Dims {
                n_embd: e,
                q_dim: e,
                kv_dim: e,
                n_ff: hp.n_ff,
                head_dim: hp.head_dim,
            },
        );

        // [n, n_embd]: (token + type) + position, then the embedding LayerNorm.
        let mut pos_row = vec![0.0f32; e];
        for c in &batch.chunks {
            for r in 0..c.len {
                let row = c.start + r;
                let x = &mut buf.h[row * e..(row + 1) * e];
                self.token_embd
                    .dequantize_row(batch.tokens[row] as usize, x);
                if let Some(t) = &self.type_embd {
                    for (a, &b) in x.iter_mut().zip(t) {
                        *a += b;
                    }
                }
                if let Positions::Absolute(p) = &self.positions {
                    p.dequantize_row(c.pos0 + r, &mut pos_row);
                    for (a, &b) in x.iter_mut().zip(&pos_row) {
                        *a += b;
                    }
                }
            }
        }
        cx.trace("inp_embd", None, &buf.h[..n * e]);
        self.embd_norm.forward(&buf.h[..n * e], &mut buf.x[..n * e]);
        cx.trace("inp_norm", None, &buf.x[..n * e]);

        let scale = 1.0 / (hp.head_dim as f32).sqrt();
        for (li, l) in self.layers.iter().enumerate() {
            let x = &mut buf.x[..n * e];
            {
                let (q, k, v) = (
                    &mut buf.q[..n * e],
                    &mut buf.k[..n * e],
                    &mut buf.v[..n * e],
                );
                linear_many_gemm(
                    cx.kernels,
                    cx.pool,
                    x,
                    n,
                    &mut [(&l.q.w, &mut *q), (&l.k.w, &mut *k), (&l.v.w, &mut *v)],
                    &mut buf.act,
                );
                add_bias(q, l.q.b.as_deref());
                add_bias(k, l.k.b.as_deref());
                add_bias(v, l.v.b.as_deref());
                if let Positions::Rope { rope, .. } = &self.positions {
                    rotate(cx, rope, batch, hp.head_dim, q, k, &mut buf.cos_sin);
                }
                cx.trace("Qcur", Some(li), q);
                cx.trace("Kcur", Some(li), k);
                cx.trace("Vcur", Some(li), v);
                attend_within_inputs(
                    cx,
                    batch,
                    hp.n_head,
                    hp.head_dim,
                    scale,
                    q,
                    k,
                    v,
                    &mut buf.attn[..n * e],
                );
            }
            let o = &mut buf.o[..n * e];
            l.o.forward(cx, &buf.attn[..n * e], n, o, &mut buf.act);
            cx.trace("kqv_out", Some(li), o);
            // o = norm(attn + x): the residual add, then the attention output norm.
            for (a, &b) in o.iter_mut().zip(x.iter()) {
                *a += b;
            }
            let h = &mut buf.h[..n * e];
            l.attn_out_norm.forward(o, h);
            cx.trace("ffn_inp", Some(li), h);
            match &l.ffn {
                EncoderFfn::Gelu { up, down } => {
                    let ff = &mut buf.ff_a[..n * hp.n_ff];
                    up.forward(cx, h, n, ff, &mut buf.act);
                    gelu_in_place_par(cx.pool, ff);
                    down.forward(cx, ff, n, o, &mut buf.act);
                }
                EncoderFfn::SwiGlu(f) => {
                    let s = FfnScratch {
                        layer: li,
                        gate: &mut buf.ff_a,
                        up: &mut buf.ff_b,
                        act: &mut buf.act,
                    };
                    f.forward(cx, h, n, o, s);
                }
            }
            cx.trace("ffn_out", Some(li), o);
            for (a, &b) in o.iter_mut().zip(h.iter()) {
                *a += b;
            }
            l.out_norm.forward(o, x);
            cx.trace("l_out", Some(li), x);
        }
        cx.trace("result_embd", None, &buf.x[..n * e]);
        self.pool(cx, batch, buf, out);
        Ok(())
    }
}

/// RoPE on every Q and K row ([n, n_embd] each), each input's positions counted from its
/// chunk's `pos0`, as llama.cpp's `bert` graph rotates nomic-bert's heads before attention.
fn rotate(
    cx: &Compute<'_>,
    rope: &RopeConfig,
    batch: &Batch,
    head_dim: usize,
    q: &mut [f32],
    k: &mut [f32],
    cos_sin: &mut [(f32, f32)],
) {
    let e = q.len() / batch.n_tokens().max(1);
    // `Buffers::reserve` keeps head_dim pairs, at least the n_dims / 2 needed.
    let cos_sin = &mut cos_sin[..rope.n_dims / 2];
    let fused = cx.kernels.rope_fused();
    for c in &batch.chunks {
        for i in 0..c.len {
            let row = c.start + i;
            rope.angles((c.pos0 + i) as u32, cos_sin, fused);
            rope.apply(&mut q[row * e..(row + 1) * e], head_dim, cos_sin, fused);
            rope.apply(&mut k[row * e..(row + 1) * e], head_dim, cos_sin, fused);
        }
    }
}

impl Encoder {
    /// One row per chunk of `batch` from the final hidden states in `buf.x`.
    fn pool(&self, cx: &Compute<'_>, batch: &Batch, buf: &mut Buffers, out: &mut Logits) {
        let e = self.hp.n_embd;
        let n_in = batch.chunks.len();
        let x = &buf.x;
        // [n_in, n_embd] pooled hidden states
        let pooled = &mut buf.out_rows[..n_in * e];
        for (ci, c) in batch.chunks.iter().enumerate() {
            let dst = &mut pooled[ci * e..(ci + 1) * e];
            let row = |r: usize| &x[(c.start + r) * e..(c.start + r + 1) * e];
            match self.pooling {
                Pooling::Mean => {
                    // llama.cpp: a product with a column of 1/len.
                    let w = 1.0 / c.len as f32;
                    dst.fill(0.0);
                    for r in 0..c.len {
                        for (d, &v) in dst.iter_mut().zip(row(r)) {
                            *d += v * w;
                        }
                    }
                }
                Pooling::Cls | Pooling::Rank => dst.copy_from_slice(row(0)),
                Pooling::Last => dst.copy_from_slice(row(c.len.saturating_sub(1))),
            }
        }
        out.rows.clear();
        out.rows.extend((0..n_in).map(|ci| (ci, 0)));
        out.data.clear();
        if self.pooling != Pooling::Rank {
            out.n_vocab = e;
            out.data.extend_from_slice(pooled);
            return;
        }
        let cur = match &self.head {
            Some(h) => h.forward(cx, pooled, n_in, &mut buf.act),
            None => pooled.to_vec(),
        };
        out.n_vocab = self.n_out();
        out.data = cur;
    }
}
