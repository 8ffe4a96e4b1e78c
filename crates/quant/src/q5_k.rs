//! `Q5_K`: `Q4_K` with a fifth bit per value.
//!
//! Layout (176 bytes): `d: f16` at 0, `dmin: f16` at 2, `scales: [u8; 12]` at 4, `qh: [u8; 32]`
//! at 16 (bit `k` of byte `l` is the fifth bit of value `32k + l`), `qs: [u8; 128]` at 48
//! (nibbles as in `Q4_K`).

use crate::common::{dequant_blocks, dot_blocks, f16_at, quant_blocks};
use crate::k_common::{get_scale_min_k4, Qkx2, K_SCALE_SIZE};
use crate::q4_k::{dot_block, quantize_levels};
use crate::{q8_k, QK_K};

pub const BLOCK_SIZE: usize = QK_K;
pub const TYPE_SIZE: usize = 176;
/// Offset of `scales`.
pub const SCALES: usize = 4;
/// Offset of `qh`.
pub const QH: usize = 16;
/// Offset of `qs`.
pub const QS: usize = 48;

/// `dequantize_row_q5_K`: `d1 * q - m1` with `d1 = d * sc`, `m1 = dmin * m`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, 0);
        let min = f16_at(b, 2);
        let scales = &b[SCALES..SCALES + K_SCALE_SIZE];
        let qh = &b[QH..QH + 32];
        let (mut u1, mut u2) = (1u8, 2u8);
        for j in 0..QK_K / 64 {
            let ql = &b[QS + 32 * j..QS + 32 * j + 32];
            let (sc, m) = get_scale_min_k4(2 * j, scales);
            let (d1, m1) = (d * f32::from(sc), min * f32::from(m));
            let (sc, m) = get_scale_min_k4(2 * j + 1, scales);
            let (d2, m2) = (d * f32::from(sc), min * f32::from(m));
            for l in 0..32 {
                let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                y[64 * j + l] = d1 * f32::from((ql[l] & 0x0f) + h1) - m1;
                y[64 * j + 32 + l] = d2 * f32::from((ql[l] >> 4) + h2) - m2;
            }
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

/// `quantize_row_q5_K_ref`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    let p = Qkx2 {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        y.fill(0);
        let ls = quantize_levels(x, &p, y);
        let (mut m1, mut m2) = (1u8, 2u8);
        for n in 0..QK_K / 64 {
            for j in 0..32 {
                let mut l1 = ls[64 * n + j];
                if l1 > 15 {
                    l1 -= 16;
                    y[QH + j] |= m1;
                }
                let mut l2 = ls[64 * n + j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    y[QH + j] |= m2;
                }
                y[QS + 32 * n + j] = l1 | (l2 << 4);
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    }
}

/// `ggml_vec_dot_q5_K_q8_K_generic` (same accumulation as [`crate::q4_k::vec_dot`]).
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0f32; 8];
    let mut sumf = 0.0f32;
    for (x, yb) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_k::TYPE_SIZE) {
        let y = q8_k::Block::parse(yb);
        let hm = &x[QH..QH + 32];
        let mut aux8 = [0i8; QK_K];
        let mut m = 1u8;
        for j in 0..QK_K / 64 {
            let q4 = &x[QS + 32 * j..QS + 32 * j + 32];
            for l in 0..32 {
                aux8[64 * j + l] = (q4[l] & 0x0f) as i8 + if hm[l] & m != 0 { 16 } else { 0 };
            }
            m <<= 1;
            for l in 0..32 {
                aux8[64 * j + 32 + l] = (q4[l] >> 4) as i8 + if hm[l] & m != 0 { 16 } else { 0 };
            }
            m <<= 1;
        }
        sumf -= dot_block(x, &y, &aux8, &mut sums);
    }
    for s in sums {
        sumf += s;
    }
    sumf
}
