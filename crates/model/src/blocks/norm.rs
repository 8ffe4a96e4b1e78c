//! RMSNorm over the rows of a `[n_tokens, n_embd]` buffer.

use owl_kernels::norm::rms_norm_rows;

use crate::tensors::Tensors;
use crate::ModelError;

pub struct RmsNorm {
    pub weight: Vec<f32>,
    pub eps: f32,
}

impl RmsNorm {
    /// The norm whose weight is `{part}.weight` (`len` values).
    pub fn load(t: &Tensors<'_>, part: &str, len: usize, eps: f32) -> Result<RmsNorm, ModelError> {
        Ok(RmsNorm {
            weight: t.vector(part, len)?,
            eps,
        })
    }

    /// `out[t] = rms_norm(x[t]) * weight` for every row.
    pub fn forward(&self, x: &[f32], out: &mut [f32]) {
        rms_norm_rows(x, &self.weight, self.eps, out);
    }
}
