//! VNNI kernels for the repacked layouts of `crate::repack` (Q4_K×8, Q5_K×8, Q6_K×8, Q4_0×8,
//! Q4_1×8, Q5_0×8, Q8_0×8) and the row-layout Q8_0 dot product, registered on top of AVX2's
//! (`crate::isa::ISAS`). One body, written once in [`vnni_kernels`], is compiled twice: with
//! AVX-512 VNNI's EVEX `vpdpbusd` (module `avx512`, the `avx512` level) and with AVX-VNNI's VEX
//! encoding of the same instruction (module `avx`, the `avxvnni` level: Alder Lake and later
//! cores without AVX-512). The two give the same bits: the instruction is the same, only its
//! encoding and the features it needs differ.
//!
//! Why: the AVX2 kernels spend three instructions on every 32 byte products: `vpmaddubsw`
//! (u8 × i8 → pairs summed in i16), a 16-bit add into an accumulator, and, once per block, a
//! `vpmaddwd` to widen to i32. VNNI's `vpdpbusd` does all of it in one: u8 × i8, four products
//! summed straight into i32 lanes, no saturation. In the ×8 layouts a 32-bit lane is exactly
//! one row's four bytes, so its i32 lane `r` *is* row `r`'s partial dot product, and the layout
//! needs no change.
//!
//! Why 256-bit (`vpdpbusd ymm`; with AVX-512, the AVX512VL form) and not zmm: a zmm would hold
//! sixteen rows' four bytes, which needs a 16-row repack (a new layout, a new reference, new
//! tests), or two tokens' activations side by side, which costs a shuffle per product to build. On
//! Zen 4 (this project's machine) 512-bit integer operations issue as two 256-bit halves, so
//! neither would do more products per cycle than two ymm `vpdpbusd`s; keeping the 8-row layout
//! keeps one layout and one scalar reference per format for every ISA.
//!
//! Bit-identity with the scalar reference (and so with AVX2): every integer sum is exact in
//! i32 (at most 32 × 31 × 128 per block and lane, or × 63 for Q4_K's scales over 256 values),
//! so the order of the integer additions does not matter; the float epilogue per (row, token)
//! and block is the same `cvt`, `mul` and `fmadd` as the AVX2 kernel's, lane for lane.
//!
//! Latency: `vpdpbusd` accumulates in place (about five cycles on Zen 4), so each token keeps
//! two accumulators per block (low and high nibbles) instead of one chain of eight.

