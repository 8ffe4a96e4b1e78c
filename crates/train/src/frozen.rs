//! Products with a frozen, possibly quantized weight: the forward `y = x·Wᵀ` and the backward
//! `dx += dy·W`, for a whole batch of tokens at once.
//!
//! Why here and not through `owl_kernels::linear`: inference quantizes the activations (Q8_0 /
//! Q8_K) before the integer dot products, which is fast but is not a differentiable function of
//! the activations. Training needs the forward it differentiates, so both directions run in f32:
//! a tile of weight rows is dequantized once, to f32, and meets every token of the batch in
//! an f32 GEMM (register tiles, one scalar twin per ISA). A
//! weight is never dequantized once per token, which is what keeps a quantized base cheap to
//! train against.
//!
//! Both directions use the panel GEMM (`owl_kernels::gemm_panel`): the dequantized tile is
//! written straight into 16-column panels (Wᵀ's for the forward, W's own for the backward).
//! The backward product reads W by columns: each thread owns a range of columns of `dx` (whole
//! quantization blocks and panels) and dequantizes only those blocks of every row. A value of `dx` is therefore summed
//! in the same order whatever the thread count: a run and its `--resume` give the same bits.

use owl_kernels::gemm_panel::PANEL;
use owl_kernels::pool::SharedMut;
use owl_kernels::{Kernels, QMatrix, ThreadPool};
use owl_quant::GgmlType;

/// Rows of W dequantized together in the forward product.
const ROW_TILE: usize = 64;
/// Tokens per call of the GEMM kernel (keeps a block of activations in L2).
const TOKEN_BLOCK: usize = 64;

/// The kernels and threads the products run on.
#[derive(Clone, Copy)]
pub struct Gemm<'a> {
    pub kernels: &'a Kernels,
    pub pool: &'a ThreadPool,
}

/// `f32` values as the bytes the GEMM kernel reads (little-endian, as on every x86 and ARM
/// machine owl runs on).
fn as_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and every bit pattern of u8 is valid; the length in bytes is
    // exactly 4 × the length in floats, and u8 needs no alignment.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// Columns `c0..c1` of row `r` of `w`, as f32 (`c0` and `c1` on block boundaries, or `c1` the
/// row's end).
fn dequantize_cols(w: &QMatrix, r: usize, c0: usize, c1: usize, out: &mut [f32]) {
    let row = w.row(r);
    match owl_quant::format(w.ty) {
        Some(f) => {
            let b0 = c0 / f.block_size * f.type_size;
            let b1 = c1.div_ceil(f.block_size) * f.type_size;
            (f.dequantize)(&row[b0..b1.min(row.len())], &mut out[..c1 - c0]);
        }
        None => out[..c1 - c0].fill(0.0),
    }
}

/// Elements per quantization block of `w` (1 for float types).
fn block_of(w: &QMatrix) -> usize {
    match w.ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
        ty => owl_quant::format(ty).map_or(1, |f| f.block_size),
    }
}

/// `y[t] = W · x[t]` for the `n` tokens of `x` ([n, cols]); `y` is [n, rows].
pub fn forward(g: Gemm<'_>, w: &QMatrix, x: &[f32], n: usize, y: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    debug_assert!(x.len() >= n * cols && y.len() >= n * rows);
    let gemm = g.kernels.gemm_panel();
    let n_tiles = rows.div_ceil(ROW_TILE);
    let ys = SharedMut::new(y);
    g.pool.run_chunks(n_tiles, |tile, _| {
        let r0 = tile * ROW_TILE;
        let nr = ROW_TILE.min(rows - r0);
        // Wᵀ's columns r0..r0+nr, in panels: panel[c·PANEL + j] = W[r0 + p·PANEL + j, c].
        let mut panels = vec![0f32; nr.div_ceil(PANEL) * cols * PANEL];
        let mut row = vec![0f32; cols];
        for r in 0..nr {
            w.dequantize_row(r0 + r, &mut row);
            let panel = &mut panels[(r / PANEL) * cols * PANEL..];
            for (c, &v) in row.iter().enumerate() {
                panel[c * PANEL + r % PANEL] = v;
            }
        }
        let mut out = vec![0f32; n * nr];
        gemm(cols, n, nr, x, cols, &panels, &mut out, nr, false);
        for t in 0..n {
            // SAFETY: tile `tile` alone writes columns r0..r0+nr of y's rows.
            let dst = unsafe { ys.slice(t * rows + r0, nr) };
            dst.copy_from_slice(&out[t * nr..(t + 1) * nr]);
        }
    });
}

