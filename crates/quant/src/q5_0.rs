//! `Q5_0`: 32 values as 5-bit offsets from -16 with one `f16` scale.
//!
//! Layout (22 bytes): `d: f16` at 0, `qh: u32` at 2 (bit `j` is the fifth bit of value `j`),
//! `qs: [u8; 16]` at 6 (low nibbles as in `Q4_0`). Value is `d * (q - 16)`.

use crate::common::{dequant_blocks, dot_blocks, f16_at, put_f16, quant_blocks, u32_at};
use crate::q8_0;

pub const BLOCK_SIZE: usize = 32;
pub const TYPE_SIZE: usize = 22;
/// Offset of `qh`.
pub const QH: usize = 2;
/// Offset of `qs`.
pub const QS: usize = 6;

/// `dequantize_row_q5_0`: `(q - 16) * d`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, 0);
        let qh = u32_at(b, QH);
        for j in 0..BLOCK_SIZE / 2 {
            let xh_0 = ((qh >> j) << 4) & 0x10;
            let xh_1 = (qh >> (j + 12)) & 0x10;
            let x0 = (u32::from(b[QS + j] & 0x0f) | xh_0) as i32 - 16;
            let x1 = (u32::from(b[QS + j] >> 4) | xh_1) as i32 - 16;
            y[j] = x0 as f32 * d;
            y[j + BLOCK_SIZE / 2] = x1 as f32 * d;
        }
    }
}

/// `quantize_row_q5_0_ref`: `d = max / -16` (`max` = first value of largest magnitude),
/// `q = min(31, trunc(x / d + 16.5))`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        let mut qh = 0u32;
        for j in 0..BLOCK_SIZE / 2 {
            let x0 = x[j] * id;
            let x1 = x[BLOCK_SIZE / 2 + j] * id;
            let xi0 = ((x0 + 16.5) as i8).min(31) as u8;
            let xi1 = ((x1 + 16.5) as i8).min(31) as u8;
            y[QS + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
            qh |= (u32::from(xi0 & 0x10) >> 4) << j;
            qh |= (u32::from(xi1 & 0x10) >> 4) << (j + BLOCK_SIZE / 2);
        }
        y[QH..QH + 4].copy_from_slice(&qh.to_le_bytes());
    }
}

/// `ggml_vec_dot_q5_0_q8_0_generic`: per block `sumi = Σ (q - 16)·y` in integers, then
/// `sumf += (d_x * d_y) * sumi`.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_0::TYPE_SIZE) {
        let qh = u32_at(x, QH);
        let (mut sumi0, mut sumi1) = (0i32, 0i32);
        for j in 0..BLOCK_SIZE / 2 {
            let xh_0 = ((qh & (1 << j)) >> j) << 4;
            let xh_1 = (qh & (1 << (j + 16))) >> (j + 12);
            let x0 = (u32::from(x[QS + j] & 0x0f) | xh_0) as i32 - 16;
            let x1 = (u32::from(x[QS + j] >> 4) | xh_1) as i32 - 16;
            sumi0 += x0 * i32::from(y[q8_0::QS + j] as i8);
            sumi1 += x1 * i32::from(y[q8_0::QS + j + BLOCK_SIZE / 2] as i8);
        }
        let sumi = sumi0 + sumi1;
        sumf += (f16_at(x, 0) * f16_at(y, 0)) * sumi as f32;
    }
    sumf
}
