//! The pre-norm decoder-only transformer shared by the dense architectures:
//! `x += attn(norm(x)); x += ffn(norm(x))` per layer, then a final norm and the output head.

use owl_kernels::{linear, Layout, QMatrix};

use crate::batch::{Batch, Logits};
use crate::blocks::ffn::{FfnScratch, SwiGluFfn};
use crate::blocks::gqa::{AttnScratch, Gqa};
use crate::blocks::mla::{Mla, MlaQuery};
use crate::blocks::moe::MoeFfn;
use crate::blocks::norm::RmsNorm;
use crate::hparams::HParams;
use crate::kv_cache::KvCache;
use crate::lora::{LoraTarget, Target};
use crate::pooling::ClassifierHead;
use crate::scratch::{Buffers, Compute, Dims};
use crate::{Model, ModelError};

pub struct DecoderLayer {
    pub attn_norm: RmsNorm,
    pub attn: AttnBlock,
    pub ffn_norm: RmsNorm,
    pub ffn: FfnBlock,
}

/// The attention half of a layer: grouped-query, or multi-head latent attention.
pub enum AttnBlock {
    Gqa(Gqa),
    Mla(Mla),
}

/// The feed-forward half of a layer: dense, or a mixture of experts.
pub enum FfnBlock {
    Dense(SwiGluFfn),
    Moe(Box<MoeFfn>),
}

pub struct Decoder {
    pub hp: HParams,
    /// [n_vocab, n_embd]
    pub token_embd: QMatrix,
    pub layers: Vec<DecoderLayer>,
    pub output_norm: RmsNorm,
    /// [n_vocab, n_embd]; may share bytes with `token_embd` (tied embeddings).
    pub output: QMatrix,
    /// A reranker's classification head (`Pooling::Rank`: Qwen3-Reranker).
    pub head: Option<ClassifierHead>,
}

impl Decoder {
    fn dims(&self) -> Dims {
        // Latent attention keeps its own buffers (`MlaBuffers`): no GQA rows to size.
        let gqa = !matches!(
            self.layers.first().map(|l| &l.attn),
            Some(AttnBlock::Mla(_))
        );
        Dims {
            n_embd: self.hp.n_embd,
            q_dim: if gqa { self.hp.q_dim() } else { 0 },
            kv_dim: if gqa { self.hp.kv_dim() } else { 0 },
            n_ff: self.hp.n_ff,
            head_dim: self.hp.head_dim,
        }
    }
}

impl Model for Decoder {
    fn hparams(&self) -> &HParams {
        &self.hp
    }

    fn new_paged_cache_with_rollback(
        &self,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        max_chunk: usize,
        rollback: usize,
    ) -> KvCache {
        match self.layers.first().map(|l| &l.attn) {
            Some(AttnBlock::Mla(m)) => {
                KvCache::new_latent(self.hp.n_layer, m.cache_width(), n_ctx, n_slots, n_pages)
            }
            _ => {
                let windows: Vec<Option<usize>> = (self.layers.iter())
                    .map(|l| match &l.attn {
                        AttnBlock::Gqa(a) => a.window,
                        AttnBlock::Mla(_) => None,
                    })
                    .collect();
                let kv_dim = self.hp.kv_dim();
                KvCache::windowed_with_rollback(
                    &windows, kv_dim, n_ctx, n_slots, n_pages, max_chunk, rollback,
                )
            }
        }
    }

    fn classify(
        &self,
        cx: &Compute<'_>,
        pooled: &[f32],
        n: usize,
        buf: &mut Buffers,
    ) -> Result<Vec<f32>, ModelError> {
        match &self.head {
            Some(h) => Ok(h.forward(cx, pooled, n, &mut buf.act)),
            None => Err(ModelError::NoClassifier(self.hp.arch.clone())),
        }
    }

