//! `F32`: plain little-endian floats.

use crate::common::{dequant_blocks, dot_blocks, f32_at, quant_blocks};

pub const BLOCK_SIZE: usize = 1;
pub const TYPE_SIZE: usize = 4;

/// Little-endian bytes → floats.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        y[0] = f32_at(b, 0);
    }
}

/// Floats → little-endian bytes.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, b) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        b.copy_from_slice(&x[0].to_le_bytes());
    }
}

/// ggml's scalar `ggml_vec_dot_f32` (the build without `GGML_SIMD`): each product is rounded to
/// `f32`, the products are summed left to right in an `f64` (`ggml_float`) accumulator, and the
/// sum is rounded to `f32` once at the end.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f64;
    for (x, y) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, TYPE_SIZE) {
        sumf += f64::from(f32_at(x, 0) * f32_at(y, 0));
    }
    sumf as f32
}
