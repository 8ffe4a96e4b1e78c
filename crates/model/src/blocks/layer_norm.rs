//! LayerNorm with weight and bias over the rows of a `[n_tokens, n]` buffer (BERT's norms).

use owl_kernels::layer_norm::layer_norm;

use crate::tensors::Tensors;
use crate::ModelError;

pub struct LayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

impl LayerNorm {
    /// The norm `{part}.weight` and `{part}.bias` (`len` values each).
    pub fn load(
        t: &Tensors<'_>,
        part: &str,
        len: usize,
        eps: f32,
    ) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm {
            weight: t.vector(part, len)?,
            bias: t.bias(part, len)?,
            eps,
        })
    }

    /// `out[t] = layer_norm(x[t]) * weight + bias` for every row.
    pub fn forward(&self, x: &[f32], out: &mut [f32]) {
        let n = self.weight.len();
        for (xr, or) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            layer_norm(xr, &self.weight, &self.bias, self.eps, or);
        }
    }
}
