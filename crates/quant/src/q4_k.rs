//! `Q4_K`: super-blocks of 256 values in 8 groups of 32, each value `d·sc·q - dmin·m` with a
//! 4-bit `q` and 6-bit per-group `sc`, `m`.
//!
//! Layout (144 bytes): `d: f16` at 0, `dmin: f16` at 2, `scales: [u8; 12]` at 4 (see
//! [`get_scale_min_k4`]), `qs: [u8; 128]` at 16. Each 32 bytes of `qs` hold 64 values: low
//! nibbles first, then high nibbles.

use crate::common::{dequant_blocks, dot_blocks, f16_at, nearest_int, put_f16, quant_blocks};
use crate::k_common::{get_scale_min_k4, make_qkx2_quants, Qkx2, K_SCALE_SIZE};
use crate::{q8_k, QK_K};

pub const BLOCK_SIZE: usize = QK_K;
pub const TYPE_SIZE: usize = 144;
/// Offset of `scales`.
pub const SCALES: usize = 4;
/// Offset of `qs`.
pub const QS: usize = 16;

/// `dequantize_row_q4_K`: `d1 * q - m1` with `d1 = d * sc`, `m1 = dmin * m`.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in dequant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        let d = f16_at(b, 0);
        let min = f16_at(b, 2);
        let scales = &b[SCALES..SCALES + K_SCALE_SIZE];
        for j in 0..QK_K / 64 {
            let q = &b[QS + 32 * j..QS + 32 * j + 32];
            let (sc, m) = get_scale_min_k4(2 * j, scales);
            let (d1, m1) = (d * f32::from(sc), min * f32::from(m));
            let (sc, m) = get_scale_min_k4(2 * j + 1, scales);
            let (d2, m2) = (d * f32::from(sc), min * f32::from(m));
            for l in 0..32 {
                y[64 * j + l] = d1 * f32::from(q[l] & 0x0f) - m1;
                y[64 * j + 32 + l] = d2 * f32::from(q[l] >> 4) - m2;
            }
        }
    }
}

/// Packs 6-bit scales and mins of 8 groups into the 12 `scales` bytes (`Q4_K` and `Q5_K`).
pub(crate) fn pack_scales_mins(ls: &[u8; 8], lm: &[u8; 8], s: &mut [u8]) {
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
}

/// The search and scale quantization shared by `quantize_row_q4_K_ref` and
/// `quantize_row_q5_K_ref`: fills `y`'s `d`, `dmin` and scales and returns the per-value levels
/// in `[0, nmax]`.
pub(crate) fn quantize_levels(x: &[f32], p: &Qkx2, y: &mut [u8]) -> [u8; QK_K] {
    let mut ls = [0u8; QK_K];
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    let mut mins = [0f32; QK_K / 32];
    let mut scales = [0f32; QK_K / 32];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..QK_K / 32 {
        let xj = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for l in 0..32 {
            sum_x2 += xj[l] * xj[l];
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for l in 0..32 {
            weights[l] = av_x + xj[l].abs();
        }
        let (scale, min) =
            make_qkx2_quants(p, xj, &weights, &mut ls[32 * j..32 * j + 32], &mut laux);
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let (mut lsc, mut lmn) = ([0u8; 8], [0u8; 8]);
    for j in 0..QK_K / 32 {
        lsc[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        lmn[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    pack_scales_mins(&lsc, &lmn, &mut y[SCALES..SCALES + K_SCALE_SIZE]);
    put_f16(y, 0, max_scale / 63.0);
    put_f16(y, 2, max_min / 63.0);
    for j in 0..QK_K / 32 {
        let (sc, m) = get_scale_min_k4(j, &y[SCALES..SCALES + K_SCALE_SIZE]);
        let d = f16_at(y, 0) * f32::from(sc);
        if d == 0.0 {
            continue;
        }
        let dm = f16_at(y, 2) * f32::from(m);
        for ii in 0..32 {
            let l = nearest_int((x[32 * j + ii] + dm) / d);
            ls[32 * j + ii] = l.clamp(0, p.nmax) as u8;
        }
    }
    ls
}

/// `quantize_row_q4_K_ref`.
pub fn quantize(src: &[f32], dst: &mut [u8]) {
    let p = Qkx2 {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    for (x, y) in quant_blocks(src, dst, BLOCK_SIZE, TYPE_SIZE) {
        y.fill(0);
        let ls = quantize_levels(x, &p, y);
        for j in 0..QK_K / 64 {
            for l in 0..32 {
                y[QS + 32 * j + l] = ls[64 * j + l] | (ls[64 * j + l + 32] << 4);
            }
        }
    }
}

/// The 8 scales and 8 mins of a `Q4_K`/`Q5_K` block (ggml's `utmp` bytes).
pub(crate) fn scales_mins(s: &[u8]) -> ([i32; 8], [i32; 8]) {
    let (mut sc, mut mn) = ([0i32; 8], [0i32; 8]);
    for j in 0..8 {
        let (a, b) = get_scale_min_k4(j, s);
        sc[j] = i32::from(a);
        mn[j] = i32::from(b);
    }
    (sc, mn)
}

/// The part of `ggml_vec_dot_q{4,5}_K_q8_K_generic` after the quants are unpacked into `aux8`:
/// adds the block's scaled products into `sums` and returns its `dmin * sumi` term.
pub(crate) fn dot_block(x: &[u8], y: &q8_k::Block, aux8: &[i8; QK_K], sums: &mut [f32; 8]) -> f32 {
    let (scales, mins) = scales_mins(&x[SCALES..SCALES + K_SCALE_SIZE]);
    let mut sumi = 0i32;
    for j in 0..QK_K / 16 {
        sumi += i32::from(y.bsums[j]) * mins[j / 2];
    }
    let mut aux32 = [0i32; 8];
    for j in 0..QK_K / 32 {
        let scale = scales[j];
        for k in 0..4 {
            let base = 32 * j + 8 * k;
            for l in 0..8 {
                aux32[l] += scale * (y.q(base + l) * i32::from(aux8[base + l]));
            }
        }
    }
    let d = f16_at(x, 0) * y.d;
    for l in 0..8 {
        sums[l] += d * aux32[l] as f32;
    }
    let dmin = f16_at(x, 2) * y.d;
    dmin * sumi as f32
}

/// `ggml_vec_dot_q4_K_q8_K_generic`: eight `i32` lanes per block scaled into eight `f32` lanes
/// kept across blocks; the min terms are subtracted from `sumf` block by block and the lanes are
/// added last.
pub fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0f32; 8];
    let mut sumf = 0.0f32;
    for (x, yb) in dot_blocks(n, BLOCK_SIZE, w, TYPE_SIZE, a, q8_k::TYPE_SIZE) {
        let y = q8_k::Block::parse(yb);
        let mut aux8 = [0i8; QK_K];
        for j in 0..QK_K / 64 {
            let q4 = &x[QS + 32 * j..QS + 32 * j + 32];
            for l in 0..32 {
                aux8[64 * j + l] = (q4[l] & 0x0f) as i8;
                aux8[64 * j + 32 + l] = (q4[l] >> 4) as i8;
            }
        }
        sumf -= dot_block(x, &y, &aux8, &mut sums);
    }
    for s in sums {
        sumf += s;
    }
    sumf
}
