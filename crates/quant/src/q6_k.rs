//! `Q6_K`: super-blocks of 256 values in 16 groups of 16, each value `d·sc·(q - 32)` with a 6-bit
//! `q` and a signed 8-bit per-group `sc`.
//!
//! Layout (210 bytes): `ql: [u8; 128]` at 0 (low nibbles), `qh: [u8; 64]` at 128 (2-bit high
//! parts), `scales: [i8; 16]` at 192, `d: f16` at 208. Within each half of 128 values, value
//! `l + 32k` (`l < 32`) has low nibble from `ql[l + 32(k & 1)]` (low half for `k < 2`, high half
//! otherwise) and high bits `(qh[l] >> 2k) & 3`.

use crate::common::{dequant_blocks, dot_blocks, f16_at, nearest_int, put_f16, quant_blocks};
use crate::k_common::{make_qx_quants, GROUP_MAX_EPS};
use crate::{q8_k, QK_K};

pub const BLOCK_SIZE: usize = QK_K;
pub const TYPE_SIZE: usize = 210;
/// Offset of `qh`.
pub const QH: usize = 128;
/// Offset of `scales`.
pub const SCALES: usize = 192;
/// Offset of `d`.
pub const D: usize = 208;

/// The signed 6-bit values `q - 32` of one block, in element order (ggml's `aux8`).
fn unpack(x: &[u8]) -> [i8; QK_K] {
    let mut a = [0i8; QK_K];
    for j in 0..QK_K / 128 {
        let ql = &x[64 * j..64 * j + 64];
        let qh = &x[QH + 32 * j..QH + 32 * j + 32];
        let a = &mut a[128 * j..128 * j + 128];
        for l in 0..32 {
            a[l] = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i8 - 32;
            a[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            a[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            a[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
        }
    }
    a
}

/// `dequantize_row_q6_K`: `d * sc * q`, evaluated as `(d * sc) * q`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, D);
        let q = unpack(b);
        for g in 0..QK_K / 16 {
            let dl = d * f32::from(b[SCALES + g] as i8);
            for l in 0..16 {
                y[16 * g + l] = dl * f32::from(q[16 * g + l]);
            }
        }
    }
}

/// `quantize_row_q6_K_ref`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let mut ls = [0u8; QK_K];
        let mut scales = [0f32; QK_K / 16];
        let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
        for ib in 0..QK_K / 16 {
            let scale = make_qx_quants(
                32,
                &x[16 * ib..16 * ib + 16],
                &mut ls[16 * ib..16 * ib + 16],
            );
            scales[ib] = scale;
            if scale.abs() > max_abs_scale {
                max_abs_scale = scale.abs();
                max_scale = scale;
            }
        }
        y.fill(0);
        if max_abs_scale < GROUP_MAX_EPS {
            continue;
        }
        let iscale = -128.0 / max_scale;
        put_f16(y, D, 1.0 / iscale);
        for ib in 0..QK_K / 16 {
            y[SCALES + ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
        }
        for j in 0..QK_K / 16 {
            let d = f16_at(y, D) * f32::from(y[SCALES + j] as i8);
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let l = nearest_int(x[16 * j + ii] / d);
                ls[16 * j + ii] = (l.clamp(-32, 31) + 32) as u8;
            }
        }
        for j in 0..QK_K / 128 {
            let l = &ls[128 * j..128 * j + 128];
            for i in 0..32 {
                let (q1, q2, q3, q4) = (
                    l[i] & 0x0f,
                    l[i + 32] & 0x0f,
                    l[i + 64] & 0x0f,
                    l[i + 96] & 0x0f,
                );
                y[64 * j + i] = q1 | (q3 << 4);
                y[64 * j + i + 32] = q2 | (q4 << 4);
                y[QH + 32 * j + i] = (l[i] >> 4)
                    | ((l[i + 32] >> 4) << 2)
                    | ((l[i + 64] >> 4) << 4)
                    | ((l[i + 96] >> 4) << 6);
            }
        }
    }
}

/// `ggml_vec_dot_q6_K_q8_K_generic`: eight `i32` lanes per block scaled into eight `f32` lanes
/// kept across blocks, added in lane order at the end.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0f32; 8];
    for (x, yb) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_k::TYPE_SIZE) {
        let y = q8_k::Block::parse(yb);
        let aux8 = unpack(x);
        let mut aux32 = [0i32; 8];
        for j in 0..QK_K / 16 {
            let scale = i32::from(x[SCALES + j] as i8);
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
