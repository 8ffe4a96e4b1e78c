//! `F32`: plain little-endian floats.

use crate::common::{check_dot, check_lens, f32_at};

pub const BLOCK_SIZE: usize = 1;
pub const TYPE_SIZE: usize = 4;

/// Little-endian bytes → floats.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    check_lens(src.len(), dst.len(), BLOCK_SIZE, TYPE_SIZE);
    for (b, y) in src.chunks_exact(TYPE_SIZE).zip(dst.iter_mut()) {
        *y = f32_at(b, 0);
    }
}

/// Floats → little-endian bytes.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    check_lens(dst.len(), src.len(), BLOCK_SIZE, TYPE_SIZE);
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(TYPE_SIZE)) {
        b.copy_from_slice(&x.to_le_bytes());
    }
}

/// ggml's scalar `ggml_vec_dot_f32` (the build without `GGML_SIMD`): each product is rounded to
/// `f32`, the products are summed left to right in an `f64` (`ggml_float`) accumulator, and the
/// sum is rounded to `f32` once at the end.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check_dot(n, w.len(), a.len(), BLOCK_SIZE, TYPE_SIZE, TYPE_SIZE);
    let mut sumf = 0.0f64;
    for (x, y) in w.chunks_exact(TYPE_SIZE).zip(a.chunks_exact(TYPE_SIZE)).take(n) {
        sumf += f64::from(f32_at(x, 0) * f32_at(y, 0));
    }
    sumf as f32
}
