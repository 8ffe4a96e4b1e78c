//! `Q3_K`: super-blocks of 256 values in 16 groups of 16, each value `d·(sc - 32)·q` with a 3-bit
//! signed `q` (2 low bits plus a high bit whose *absence* subtracts 4) and 6-bit `sc`.
//!
//! Layout (110 bytes): `hmask: [u8; 32]` at 0 (bit `k` of byte `l` is the high bit of value
//! `32k + l`), `qs: [u8; 64]` at 32 (2-bit planes), `scales: [u8; 12]` at 96 (see
//! [`crate::k_common::q3_k_scales`]), `d: f16` at 108.

use crate::common::{dequant_blocks, dot_blocks, f16_at, nearest_int, put_f16, quant_blocks};
use crate::k_common::{make_q3_quants, pack_2bit, q3_k_scales};
use crate::{q8_k, QK_K};

pub const BLOCK_SIZE: usize = QK_K;
pub const TYPE_SIZE: usize = 110;
/// Offset of `qs`.
pub const QS: usize = 32;
/// Offset of `scales`.
pub const SCALES: usize = 96;
/// Offset of `d`.
pub const D: usize = 108;

/// The signed 3-bit values of one block, in element order (ggml's `aux8`).
fn unpack(x: &[u8]) -> [i8; QK_K] {
    let hm = &x[..QK_K / 8];
    let mut a = [0i8; QK_K];
    let mut m = 1u8;
    let mut ai = 0;
    for j in 0..QK_K / 128 {
        let q3 = &x[QS + 32 * j..QS + 32 * j + 32];
        for shift in [0, 2, 4, 6] {
            for l in 0..32 {
                a[ai + l] = ((q3[l] >> shift) & 3) as i8 - if hm[l] & m != 0 { 0 } else { 4 };
            }
            ai += 32;
            m <<= 1;
        }
    }
    a
}

/// `dequantize_row_q3_K`: `dl * q` with `dl = d * (sc - 32)`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d_all = f16_at(b, D);
        let scales = q3_k_scales(&b[SCALES..SCALES + 12]);
        let q = unpack(b);
        // Group g covers values 16g..16g+16 (ggml walks them in this order too).
        for g in 0..QK_K / 16 {
            let dl = d_all * f32::from(scales[g] as i8 - 32);
            for l in 0..16 {
                y[16 * g + l] = dl * f32::from(q[16 * g + l]);
            }
        }
    }
}

/// `quantize_row_q3_K_ref`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let mut ls = [0i8; QK_K];
        let mut scales = [0f32; QK_K / 16];
        let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
        for j in 0..QK_K / 16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut ls[16 * j..16 * j + 16]);
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        y.fill(0);
        let sc = &mut y[SCALES..SCALES + 12];
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..QK_K / 16 {
                let l = nearest_int(iscale * scales[j]) as i8;
                let l = (i32::from(l).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    sc[j] = l & 0x0f;
                } else {
                    sc[j - 8] |= (l & 0x0f) << 4;
                }
                sc[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
            }
            put_f16(y, D, 1.0 / iscale);
        } else {
            put_f16(y, D, 0.0);
        }
        let unpacked = q3_k_scales(&y[SCALES..SCALES + 12]);
        for j in 0..QK_K / 16 {
            let sc = unpacked[j] as i8 - 32;
            let d = f16_at(y, D) * f32::from(sc);
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let l = nearest_int(x[16 * j + ii] / d);
                ls[16 * j + ii] = (l.clamp(-4, 3) + 4) as i8;
            }
        }
        // High bits: the first 32 values use bit 0 of hmask[0..32], the next 32 bit 1, ...
        let mut low = [0u8; QK_K];
        for j in 0..QK_K {
            let mut l = ls[j] as u8;
            if l > 3 {
                y[j % 32] |= 1 << (j / 32);
                l -= 4;
            }
            low[j] = l;
        }
        pack_2bit(&low, &mut y[QS..QS + QK_K / 4]);
    }
}

/// `ggml_vec_dot_q3_K_q8_K_generic`: products accumulated in eight `i32` lanes (`aux32`) per
/// block, scaled into eight `f32` lanes (`sums`) that persist across blocks and are added up in
/// lane order at the end.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0f32; 8];
    for (x, yb) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_k::TYPE_SIZE) {
        let y = q8_k::Block::parse(yb);
        let aux8 = unpack(x);
        let scales = q3_k_scales(&x[SCALES..SCALES + 12]);
        let mut aux32 = [0i32; 8];
        for j in 0..QK_K / 16 {
            let scale = i32::from(scales[j] as i8 - 32);
            for half in 0..2 {
                let base = 16 * j + 8 * half;
                for l in 0..8 {
                    aux32[l] += scale * (y.q(base + l) * i32::from(aux8[base + l]));
                }
            }
        }
        let d = f16_at(x, D) * y.d;
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
    }
    let mut sumf = 0.0f32;
    for s in sums {
        sumf += s;
    }
    sumf
}
