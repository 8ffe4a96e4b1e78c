//! The one `linear` entry point: quantized weights × f32 activations.
//!
//! Activations are quantized once per call into the format the weight type's dot product pairs
//! with (Q8_0, Q8_1, Q8_K, F16, ...). Threads split the weight rows; each thread walks its rows and,
//! for each row, every token of the batch, so a weight row is read from memory once per call and
//! reused from cache across tokens. Each (row, token) result comes from the same dot-product
//! function in the same order regardless of the batch size, which keeps outputs batch-invariant.
//!
//! F16, BF16 and F32 matrices of encoders (`linear_gemm`) go to the float GEMM
//! (`crate::gemm_float`) instead, with the activations in f32.
//!
//! Matrices repacked at load (`Layout` other than `Rows`, see `crate::repack`) go through
//! `linear_repacked`: threads split groups of eight rows, each group meets the tokens four at a
//! time, and every (row, token) result is again the same whatever the batch.

use std::sync::Arc;

use owl_gguf::{GgmlType, GgufFile};

use crate::pool::{chunking, SharedMut, ThreadPool};
use crate::types::FloatTileFn;
use crate::Kernels;

/// Where a weight matrix's bytes live: borrowed from the memory-mapped model file (the default:
/// nothing is copied) or owned (after an explicit copy or repack).
#[derive(Clone)]
pub enum WeightBytes {
    Mapped {
        file: Arc<GgufFile>,
        offset: usize,
        len: usize,
    },
    Owned(Arc<Vec<u8>>),
}

impl WeightBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            WeightBytes::Mapped { file, offset, len } => file.data_bytes(*offset, *len),
            WeightBytes::Owned(v) => v,
        }
    }
}

pub use crate::types::Layout;

/// A weight matrix in its stored format: `rows` rows of `cols` elements each (ggml's ne1 × ne0).
#[derive(Clone)]
pub struct QMatrix {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub bytes: WeightBytes,
    pub layout: Layout,
}

impl QMatrix {
    /// A matrix in the file's row layout.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, bytes: WeightBytes) -> QMatrix {
        QMatrix {
            ty,
            rows,
            cols,
            bytes,
            layout: Layout::Rows,
        }
    }

    /// This matrix in a layout `linear` multiplies faster, if there is one for its type and
    /// shape and it is used by default (`OWL_REPACK_OPT_IN=1` adds opt-in ones; the repacked
    /// bytes are owned; the source is left untouched). Matrices that are also read row by row
    /// (embeddings) must stay in `Layout::Rows`.
    pub fn repacked(&self) -> Option<QMatrix> {
        self.repacked_with(std::env::var_os("OWL_REPACK_OPT_IN").is_some_and(|v| v == "1"))
    }

    /// [`QMatrix::repacked`], with the opt-in layouts included when `opt_in` (tests and
    /// benchmarks of those layouts).
    pub fn repacked_with(&self, opt_in: bool) -> Option<QMatrix> {
        if self.layout != Layout::Rows {
            return None;
        }
        let p = crate::repack::for_type(self.ty)?;
        if !p.by_default && !opt_in {
            return None;
        }
        let bytes = (p.repack)(self.bytes.as_slice(), self.rows, self.cols)?;
        let layout = p.layout;
        Some(QMatrix {
            bytes: WeightBytes::Owned(Arc::new(bytes)),
            layout,
            ..self.clone()
        })
    }

    /// Bytes of one row (of the row layout).
    pub fn row_bytes(&self) -> usize {
        owl_quant::row_bytes(self.ty, self.cols)
    }

    /// The bytes of row `r` (empty unless the layout is `Layout::Rows`).
    pub fn row(&self, r: usize) -> &[u8] {
        if self.layout != Layout::Rows {
            return &[];
        }
        let rb = self.row_bytes();
        let all = self.bytes.as_slice();
        all.get(r * rb..(r + 1) * rb).unwrap_or(&[])
    }

    /// Dequantizes row `r` into `out` (`out.len() == cols`), e.g. for embedding lookup.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        if let Some(f) = owl_quant::format(self.ty) {
            (f.dequantize)(self.row(r), out);
        }
    }
}

