//! Every ISA override equals the scalar reference within a stated bound, for every format and
//! many sizes. Runs for each ISA this machine supports.

use owl_kernels::{Isa, Kernels};
use owl_quant::{formats, GgmlType};

/// Deterministic pseudo-random floats with a wide dynamic range.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            let scale = if i % 97 == 0 { 8.0 } else { 1.0 };
            u * scale
        })
        .collect()
}

fn quantize(k: &Kernels, ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; owl_quant::row_bytes(ty, x.len())];
    (k.quantize(ty).expect("quantizer"))(x, &mut out);
    out
}

/// Dot products: same input bytes through the ISA kernel and the scalar one. Only the float
/// reduction order may differ, so the bound is relative to the sum of absolute products.
#[test]
fn vec_dot_matches_scalar_for_every_format() {
    let scalar = Kernels::for_isa(Isa::SCALAR);
    for isa in Isa::available() {
        let fast = Kernels::for_isa(isa);
        for f in formats() {
            let (Some(dot_s), Some(dot_f)) = (scalar.vec_dot(f.ty), fast.vec_dot(f.ty)) else {
                continue;
            };
            let Some(wq) = scalar.quantize(f.ty) else {
                continue;
            };
            for (case, blocks) in [1usize, 2, 3, 7, 16].into_iter().enumerate() {
                let n = blocks * f.block_size.max(256);
                let w_f32 = data(n, 17 + case as u64);
                let mut w = vec![0u8; owl_quant::row_bytes(f.ty, n)];
                wq(&w_f32, &mut w);
                let x = data(n, 99 + case as u64);
                let a = quantize(&scalar, f.vec_dot_type, &x);
                let rs = dot_s(n, &w, &a);
                let rf = dot_f(n, &w, &a);
                let mag: f32 = w_f32.iter().zip(&x).map(|(p, q)| (p * q).abs()).sum();
                let bound = 1e-5 * mag.max(1.0);
                assert!(
                    (rs - rf).abs() <= bound,
                    "{:?} {} n={n}: scalar {rs} vs {} {rf} (bound {bound})",
                    isa,
                    f.ty,
                    isa.name()
                );
            }
        }
    }
}

/// Activation quantizers: an ISA variant may round exact ties differently (ggml's x86 formula
/// uses 127/amax and round-half-even), so each quantized value may differ by one step and the
/// dequantized rows agree within one quantization step.
#[test]
fn activation_quantizers_match_scalar() {
    let scalar = Kernels::for_isa(Isa::SCALAR);
    for isa in Isa::available() {
        let fast = Kernels::for_isa(isa);
        for ty in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K] {
            let f = owl_quant::format(ty).expect("format");
            let n = 1024;
            let x = data(n, 5);
            let a = quantize(&scalar, ty, &x);
            let b = quantize(&fast, ty, &x);
            let mut da = vec![0.0f32; n];
            let mut db = vec![0.0f32; n];
            (f.dequantize)(&a, &mut da);
            (f.dequantize)(&b, &mut db);
            for (blk, (ba, bb)) in da
                .chunks(f.block_size)
                .zip(db.chunks(f.block_size))
                .enumerate()
            {
                let amax = x[blk * f.block_size..(blk + 1) * f.block_size]
                    .iter()
                    .fold(0.0f32, |m, v| m.max(v.abs()));
                let step = amax / 127.0 * 1.001;
                for (p, q) in ba.iter().zip(bb) {
                    assert!((p - q).abs() <= step, "{isa:?} {ty}: {p} vs {q}");
                }
            }
        }
    }
}