/// `dx[t] += Wᵀ · dy[t]` for the `n` tokens of `dy` ([n, rows]); `dx` is [n, cols].
pub fn backward(g: Gemm<'_>, w: &QMatrix, dy: &[f32], n: usize, dx: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    debug_assert!(dy.len() >= n * rows && dx.len() >= n * cols);
    let gemm = g.kernels.gemm_panel();
    // Column ranges of whole blocks and whole panels, about four per thread.
    let block = block_of(w);
    let unit = lcm(block, PANEL);
    let n_units = cols.div_ceil(unit);
    let per = n_units.div_ceil(4 * g.pool.n_threads()).max(1);
    let n_ranges = n_units.div_ceil(per);
    let dxs = SharedMut::new(dx);
    g.pool.run_chunks(n_ranges, |range, _| {
        let c0 = range * per * unit;
        let c1 = ((range + 1) * per * unit).min(cols);
        let nc = c1 - c0;
        // W's columns c0..c1 in panels: panel[r·PANEL + j] = W[r, c0 + p·PANEL + j].
        let mut panels = vec![0f32; nc.div_ceil(PANEL) * rows * PANEL];
        let mut row = vec![0f32; nc];
        for r in 0..rows {
            dequantize_cols(w, r, c0, c1, &mut row);
            for (p, chunk) in row.chunks(PANEL).enumerate() {
                panels[(p * rows + r) * PANEL..][..chunk.len()].copy_from_slice(chunk);
            }
        }
        let mut out = vec![0f32; n * nc];
        for t in 0..n {
            // SAFETY: range `range` alone touches columns c0..c1 of dx's rows.
            let src = unsafe { dxs.slice(t * cols + c0, nc) };
            out[t * nc..(t + 1) * nc].copy_from_slice(src);
        }
        gemm(rows, n, nc, dy, rows, &panels, &mut out, nc, true);
        for t in 0..n {
            // SAFETY: as above.
            let dst = unsafe { dxs.slice(t * cols + c0, nc) };
            dst.copy_from_slice(&out[t * nc..(t + 1) * nc]);
        }
    });
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut x: usize, mut y: usize| {
        while y != 0 {
            (x, y) = (y, x % y);
        }
        x
    };
    a / gcd(a, b) * b
}

/// `out[t, r] = Σ_k w[r, k] · x[t, k]` for f32 matrices: `w` [rows, cols], `x` [n, cols],
/// `out` [n, rows] (overwritten). Token blocks run in parallel; each value is one kernel
/// product, so the result does not depend on the thread count.
pub fn gemm_nt(g: Gemm<'_>, w: &[f32], rows: usize, x: &[f32], n: usize, out: &mut [f32]) {
    if rows == 0 || n == 0 {
        return;
    }
    let cols = w.len() / rows;
    let Some(gemm) = g.kernels.gemm_float(GgmlType::F32) else {
        return;
    };
    let n_blocks = n.div_ceil(TOKEN_BLOCK);
    let outs = SharedMut::new(out);
    g.pool.run_chunks(n_blocks, |b, _| {
        let t0 = b * TOKEN_BLOCK;
        let nt = TOKEN_BLOCK.min(n - t0);
        // SAFETY: block b alone writes output rows t0..t0+nt.
        let dst = unsafe { outs.slice(t0 * rows, nt * rows) };
        gemm(
            cols,
            as_bytes(&w[..rows * cols]),
            &x[t0 * cols..(t0 + nt) * cols],
            dst,
        );
    });
}

/// The transpose of `m` ([rows, cols]) → [cols, rows].
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use owl_kernels::WeightBytes;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Both products equal a plain f64 loop over the dequantized weight, for a quantized and a
    /// float type, with row and token counts that leave partial tiles.
    #[test]
    fn products_match_a_plain_loop() {
        let kernels = Kernels::detect();
        let pool = ThreadPool::new(2);
        let g = Gemm {
            kernels: &kernels,
            pool: &pool,
        };
        let mut seed = 3;
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q8_0,
            GgmlType::F32,
            GgmlType::Q4_K,
        ] {
            let f = owl_quant::format(ty).expect("format");
            let (rows, cols, n) = (150, if ty == GgmlType::Q4_K { 512 } else { 96 }, 70);
            let vals: Vec<f32> = (0..rows * cols).map(|_| lcg(&mut seed)).collect();
            let bytes = match f.quantize {
                Some(q) => {
                    let mut b = vec![0u8; f.row_bytes(cols) * rows];
                    for r in 0..rows {
                        let rb = f.row_bytes(cols);
                        q(
                            &vals[r * cols..(r + 1) * cols],
                            &mut b[r * rb..(r + 1) * rb],
                        );
                    }
                    b
                }
                None => vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            let w = QMatrix::new(
                ty,
                rows,
                cols,
                WeightBytes::Owned(std::sync::Arc::new(bytes)),
            );
            let mut deq = vec![0f32; rows * cols];
            for r in 0..rows {
                w.dequantize_row(r, &mut deq[r * cols..(r + 1) * cols]);
            }
            let x: Vec<f32> = (0..n * cols).map(|_| lcg(&mut seed)).collect();
            let dy: Vec<f32> = (0..n * rows).map(|_| lcg(&mut seed)).collect();
            let mut y = vec![0f32; n * rows];
            forward(g, &w, &x, n, &mut y);
            let mut dx = vec![1f32; n * cols];
            backward(g, &w, &dy, n, &mut dx);
            for t in 0..n {
                for r in 0..rows {
                    let want: f64 = (0..cols)
                        .map(|c| deq[r * cols + c] as f64 * x[t * cols + c] as f64)
                        .sum();
                    assert!((y[t * rows + r] as f64 - want).abs() < 1e-3, "{ty:?} y");
                }
                for c in 0..cols {
                    let want: f64 = 1.0
                        + (0..rows)
                            .map(|r| deq[r * cols + c] as f64 * dy[t * rows + r] as f64)
                            .sum::<f64>();
                    assert!((dx[t * cols + c] as f64 - want).abs() < 1e-3, "{ty:?} dx");
                }
            }
        }
    }
}