/// Reusable buffer for quantized activations (grows, never shrinks: no per-token allocation).
#[derive(Default)]
pub struct ActBuffer {
    bytes: Vec<u8>,
}

impl ActBuffer {
    /// `len` bytes starting on a 64-byte boundary (a cache line), so that rows whose size is
    /// a multiple of 64 never straddle lines: a 64-byte load that does costs two.
    fn aligned(&mut self, len: usize) -> &mut [u8] {
        if self.bytes.len() < len + 64 {
            self.bytes.resize(len + 64, 0);
        }
        let skip = self.bytes.as_ptr().align_offset(64).min(63);
        &mut self.bytes[skip..skip + len]
    }
}

/// `out[t][r] = dot(w.row(r), x[t])` for `t < n_tokens`, `r < w.rows`.
///
/// `x`: [n_tokens, w.cols] f32; `out`: [n_tokens, w.rows] f32.
/// Panics only on a programming error (mismatched shapes or an unsupported type, which model
/// loading rejects before any forward pass).
pub fn linear(
    k: &Kernels,
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
    act: &mut ActBuffer,
) {
    linear_many(k, pool, x, n_tokens, &mut [(w, out)], act);
}

/// Most matrices `linear_many` runs in one fork-join (Q, K and V; gate and up).
pub const MAX_FUSED: usize = 4;

/// Several `linear`s over the same input `x` ([n_tokens, cols]) in one pass: the activations
/// are quantized once and the threads split the rows of all matrices together, so Q/K/V (or
/// gate/up) cost one barrier instead of three. Each output equals what `linear` gives.
/// Matrices whose activation formats differ, or more than `MAX_FUSED`, run one after another.
pub fn linear_many(
    k: &Kernels,
    pool: &ThreadPool,
    x: &[f32],
    n_tokens: usize,
    jobs: &mut [(&QMatrix, &mut [f32])],
    act: &mut ActBuffer,
) {
    linear_many_with(k, pool, x, n_tokens, jobs, act, false);
}

/// `linear` for encoders (BERT, MiniLM): F16, BF16 and F32 matrices in the row layout go
/// through the float GEMM (`crate::gemm_float`, f32 activations, owl's own fixed order:
/// batch-invariant, not llama.cpp's bits); the others as `linear`. Decoders keep `linear`, whose
/// float dot products follow ggml's (their reference tests compare with llama.cpp).
pub fn linear_gemm(
    k: &Kernels,
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
    act: &mut ActBuffer,
) {
    linear_many_with(k, pool, x, n_tokens, &mut [(w, out)], act, true);
}

/// `linear_many` with `linear_gemm`'s choice of the float GEMM.
pub fn linear_many_gemm(
    k: &Kernels,
    pool: &ThreadPool,
    x: &[f32],
    n_tokens: usize,
    jobs: &mut [(&QMatrix, &mut [f32])],
    act: &mut ActBuffer,
) {
    linear_many_with(k, pool, x, n_tokens, jobs, act, true);
}

