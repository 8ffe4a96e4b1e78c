//! Float-weight GEMM: F16, BF16 or F32 weight rows × a batch of f32 activation rows.
//!
//! Why it exists: the row-layout path (`matmul::linear_many`) computes one weight row · one token
//! at a time through the format's dot product, and for F16 weights that product also rounds the
//! activations to f16 first (ggml's `vec_dot_f16`). An encoder (MiniLM, BERT) runs hundreds of
//! tokens through small matrices, where that is latency-bound: every product re-converts the
//! same weights and reduces one accumulator at a time. Here a register tile of several rows ×
//! several tokens is computed together (llamafile's tinyBLAS idea): each weight vector is
//! loaded and converted to f32 once per tile and meets every token of the tile in an f32 FMA.
//!
//! Why the summation order is fixed here, in the scalar twin: a (row, token) result must not
//! depend on the batch size or on which tile it lands in (batched == alone, bit for bit), and
//! every ISA must give the scalar twin's bits. So each product is defined as: eight lanes, lane
//! `l` accumulating `w[k] * x[k]` for `k = 8i + l` (i ascending) with a fused multiply-add; the
//! lanes combined in a fixed tree (`l + l+4`, then `l + l+2`, then `0 + 1`); the `cols % 8` tail
//! added after, in order, each with a fused multiply-add. Weights convert to f32 exactly (f16
//! and bf16 are subsets of f32), so the only rounding is the FMAs and the tree.
//!
//! The f32 activations are not rounded to f16 (unlike ggml's F16 dot), which is closer to the
//! f64 reference, not further.

use half::f16;
use owl_quant::GgmlType;

/// Lanes of the fixed summation order.
pub const LANES: usize = 8;

/// `out[t * nr + r] = w_row(r) · x_row(t)` for the `nr = w.len() / row_bytes` rows of `w` and
/// the `nt = x.len() / cols` tokens of `x` (see `GemmFloatFn`).
pub type GemmFloatFn = fn(cols: usize, w: &[u8], x: &[f32], out: &mut [f32]);

/// Bytes per weight element of a float type this GEMM takes (`None` for others).
pub fn elem_bytes(ty: GgmlType) -> Option<usize> {
    match ty {
        GgmlType::F32 => Some(4),
        GgmlType::F16 | GgmlType::BF16 => Some(2),
        _ => None,
    }
}

/// Weight element `k` of a row as f32 (exact).
#[inline(always)]
fn elem<const KIND: u8>(w: &[u8], k: usize) -> f32 {
    match KIND {
        KIND_F16 => f16::from_bits(u16::from_le_bytes([w[2 * k], w[2 * k + 1]])).to_f32(),
        KIND_BF16 => f32::from_bits((u16::from_le_bytes([w[2 * k], w[2 * k + 1]]) as u32) << 16),
        _ => f32::from_le_bytes([w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3]]),
    }
}

pub(crate) const KIND_F16: u8 = 0;
pub(crate) const KIND_BF16: u8 = 1;
pub(crate) const KIND_F32: u8 = 2;

/// The fixed lane tree: `(l + l+4)`, then `(0+2) + (1+3)`.
#[inline(always)]
pub(crate) fn reduce8(a: [f32; LANES]) -> f32 {
    let v = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (v[0] + v[2]) + (v[1] + v[3])
}

/// The `cols % 8` tail of one product, added to the reduced lanes `s` in order.
#[inline(always)]
pub(crate) fn tail<const KIND: u8>(cols: usize, w: &[u8], x: &[f32], mut s: f32) -> f32 {
    let start = cols / LANES * LANES;
    for (k, &xk) in x.iter().enumerate().take(cols).skip(start) {
        s = elem::<KIND>(w, k).mul_add(xk, s);
    }
    s
}

