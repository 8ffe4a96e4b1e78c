//! Causal attention of one query head over an f16 KV cache.
//!
//! The numerics follow llama.cpp's CPU path without flash attention, so greedy decoding can
//! reproduce it token for token: the query is rounded to f16 and each score is an f16·f16 dot
//! product (`Kernels::dot_f16`); the scaled scores go through a softmax whose sum is accumulated
//! in f64; the probabilities are rounded to f16; and each output dimension is an f16·f16 dot
//! product of a row of the *transposed* V cache with the probabilities. Like llama.cpp, the
//! probability vector is padded with zeros to a multiple of `KV_PAD` so both use the same
//! accumulation lanes.
//!
//! Options (`HeadOptions`): a sliding window masks positions older than `first` (-inf scores,
//! zero probabilities, as llama.cpp's SWA mask does; whole pages before the window are skipped,
//! which changes no bit since they only add zeros), and an attention sink is a per-head logit
//! that joins the softmax's max and denominator but weights no value, exactly as ggml's
//! `soft_max` with sinks: `max = max(max, sink)`, `sum += (f64) expf(sink - max)`.

use half::f16;

use crate::Kernels;

/// Cache lengths are padded to a multiple of this (zeros beyond the live rows).
pub const KV_PAD: usize = 32;

/// Positions per KV-cache page. A page is a multiple of every f16 dot product's step (32 for
/// ggml's layout, 8 for the tiled one), so a dot product that walks page after page keeps its
/// accumulators and sums in exactly the order of one contiguous row.
pub const KV_PAGE: usize = KV_PAD;

/// `n` rounded up to a multiple of `KV_PAD`.
pub fn pad_kv(n: usize) -> usize {
    n.div_ceil(KV_PAD) * KV_PAD
}

pub use crate::types::{PagedRow, PagedRows};

/// One KV head of one layer of a sequence in a paged cache. Within a page, position `j`'s K
/// row is `k[page * page_elems + k_offset + j * k_stride ..][..head_dim]`, and V is stored
/// transposed: dimension `d` of the page's positions is
/// `vt[page * vt_page_elems + vt_offset + d * KV_PAGE ..][..KV_PAGE]`. (V may live in another
/// buffer than K with its own page size: multi-head latent attention transposes its latent
/// into a scratch per step instead of caching it twice.)
pub struct HeadView<'a> {
    pub k: &'a [f16],
    pub vt: &'a [f16],
    pub pages: &'a [u32],
    pub page_elems: usize,
    pub k_offset: usize,
    pub k_stride: usize,
    pub vt_page_elems: usize,
    pub vt_offset: usize,
}

impl HeadView<'_> {
    /// K row of position `j` (`d` halves).
    #[cfg(test)]
    fn k_row(&self, j: usize, d: usize) -> &[f16] {
        let at = self.pages[j / KV_PAGE] as usize * self.page_elems
            + self.k_offset
            + (j % KV_PAGE) * self.k_stride;
        &self.k[at..at + d]
    }

    /// Transposed V row of dimension `i`, across pages.
    #[inline]
    fn vt_row(&self, i: usize) -> PagedRow<'_> {
        PagedRow {
            data: self.vt,
            pages: self.pages,
            page_elems: self.vt_page_elems,
            offset: self.vt_offset + i * KV_PAGE,
        }
    }
}

/// Masking and sink of one query head, beyond causality.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeadOptions {
    /// First visible position (sliding window); 0 sees the whole prefix.
    pub first: usize,
    /// Sink logit of this head (gpt-oss' `attn_sinks`).
    pub sink: Option<f32>,
}

/// Where one head's attention window starts, derived once per head from `HeadOptions::first`
/// and the cache length so every step of the head agrees on it.
#[derive(Clone, Copy)]
struct Window {
    /// First visible position, clamped to the last live one so the window is never empty.
    first: usize,
    /// Whole pages before `first`: they hold only masked positions, so they are skipped.
    skip: usize,
    /// First position of the first page not skipped (`skip * KV_PAGE`): the softmax and the
    /// V products start here, masked positions `lo..first` included at -inf.
    lo: usize,
}

impl Window {
    fn new(opts: HeadOptions, n_kv: usize) -> Self {
        let first = opts.first.min(n_kv.saturating_sub(1));
        let skip = first / KV_PAGE;
        Window {
            first,
            skip,
            lo: skip * KV_PAGE,
        }
    }
}

/// Per-thread scratch of one head: `scores` and `p16` hold at least `pad_kv(n_kv)`, `q16`
/// and `q32` (the query rounded to f16, then widened) the head's query width. A group of `g`
/// heads (`attend_group`) needs `g` times each.
pub struct AttnScratch<'a> {
    pub scores: &'a mut [f32],
    pub p16: &'a mut [f16],
    pub q16: &'a mut [f16],
    pub q32: &'a mut [f32],
}

