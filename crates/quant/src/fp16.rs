//! `F16`: little-endian IEEE half floats.

use crate::common::{dequant_blocks, dot_blocks, f16_at, put_f16, quant_blocks};

pub const BLOCK_SIZE: usize = 1;
pub const TYPE_SIZE: usize = 2;

/// Halves → floats (exact).
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        y[0] = f16_at(b, 0);
    }
}

/// Floats → halves, round-to-nearest-even (`GGML_FP32_TO_FP16`; also the activation quantizer
/// for `F16` weights).
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, b) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        put_f16(b, 0, x[0]);
    }
}

/// ggml's scalar `ggml_vec_dot_f16`: both sides widened to `f32`, each product rounded to `f32`
/// (exact for halves), summed left to right in an `f64` accumulator, rounded to `f32` at the end.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f64;
    for (x, y) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, TYPE_SIZE) {
        sumf += f64::from(f16_at(x, 0) * f16_at(y, 0));
    }
    sumf as f32
}