/// The kernels, for the target features `$features` (which must include AVX2, FMA, F16C and a
/// VNNI) with `$dpbusd` the 256-bit `vpdpbusd` of that VNNI; `$tag` ends the kernels' names.
macro_rules! vnni_kernels {
    ($features:literal, $dpbusd:ident, $tag:literal) => {
        use std::arch::x86_64::*;

        use owl_quant::{q8_0, q8_1, q8_k, GgmlType};

        use crate::repack::{
            q5k_chunk, q5k_fifth, q6k_high, q6k_low, Q40_X8_BLOCK, Q41_X8_BLOCK, Q4K_X8_BLOCK,
            Q50_X8_BLOCK, Q5K_X8_BLOCK, Q6K_X8_BLOCK, Q80_X8_BLOCK, X8,
        };
        use crate::x86::avx2_repacked::{
            f16_broadcast, fifth_bit, k_mins, q6_k_values, q8_1_scales, rows_of,
        };
        use crate::x86::common::*;
        use crate::{Kernels, Layout};

        pub(in crate::x86) fn register(k: &mut Kernels) {
            k.set_repacked(
                Layout::Q4KX8,
                gemm_q4_k_x8,
                concat!("q4_k×8 repacked/", $tag),
            );
            k.set_repacked(
                Layout::Q40X8,
                gemm_q4_0_x8,
                concat!("q4_0×8 repacked/", $tag),
            );
            k.set_repacked(
                Layout::Q41X8,
                gemm_q4_1_x8,
                concat!("q4_1×8 repacked/", $tag),
            );
            k.set_repacked(
                Layout::Q50X8,
                gemm_q5_0_x8,
                concat!("q5_0×8 repacked/", $tag),
            );
            k.set_repacked(
                Layout::Q80X8,
                gemm_q8_0_x8,
                concat!("q8_0×8 repacked/", $tag),
            );
            k.set_repacked(
                Layout::Q6KX8,
                gemm_q6_k_x8,
                concat!("q6_k×8 repacked/", $tag),
            );
            k.set_repacked(
                Layout::Q5KX8,
                gemm_q5_k_x8,
                concat!("q5_k×8 repacked/", $tag),
            );
            k.set_vec_dot(
                GgmlType::Q8_0,
                vec_dot_q8_0_q8_0,
                concat!("q8_0·q8_0/", $tag),
            );
        }

        /// Q8_0 · Q8_0 in the row layout (a tied output matrix, which stays in rows because it is
        /// also the embedding table, is the largest matrix of a small model's decoding step):
        /// AVX2's kernel (`x86::avx2::vec_dot_q8_0_q8_0`, ggml's lane structure) with its
        /// `maddubs` and `madd` pair replaced by one `vpdpbusd`. The i32 lanes are the same sums (`maddubs`
        /// cannot saturate here: |x| ≤ 128 and |y| ≤ 127 give pairs of at most 32512), so every
        /// float step, and the result, are AVX2's bit for bit, and AVX2's batched tiles stay
        /// bit-identical to it.
        pub fn vec_dot_q8_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
            let nb = n / 32;
            assert!(
                w.len() >= nb * 34 && a.len() >= nb * 34,
                "q8_0·q8_0: short rows"
            );
            // SAFETY: registered only after the level's features were detected; lengths checked.
            unsafe { vec_dot_q8_0_q8_0_vnni(nb, w.as_ptr(), a.as_ptr()) }
        }

        /// # Safety
        /// The level's features (`$features`) present; `w` and `a` hold `nb` blocks of 34 bytes.
        #[target_feature(enable = $features)]
        unsafe fn vec_dot_q8_0_q8_0_vnni(nb: usize, w: *const u8, a: *const u8) -> f32 {
            let mut acc = _mm256_setzero_ps();
            for ib in 0..nb {
                let o = ib * 34;
                // SAFETY: block ib lies inside both rows (caller's contract); the two scales are
                // paired into one conversion, as in the AVX2 kernel.
                let (dd, qx, qy) = unsafe {
                    (
                        f16_pair(w.add(o), a.add(o)),
                        load32(w.add(o + 2)),
                        load32(a.add(o + 2)),
                    )
                };
                let d = _mm256_set1_ps(lane0(dd) * lane1(dd));
                let sums = $dpbusd(
                    _mm256_setzero_si256(),
                    _mm256_sign_epi8(qx, qx),
                    _mm256_sign_epi8(qy, qx),
                );
                acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc);
            }
            hsum_float_8(acc)
        }

        repacked_entry!(gemm_q4_k_x8, q4_k_x8, Layout::Q4KX8);
        repacked_entry!(gemm_q4_0_x8, q4_0_x8, Layout::Q40X8);
        repacked_entry!(gemm_q4_1_x8, q4_1_x8, Layout::Q41X8);
        repacked_entry!(gemm_q5_0_x8, q5_0_x8, Layout::Q50X8);
        repacked_entry!(gemm_q8_0_x8, q8_0_x8, Layout::Q80X8);
        repacked_entry!(gemm_q6_k_x8, q6_k_x8, Layout::Q6KX8);
        repacked_entry!(gemm_q5_k_x8, q5_k_x8, Layout::Q5KX8);

        /// The four activation bytes at `p` in all eight 32-bit lanes.
        ///
        /// # Safety
        /// `p` points to four readable bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn bcast4(p: *const u8) -> __m256i {
            // SAFETY: four bytes at `p` (caller's contract); unaligned read.
            _mm256_set1_epi32(unsafe { p.cast::<i32>().read_unaligned() })
        }

        /// Per token, row `r`'s dot product (i32 lane `r`) of one block's 32 values, given as four
        /// 32-byte chunks of low/high nibble pairs already split into `lo[c]` and `hi[c]`
        /// (unsigned, at most 31), with the token's 32 activation bytes at `ys[t] + off`.
        ///
        /// # Safety
        /// The level's features present; each `ys[t] + off` points to 32 readable bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn block_dots<const T: usize>(
            lo: &[__m256i; 4],
            hi: &[__m256i; 4],
            ys: &[*const u8; T],
            off: usize,
        ) -> [__m256i; T] {
            // Plain loops, not `array::from_fn`/`map`: a closure is compiled without the
            // enclosing `target_feature`s' inlining context, and the call per token and block
            // cost a seventh of a prompt's time when it was one.
            let mut out = [_mm256_setzero_si256(); T];
            for t in 0..T {
                let (mut a, mut b) = (_mm256_setzero_si256(), _mm256_setzero_si256());
                for c in 0..4 {
                    // SAFETY: columns 8c..8c + 8 of token t's 32 bytes (caller's contract).
                    let (ylo, yhi) = unsafe {
                        let y = ys[t].add(off + 8 * c);
                        (bcast4(y), bcast4(y.add(4)))
                    };
                    a = $dpbusd(a, lo[c], ylo);
                    b = $dpbusd(b, hi[c], yhi);
                }
                out[t] = _mm256_add_epi32(a, b);
            }
            out
        }

        /// A block's four chunks of eight rows' 4-bit values (see `crate::repack`) split into low
        /// and high nibbles.
        ///
        /// # Safety
        /// AVX2 present; `chunks` points to 128 readable bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn nibbles(chunks: *const u8) -> ([__m256i; 4], [__m256i; 4]) {
            let m4 = _mm256_set1_epi8(0x0f);
            let (mut lo, mut hi) = ([_mm256_setzero_si256(); 4], [_mm256_setzero_si256(); 4]);
            for c in 0..4 {
                // SAFETY: chunk c (32 bytes) is inside the 128 (caller's contract).
                let v = unsafe { load32(chunks.add(32 * c)) };
                lo[c] = _mm256_and_si256(v, m4);
                hi[c] = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
            }
            (lo, hi)
        }

        /// # Safety
        /// The level's features (`$features`) present; `w` holds `nb` Q4_0×8 blocks and each `y[t]`
        /// `nb` `Q8_0` blocks followed by their `nb` sums.
        #[target_feature(enable = $features)]
        unsafe fn q4_0_x8<const T: usize>(
            nb: usize,
            w: *const u8,
            y: [*const u8; T],
        ) -> [[f32; X8]; T] {
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                // SAFETY: block b of the group and of every token is in bounds (caller's contract).
                let wb = unsafe { w.add(b * Q40_X8_BLOCK) };
                // SAFETY: the chunks (128 bytes) at 16.
                let (lo, hi) = unsafe { nibbles(wb.add(16)) };
                // SAFETY: each token's 32 values (qs at 2 of its block b).
                let dots = unsafe { block_dots(&lo, &hi, &y, b * q8_0::TYPE_SIZE + 2) };
                // SAFETY: d[8] (f16) at 0.
                let d = unsafe { _mm256_cvtph_ps(load16(wb)) };
                for t in 0..T {
                    // SAFETY: token t's block b scale (f16 at its start) and sum (i16 after all blocks).
                    let (dt, sum8) = unsafe {
                        let blk = y[t].add(b * q8_0::TYPE_SIZE);
                        let s = y[t]
                            .add(nb * q8_0::TYPE_SIZE + 2 * b)
                            .cast::<i16>()
                            .read_unaligned();
                        (
                            f16_broadcast(blk),
                            _mm256_set1_epi32(8 * i32::from(i16::from_le(s))),
                        )
                    };
                    let dot = _mm256_sub_epi32(dots[t], sum8);
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(dot), acc[t]);
                }
            }
            rows_of(acc)
        }

        /// # Safety
        /// The level's features (`$features`) present; `w` holds `nb` Q4_1×8 blocks and each `y[t]`
        /// `nb` `Q8_1` blocks followed by their `nb` `[d, s]: f32` pairs.
        #[target_feature(enable = $features)]
        unsafe fn q4_1_x8<const T: usize>(
            nb: usize,
            w: *const u8,
            y: [*const u8; T],
        ) -> [[f32; X8]; T] {
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                // SAFETY: block b of the group and of every token is in bounds (caller's contract).
                let wb = unsafe { w.add(b * Q41_X8_BLOCK) };
                // SAFETY: the chunks (128 bytes) at 32.
                let (lo, hi) = unsafe { nibbles(wb.add(32)) };
                // SAFETY: each token's 32 values (qs at QS of its block b).
                let dots = unsafe { block_dots(&lo, &hi, &y, b * q8_1::TYPE_SIZE + q8_1::QS) };
                // SAFETY: d[8] and m[8] (f16) at 0 and 16.
                let (d, m) = unsafe {
                    (
                        _mm256_cvtph_ps(load16(wb)),
                        _mm256_cvtph_ps(load16(wb.add(16))),
                    )
                };
                for t in 0..T {
                    // SAFETY: token t's block-b scales (two f32 after its nb blocks).
                    let (dt, st) = unsafe { q8_1_scales(y[t], nb, b) };
                    let block = _mm256_fmadd_ps(
                        _mm256_mul_ps(d, dt),
                        _mm256_cvtepi32_ps(dots[t]),
                        _mm256_mul_ps(m, st),
                    );
                    acc[t] = _mm256_add_ps(acc[t], block);
                }
            }
            rows_of(acc)
        }

        /// # Safety
        /// The level's features (`$features`) present; `w` holds `nb` Q5_0×8 blocks and each `y[t]`
        /// `nb` `Q8_0` blocks followed by their `nb` sums.
        #[target_feature(enable = $features)]
        unsafe fn q5_0_x8<const T: usize>(
            nb: usize,
            w: *const u8,
            y: [*const u8; T],
        ) -> [[f32; X8]; T] {
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                // SAFETY: block b of the group and of every token is in bounds (caller's contract).
                let wb = unsafe { w.add(b * Q50_X8_BLOCK) };
                // SAFETY: the chunks (128 bytes) at 16, the fifth bits (32 bytes) at 144.
                let ((lo, hi), h) = unsafe { (nibbles(wb.add(16)), load32(wb.add(144))) };
                let lo = [
                    _mm256_or_si256(lo[0], fifth_bit::<0>(h)),
                    _mm256_or_si256(lo[1], fifth_bit::<2>(h)),
                    _mm256_or_si256(lo[2], fifth_bit::<4>(h)),
                    _mm256_or_si256(lo[3], fifth_bit::<6>(h)),
                ];
                let hi = [
                    _mm256_or_si256(hi[0], fifth_bit::<1>(h)),
                    _mm256_or_si256(hi[1], fifth_bit::<3>(h)),
                    _mm256_or_si256(hi[2], fifth_bit::<5>(h)),
                    _mm256_or_si256(hi[3], fifth_bit::<7>(h)),
                ];
                // SAFETY: each token's 32 values (qs at 2 of its block b).
                let dots = unsafe { block_dots(&lo, &hi, &y, b * q8_0::TYPE_SIZE + 2) };
                // SAFETY: d[8] (f16) at 0.
                let d = unsafe { _mm256_cvtph_ps(load16(wb)) };
                for t in 0..T {
                    // SAFETY: token t's block b scale (f16 at its start) and sum (i16 after all blocks).
                    let (dt, sum16) = unsafe {
                        let blk = y[t].add(b * q8_0::TYPE_SIZE);
                        let s = y[t]
                            .add(nb * q8_0::TYPE_SIZE + 2 * b)
                            .cast::<i16>()
                            .read_unaligned();
                        (
                            f16_broadcast(blk),
                            _mm256_set1_epi32(16 * i32::from(i16::from_le(s))),
                        )
                    };
                    let dot = _mm256_sub_epi32(dots[t], sum16);
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(dot), acc[t]);
                }
            }
            rows_of(acc)
        }

        /// # Safety
        /// The level's features (`$features`) present; `w` holds `nb` Q8_0×8 blocks and each `y[t]`
        /// `nb` `Q8_0` blocks followed by their `nb` sums.
        #[target_feature(enable = $features)]
        unsafe fn q8_0_x8<const T: usize>(
            nb: usize,
            w: *const u8,
            y: [*const u8; T],
        ) -> [[f32; X8]; T] {
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                // SAFETY: block b of the group and of every token is in bounds (caller's contract).
                let wb = unsafe { w.add(b * Q80_X8_BLOCK) };
                let flip = _mm256_set1_epi8(i8::MIN);
                // Two accumulators per token (even and odd groups) to halve the `vpdpbusd` chain;
                // the odd one starts at -128·Σy, which takes the weights' offset back out.
                let mut sumi = [[_mm256_setzero_si256(); 2]; T];
                for t in 0..T {
                    // SAFETY: token t's block-b sum (i16 after its nb blocks).
                    let s = unsafe {
                        y[t].add(nb * q8_0::TYPE_SIZE + 2 * b)
                            .cast::<i16>()
                            .read_unaligned()
                    };
                    sumi[t][1] = _mm256_set1_epi32(-128 * i32::from(i16::from_le(s)));
                }
                for g in 0..8 {
                    // SAFETY: group g (32 bytes) at 16 + 32g. Its sign bits flipped: the unsigned
                    // w + 128, which `vpdpbusd` takes as it is.
                    let v = _mm256_xor_si256(unsafe { load32(wb.add(16 + 32 * g)) }, flip);
                    for t in 0..T {
                        // SAFETY: columns 4g..4g + 4 of token t's block b (qs at 2).
                        let yv = unsafe { bcast4(y[t].add(b * q8_0::TYPE_SIZE + 2 + 4 * g)) };
                        let s = &mut sumi[t][g % 2];
                        *s = $dpbusd(*s, v, yv);
                    }
                }
                // SAFETY: d[8] (f16) at 0.
                let d = unsafe { _mm256_cvtph_ps(load16(wb)) };
                for t in 0..T {
                    // SAFETY: token t's block b scale (f16 at its start).
                    let dt = unsafe { f16_broadcast(y[t].add(b * q8_0::TYPE_SIZE)) };
                    let dot = _mm256_add_epi32(sumi[t][0], sumi[t][1]);
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(dot), acc[t]);
                }
            }
            rows_of(acc)
        }

        /// # Safety
        /// The level's features (`$features`) present; `w` holds `nb` Q4_K×8 blocks and each `y[t]`
        /// `nb` `Q8_K` blocks.
        #[target_feature(enable = $features)]
        unsafe fn q4_k_x8<const T: usize>(
            nb: usize,
            w: *const u8,
            y: [*const u8; T],
        ) -> [[f32; X8]; T] {
            let mut acc = [_mm256_setzero_ps(); T];
            let mut accm = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                // SAFETY: block b of the group and of every token is in bounds (caller's contract);
                // every offset below stays inside its block (see `crate::repack` for the layout).
                let wb = unsafe { w.add(b * Q4K_X8_BLOCK) };
                let yb: [*const u8; T] =
                    std::array::from_fn(|t| unsafe { y[t].add(b * q8_k::TYPE_SIZE) });
                let mut sumi = [_mm256_setzero_si256(); T];
                for s in 0..8 {
                    // Eight rows' scales of sub-block s as i32 lanes.
                    // SAFETY: 8 bytes at 32 + 8s.
                    let sc = unsafe { _mm_loadl_epi64(wb.add(32 + 8 * s) as *const __m128i) };
                    let scales = _mm256_cvtepu8_epi32(sc);
                    // SAFETY: chunks 4s..4s + 4 (128 bytes) at 160 + 128s.
                    let (lo, hi) = unsafe { nibbles(wb.add(160 + 128 * s)) };
                    // SAFETY: columns 32s..32s + 32 of each token's block (qs at QS).
                    let dots = unsafe { block_dots(&lo, &hi, &yb, q8_k::QS + 32 * s) };
                    for t in 0..T {
                        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(dots[t], scales));
                    }
                }
                // SAFETY: d[8] at 0 and dmin[8] at 16 (f16).
                let (d, dmin) = unsafe {
                    (
                        _mm256_cvtph_ps(load16(wb)),
                        _mm256_cvtph_ps(load16(wb.add(16))),
                    )
                };
                for t in 0..T {
                    // Sub-block sums of the activations: B[s] = bsums[2s] + bsums[2s + 1].
                    // SAFETY: d (f32) at 0 and bsums (16 × i16) at BSUMS of token t's block.
                    let (dt, bs) = unsafe {
                        let bsums = load32(yb[t].add(q8_k::BSUMS));
                        (
                            _mm256_set1_ps(yb[t].cast::<f32>().read_unaligned()),
                            _mm_hadd_epi16(
                                _mm256_castsi256_si128(bsums),
                                _mm256_extracti128_si256::<1>(bsums),
                            ),
                        )
                    };
                    let mut summ = _mm256_setzero_si256();
                    macro_rules! pair {
                        ($p:literal) => {{
                            // SAFETY: mins of sub-blocks 2p, 2p + 1 (16 bytes) at 96 + 16p.
                            let m = unsafe { _mm256_cvtepu8_epi16(load16(wb.add(96 + 16 * $p))) };
                            let bp =
                                _mm256_broadcastd_epi32(_mm_shuffle_epi32::<{ $p * 0x55 }>(bs));
                            summ = _mm256_add_epi32(summ, _mm256_madd_epi16(m, bp));
                        }};
                    }
                    pair!(0);
                    pair!(1);
                    pair!(2);
                    pair!(3);
                    acc[t] =
                        _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
                    accm[t] =
                        _mm256_fmadd_ps(_mm256_mul_ps(dmin, dt), _mm256_cvtepi32_ps(summ), accm[t]);
                }
            }
            rows_of(std::array::from_fn(|t| _mm256_sub_ps(acc[t], accm[t])))
        }

        /// # Safety
        /// The level's features (`$features`) present; `w` holds `nb` Q5_K×8 blocks and each
        /// `y[t]` `nb` `Q8_K` blocks.
        #[target_feature(enable = $features)]
        unsafe fn q5_k_x8<const T: usize>(
            nb: usize,
            w: *const u8,
            y: [*const u8; T],
        ) -> [[f32; X8]; T] {
            let mut acc = [_mm256_setzero_ps(); T];
            let mut accm = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                // SAFETY: block b of the group and of every token is in bounds (caller's contract);
                // every offset below stays inside its block (see `crate::repack` for the layout).
                let wb = unsafe { w.add(b * Q5K_X8_BLOCK) };
                let yb: [*const u8; T] =
                    std::array::from_fn(|t| unsafe { y[t].add(b * q8_k::TYPE_SIZE) });
                let mut sumi = [_mm256_setzero_si256(); T];
                for s in 0..8 {
                    // Eight rows' scales of sub-block s as i32 lanes.
                    // SAFETY: 8 bytes at 32 + 8s.
                    let sc = unsafe { _mm_loadl_epi64(wb.add(32 + 8 * s) as *const __m128i) };
                    let scales = _mm256_cvtepu8_epi32(sc);
                    // SAFETY: sub-block s's chunks 4s..4s + 4 (128 bytes) and fifth bits (32).
                    let ((lo, hi), h) = unsafe {
                        (
                            nibbles(wb.add(q5k_chunk(4 * s))),
                            load32(wb.add(q5k_fifth(s))),
                        )
                    };
                    let lo = [
                        _mm256_or_si256(lo[0], fifth_bit::<0>(h)),
                        _mm256_or_si256(lo[1], fifth_bit::<2>(h)),
                        _mm256_or_si256(lo[2], fifth_bit::<4>(h)),
                        _mm256_or_si256(lo[3], fifth_bit::<6>(h)),
                    ];
                    let hi = [
                        _mm256_or_si256(hi[0], fifth_bit::<1>(h)),
                        _mm256_or_si256(hi[1], fifth_bit::<3>(h)),
                        _mm256_or_si256(hi[2], fifth_bit::<5>(h)),
                        _mm256_or_si256(hi[3], fifth_bit::<7>(h)),
                    ];
                    // SAFETY: columns 32s..32s + 32 of each token's block (qs at QS).
                    let dots = unsafe { block_dots(&lo, &hi, &yb, q8_k::QS + 32 * s) };
                    for t in 0..T {
                        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(dots[t], scales));
                    }
                }
                // SAFETY: d[8] at 0 and dmin[8] at 16 (f16).
                let (d, dmin) = unsafe {
                    (
                        _mm256_cvtph_ps(load16(wb)),
                        _mm256_cvtph_ps(load16(wb.add(16))),
                    )
                };
                for t in 0..T {
                    // SAFETY: the group's block and token t's block (see `k_mins`).
                    let (dt, summ) = unsafe { k_mins(wb, yb[t]) };
                    acc[t] =
                        _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
                    accm[t] =
                        _mm256_fmadd_ps(_mm256_mul_ps(dmin, dt), _mm256_cvtepi32_ps(summ), accm[t]);
                }
            }
            rows_of(std::array::from_fn(|t| _mm256_sub_ps(acc[t], accm[t])))
        }

        /// Q6_K×8 with `vpdpbusd`: the unsigned six-bit values times the activations, four
        /// products per i32 lane (row), scaled per 16-column sub-block; the `- 32` offset is
        /// `32·Σ_s sc_s·bsums[s]`, subtracted once per block (as in the AVX2 kernel).
        ///
        /// # Safety
        /// The level's features (`$features`) present; `w` holds `nb` Q6_K×8 blocks and each
        /// `y[t]` `nb` `Q8_K` blocks.
        #[target_feature(enable = $features)]
        unsafe fn q6_k_x8<const T: usize>(
            nb: usize,
            w: *const u8,
            y: [*const u8; T],
        ) -> [[f32; X8]; T] {
            // A pair's 16 scale bytes [r][2] regrouped as eight even ones, then eight odd ones.
            let split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                // SAFETY: block b of the group and of every token is in bounds (caller's contract);
                // every offset below stays inside its block (see `crate::repack` for the layout).
                let wb = unsafe { w.add(b * Q6K_X8_BLOCK) };
                let yb: [*const u8; T] =
                    std::array::from_fn(|t| unsafe { y[t].add(b * q8_k::TYPE_SIZE) });
                let mut sumi = [_mm256_setzero_si256(); T];
                let mut summ = [_mm256_setzero_si256(); T];
                for p in 0..8 {
                    // SAFETY: the scales of sub-blocks 2p, 2p + 1 (16 bytes) at 16 + 16p.
                    let raw = unsafe { load16(wb.add(16 + 16 * p)) };
                    let eo = _mm_shuffle_epi8(raw, split);
                    let scales = [
                        _mm256_cvtepi8_epi32(eo),
                        _mm256_cvtepi8_epi32(_mm_srli_si128::<8>(eo)),
                    ];
                    for (e, scales) in scales.into_iter().enumerate() {
                        let s = 2 * p + e;
                        // SAFETY: sub-block s's two low-nibble chunks and its high bits (96 bytes)
                        // at 144 + 96s.
                        let q = unsafe {
                            q6_k_values(
                                load32(wb.add(q6k_low(2 * s))),
                                load32(wb.add(q6k_low(2 * s + 1))),
                                load32(wb.add(q6k_high(s))),
                            )
                        };
                        for t in 0..T {
                            // SAFETY: columns 16s..16s + 16 of token t's block (qs at QS).
                            let ys = unsafe { yb[t].add(q8_k::QS + 16 * s) };
                            // SAFETY: as above, four bytes each.
                            let (y0, y1, y2, y3) = unsafe {
                                (
                                    bcast4(ys),
                                    bcast4(ys.add(4)),
                                    bcast4(ys.add(8)),
                                    bcast4(ys.add(12)),
                                )
                            };
                            let a = $dpbusd($dpbusd(_mm256_setzero_si256(), q[0], y0), q[1], y1);
                            let c = $dpbusd($dpbusd(_mm256_setzero_si256(), q[2], y2), q[3], y3);
                            let dot = _mm256_add_epi32(a, c);
                            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(dot, scales));
                        }
                    }
                    let sc = _mm256_cvtepi8_epi16(raw);
                    for t in 0..T {
                        // SAFETY: bsums[2p], bsums[2p + 1] (i16) at BSUMS + 4p of token t's block.
                        let bp = unsafe { bcast4(yb[t].add(q8_k::BSUMS + 4 * p)) };
                        summ[t] = _mm256_add_epi32(summ[t], _mm256_madd_epi16(sc, bp));
                    }
                }
                // SAFETY: d[8] (f16) at 0.
                let d = unsafe { _mm256_cvtph_ps(load16(wb)) };
                for t in 0..T {
                    // SAFETY: token t's d (f32) at the start of its block.
                    let dt = unsafe { _mm256_set1_ps(yb[t].cast::<f32>().read_unaligned()) };
                    let dot = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32::<5>(summ[t]));
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(dot), acc[t]);
                }
            }
            rows_of(acc)
        }
    };
}

/// AVX-512 VNNI with AVX512VL (the `avx512` level).
pub(super) mod avx512 {
    vnni_kernels!(
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        _mm256_dpbusd_epi32,
        "avx512vnni"
    );
}

/// AVX-VNNI, the VEX form for cores without AVX-512 (the `avxvnni` level).
pub(super) mod avx {
    vnni_kernels!("avx2,fma,f16c,avxvnni", _mm256_dpbusd_avx_epi32, "avxvnni");
}