/// `linear` gives the same bits for a row whether it is alone or inside a larger batch, for
/// every supported weight format (the batch-invariance promise).
#[test]
fn linear_is_batch_invariant() {
    let k = Kernels::detect();
    let pool = owl_kernels::ThreadPool::new(2);
    for f in formats() {
        let Some(q) = k.quantize(f.ty) else { continue };
        if !k.supports(f.ty) {
            continue;
        }
        let (rows, cols) = (37, 512);
        let w_f32 = data(rows * cols, 3);
        let mut bytes = vec![0u8; owl_quant::row_bytes(f.ty, cols) * rows];
        for (src, dst) in w_f32
            .chunks(cols)
            .zip(bytes.chunks_mut(owl_quant::row_bytes(f.ty, cols)))
        {
            q(src, dst);
        }
        let w = owl_kernels::QMatrix {
            ty: f.ty,
            rows,
            cols,
            bytes: owl_kernels::WeightBytes::Owned(std::sync::Arc::new(bytes)),
            layout: owl_kernels::Layout::Rows,
        };
        let n_tok = 5;
        let x = data(n_tok * cols, 11);
        let mut act = owl_kernels::ActBuffer::default();
        let mut all = vec![0.0f32; n_tok * rows];
        owl_kernels::linear(&k, &pool, &w, &x, n_tok, &mut all, &mut act);
        for t in 0..n_tok {
            let mut one = vec![0.0f32; rows];
            owl_kernels::linear(
                &k,
                &pool,
                &w,
                &x[t * cols..(t + 1) * cols],
                1,
                &mut one,
                &mut act,
            );
            assert_eq!(
                &all[t * rows..(t + 1) * rows],
                &one[..],
                "{} token {t}",
                f.ty
            );
        }
    }
}

/// Row lengths for the batched-kernel tests: 1, 3 and 8 super-blocks of 256, and for formats
/// with smaller blocks also odd block counts (kernels that pair blocks have a tail there).
fn tile_test_lengths(block_size: usize) -> Vec<usize> {
    let mut v = vec![256, 3 * 256, 8 * 256];
    if block_size < 256 {
        v.extend([block_size, 5 * block_size, 8 * 256 + block_size]);
    }
    v
}

/// Four-token kernels give exactly the bits of the single-token kernel of the same ISA.
#[test]
fn x4_kernels_are_bit_identical_to_single_token_kernels() {
    for isa in Isa::available() {
        let k = Kernels::for_isa(isa);
        for f in formats() {
            let (Some(x4), Some(one)) = (k.vec_dot_x4(f.ty), k.vec_dot(f.ty)) else {
                continue;
            };
            let wq = Kernels::for_isa(Isa::SCALAR)
                .quantize(f.ty)
                .expect("quantizer");
            for n in tile_test_lengths(f.block_size) {
                let mut w = vec![0u8; owl_quant::row_bytes(f.ty, n)];
                wq(&data(n, 1), &mut w);
                let acts: Vec<Vec<u8>> = (0..4)
                    .map(|j| quantize(&k, f.vec_dot_type, &data(n, 50 + j)))
                    .collect();
                let got = x4(n, &w, [&acts[0], &acts[1], &acts[2], &acts[3]]);
                for j in 0..4 {
                    assert_eq!(
                        got[j].to_bits(),
                        one(n, &w, &acts[j]).to_bits(),
                        "{isa:?} {} token {j}",
                        f.ty
                    );
                }
            }
        }
    }
}

