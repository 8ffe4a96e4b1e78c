//! Mixture-of-experts feed-forward: a router picks `n_used` experts per token, each a gated
//! SwiGLU FFN, and the token's output is their weighted sum (plus an always-on shared expert
//! where the model has one).
//!
//! Only the selected experts run, and tokens are grouped by expert so each expert's weights
//! are read once per step however many tokens chose it: the bytes touched per token follow
//! the active parameters, not the total. The float order follows llama.cpp's `build_moe_ffn`
//! (softmax like its `soft_max`, weights normalised by an f64 row sum clamped at 2^-14, each
//! expert output scaled by its weight, the outputs added in selection order).
//!
//! Options: how router logits become weights (`Gating`: softmax for Qwen3-MoE and DeepSeek-V2,
//! sigmoid for DeepSeek-V3, softmax over the chosen for gpt-oss), the experts' activation
//! (`ExpertAct`), per-expert biases (`MoeBias`, gpt-oss), a selection bias that steers which
//! experts are chosen without changing their weights, expert groups (only the best
//! `n_groups_used` groups, ranked by the sum of their two best scores, may contribute), a
//! routed scaling factor and shared experts (DeepSeek).

use owl_kernels::swiglu::swiglu_oai;
use owl_kernels::{linear, linear_many, ActBuffer, Kernels, QMatrix};

use crate::blocks::ffn::{FfnScratch, SwiGluFfn};
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
    /// [n_expert] added to the scores only to choose experts (DeepSeek-V3's `exp_probs_b`).
    pub selection_bias: Option<Vec<f32>>,
    /// Expert groups: `(n_groups, n_groups_used)`; experts outside the chosen groups are
    /// never picked.
    pub groups: Option<(usize, usize)>,
    /// Multiplies the final weights (DeepSeek's routed scaling factor); 1 for none.
    pub weights_scale: f32,
    /// An expert every token goes through, added to the routed output (DeepSeek).
    pub shared: Option<SwiGluFfn>,
}

impl MoeFfn {
    /// A plain softmax-routed SwiGLU mixture (Qwen3-MoE): weights normalised over the chosen
    /// experts; no biases, groups, scaling or shared expert.
    pub fn softmax(router: QMatrix, experts: Vec<SwiGluFfn>, n_used: usize) -> MoeFfn {
        MoeFfn {
            router,
            experts,
            n_used,
            norm_weights: true,
            gating: Gating::Softmax,
            act: ExpertAct::SwiGlu,
            bias: None,
            selection_bias: None,
            groups: None,
            weights_scale: 1.0,
            shared: None,
        }
    }
}

