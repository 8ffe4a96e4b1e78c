//! Mixture-of-experts feed-forward: a softmax router picks `n_used` experts per token, each a
//! gated SwiGLU FFN, and the token's output is their weighted sum.
//!
//! Only the selected experts run, and tokens are grouped by expert so each expert's weights
//! are read once per step however many tokens chose it: the bytes touched per token follow
//! the active parameters, not the total. The float order follows llama.cpp's `build_moe_ffn`
//! (softmax like its `soft_max`, weights normalised by an f64 row sum clamped at 2^-14, each
//! expert output scaled by its weight, the outputs added in selection order).
//!
//! Options: how router logits become weights (`Gating`), the experts' activation (`ExpertAct`)
//! and per-expert biases (`MoeBias`); gpt-oss uses all three (`SoftmaxWeighted`, `SwiGluOai`,
//! router and gate/up/down biases).

use owl_kernels::swiglu::swiglu_oai;
use owl_kernels::{linear, linear_many, ActBuffer, Kernels, QMatrix};

use crate::blocks::ffn::SwiGluFfn;
use crate::scratch::Compute;

pub struct MoeFfn {
    /// [n_expert, n_embd] router.
    pub router: QMatrix,
    /// One FFN per expert: gate/up [n_ff_exp, n_embd], down [n_embd, n_ff_exp].
    pub experts: Vec<SwiGluFfn>,
    /// Experts per token.
    pub n_used: usize,
    /// Divide the selected weights by their sum (Qwen3-MoE).
    pub norm_weights: bool,
    /// How the router's logits become the chosen experts' weights.
    pub gating: Gating,
    /// The experts' gated activation.
    pub act: ExpertAct,
    /// Router and expert biases (gpt-oss).
    pub bias: Option<MoeBias>,
}

/// llama.cpp's expert gating functions (`llama_expert_gating_func_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gating {
    /// Softmax over all experts, top-k of the probabilities (SOFTMAX).
    Softmax,
    /// Top-k of the raw logits, then a softmax over the chosen ones (SOFTMAX_WEIGHT, gpt-oss).
    SoftmaxWeighted,
}

/// The gated activation inside each expert.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExpertAct {
    /// `silu(gate) * up`.
    SwiGlu,
    /// ggml's `swiglu_oai` (gpt-oss: alpha 1.702, limit 7).
    SwiGluOai { alpha: f32, limit: f32 },
}

/// Biases of a mixture of experts (`ffn_gate_inp.bias`, `ffn_{gate,up,down}_exps.bias`).
pub struct MoeBias {
    /// [n_expert] added to the router logits.
    pub router: Vec<f32>,
    /// [n_expert, n_ff_exp]
    pub gate: Vec<f32>,
    /// [n_expert, n_ff_exp]
    pub up: Vec<f32>,
    /// [n_expert, n_embd]
    pub down: Vec<f32>,
}

