//! The gated feed-forward block: `down(silu(gate(x)) * up(x))`.

use owl_kernels::{linear, linear_many, par_rows, ActBuffer, QMatrix};

use crate::lora::Target;
use crate::scratch::Compute;
use crate::tensors::part::{FFN_DOWN, FFN_EXPERTS, FFN_GATE, FFN_UP};
use crate::tensors::Tensors;
use crate::ModelError;

pub struct SwiGluFfn {
    pub gate: QMatrix,
    pub up: QMatrix,
    pub down: QMatrix,
}

/// Scratch of the FFN: `gate` and `up` hold [n, n_ff].
pub struct FfnScratch<'a> {
    /// Layer index, for trace names.
    pub layer: usize,
    pub gate: &'a mut [f32],
    pub up: &'a mut [f32],
    pub act: &'a mut ActBuffer,
}

/// The layer's `ffn_gate`, `ffn_up` (`[n_ff, n_embd]`) and `ffn_down` (`[n_embd, n_ff]`), the
/// weights every gated FFN has whatever its activation.
pub fn gated_weights(
    t: &Tensors<'_>,
    n_embd: usize,
    n_ff: usize,
) -> Result<[QMatrix; 3], ModelError> {
    Ok([
        t.matrix(FFN_GATE, n_embd, n_ff)?,
        t.matrix(FFN_UP, n_embd, n_ff)?,
        t.matrix(FFN_DOWN, n_ff, n_embd)?,
    ])
}

impl SwiGluFfn {
    pub fn load(t: &Tensors<'_>, n_embd: usize, n_ff: usize) -> Result<SwiGluFfn, ModelError> {
        let [gate, up, down] = gated_weights(t, n_embd, n_ff)?;
        Ok(SwiGluFfn { gate, up, down })
    }

    /// The layer's `n` experts of width `n_ff` from its 3-D `ffn_{gate,up,down}_exps`.
    pub fn load_experts(
        t: &Tensors<'_>,
        n_embd: usize,
        n_ff: usize,
        n: usize,
    ) -> Result<Vec<SwiGluFfn>, ModelError> {
        let gate = t.experts(FFN_EXPERTS[0], n_embd, n_ff, n)?;
        let up = t.experts(FFN_EXPERTS[1], n_embd, n_ff, n)?;
        let down = t.experts(FFN_EXPERTS[2], n_ff, n_embd, n)?;
        Ok(gate
            .into_iter()
            .zip(up)
            .zip(down)
            .map(|((gate, up), down)| SwiGluFfn { gate, up, down })
            .collect())
    }

    /// `x`: [n, n_embd] (normalized input); `out`: [n, n_embd].
    pub fn forward(
        &self,
        cx: &Compute<'_>,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        s: FfnScratch<'_>,
    ) {
        let weights = [&self.gate, &self.up, &self.down];
        gated_forward(weights, cx.kernels.swiglu(), "ffn_swiglu", cx, x, n, out, s);
    }
}

/// `down(act(gate(x), up(x)))` for `[gate, up, down]`, the body every gated FFN shares:
/// `act` overwrites `gate` with the gated product (`swiglu`, ggml's `geglu`), traced as `name`.
/// `x`: [n, n_embd]; `out`: [n, n_embd].
#[allow(clippy::too_many_arguments)]
pub fn gated_forward(
    [w_gate, w_up, w_down]: [&QMatrix; 3],
    act: fn(&mut [f32], &[f32]),
    name: &str,
    cx: &Compute<'_>,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    s: FfnScratch<'_>,
) {
    let n_ff = w_gate.rows;
    let gate = &mut s.gate[..n * n_ff];
    let up = &mut s.up[..n * n_ff];
    linear_many(
        cx.kernels,
        cx.pool,
        x,
        n,
        &mut [(w_gate, &mut *gate), (w_up, &mut *up)],
        s.act,
    );
    cx.lora_add(s.layer, Target::FfnGate, x, gate);
    cx.lora_add(s.layer, Target::FfnUp, x, up);
    cx.trace("ffn_gate", Some(s.layer), gate);
    cx.trace("ffn_up", Some(s.layer), up);
    // Row by row, as ggml applies it (a row's tail past its last whole vector is its own),
    // on every thread for a wide batch.
    par_rows::rows_mut(cx.pool, gate, n_ff, 1, |rows, g| {
        let up = &up[rows.start * n_ff..rows.end * n_ff];
        for (g, u) in g.chunks_exact_mut(n_ff).zip(up.chunks_exact(n_ff)) {
            act(g, u);
        }
    });
    cx.trace(name, Some(s.layer), gate);
    linear(cx.kernels, cx.pool, w_down, gate, n, out, s.act);
    cx.lora_add(s.layer, Target::FfnDown, gate, out);
}
