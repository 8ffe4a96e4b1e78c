//! `Q8_1`: `Q8_0` plus the block sum, the activation format for `Q4_1` and `Q5_1` weights (whose
//! dot products need `Σ y` to apply the weight block's minimum).
//!
//! Layout (36 bytes): `d: f16` at 0, `s: f16` at 2 (`d * Σ qs`, from the unrounded `d`),
//! `qs: [i8; 32]` at 4. Value `i` is `d * qs[i]`.

use crate::common::{dequant_blocks, f16_at, put_f16, quant_blocks};

pub const BLOCK_SIZE: usize = 32;
pub const TYPE_SIZE: usize = 36;
/// Offset of `s`.
pub const S: usize = 2;
/// Offset of `qs`.
pub const QS: usize = 4;

/// `qs[i] * d` (ggml has no dequantizer for this type; this is the obvious one).
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, 0);
        for j in 0..BLOCK_SIZE {
            y[j] = f32::from(b[QS + j] as i8) * d;
        }
    }
}

/// `quantize_row_q8_1_ref`: the `Q8_0` rounding, plus `s = f16(Σqs * d)` where `d` is the `f32`
/// scale *before* it is rounded to `f16`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let mut amax = 0.0f32;
        for &v in x {
            amax = if amax > v.abs() { amax } else { v.abs() };
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(y, 0, d);
        let mut sum = 0i32;
        for j in 0..BLOCK_SIZE / 2 {
            let q0 = (x[j] * id).round() as i8;
            let q1 = (x[BLOCK_SIZE / 2 + j] * id).round() as i8;
            y[QS + j] = q0 as u8;
            y[QS + BLOCK_SIZE / 2 + j] = q1 as u8;
            sum += i32::from(q0) + i32::from(q1);
        }
        put_f16(y, S, sum as f32 * d);
    }
}