fn linear_many_with(
    k: &Kernels,
    pool: &ThreadPool,
    x: &[f32],
    n_tokens: usize,
    jobs: &mut [(&QMatrix, &mut [f32])],
    act: &mut ActBuffer,
    float_gemm: bool,
) {
    let dot_ty = |w: &QMatrix| {
        owl_quant::format(w.ty)
            .expect("linear: weight type has no format")
            .vec_dot_type
    };
    if jobs.iter().all(|(w, _)| w.layout != Layout::Rows) {
        linear_repacked(k, pool, x, n_tokens, jobs, act);
        return;
    }
    if jobs.iter().any(|(w, _)| w.layout != Layout::Rows) {
        // Mixed layouts: one matrix at a time, each through its own kernels.
        for (w, out) in jobs.iter_mut() {
            linear_many_with(
                k,
                pool,
                x,
                n_tokens,
                &mut [(*w, &mut **out)],
                act,
                float_gemm,
            );
        }
        return;
    }
    let first = &jobs[0].0;
    if float_gemm
        && jobs.len() <= MAX_FUSED
        && jobs
            .iter()
            .all(|(w, _)| w.cols == first.cols && k.gemm_float(w.ty).is_some())
    {
        linear_float(k, pool, x, n_tokens, jobs);
        return;
    }
    let (cols, aty) = (first.cols, dot_ty(first));
    if jobs.len() > MAX_FUSED || jobs.iter().any(|(w, _)| w.cols != cols || dot_ty(w) != aty) {
        for (w, out) in jobs.iter_mut() {
            linear_many_with(
                k,
                pool,
                x,
                n_tokens,
                &mut [(*w, &mut **out)],
                act,
                float_gemm,
            );
        }
        return;
    }
    assert_eq!(x.len(), n_tokens * cols, "linear: activation shape");
    let quantize = k.quantize(aty).expect("linear: no activation quantizer");
    let a_row = owl_quant::row_bytes(aty, cols);
    let abuf = act.aligned(a_row * n_tokens);
    // Quantize activations once: [n_tokens, a_row] bytes.
    quantize_tokens(pool, n_tokens, a_row, abuf, |t, dst| {
        quantize(&x[t * cols..(t + 1) * cols], dst)
    });

    struct Part<'a> {
        w: &'a [u8],
        w_row: usize,
        rows: usize,
        vec_dot: owl_quant::VecDotFn,
        x4: Option<crate::types::VecDotX4Fn>,
        x2x4: Option<crate::types::VecDot2x4Fn>,
        tile: Option<FloatTileFn>,
        out: SharedMut<f32>,
    }
    let mut parts: [Option<Part<'_>>; MAX_FUSED] = [None, None, None, None];
    let mut total_rows = 0;
    for (slot, (w, out)) in parts.iter_mut().zip(jobs.iter_mut()) {
        assert_eq!(out.len(), n_tokens * w.rows, "linear: output shape");
        *slot = Some(Part {
            w: w.bytes.as_slice(),
            w_row: w.row_bytes(),
            rows: w.rows,
            vec_dot: k.vec_dot(w.ty).expect("linear: no dot product"),
            x4: k.vec_dot_x4(w.ty),
            x2x4: k.vec_dot_2x4(w.ty),
            tile: k.float_tile(w.ty),
            out: SharedMut::new(out),
        });
        total_rows += w.rows;
    }
    let abuf = &*abuf;
    // Tokens per tile: the tile's quantized activations stay in L1 while every weight row of
    // the thread's share passes over them.
    let tile = (TILE_BYTES / a_row.max(1)).clamp(4, 64) & !3;
    let parts = &parts;
    // Rows are claimed in chunks, so a thread that is descheduled holds up nobody.
    let (n_chunks, chunk_rows) = chunking(total_rows, pool.n_threads(), 4, 16);
    pool.run_chunks(n_chunks, |chunk, _thread| {
        let mine = chunk * chunk_rows..((chunk + 1) * chunk_rows).min(total_rows);
        let act_row = |t: usize| &abuf[t * a_row..(t + 1) * a_row];
        for t0 in (0..n_tokens).step_by(tile) {
            let t_end = (t0 + tile).min(n_tokens);
            let mut base = 0;
            for p in parts.iter().flatten() {
                let lo = mine.start.max(base) - base;
                let hi = mine.end.min(base + p.rows).saturating_sub(base);
                base += p.rows;
                let mut r = lo;
                while r < hi {
                    if let Some(four) = p.tile.filter(|_| r + 3 < hi) {
                        // Four rows at a time: a 4×4 tile per four tokens.
                        let w4: [&[u8]; 4] =
                            std::array::from_fn(|i| &p.w[(r + i) * p.w_row..(r + i + 1) * p.w_row]);
                        let mut t = t0;
                        while t + 4 <= t_end {
                            let v = four(cols, w4, std::array::from_fn(|j| act_row(t + j)));
                            for (i, row) in v.iter().enumerate() {
                                for (j, &x) in row.iter().enumerate() {
                                    // SAFETY: (t + j) * rows + r + i < out.len(); rows r..r + 4
                                    // of this matrix belong to this thread only.
                                    unsafe { p.out.write((t + j) * p.rows + r + i, x) };
                                }
                            }
                            t += 4;
                        }
                        while t < t_end {
                            for (i, wr) in w4.iter().enumerate() {
                                let v = (p.vec_dot)(cols, wr, act_row(t));
                                // SAFETY: as above.
                                unsafe { p.out.write(t * p.rows + r + i, v) };
                            }
                            t += 1;
                        }
                        r += 4;
                        continue;
                    }
                    if let Some(x2x4) = p.x2x4.filter(|_| r + 1 < hi) {
                        // Two rows at a time: a 2×4 tile per four tokens.
                        let w2 = [
                            &p.w[r * p.w_row..(r + 1) * p.w_row],
                            &p.w[(r + 1) * p.w_row..(r + 2) * p.w_row],
                        ];
                        let mut t = t0;
                        while t + 4 <= t_end {
                            let acts = [act_row(t), act_row(t + 1), act_row(t + 2), act_row(t + 3)];
                            let v = x2x4(cols, w2, acts);
                            for (i, row) in v.iter().enumerate() {
                                for (j, &x) in row.iter().enumerate() {
                                    // SAFETY: (t + j) * rows + r + i < out.len(); rows r and
                                    // r + 1 of this matrix belong to this thread only.
                                    unsafe { p.out.write((t + j) * p.rows + r + i, x) };
                                }
                            }
                            t += 4;
                        }
                        while t < t_end {
                            for (i, wr) in w2.iter().enumerate() {
                                let v = (p.vec_dot)(cols, wr, act_row(t));
                                // SAFETY: as above.
                                unsafe { p.out.write(t * p.rows + r + i, v) };
                            }
                            t += 1;
                        }
                        r += 2;
                        continue;
                    }
                    let wr = &p.w[r * p.w_row..(r + 1) * p.w_row];
                    let mut t = t0;
                    if let Some(x4) = p.x4 {
                        while t + 4 <= t_end {
                            let acts = [act_row(t), act_row(t + 1), act_row(t + 2), act_row(t + 3)];
                            for (j, v) in x4(cols, wr, acts).into_iter().enumerate() {
                                // SAFETY: (t + j) * rows + r < n_tokens * rows == out.len(),
                                // and row r of this matrix belongs to this thread only.
                                unsafe { p.out.write((t + j) * p.rows + r, v) };
                            }
                            t += 4;
                        }
                    }
                    while t < t_end {
                        let v = (p.vec_dot)(cols, wr, act_row(t));
                        // SAFETY: as above.
                        unsafe { p.out.write(t * p.rows + r, v) };
                        t += 1;
                    }
                    r += 1;
                }
            }
        }
    });
}

