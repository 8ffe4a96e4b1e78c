//! `Q4_0`: 32 values as 4-bit offsets from -8 with one `f16` scale.
//!
//! Layout (18 bytes): `d: f16` at 0, `qs: [u8; 16]` at 2. Value `j` (`j < 16`) is the low nibble
//! of `qs[j]`, value `j + 16` its high nibble; each is `d * (q - 8)`.

use crate::common::{dequant_blocks, dot_blocks, f16_at, put_f16, quant_blocks};
use crate::q8_0;

pub const BLOCK_SIZE: usize = 32;
pub const TYPE_SIZE: usize = 18;
/// Offset of `qs`.
pub const QS: usize = 2;

/// `dequantize_row_q4_0`: `(q - 8) * d`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, 0);
        for j in 0..BLOCK_SIZE / 2 {
            let x0 = i32::from(b[QS + j] & 0x0f) - 8;
            let x1 = i32::from(b[QS + j] >> 4) - 8;
            y[j] = x0 as f32 * d;
            y[j + BLOCK_SIZE / 2] = x1 as f32 * d;
        }
    }
}

/// `quantize_row_q4_0_ref`: `d = max / -8` where `max` is the first value of largest magnitude
/// (sign kept), `q = min(15, trunc(x / d + 8.5))`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        for j in 0..BLOCK_SIZE / 2 {
            let x0 = x[j] * id;
            let x1 = x[BLOCK_SIZE / 2 + j] * id;
            let xi0 = ((x0 + 8.5) as i8).min(15) as u8;
            let xi1 = ((x1 + 8.5) as i8).min(15) as u8;
            y[QS + j] = xi0 | (xi1 << 4);
        }
    }
}

/// `ggml_vec_dot_q4_0_q8_0_generic`: per block `sumi = Σ (q - 8)·y` in integers (low and high
/// halves summed separately, then added), then `sumf += sumi * d_x * d_y`.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_0::TYPE_SIZE) {
        let (mut sumi0, mut sumi1) = (0i32, 0i32);
        for j in 0..BLOCK_SIZE / 2 {
            let v0 = i32::from(x[QS + j] & 0x0f) - 8;
            let v1 = i32::from(x[QS + j] >> 4) - 8;
            sumi0 += v0 * i32::from(y[q8_0::QS + j] as i8);
            sumi1 += v1 * i32::from(y[q8_0::QS + j + BLOCK_SIZE / 2] as i8);
        }
        let sumi = sumi0 + sumi1;
        sumf += sumi as f32 * f16_at(x, 0) * f16_at(y, 0);
    }
    sumf
}
