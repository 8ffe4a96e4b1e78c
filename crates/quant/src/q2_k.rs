//! `Q2_K`: super-blocks of 256 values in 16 groups of 16, each value `d·sc·q - dmin·m` with a
//! 2-bit `q` and 4-bit per-group `sc`, `m`.
//!
//! Layout (84 bytes): `scales: [u8; 16]` at 0 (low nibble `sc`, high nibble `m`),
//! `qs: [u8; 64]` at 16 (2-bit planes, see [`crate::k_common`]), `d: f16` at 80, `dmin: f16` at 82.

use crate::common::{dequant_blocks, dot_blocks, f16_at, nearest_int, put_f16, quant_blocks};
use crate::k_common::{make_qkx2_quants, pack_2bit, Qkx2};
use crate::{q8_k, QK_K};

pub const BLOCK_SIZE: usize = QK_K;
pub const TYPE_SIZE: usize = 84;
/// Offset of `qs`.
pub const QS: usize = 16;
/// Offset of `d` (`dmin` follows at `D + 2`).
pub const D: usize = 80;

/// `dequantize_row_q2_K`: `dl * q - ml` with `dl = d * sc`, `ml = dmin * m`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, D);
        let min = f16_at(b, D + 2);
        let mut out = 0;
        let mut is = 0;
        for n in 0..QK_K / 128 {
            let q = &b[QS + 32 * n..QS + 32 * n + 32];
            for shift in [0, 2, 4, 6] {
                for half in 0..2 {
                    let sc = b[is];
                    is += 1;
                    let dl = d * f32::from(sc & 0x0f);
                    let ml = min * f32::from(sc >> 4);
                    for l in 0..16 {
                        y[out] = dl * f32::from((q[16 * half + l] >> shift) & 3) - ml;
                        out += 1;
                    }
                }
            }
        }
    }
}

/// `quantize_row_q2_K_ref`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    const Q4SCALE: f32 = 15.0;
    let p = Qkx2 {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let mut ls = [0u8; QK_K];
        let mut laux = [0u8; 16];
        let mut weights = [0f32; 16];
        let mut mins = [0f32; QK_K / 16];
        let mut scales = [0f32; QK_K / 16];
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..QK_K / 16 {
            let xj = &x[16 * j..16 * j + 16];
            for l in 0..16 {
                weights[l] = xj[l].abs();
            }
            let (scale, min) =
                make_qkx2_quants(&p, xj, &weights, &mut ls[16 * j..16 * j + 16], &mut laux);
            scales[j] = scale;
            mins[j] = min;
            if scale > max_scale {
                max_scale = scale;
            }
            if min > max_min {
                max_min = min;
            }
        }
        y.fill(0);
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for j in 0..QK_K / 16 {
                y[j] = nearest_int(iscale * scales[j]) as u8;
            }
            put_f16(y, D, max_scale / Q4SCALE);
        } else {
            put_f16(y, D, 0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for j in 0..QK_K / 16 {
                let l = nearest_int(iscale * mins[j]);
                y[j] |= (l << 4) as u8;
            }
            put_f16(y, D + 2, max_min / Q4SCALE);
        } else {
            put_f16(y, D + 2, 0.0);
        }
        for j in 0..QK_K / 16 {
            let d = f16_at(y, D) * f32::from(y[j] & 0x0f);
            if d == 0.0 {
                continue;
            }
            let dm = f16_at(y, D + 2) * f32::from(y[j] >> 4);
            for ii in 0..16 {
                let l = nearest_int((x[16 * j + ii] + dm) / d);
                ls[16 * j + ii] = l.clamp(0, 3) as u8;
            }
        }
        pack_2bit(&ls, &mut y[QS..QS + QK_K / 4]);
    }
}

/// `ggml_vec_dot_q2_K_q8_K_generic`: integer sums per 16-group scaled by `sc`, the mins applied
/// through `bsums`, then `sumf += dall * isum - dmin * summs`.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, yb) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_k::TYPE_SIZE) {
        let y = q8_k::Block::parse(yb);
        let sc = &x[..QK_K / 16];
        let mut summs = 0i32;
        for j in 0..16 {
            summs += i32::from(y.bsums[j]) * i32::from(sc[j] >> 4);
        }
        let dall = y.d * f16_at(x, D);
        let dmin = y.d * f16_at(x, D + 2);
        let mut isum = 0i32;
        let mut is = 0;
        let mut q8 = 0;
        for k in 0..QK_K / 128 {
            let q2 = &x[QS + 32 * k..QS + 32 * k + 32];
            for shift in [0, 2, 4, 6] {
                for half in 0..2 {
                    let d = i32::from(sc[is] & 0x0f);
                    is += 1;
                    let mut isuml = 0i32;
                    for l in 16 * half..16 * half + 16 {
                        isuml += y.q(q8 + l) * i32::from((q2[l] >> shift) & 3);
                    }
                    isum += d * isuml;
                }
                q8 += 32;
            }
        }
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}
