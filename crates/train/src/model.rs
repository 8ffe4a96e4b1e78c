//! Forward and backward passes of a pre-norm decoder (`owl_model::decoder::Decoder` with
//! grouped-query attention and a dense SwiGLU FFN: Llama, SmolLM2, Qwen2/2.5, Qwen3, Mistral)
//! with LoRA pairs on its projections. The base weights stay frozen in the file's format.
//!
//! Memory: per-layer activation checkpointing. The forward pass keeps each layer's input
//! (`[n_tokens, n_embd]` per layer) and, within a byte budget (`keep_bytes`), its
//! intermediates; the backward pass recomputes the intermediates of the other layers from
//! their inputs just before differentiating them, then drops them. With no budget, peak
//! activation memory is one layer's intermediates plus the layer inputs, at the price of a
//! second forward pass; each kept layer saves its share of that pass.
//!
//! Only rows with a target (assistant tokens) go through the output head: a 49k-row
//! vocabulary costs more than a layer, and a chat's prompt is most of its tokens.

use owl_model::blocks::ffn::SwiGluFfn;
use owl_model::blocks::gqa::Gqa;
use owl_model::decoder::{AttnBlock, Decoder, DecoderLayer, FfnBlock};
use owl_model::lora::Target;

use crate::frozen::{self, Gemm};
use crate::lora::LoraSet;
use crate::ops::{self, AttnShape, Probs};
use crate::TrainError;

/// A training sequence: its tokens, and for each position the token the loss wants next
/// (`None`: not trained, e.g. the prompt).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sequence {
    pub tokens: Vec<u32>,
    pub targets: Vec<Option<u32>>,
}

impl Sequence {
    pub fn n_targets(&self) -> usize {
        self.targets.iter().flatten().count()
    }
}

/// Checks that `dec` is a decoder this module can differentiate.
pub fn check_supported(dec: &Decoder) -> Result<(), TrainError> {
    for (i, l) in dec.layers.iter().enumerate() {
        let AttnBlock::Gqa(a) = &l.attn else {
            return Err(TrainError::Unsupported(format!(
                "layer {i} uses latent attention (MLA)"
            )));
        };
        if a.sinks.is_some() {
            return Err(TrainError::Unsupported(format!(
                "layer {i} has attention sinks"
            )));
        }
        if a.bo.is_some() {
            return Err(TrainError::Unsupported(format!(
                "layer {i} has an attention output bias"
            )));
        }
        if !matches!(l.ffn, FfnBlock::Dense(_)) {
            return Err(TrainError::Unsupported(format!(
                "layer {i} is a mixture of experts"
            )));
        }
    }
    Ok(())
}

fn parts(l: &DecoderLayer) -> (&Gqa, &SwiGluFfn) {
    match (&l.attn, &l.ffn) {
        (AttnBlock::Gqa(a), FfnBlock::Dense(f)) => (a, f),
        // `check_supported` ran at construction.
        _ => unreachable!("unsupported layer reached the trainer"),
    }
}

fn add_bias(x: &mut [f32], b: &Option<Vec<f32>>) {
    if let Some(b) = b {
        for row in x.chunks_exact_mut(b.len()) {
            for (v, &bb) in row.iter_mut().zip(b) {
                *v += bb;
            }
        }
    }
}

/// Q, its norms' `1/rms`, K, and its norms' `1/rms`, before Qwen3's per-head norms.
type QkPre = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// What the backward pass of one layer needs from its forward pass.
struct LayerActs {
    inv1: Vec<f32>,
    h1: Vec<f32>,
    /// Q and K before their per-head norms, with those norms' `1/rms` (Qwen3).
    qk_pre: Option<QkPre>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    probs: Probs,
    attn: Vec<f32>,
    x1: Vec<f32>,
    inv2: Vec<f32>,
    h2: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    act: Vec<f32>,
    /// `A·x` of each LoRA pair, by target.
    z: [Option<Vec<f32>>; 7],
}

