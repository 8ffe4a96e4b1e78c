//! quantize → dequantize error bounds, per element, for every format with a quantizer.
//!
//! Bounds (amax = largest |x| in the block, min/max = the block's extremes; blocks of 32, or 256
//! for `Q8_K` and the K-quants):
//!
//! | format      | bound on |x - dequant(quant(x))|                                    | why |
//! |-------------|---------------------------------------------------------------------|-----|
//! | F32         | 0                                                                   | copy |
//! | F16         | 2⁻¹¹·|x| + 2⁻²⁵                                                      | half ulp (normal / subnormal) |
//! | BF16        | 2⁻⁸·|x| + 1e-38                                                      | half ulp |
//! | Q8_0, Q8_1  | 0.57·amax/127 + 127·2⁻²⁵                                             | ½ step + 127·(f16 rounding of the step) |
//! | Q8_K        | 0.501·amax/127                                                       | ½ step, `f32` step |
//! | Q4_0        | 1.01·amax/8 + 8·2⁻²⁵                                                 | a full step at the clipped end (+8 → 7) |
//! | Q5_0        | 1.01·amax/16 + 16·2⁻²⁵                                               | likewise (+16 → 15) |
//! | Q4_1        | 0.52·(max-min)/15 + 2⁻¹⁰·amax + 16·2⁻²⁵                              | ½ step + f16 rounding of step (·15) and min |
//! | Q5_1        | 0.52·(max-min)/31 + 2⁻¹⁰·amax + 32·2⁻²⁵                              | likewise (·31) |
//! | Q2_K … Q6_K | c·amax with c = 0.5, 0.3, 0.125, 0.07, 0.04                          | empirical (scale search has no closed form), ~25% above the worst seen |
//!
//! The K-quants also meet a relative RMS bound on Gaussian data: ‖x - x̂‖/‖x‖ ≤ 0.40, 0.20,
//! 0.10, 0.05, 0.03 for Q2_K … Q6_K.

mod common;

use common::{dequantize, fixture, floats, quantize, Rng};
use owl_quant::GgmlType::{self, *};

fn element_bound(ty: GgmlType, block: &[f32], x: f32) -> f32 {
    let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
    let min = block.iter().fold(f32::MAX, |m, &v| m.min(v));
    let max = block.iter().fold(-f32::MAX, |m, &v| m.max(v));
    let t25 = 2f32.powi(-25);
    match ty {
        F32 => 0.0,
        F16 => 2f32.powi(-11) * x.abs() + t25,
        BF16 => 2f32.powi(-8) * x.abs() + 1e-38,
        Q8_0 | Q8_1 => 0.57 * amax / 127.0 + 127.0 * t25,
        Q8_K => 0.501 * amax / 127.0,
        Q4_0 => 1.01 * amax / 8.0 + 8.0 * t25,
        Q5_0 => 1.01 * amax / 16.0 + 16.0 * t25,
        Q4_1 => 0.52 * (max - min) / 15.0 + 2f32.powi(-10) * amax + 16.0 * t25,
        Q5_1 => 0.52 * (max - min) / 31.0 + 2f32.powi(-10) * amax + 32.0 * t25,
        Q2_K => 0.5 * amax,
        Q3_K => 0.3 * amax,
        Q4_K => 0.125 * amax,
        Q5_K => 0.07 * amax,
        Q6_K => 0.04 * amax,
        _ => unreachable!("{ty}"),
    }
}

const QUANTIZABLE: [GgmlType; 15] = [
    F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
];

fn check(ty: GgmlType, x: &[f32], what: &str) {
    let y = dequantize(ty, &quantize(ty, x), x.len());
    let bs = if ty.block_size() == 1 {
        32
    } else {
        ty.block_size()
    };
    for (b, (xb, yb)) in x.chunks(bs).zip(y.chunks(bs)).enumerate() {
        for (i, (&xi, &yi)) in xb.iter().zip(yb).enumerate() {
            let bound = element_bound(ty, xb, xi);
            let err = (xi - yi).abs();
            assert!(
                err <= bound,
                "{ty} {what} block {b} elem {i}: x {xi:e} -> {yi:e}, err {err:e} > {bound:e}"
            );
        }
    }
}

#[test]
fn round_trip_within_bounds_on_varied_data() {
    let mut rng = Rng(0x5eed);
    for ty in QUANTIZABLE {
        for kind in 0..5 {
            for rep in 0..8 {
                let x = rng.data(1024, kind);
                check(ty, &x, &format!("kind {kind} rep {rep}"));
            }
        }
    }
}

#[test]
fn round_trip_within_bounds_on_fixture_special_values() {
    // Zero, tiny, large, one-signed, constant and tie-heavy blocks (see make_fixtures.py).
    let x = floats(&fixture("input.f32"));
    for ty in QUANTIZABLE {
        check(ty, &x, "fixture input");
    }
}

#[test]
fn zeros_round_trip_to_zeros() {
    let x = vec![0f32; 512];
    for ty in QUANTIZABLE {
        let y = dequantize(ty, &quantize(ty, &x), x.len());
        assert!(y.iter().all(|&v| v == 0.0), "{ty}");
    }
}

#[test]
fn k_quant_relative_rms_on_gaussian_data() {
    let mut rng = Rng(77);
    for (ty, limit) in [
        (Q2_K, 0.40),
        (Q3_K, 0.20),
        (Q4_K, 0.10),
        (Q5_K, 0.05),
        (Q6_K, 0.03),
    ] {
        for rep in 0..200 {
            let x = rng.data(256, if rep % 2 == 0 { 0 } else { 1 });
            let y = dequantize(ty, &quantize(ty, &x), 256);
            let e2: f64 = x
                .iter()
                .zip(&y)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum();
            let x2: f64 = x.iter().map(|a| f64::from(*a).powi(2)).sum();
            let rel = (e2 / x2).sqrt();
            assert!(
                rel <= limit,
                "{ty} rep {rep}: relative rms {rel:.4} > {limit}"
            );
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(3);
    for f in owl_quant::formats() {
        let n = 4 * f.block_size.max(256);
        let bytes = rng.bytes(f.row_bytes(n));
        let mut out = vec![0f32; n];
        (f.dequantize)(&bytes, &mut out);
        if let Some(dot) = f.vec_dot {
            let act = owl_quant::format(f.vec_dot_type).map_or(0, |a| a.row_bytes(n));
            let _ = dot(n, &bytes, &rng.bytes(act));
        }
        if let Some(q) = f.quantize {
            let weird = [
                f32::NAN,
                f32::INFINITY,
                -f32::INFINITY,
                1e30,
                -1e-30,
                0.0,
                f32::MIN_POSITIVE,
            ];
            let x: Vec<f32> = (0..n).map(|i| weird[i % weird.len()]).collect();
            let mut dst = vec![0u8; f.row_bytes(n)];
            q(&x, &mut dst);
        }
    }
}
