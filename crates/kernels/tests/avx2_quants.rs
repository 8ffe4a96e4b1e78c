//! The AVX2 dot products of `Q4_0`, `Q5_0`, `Q5_1` and `Q2_K`..`Q6_K` against the scalar
//! references of `owl-quant`, tighter than `isa_vs_scalar.rs`: the same bytes through both must
//! agree within 1e-6 of the sum of absolute (dequantized) products, for 1 to 8 super-blocks of
//! typical data and of edge cases (zero blocks, largest magnitudes, one sign only, arbitrary
//! block bytes). Skipped on CPUs without AVX2/FMA/F16C.

use owl_kernels::{Isa, Kernels};
use owl_quant::{format, GgmlType};

const TYPES: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// The AVX2 and scalar tables, or `None` (test skipped) on a CPU without AVX2.
fn tables() -> Option<(Kernels, Kernels)> {
    if !Isa::AVX2.supported() {
        eprintln!("no AVX2/FMA/F16C on this CPU: skipped");
        return None;
    }
    let fast = Kernels::for_isa(Isa::AVX2);
    assert_eq!(fast.isa(), Isa::AVX2);
    Some((fast, Kernels::for_isa(Isa::SCALAR)))
}

/// Deterministic pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
    }
}

/// Shapes of input rows.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Uniform noise with an occasional outlier.
    Typical,
    /// Typical, with every other 256-value block all zeros.
    ZeroBlocks,
    /// Alternating ± of a large magnitude.
    MaxMagnitude,
    /// Negative values only.
    NegativeOnly,
    /// Constant positive value.
    Constant,
}

const SHAPES: [Shape; 5] = [
    Shape::Typical,
    Shape::ZeroBlocks,
    Shape::MaxMagnitude,
    Shape::NegativeOnly,
    Shape::Constant,
];

fn row(shape: Shape, n: usize, scale: f32, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let u = rng.uniform();
            match shape {
                Shape::Typical => u * scale * if i % 61 == 0 { 8.0 } else { 1.0 },
                Shape::ZeroBlocks if (i / 256) % 2 == 0 => 0.0,
                Shape::ZeroBlocks => u * scale,
                Shape::MaxMagnitude if i % 2 == 0 => scale * 1000.0,
                Shape::MaxMagnitude => -scale * 1000.0,
                Shape::NegativeOnly => -(u.abs() + 0.01) * scale,
                Shape::Constant => scale,
            }
        })
        .collect()
}

fn quantize(ty: GgmlType, x: &[f32], k: &Kernels) -> Vec<u8> {
    let mut out = vec![0u8; owl_quant::row_bytes(ty, x.len())];
    (k.quantize(ty).expect("quantizer"))(x, &mut out);
    out
}

fn dequantize(ty: GgmlType, b: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    (format(ty).expect("format").dequantize)(b, &mut out);
    out
}

/// Runs both kernels on `(w, a)` and checks `|fast - scalar| <= 1e-6 * Σ|w_i a_i|` over the
/// dequantized rows; returns the relative difference seen.
fn check(
    ty: GgmlType,
    n: usize,
    w: &[u8],
    a: &[u8],
    fast: &Kernels,
    scalar: &Kernels,
    what: &str,
) -> f64 {
    let f = format(ty).expect("format");
    let rs = (scalar.vec_dot(ty).expect("scalar dot"))(n, w, a);
    let rf = (fast.vec_dot(ty).expect("avx2 dot"))(n, w, a);
    let wd = dequantize(ty, w, n);
    let ad = dequantize(f.vec_dot_type, a, n);
    let mag: f64 = wd
        .iter()
        .zip(&ad)
        .map(|(p, q)| (f64::from(*p) * f64::from(*q)).abs())
        .sum();
    assert!(
        rs.is_finite() && rf.is_finite(),
        "{ty} n={n} {what}: {rs} / {rf}"
    );
    let diff = (f64::from(rs) - f64::from(rf)).abs();
    if mag == 0.0 {
        assert_eq!(
            rf, 0.0,
            "{ty} n={n} {what}: products all zero, avx2 gave {rf}"
        );
        assert_eq!(
            rs, 0.0,
            "{ty} n={n} {what}: products all zero, scalar gave {rs}"
        );
        return 0.0;
    }
    let rel = diff / mag;
    assert!(
        rel <= 1e-6,
        "{ty} n={n} {what}: scalar {rs} vs avx2 {rf} (|diff| / Σ|products| = {rel:e})"
    );
    rel
}

#[test]
fn every_kernel_is_registered() {
    let Some((fast, _)) = tables() else { return };
    for ty in TYPES {
        let name = format!(
            "{}·q8_{}/avx2",
            ty.name().to_lowercase(),
            match ty {
                GgmlType::Q4_0 | GgmlType::Q5_0 => "0",
                GgmlType::Q5_1 => "1",
                _ => "k",
            }
        );
        assert!(
            fast.overridden().iter().any(|o| *o == name),
            "{name} missing from {:?}",
            fast.overridden()
        );
    }
}

