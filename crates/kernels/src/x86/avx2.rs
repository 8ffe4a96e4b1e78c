//! AVX2 kernels. Each mirrors the lane structure of ggml's x86 kernel for the same format (eight
//! f32 lanes, each accumulating the integer sum of four adjacent products times the block
//! scales, then the same horizontal reduction), so on an AVX2 machine owl's dot products give
//! the same bits as llama.cpp's. The activation quantizers (`avx2_act_quant.rs`) use ggml's x86
//! formula too (`id = 127 / amax`, round half to even), which can differ from the portable
//! reference by one step on exact ties; tests bound that difference.

use std::arch::x86_64::*;

use half::f16;
use owl_quant::GgmlType;

use super::common::*;
use crate::attention::{PagedRow, KV_PAGE};
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_vec_dot(GgmlType::Q4_1, vec_dot_q4_1_q8_1, "q4_1·q8_1/avx2");
    k.set_vec_dot(GgmlType::Q8_0, vec_dot_q8_0_q8_0, "q8_0·q8_0/avx2");
    k.set_vec_dot_x4(GgmlType::Q4_1, vec_dot_q4_1_q8_1_x4, "q4_1·q8_1 x4/avx2");
    k.set_vec_dot_2x4(GgmlType::Q4_1, vec_dot_q4_1_q8_1_2x4, "q4_1·q8_1 2x4/avx2");
    k.set_dot_f16(dot_f16, "f16·f16/avx2");
    k.set_vec_dot(GgmlType::F16, vec_dot_f16_f16, "f16 weights·f16/avx2");
    k.set_vec_dot(GgmlType::F32, vec_dot_f32_f32, "f32 weights·f32/avx2");
    k.set_dot_f16_batch(dot_f16_tiled, "f16·f16 tiled/avx2");
    k.set_dot_f16_paged(dot_f16_paged, dot_f16_tiled_paged, "f16·f16 paged/avx2");
    k.set_softmax_exp(softmax_exp, "softmax_exp/avx2");
    k.set_scale_to_f16(scale_to_f16, "f32→f16/f16c");
    k.set_swiglu(swiglu, "swiglu/avx2");
    k.set_rope_fused("rope/fma");
}

/// exp of eight lanes: the ARM optimized-routines single-precision algorithm that ggml's AVX2
/// build uses (round x/ln2 to n with the 1.5·2^23 trick, two-step ln2 reduction, a degree-5
/// polynomial in the remainder, scale by 2^n, with a special path for |n| > 126). Matching it
/// bit for bit is what keeps softmax and SiLU identical to llama.cpp's.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn expf8(x: __m256) -> __m256 {
    let r = _mm256_set1_ps(f32::from_bits(0x4b40_0000)); // 1.5 * 2^23
    let z = _mm256_fmadd_ps(x, _mm256_set1_ps(f32::from_bits(0x3fb8_aa3b)), r); // 1/ln2
    let n = _mm256_sub_ps(z, r);
    let ln2_hi = _mm256_set1_ps(f32::from_bits(0x3f31_7200));
    let ln2_lo = _mm256_set1_ps(f32::from_bits(0x35bf_be8e));
    let b = _mm256_fnmadd_ps(n, ln2_lo, _mm256_fnmadd_ps(n, ln2_hi, x));
    let e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    let k = _mm256_castsi256_ps(_mm256_add_epi32(
        e,
        _mm256_castps_si256(_mm256_set1_ps(1.0)),
    ));
    let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
    let c = _mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0), _CMP_GT_OQ);
    let u = _mm256_mul_ps(b, b);
    let c0 = _mm256_set1_ps(f32::from_bits(0x3f7f_fff6)); // ~1
    let c1 = _mm256_set1_ps(f32::from_bits(0x3eff_fedb)); // ~1/2
    let c2 = _mm256_set1_ps(f32::from_bits(0x3e2a_af33)); // ~1/6
    let c3 = _mm256_set1_ps(f32::from_bits(0x3d2b_9f17)); // ~1/24
    let c4 = _mm256_set1_ps(f32::from_bits(0x3c07_2010)); // ~1/120
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(c4, b, c3), u, _mm256_fmadd_ps(c2, b, c1)),
        u,
        _mm256_mul_ps(c0, b),
    );
    if _mm256_movemask_ps(c) == 0 {
        return _mm256_fmadd_ps(j, k, k);
    }
    let g = _mm256_and_si256(
        _mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
        _mm256_set1_epi32(0x8200_0000u32 as i32),
    );
    let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
    let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    let d = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0), _CMP_GT_OQ);
    let huge = _mm256_mul_ps(s1, s1);
    let scaled = _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1);
    let normal = _mm256_fmadd_ps(k, j, k);
    _mm256_or_ps(
        _mm256_and_ps(d, huge),
        _mm256_andnot_ps(
            d,
            _mm256_or_ps(_mm256_and_ps(c, scaled), _mm256_andnot_ps(c, normal)),
        ),
    )
}

