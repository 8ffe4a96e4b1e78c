//! Helpers shared by the K-quants: packed 6-bit scales and the scale searches of ggml's
//! `*_ref` K-quant quantizers (`make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`), ported
//! with the same float operation order.

use crate::common::nearest_int;

/// Below this absolute maximum a group counts as all zeros (`GROUP_MAX_EPS`).
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// Bytes of packed scales and mins in `Q4_K`/`Q5_K` (`K_SCALE_SIZE`).
pub const K_SCALE_SIZE: usize = 12;

/// `get_scale_min_k4`: the 6-bit scale and min of sub-block `j < 8` from the 12 packed bytes
/// of `Q4_K`/`Q5_K`. Sub-blocks 0-3 use the low 6 bits of bytes `j` and `j + 4`; 4-7 combine a
/// nibble of byte `j + 4` with the top 2 bits of bytes `j - 4` and `j`.
#[inline]
pub fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The 16 unsigned 6-bit scales of a `Q3_K` block (before subtracting 32), unpacked as ggml does
/// with its `kmask` words: low nibbles from bytes 0-7, the top two bits from bytes 8-11.
#[inline]
pub fn q3_k_scales(s: &[u8]) -> [u8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0u8; 16];
    for (i, w) in aux.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Packs four 2-bit planes the way `Q2_K` and `Q3_K` store their low bits: within each half of
/// 128 values, byte `l` holds values `l`, `l + 32`, `l + 64`, `l + 96` at bit offsets 0, 2, 4, 6.
pub(crate) fn pack_2bit(l: &[u8; 256], qs: &mut [u8]) {
    for j in (0..256).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] =
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// First value of largest magnitude, with its sign (`(max, amax)`).
#[inline]
fn signed_max(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (max, amax)
}

#[inline]
fn clamp_i(l: i32, lo: i32, hi: i32) -> i32 {
    // MAX(lo, MIN(hi, l))
    l.min(hi).max(lo)
}

/// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)` (used by `Q6_K`): symmetric
/// quantization to `[-nmax, nmax)` weighted by `x²`, trying 18 nearby scales. Writes
/// `L[i] = l + nmax` and returns the scale.
pub(crate) fn make_qx_quants(nmax: i32, x: &[f32], ls: &mut [u8]) -> f32 {
    let n = x.len();
    let (max, amax) = signed_max(x);
    if amax < GROUP_MAX_EPS {
        ls[..n].fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = -nmaxf / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..n {
        let l = clamp_i(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        ls[i] = (l + nmax) as u8;
        let w = x[i] * x[i];
        sumlx += w * x[i] * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for i in 0..n {
            let l = clamp_i(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            let w = x[i] * x[i];
            sumlx += w * x[i] * l as f32;
            suml2 += w * l as f32 * l as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for i in 0..n {
                let l = nearest_int(iscale * x[i]);
                ls[i] = (nmax + clamp_i(l, -nmax, nmax - 1)) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// `make_q3_quants(n, nmax, x, L, do_rmse = true)` (used by `Q3_K`): symmetric quantization to
/// `[-nmax, nmax)` refined by up to five rounds of single-value changes that improve the
/// `x²`-weighted fit. Writes `L[i] = l + nmax` (all zeros for an all-zero group) and returns the
/// scale.
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32], ls: &mut [i8]) -> f32 {
    let n = x.len();
    let (max, amax) = signed_max(x);
    if amax < GROUP_MAX_EPS {
        ls[..n].fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..n {
        let l = clamp_i(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        ls[i] = l as i8;
        let w = x[i] * x[i];
        sumlx += w * x[i] * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _itry in 0..5 {
        let mut n_changed = 0;
        for i in 0..n {
            let w = x[i] * x[i];
            let li = f32::from(ls[i]);
            let mut slx = sumlx - w * x[i] * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = clamp_i(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if new_l != i32::from(ls[i]) {
                    slx += w * x[i] * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        ls[i] = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for l in ls[..n].iter_mut() {
        *l += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Parameters of one `make_qkx2_quants` search.
pub(crate) struct Qkx2 {
    pub nmax: i32,
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    pub use_mad: bool,
}

/// `make_qkx2_quants` (used by `Q2_K`, `Q4_K`, `Q5_K`): asymmetric quantization to `[0, nmax]`
/// with a non-positive minimum, searching `nstep + 1` candidate scales and solving the weighted
/// least-squares scale/min for each. Writes `L`, returns `(scale, -min)`.
pub(crate) fn make_qkx2_quants(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    ls: &mut [u8],
    laux: &mut [u8],
) -> (f32, f32) {
    let n = x.len();
    let nmax = p.nmax;
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        ls[..n].fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min));
        ls[i] = clamp_i(l, 0, nmax) as u8;
        let diff = scale * f32::from(ls[i]) + min - x[i];
        let diff = if p.use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = clamp_i(nearest_int(iscale * (x[i] - min)), 0, nmax);
            laux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * f32::from(laux[i]) + this_min - x[i];
                let diff = if p.use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                ls[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ggml's `utmp` word shuffle from `ggml_vec_dot_q4_K_q8_K_generic`, for comparison.
    fn utmp_unpack(s: &[u8]) -> ([u8; 8], [u8; 8]) {
        const KMASK1: u32 = 0x3f3f_3f3f;
        const KMASK2: u32 = 0x0f0f_0f0f;
        const KMASK3: u32 = 0x0303_0303;
        let w = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
        let mut u = [w(0), w(1), w(2), 0];
        u[3] = ((u[2] >> 4) & KMASK2) | (((u[1] >> 6) & KMASK3) << 4);
        let uaux = u[1] & KMASK1;
        u[1] = (u[2] & KMASK2) | (((u[0] >> 6) & KMASK3) << 4);
        u[2] = uaux;
        u[0] &= KMASK1;
        let mut sc = [0u8; 8];
        let mut mn = [0u8; 8];
        sc[..4].copy_from_slice(&u[0].to_le_bytes());
        sc[4..].copy_from_slice(&u[1].to_le_bytes());
        mn[..4].copy_from_slice(&u[2].to_le_bytes());
        mn[4..].copy_from_slice(&u[3].to_le_bytes());
        (sc, mn)
    }

    #[test]
    fn scale_min_k4_matches_word_shuffle() {
        let mut x = 0x9e37_79b9u32;
        for _ in 0..2000 {
            let mut s = [0u8; 12];
            for b in s.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let (sc, mn) = utmp_unpack(&s);
            for j in 0..8 {
                assert_eq!(get_scale_min_k4(j, &s), (sc[j], mn[j]));
            }
        }
    }

    #[test]
    fn q3_k_scales_match_bit_layout() {
        // Scale j: low nibble from byte j (j < 8) or the high nibble of byte j - 8; the top two
        // bits from byte 8 + j % 4 at bit 2 * (j / 4).
        let s: [u8; 12] = [
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0xe4, 0x1b, 0x93, 0x6c,
        ];
        let got = q3_k_scales(&s);
        for j in 0..16 {
            let lo = if j < 8 { s[j] & 0x0f } else { s[j - 8] >> 4 };
            let hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
            assert_eq!(got[j], lo | (hi << 4), "scale {j}");
        }
    }
}
