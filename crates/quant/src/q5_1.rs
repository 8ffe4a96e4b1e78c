//! `Q5_1`: 32 values as 5-bit steps above a minimum, with `f16` step and minimum.
//!
//! Layout (24 bytes): `d: f16` at 0, `m: f16` at 2, `qh: u32` at 4, `qs: [u8; 16]` at 8 (bits as
//! in `Q5_0`). Value is `q * d + m`.

use crate::common::{dequant_blocks, dot_blocks, f16_at, put_f16, quant_blocks, u32_at};
use crate::q8_1;

pub const BLOCK_SIZE: usize = 32;
pub const TYPE_SIZE: usize = 24;
/// Offset of `m`.
pub const M: usize = 2;
/// Offset of `qh`.
pub const QH: usize = 4;
/// Offset of `qs`.
pub const QS: usize = 8;

/// The 5-bit values of one block, in element order.
#[inline]
fn unpack(b: &[u8], j: usize, qh: u32) -> (u32, u32) {
    let xh_0 = ((qh >> j) << 4) & 0x10;
    let xh_1 = (qh >> (j + 12)) & 0x10;
    (
        u32::from(b[QS + j] & 0x0f) | xh_0,
        u32::from(b[QS + j] >> 4) | xh_1,
    )
}

/// `dequantize_row_q5_1`: `q * d + m` (two roundings).
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, 0);
        let m = f16_at(b, M);
        let qh = u32_at(b, QH);
        for j in 0..BLOCK_SIZE / 2 {
            let (x0, x1) = unpack(b, j, qh);
            y[j] = x0 as f32 * d + m;
            y[j + BLOCK_SIZE / 2] = x1 as f32 * d + m;
        }
    }
}

/// `quantize_row_q5_1_ref`: `d = (max - min) / 31`, `q = trunc((x - min) / d + 0.5)` (no clamp,
/// as in ggml; the bits above the fifth are dropped).
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let (mut min, mut max) = (f32::MAX, -f32::MAX);
        for &v in x {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        put_f16(y, M, min);
        let mut qh = 0u32;
        for j in 0..BLOCK_SIZE / 2 {
            let x0 = (x[j] - min) * id;
            let x1 = (x[BLOCK_SIZE / 2 + j] - min) * id;
            let xi0 = (x0 + 0.5) as u8;
            let xi1 = (x1 + 0.5) as u8;
            y[QS + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
            qh |= (u32::from(xi0 & 0x10) >> 4) << j;
            qh |= (u32::from(xi1 & 0x10) >> 4) << (j + BLOCK_SIZE / 2);
        }
        y[QH..QH + 4].copy_from_slice(&qh.to_le_bytes());
    }
}

/// `ggml_vec_dot_q5_1_q8_1_generic`: per block `sumi = Σ q·y` in integers, then
/// `sumf += (d_x * d_y) * sumi + m_x * s_y`.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_1::TYPE_SIZE) {
        let qh = u32_at(x, QH);
        let (mut sumi0, mut sumi1) = (0i32, 0i32);
        for j in 0..BLOCK_SIZE / 2 {
            let (x0, x1) = unpack(x, j, qh);
            sumi0 += x0 as i32 * i32::from(y[q8_1::QS + j] as i8);
            sumi1 += x1 as i32 * i32::from(y[q8_1::QS + j + BLOCK_SIZE / 2] as i8);
        }
        let sumi = sumi0 + sumi1;
        sumf += (f16_at(x, 0) * f16_at(y, 0)) * sumi as f32 + f16_at(x, M) * f16_at(y, q8_1::S);
    }
    sumf
}