/// Softmax exponentiation as ggml's AVX2 build: groups of eight through `expf8`, each group
/// summed in f32 and added to an f64 total; a remainder with the C library's `expf`.
pub fn softmax_exp(x: &mut [f32], max: f32) -> f64 {
    // SAFETY: registered only after AVX2/FMA were detected.
    unsafe { softmax_exp_avx2(x, max) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn softmax_exp_avx2(x: &mut [f32], max: f32) -> f64 {
    let n = x.len();
    let mut sum = 0.0f64;
    let mut i = 0;
    let m = _mm256_set1_ps(max);
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) };
        let e = expf8(_mm256_sub_ps(v, m));
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(x.as_mut_ptr().add(i), e) };
        sum += hsum_float_8(e) as f64;
        i += 8;
    }
    for v in &mut x[i..] {
        let e = (*v - max).exp();
        sum += e as f64;
        *v = e;
    }
    sum
}

/// SwiGLU as ggml's AVX2 build: `x / (1 + expf8(0 - x)) * g` by eights, the C library's `expf`
/// for a remainder.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "swiglu: length mismatch");
    // SAFETY: registered only after AVX2/FMA were detected; lengths are equal.
    unsafe { swiglu_avx2(gate, up) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn swiglu_avx2(gate: &mut [f32], up: &[f32]) {
    let n = gate.len();
    let mut i = 0;
    let one = _mm256_set1_ps(1.0);
    while i + 8 <= n {
        // SAFETY: i + 8 <= n for both slices.
        let (x, g) = unsafe {
            (
                _mm256_loadu_ps(gate.as_ptr().add(i)),
                _mm256_loadu_ps(up.as_ptr().add(i)),
            )
        };
        let e = expf8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        let silu = _mm256_div_ps(x, _mm256_add_ps(one, e));
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(gate.as_mut_ptr().add(i), _mm256_mul_ps(silu, g)) };
        i += 8;
    }
    for (x, &g) in gate[i..].iter_mut().zip(&up[i..]) {
        *x = *x / (1.0 + (-*x).exp()) * g;
    }
}

/// `sum[j] += a[8j..8j+8] * b[8j..8j+8]` for j in 0..4: one step of 32 halves in ggml's
/// `vec_dot_f16` layout.
///
/// # Safety
/// `pa` and `pb` point to 32 readable halves (64 bytes) each.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_step32(sum: &mut [__m256; 4], pa: *const u8, pb: *const u8) {
    for (j, acc) in sum.iter_mut().enumerate() {
        // SAFETY: 16j + 16 <= 64 bytes (caller's contract).
        let (ax, ay) = unsafe {
            (
                _mm256_cvtph_ps(_mm_loadu_si128(pa.add(16 * j) as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(pb.add(16 * j) as *const __m128i)),
            )
        };
        *acc = _mm256_fmadd_ps(ax, ay, *acc);
    }
}

