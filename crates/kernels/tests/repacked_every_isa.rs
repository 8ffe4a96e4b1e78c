//! Every ISA's kernel for every repacked layout gives its scalar reference's bits, over many
//! shapes: one to many blocks, every group of a matrix with an odd number of groups, one to
//! nine tokens per call (so the four-token tiles end on every ragged tail), and data with
//! extreme values (all-max nibbles, full-range activations, zero blocks). Then `linear` on a
//! repacked matrix gives the same bits with every ISA's table as with the scalar one.

use owl_kernels::repack::{self, Activations, Packed, PACKED, X8};
use owl_kernels::{ActBuffer, Isa, Kernels, QMatrix, ThreadPool, WeightBytes};
use owl_quant::{GgmlType, QK_K};

/// Deterministic values of varied magnitude: mostly uniform in [-1, 1], some large outliers,
/// some rows of one repeated extreme (nibbles at 0 or 15) and some all-zero stretches.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let style = seed % 5;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            match style {
                0 if i % 64 < 32 => 0.0,
                1 => {
                    if i % 2 == 0 {
                        3.0
                    } else {
                        -3.0
                    }
                }
                2 => u.signum() * 100.0,
                _ if i % 53 == 0 => u * 40.0,
                _ => u,
            }
        })
        .collect()
}

fn scalar() -> Kernels {
    Kernels::for_isa(Isa::SCALAR)
}

/// One token's activations in the layout's format.
fn acts(p: &Packed, x: &[f32]) -> Vec<u8> {
    let k = scalar();
    let q = |ty: GgmlType| {
        let mut out = vec![0u8; owl_quant::row_bytes(ty, x.len())];
        (k.quantize(ty).expect("quantizer"))(x, &mut out);
        out
    };
    match p.acts {
        Activations::Q8K => q(GgmlType::Q8_K),
        Activations::Q8_0 => q(GgmlType::Q8_0),
        Activations::Q8_1 => q(GgmlType::Q8_1),
        Activations::Q8_1WithScales => {
            let mut a = vec![0u8; repack::q8_1_with_scales_bytes(x.len())];
            let q8_1 = k.quantize(GgmlType::Q8_1).expect("q8_1");
            repack::quantize_q8_1_with_scales(q8_1, x, &mut a);
            a
        }
        Activations::Q8_0WithSums => {
            let mut a = vec![0u8; repack::q8_0_with_sums_bytes(x.len())];
            let q8_0 = k.quantize(GgmlType::Q8_0).expect("q8_0");
            repack::quantize_q8_0_with_sums(q8_0, x, &mut a);
            a
        }
    }
}

/// `rows × cols` weights of `p`'s type from [`data`], in the row layout.
fn matrix(p: &Packed, rows: usize, cols: usize, seed: u64) -> QMatrix {
    let k = scalar();
    let rb = owl_quant::row_bytes(p.ty, cols);
    let mut b = vec![0u8; rows * rb];
    for (r, dst) in b.chunks_exact_mut(rb).enumerate() {
        (k.quantize(p.ty).expect("quantizer"))(&data(cols, seed + r as u64), dst);
    }
    QMatrix::new(p.ty, rows, cols, WeightBytes::Owned(std::sync::Arc::new(b)))
}

/// Block counts per call: one, a few, odd, and long enough to stress the accumulators.
fn block_counts(p: &Packed) -> &'static [usize] {
    if p.block_cols == QK_K {
        &[1, 2, 3, 5]
    } else {
        &[1, 2, 3, 5, 7, 9, 18, 36]
    }
}

