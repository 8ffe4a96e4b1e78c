//! The activation quantizers against properties derived by hand from ggml's reference code
//! (python can only check `Q8_0`, see `fixtures.rs`).

mod common;

use common::{fmt, quantize, Rng};
use owl_quant::GgmlType::*;
use owl_quant::{fp16_to_fp32, fp32_to_fp16};

fn f16_le(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// `Q8_1` = `Q8_0`'s scale and quants, plus `s = f16(Σq · amax/127)` with the unrounded scale.
#[test]
fn q8_1_is_q8_0_plus_block_sum() {
    let mut rng = Rng(81);
    for kind in 0..5 {
        let x = rng.data(32 * 64, kind);
        let q0 = quantize(Q8_0, &x);
        let q1 = quantize(Q8_1, &x);
        for (b, ((b0, b1), xb)) in q0
            .chunks(34)
            .zip(q1.chunks(36))
            .zip(x.chunks(32))
            .enumerate()
        {
            assert_eq!(b0[..2], b1[..2], "block {b}: d");
            assert_eq!(b0[2..], b1[4..], "block {b}: qs");
            let sum: i32 = b1[4..].iter().map(|&q| i32::from(q as i8)).sum();
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            assert_eq!(f16_le(b1, 2), fp32_to_fp16(sum as f32 * d), "block {b}: s");
            // And not the product with the rounded scale, where the two differ.
            let rounded = fp32_to_fp16(sum as f32 * fp16_to_fp32(f16_le(b1, 0)));
            if rounded != fp32_to_fp16(sum as f32 * d) {
                assert_ne!(f16_le(b1, 2), rounded);
            }
        }
    }
}

/// `Q8_K`: `max` keeps its sign, `iscale = -127/max`, `q = min(127, round_half_even(iscale·x))`,
/// `d = 1/iscale` as `f32`, `bsums[j] = Σ q[16j..16j+16]`.
#[test]
fn q8_k_follows_reference_definition() {
    let mut rng = Rng(88);
    for kind in 0..5 {
        let x = rng.data(256 * 8, kind);
        let q = quantize(Q8_K, &x);
        for (b, (blk, xb)) in q.chunks(292).zip(x.chunks(256)).enumerate() {
            let mut max = 0f32;
            for &v in xb {
                if v.abs() > max.abs() {
                    max = v;
                }
            }
            let iscale = -127.0 / max;
            let d = f32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]);
            assert_eq!(d.to_bits(), (1.0 / iscale).to_bits(), "block {b}: d");
            for (i, &v) in xb.iter().enumerate() {
                let want = ((iscale * v).round_ties_even() as i32).min(127);
                assert_eq!(i32::from(blk[4 + i] as i8), want, "block {b} elem {i}");
            }
            for j in 0..16 {
                let sum: i32 = blk[4 + 16 * j..4 + 16 * j + 16]
                    .iter()
                    .map(|&q| i32::from(q as i8))
                    .sum();
                let bsum = i16::from_le_bytes([blk[260 + 2 * j], blk[261 + 2 * j]]);
                assert_eq!(i32::from(bsum), sum, "block {b} bsum {j}");
            }
            // The value of largest magnitude always lands on -127.
            let imax = xb.iter().position(|&v| v == max).unwrap_or(0);
            assert_eq!(blk[4 + imax] as i8, -127, "block {b}");
        }
    }
    let zeros = quantize(Q8_K, &[0.0; 256]);
    assert!(
        zeros.iter().all(|&b| b == 0),
        "all-zero block encodes as zero bytes"
    );
}

/// Rounding ties: `Q8_0`/`Q8_1` round half away from zero, `Q8_K` half to even.
#[test]
fn activation_rounding_ties() {
    let mut x = [0f32; 256];
    x[0] = 127.0; // scale exactly 1 for the first 32-block, -1 for Q8_K
    for (i, v) in [0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5].iter().enumerate() {
        x[1 + i] = *v;
    }
    let q0 = quantize(Q8_0, &x);
    assert_eq!(
        q0[3..9].iter().map(|&b| b as i8).collect::<Vec<_>>(),
        [1, 2, 3, -1, -2, -3]
    );
    let q1 = quantize(Q8_1, &x);
    assert_eq!(
        q1[5..11].iter().map(|&b| b as i8).collect::<Vec<_>>(),
        [1, 2, 3, -1, -2, -3]
    );
    let qk = quantize(Q8_K, &x);
    assert_eq!(
        qk[5..11].iter().map(|&b| b as i8).collect::<Vec<_>>(),
        [0, -2, -2, 0, 2, 2]
    );
    assert_eq!(fmt(Q8_K).type_size, qk.len());
}