/// `linear_many` for F16, BF16 and F32 matrices in the row layout (all of the same `cols`):
/// the f32 activations go in as they are, and `crate::gemm_float` multiplies register tiles of
/// rows × tokens. Threads split the rows; each thread meets the tokens a tile at a time (their
/// activations stay in L2 while its rows pass over them). Every (row, token) result is the
/// GEMM's fixed-order product, whatever the batch or the tile.
fn linear_float(
    k: &Kernels,
    pool: &ThreadPool,
    x: &[f32],
    n_tokens: usize,
    jobs: &mut [(&QMatrix, &mut [f32])],
) {
    let cols = jobs[0].0.cols;
    assert_eq!(x.len(), n_tokens * cols, "linear: activation shape");
    struct Part<'a> {
        w: &'a [u8],
        w_row: usize,
        rows: usize,
        gemm: crate::gemm_float::GemmFloatFn,
        out: SharedMut<f32>,
    }
    let mut parts: [Option<Part<'_>>; MAX_FUSED] = [None, None, None, None];
    let mut total_rows = 0;
    for (slot, (w, out)) in parts.iter_mut().zip(jobs.iter_mut()) {
        assert_eq!(out.len(), n_tokens * w.rows, "linear: output shape");
        *slot = Some(Part {
            w: w.bytes.as_slice(),
            w_row: w.row_bytes(),
            rows: w.rows,
            gemm: k.gemm_float(w.ty).expect("linear_float: a float GEMM"),
            out: SharedMut::new(out),
        });
        total_rows += w.rows;
    }
    let parts = &parts;
    let tile = (FLOAT_TILE_BYTES / (4 * cols).max(1)).clamp(4, 256);
    // Chunks of rows, a multiple of the GEMM's row tiles (12 rows: 3-, 4- and 6-row tiles).
    let (n_chunks, chunk_rows) = chunking(total_rows.div_ceil(12), pool.n_threads(), 4, 1);
    let chunk_rows = chunk_rows * 12;
    let n_chunks = n_chunks.min(total_rows.div_ceil(chunk_rows));
    pool.run_chunks(n_chunks, |chunk, _thread| {
        let mine = chunk * chunk_rows..((chunk + 1) * chunk_rows).min(total_rows);
        let mut buf = Vec::new();
        for t0 in (0..n_tokens).step_by(tile) {
            let t_end = (t0 + tile).min(n_tokens);
            let nt = t_end - t0;
            let mut base = 0;
            for p in parts.iter().flatten() {
                let lo = mine.start.max(base) - base;
                let hi = mine.end.min(base + p.rows).saturating_sub(base);
                base += p.rows;
                if lo >= hi {
                    continue;
                }
                let nr = hi - lo;
                buf.resize(nr * nt, 0f32);
                (p.gemm)(
                    cols,
                    &p.w[lo * p.w_row..hi * p.w_row],
                    &x[t0 * cols..t_end * cols],
                    &mut buf,
                );
                for t in 0..nt {
                    for r in 0..nr {
                        // SAFETY: (t0 + t) * rows + lo + r < n_tokens * rows == out.len(), and
                        // rows lo..hi of this matrix belong to this chunk only.
                        unsafe { p.out.write((t0 + t) * p.rows + lo + r, buf[t * nr + r]) };
                    }
                }
            }
        }
    });
}