/// ggml's reduction of four accumulators (`GGML_F32x8_REDUCE`, also used for f16): pairwise,
/// then across lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16_reduce(sum: [__m256; 4]) -> f32 {
    let s02 = _mm256_add_ps(sum[0], sum[2]);
    let s13 = _mm256_add_ps(sum[1], sum[3]);
    let s = _mm256_add_ps(s02, s13);
    let t0 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let t1 = _mm_hadd_ps(t0, t0);
    _mm_cvtss_f32(_mm_hadd_ps(t1, t1))
}

/// F32 weights · F32 activations (MoE routers, F32 models) in `ggml_vec_dot_f32`'s AVX2 order:
/// four 8-lane accumulators over steps of 32, the same pairwise reduction as the f16 dot, then
/// the remainder added in f32 with fused multiply-adds (how GCC builds its scalar tail).
pub fn vec_dot_f32_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    assert!(w.len() >= 4 * n && a.len() >= 4 * n, "f32·f32: short rows");
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { vec_dot_f32_avx2(n, w.as_ptr(), a.as_ptr()) }
}

/// # Safety
/// `w` and `a` point to `n` little-endian f32 values each.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_f32_avx2(n: usize, w: *const u8, a: *const u8) -> f32 {
    let np = n - n % 32;
    let mut sum = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < np {
        for (j, acc) in sum.iter_mut().enumerate() {
            // SAFETY: i + 8j + 8 <= np <= n floats (caller's contract); unaligned loads.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(w.add(4 * (i + 8 * j)) as *const f32),
                    _mm256_loadu_ps(a.add(4 * (i + 8 * j)) as *const f32),
                )
            };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    let mut res = f16_reduce(sum);
    for k in np..n {
        // SAFETY: k < n (caller's contract).
        let (x, y) = unsafe { (f32_at(w.add(4 * k)), f32_at(a.add(4 * k))) };
        res = x.mul_add(y, res);
    }
    res
}

/// `acc += a[..8] * b[..8]`: one step of the tiled (tinyBLAS) order.
///
/// # Safety
/// `pa` and `pb` point to 8 readable halves (16 bytes) each.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_step8(acc: __m256, pa: *const u8, pb: *const u8) -> __m256 {
    // SAFETY: 16 bytes each (caller's contract).
    let (ax, ay) = unsafe {
        (
            _mm256_cvtph_ps(_mm_loadu_si128(pa as *const __m128i)),
            _mm256_cvtph_ps(_mm_loadu_si128(pb as *const __m128i)),
        )
    };
    _mm256_fmadd_ps(ax, ay, acc)
}