#[test]
fn every_isa_matches_the_reference_on_every_layout_and_shape() {
    let tables: Vec<Kernels> = Isa::available().into_iter().map(Kernels::for_isa).collect();
    assert!(tables.iter().any(|k| k.isa() == Isa::SCALAR));
    let mut checked = 0usize;
    for p in &PACKED {
        for &nb in block_counts(p) {
            let cols = nb * p.block_cols;
            let rows = 3 * X8;
            let w = matrix(p, rows, cols, 11 * nb as u64);
            let packed = w.repacked_with(true).expect("repacks");
            let acts: Vec<Vec<u8>> = (0..9)
                .map(|t| acts(p, &data(cols, 1000 + 7 * t + nb as u64)))
                .collect();
            let a: Vec<&[u8]> = acts.iter().map(|v| v.as_slice()).collect();
            let group_bytes = nb * p.block_bytes;
            for (g, group) in packed
                .bytes
                .as_slice()
                .chunks_exact(group_bytes)
                .enumerate()
            {
                let mut want = vec![[0f32; X8]; a.len()];
                (p.reference)(nb, group, &a, &mut want);
                for k in &tables {
                    let kernel = k.repacked(p.layout).expect("kernel");
                    for n in 1..=a.len() {
                        // The first n tokens, and the last n (other data in every tile slot).
                        for start in [0, a.len() - n] {
                            let mut got = vec![[0f32; X8]; n];
                            kernel(nb, group, &a[start..start + n], &mut got);
                            for (t, row) in got.iter().enumerate() {
                                for r in 0..X8 {
                                    assert_eq!(
                                        row[r].to_bits(),
                                        want[start + t][r].to_bits(),
                                        "{:?} {:?} nb {nb} group {g}, {n} tokens from {start}: \
                                         token {t} row {r}: {} vs {}",
                                        p.layout,
                                        k.isa(),
                                        row[r],
                                        want[start + t][r],
                                    );
                                }
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 0);
}

/// Every ISA's two-group kernel (where it has one) gives, for each of its two groups, the
/// scalar reference's bits: one to nine tokens, every pair of consecutive groups.
#[test]
fn pair_kernels_match_the_reference_group_by_group() {
    let tables: Vec<Kernels> = Isa::available().into_iter().map(Kernels::for_isa).collect();
    for p in &PACKED {
        for &nb in block_counts(p) {
            let cols = nb * p.block_cols;
            let w = matrix(p, 3 * X8, cols, 13 * nb as u64);
            let packed = w.repacked_with(true).expect("repacks");
            let acts: Vec<Vec<u8>> = (0..9)
                .map(|t| acts(p, &data(cols, 2000 + 5 * t + nb as u64)))
                .collect();
            let a: Vec<&[u8]> = acts.iter().map(|v| v.as_slice()).collect();
            let group_bytes = nb * p.block_bytes;
            let bytes = packed.bytes.as_slice();
            for g in 0..2 {
                let two = &bytes[g * group_bytes..(g + 2) * group_bytes];
                let want: Vec<Vec<[f32; X8]>> = (0..2)
                    .map(|h| {
                        let mut out = vec![[0f32; X8]; a.len()];
                        let group = &two[h * group_bytes..(h + 1) * group_bytes];
                        (p.reference)(nb, group, &a, &mut out);
                        out
                    })
                    .collect();
                for k in &tables {
                    let Some(pair) = k.repacked_pair(p.layout) else {
                        continue;
                    };
                    for n in 1..=a.len() {
                        let start = a.len() - n;
                        let mut got = vec![[0f32; X8]; 2 * n];
                        pair(nb, two, &a[start..], &mut got);
                        for (i, row) in got.iter().enumerate() {
                            let (h, t) = (i / n, i % n);
                            let same = row
                                .iter()
                                .zip(&want[h][start + t])
                                .all(|(x, y)| x.to_bits() == y.to_bits());
                            assert!(
                                same,
                                "{:?} {:?} nb {nb} groups {g}+{h}, {n} tokens: token {t}: \
                                 {row:?} vs {:?}",
                                p.layout,
                                k.isa(),
                                want[h][start + t]
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Every available level's table, and the best one again with the tile kernels on the
/// software model of AMX's tiles (`Kernels::with_soft_tiles`), so the tile path meets these
/// tests on CPUs without AMX too. Where AMX is granted, the `amx` level is among the first.
fn tables_with_tiles() -> Vec<Kernels> {
    let mut tables: Vec<Kernels> = Isa::available().into_iter().map(Kernels::for_isa).collect();
    tables.push(Kernels::for_isa(Isa::best_supported()).with_soft_tiles());
    tables
}

/// Every tile kernel (AMX, and the software model of its tiles) gives the scalar reference's
/// bits for each of its one or two groups, over token counts around the 16-token tile and the
/// extreme data of [`data`]. The tile kernels read the tokens' activations from one buffer,
/// rows `a_row` bytes apart, as `linear` lays them out.
#[test]
fn tile_kernels_match_the_reference_group_by_group() {
    let mut checked = 0usize;
    for p in &PACKED {
        for &nb in block_counts(p) {
            let cols = nb * p.block_cols;
            let w = matrix(p, 3 * X8, cols, 17 * nb as u64);
            let packed = w.repacked_with(true).expect("repacks");
            let rows: Vec<Vec<u8>> = (0..40)
                .map(|t| acts(p, &data(cols, 3000 + 3 * t + nb as u64)))
                .collect();
            let a_row = rows[0].len();
            let flat: Vec<u8> = rows.concat();
            let a: Vec<&[u8]> = rows.iter().map(|v| v.as_slice()).collect();
            let group_bytes = nb * p.block_bytes;
            let bytes = packed.bytes.as_slice();
            let want: Vec<Vec<[f32; X8]>> = (0..3)
                .map(|g| {
                    let mut out = vec![[0f32; X8]; a.len()];
                    (p.reference)(
                        nb,
                        &bytes[g * group_bytes..(g + 1) * group_bytes],
                        &a,
                        &mut out,
                    );
                    out
                })
                .collect();
            for k in tables_with_tiles() {
                let Some(tiles) = k.repacked_tiles(p.layout) else {
                    continue;
                };
                for (start, n) in [(0, 1), (3, 15), (0, 16), (7, 17), (0, 40)] {
                    for (g, groups) in [(0, 2), (1, 2), (2, 1)] {
                        let w = &bytes[g * group_bytes..(g + groups) * group_bytes];
                        let acts = &flat[start * a_row..(start + n) * a_row];
                        let mut got = vec![f32::NAN; n * X8 * groups];
                        tiles(nb, w, groups, acts, a_row, &mut got);
                        for (i, row) in got.chunks_exact(X8).enumerate() {
                            let (t, h) = (i / groups, i % groups);
                            let same = row
                                .iter()
                                .zip(&want[g + h][start + t])
                                .all(|(x, y)| x.to_bits() == y.to_bits());
                            assert!(
                                same,
                                "{:?} {:?} nb {nb} group {}, {n} tokens from {start}: token \
                                 {t}: {row:?} vs {:?}",
                                p.layout,
                                k.isa(),
                                g + h,
                                want[g + h][start + t]
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    if std::is_x86_feature_detected!("avx2") {
        assert!(checked > 0, "the software model's tables have tile kernels");
    }
}

/// `linear` on repacked matrices with an odd number of groups and ragged token counts: every
/// ISA's table gives the scalar table's bits (activation quantizers and repacked kernels all
/// match their references), with one and with two threads.
#[test]
fn linear_on_repacked_matrices_is_identical_across_isas() {
    let pools = [ThreadPool::new(1), ThreadPool::new(2)];
    let s = scalar();
    for p in &PACKED {
        let cols = if p.block_cols == QK_K {
            3 * QK_K
        } else {
            11 * 32
        };
        let rows = 5 * X8;
        let packed = matrix(p, rows, cols, 77)
            .repacked_with(true)
            .expect("repacks");
        // 16, 37 and 300 tokens reach the tile kernels (AMX, or their software model); 300
        // crosses `linear_repacked`'s token tiles.
        for n_tok in [1usize, 3, 5, 7, 13, 16, 37, 300] {
            let x = data(n_tok * cols, 500 + n_tok as u64);
            let mut act = ActBuffer::default();
            let mut want = vec![0f32; n_tok * rows];
            owl_kernels::linear(&s, &pools[0], &packed, &x, n_tok, &mut want, &mut act);
            for k in tables_with_tiles() {
                let isa = k.isa();
                for pool in &pools {
                    let mut got = vec![0f32; n_tok * rows];
                    owl_kernels::linear(&k, pool, &packed, &x, n_tok, &mut got, &mut act);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{:?} {isa:?} {n_tok} tokens", p.layout);
                }
            }
        }
    }
}

/// The registry: scalar first, every level named, `by_name` finds each, the table of each
/// available level reports it, and asking for a level above the CPU's gives the best one.
#[test]
fn the_registry_lists_every_level_in_order() {
    let all: Vec<Isa> = Isa::all().collect();
    assert_eq!(all[0], Isa::SCALAR);
    assert_eq!(all.len(), owl_kernels::ISAS.len());
    for isa in &all {
        assert_eq!(Isa::by_name(isa.name()), Some(*isa));
    }
    for isa in Isa::available() {
        assert_eq!(Kernels::for_isa(isa).isa(), isa);
    }
    let top = *all.last().expect("levels");
    assert_eq!(Kernels::for_isa(top).isa(), Isa::best_supported());
    // Every weight type of a Q4_K_M or Q5_K_M file's big matrices has a repacked layout.
    for ty in [
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
    ] {
        assert!(repack::for_type(ty).is_some(), "{ty:?}");
    }
    let s = scalar();
    assert!(s.overridden().is_empty());
    for p in &PACKED {
        assert_eq!(s.repacked_name(p.layout), Some("scalar"));
    }
    for (isa, tag) in [(Isa::AVX_VNNI, "/avxvnni"), (Isa::AVX512, "/avx512vnni")] {
        if isa.supported() {
            let k = Kernels::for_isa(isa);
            assert_eq!(k.isa(), isa);
            for p in &PACKED {
                let name = k.repacked_name(p.layout).expect("kernel");
                assert!(name.ends_with(tag), "{:?}: {name}", p.layout);
            }
        }
    }
    // A level the CPU lacks is skipped, not half-registered.
    for isa in Isa::all().filter(|i| !i.supported()) {
        assert!(Kernels::for_isa(isa).isa() < isa);
    }
}

/// The row-layout Q8_0 dot product of every level above AVX2 gives AVX2's bits (the same i32
/// lanes and float steps, so llama.cpp's AVX2 numbers hold on those levels too), for many
/// lengths and for extreme values.
#[test]
fn row_q8_0_dot_is_avx2s_on_every_higher_level() {
    if !Isa::AVX2.supported() {
        return;
    }
    let avx2 = Kernels::for_isa(Isa::AVX2);
    let q = avx2.quantize(GgmlType::Q8_0).expect("q8_0");
    let quant = |x: &[f32]| {
        let mut out = vec![0u8; owl_quant::row_bytes(GgmlType::Q8_0, x.len())];
        q(x, &mut out);
        out
    };
    let want_dot = avx2.vec_dot(GgmlType::Q8_0).expect("dot");
    for isa in Isa::available().into_iter().filter(|i| *i > Isa::AVX2) {
        let k = Kernels::for_isa(isa);
        let dot = k.vec_dot(GgmlType::Q8_0).expect("dot");
        for nb in [1usize, 2, 3, 7, 18, 64] {
            for seed in 0..5u64 {
                let n = nb * 32;
                let (w, a) = (quant(&data(n, seed)), quant(&data(n, 90 + seed)));
                assert_eq!(
                    dot(n, &w, &a).to_bits(),
                    want_dot(n, &w, &a).to_bits(),
                    "{isa:?} nb {nb} seed {seed}"
                );
            }
        }
    }
}