impl LayerActs {
    /// Bytes held.
    fn bytes(&self) -> usize {
        let qk = self
            .qk_pre
            .as_ref()
            .map_or(0, |(a, b, c, d)| a.len() + b.len() + c.len() + d.len());
        let probs: usize = self.probs.iter().flatten().map(Vec::len).sum();
        let z: usize = self.z.iter().flatten().map(Vec::len).sum();
        let vecs = [
            &self.inv1, &self.h1, &self.q, &self.k, &self.v, &self.attn, &self.x1, &self.inv2,
            &self.h2, &self.gate, &self.up, &self.act,
        ];
        4 * (vecs.iter().map(|v| v.len()).sum::<usize>() + qk + probs + z)
    }
}

/// The tokens of a batch laid end to end.
pub struct Packed {
    pub tokens: Vec<u32>,
    pub pos: Vec<usize>,
    /// (first row, length) per sequence.
    pub seqs: Vec<(usize, usize)>,
    /// (row, next token) of every trained position.
    pub targets: Vec<(usize, u32)>,
}

impl Packed {
    pub fn new(batch: &[Sequence]) -> Packed {
        let mut p = Packed {
            tokens: Vec::new(),
            pos: Vec::new(),
            seqs: Vec::new(),
            targets: Vec::new(),
        };
        for s in batch {
            let start = p.tokens.len();
            p.seqs.push((start, s.tokens.len()));
            p.tokens.extend_from_slice(&s.tokens);
            p.pos.extend(0..s.tokens.len());
            for (i, t) in s.targets.iter().enumerate() {
                if let Some(t) = t {
                    p.targets.push((start + i, *t));
                }
            }
        }
        p
    }

    pub fn n(&self) -> usize {
        self.tokens.len()
    }
}

/// Rows of the output head computed at once (bounds the logits buffer).
const HEAD_ROWS: usize = 128;

/// The decoder and its adapter, with the kernels and threads to run them.
pub struct TrainModel<'a> {
    pub dec: &'a Decoder,
    pub lora: LoraSet,
    pub g: Gemm<'a>,
    /// Bytes of layer intermediates the forward pass may keep for the backward pass; the
    /// layers past this budget are recomputed from their inputs (checkpointing). 0: every
    /// layer is recomputed. The gradients are the same bits either way.
    pub keep_bytes: usize,
}

impl<'a> TrainModel<'a> {
    pub fn new(dec: &'a Decoder, lora: LoraSet, g: Gemm<'a>) -> Result<Self, TrainError> {
        check_supported(dec)?;
        Ok(TrainModel {
            dec,
            lora,
            g,
            keep_bytes: 0,
        })
    }

    fn embed(&self, p: &Packed) -> Result<Vec<f32>, TrainError> {
        let e = self.dec.hp.n_embd;
        if let Some(&(_, t)) = p
            .targets
            .iter()
            .find(|&&(_, t)| t as usize >= self.dec.hp.n_vocab)
        {
            return Err(TrainError::BadToken(t));
        }
        let mut x = vec![0f32; p.n() * e];
        for (row, &t) in p.tokens.iter().enumerate() {
            if t as usize >= self.dec.hp.n_vocab {
                return Err(TrainError::BadToken(t));
            }
            self.dec
                .token_embd
                .dequantize_row(t as usize, &mut x[row * e..(row + 1) * e]);
        }
        Ok(x)
    }

    fn shape(a: &Gqa) -> AttnShape {
        AttnShape {
            n_head: a.n_head,
            n_head_kv: a.n_head_kv,
            head_dim: a.head_dim,
            scale: a.q_scale.unwrap_or(1.0 / (a.head_dim as f32).sqrt()),
            window: a.window,
        }
    }

