//! Dot products against dequantized references, for random sizes.
//!
//! `vec_dot(w, quantize_act(x))` vs `Σ dequant(w)ᵢ·xᵢ` (in `f64`). The only real error is the
//! activation quantization, so the bound is `Σ |wᵢ|·eᵢ` with eᵢ the activation round-trip bound
//! (0 for F32, 2⁻¹¹|xᵢ| for F16, 2⁻⁸|xᵢ| for BF16, 0.57·amax/127 per 32 for Q8_0/Q8_1,
//! 0.501·amax/127 per 256 for Q8_K), plus for Q8_1 weights `4·max|w|·amax/127` per block (the
//! block sum `s` is rounded to f16 from the unrounded scale), plus 10⁻⁵·Σ|wᵢxᵢ| for `f32`
//! summation. A second, tighter test compares against `Σ dequant(w)ᵢ·dequant(a)ᵢ` with a
//! relative bound of 2·10⁻⁵ (layout or indexing bugs give O(1) errors).

mod common;

use common::{dequantize, fmt, quantize, Rng};
use owl_quant::GgmlType::{self, *};

const WEIGHTS: [GgmlType; 14] = [
    F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, MXFP4,
];

fn act_error_bound(act: GgmlType, x: &[f32]) -> Vec<f32> {
    let per_block = |bs: usize, c: f32| -> Vec<f32> {
        x.chunks(bs)
            .flat_map(|b| {
                let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                std::iter::repeat_n(c * amax / 127.0 + 127.0 * 2f32.powi(-25), b.len())
            })
            .collect()
    };
    match act {
        F32 => vec![0.0; x.len()],
        F16 => x
            .iter()
            .map(|v| 2f32.powi(-11) * v.abs() + 2f32.powi(-25))
            .collect(),
        BF16 => x.iter().map(|v| 2f32.powi(-8) * v.abs()).collect(),
        Q8_0 | Q8_1 => per_block(32, 0.57),
        Q8_K => per_block(256, 0.501),
        _ => unreachable!("{act}"),
    }
}

struct Case {
    ty: GgmlType,
    n: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    a_bytes: Vec<u8>,
    got: f64,
}

fn cases() -> Vec<Case> {
    let mut rng = Rng(0xd07);
    let mut out = Vec::new();
    for ty in WEIGHTS {
        let f = fmt(ty);
        let unit = f.block_size.max(fmt(f.vec_dot_type).block_size).max(32);
        for rep in 0..20 {
            let n = unit * (1 + rng.below(if unit == 256 { 12 } else { 64 }));
            let w_bytes = quantize(ty, &rng.data(n, rep));
            let w = dequantize(ty, &w_bytes, n);
            let kind = rep + 1 + rng.below(4);
            let x = rng.data(n, kind);
            let a_bytes = quantize(f.vec_dot_type, &x);
            let dot = f.vec_dot.unwrap_or_else(|| panic!("{ty} has no vec_dot"));
            let got = f64::from(dot(n, &w_bytes, &a_bytes));
            out.push(Case {
                ty,
                n,
                x,
                w,
                a_bytes,
                got,
            });
        }
    }
    out
}

#[test]
fn vec_dot_close_to_dequantized_dot() {
    for c in cases() {
        let act = fmt(c.ty).vec_dot_type;
        let e = act_error_bound(act, &c.x);
        let want: f64 =
            c.w.iter()
                .zip(&c.x)
                .map(|(&w, &x)| f64::from(w) * f64::from(x))
                .sum();
        let abs_wx: f64 =
            c.w.iter()
                .zip(&c.x)
                .map(|(&w, &x)| f64::from((w * x).abs()))
                .sum();
        let mut tol: f64 =
            c.w.iter()
                .zip(&e)
                .map(|(&w, &e)| f64::from(w.abs() * e))
                .sum();
        tol += 1e-5 * abs_wx + 1e-30;
        if act == Q8_1 {
            for (wb, xb) in c.w.chunks(32).zip(c.x.chunks(32)) {
                let wmax = wb.iter().fold(0f32, |m, v| m.max(v.abs()));
                let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
                tol += f64::from(4.0 * wmax * amax / 127.0);
            }
        }
        let err = (c.got - want).abs();
        assert!(
            err <= tol,
            "{} n {}: vec_dot {} vs {want}, err {err:e} > {tol:e}",
            c.ty,
            c.n,
            c.got
        );
    }
}

#[test]
fn vec_dot_matches_dot_of_both_dequantized() {
    for c in cases() {
        let act = fmt(c.ty).vec_dot_type;
        let a = dequantize(act, &c.a_bytes, c.n);
        let want: f64 =
            c.w.iter()
                .zip(&a)
                .map(|(&w, &a)| f64::from(w) * f64::from(a))
                .sum();
        let wmax = c.w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale: f64 =
            c.w.iter()
                .zip(&a)
                .map(|(&w, &a)| f64::from((w.abs() + wmax) * a.abs()))
                .sum();
        let mut tol = 2e-5 * scale + 1e-30;
        if act == Q8_1 {
            // m·s uses s = f16(d_f32·Σq) where dequantizing uses f16(d)·Σq.
            for (ab, wb) in c.a_bytes.chunks(36).zip(c.w.chunks(32)) {
                let d = f64::from(owl_quant::fp16_to_fp32(u16::from_le_bytes([ab[0], ab[1]])));
                let wmax = wb.iter().fold(0f32, |m, v| m.max(v.abs()));
                tol += f64::from(wmax) * 32.0 * 127.0 * d * 2f64.powi(-10);
            }
        }
        let err = (c.got - want).abs();
        assert!(
            err <= tol,
            "{} n {}: vec_dot {} vs {want}, err {err:e} > {tol:e}",
            c.ty,
            c.n,
            c.got
        );
    }
}

#[test]
fn vec_dot_reads_only_n_elements() {
    let mut rng = Rng(11);
    for ty in WEIGHTS {
        let f = fmt(ty);
        let af = fmt(f.vec_dot_type);
        let n = 512;
        let w = quantize(ty, &rng.data(2 * n, 0));
        let a = quantize(f.vec_dot_type, &rng.data(2 * n, 2));
        let dot = f.vec_dot.unwrap_or_else(|| panic!("{ty}"));
        let exact = dot(n, &w[..f.row_bytes(n)], &a[..af.row_bytes(n)]);
        assert_eq!(dot(n, &w, &a).to_bits(), exact.to_bits(), "{ty}");
    }
}

/// Block order matters only through the `f32` accumulation: a block pair swapped in both rows
/// changes the result by at most rounding.
#[test]
fn vec_dot_is_a_sum_over_blocks() {
    let mut rng = Rng(12);
    for ty in WEIGHTS {
        let f = fmt(ty);
        let af = fmt(f.vec_dot_type);
        let unit = f.block_size.max(af.block_size);
        let dot = f.vec_dot.unwrap_or_else(|| panic!("{ty}"));
        let w = quantize(ty, &rng.data(2 * unit, 0));
        let a = quantize(f.vec_dot_type, &rng.data(2 * unit, 0));
        let (wr, ar) = (f.row_bytes(unit), af.row_bytes(unit));
        let first = f64::from(dot(unit, &w[..wr], &a[..ar]));
        let second = f64::from(dot(unit, &w[wr..], &a[ar..]));
        let both = f64::from(dot(2 * unit, &w, &a));
        let tol = 1e-5 * (first.abs() + second.abs()) + 1e-30;
        assert!(
            (both - (first + second)).abs() <= tol,
            "{ty}: {both} vs {first} + {second}"
        );
    }
}
