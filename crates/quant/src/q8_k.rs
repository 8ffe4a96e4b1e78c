//! `Q8_K`: the activation format of every K-quant weight: 256 signed bytes with an `f32` scale
//! and the sums of each group of 16 (which the K-quant dot products use to apply the weight
//! blocks' minimums without touching every element).
//!
//! Layout (292 bytes): `d: f32` at 0, `qs: [i8; 256]` at 4, `bsums: [i16; 16]` at 260.
//! Value `i` is `d * qs[i]`.

use crate::common::{dequant_blocks, f32_at, nearest_int, quant_blocks};
use crate::QK_K;

pub const BLOCK_SIZE: usize = QK_K;
pub const TYPE_SIZE: usize = 292;
/// Offset of `qs`.
pub const QS: usize = 4;
/// Offset of `bsums`.
pub const BSUMS: usize = 260;

/// The parts of one `Q8_K` block, decoded.
pub(crate) struct Block<'a> {
    pub d: f32,
    /// 256 quants (read each with `as i8`).
    pub qs: &'a [u8],
    pub bsums: [i16; 16],
}

impl<'a> Block<'a> {
    #[inline]
    pub(crate) fn parse(b: &'a [u8]) -> Block<'a> {
        let mut bsums = [0i16; 16];
        for (j, s) in bsums.iter_mut().enumerate() {
            *s = i16::from_le_bytes([b[BSUMS + 2 * j], b[BSUMS + 2 * j + 1]]);
        }
        Block {
            d: f32_at(b, 0),
            qs: &b[QS..QS + QK_K],
            bsums,
        }
    }

    #[inline]
    pub(crate) fn q(&self, i: usize) -> i32 {
        i32::from(self.qs[i] as i8)
    }
}

/// `dequantize_row_q8_K`: `d * qs[i]`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f32_at(b, 0);
        for j in 0..QK_K {
            y[j] = d * f32::from(b[QS + j] as i8);
        }
    }
}

/// `quantize_row_q8_K_ref`: `max` is the first value of largest magnitude *with its sign*,
/// `iscale = -127 / max`, `q = min(127, nearest_int(iscale * x))` (so the largest value maps to
/// -127 and `d = 1 / iscale` is negative when `max` is positive), `bsums` are the sums of each
/// 16 quants. An all-zero block stores `d = 0` and zero quants; ggml leaves its `bsums`
/// unwritten, owl writes zeros.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let (mut max, mut amax) = (0.0f32, 0.0f32);
        for &v in x {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        if amax == 0.0 {
            y.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        for j in 0..QK_K {
            let v = nearest_int(iscale * x[j]);
            y[QS + j] = v.min(127) as i8 as u8;
        }
        for j in 0..QK_K / 16 {
            let mut sum = 0i32;
            for ii in 0..16 {
                sum += i32::from(y[QS + j * 16 + ii] as i8);
            }
            y[BSUMS + 2 * j..BSUMS + 2 * j + 2].copy_from_slice(&(sum as i16).to_le_bytes());
        }
        y[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}