/// Bytes of f32 activations per token tile of the float GEMM (a share of L2).
const FLOAT_TILE_BYTES: usize = 256 * 1024;

/// `linear_many` for matrices in a repacked layout (all of the same `cols`, else one by one):
/// threads split the groups of eight rows; each group meets the tokens four at a time.
fn linear_repacked(
    k: &Kernels,
    pool: &ThreadPool,
    x: &[f32],
    n_tokens: usize,
    jobs: &mut [(&QMatrix, &mut [f32])],
    act: &mut ActBuffer,
) {
    use crate::repack::{quantize_q8_0_with_sums, quantize_q8_1_with_scales, Activations, X8};
    let (cols, layout) = (jobs[0].0.cols, jobs[0].0.layout);
    if jobs.len() > MAX_FUSED
        || jobs
            .iter()
            .any(|(w, _)| w.cols != cols || w.layout != layout)
    {
        for (w, out) in jobs.iter_mut() {
            linear_repacked(k, pool, x, n_tokens, &mut [(*w, &mut **out)], act);
        }
        return;
    }
    assert_eq!(x.len(), n_tokens * cols, "linear: activation shape");
    // The layout's registry entry: its kernel, block sizes and activation format.
    let p = crate::repack::for_layout(layout).expect("linear_repacked: a repacked layout");
    let gemm = k.repacked(layout).expect("linear_repacked: a kernel");
    // Pair kernels pay where many tokens share each weight load; a few tokens' product
    // streams weights from memory, and there the pair kernel measured slower, so one group at
    // a time (`PAIR_MIN_TOKENS`). Either way the same bits.
    let pair = k
        .repacked_pair(layout)
        .filter(|_| n_tokens >= PAIR_MIN_TOKENS);
    // Tile products (AMX) take whole token tiles at once where the ISA has them; below a
    // tile's worth of tokens the engine would multiply padding. The same bits either way.
    let tiles = k
        .repacked_tiles(layout)
        .filter(|_| n_tokens >= TILES_MIN_TOKENS);
    let (block_cols, block_bytes) = (p.block_cols, p.block_bytes);
    let a_row = cols / block_cols * p.acts.block_bytes();
    let q8 = |ty| k.quantize(ty).expect("linear: no activation quantizer");
    let abuf = act.aligned(a_row * n_tokens);
    // Quantize activations once: [n_tokens, a_row] bytes.
    let (acts, quantize) = (p.acts, q8(p.acts.quant_type()));
    quantize_tokens(pool, n_tokens, a_row, abuf, |t, dst| {
        let x = &x[t * cols..(t + 1) * cols];
        match acts {
            Activations::Q8_0WithSums => quantize_q8_0_with_sums(quantize, x, dst),
            Activations::Q8_1WithScales => quantize_q8_1_with_scales(quantize, x, dst),
            _ => quantize(x, dst),
        }
    });
    let nb = cols / block_cols;
    let group_bytes = nb * block_bytes;

    struct Part<'a> {
        w: &'a [u8],
        rows: usize,
        out: SharedMut<f32>,
    }
    let mut parts: [Option<Part<'_>>; MAX_FUSED] = [None, None, None, None];
    let mut total_groups = 0;
    for (slot, (w, out)) in parts.iter_mut().zip(jobs.iter_mut()) {
        assert_eq!(out.len(), n_tokens * w.rows, "linear: output shape");
        *slot = Some(Part {
            w: w.bytes.as_slice(),
            rows: w.rows,
            out: SharedMut::new(out),
        });
        total_groups += w.rows / X8;
    }
    let abuf = &*abuf;
    let parts = &parts;
    // Tokens per tile: their activations stay in L2 while the thread's groups pass over them.
    let tile = (REPACKED_TILE_BYTES / a_row.max(1)).clamp(4, 256) & !3;
    let (mut n_chunks, mut chunk_groups) = chunking(total_groups, pool.n_threads(), 4, 2);
    if pair.is_some() && chunk_groups % 2 == 1 {
        // An even share, so every chunk's groups pair up (where the matrices' own groups do):
        // an odd one left a single-group call per chunk, at about half the pair's speed.
        chunk_groups += 1;
        n_chunks = total_groups.div_ceil(chunk_groups);
    }
    pool.run_chunks(n_chunks, |chunk, _thread| {
        let mine = chunk * chunk_groups..((chunk + 1) * chunk_groups).min(total_groups);
        let mut acts: [&[u8]; 4] = [&[]; 4];
        let mut res = [[0f32; X8]; 8];
        let mut tile_out = Vec::new();
        for t0 in (0..n_tokens).step_by(tile) {
            let t_end = (t0 + tile).min(n_tokens);
            let mut base = 0;
            for p in parts.iter().flatten() {
                let groups = p.rows / X8;
                let lo = mine.start.max(base) - base;
                let hi = mine.end.min(base + groups).saturating_sub(base);
                base += groups;
                if let Some(tiles) = tiles {
                    // Two groups and all of the token tile per call.
                    let n = t_end - t0;
                    for g in (lo..hi).step_by(2) {
                        let n_groups = (hi - g).min(2);
                        let w = &p.w[g * group_bytes..(g + n_groups) * group_bytes];
                        let width = X8 * n_groups;
                        tile_out.resize(n * width, 0.0);
                        tiles(
                            nb,
                            w,
                            n_groups,
                            &abuf[t0 * a_row..t_end * a_row],
                            a_row,
                            &mut tile_out,
                        );
                        for (j, row) in tile_out.chunks_exact(width).enumerate() {
                            // SAFETY: as below: token t0 + j's rows 8g..8g + width of this
                            // matrix belong to this thread and end inside `out`.
                            unsafe { p.out.slice((t0 + j) * p.rows + X8 * g, width) }
                                .copy_from_slice(row);
                        }
                    }
                    continue;
                }
                let mut g = lo;
                while g < hi {
                    // Two groups at once where the ISA has a pair kernel (sixteen rows per
                    // register); the same bits as two single calls.
                    let pair = pair.filter(|_| g + 1 < hi);
                    let n_groups = 1 + usize::from(pair.is_some());
                    let w = &p.w[g * group_bytes..(g + n_groups) * group_bytes];
                    let mut t = t0;
                    while t < t_end {
                        let n = (t_end - t).min(4);
                        for (j, a) in acts.iter_mut().enumerate().take(n) {
                            *a = &abuf[(t + j) * a_row..(t + j + 1) * a_row];
                        }
                        match pair {
                            Some(pair) => pair(nb, w, &acts[..n], &mut res[..2 * n]),
                            None => gemm(nb, w, &acts[..n], &mut res[..n]),
                        }
                        for (i, row) in res.iter().enumerate().take(n_groups * n) {
                            let (half, j) = (i / n, i % n);
                            // SAFETY: (t + j) * rows + 8(g + half) + 8 <= n_tokens * rows ==
                            // out.len(); groups g.. g + n_groups of this matrix belong to
                            // this thread. Eight floats copied at once, not one by one.
                            unsafe { p.out.slice((t + j) * p.rows + X8 * (g + half), X8) }
                                .copy_from_slice(row);
                        }
                        t += n;
                    }
                    g += n_groups;
                }
            }
        }
    });
}

