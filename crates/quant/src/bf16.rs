//! `BF16`: little-endian brain floats (the top 16 bits of an `f32`).

use crate::common::{dequant_blocks, dot_blocks, quant_blocks};

pub const BLOCK_SIZE: usize = 1;
pub const TYPE_SIZE: usize = 2;

#[inline]
fn bf16_at(b: &[u8], off: usize) -> f32 {
    f32::from_bits(u32::from(u16::from_le_bytes([b[off], b[off + 1]])) << 16)
}

/// `ggml_compute_fp32_to_bf16`: NaNs are made quiet, everything else rounds to nearest even
/// (subnormals are kept, overflow goes to infinity).
#[inline]
pub fn fp32_to_bf16(v: f32) -> u16 {
    let u = v.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// Brain floats → floats (exact).
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        y[0] = bf16_at(b, 0);
    }
}

/// Floats → brain floats ([`fp32_to_bf16`]).
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, b) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        b.copy_from_slice(&fp32_to_bf16(x[0]).to_le_bytes());
    }
}

/// ggml's scalar `ggml_vec_dot_bf16`: `f32` products summed left to right in an `f64`
/// accumulator, rounded to `f32` at the end.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f64;
    for (x, y) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, TYPE_SIZE) {
        sumf += f64::from(bf16_at(x, 0) * bf16_at(y, 0));
    }
    sumf as f32
}