    fn lora_targets(&self) -> Vec<LoraTarget> {
        let mut out = Vec::new();
        let mut push = |layer, target, m: &QMatrix| {
            out.push(LoraTarget {
                layer,
                target,
                n_in: m.cols,
                n_out: m.rows,
            })
        };
        for (li, l) in self.layers.iter().enumerate() {
            if let AttnBlock::Gqa(a) = &l.attn {
                push(li, Target::AttnQ, &a.wq);
                push(li, Target::AttnK, &a.wk);
                push(li, Target::AttnV, &a.wv);
                push(li, Target::AttnOut, &a.wo);
            }
            if let FfnBlock::Dense(f) = &l.ffn {
                push(li, Target::FfnGate, &f.gate);
                push(li, Target::FfnUp, &f.up);
                push(li, Target::FfnDown, &f.down);
            }
        }
        out
    }

    fn as_decoder(&self) -> Option<&Decoder> {
        Some(self)
    }

    fn weights(&self) -> Vec<(&'static str, &QMatrix)> {
        let mut w = vec![("token_embd", &self.token_embd)];
        for l in &self.layers {
            match &l.attn {
                AttnBlock::Gqa(a) => w.extend([
                    ("attn_q", &a.wq),
                    ("attn_k", &a.wk),
                    ("attn_v", &a.wv),
                    ("attn_output", &a.wo),
                ]),
                AttnBlock::Mla(m) => {
                    match &m.q {
                        MlaQuery::Direct(q) => w.push(("attn_q", q)),
                        MlaQuery::LowRank { a, b, .. } => {
                            w.extend([("attn_q_a", a), ("attn_q_b", b)]);
                        }
                    }
                    w.push(("attn_kv_a_mqa", &m.wkv_a));
                    w.extend(m.wk_b.iter().map(|x| ("attn_k_b", x)));
                    w.extend(m.wv_b.iter().map(|x| ("attn_v_b", x)));
                    w.push(("attn_output", &m.wo));
                }
            }
            match &l.ffn {
                FfnBlock::Dense(f) => {
                    w.extend([
                        ("ffn_gate", &f.gate),
                        ("ffn_up", &f.up),
                        ("ffn_down", &f.down),
                    ]);
                }
                FfnBlock::Moe(m) => {
                    w.push(("ffn_gate_inp", &m.router));
                    if let Some(f) = &m.shared {
                        w.extend([
                            ("ffn_gate_shexp", &f.gate),
                            ("ffn_up_shexp", &f.up),
                            ("ffn_down_shexp", &f.down),
                        ]);
                    }
                    for f in &m.experts {
                        w.extend([
                            ("ffn_gate_exps", &f.gate),
                            ("ffn_up_exps", &f.up),
                            ("ffn_down_exps", &f.down),
                        ]);
                    }
                }
            }
        }
        w.push(("output", &self.output));
        w
    }

    fn forward(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        kv: &mut KvCache,
        buf: &mut Buffers,
        logits: &mut Logits,
    ) -> Result<(), ModelError> {
        let n = batch.n_tokens();
        let e = self.hp.n_embd;
        let dims = self.dims();
        embed(&self.hp, &self.token_embd, batch, kv, buf, &dims)?;
        for (li, layer) in self.layers.iter().enumerate() {
            let x = &mut buf.x[..n * e];
            let h = &mut buf.h[..n * e];
            let o = &mut buf.o[..n * e];
            layer.attn_norm.forward_par(cx.pool, x, h);
            cx.trace("attn_norm", Some(li), h);
            match &layer.attn {
                AttnBlock::Gqa(attn) => {
                    let scratch = AttnScratch {
                        layer: li,
                        q: &mut buf.q,
                        k: &mut buf.k,
                        v: &mut buf.v,
                        attn: &mut buf.attn,
                        scores: &mut buf.attn_scores,
                        f16s: &mut buf.attn_f16,
                        cos_sin: &mut buf.cos_sin,
                        act: &mut buf.act,
                    };
                    attn.forward(cx, batch, kv, h, o, scratch);
                }
                AttnBlock::Mla(mla) => {
                    mla.forward(cx, batch, kv, li, h, o, &mut buf.mla, &mut buf.act);
                }
            }
            cx.trace("attn_out", Some(li), o);
            for (a, b) in x.iter_mut().zip(o.iter()) {
                *a += *b;
            }
            cx.trace("ffn_inp", Some(li), x);
            layer.ffn_norm.forward_par(cx.pool, x, h);
            cx.trace("ffn_norm", Some(li), h);
            match &layer.ffn {
                FfnBlock::Dense(ffn) => {
                    let scratch = FfnScratch {
                        layer: li,
                        gate: &mut buf.ff_a,
                        up: &mut buf.ff_b,
                        act: &mut buf.act,
                    };
                    ffn.forward(cx, h, n, o, scratch);
                }
                FfnBlock::Moe(moe) => moe.forward(cx, li, h, n, o, &mut buf.moe, &mut buf.act),
            }
            cx.trace("ffn_out", Some(li), o);
            for (a, b) in x.iter_mut().zip(o.iter()) {
                *a += *b;
            }
            cx.trace("l_out", Some(li), x);
        }

        head(
            cx,
            &self.hp,
            &self.output_norm,
            &self.output,
            batch,
            buf,
            logits,
        );
        Ok(())
    }
}

