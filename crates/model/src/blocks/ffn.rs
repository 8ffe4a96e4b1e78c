//! The gated feed-forward block: `down(silu(gate(x)) * up(x))`.

use owl_kernels::{linear, linear_many, ActBuffer, QMatrix};

use crate::scratch::Compute;

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

impl SwiGluFfn {
    /// `x`: [n, n_embd] (normalized input); `out`: [n, n_embd].
    pub fn forward(
        &self,
        cx: &Compute<'_>,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        s: FfnScratch<'_>,
    ) {
        let n_ff = self.gate.rows;
        let gate = &mut s.gate[..n * n_ff];
        let up = &mut s.up[..n * n_ff];
        linear_many(
            cx.kernels,
            cx.pool,
            x,
            n,
            &mut [(&self.gate, &mut *gate), (&self.up, &mut *up)],
            s.act,
        );
        cx.trace("ffn_gate", Some(s.layer), gate);
        cx.trace("ffn_up", Some(s.layer), up);
        (cx.kernels.swiglu())(gate, up);
        cx.trace("ffn_swiglu", Some(s.layer), gate);
        linear(cx.kernels, cx.pool, &self.down, gate, n, out, s.act);
    }
}