/// Tokens from which `linear_repacked` takes groups two at a time (where the table has a pair
/// kernel). Measured on Zen 4 with the default model (`owl bench -p N -n 0`, pairs against
/// single groups): 1 token 155 against 220 t/s (tg128), 4 tokens 679–689 against 778–888,
/// 8 tokens 1034–1054 against 1160–1164, 10–14 tokens even within the noise, 16 tokens
/// 1279–1288 against 1179–1231. Verification passes of speculative decoding (2–9 positions)
/// and half-full serving steps sit below it.
const PAIR_MIN_TOKENS: usize = 12;

/// Tokens from which `linear_repacked` uses a tile kernel (AMX) where the table has one: one
/// full tile of `A`. Not yet measured on an AMX CPU.
const TILES_MIN_TOKENS: usize = 16;

/// Tokens from which a batch's activations are quantized by all the pool's threads: a wide
/// decode step (many sequences) spent a tenth of its time quantizing on one thread while the
/// others waited. Below it, the fork costs more than it saves.
const PARALLEL_QUANTIZE_MIN: usize = 8;

/// Quantizes `n_tokens` rows of activations into `dst` (`a_row` bytes each) with `one(t, row)`,
/// split over the pool's threads for wide batches. Rows are independent, so the bytes never
/// depend on the split.
fn quantize_tokens(
    pool: &ThreadPool,
    n_tokens: usize,
    a_row: usize,
    dst: &mut [u8],
    one: impl Fn(usize, &mut [u8]) + Sync,
) {
    assert_eq!(dst.len(), n_tokens * a_row, "quantize_tokens: buffer shape");
    if n_tokens < PARALLEL_QUANTIZE_MIN || pool.n_threads() == 1 {
        for (t, row) in dst.chunks_exact_mut(a_row).enumerate() {
            one(t, row);
        }
        return;
    }
    let out = SharedMut::new(dst);
    let (n_chunks, per) = chunking(n_tokens, pool.n_threads(), 1, 4);
    pool.run_chunks(n_chunks, |c, _thread| {
        for t in c * per..((c + 1) * per).min(n_tokens) {
            // SAFETY: row t (bytes t·a_row .. (t + 1)·a_row, inside `dst` by the assert) is
            // written by this chunk only.
            one(t, unsafe { out.slice(t * a_row, a_row) });
        }
    });
}