/// The start of every decoder's forward pass: checks the batch's tokens against the vocabulary,
/// makes room for its positions in `kv`, sizes `buf` and writes the token embeddings to `buf.x`
/// ([n, n_embd], read row by row: only the file's row layout serves that, a repacked matrix has
/// no rows to give and would embed every token as zeros).
pub fn embed(
    hp: &HParams,
    token_embd: &QMatrix,
    batch: &Batch,
    kv: &mut KvCache,
    buf: &mut Buffers,
    dims: &Dims,
) -> Result<(), ModelError> {
    let e = hp.n_embd;
    for c in &batch.chunks {
        kv.ensure_chunk(c.slot, c.pos0, c.pos0 + c.len)?;
    }
    for &t in &batch.tokens {
        if t as usize >= hp.n_vocab {
            return Err(ModelError::BadToken {
                id: t,
                n_vocab: hp.n_vocab,
            });
        }
    }
    buf.reserve(batch.n_tokens(), dims);
    if token_embd.layout != Layout::Rows {
        return Err(ModelError::NotRowLayout("token_embd.weight"));
    }
    for (row, &t) in batch.tokens.iter().enumerate() {
        token_embd.dequantize_row(t as usize, &mut buf.x[row * e..(row + 1) * e]);
    }
    Ok(())
}

/// The end of every decoder's forward pass: the rows of `buf.x` that want logits go through
/// the final norm and the output head into `logits` (or, for hidden-state requests, only the
/// norm). Returns how many rows came out (`logits.data[..n_out * n_vocab]`).
pub fn head(
    cx: &Compute<'_>,
    hp: &HParams,
    output_norm: &RmsNorm,
    output: &QMatrix,
    batch: &Batch,
    buf: &mut Buffers,
    logits: &mut Logits,
) -> usize {
    let e = hp.n_embd;
    // Only the rows that want logits go through the final norm and the head.
    logits.rows.clear();
    let mut n_out = 0;
    for (ci, r, row) in batch.logit_rows() {
        output_norm.forward(
            &buf.x[row * e..(row + 1) * e],
            &mut buf.out_rows[n_out * e..(n_out + 1) * e],
        );
        logits.rows.push((ci, r));
        n_out += 1;
    }
    if logits.hidden {
        logits.n_vocab = e;
        logits.data.clear();
        logits.data.extend_from_slice(&buf.out_rows[..n_out * e]);
        return n_out;
    }
    let nv = hp.n_vocab;
    logits.n_vocab = nv;
    if logits.data.len() < n_out * nv {
        logits.data.resize(n_out * nv, 0.0);
    }
    cx.trace("result_norm", None, &buf.out_rows[..n_out * e]);
    if n_out > 0 {
        linear(
            cx.kernels,
            cx.pool,
            output,
            &buf.out_rows[..n_out * e],
            n_out,
            &mut logits.data[..n_out * nv],
            &mut buf.act,
        );
        cx.trace("result_output", None, &logits.data[..n_out * nv]);
    }
    n_out
}
