//! `MXFP4` (gpt-oss expert weights): 32 FP4 (E2M1) values sharing one E8M0 power-of-two scale.
//!
//! Layout (17 bytes): `e: u8` at 0, `qs: [u8; 16]` at 1. Value `j` (`j < 16`) is the low nibble
//! of `qs[j]`, value `j + 16` its high nibble. As in ggml, a nibble indexes `KVALUES` (twice the
//! E2M1 value, so integers) and the scale is `2^(e - 128)`, half of the E8M0 value.

use crate::common::{dequant_blocks, dot_blocks, f16_at, quant_blocks};
use crate::q8_0;

pub const BLOCK_SIZE: usize = 32;
pub const TYPE_SIZE: usize = 17;
/// Offset of `qs`.
pub const QS: usize = 1;

/// Twice the E2M1 values, by nibble (ggml's `kvalues_mxfp4`).
pub const KVALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// `ggml_e8m0_to_fp32_half`: `2^(e - 128)`, exact (subnormal for `e < 2`).
pub fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        u32::from(e - 1) << 23
    };
    f32::from_bits(bits)
}

/// `dequantize_row_mxfp4`: `KVALUES[q] * 2^(e - 128)`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = e8m0_half(b[0]);
        for j in 0..BLOCK_SIZE / 2 {
            y[j] = f32::from(KVALUES[usize::from(b[QS + j] & 0x0f)]) * d;
            y[j + BLOCK_SIZE / 2] = f32::from(KVALUES[usize::from(b[QS + j] >> 4)]) * d;
        }
    }
}

/// The nibble whose value times `d` is nearest to `x` (the first on ties), as ggml's
/// `best_index_mxfp4`.
fn best_index(x: f32, d: f32) -> u8 {
    let mut best = 0;
    let mut best_err = (f32::from(KVALUES[0]) * d - x).abs();
    for (i, &k) in KVALUES.iter().enumerate().skip(1) {
        let err = (f32::from(k) * d - x).abs();
        if err < best_err {
            best = i;
            best_err = err;
        }
    }
    best as u8
}

/// `quantize_row_mxfp4_ref`: `e = floor(log2(amax)) - 2 + 127` (0 for an all-zero block), then
/// each value to its nearest representable one.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let amax = x
            .iter()
            .fold(0.0f32, |m, v| if m < v.abs() { v.abs() } else { m });
        let e = if amax > 0.0 {
            (amax.log2().floor() - 2.0 + 127.0) as u8
        } else {
            0
        };
        let d = e8m0_half(e);
        y[0] = e;
        for j in 0..BLOCK_SIZE / 2 {
            y[QS + j] = best_index(x[j], d) | (best_index(x[BLOCK_SIZE / 2 + j], d) << 4);
        }
    }
}

/// `ggml_vec_dot_mxfp4_q8_0_generic`: per block the low and high halves summed in integers,
/// then `sumf += d_y * d_x * (sumi1 + sumi2)`.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_0::TYPE_SIZE) {
        let d = f16_at(y, 0) * e8m0_half(x[0]);
        let (mut sumi1, mut sumi2) = (0i32, 0i32);
        for j in 0..BLOCK_SIZE / 2 {
            let q = x[QS + j];
            sumi1 += i32::from(y[q8_0::QS + j] as i8) * i32::from(KVALUES[usize::from(q & 0x0f)]);
            sumi2 += i32::from(y[q8_0::QS + j + BLOCK_SIZE / 2] as i8)
                * i32::from(KVALUES[usize::from(q >> 4)]);
        }
        sumf += d * (sumi1 + sumi2) as f32;
    }
    sumf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_powers_of_two() {
        assert_eq!(e8m0_half(128), 1.0);
        assert_eq!(e8m0_half(127), 0.5);
        assert_eq!(e8m0_half(1), 2f32.powi(-127));
        assert_eq!(e8m0_half(0), 2f32.powi(-128));
        assert_eq!(e8m0_half(255), 2f32.powi(127));
    }
}