/// Bytes of quantized activations per token tile of the repacked path (a share of L2).
const REPACKED_TILE_BYTES: usize = 128 * 1024;

/// Bytes of quantized activations per token tile (a share of a 32 KiB L1 data cache).
const TILE_BYTES: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_batches_quantize_on_every_thread_to_the_same_bytes() {
        let cols = 96;
        let k = Kernels::detect();
        let q = k.quantize(GgmlType::Q8_0).expect("q8_0 quantizer");
        let a_row = owl_quant::row_bytes(GgmlType::Q8_0, cols);
        for n_tokens in [1, 7, 8, 9, 33] {
            let x: Vec<f32> = (0..n_tokens * cols)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let mut want = vec![0u8; n_tokens * a_row];
            for (t, row) in want.chunks_exact_mut(a_row).enumerate() {
                q(&x[t * cols..(t + 1) * cols], row);
            }
            for threads in [1, 2, 3] {
                let pool = ThreadPool::new(threads);
                let mut got = vec![0u8; n_tokens * a_row];
                let seen = std::sync::atomic::AtomicUsize::new(0);
                quantize_tokens(&pool, n_tokens, a_row, &mut got, |t, row| {
                    seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    q(&x[t * cols..(t + 1) * cols], row)
                });
                assert_eq!(got, want, "{n_tokens} tokens, {threads} threads");
                assert_eq!(seen.into_inner(), n_tokens, "each row once");
            }
        }
    }
}