    /// `y = W·x (+ s·B·A·x)`: the frozen product and the pair of (`li`, `t`), if any.
    fn linear(
        &self,
        li: usize,
        t: Target,
        w: &owl_kernels::QMatrix,
        x: &[f32],
        n: usize,
        z: &mut [Option<Vec<f32>>; 7],
    ) -> Vec<f32> {
        let mut y = vec![0f32; n * w.rows];
        frozen::forward(self.g, w, x, n, &mut y);
        if let Some(p) = self.lora.get(li, t) {
            z[t as usize] = Some(p.forward(self.g, x, n, self.lora.scale(), &mut y));
        }
        y
    }

    /// One layer forward from its input `x`; returns its output and what backward needs.
    fn layer_forward(&self, li: usize, x: &[f32], p: &Packed) -> (Vec<f32>, LayerActs) {
        let l = &self.dec.layers[li];
        let (a, f) = parts(l);
        let n = p.n();
        let mut z: [Option<Vec<f32>>; 7] = Default::default();
        let mut h1 = vec![0f32; x.len()];
        let inv1 = ops::rms_norm(x, &l.attn_norm.weight, l.attn_norm.eps, &mut h1);
        let mut q = self.linear(li, Target::AttnQ, &a.wq, &h1, n, &mut z);
        let mut k = self.linear(li, Target::AttnK, &a.wk, &h1, n, &mut z);
        let mut v = self.linear(li, Target::AttnV, &a.wv, &h1, n, &mut z);
        add_bias(&mut q, &a.bq);
        add_bias(&mut k, &a.bk);
        add_bias(&mut v, &a.bv);
        let qk_pre = a.qk_norm.as_ref().map(|norm| {
            let (qp, qi) = ops::head_norm(&mut q, &norm.q, norm.eps);
            let (kp, ki) = ops::head_norm(&mut k, &norm.k, norm.eps);
            (qp, qi, kp, ki)
        });
        let (hd, qd, kd) = (a.head_dim, a.n_head * a.head_dim, a.n_head_kv * a.head_dim);
        ops::rope(&a.rope, &mut q, qd, hd, &p.pos, false);
        ops::rope(&a.rope, &mut k, kd, hd, &p.pos, false);
        let mut attn = vec![0f32; n * qd];
        let probs = ops::attention(self.g.pool, Self::shape(a), &p.seqs, &q, &k, &v, &mut attn);
        let o = self.linear(li, Target::AttnOut, &a.wo, &attn, n, &mut z);
        let x1: Vec<f32> = x.iter().zip(&o).map(|(a, b)| a + b).collect();
        let mut h2 = vec![0f32; x.len()];
        let inv2 = ops::rms_norm(&x1, &l.ffn_norm.weight, l.ffn_norm.eps, &mut h2);
        let gate = self.linear(li, Target::FfnGate, &f.gate, &h2, n, &mut z);
        let up = self.linear(li, Target::FfnUp, &f.up, &h2, n, &mut z);
        let mut act = vec![0f32; gate.len()];
        ops::swiglu(&gate, &up, &mut act);
        let down = self.linear(li, Target::FfnDown, &f.down, &act, n, &mut z);
        let x2: Vec<f32> = x1.iter().zip(&down).map(|(a, b)| a + b).collect();
        (
            x2,
            LayerActs {
                inv1,
                h1,
                qk_pre,
                q,
                k,
                v,
                probs,
                attn,
                x1,
                inv2,
                h2,
                gate,
                up,
                act,
                z,
            },
        )
    }

    /// The backward pass of `W·x (+ s·B·A·x)`: the pair's gradients, and `dx += Wᵀ·dy (+ …)`.
    #[allow(clippy::too_many_arguments)]
    fn linear_back(
        &mut self,
        li: usize,
        t: Target,
        w: &owl_kernels::QMatrix,
        x: &[f32],
        z: &Option<Vec<f32>>,
        dy: &[f32],
        n: usize,
        dx: &mut [f32],
    ) {
        frozen::backward(self.g, w, dy, n, dx);
        let (g, s) = (self.g, self.lora.scale());
        if let (Some(p), Some(z)) = (self.lora.get_mut(li, t), z) {
            p.backward(g, x, z, dy, n, s, dx);
        }
    }