/// llama.cpp's expert gating functions (`llama_expert_gating_func_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gating {
    /// Softmax over all experts, top-k of the probabilities (SOFTMAX).
    Softmax,
    /// Independent sigmoid per expert (SIGMOID, DeepSeek-V3).
    Sigmoid,
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
    /// [n_expert] one token's selection scores (biased, group-masked)
    select: Vec<f32>,
    /// [n_groups] one token's group scores
    group_scores: Vec<f32>,
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
    /// `x`: [n, n_embd] (normalized input); `out`: [n, n_embd]. `layer` names traces.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        cx: &Compute<'_>,
        layer: usize,
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
        cx.trace("ffn_moe_logits", Some(layer), probs);

        // Route: (bias,) softmax, top-k, (normalised) weights.
        if let Some(bias) = &self.bias {
            add_rows(probs, &bias.router, 0, n_expert);
        }
        grow(&mut b.chosen, k);
        grow(&mut b.select, n_expert);
        for (t, row) in probs.chunks_exact_mut(n_expert).enumerate() {
            match self.gating {
                Gating::Softmax => softmax(cx.kernels, row),
                Gating::Sigmoid => {
                    for p in row.iter_mut() {
                        *p = 1.0 / (1.0 + (-*p).exp());
                    }
                }
                Gating::SoftmaxWeighted => {}
            }
            // Selection scores: the probabilities, biased and group-masked if asked.
            let select = &mut b.select[..n_expert];
            select.copy_from_slice(row);
            if let Some(bias) = &self.selection_bias {
                for (s, &bb) in select.iter_mut().zip(bias) {
                    *s += bb;
                }
            }
            if let Some((n_groups, n_groups_used)) = self.groups {
                mask_groups(select, n_groups, n_groups_used, &mut b.group_scores);
            }
            let picks = &mut b.picks[t * k..(t + 1) * k];
            for i in 0..k {
                // The best expert not picked yet (lowest id on ties).
                let mut best: Option<usize> = None;
                for (j, &p) in select.iter().enumerate() {
                    if picks[..i].iter().any(|&(x, _)| x as usize == j) {
                        continue;
                    }
                    if best.is_none_or(|bj| p > select[bj]) {
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
            if self.weights_scale != 1.0 {
                for p in picks.iter_mut() {
                    p.1 *= self.weights_scale;
                }
            }
        }
        if cx.trace.is_some() {
            cx.trace("ffn_moe_probs", Some(layer), probs);
            let w: Vec<f32> = b.picks[..n * k].iter().map(|p| p.1).collect();
            cx.trace("ffn_moe_weights_scaled", Some(layer), &w);
            let ids: Vec<f32> = b.picks[..n * k].iter().map(|p| p.0 as f32).collect();
            cx.trace("ffn_moe_topk", Some(layer), &ids);
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

        cx.trace("ffn_moe_out", Some(layer), &out[..n * e]);
        if let Some(shared) = &self.shared {
            let n_ff = shared.gate.rows;
            grow(&mut b.gate, n * n_ff);
            grow(&mut b.up, n * n_ff);
            grow(&mut b.yout, n * e);
            let y = &mut b.yout[..n * e];
            let scratch = FfnScratch {
                layer: usize::MAX,
                gate: &mut b.gate,
                up: &mut b.up,
                act,
            };
            shared.forward(&Compute { trace: None, ..*cx }, x, n, y, scratch);
            cx.trace("ffn_shexp", Some(layer), y);
            for (d, &v) in out[..n * e].iter_mut().zip(y.iter()) {
                *d += v;
            }
        }
    }
}

/// Keeps the selection scores of the best `n_used` of `n_groups` equal groups of experts and
/// sets the others to -inf. A group's score is the sum of its two best scores (DeepSeek-V3).
fn mask_groups(select: &mut [f32], n_groups: usize, n_used: usize, scores: &mut Vec<f32>) {
    let per = select.len() / n_groups;
    grow(scores, n_groups);
    for (g, s) in scores[..n_groups].iter_mut().enumerate() {
        let grp = &select[g * per..(g + 1) * per];
        let mut best = [f32::NEG_INFINITY; 2];
        let mut first = usize::MAX;
        for (i, &x) in grp.iter().enumerate() {
            if x > best[0] {
                best[0] = x;
                first = i;
            }
        }
        for (i, &x) in grp.iter().enumerate() {
            if i != first && x > best[1] {
                best[1] = x;
            }
        }
        let sum = if per >= 2 {
            best[0] as f64 + best[1] as f64
        } else {
            best[0] as f64
        };
        *s = sum as f32;
    }
    // Rank groups (lowest id on ties) and keep the first n_used.
    for _ in 0..n_used.min(n_groups) {
        let mut bg: Option<usize> = None;
        for (g, &sc) in scores[..n_groups].iter().enumerate() {
            if sc.is_nan() {
                continue;
            }
            if bg.is_none_or(|b| sc > scores[b]) {
                bg = Some(g);
            }
        }
        if let Some(g) = bg {
            // Mark chosen with NaN so it is skipped next round.
            scores[g] = f32::NAN;
        }
    }
    for g in 0..n_groups {
        if !scores[g].is_nan() {
            select[g * per..(g + 1) * per].fill(f32::NEG_INFINITY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mask_groups;

    #[test]
    fn groups_are_ranked_by_their_two_best_scores() {
        // Four groups of three. Group 0 holds the single best expert but a weak second one;
        // groups 1 and 3 have the best top-two sums and are the ones kept.
        let mut s = vec![
            0.9, 0.0, 0.1, // group 0: top two sum 1.0
            0.6, 0.5, 0.0, // group 1: 1.1
            0.3, 0.3, 0.3, // group 2: 0.6
            0.0, 0.55, 0.6, // group 3: 1.15
        ];
        let mut scratch = Vec::new();
        mask_groups(&mut s, 4, 2, &mut scratch);
        let ninf = f32::NEG_INFINITY;
        assert_eq!(
            s,
            vec![ninf, ninf, ninf, 0.6, 0.5, 0.0, ninf, ninf, ninf, 0.0, 0.55, 0.6]
        );
    }
}
