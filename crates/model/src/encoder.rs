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

use owl_kernels::gelu::gelu_in_place;
use owl_kernels::{linear, linear_many, ActBuffer, Layout, QMatrix};

use crate::batch::{Batch, Logits};
use crate::blocks::bidir::attend_within_inputs;
use crate::blocks::layer_norm::LayerNorm;
use crate::hparams::HParams;
use crate::kv_cache::KvCache;
use crate::pooling::Pooling;
use crate::scratch::{Buffers, Compute, Dims};
use crate::{Model, ModelError};

/// A matrix with an optional bias: `y = W x + b`.
pub struct Affine {
    /// [rows, cols]
    pub w: QMatrix,
    /// [rows]
    pub b: Option<Vec<f32>>,
}

impl Affine {
    /// `x`: [n, cols]; `out`: [n, rows].
    fn forward(&self, cx: &Compute<'_>, x: &[f32], n: usize, out: &mut [f32], act: &mut ActBuffer) {
        let out = &mut out[..n * self.w.rows];
        linear(cx.kernels, cx.pool, &self.w, x, n, out, act);
        add_bias(out, self.b.as_deref());
    }
}

fn add_bias(out: &mut [f32], b: Option<&[f32]>) {
    if let Some(b) = b {
        for row in out.chunks_exact_mut(b.len()) {
            for (o, &x) in row.iter_mut().zip(b) {
                *o += x;
            }
        }
    }
}

pub struct EncoderLayer {
    pub q: Affine,
    pub k: Affine,
    pub v: Affine,
    pub o: Affine,
    /// After the attention's residual add.
    pub attn_out_norm: LayerNorm,
    /// [n_ff, n_embd]
    pub up: Affine,
    /// [n_embd, n_ff]
    pub down: Affine,
    /// After the FFN's residual add.
    pub out_norm: LayerNorm,
}

pub struct Encoder {
    pub hp: HParams,
    pub pooling: Pooling,
    /// [n_vocab, n_embd], row layout
    pub token_embd: QMatrix,
    /// [n_embd]: row 0 of `token_types` (every token is "sentence A", as in llama.cpp).
    pub type_embd: Option<Vec<f32>>,
    /// [n_ctx_train, n_embd], row layout
    pub pos_embd: QMatrix,
    pub embd_norm: LayerNorm,
    pub layers: Vec<EncoderLayer>,
    /// Classification head (rerankers): `tanh(cls · x + b)` then `cls_out`.
    pub cls: Option<Affine>,
    pub cls_out: Option<Affine>,
}

impl Encoder {
    /// Width of a pooled row: the classifier's outputs for `Rank`, else `n_embd`.
    pub fn n_out(&self) -> usize {
        match (self.pooling, &self.cls_out, &self.cls) {
            (Pooling::Rank, Some(c), _) => c.w.rows,
            (Pooling::Rank, None, Some(c)) => c.w.rows,
            _ => self.hp.n_embd,
        }
    }
}

impl Model for Encoder {
    fn hparams(&self) -> &HParams {
        &self.hp
    }

    fn new_paged_cache(
        &self,
        n_ctx: usize,
        n_slots: usize,
        _n_pages: usize,
        _max_chunk: usize,
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
                ("ffn_up", &l.up.w),
                ("ffn_down", &l.down.w),
            ]);
        }
        if let Some(c) = &self.cls {
            w.push(("cls", &c.w));
        }
        if let Some(c) = &self.cls_out {
            w.push(("cls.output", &c.w));
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
        let n_pos = self.pos_embd.rows;
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
        if self.pos_embd.layout != Layout::Rows {
            return Err(ModelError::NotRowLayout("position_embd.weight"));
        }
        buf.reserve(
            n,
            &Dims {
                n_embd: e,
                q_dim: e,
                kv_dim: e,
                n_ff: hp.n_ff,
                head_dim: hp.head_dim,
                n_ctx_pad: 0,
                n_threads: cx.pool.n_threads(),
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
                self.pos_embd.dequantize_row(c.pos0 + r, &mut pos_row);
                for (a, &b) in x.iter_mut().zip(&pos_row) {
                    *a += b;
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
                linear_many(
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
            let ff = &mut buf.ff_a[..n * hp.n_ff];
            l.up.forward(cx, h, n, ff, &mut buf.act);
            gelu_in_place(ff);
            l.down.forward(cx, ff, n, o, &mut buf.act);
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
        // Classification head: tanh(cls · x + b), then cls.output.
        let mut cur = pooled.to_vec();
        if let Some(cls) = &self.cls {
            let mut h = vec![0.0f32; n_in * cls.w.rows];
            cls.forward(cx, &cur, n_in, &mut h, &mut buf.act);
            for v in &mut h {
                *v = v.tanh();
            }
            cur = h;
        }
        if let Some(co) = &self.cls_out {
            let mut h = vec![0.0f32; n_in * co.w.rows];
            co.forward(cx, &cur, n_in, &mut h, &mut buf.act);
            cur = h;
        }
        out.n_vocab = self.n_out();
        out.data = cur;
    }
}