    /// One layer backward: `dx` holds the gradient of the layer's output and becomes that of
    /// its input `x`.
    fn layer_backward(
        &mut self,
        li: usize,
        x: &[f32],
        acts: &LayerActs,
        p: &Packed,
        dx: &mut [f32],
    ) {
        let dec = self.dec;
        let l = &dec.layers[li];
        let (a, f) = parts(l);
        let n = p.n();
        let (hd, qd, kd) = (a.head_dim, a.n_head * a.head_dim, a.n_head_kv * a.head_dim);
        let ff = f.gate.rows;
        // FFN: x2 = x1 + down(silu(gate(h2)) · up(h2)).
        let mut dact = vec![0f32; n * ff];
        self.linear_back(
            li,
            Target::FfnDown,
            &f.down,
            &acts.act,
            &acts.z[Target::FfnDown as usize],
            dx,
            n,
            &mut dact,
        );
        let mut dgate = vec![0f32; n * ff];
        let mut dup = vec![0f32; n * ff];
        ops::swiglu_back(&acts.gate, &acts.up, &dact, &mut dgate, &mut dup);
        drop(dact);
        let mut dh2 = vec![0f32; x.len()];
        self.linear_back(
            li,
            Target::FfnGate,
            &f.gate,
            &acts.h2,
            &acts.z[Target::FfnGate as usize],
            &dgate,
            n,
            &mut dh2,
        );
        self.linear_back(
            li,
            Target::FfnUp,
            &f.up,
            &acts.h2,
            &acts.z[Target::FfnUp as usize],
            &dup,
            n,
            &mut dh2,
        );
        drop((dgate, dup));
        // dx now holds d(x1): the residual plus the norm's share.
        ops::rms_norm_back(&acts.x1, &l.ffn_norm.weight, &acts.inv2, &dh2, dx);
        // Attention: x1 = x + out(attn(rope(q), rope(k), v)).
        let mut dattn = vec![0f32; n * qd];
        self.linear_back(
            li,
            Target::AttnOut,
            &a.wo,
            &acts.attn,
            &acts.z[Target::AttnOut as usize],
            dx,
            n,
            &mut dattn,
        );
        let mut dq = vec![0f32; n * qd];
        let mut dk = vec![0f32; n * kd];
        let mut dv = vec![0f32; n * kd];
        ops::attention_back(
            self.g.pool,
            Self::shape(a),
            &p.seqs,
            &acts.q,
            &acts.k,
            &acts.v,
            &acts.probs,
            &dattn,
            &mut dq,
            &mut dk,
            &mut dv,
        );
        drop(dattn);
        ops::rope(&a.rope, &mut dq, qd, hd, &p.pos, true);
        ops::rope(&a.rope, &mut dk, kd, hd, &p.pos, true);
        if let (Some(norm), Some((qp, qi, kp, ki))) = (&a.qk_norm, &acts.qk_pre) {
            let mut dqp = vec![0f32; dq.len()];
            ops::rms_norm_back(qp, &norm.q, qi, &dq, &mut dqp);
            let mut dkp = vec![0f32; dk.len()];
            ops::rms_norm_back(kp, &norm.k, ki, &dk, &mut dkp);
            dq = dqp;
            dk = dkp;
        }
        let mut dh1 = vec![0f32; x.len()];
        self.linear_back(
            li,
            Target::AttnQ,
            &a.wq,
            &acts.h1,
            &acts.z[Target::AttnQ as usize],
            &dq,
            n,
            &mut dh1,
        );
        self.linear_back(
            li,
            Target::AttnK,
            &a.wk,
            &acts.h1,
            &acts.z[Target::AttnK as usize],
            &dk,
            n,
            &mut dh1,
        );
        self.linear_back(
            li,
            Target::AttnV,
            &a.wv,
            &acts.h1,
            &acts.z[Target::AttnV as usize],
            &dv,
            n,
            &mut dh1,
        );
        ops::rms_norm_back(x, &l.attn_norm.weight, &acts.inv1, &dh1, dx);
    }