/// The reference f16 dot product: f32 products summed in f64 (ggml's generic path).
pub fn dot_f16_scalar(a: &[f16], b: &[f16]) -> f32 {
    let mut sum = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        sum += (x.to_f32() * y.to_f32()) as f64;
    }
    sum as f32
}

/// The reference paged dot product: the same f64 sum, page after page.
pub fn dot_f16_paged_scalar(row: &PagedRow<'_>, b: &[f16]) -> f32 {
    let mut sum = 0.0f64;
    for (s, bs) in b.chunks(KV_PAGE).enumerate() {
        for (x, y) in row.segment(s, bs.len()).iter().zip(bs) {
            sum += (x.to_f32() * y.to_f32()) as f64;
        }
    }
    sum as f32
}

/// The reference conversion: `dst[i] = f16(src[i] * scale)`, rounded to nearest even.
pub fn scale_to_f16_scalar(src: &[f32], scale: f32, dst: &mut [f16]) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = f16::from_f32(x * scale);
    }
}

/// The reference group scores: per head and row `dot_f16_scalar`'s f64 sum (with the query
/// holding f16 values), scaled; each maximum taken as `f32::max` takes it.
pub fn head_scores_f16_scalar(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
) {
    let (d, _) = group_shape(qs, outs, maxes);
    for ((q, out), m) in qs.iter().zip(outs.iter_mut()).zip(maxes.iter_mut()) {
        let mut max = f32::NEG_INFINITY;
        for (j, o) in out.iter_mut().enumerate().skip(first) {
            let mut sum = 0.0f64;
            for (x, &y) in k.row(j, d).iter().zip(q.iter()) {
                sum += (x.to_f32() * y) as f64;
            }
            *o = sum as f32 * scale;
            max = max.max(*o);
        }
        *m = max;
    }
}

/// The query width `d` and score count `n` of a group of heads (`ScoresF16Fn`), after
/// checking that every head has them and that there is a maximum for each.
pub(crate) fn group_shape(qs: &[&[f32]], outs: &[&mut [f32]], maxes: &[f32]) -> (usize, usize) {
    let d = qs.first().map_or(0, |q| q.len());
    let n = outs.first().map_or(0, |o| o.len());
    assert!(
        qs.len() == outs.len()
            && maxes.len() >= qs.len()
            && qs.iter().all(|q| q.len() == d)
            && outs.iter().all(|o| o.len() == n),
        "head group: queries, scores and maxima disagree"
    );
    (d, n)
}

/// The number of positions `n` and output width of a group of heads (`HeadOutF16Fn`), after
/// checking that every head has them.
pub(crate) fn group_out_shape(ps: &[&[f32]], outs: &[&mut [f32]]) -> (usize, usize) {
    let n = ps.first().map_or(0, |p| p.len());
    let dims = outs.first().map_or(0, |o| o.len());
    assert!(
        ps.len() == outs.len()
            && ps.iter().all(|p| p.len() == n)
            && outs.iter().all(|o| o.len() == dims),
        "head group: probabilities and outputs disagree"
    );
    (n, dims)
}

/// The reference group outputs: per head and output dimension `dot_f16_paged_scalar`'s f64
/// sum.
pub fn head_out_f16_scalar(vt: &PagedRow<'_>, ps: &[&[f32]], outs: &mut [&mut [f32]]) {
    group_out_shape(ps, outs);
    for (p, out) in ps.iter().zip(outs.iter_mut()) {
        for (i, o) in out.iter_mut().enumerate() {
            let row = PagedRow {
                offset: vt.offset + i * KV_PAGE,
                ..*vt
            };
            let mut sum = 0.0f64;
            for (s, chunk) in p.chunks(KV_PAGE).enumerate() {
                for (x, &y) in row.segment(s, chunk.len()).iter().zip(chunk) {
                    sum += (x.to_f32() * y) as f64;
                }
            }
            *o = sum as f32;
        }
    }
}

/// The reference widening: `dst[i] = src[i]` as f32.
pub fn widen_f16_scalar(src: &[f16], dst: &mut [f32]) {
    for (d, x) in dst.iter_mut().zip(src) {
        *d = x.to_f32();
    }
}

