//! `F16`: little-endian IEEE half floats.

use crate::common::{check_dot, check_lens, f16_at, put_f16};

pub const BLOCK_SIZE: usize = 1;
pub const TYPE_SIZE: usize = 2;

/// Halves → floats (exact).
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    check_lens(src.len(), dst.len(), BLOCK_SIZE, TYPE_SIZE);
    for (b, y) in src.chunks_exact(TYPE_SIZE).zip(dst.iter_mut()) {
        *y = f16_at(b, 0);
    }
}

/// Floats → halves, round-to-nearest-even (`GGML_FP32_TO_FP16`; also the activation quantizer
/// for `F16` weights).
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    check_lens(dst.len(), src.len(), BLOCK_SIZE, TYPE_SIZE);
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(TYPE_SIZE)) {
        put_f16(b, 0, *x);
    }
}

/// ggml's scalar `ggml_vec_dot_f16`: both sides widened to `f32`, each product rounded to `f32`
/// (exact for halves), summed left to right in an `f64` accumulator, rounded to `f32` at the end.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check_dot(n, w.len(), a.len(), BLOCK_SIZE, TYPE_SIZE, TYPE_SIZE);
    let mut sumf = 0.0f64;
    for (x, y) in w.chunks_exact(TYPE_SIZE).zip(a.chunks_exact(TYPE_SIZE)).take(n) {
        sumf += f64::from(f16_at(x, 0) * f16_at(y, 0));
    }
    sumf as f32
}
