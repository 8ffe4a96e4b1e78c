//! `Q8_0`: blocks of 32 signed bytes with one `f16` scale. Weight format and the activation
//! format for `Q4_0`, `Q5_0` and `Q8_0` weights.
//!
//! Layout (34 bytes): `d: f16` at 0, `qs: [i8; 32]` at 2. Value `i` is `d * qs[i]`.

use crate::common::{dequant_blocks, dot_blocks, f16_at, put_f16, quant_blocks};

pub const BLOCK_SIZE: usize = 32;
pub const TYPE_SIZE: usize = 34;
/// Offset of `qs`.
pub const QS: usize = 2;

/// `dequantize_row_q8_0`: `qs[i] * d`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, 0);
        for j in 0..BLOCK_SIZE {
            y[j] = f32::from(b[QS + j] as i8) * d;
        }
    }
}

/// `quantize_row_q8_0_ref`: `d = amax / 127`, `q = roundf(x / d)` (ties away from zero, via the
/// reciprocal `id` exactly as ggml computes it), `d` stored as `f16`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let mut amax = 0.0f32;
        for &v in x {
            // MAX(amax, fabsf(v)) with ggml's operand order (matters only for NaN).
            amax = if amax > v.abs() { amax } else { v.abs() };
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        for j in 0..BLOCK_SIZE {
            y[QS + j] = (x[j] * id).round() as i8 as u8;
        }
    }
}

/// `ggml_vec_dot_q8_0_q8_0_generic`: per block `sumi = Σ x·y` in integers, then
/// `sumf += sumi * (d_x * d_y)`.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, TYPE_SIZE) {
        let mut sumi = 0i32;
        for j in 0..BLOCK_SIZE {
            sumi += i32::from(x[QS + j] as i8) * i32::from(y[QS + j] as i8);
        }
        sumf += sumi as f32 * (f16_at(x, 0) * f16_at(y, 0));
    }
    sumf
}