/// `out = softmax(scale * K q) V` over the positions `opts.first..n_kv`. `out`: [V width].
///
/// `tiled_order` is true when the query's token belongs to a prompt chunk: llama.cpp then
/// computes attention with its tiled GEMM, whose dot products sum in a different order, and
/// owl follows it so prompts give the same bits. The choice depends only on the sequence's
/// own chunk, never on other sequences in the batch.
#[allow(clippy::too_many_arguments)]
pub fn attend_head(
    k: &Kernels,
    q: &[f32],
    kv: &HeadView<'_>,
    n_kv: usize,
    scale: f32,
    tiled_order: bool,
    opts: HeadOptions,
    s: &mut AttnScratch<'_>,
    out: &mut [f32],
) {
    let d = q.len();
    let n_pad = pad_kv(n_kv).min(kv.pages.len() * KV_PAGE);
    // Whole pages before the window are skipped; the rest of the window's first page is masked.
    let win = Window::new(opts, n_kv);
    let sh = Shape {
        d,
        n_kv,
        n_pad,
        scale,
        tiled_order,
    };
    head_group(k, kv, sh, &[opts.sink], win, q, s, out);
}

/// Heads one call of the group kernels takes at most: a larger group sharing a K/V head is
/// split into near-equal parts (7 as 4 + 3). Four queries, their accumulators and a widened
/// K row fill the AVX-512 register file.
pub const GROUP_MAX: usize = 4;

/// `attend_head` for a group of `opts.len()` query heads that share one K/V head (`kv`):
/// `qs` is `[g][d]`, `out` is `[g][dv]` (V rows may be narrower than K's, as in latent
/// attention), and head `h` gets `opts[h]`. The bits are those of `attend_head` per head;
/// where the group shares one window (always, in practice), in either order, each K and V row
/// is read and widened once for up to `GROUP_MAX` heads instead of once per head. `s` holds
/// `g` times what one head needs: `scores` and `p16` at least `g * pad_kv(n_kv)`, `q16` and
/// `q32` at least `g * d`.
#[allow(clippy::too_many_arguments)]
pub fn attend_group(
    k: &Kernels,
    qs: &[f32],
    kv: &HeadView<'_>,
    n_kv: usize,
    scale: f32,
    tiled_order: bool,
    opts: &[HeadOptions],
    s: &mut AttnScratch<'_>,
    out: &mut [f32],
) {
    let g = opts.len();
    assert!(g > 0 && qs.len().is_multiple_of(g) && out.len().is_multiple_of(g));
    let (d, dv) = (qs.len() / g, out.len() / g);
    let one_window = opts.iter().all(|o| o.first == opts[0].first);
    if !one_window || g == 1 {
        for (h, o) in opts.iter().enumerate() {
            attend_head(
                k,
                &qs[h * d..(h + 1) * d],
                kv,
                n_kv,
                scale,
                tiled_order,
                *o,
                s,
                &mut out[h * dv..(h + 1) * dv],
            );
        }
        return;
    }
    let n_pad = pad_kv(n_kv).min(kv.pages.len() * KV_PAGE);
    let win = Window::new(opts[0], n_kv);
    let per = g.div_ceil(g.div_ceil(GROUP_MAX));
    let mut h0 = 0;
    while h0 < g {
        let part = per.min(g - h0);
        let heads = h0..h0 + part;
        let sinks: [Option<f32>; GROUP_MAX] =
            std::array::from_fn(|i| opts.get(h0 + i).and_then(|o| o.sink));
        head_group(
            k,
            kv,
            Shape {
                d,
                n_kv,
                n_pad,
                scale,
                tiled_order,
            },
            &sinks[..part],
            win,
            &qs[heads.start * d..heads.end * d],
            s,
            &mut out[heads.start * dv..heads.end * dv],
        );
        h0 += part;
    }
}

/// The sizes one decoding head group's attention works with.
#[derive(Clone, Copy)]
struct Shape {
    /// Query width.
    d: usize,
    /// Live positions.
    n_kv: usize,
    /// `n_kv` padded (`pad_kv`, capped by the view's pages): the stride of each head's scores
    /// and probabilities in the scratch.
    n_pad: usize,
    scale: f32,
    /// The prompt order (`attend_head`'s `tiled_order`) rather than the decode order.
    tiled_order: bool,
}

