//! The GELU-gated feed-forward block of Gemma: `down(gelu(gate(x)) * up(x))`, GELU in its tanh
//! form through ggml's f16 lookup table (`owl_kernels::gelu::geglu`, llama.cpp's
//! `ggml_geglu_split` for LLM_FFN_GELU + LLM_FFN_PAR). The same weights and scratch as
//! `SwiGluFfn`; only the activation differs.

use owl_kernels::gelu::geglu;
use owl_kernels::QMatrix;

use crate::blocks::ffn::{gated_forward, gated_weights, FfnScratch};
use crate::scratch::Compute;
use crate::tensors::Tensors;
use crate::ModelError;

pub struct GeGluFfn {
    /// [n_ff, n_embd]
    pub gate: QMatrix,
    /// [n_ff, n_embd]
    pub up: QMatrix,
    /// [n_embd, n_ff]
    pub down: QMatrix,
}

impl GeGluFfn {
    pub fn load(t: &Tensors<'_>, n_embd: usize, n_ff: usize) -> Result<GeGluFfn, ModelError> {
        let [gate, up, down] = gated_weights(t, n_embd, n_ff)?;
        Ok(GeGluFfn { gate, up, down })
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
        gated_forward(weights, geglu, "ffn_geglu", cx, x, n, out, s);
    }
}
