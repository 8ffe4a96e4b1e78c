//! RMSNorm over the rows of a `[n_tokens, n_embd]` buffer.

use owl_kernels::norm::rms_norm_rows;
use owl_kernels::{par_rows, ThreadPool};

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

    /// `forward` with the rows split over `pool`'s threads for a wide batch: each row's norm
    /// is its own, so the same bits. Rows in fours, as `rms_norm_rows` interleaves them.
    pub fn forward_par(&self, pool: &ThreadPool, x: &[f32], out: &mut [f32]) {
        let e = self.weight.len();
        let rows = (x.len() / e).min(out.len() / e);
        par_rows::rows_mut(pool, &mut out[..rows * e], e, 4, |r, o| {
            rms_norm_rows(&x[r.start * e..r.end * e], &self.weight, self.eps, o);
        });
    }
}