/// The reference product of one row and one token, in the order the module essay defines.
fn dot_scalar<const KIND: u8>(cols: usize, w: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for i in 0..cols / LANES {
        for (l, a) in acc.iter_mut().enumerate() {
            let k = i * LANES + l;
            *a = elem::<KIND>(w, k).mul_add(x[k], *a);
        }
    }
    tail::<KIND>(cols, w, x, reduce8(acc))
}

fn gemm_scalar<const KIND: u8>(cols: usize, w: &[u8], x: &[f32], out: &mut [f32]) {
    let rb = cols * if KIND == KIND_F32 { 4 } else { 2 };
    let (nr, nt) = (w.len() / rb.max(1), x.len() / cols.max(1));
    assert!(out.len() >= nr * nt, "gemm_float: short output");
    for t in 0..nt {
        let xr = &x[t * cols..(t + 1) * cols];
        for r in 0..nr {
            out[t * nr + r] = dot_scalar::<KIND>(cols, &w[r * rb..(r + 1) * rb], xr);
        }
    }
}

/// The scalar twins, for the scalar registry entry.
pub(crate) fn register_scalar(k: &mut crate::Kernels) {
    k.set_gemm_float(GgmlType::F16, gemm_scalar::<KIND_F16>, "scalar");
    k.set_gemm_float(GgmlType::BF16, gemm_scalar::<KIND_BF16>, "scalar");
    k.set_gemm_float(GgmlType::F32, gemm_scalar::<KIND_F32>, "scalar");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Isa;
    use crate::Kernels;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn weights(ty: GgmlType, n: usize, seed: &mut u64) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..n {
            let v = lcg(seed);
            match ty {
                GgmlType::F16 => out.extend_from_slice(&f16::from_f32(v).to_bits().to_le_bytes()),
                GgmlType::BF16 => {
                    out.extend_from_slice(&((v.to_bits() >> 16) as u16).to_le_bytes())
                }
                _ => out.extend_from_slice(&v.to_le_bytes()),
            }
        }
        out
    }

    /// Every ISA's GEMM equals the scalar twin bit for bit, for every tile remainder and odd
    /// column counts, and a product does not depend on the batch it is computed in.
    #[test]
    fn every_isa_equals_scalar_and_is_batch_invariant() {
        let scalar = Kernels::for_isa(Isa::SCALAR);
        let mut seed = 7u64;
        for ty in [GgmlType::F16, GgmlType::BF16, GgmlType::F32] {
            let eb = elem_bytes(ty).expect("a float type");
            for &cols in &[8usize, 13, 64, 384, 391] {
                for &(nr, nt) in &[(1usize, 1usize), (3, 5), (4, 4), (7, 9), (13, 6)] {
                    let w = weights(ty, nr * cols, &mut seed);
                    let x: Vec<f32> = (0..nt * cols).map(|_| lcg(&mut seed)).collect();
                    let mut want = vec![0f32; nr * nt];
                    (scalar.gemm_float(ty).expect("scalar gemm"))(cols, &w, &x, &mut want);
                    // The scalar tile equals the single product (batch invariance).
                    for t in 0..nt {
                        for r in 0..nr {
                            let mut one = [0f32];
                            (scalar.gemm_float(ty).expect("scalar gemm"))(
                                cols,
                                &w[r * cols * eb..(r + 1) * cols * eb],
                                &x[t * cols..(t + 1) * cols],
                                &mut one,
                            );
                            assert_eq!(one[0].to_bits(), want[t * nr + r].to_bits());
                        }
                    }
                    for isa in Isa::available() {
                        let k = Kernels::for_isa(isa);
                        let mut got = vec![0f32; nr * nt];
                        (k.gemm_float(ty).expect("gemm"))(cols, &w, &x, &mut got);
                        for (a, b) in got.iter().zip(&want) {
                            assert_eq!(
                                a.to_bits(),
                                b.to_bits(),
                                "{} {ty:?} cols {cols} {nr}x{nt}",
                                isa.name()
                            );
                        }
                    }
                }
            }
        }
    }
}