/// Whole-group kernels for `sinks.len()` (at most `GROUP_MAX`) heads sharing `kv`, in the
/// decode order (`Kernels::head_scores_f16`, `head_out_f16`) or the prompt order
/// (`head_scores_f16_tiled`, `head_out_f16_tiled`): the queries rounded to f16 and widened to
/// f32 once, every head's scores in one call, a softmax per head, the probabilities widened,
/// and every head's outputs in one call; the bits of a dot product per row and head in that
/// order. `qs` is `[g][d]` and `out` `[g][dv]`.
#[allow(clippy::too_many_arguments)]
fn head_group(
    k: &Kernels,
    kv: &HeadView<'_>,
    sh: Shape,
    sinks: &[Option<f32>],
    win: Window,
    qs: &[f32],
    s: &mut AttnScratch<'_>,
    out: &mut [f32],
) {
    let (g, d, n_pad) = (sinks.len(), sh.d, sh.n_pad);
    assert!(g <= GROUP_MAX);
    assert!(s.scores.len() >= g * n_pad && s.p16.len() >= g * n_pad);
    let (q16, q32) = (&mut s.q16[..g * d], &mut s.q32[..g * d]);
    (k.scale_to_f16())(qs, 1.0, q16);
    (k.widen_f16())(q16, q32);
    let rows = PagedRows {
        data: kv.k,
        pages: kv.pages,
        page_elems: kv.page_elems,
        offset: kv.k_offset,
        stride: kv.k_stride,
    };
    let mut q_refs: [&[f32]; GROUP_MAX] = [&[]; GROUP_MAX];
    for (qr, q) in q_refs.iter_mut().zip(q32.chunks(d)).take(g) {
        *qr = q;
    }
    let mut maxes = [f32::NEG_INFINITY; GROUP_MAX];
    let mut outs: [&mut [f32]; GROUP_MAX] = Default::default();
    for (o, chunk) in outs.iter_mut().zip(s.scores.chunks_mut(n_pad)).take(g) {
        let sc = &mut chunk[..sh.n_kv];
        sc[win.lo..win.first].fill(f32::NEG_INFINITY);
        *o = sc;
    }
    let (scores_fn, out_fn) = if sh.tiled_order {
        (k.head_scores_f16_tiled(), k.head_out_f16_tiled())
    } else {
        (k.head_scores_f16(), k.head_out_f16())
    };
    scores_fn(
        &rows,
        &q_refs[..g],
        sh.scale,
        win.first,
        &mut outs[..g],
        &mut maxes[..g],
    );
    for (h, &sink) in sinks.iter().enumerate() {
        let scores = &mut s.scores[h * n_pad..(h + 1) * n_pad];
        let p16 = &mut s.p16[h * n_pad..(h + 1) * n_pad];
        softmax_to_f16(k, sh.n_kv, maxes[h], sink, win, scores, p16);
        // The scores are spent: they take the widened probabilities.
        (k.widen_f16())(&p16[win.lo..], &mut scores[win.lo..]);
    }
    let mut p_refs: [&[f32]; GROUP_MAX] = [&[]; GROUP_MAX];
    for (pr, chunk) in p_refs.iter_mut().zip(s.scores.chunks(n_pad)).take(g) {
        *pr = &chunk[win.lo..];
    }
    let mut outs: [&mut [f32]; GROUP_MAX] = Default::default();
    for (o, chunk) in outs.iter_mut().zip(out.chunks_mut(out.len() / g)).take(g) {
        *o = chunk;
    }
    let mut vt = kv.vt_row(0);
    vt.pages = &vt.pages[win.skip..];
    out_fn(&vt, &p_refs[..g], &mut outs[..g]);
}