    /// The final norm and the output head over the trained rows of `x`: the summed loss, and
    /// (with `dx`) the gradient of `loss · grad_scale` added to `dx`.
    fn head(&self, x: &[f32], p: &Packed, grad_scale: f32, mut dx: Option<&mut [f32]>) -> f64 {
        let e = self.dec.hp.n_embd;
        let nv = self.dec.hp.n_vocab;
        let norm = &self.dec.output_norm;
        let mut total = 0f64;
        for chunk in p.targets.chunks(HEAD_ROWS) {
            let m = chunk.len();
            let mut xs = vec![0f32; m * e];
            for (i, &(row, _)) in chunk.iter().enumerate() {
                xs[i * e..(i + 1) * e].copy_from_slice(&x[row * e..(row + 1) * e]);
            }
            let mut hn = vec![0f32; m * e];
            let inv = ops::rms_norm(&xs, &norm.weight, norm.eps, &mut hn);
            let mut logits = vec![0f32; m * nv];
            frozen::forward(self.g, &self.dec.output, &hn, m, &mut logits);
            let targets: Vec<u32> = chunk.iter().map(|&(_, t)| t).collect();
            let Some(dx) = dx.as_deref_mut() else {
                total += ops::loss_only(&logits, nv, &targets);
                continue;
            };
            total += ops::cross_entropy(&mut logits, nv, &targets, grad_scale);
            let mut dhn = vec![0f32; m * e];
            frozen::backward(self.g, &self.dec.output, &logits, m, &mut dhn);
            let mut dxs = vec![0f32; m * e];
            ops::rms_norm_back(&xs, &norm.weight, &inv, &dhn, &mut dxs);
            for (i, &(row, _)) in chunk.iter().enumerate() {
                for (d, &v) in dx[row * e..(row + 1) * e]
                    .iter_mut()
                    .zip(&dxs[i * e..(i + 1) * e])
                {
                    *d += v;
                }
            }
        }
        total
    }

    /// The summed loss over the batch's trained tokens, without gradients.
    pub fn loss(&self, batch: &[Sequence]) -> Result<(f64, usize), TrainError> {
        let p = Packed::new(batch);
        let mut x = self.embed(&p)?;
        for li in 0..self.dec.layers.len() {
            x = self.layer_forward(li, &x, &p).0;
        }
        Ok((self.head(&x, &p, 0.0, None), p.targets.len()))
    }

    /// Adds to the pairs' gradients those of `loss_sum · grad_scale` over `batch`, and returns
    /// (summed loss, trained tokens). With `grad_scale = 1 / tokens of the whole step`, a step
    /// split into several batches averages over all of them.
    pub fn accumulate(
        &mut self,
        batch: &[Sequence],
        grad_scale: f32,
    ) -> Result<(f64, usize), TrainError> {
        let p = Packed::new(batch);
        let mut inputs = Vec::with_capacity(self.dec.layers.len());
        let mut kept = Vec::with_capacity(self.dec.layers.len());
        let mut used = 0usize;
        let mut x = self.embed(&p)?;
        for li in 0..self.dec.layers.len() {
            let (next, acts) = self.layer_forward(li, &x, &p);
            let size = acts.bytes();
            kept.push((used + size <= self.keep_bytes).then(|| {
                used += size;
                acts
            }));
            inputs.push(std::mem::replace(&mut x, next));
        }
        let mut dx = vec![0f32; x.len()];
        let loss = self.head(&x, &p, grad_scale, Some(&mut dx));
        drop(x);
        for li in (0..self.dec.layers.len()).rev() {
            let input = inputs.pop().unwrap_or_default();
            let acts = match kept.pop().flatten() {
                Some(a) => a,
                None => self.layer_forward(li, &input, &p).1,
            };
            self.layer_backward(li, &input, &acts, &p, &mut dx);
        }
        Ok((loss, p.targets.len()))
    }
}
