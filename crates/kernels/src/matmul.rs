//! The one `linear` entry point: quantized weights × f32 activations.
//!
//! Activations are quantized once per call into the format the weight type's dot product pairs
//! with (Q8_0, Q8_1, Q8_K, F16, ...). Threads split the weight rows; each thread walks its rows and,
//! for each row, every token of the batch, so a weight row is read from memory once per call and
//! reused from cache across tokens. Each (row, token) result comes from the same dot-product
//! function in the same order regardless of the batch size, which keeps outputs batch-invariant.

use std::sync::Arc;

use owl_gguf::{GgmlType, GgufFile};

use crate::pool::{split_range, SharedMut, ThreadPool};
use crate::Kernels;

/// Where a weight matrix's bytes live: borrowed from the memory-mapped model file (the default:
/// nothing is copied) or owned (after an explicit copy or repack).
#[derive(Clone)]
pub enum WeightBytes {
    Mapped {
        file: Arc<GgufFile>,
        offset: usize,
        len: usize,
    },
    Owned(Arc<Vec<u8>>),
}

impl WeightBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            WeightBytes::Mapped { file, offset, len } => {
                let data = file.data_section();
                data.get(*offset..offset.saturating_add(*len))
                    .unwrap_or(&[])
            }
            WeightBytes::Owned(v) => v,
        }
    }
}

/// A weight matrix in its stored format: `rows` rows of `cols` elements each (ggml's ne1 × ne0).
#[derive(Clone)]
pub struct QMatrix {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub bytes: WeightBytes,
}

impl QMatrix {
    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        owl_quant::row_bytes(self.ty, self.cols)
    }

    /// The bytes of row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        let all = self.bytes.as_slice();
        all.get(r * rb..(r + 1) * rb).unwrap_or(&[])
    }

    /// Dequantizes row `r` into `out` (`out.len() == cols`), e.g. for embedding lookup.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        if let Some(f) = owl_quant::format(self.ty) {
            (f.dequantize)(self.row(r), out);
        }
    }
}

/// Reusable buffer for quantized activations (grows, never shrinks: no per-token allocation).
#[derive(Default)]
pub struct ActBuffer {
    bytes: Vec<u8>,
}

/// `out[t][r] = dot(w.row(r), x[t])` for `t < n_tokens`, `r < w.rows`.
///
/// `x`: [n_tokens, w.cols] f32; `out`: [n_tokens, w.rows] f32.
/// Panics only on a programming error (mismatched shapes or an unsupported type, which model
/// loading rejects before any forward pass).
pub fn linear(
    k: &Kernels,
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
    act: &mut ActBuffer,
) {
    let cols = w.cols;
    assert_eq!(x.len(), n_tokens * cols, "linear: activation shape");
    assert_eq!(out.len(), n_tokens * w.rows, "linear: output shape");
    let format = owl_quant::format(w.ty).expect("linear: weight type has no format");
    let dot_ty = format.vec_dot_type;
    let quantize = k.quantize(dot_ty).expect("linear: no activation quantizer");
    let vec_dot = k.vec_dot(w.ty).expect("linear: no dot product");
    let a_row = owl_quant::row_bytes(dot_ty, cols);
    act.bytes.resize(a_row * n_tokens, 0);

    // Quantize activations once: [n_tokens, a_row] bytes.
    {
        let abuf = &mut act.bytes[..];
        for (t, dst) in abuf.chunks_exact_mut(a_row).enumerate() {
            quantize(&x[t * cols..(t + 1) * cols], dst);
        }
    }
    let abuf = &act.bytes[..];
    let wbytes = w.bytes.as_slice();
    let w_row = w.row_bytes();
    let rows = w.rows;
    let x4 = k.vec_dot_x4(w.ty);
    // Tokens per tile: the tile's quantized activations stay in L1 while every weight row of
    // the thread's share passes over them.
    let tile = (TILE_BYTES / a_row.max(1)).clamp(4, 64) & !3;
    let outp = SharedMut::new(out);
    pool.run(|ith, nth| {
        let my_rows = split_range(rows, ith, nth);
        let act_row = |t: usize| &abuf[t * a_row..(t + 1) * a_row];
        for t0 in (0..n_tokens).step_by(tile) {
            let t_end = (t0 + tile).min(n_tokens);
            for r in my_rows.clone() {
                let wr = &wbytes[r * w_row..(r + 1) * w_row];
                let mut t = t0;
                if let Some(x4) = x4 {
                    while t + 4 <= t_end {
                        let v = x4(
                            cols,
                            wr,
                            [act_row(t), act_row(t + 1), act_row(t + 2), act_row(t + 3)],
                        );
                        for (j, vj) in v.into_iter().enumerate() {
                            // SAFETY: (t + j) * rows + r < n_tokens * rows == out.len(), and
                            // row r belongs to this thread only.
                            unsafe { outp.write((t + j) * rows + r, vj) };
                        }
                        t += 4;
                    }
                }
                while t < t_end {
                    let v = vec_dot(cols, wr, act_row(t));
                    // SAFETY: as above.
                    unsafe { outp.write(t * rows + r, v) };
                    t += 1;
                }
            }
        }
    });
}

/// Bytes of quantized activations per token tile (a share of a 32 KiB L1 data cache).
const TILE_BYTES: usize = 16 * 1024;