/// The softmax of `scores[win.lo..]` (the first `n_kv` live; masked and padded positions at
/// -inf, the sink in the denominator) rounded into `p16[win.lo..]`, zeros past `n_kv`.
/// `scores` and `p16` are one head's, `n_pad` long.
fn softmax_to_f16(
    k: &Kernels,
    n_kv: usize,
    mut max: f32,
    sink: Option<f32>,
    win: Window,
    scores: &mut [f32],
    p16: &mut [f16],
) {
    let lo = win.lo;
    if let Some(sink) = sink {
        max = max.max(sink);
    }
    // Masked positions (as in llama.cpp's padded KV window) are -inf and come out as zero.
    scores[n_kv..].fill(f32::NEG_INFINITY);
    let scores = &mut scores[lo..];
    let mut sum = (k.softmax_exp())(scores, max);
    if let Some(sink) = sink {
        sum += (sink - max).exp() as f64;
    }
    let inv = (1.0 / sum) as f32;
    let p16 = &mut p16[lo..];
    (k.scale_to_f16())(scores, inv, p16);
    p16[n_kv - lo..].fill(f16::ZERO);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    #[test]
    fn matches_f64_softmax_attention_with_windows_and_sinks_for_every_isa() {
        // Two KV heads of dimension d, positions spread over pages in a scrambled order.
        let d = 64;
        let n = 45;
        let kv_dim = 2 * d;
        let page_elems = KV_PAGE * kv_dim;
        let n_pages = 4;
        let pages = [3u32, 1];
        let mut kc = vec![f16::ZERO; n_pages * page_elems];
        let mut vt = vec![f16::ZERO; n_pages * page_elems];
        let val = |a: usize, b: usize, m: usize| ((a * 7 + b * 3) % m) as f32 / m as f32 - 0.5;
        let at = |j: usize, i: usize| {
            let page = pages[j / KV_PAGE] as usize * page_elems;
            (
                page + (j % KV_PAGE) * kv_dim + d + i,
                page + (d + i) * KV_PAGE + j % KV_PAGE,
            )
        };
        for j in 0..n {
            for i in 0..d {
                let (ka, va) = at(j, i);
                kc[ka] = f16::from_f32(val(j, i, 11));
                vt[va] = f16::from_f32(val(j + 1, i * 5, 13) * 2.0);
            }
        }
        // Stale values beyond n must not leak into the result.
        for i in 0..d {
            vt[at(n, i).1] = f16::from_f32(100.0);
        }
        let q: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
        for isa in Isa::available() {
            let k = Kernels::for_isa(isa);
            let view = HeadView {
                k: &kc,
                vt: &vt,
                pages: &pages,
                page_elems,
                k_offset: d,
                k_stride: kv_dim,
                vt_page_elems: page_elems,
                vt_offset: d * KV_PAGE,
            };
            let cases = [
                HeadOptions::default(),
                HeadOptions {
                    first: 0,
                    sink: Some(2.0),
                },
                HeadOptions {
                    first: 20,
                    sink: None,
                },
                // Past the first page: that page is skipped.
                HeadOptions {
                    first: 37,
                    sink: Some(-1.0),
                },
            ];
            for opts in cases {
                for tiled in [false, true] {
                    let mut scores = vec![0.0; 64];
                    let mut p16 = vec![f16::ZERO; 64];
                    let mut q16 = vec![f16::ZERO; d];
                    let mut out = vec![0.0; d];
                    let mut s = AttnScratch {
                        scores: &mut scores,
                        p16: &mut p16,
                        q16: &mut q16,
                        q32: &mut vec![0.0; d],
                    };
                    attend_head(&k, &q, &view, n, 0.125, tiled, opts, &mut s, &mut out);
                    let logits: Vec<f64> = (opts.first..n)
                        .map(|j| {
                            (0..d)
                                .map(|i| kc[at(j, i).0].to_f64() * q[i] as f64)
                                .sum::<f64>()
                                * 0.125
                        })
                        .collect();
                    let sink = opts.sink.map(|x| x as f64);
                    let m = logits.iter().cloned().chain(sink).fold(f64::MIN, f64::max);
                    let z: f64 = logits
                        .iter()
                        .cloned()
                        .chain(sink)
                        .map(|l| (l - m).exp())
                        .sum();
                    for i in 0..d {
                        let r: f64 = logits
                            .iter()
                            .enumerate()
                            .map(|(jj, l)| {
                                (l - m).exp() / z * vt[at(opts.first + jj, i).1].to_f64()
                            })
                            .sum();
                        assert!(
                            (out[i] as f64 - r).abs() < 2e-3,
                            "{isa:?} tiled={tiled} {opts:?} {i}: {} vs {r}",
                            out[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn f16_conversion_matches_half_for_every_isa() {
        // Ordinary values, ties, overflow to infinity, subnormals, zeros and infinities.
        let mut src: Vec<f32> = (0..4000)
            .map(|i| (i as f32 * 0.7311).sin() * 10f32.powi(i % 13 - 8))
            .collect();
        src.extend([
            0.0,
            -0.0,
            65504.0,
            65520.0,
            1e6,
            -1e6,
            f32::INFINITY,
            f32::NEG_INFINITY,
            5.96e-8,
            2.98e-8,
            1.0 + 1.0 / 2048.0,
            1.0 + 3.0 / 2048.0,
            6.1e-5,
            -3.0e-6,
        ]);
        for isa in Isa::available() {
            let k = Kernels::for_isa(isa);
            for scale in [1.0f32, 0.37, 3.0e4] {
                let mut got = vec![f16::ZERO; src.len()];
                (k.scale_to_f16())(&src, scale, &mut got);
                for (x, g) in src.iter().zip(&got) {
                    assert_eq!(
                        g.to_bits(),
                        f16::from_f32(x * scale).to_bits(),
                        "{isa:?} {x} × {scale}"
                    );
                }
            }
        }
    }

    #[test]
    fn paged_dot_equals_contiguous_dot_bit_for_bit() {
        // A paged row must sum in exactly the order of the same row stored contiguously.
        let n = 5 * KV_PAGE;
        let page_elems = 3 * KV_PAGE;
        let pages = [4u32, 0, 2, 5, 1];
        let mut data = vec![f16::ZERO; 6 * page_elems];
        let mut flat = vec![f16::ZERO; n];
        let b: Vec<f16> = (0..n)
            .map(|i| f16::from_f32(((i * 37 % 101) as f32 / 50.0 - 1.0) * 0.9))
            .collect();
        for j in 0..n {
            let x = f16::from_f32(((j * 53 % 97) as f32 / 40.0 - 1.2) * 1.7);
            flat[j] = x;
            data[pages[j / KV_PAGE] as usize * page_elems + KV_PAGE + j % KV_PAGE] = x;
        }
        let row = PagedRow {
            data: &data,
            pages: &pages,
            page_elems,
            offset: KV_PAGE,
        };
        for isa in Isa::available() {
            let k = Kernels::for_isa(isa);
            for len in [KV_PAGE, 2 * KV_PAGE, n] {
                let (bb, ff) = (&b[..len], &flat[..len]);
                assert_eq!(
                    (k.dot_f16_paged())(&row, bb).to_bits(),
                    (k.dot_f16())(ff, bb).to_bits(),
                    "{isa:?} len {len}"
                );
                assert_eq!(
                    (k.dot_f16_batch_paged())(&row, bb).to_bits(),
                    (k.dot_f16_batch())(ff, bb).to_bits(),
                    "{isa:?} tiled len {len}"
                );
            }
        }
    }

    /// The whole-head kernels give, row by row, the bits of the single decode-order kernels
    /// (`dot_f16` per key, `dot_f16_paged` per output dimension) on every ISA: head sizes with
    /// and without a remainder past the last step of 32, scores from a window start, odd and
    /// even counts, values spread over f16's range so any change of summation order shows.
    #[test]
    fn whole_head_kernels_equal_the_row_kernels_bit_for_bit() {
        let mut st = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            let u = (st >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let e = ((st >> 8) % 17) as i32 - 10;
            f16::from_f32(u * 2f32.powi(e))
        };
        assert_eq!(KV_PAGE, crate::types::KV_PAGE_OF_ROWS);
        let pages = [5u32, 0, 3, 6, 1, 2];
        let mut checked = 0;
        for d in [64usize, 48, 8, 128] {
            let kv_dim = 3 * d;
            let page_elems = KV_PAGE * kv_dim;
            let data: Vec<f16> = (0..7 * page_elems).map(|_| next()).collect();
            // Seven heads: groups of every size the kernels split (up to 4, then 5 = 4 + 1,
            // 7 = 4 + 3).
            let q16: Vec<Vec<f16>> = (0..7).map(|_| (0..d).map(|_| next()).collect()).collect();
            let q32: Vec<Vec<f32>> = q16
                .iter()
                .map(|q| q.iter().map(|x| x.to_f32()).collect())
                .collect();
            let rows = PagedRows {
                data: &data,
                pages: &pages,
                page_elems,
                offset: d,
                stride: kv_dim,
            };
            let np = pages.len() * KV_PAGE;
            let p16: Vec<Vec<f16>> = (0..7).map(|_| (0..np).map(|_| next()).collect()).collect();
            let p32: Vec<Vec<f32>> = p16
                .iter()
                .map(|p| p.iter().map(|x| x.to_f32()).collect())
                .collect();
            for isa in Isa::available() {
                let k = Kernels::for_isa(isa);
                let orders = [
                    (
                        k.head_scores_f16(),
                        k.head_out_f16(),
                        k.dot_f16(),
                        k.dot_f16_paged(),
                    ),
                    (
                        k.head_scores_f16_tiled(),
                        k.head_out_f16_tiled(),
                        k.dot_f16_batch(),
                        k.dot_f16_batch_paged(),
                    ),
                ];
                for (order, (scores_fn, out_fn, dot, dot_paged)) in orders.into_iter().enumerate() {
                    for g in [1usize, 2, 3, 4, 5, 7] {
                        let qs: Vec<&[f32]> = q32[..g].iter().map(|q| &q[..]).collect();
                        for (n, first) in [(1, 0), (2, 0), (45, 0), (45, 7), (64, 33), (192, 100)] {
                            let mut got = vec![vec![0f32; n]; g];
                            let mut outs: Vec<&mut [f32]> =
                                got.iter_mut().map(|o| &mut o[..]).collect();
                            let mut maxes = vec![0f32; g];
                            scores_fn(&rows, &qs, 0.3, first, &mut outs, &mut maxes);
                            for h in 0..g {
                                let mut want_max = f32::NEG_INFINITY;
                                for (j, v) in got[h].iter().enumerate().skip(first) {
                                    let want = dot(rows.row(j, d), &q16[h]) * 0.3;
                                    want_max = want_max.max(want);
                                    assert_eq!(
                                        v.to_bits(),
                                        want.to_bits(),
                                        "{isa:?} order {order} d {d} group {g} head {h} score {j}"
                                    );
                                }
                                assert_eq!(maxes[h], want_max, "{isa:?} d {d} g {g} h {h} max");
                            }
                        }
                        for (n, dims) in [(32, d), (96, d), (192, d), (70, 5), (32, 1)] {
                            let vt = PagedRow {
                                data: &data,
                                pages: &pages,
                                page_elems,
                                offset: d * KV_PAGE,
                            };
                            let ps: Vec<&[f32]> = p32[..g].iter().map(|p| &p[..n]).collect();
                            let mut got = vec![vec![0f32; dims]; g];
                            let mut outs: Vec<&mut [f32]> =
                                got.iter_mut().map(|o| &mut o[..]).collect();
                            out_fn(&vt, &ps, &mut outs);
                            for (h, out) in got.iter().enumerate() {
                                for (i, v) in out.iter().enumerate() {
                                    let row = PagedRow {
                                        offset: vt.offset + i * KV_PAGE,
                                        ..vt
                                    };
                                    let want = dot_paged(&row, &p16[h][..n]);
                                    assert_eq!(
                                    v.to_bits(),
                                    want.to_bits(),
                                    "{isa:?} order {order} d {d} n {n} group {g} head {h} dim {i}"
                                );
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
                let mut w = vec![0f32; np];
                (k.widen_f16())(&p16[0], &mut w);
                assert!(w
                    .iter()
                    .zip(&p32[0])
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
        assert!(checked > 0);
    }

    /// `attend_head` (whole-head kernels) gives the bits of the same attention made one dot
    /// product per row, in both orders, for windows, sinks and a head size with a remainder.
    #[test]
    fn decode_attention_equals_the_row_by_row_computation() {
        for d in [64usize, 40, 576] {
            let kv_dim = 2 * d;
            let page_elems = KV_PAGE * kv_dim;
            let pages = [3u32, 1, 4];
            let val = |a: usize, b: usize, m: usize| ((a * 7 + b * 3) % m) as f32 / m as f32 - 0.5;
            let kc: Vec<f16> = (0..5 * page_elems)
                .map(|i| f16::from_f32(val(i, i / 7, 23) * 3.0))
                .collect();
            let vt: Vec<f16> = (0..5 * page_elems)
                .map(|i| f16::from_f32(val(i / 3, i, 19) * 2.0))
                .collect();
            let view = HeadView {
                k: &kc,
                vt: &vt,
                pages: &pages,
                page_elems,
                k_offset: d,
                k_stride: kv_dim,
                vt_page_elems: page_elems,
                vt_offset: d * KV_PAGE,
            };
            let q: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
            for isa in Isa::available() {
                let k = Kernels::for_isa(isa);
                for n in [1usize, 2, 31, 45, 96] {
                    for opts in [
                        HeadOptions::default(),
                        HeadOptions {
                            first: 0,
                            sink: Some(1.5),
                        },
                        HeadOptions {
                            first: n / 2,
                            sink: None,
                        },
                        HeadOptions {
                            first: 40.min(n - 1),
                            sink: Some(-0.5),
                        },
                    ] {
                        let (mut sc, mut p16, mut q16) =
                            (vec![0f32; 96], vec![f16::ZERO; 96], vec![f16::ZERO; d]);
                        let mut got = vec![0f32; d];
                        let mut q32 = vec![0.0; d];
                        for tiled in [false, true] {
                            let mut s = AttnScratch {
                                scores: &mut sc,
                                p16: &mut p16,
                                q16: &mut q16,
                                q32: &mut q32,
                            };
                            attend_head(&k, &q, &view, n, 0.125, tiled, opts, &mut s, &mut got);
                            let want = row_by_row(&k, &q, &view, n, 0.125, opts, tiled);
                            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                                assert_eq!(
                                    g.to_bits(),
                                    w.to_bits(),
                                    "{isa:?} d {d} n {n} {opts:?} tiled {tiled} dim {i}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// `attend_group` gives each head the bits of `attend_head` alone (and so of the
    /// row-by-row computation): groups split into parts (6 = 3 + 3, 7 = 4 + 3), per-head sinks,
    /// a shared window, heads whose windows differ (taken one by one) and the prompt order.
    #[test]
    fn a_head_group_equals_each_head_alone() {
        let d = 64;
        let kv_dim = 2 * d;
        let page_elems = KV_PAGE * kv_dim;
        let pages = [2u32, 0, 3];
        let val = |a: usize, b: usize, m: usize| ((a * 5 + b * 3) % m) as f32 / m as f32 - 0.5;
        let kc: Vec<f16> = (0..4 * page_elems)
            .map(|i| f16::from_f32(val(i, i / 5, 29) * 3.0))
            .collect();
        let vt: Vec<f16> = (0..4 * page_elems)
            .map(|i| f16::from_f32(val(i / 3, i, 17) * 2.0))
            .collect();
        let view = HeadView {
            k: &kc,
            vt: &vt,
            pages: &pages,
            page_elems,
            k_offset: d,
            k_stride: kv_dim,
            vt_page_elems: page_elems,
            vt_offset: d * KV_PAGE,
        };
        let n = 70;
        for isa in Isa::available() {
            let k = Kernels::for_isa(isa);
            for g in [2usize, 3, 4, 6, 7] {
                let qs: Vec<f32> = (0..g * d).map(|i| (i as f32 * 0.29).sin() * 2.0).collect();
                let windows: [&dyn Fn(usize) -> usize; 3] = [&|_| 0, &|_| 33, &|h| h * 9];
                for (w, first) in windows.iter().enumerate() {
                    for tiled in [false, true] {
                        let opts: Vec<HeadOptions> = (0..g)
                            .map(|h| HeadOptions {
                                first: first(h),
                                sink: (h % 2 == 1).then_some(h as f32 * 0.5),
                            })
                            .collect();
                        let (mut sc, mut p16, mut q16) = (
                            vec![0f32; g * 96],
                            vec![f16::ZERO; g * 96],
                            vec![f16::ZERO; g * d],
                        );
                        let mut got = vec![0f32; g * d];
                        let mut s = AttnScratch {
                            scores: &mut sc,
                            p16: &mut p16,
                            q16: &mut q16,
                            q32: &mut vec![0.0; g * d],
                        };
                        attend_group(&k, &qs, &view, n, 0.125, tiled, &opts, &mut s, &mut got);
                        for h in 0..g {
                            let (mut sc, mut p16, mut q16) =
                                (vec![0f32; 96], vec![f16::ZERO; 96], vec![f16::ZERO; d]);
                            let mut want = vec![0f32; d];
                            let mut s = AttnScratch {
                                scores: &mut sc,
                                p16: &mut p16,
                                q16: &mut q16,
                                q32: &mut vec![0.0; d],
                            };
                            let q = &qs[h * d..(h + 1) * d];
                            attend_head(&k, q, &view, n, 0.125, tiled, opts[h], &mut s, &mut want);
                            for (i, (a, b)) in got[h * d..].iter().zip(&want).enumerate() {
                                assert_eq!(
                                    a.to_bits(),
                                    b.to_bits(),
                                    "{isa:?} group {g} window {w} tiled {tiled} head {h} dim {i}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// The attention as it was made before the whole-head kernels: one `dot_f16` per key, a
    /// running `f32::max`, one `dot_f16_paged` per output dimension (in the prompt order,
    /// `tiled`, `dot_f16_batch` and `dot_f16_batch_paged`).
    fn row_by_row(
        k: &Kernels,
        q: &[f32],
        kv: &HeadView<'_>,
        n_kv: usize,
        scale: f32,
        opts: HeadOptions,
        tiled: bool,
    ) -> Vec<f32> {
        let d = q.len();
        let (dot, dot_paged) = if tiled {
            (k.dot_f16_batch(), k.dot_f16_batch_paged())
        } else {
            (k.dot_f16(), k.dot_f16_paged())
        };
        let mut q16 = vec![f16::ZERO; d];
        (k.scale_to_f16())(q, 1.0, &mut q16);
        let n_pad = pad_kv(n_kv).min(kv.pages.len() * KV_PAGE);
        let Window { first, skip, lo } = Window::new(opts, n_kv);
        let mut max = f32::NEG_INFINITY;
        let mut scores = vec![f32::NEG_INFINITY; n_pad];
        for (j, sc) in scores.iter_mut().enumerate().take(n_kv).skip(first) {
            *sc = dot(kv.k_row(j, d), &q16) * scale;
            max = max.max(*sc);
        }
        if let Some(sink) = opts.sink {
            max = max.max(sink);
        }
        let mut sum = (k.softmax_exp())(&mut scores[lo..n_pad], max);
        if let Some(sink) = opts.sink {
            sum += (sink - max).exp() as f64;
        }
        let mut p16 = vec![f16::ZERO; n_pad - lo];
        (k.scale_to_f16())(&scores[lo..n_pad], (1.0 / sum) as f32, &mut p16);
        p16[n_kv - lo..].fill(f16::ZERO);
        (0..d)
            .map(|i| {
                let mut row = kv.vt_row(i);
                row.pages = &row.pages[skip..];
                dot_paged(&row, &p16)
            })
            .collect()
    }
}
