//! Small helpers shared by every format: `f16` fields and ggml's rounding.

use half::f16;

/// IEEE half → `f32` (exact), as `GGML_FP16_TO_FP32`.
#[inline]
pub fn fp16_to_fp32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// `f32` → IEEE half bits, round-to-nearest-even, as `GGML_FP32_TO_FP16`.
#[inline]
pub fn fp32_to_fp16(v: f32) -> u16 {
    f16::from_f32(v).to_bits()
}

/// ggml's `nearest_int`: adds 1.5·2²³ so the FPU's round-half-to-even lands the integer in the
/// low mantissa bits. Exact for `|fval| <= 4194303`; outside that range (or for NaN) it returns
/// the same meaningless value ggml does.
#[inline]
pub fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// The little-endian `f16` at `b[off..off + 2]`, widened to `f32`.
#[inline]
pub(crate) fn f16_at(b: &[u8], off: usize) -> f32 {
    fp16_to_fp32(u16::from_le_bytes([b[off], b[off + 1]]))
}

/// Stores `v` rounded to `f16` at `b[off..off + 2]`.
#[inline]
pub(crate) fn put_f16(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 2].copy_from_slice(&fp32_to_fp16(v).to_le_bytes());
}

/// The little-endian `f32` at `b[off..off + 4]`.
#[inline]
pub(crate) fn f32_at(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The little-endian `u32` at `b[off..off + 4]`.
#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Debug-build check of the `DequantFn`/`QuantFn` length contract.
#[inline]
pub(crate) fn check_lens(bytes: usize, floats: usize, block_size: usize, type_size: usize) {
    debug_assert!(
        floats % block_size == 0 && bytes == floats / block_size * type_size,
        "{bytes} bytes do not hold {floats} elements in blocks of {block_size}/{type_size}B"
    );
}

/// Debug-build check of the `VecDotFn` length contract.
#[inline]
pub(crate) fn check_dot(n: usize, w: usize, a: usize, bs: usize, w_ts: usize, a_ts: usize) {
    debug_assert!(
        n % bs == 0 && w >= n / bs * w_ts && a >= n / bs * a_ts,
        "vec_dot: n = {n} (blocks of {bs}) with {w} weight bytes and {a} activation bytes"
    );
}

/// The `(bytes, values)` block pairs of a dequantizer, after the debug-build length check.
#[inline]
pub(crate) fn dequant_blocks<'a>(
    src: &'a [u8],
    dst: &'a mut [f32],
    block_size: usize,
    type_size: usize,
) -> impl Iterator<Item = (&'a [u8], &'a mut [f32])> {
    check_lens(src.len(), dst.len(), block_size, type_size);
    src.chunks_exact(type_size)
        .zip(dst.chunks_exact_mut(block_size))
}

/// The `(values, bytes)` block pairs of a quantizer, after the debug-build length check.
#[inline]
pub(crate) fn quant_blocks<'a>(
    src: &'a [f32],
    dst: &'a mut [u8],
    block_size: usize,
    type_size: usize,
) -> impl Iterator<Item = (&'a [f32], &'a mut [u8])> {
    check_lens(dst.len(), src.len(), block_size, type_size);
    src.chunks_exact(block_size)
        .zip(dst.chunks_exact_mut(type_size))
}

/// The `(weight block, activation block)` pairs covering the first `n` elements of a dot
/// product, after the debug-build length check. `block_size` is the weight format's.
#[inline]
pub(crate) fn dot_blocks<'a>(
    n: usize,
    block_size: usize,
    w: &'a [u8],
    w_type_size: usize,
    a: &'a [u8],
    a_type_size: usize,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    check_dot(n, w.len(), a.len(), block_size, w_type_size, a_type_size);
    w.chunks_exact(w_type_size)
        .zip(a.chunks_exact(a_type_size))
        .take(n / block_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_is_round_half_even() {
        let mut x = 0x1234_5678u32;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = (x as f32 / u32::MAX as f32 - 0.5) * 8_000_000.0;
            assert_eq!(nearest_int(v), v.round_ties_even() as i32, "{v}");
        }
        for (v, want) in [
            (0.5f32, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.5, -2),
        ] {
            assert_eq!(nearest_int(v), want, "{v}");
        }
        assert_eq!(nearest_int(4_194_303.0), 4_194_303);
        assert_eq!(nearest_int(-4_194_303.0), -4_194_303);
    }

    #[test]
    fn f16_round_trip_and_rounding() {
        assert_eq!(fp32_to_fp16(1.0), 0x3c00);
        assert_eq!(fp32_to_fp16(65520.0), 0x7c00); // rounds to +inf like ggml
        assert_eq!(fp32_to_fp16(1.0 + 2f32.powi(-11)), 0x3c00); // tie to even
        assert_eq!(fp32_to_fp16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        for bits in 0..=u16::MAX {
            let v = fp16_to_fp32(bits);
            if !v.is_nan() {
                assert_eq!(fp32_to_fp16(v), bits);
            }
        }
    }
}
