//! A matrix with an optional bias, `y = W x + b`: BERT's projections and classification heads.
//! Float weights go through the encoder GEMM (`linear_gemm`: f32 activations, tiled).

use owl_kernels::{linear_gemm, ActBuffer, QMatrix};

use crate::scratch::Compute;
use crate::tensors::Tensors;
use crate::ModelError;

/// A matrix with an optional bias: `y = W x + b`.
pub struct Affine {
    /// [rows, cols]
    pub w: QMatrix,
    /// [rows]
    pub b: Option<Vec<f32>>,
}

impl Affine {
    /// `{part}.weight` (`[rows, cols]`) with `{part}.bias` if the file has it.
    pub fn load(
        t: &Tensors<'_>,
        part: &str,
        cols: usize,
        rows: usize,
    ) -> Result<Affine, ModelError> {
        Ok(Affine {
            w: t.matrix(part, cols, rows)?,
            b: t.optional_bias(part, rows)?,
        })
    }

    /// `x`: [n, cols]; `out`: [n, rows].
    pub fn forward(
        &self,
        cx: &Compute<'_>,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        act: &mut ActBuffer,
    ) {
        let out = &mut out[..n * self.w.rows];
        linear_gemm(cx.kernels, cx.pool, &self.w, x, n, out, act);
        add_bias(out, self.b.as_deref());
    }
}

pub fn add_bias(out: &mut [f32], b: Option<&[f32]>) {
    if let Some(b) = b {
        for row in out.chunks_exact_mut(b.len()) {
            for (o, &x) in row.iter_mut().zip(b) {
                *o += x;
            }
        }
    }
}