/// Weight and activation rows of every shape pair, 1 to 8 super-blocks, quantized with the
/// reference quantizers.
#[test]
fn matches_scalar_on_quantized_rows() {
    let Some((fast, scalar)) = tables() else {
        return;
    };
    let mut rng = Rng(7);
    for ty in TYPES {
        let f = format(ty).expect("format");
        let mut worst = 0f64;
        for blocks in 1..=8 {
            let n = blocks * 256;
            for (i, ws) in SHAPES.into_iter().enumerate() {
                for (j, xs) in SHAPES.into_iter().enumerate() {
                    // Typical × typical at every size, each other pair at two sizes.
                    if (i, j) != (0, 0) && blocks % 4 != (i + j) % 4 {
                        continue;
                    }
                    let w = quantize(ty, &row(ws, n, 2.5, &mut rng), &scalar);
                    let a = quantize(f.vec_dot_type, &row(xs, n, 0.7, &mut rng), &scalar);
                    let what = format!("weights {ws:?}, activations {xs:?}");
                    worst = worst.max(check(ty, n, &w, &a, &fast, &scalar, &what));
                }
            }
        }
        eprintln!("{ty}: worst |avx2 - scalar| / Σ|products| = {worst:e}");
    }
}

/// The 32-element formats at block counts that are not multiples of eight.
#[test]
fn matches_scalar_on_odd_block_counts() {
    let Some((fast, scalar)) = tables() else {
        return;
    };
    let mut rng = Rng(11);
    for ty in [GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q5_1] {
        let f = format(ty).expect("format");
        for blocks in 1..=17 {
            let n = blocks * 32;
            let w = quantize(ty, &row(Shape::Typical, n, 1.0, &mut rng), &scalar);
            let a = quantize(
                f.vec_dot_type,
                &row(Shape::Typical, n, 1.0, &mut rng),
                &fast,
            );
            check(ty, n, &w, &a, &fast, &scalar, "typical");
        }
    }
}

/// Arbitrary block bytes (every bit pattern of quants, scales and high bits), with finite f16
/// scales, against activations from the reference quantizer.
#[test]
fn matches_scalar_on_arbitrary_weight_bytes() {
    let Some((fast, scalar)) = tables() else {
        return;
    };
    let mut rng = Rng(23);
    for ty in TYPES {
        let f = format(ty).expect("format");
        // Offsets of the f16 scales inside a block.
        let scales: &[usize] = match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 => &[0],
            GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
            GgmlType::Q2_K => &[80, 82],
            GgmlType::Q3_K => &[108],
            GgmlType::Q6_K => &[208],
            _ => unreachable!(),
        };
        for blocks in 1..=8 {
            let n = blocks * 256;
            let mut w: Vec<u8> = (0..f.row_bytes(n)).map(|_| rng.next_u64() as u8).collect();
            for b in w.chunks_exact_mut(f.type_size) {
                for &o in scales {
                    let h = owl_quant::fp32_to_fp16(rng.uniform() * 0.1);
                    b[o..o + 2].copy_from_slice(&h.to_le_bytes());
                }
            }
            for xs in SHAPES {
                let a = quantize(f.vec_dot_type, &row(xs, n, 1.0, &mut rng), &scalar);
                check(
                    ty,
                    n,
                    &w,
                    &a,
                    &fast,
                    &scalar,
                    &format!("random bytes, {xs:?}"),
                );
            }
        }
    }
}

/// All-zero rows give exactly zero, and a trailing partial block is ignored.
#[test]
fn zero_rows_and_partial_blocks() {
    let Some((fast, scalar)) = tables() else {
        return;
    };
    let mut rng = Rng(31);
    for ty in TYPES {
        let f = format(ty).expect("format");
        let dot = fast.vec_dot(ty).expect("avx2 dot");
        let n = 3 * 256;
        let zero_w = quantize(ty, &vec![0.0; n], &scalar);
        let a = quantize(
            f.vec_dot_type,
            &row(Shape::Typical, n, 1.0, &mut rng),
            &scalar,
        );
        assert_eq!(dot(n, &zero_w, &a), 0.0, "{ty}: zero weights");
        let w = quantize(ty, &row(Shape::Typical, n, 1.0, &mut rng), &scalar);
        let zero_a = quantize(f.vec_dot_type, &vec![0.0; n], &scalar);
        assert_eq!(dot(n, &w, &zero_a), 0.0, "{ty}: zero activations");
        // n one short of a whole number of blocks: the trailing partial block is not counted
        // (as in the scalar reference, which debug-asserts exact lengths, so is not called).
        let whole = n - f.block_size;
        assert_eq!(
            dot(n - 1, &w, &a).to_bits(),
            dot(whole, &w, &a).to_bits(),
            "{ty}: partial block"
        );
    }
}

/// Rows shorter than `n` elements are refused with a panic, never read past.
#[test]
fn short_rows_panic() {
    let Some((fast, scalar)) = tables() else {
        return;
    };
    for ty in TYPES {
        let f = format(ty).expect("format");
        let n = 2 * 256;
        let w = quantize(ty, &vec![1.0; n], &scalar);
        let a = quantize(f.vec_dot_type, &vec![1.0; n], &scalar);
        let dot = fast.vec_dot(ty).expect("avx2 dot");
        let short_w = std::panic::catch_unwind(|| dot(n, &w[..w.len() - 1], &a));
        assert!(short_w.is_err(), "{ty}: short weight row accepted");
        let short_a = std::panic::catch_unwind(|| dot(n, &w, &a[..a.len() - 1]));
        assert!(short_a.is_err(), "{ty}: short activation row accepted");
        let huge = std::panic::catch_unwind(|| dot(usize::MAX, &w, &a));
        assert!(huge.is_err(), "{ty}: n = usize::MAX accepted");
    }
}