/// Two-row × four-token kernels give exactly the bits of the single kernel for every pair.
#[test]
fn two_by_four_kernels_are_bit_identical_to_single_kernels() {
    let mut checked = 0;
    for isa in Isa::available() {
        let k = Kernels::for_isa(isa);
        for f in formats() {
            let (Some(x24), Some(one)) = (k.vec_dot_2x4(f.ty), k.vec_dot(f.ty)) else {
                continue;
            };
            let wq = Kernels::for_isa(Isa::SCALAR)
                .quantize(f.ty)
                .expect("quantizer");
            for n in tile_test_lengths(f.block_size) {
                let rows: Vec<Vec<u8>> = (0..2)
                    .map(|r| {
                        let mut w = vec![0u8; owl_quant::row_bytes(f.ty, n)];
                        wq(&data(n, 1 + r), &mut w);
                        w
                    })
                    .collect();
                let acts: Vec<Vec<u8>> = (0..4)
                    .map(|j| quantize(&k, f.vec_dot_type, &data(n, 50 + j)))
                    .collect();
                let got = x24(
                    n,
                    [&rows[0], &rows[1]],
                    [&acts[0], &acts[1], &acts[2], &acts[3]],
                );
                for r in 0..2 {
                    for j in 0..4 {
                        assert_eq!(
                            got[r][j].to_bits(),
                            one(n, &rows[r], &acts[j]).to_bits(),
                            "{isa:?} {} row {r} token {j}",
                            f.ty
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    if Isa::available().contains(&Isa::AVX2) {
        assert!(checked > 0, "no 2x4 kernel was checked on an AVX2 machine");
    }
}

/// The 4×4 tiles of the 16-bit float formats give exactly the bits of the single kernel for
/// every (row, token), on rows that start on a cache line and rows that do not.
#[test]
fn float_tiles_are_bit_identical_to_single_kernels() {
    let mut checked = 0;
    for isa in Isa::available() {
        let k = Kernels::for_isa(isa);
        for f in formats() {
            let (Some(tile), Some(one)) = (k.float_tile(f.ty), k.vec_dot(f.ty)) else {
                continue;
            };
            for n in [32, 64, 96, 100, 256, 896, 1000] {
                let row_bytes = owl_quant::row_bytes(f.ty, n);
                // Four rows 32 bytes past a 64-byte boundary, as GGUF's alignment leaves them.
                let mut buf = vec![0u8; 4 * row_bytes + 4 * 64 + 128];
                let base = buf.as_ptr().align_offset(64) + 32;
                let stride = row_bytes.next_multiple_of(64);
                for r in 0..4 {
                    let q = quantize(&k, f.ty, &data(n, 1 + r as u64));
                    buf[base + r * stride..base + r * stride + row_bytes].copy_from_slice(&q);
                }
                let rows: [&[u8]; 4] =
                    std::array::from_fn(|r| &buf[base + r * stride..base + r * stride + row_bytes]);
                let acts: Vec<Vec<u8>> = (0..4)
                    .map(|j| quantize(&k, f.vec_dot_type, &data(n, 50 + j)))
                    .collect();
                let got = tile(n, rows, std::array::from_fn(|j| acts[j].as_slice()));
                for (r, row) in rows.iter().enumerate() {
                    for (j, act) in acts.iter().enumerate() {
                        assert_eq!(
                            got[r][j].to_bits(),
                            one(n, row, act).to_bits(),
                            "{isa:?} {} n={n} row {r} token {j}",
                            f.ty
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    if Isa::available().contains(&Isa::AVX512) {
        assert!(checked > 0, "no 4x4 tile was checked on an AVX-512 machine");
    }
}

/// The batched kernels of the 32-element formats that meet `Q8_0` activations stay bit-identical
/// to the single kernel on arbitrary value bytes (scales kept finite), where the 8- and 16-bit
/// integer steps can wrap or saturate: weights from the whole byte range and activations with
/// -128, which no quantizer writes.
#[test]
fn batched_kernels_are_bit_identical_on_arbitrary_bytes() {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut byte = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 32) as u8
    };
    for isa in Isa::available() {
        let k = Kernels::for_isa(isa);
        for f in formats() {
            if f.block_size != 32 || f.vec_dot_type != GgmlType::Q8_0 {
                continue;
            }
            let Some(one) = k.vec_dot(f.ty) else {
                continue;
            };
            let (x4, x24) = (k.vec_dot_x4(f.ty), k.vec_dot_2x4(f.ty));
            let wq = Kernels::for_isa(Isa::SCALAR)
                .quantize(f.ty)
                .expect("quantizer");
            for n in tile_test_lengths(f.block_size) {
                // Quantized rows keep their (finite) scales in the first two bytes of each
                // block; every other byte is replaced.
                let mut scramble = |mut row: Vec<u8>, size: usize| {
                    for block in row.chunks_exact_mut(size) {
                        block[2..].iter_mut().for_each(|b| *b = byte());
                    }
                    row
                };
                let rows: Vec<Vec<u8>> = (0..2)
                    .map(|r| {
                        let mut w = vec![0u8; owl_quant::row_bytes(f.ty, n)];
                        wq(&data(n, 7 + r), &mut w);
                        scramble(w, f.type_size)
                    })
                    .collect();
                let acts: Vec<Vec<u8>> = (0..4)
                    .map(|j| {
                        let a = quantize(&k, GgmlType::Q8_0, &data(n, 70 + j));
                        scramble(a, 34)
                    })
                    .collect();
                let a4 = [&acts[0][..], &acts[1], &acts[2], &acts[3]];
                for (r, row) in rows.iter().enumerate() {
                    for (j, act) in a4.iter().enumerate() {
                        let want = one(n, row, act).to_bits();
                        if let (Some(x4), 0) = (x4, r) {
                            let got = x4(n, row, a4)[j].to_bits();
                            assert_eq!(got, want, "{isa:?} {} x4 n={n} token {j}", f.ty);
                        }
                        if let Some(x24) = x24 {
                            let got = x24(n, [&rows[0], &rows[1]], a4)[r][j].to_bits();
                            assert_eq!(got, want, "{isa:?} {} 2x4 n={n} row {r} token {j}", f.ty);
                        }
                    }
                }
            }
        }
    }
}

/// Fusing matrices into one `linear_many` pass gives each output exactly what `linear` gives,
/// for fusable groups (same activation format) and mixed ones (run one after another).
#[test]
fn linear_many_equals_separate_linears() {
    let k = Kernels::detect();
    let pool = owl_kernels::ThreadPool::new(3);
    let cols = 512;
    let make = |ty: GgmlType, rows: usize, seed: u64| {
        let f = owl_quant::format(ty).expect("format");
        let rb = owl_quant::row_bytes(ty, cols);
        let mut bytes = vec![0u8; rb * rows];
        let src = data(rows * cols, seed);
        for (s, d) in src.chunks(cols).zip(bytes.chunks_mut(rb)) {
            (f.quantize.expect("quantizer"))(s, d);
        }
        owl_kernels::QMatrix {
            ty,
            rows,
            cols,
            bytes: owl_kernels::WeightBytes::Owned(std::sync::Arc::new(bytes)),
            layout: owl_kernels::Layout::Rows,
        }
    };
    for tys in [
        [GgmlType::Q4_1, GgmlType::Q4_1, GgmlType::Q4_1],
        [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q4_K],
        [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::F16],
    ] {
        let ws = [
            make(tys[0], 37, 1),
            make(tys[1], 11, 2),
            make(tys[2], 23, 3),
        ];
        for n_tok in [1usize, 6] {
            let x = data(n_tok * cols, 9);
            let mut act = owl_kernels::ActBuffer::default();
            let mut sep: Vec<Vec<f32>> = Vec::new();
            for w in &ws {
                let mut o = vec![0.0f32; n_tok * w.rows];
                owl_kernels::linear(&k, &pool, w, &x, n_tok, &mut o, &mut act);
                sep.push(o);
            }
            let mut o0 = vec![0.0f32; n_tok * 37];
            let mut o1 = vec![0.0f32; n_tok * 11];
            let mut o2 = vec![0.0f32; n_tok * 23];
            owl_kernels::linear_many(
                &k,
                &pool,
                &x,
                n_tok,
                &mut [(&ws[0], &mut o0), (&ws[1], &mut o1), (&ws[2], &mut o2)],
                &mut act,
            );
            assert_eq!(o0, sep[0], "{tys:?}");
            assert_eq!(o1, sep[1], "{tys:?}");
            assert_eq!(o2, sep[2], "{tys:?}");
        }
    }
}

/// Formats with 32-value blocks at odd block counts (kernels that take two blocks per step
/// finish the last one apart), against the scalar kernel.
#[test]
fn odd_block_counts_match_scalar() {
    let scalar = Kernels::for_isa(Isa::SCALAR);
    for isa in Isa::available() {
        let fast = Kernels::for_isa(isa);
        for f in formats().iter().filter(|f| f.block_size == 32) {
            let (Some(dot_s), Some(dot_f), Some(wq)) = (
                scalar.vec_dot(f.ty),
                fast.vec_dot(f.ty),
                scalar.quantize(f.ty),
            ) else {
                continue;
            };
            for (case, n) in [32usize, 96, 160].into_iter().enumerate() {
                let w_f32 = data(n, 7 + case as u64);
                let mut w = vec![0u8; owl_quant::row_bytes(f.ty, n)];
                wq(&w_f32, &mut w);
                let x = data(n, 70 + case as u64);
                let a = quantize(&scalar, f.vec_dot_type, &x);
                let (rs, rf) = (dot_s(n, &w, &a), dot_f(n, &w, &a));
                let mag: f32 = w_f32.iter().zip(&x).map(|(p, q)| (p * q).abs()).sum();
                assert!(
                    (rs - rf).abs() <= 1e-5 * mag.max(1.0),
                    "{isa:?} {} n={n}: scalar {rs} vs {rf}",
                    f.ty
                );
            }
        }
    }
}

/// The repacked layouts (`Q4_K`×8, `Q5_K`×8, `Q6_K`×8, `Q4_0`×8, `Q4_1`×8, `Q5_0`×8, `Q8_0`×8): every ISA's kernel gives the scalar reference's
/// bits for any number of tokens per call; `linear` on the repacked matrix is batch-invariant,
/// agrees with the row layout to float rounding, and fused calls mixing it with a row-layout
/// matrix (as a Q4_K_M model's attention projections do) give what separate calls give.
#[test]
fn repacked_layouts_match_their_reference_and_the_row_layout() {
    use owl_kernels::repack;
    let scalar = Kernels::for_isa(Isa::SCALAR);
    let q8_0 = scalar.quantize(GgmlType::Q8_0).expect("q8_0");
    let q4_k_acts = |x: &[f32]| quantize(&scalar, GgmlType::Q8_K, x);
    let q4_0_acts = |x: &[f32]| {
        let mut a = vec![0u8; repack::q8_0_with_sums_bytes(x.len())];
        repack::quantize_q8_0_with_sums(q8_0, x, &mut a);
        a
    };
    let q8_1 = scalar.quantize(GgmlType::Q8_1).expect("q8_1");
    let q4_1_acts = |x: &[f32]| {
        let mut a = vec![0u8; repack::q8_1_with_scales_bytes(x.len())];
        repack::quantize_q8_1_with_scales(q8_1, x, &mut a);
        a
    };
    let cases: [Repacked<'_>; 7] = [
        Repacked {
            ty: GgmlType::Q4_K,
            cols: 2 * 256,
            block_cols: 256,
            block_bytes: repack::Q4K_X8_BLOCK,
            acts_of: &q4_k_acts,
            reference: repack::gemm_q4_k_x8_scalar,
            kernel: |k| k.repacked(owl_kernels::Layout::Q4KX8).expect("kernel"),
        },
        Repacked {
            ty: GgmlType::Q4_0,
            cols: 7 * 32,
            block_cols: 32,
            block_bytes: repack::Q40_X8_BLOCK,
            acts_of: &q4_0_acts,
            reference: repack::gemm_q4_0_x8_scalar,
            kernel: |k| k.repacked(owl_kernels::Layout::Q40X8).expect("kernel"),
        },
        Repacked {
            ty: GgmlType::Q8_0,
            cols: 5 * 32,
            block_cols: 32,
            block_bytes: repack::Q80_X8_BLOCK,
            acts_of: &q4_0_acts,
            reference: repack::gemm_q8_0_x8_scalar,
            kernel: |k| k.repacked(owl_kernels::Layout::Q80X8).expect("kernel"),
        },
        Repacked {
            ty: GgmlType::Q4_1,
            cols: 3 * 32,
            block_cols: 32,
            block_bytes: repack::Q41_X8_BLOCK,
            acts_of: &q4_1_acts,
            reference: repack::gemm_q4_1_x8_scalar,
            kernel: |k| k.repacked(owl_kernels::Layout::Q41X8).expect("kernel"),
        },
        Repacked {
            ty: GgmlType::Q5_0,
            cols: 6 * 32,
            block_cols: 32,
            block_bytes: repack::Q50_X8_BLOCK,
            acts_of: &q4_0_acts,
            reference: repack::gemm_q5_0_x8_scalar,
            kernel: |k| k.repacked(owl_kernels::Layout::Q50X8).expect("kernel"),
        },
        Repacked {
            ty: GgmlType::Q6_K,
            cols: 3 * 256,
            block_cols: 256,
            block_bytes: repack::Q6K_X8_BLOCK,
            acts_of: &q4_k_acts,
            reference: repack::gemm_q6_k_x8_scalar,
            kernel: |k| k.repacked(owl_kernels::Layout::Q6KX8).expect("kernel"),
        },
        Repacked {
            ty: GgmlType::Q5_K,
            cols: 2 * 256,
            block_cols: 256,
            block_bytes: repack::Q5K_X8_BLOCK,
            acts_of: &q4_k_acts,
            reference: repack::gemm_q5_k_x8_scalar,
            kernel: |k| k.repacked(owl_kernels::Layout::Q5KX8).expect("kernel"),
        },
    ];
    for c in cases {
        let Repacked {
            ty,
            cols,
            block_cols,
            block_bytes,
            acts_of,
            reference,
            kernel,
        } = c;
        let nb = cols / block_cols;
        let w = matrix(&scalar, ty, 24, cols);
        let packed = w.repacked_with(true).expect("repacks");
        let group = &packed.bytes.as_slice()[..nb * block_bytes];
        let acts: Vec<Vec<u8>> = (0..7).map(|t| acts_of(&data(cols, 300 + t))).collect();
        let a: Vec<&[u8]> = acts.iter().map(|v| v.as_slice()).collect();
        let mut want = vec![[0f32; 8]; a.len()];
        reference(nb, group, &a, &mut want);
        for isa in Isa::available() {
            let k = Kernels::for_isa(isa);
            for n in 1..=a.len() {
                let mut got = vec![[0f32; 8]; n];
                kernel(&k)(nb, group, &a[..n], &mut got);
                for t in 0..n {
                    for r in 0..8 {
                        assert_eq!(
                            got[t][r].to_bits(),
                            want[t][r].to_bits(),
                            "{ty} {isa:?} {n} tokens: token {t} row {r}"
                        );
                    }
                }
            }
        }
        check_linear_on_repacked(&w, &packed);
    }
}

type Gemm = fn(usize, &[u8], &[&[u8]], &mut [[f32; 8]]);

/// One repacked layout under test.
struct Repacked<'a> {
    ty: GgmlType,
    cols: usize,
    block_cols: usize,
    block_bytes: usize,
    acts_of: &'a dyn Fn(&[f32]) -> Vec<u8>,
    reference: Gemm,
    kernel: fn(&Kernels) -> Gemm,
}

/// `rows × cols` weights of type `ty`, quantized from deterministic data.
fn matrix(k: &Kernels, ty: GgmlType, rows: usize, cols: usize) -> owl_kernels::QMatrix {
    let rb = owl_quant::row_bytes(ty, cols);
    let mut b = vec![0u8; rows * rb];
    for (r, dst) in b.chunks_exact_mut(rb).enumerate() {
        (k.quantize(ty).expect("quantizer"))(&data(cols, 7 + r as u64), dst);
    }
    owl_kernels::QMatrix::new(
        ty,
        rows,
        cols,
        owl_kernels::WeightBytes::Owned(std::sync::Arc::new(b)),
    )
}

fn check_linear_on_repacked(w: &owl_kernels::QMatrix, packed: &owl_kernels::QMatrix) {
    use owl_kernels::{ActBuffer, QMatrix, ThreadPool};
    let (rows, cols) = (w.rows, w.cols);
    let k = Kernels::detect();
    let pool = ThreadPool::new(2);
    let mut act = ActBuffer::default();
    let n_tok = 6;
    let x = data(n_tok * cols, 21);
    let run = |m: &QMatrix, x: &[f32], n: usize, act: &mut ActBuffer| {
        let mut out = vec![0f32; n * m.rows];
        owl_kernels::linear(&k, &pool, m, x, n, &mut out, act);
        out
    };
    let all = run(packed, &x, n_tok, &mut act);
    let rows_layout = run(w, &x, n_tok, &mut act);
    for t in 0..n_tok {
        let one = run(packed, &x[t * cols..(t + 1) * cols], 1, &mut act);
        assert_eq!(
            &all[t * rows..(t + 1) * rows],
            &one[..],
            "{} token {t}",
            w.ty
        );
    }
    for (i, (p, r)) in all.iter().zip(&rows_layout).enumerate() {
        assert!(
            (p - r).abs() <= 1e-4 * r.abs().max(1.0),
            "{} {i}: {p} vs {r}",
            w.ty
        );
    }
    // Fused with a row-layout matrix of another type over the same input.
    let q8 = matrix(&Kernels::for_isa(Isa::SCALAR), GgmlType::Q8_0, 16, cols);
    let (mut o1, mut o2) = (vec![0f32; n_tok * rows], vec![0f32; n_tok * 16]);
    owl_kernels::linear_many(
        &k,
        &pool,
        &x,
        n_tok,
        &mut [(packed, &mut o1), (&q8, &mut o2)],
        &mut act,
    );
    assert_eq!(o1, all, "{}", w.ty);
    assert_eq!(o2, run(&q8, &x, n_tok, &mut act), "{}", w.ty);
}

/// Several repacked matrices of different heights fused in one call (Q, K and V) give what
/// separate calls give, and each stays close to its row layout.
#[test]
fn fused_repacked_matrices_equal_separate_calls() {
    use owl_kernels::{ActBuffer, ThreadPool};
    let scalar = Kernels::for_isa(Isa::SCALAR);
    let k = Kernels::detect();
    let pool = ThreadPool::new(2);
    let cols = 18 * 32;
    for ty in [
        GgmlType::Q4_1,
        GgmlType::Q4_0,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
    ] {
        let rows = [64usize, 24, 24];
        let ws: Vec<_> = rows.iter().map(|&r| matrix(&scalar, ty, r, cols)).collect();
        let ps: Vec<_> = ws
            .iter()
            .map(|w| w.repacked_with(true).expect("repacks"))
            .collect();
        let n_tok = 9;
        let x = data(n_tok * cols, 77);
        let mut act = ActBuffer::default();
        let mut outs: Vec<Vec<f32>> = rows.iter().map(|&r| vec![0f32; n_tok * r]).collect();
        {
            let (a, rest) = outs.split_at_mut(1);
            let (b, c) = rest.split_at_mut(1);
            owl_kernels::linear_many(
                &k,
                &pool,
                &x,
                n_tok,
                &mut [
                    (&ps[0], &mut a[0]),
                    (&ps[1], &mut b[0]),
                    (&ps[2], &mut c[0]),
                ],
                &mut act,
            );
        }
        for i in 0..3 {
            let mut one = vec![0f32; n_tok * rows[i]];
            owl_kernels::linear(&k, &pool, &ps[i], &x, n_tok, &mut one, &mut act);
            assert_eq!(outs[i], one, "{ty} matrix {i}");
            let mut row = vec![0f32; n_tok * rows[i]];
            owl_kernels::linear(&k, &pool, &ws[i], &x, n_tok, &mut row, &mut act);
            for (j, (p, r)) in one.iter().zip(&row).enumerate() {
                assert!(
                    (p - r).abs() <= 1e-4 * r.abs().max(1.0),
                    "{ty} matrix {i} [{j}]: {p} vs {r}"
                );
            }
        }
    }
}