/// f16 · f16 in the order of llama.cpp's tiled GEMM (llamafile tinyBLAS) on AVX2: one 8-lane
/// accumulator over steps of 8, then a horizontal sum; the length must be a multiple of 8
/// (a remainder is added in f64).
pub fn dot_f16_tiled(a: &[f16], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f16_tiled: length mismatch");
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths are equal.
    unsafe { dot_f16_tiled_avx2(a, b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_tiled_avx2(a: &[f16], b: &[f16]) -> f32 {
    let n = a.len();
    let np = n - n % 8;
    let mut acc = _mm256_setzero_ps();
    let (pa, pb) = (a.as_ptr() as *const u8, b.as_ptr() as *const u8);
    let mut i = 0;
    while i < np {
        // SAFETY: i + 8 <= np <= n elements of 2 bytes each.
        acc = unsafe { f16_step8(acc, pa.add(2 * i), pb.add(2 * i)) };
        i += 8;
    }
    tail_f64(f64::from(hsum_float_8(acc)), np, n, |k| {
        a[k].to_f32() * b[k].to_f32()
    })
}

/// `dst[i] = f16(src[i] * scale)` with F16C (round to nearest even, as `half` rounds).
pub fn scale_to_f16(src: &[f32], scale: f32, dst: &mut [f16]) {
    let n = src.len().min(dst.len());
    // SAFETY: registered only after AVX2/FMA/F16C were detected; n fits both slices.
    unsafe { scale_to_f16_avx2(&src[..n], scale, &mut dst[..n]) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_to_f16_avx2(src: &[f32], scale: f32, dst: &mut [f16]) {
    let n = src.len();
    let vs = _mm256_set1_ps(scale);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n elements in both slices; unaligned accesses.
        unsafe {
            let x = _mm256_mul_ps(_mm256_loadu_ps(src.as_ptr().add(i)), vs);
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
            _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, h);
        }
        i += 8;
    }
    for (d, &x) in dst[i..].iter_mut().zip(&src[i..]) {
        *d = f16::from_f32(x * scale);
    }
}

/// f16 · f16 with ggml's AVX layout: four 8-lane f32 accumulators over steps of 32, reduced
/// pairwise, then the remainder added in f64.
pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f16: length mismatch");
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths are equal.
    unsafe { dot_f16_avx2(a, b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2(a: &[f16], b: &[f16]) -> f32 {
    // SAFETY: both slices hold a.len() f16 values, i.e. 2 * a.len() bytes.
    unsafe { dot_f16_bytes(a.len(), a.as_ptr() as *const u8, b.as_ptr() as *const u8) }
}

/// `dot_f16` over a paged row: the four accumulators carry from page to page, so the sum is
/// bit-identical to the contiguous row's.
pub fn dot_f16_paged(row: &PagedRow<'_>, b: &[f16]) -> f32 {
    // SAFETY: registered only after AVX2/FMA/F16C were detected.
    unsafe { dot_f16_paged_avx2(row, b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_paged_avx2(row: &PagedRow<'_>, b: &[f16]) -> f32 {
    let n = b.len();
    let np = n - n % 32;
    let mut sum = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < np {
        // KV_PAGE is a multiple of 32, so a step of 32 never straddles two pages.
        let seg = row.segment(i / KV_PAGE, KV_PAGE);
        let pa = seg[i % KV_PAGE..i % KV_PAGE + 32].as_ptr() as *const u8;
        let pb = b[i..i + 32].as_ptr() as *const u8;
        // SAFETY: pa and pb each point to 32 halves.
        unsafe { f16_step32(&mut sum, pa, pb) };
        i += 32;
    }
    let mut res = f16_reduce(sum) as f64;
    for (k, y) in b.iter().enumerate().skip(np) {
        let x = row.segment(k / KV_PAGE, k % KV_PAGE + 1)[k % KV_PAGE];
        res += (x.to_f32() * y.to_f32()) as f64;
    }
    res as f32
}

/// `dot_f16_tiled` over a paged row, with the same single accumulator across pages.
pub fn dot_f16_tiled_paged(row: &PagedRow<'_>, b: &[f16]) -> f32 {
    // SAFETY: registered only after AVX2/FMA/F16C were detected.
    unsafe { dot_f16_tiled_paged_avx2(row, b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_tiled_paged_avx2(row: &PagedRow<'_>, b: &[f16]) -> f32 {
    let n = b.len();
    let np = n - n % 8;
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i < np {
        let seg = row.segment(i / KV_PAGE, KV_PAGE);
        let pa = seg[i % KV_PAGE..i % KV_PAGE + 8].as_ptr() as *const u8;
        let pb = b[i..i + 8].as_ptr() as *const u8;
        // SAFETY: pa and pb each point to 8 halves.
        acc = unsafe { f16_step8(acc, pa, pb) };
        i += 8;
    }
    let mut res = hsum_float_8(acc) as f64;
    for (k, y) in b.iter().enumerate().skip(np) {
        let x = row.segment(k / KV_PAGE, k % KV_PAGE + 1)[k % KV_PAGE];
        res += (x.to_f32() * y.to_f32()) as f64;
    }
    res as f32
}

/// F16 weights · F16 activations (ggml's `ggml_vec_dot_f16`, which llama.cpp uses for F16
/// weights outside its prompt GEMM): the same code as attention's f16 dot, on byte rows.
pub fn vec_dot_f16_f16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    assert!(w.len() >= 2 * n && a.len() >= 2 * n, "f16·f16: short rows");
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { dot_f16_bytes(n, w.as_ptr(), a.as_ptr()) }
}

/// f16 · f16 over `n` little-endian halves at `pa` and `pb` (unaligned), in ggml's AVX layout:
/// four 8-lane accumulators over steps of 32, reduced pairwise, the remainder added in f64.
///
/// # Safety
/// `pa` and `pb` point to `2 * n` readable bytes each.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_bytes(n: usize, pa: *const u8, pb: *const u8) -> f32 {
    let np = n - n % 32;
    let mut sum = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < np {
        // SAFETY: i + 32 <= np <= n elements of 2 bytes each.
        unsafe { f16_step32(&mut sum, pa.add(2 * i), pb.add(2 * i)) };
        i += 32;
    }
    let mut res = f16_reduce(sum) as f64;
    for k in np..n {
        // SAFETY: k < n.
        let (x, y) = unsafe {
            (
                (pa.add(2 * k) as *const u16).read_unaligned(),
                (pb.add(2 * k) as *const u16).read_unaligned(),
            )
        };
        res += (f16::from_bits(x).to_f32() * f16::from_bits(y).to_f32()) as f64;
    }
    res as f32
}

/// Q4_1 · Q8_1 as ggml's AVX2 kernel: per block, the 32 nibbles against the 32 activation
/// bytes in eight 4-product lanes, scaled by `d_w * d_a` into an 8-lane FMA accumulator; the
/// blocks' `m_w * s_a` terms summed as scalars.
pub fn vec_dot_q4_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = n / 32;
    assert!(
        w.len() >= nb * 20 && a.len() >= nb * 36,
        "q4_1·q8_1: short rows"
    );
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { vec_dot_q4_1_q8_1_avx2(nb, w.as_ptr(), [a.as_ptr()])[0] }
}

/// Four tokens against one Q4_1 row; each token's result is bit-identical to
/// `vec_dot_q4_1_q8_1` (the same operations per token, the weight block unpacked once).
pub fn vec_dot_q4_1_q8_1_x4(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    let nb = n / 32;
    assert!(
        w.len() >= nb * 20 && a.iter().all(|r| r.len() >= nb * 36),
        "q4_1·q8_1 x4: short rows"
    );
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { vec_dot_q4_1_q8_1_avx2(nb, w.as_ptr(), a.map(|r| r.as_ptr())) }
}

/// Two Q4_1 rows against four tokens, bit-identical per (row, token) to `vec_dot_q4_1_q8_1`.
pub fn vec_dot_q4_1_q8_1_2x4(n: usize, w: [&[u8]; 2], a: [&[u8]; 4]) -> [[f32; 4]; 2] {
    let nb = n / 32;
    assert!(
        w.iter().all(|r| r.len() >= nb * 20) && a.iter().all(|r| r.len() >= nb * 36),
        "q4_1·q8_1 2x4: short rows"
    );
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { vec_dot_q4_1_q8_1_2x4_avx2(nb, w.map(|r| r.as_ptr()), a.map(|r| r.as_ptr())) }
}

/// # Safety
/// Each `w[r]` holds `nb` blocks of 20 bytes and each `a[j]` `nb` blocks of 36 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q4_1_q8_1_2x4_avx2(
    nb: usize,
    w: [*const u8; 2],
    a: [*const u8; 4],
) -> [[f32; 4]; 2] {
    let mut acc = [[_mm256_setzero_ps(); 4]; 2];
    let mut summs = [[0.0f32; 4]; 2];
    for ib in 0..nb {
        let yo = ib * 36;
        // SAFETY: block ib lies inside every row (caller's contract): [d, m] then 16 nibble
        // bytes per weight block, [d, s] then 32 quants per activation block.
        let (dm0, dm1, qx0, qx1, ad, asum) = unsafe {
            (
                f16x2_at(w[0].add(ib * 20)),
                f16x2_at(w[1].add(ib * 20)),
                bytes_from_nibbles_32(w[0].add(ib * 20 + 4)),
                bytes_from_nibbles_32(w[1].add(ib * 20 + 4)),
                f16_x4(a, yo),
                f16_x4(a, yo + 2),
            )
        };
        let (mut d, mut s) = ([0.0f32; 4], [0.0f32; 4]);
        // SAFETY: four f32 lanes into four-element arrays.
        unsafe {
            _mm_storeu_ps(d.as_mut_ptr(), ad);
            _mm_storeu_ps(s.as_mut_ptr(), asum);
        }
        let (d0, m0, d1, m1) = (lane0(dm0), lane1(dm0), lane0(dm1), lane1(dm1));
        for j in 0..4 {
            // SAFETY: the 32 quants of token j's block ib.
            let qy = unsafe { load32(a[j].add(yo + 4)) };
            let dj = _mm256_set1_ps(d[j]);
            summs[0][j] += m0 * s[j];
            summs[1][j] += m1 * s[j];
            let p0 = mul_sum_us8_pairs_float(qx0, qy);
            let p1 = mul_sum_us8_pairs_float(qx1, qy);
            acc[0][j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(d0), dj), p0, acc[0][j]);
            acc[1][j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(d1), dj), p1, acc[1][j]);
        }
    }
    std::array::from_fn(|r| std::array::from_fn(|j| hsum_float_8(acc[r][j]) + summs[r][j]))
}

/// `T` tokens (1 or 4) against one Q4_1 row of `nb` blocks.
///
/// # Safety
/// `w` holds `nb` blocks of 20 bytes and each `a[j]` `nb` blocks of 36 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q4_1_q8_1_avx2<const T: usize>(
    nb: usize,
    w: *const u8,
    a: [*const u8; T],
) -> [f32; T] {
    let mut acc = [_mm256_setzero_ps(); T];
    let mut summs = [0.0f32; T];
    for ib in 0..nb {
        // SAFETY: block ib lies inside the rows (caller's contract).
        let (xb, yo) = unsafe { (w.add(ib * 20), ib * 36) };
        // SAFETY: as above; [d, m] are the block's first four bytes.
        let dm = unsafe { f16x2_at(xb) };
        let (d0, m0) = (lane0(dm), lane1(dm));
        // SAFETY: the 16 nibble bytes follow the scales.
        let qx = unsafe { bytes_from_nibbles_32(xb.add(4)) };
        for j in 0..T {
            // SAFETY: [d, s] and the 32 quants of token j's block ib.
            let (ds, qy) = unsafe { (f16x2_at(a[j].add(yo)), load32(a[j].add(yo + 4))) };
            summs[j] += m0 * lane1(ds);
            let d0d1 = _mm256_mul_ps(_mm256_set1_ps(d0), _mm256_set1_ps(lane0(ds)));
            acc[j] = _mm256_fmadd_ps(d0d1, mul_sum_us8_pairs_float(qx, qy), acc[j]);
        }
    }
    std::array::from_fn(|j| hsum_float_8(acc[j]) + summs[j])
}

/// Q8_0 · Q8_0 as ggml's AVX2 kernel: per block `d_w * d_a` times the eight 4-product lanes of
/// the signed bytes, into an 8-lane FMA accumulator. (The batched tiles, bit-identical to this,
/// are in `avx2_tiles`.)
pub fn vec_dot_q8_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = n / 32;
    assert!(
        w.len() >= nb * 34 && a.len() >= nb * 34,
        "q8_0·q8_0: short rows"
    );
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { vec_dot_q8_0_q8_0_avx2(nb, w.as_ptr(), a.as_ptr()) }
}

/// # Safety
/// `w` and `a` hold `nb` blocks of 34 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q8_0_q8_0_avx2(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for ib in 0..nb {
        let o = ib * 34;
        // SAFETY: block ib lies inside both rows (caller's contract); the two scales are
        // paired into one conversion.
        let (dd, qx, qy) = unsafe {
            (
                f16_pair(w.add(o), a.add(o)),
                load32(w.add(o + 2)),
                load32(a.add(o + 2)),
            )
        };
        let d = _mm256_set1_ps(lane0(dd) * lane1(dd));
        let q = mul_sum_us8_pairs_float(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
        acc = _mm256_fmadd_ps(d, q, acc);
    }
    hsum_float_8(acc)
}