/// Grow-only working memory of the MoE block.
#[derive(Default)]
pub struct MoeBuffers {
    /// [n, n_expert] router logits, then probabilities
    probs: Vec<f32>,
    /// [n, n_used] (expert, weight) per token, in selection order
    picks: Vec<(u32, f32)>,
    /// [n_expert + 1] start of each expert's group in `order`
    starts: Vec<usize>,
    /// [n * n_used] (token, slot) entries grouped by expert
    order: Vec<(u32, u32)>,
    /// [n_expert] next free place of each group while filling `order`
    fill: Vec<usize>,
    /// [m, n_embd] inputs of one expert's tokens
    xin: Vec<f32>,
    /// [m, n_embd] its outputs
    yout: Vec<f32>,
    /// [m, n_ff_exp]
    gate: Vec<f32>,
    /// [m, n_ff_exp]
    up: Vec<f32>,
    /// [n, n_used, n_embd] weighted expert outputs per token and slot
    contrib: Vec<f32>,
    /// [n_used] weights of one token's chosen experts (`Gating::SoftmaxWeighted`)
    chosen: Vec<f32>,
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

/// ggml's `soft_max` of one row in place: max, `exp(x - max)` summed in f64, times `1/sum`.
fn softmax(k: &Kernels, row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum = (k.softmax_exp())(row, max);
    let inv = (1.0 / sum) as f32;
    for p in row.iter_mut() {
        *p *= inv;
    }
}

/// Adds `bias[j]` (the `len` values of entry `j`) to every `len`-wide row of `x`.
fn add_rows(x: &mut [f32], bias: &[f32], j: usize, len: usize) {
    let b = &bias[j * len..(j + 1) * len];
    for row in x.chunks_exact_mut(len) {
        for (v, &bb) in row.iter_mut().zip(b) {
            *v += bb;
        }
    }
}

impl MoeFfn {
    /// `x`: [n, n_embd] (normalized input); `out`: [n, n_embd].
    pub fn forward(
        &self,
        cx: &Compute<'_>,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        b: &mut MoeBuffers,
        act: &mut ActBuffer,
    ) {
        let n_expert = self.experts.len();
        let k = self.n_used.min(n_expert);
        let e = self.router.cols;
        grow(&mut b.probs, n * n_expert);
        grow(&mut b.picks, n * k);
        let probs = &mut b.probs[..n * n_expert];
        linear(cx.kernels, cx.pool, &self.router, x, n, probs, act);

        // Route: (bias,) softmax, top-k, (normalised) weights.
        if let Some(bias) = &self.bias {
            add_rows(probs, &bias.router, 0, n_expert);
        }
        grow(&mut b.chosen, k);
        for (t, row) in probs.chunks_exact_mut(n_expert).enumerate() {
            if self.gating == Gating::Softmax {
                softmax(cx.kernels, row);
            }
            let picks = &mut b.picks[t * k..(t + 1) * k];
            for i in 0..k {
                // The best expert not picked yet (lowest id on ties).
                let mut best: Option<usize> = None;
                for (j, &p) in row.iter().enumerate() {
                    if picks[..i].iter().any(|&(x, _)| x as usize == j) {
                        continue;
                    }
                    if best.is_none_or(|bj| p > row[bj]) {
                        best = Some(j);
                    }
                }
                let j = best.unwrap_or(0);
                picks[i] = (j as u32, row[j]);
            }
            if self.gating == Gating::SoftmaxWeighted {
                let w = &mut b.chosen[..k];
                for (w, p) in w.iter_mut().zip(picks.iter()) {
                    *w = p.1;
                }
                softmax(cx.kernels, w);
                for (p, &w) in picks.iter_mut().zip(w.iter()) {
                    p.1 = w;
                }
            }
            if self.norm_weights {
                let s: f64 = picks.iter().map(|&(_, w)| w as f64).sum();
                let s = (s as f32).max(6.103_515_6e-5);
                for p in picks.iter_mut() {
                    p.1 /= s;
                }
            }
        }

        // Group (token, slot) pairs by expert: a counting sort.
        grow(&mut b.starts, n_expert + 1);
        grow(&mut b.order, n * k);
        let starts = &mut b.starts[..n_expert + 1];
        starts.fill(0);
        for &(j, _) in &b.picks[..n * k] {
            starts[j as usize + 1] += 1;
        }
        for j in 0..n_expert {
            starts[j + 1] += starts[j];
        }
        grow(&mut b.fill, n_expert);
        b.fill[..n_expert].copy_from_slice(&starts[..n_expert]);
        for t in 0..n {
            for s in 0..k {
                let j = b.picks[t * k + s].0 as usize;
                b.order[b.fill[j]] = (t as u32, s as u32);
                b.fill[j] += 1;
            }
        }

        // Run each chosen expert once over all of its tokens.
        grow(&mut b.contrib, n * k * e);
        for (j, ffn) in self.experts.iter().enumerate() {
            let group = &b.order[starts[j]..starts[j + 1]];
            let m = group.len();
            if m == 0 {
                continue;
            }
            let n_ff = ffn.gate.rows;
            grow(&mut b.xin, m * e);
            grow(&mut b.yout, m * e);
            grow(&mut b.gate, m * n_ff);
            grow(&mut b.up, m * n_ff);
            for (r, &(t, _)) in group.iter().enumerate() {
                let t = t as usize;
                b.xin[r * e..(r + 1) * e].copy_from_slice(&x[t * e..(t + 1) * e]);
            }
            let (gate, up) = (&mut b.gate[..m * n_ff], &mut b.up[..m * n_ff]);
            linear_many(
                cx.kernels,
                cx.pool,
                &b.xin[..m * e],
                m,
                &mut [(&ffn.gate, &mut *gate), (&ffn.up, &mut *up)],
                act,
            );
            if let Some(bias) = &self.bias {
                add_rows(up, &bias.up, j, n_ff);
                add_rows(gate, &bias.gate, j, n_ff);
            }
            match self.act {
                ExpertAct::SwiGlu => (cx.kernels.swiglu())(gate, up),
                ExpertAct::SwiGluOai { alpha, limit } => swiglu_oai(gate, up, alpha, limit),
            }
            let y = &mut b.yout[..m * e];
            linear(cx.kernels, cx.pool, &ffn.down, gate, m, y, act);
            if let Some(bias) = &self.bias {
                add_rows(y, &bias.down, j, e);
            }
            for (r, &(t, s)) in group.iter().enumerate() {
                let (t, s) = (t as usize, s as usize);
                let w = b.picks[t * k + s].1;
                let dst = &mut b.contrib[(t * k + s) * e..(t * k + s + 1) * e];
                for (d, &v) in dst.iter_mut().zip(&y[r * e..(r + 1) * e]) {
                    *d = v * w;
                }
            }
        }

        // Sum each token's expert outputs in selection order.
        for t in 0..n {
            let o = &mut out[t * e..(t + 1) * e];
            o.copy_from_slice(&b.contrib[t * k * e..(t * k + 1) * e]);
            for s in 1..k {
                let c = &b.contrib[(t * k + s) * e..(t * k + s + 1) * e];
                for (d, &v) in o.iter_mut().zip(c) {
                    *d += v;
                }
            }
        }
    }
}
