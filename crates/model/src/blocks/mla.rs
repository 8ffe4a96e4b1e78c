//! Multi-head latent attention (DeepSeek-V2/V3/R1, Kimi K2), computed the "absorbed" way
//! llama.cpp computes it, so the KV cache holds only the compressed latent.
//!
//! Per token, `wkv_a` gives a latent of `kv_lora` values (RMS-normalised) and a shared RoPE key
//! part of `n_rot` values; that `kv_lora + n_rot` row is all the cache keeps (one row per
//! position and layer, `KvCache::new_latent`), instead of `n_head × (k_head + v_head)` expanded
//! values. Each query head's non-RoPE part is multiplied by its slice of `wk_b` into latent
//! space, so attention becomes multi-query attention with one shared KV head of width
//! `kv_lora + n_rot` and V = the latent; each head's latent output is expanded by its slice of
//! `wv_b`, then `wo` mixes the heads. Numerics follow llama.cpp's non-flash CPU path: f16 cache,
//! query rounded to f16, probabilities rounded to f16, V read from the latent transposed
//! (llama.cpp transposes its K view with `ggml_cont` for the same product).

use half::f16;
use owl_kernels::attention::{HeadOptions, KV_PAGE};
use owl_kernels::norm::rms_norm_in_place;
use owl_kernels::rope::RopeConfig;
use owl_kernels::{linear, linear_many, ActBuffer, QMatrix};

use crate::batch::Batch;
use crate::blocks::attend::HeadTasks;
use crate::kv_cache::KvCache;
use crate::scratch::Compute;

/// How queries are projected.
pub enum MlaQuery {
    /// One matrix `[n_head * k_head, n_embd]` (DeepSeek-V2-Lite).
    Direct(QMatrix),
    /// Low rank: `a` `[q_lora, n_embd]`, RMSNorm with `norm` `[q_lora]`, `b`
    /// `[n_head * k_head, q_lora]` (DeepSeek-V2/V3).
    LowRank {
        a: QMatrix,
        norm: Vec<f32>,
        b: QMatrix,
    },
}

pub struct Mla {
    pub q: MlaQuery,
    /// [kv_lora + n_rot, n_embd]: the latent and the shared RoPE key part.
    pub wkv_a: QMatrix,
    /// [kv_lora] RMSNorm weight of the latent.
    pub kv_norm: Vec<f32>,
    /// Per head `[kv_lora, nope]`: maps a query's non-RoPE part into latent space.
    pub wk_b: Vec<QMatrix>,
    /// Per head `[v_head, kv_lora]`: expands a head's latent output.
    pub wv_b: Vec<QMatrix>,
    /// [n_embd, n_head * v_head]
    pub wo: QMatrix,
    pub n_head: usize,
    /// Non-RoPE part of a query/key head.
    pub nope: usize,
    /// RoPE part of a query/key head (the rotated dims).
    pub n_rot: usize,
    pub kv_lora: usize,
    pub v_head: usize,
    pub eps: f32,
    /// RoPE of the `n_rot` dims.
    pub rope: RopeConfig,
    /// Scale of the attention scores.
    pub kq_scale: f32,
}

/// Grow-only working memory of the MLA block.
#[derive(Default)]
pub struct MlaBuffers {
    /// [n, q_lora]
    q_lora: Vec<f32>,
    /// [n, n_head * (nope + n_rot)]
    q: Vec<f32>,
    /// [n, kv_lora + n_rot]
    kv: Vec<f32>,
    /// [n, nope] one head's non-RoPE query part
    nope_in: Vec<f32>,
    /// [n, kv_lora] one head's latent query or latent output
    lat_h: Vec<f32>,
    /// [n, v_head] one head's expanded output
    v_h: Vec<f32>,
    /// [n, n_head, kv_lora + n_rot] absorbed queries
    q_abs: Vec<f32>,
    /// [n, n_head, kv_lora] attention output in latent space
    lat: Vec<f32>,
    /// [n, n_head * v_head]
    v_out: Vec<f32>,
    /// [n_pages][kv_lora][KV_PAGE] the latent transposed, by cache page id
    vt: Vec<f16>,
    /// Per-thread attention scores and queries (grown by `HeadTasks::run`)
    scores: Vec<f32>,
    /// Per-thread f16 probabilities and queries (grown by `HeadTasks::run`)
    f16s: Vec<f16>,
    /// [n_rot / 2]
    cos_sin: Vec<(f32, f32)>,
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

impl Mla {
    /// Width of a cached row (and of an absorbed query head).
    pub fn cache_width(&self) -> usize {
        self.kv_lora + self.n_rot
    }

    /// Attention for every token of `batch`: `h` [n, n_embd] in, `out` [n, n_embd] out.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        kv: &mut KvCache,
        layer: usize,
        h: &[f32],
        out: &mut [f32],
        b: &mut MlaBuffers,
        act: &mut ActBuffer,
    ) {
        let n = batch.n_tokens();
        let (nh, nope, rot, lora) = (self.n_head, self.nope, self.n_rot, self.kv_lora);
        let k_head = nope + rot;
        let width = lora + rot;
        grow(&mut b.q, n * nh * k_head);
        grow(&mut b.kv, n * width);
        let q = &mut b.q[..n * nh * k_head];
        let kvr = &mut b.kv[..n * width];

        // Projections: the query (direct or through its low-rank bottleneck) and the latent.
        match &self.q {
            MlaQuery::Direct(wq) => linear_many(
                cx.kernels,
                cx.pool,
                h,
                n,
                &mut [(wq, &mut *q), (&self.wkv_a, &mut *kvr)],
                act,
            ),
            MlaQuery::LowRank { a, norm, b: wq_b } => {
                let ql = a.rows;
                grow(&mut b.q_lora, n * ql);
                let qa = &mut b.q_lora[..n * ql];
                linear_many(
                    cx.kernels,
                    cx.pool,
                    h,
                    n,
                    &mut [(a, &mut *qa), (&self.wkv_a, &mut *kvr)],
                    act,
                );
                for row in qa.chunks_exact_mut(ql) {
                    rms_norm_in_place(row, norm, self.eps);
                }
                linear(cx.kernels, cx.pool, wq_b, qa, n, q, act);
            }
        }
        cx.trace("q", Some(layer), q);
        cx.trace("kv_cmpr_pe", Some(layer), kvr);

        // Latent: RMSNorm. Key RoPE part and query RoPE parts: rotated at their positions.
        grow(&mut b.cos_sin, rot / 2);
        let cos_sin = &mut b.cos_sin[..rot / 2];
        let fused = cx.kernels.rope_fused();
        for c in &batch.chunks {
            for i in 0..c.len {
                let row = c.start + i;
                let pos = c.pos0 + i;
                let kr = &mut kvr[row * width..(row + 1) * width];
                rms_norm_in_place(&mut kr[..lora], &self.kv_norm, self.eps);
                self.rope.angles(pos as u32, cos_sin, fused);
                self.rope.apply(&mut kr[lora..], rot, cos_sin, fused);
                let qr = &mut q[row * nh * k_head..(row + 1) * nh * k_head];
                for head in qr.chunks_exact_mut(k_head) {
                    self.rope.apply(&mut head[nope..], rot, cos_sin, fused);
                }
                kv.store_with(cx.kernels.scale_to_f16(), c.slot, layer, pos, kr, &[]);
            }
        }
        cx.trace("Kcur", Some(layer), kvr);

        // Absorbed queries: [latent query of the head | its RoPE part].
        grow(&mut b.q_abs, n * nh * width);
        grow(&mut b.nope_in, n * nope);
        grow(&mut b.lat_h, n * lora);
        let q_abs = &mut b.q_abs[..n * nh * width];
        for hd in 0..nh {
            let nope_in = &mut b.nope_in[..n * nope];
            for t in 0..n {
                let src = (t * nh + hd) * k_head;
                nope_in[t * nope..(t + 1) * nope].copy_from_slice(&q[src..src + nope]);
            }
            let lat_q = &mut b.lat_h[..n * lora];
            linear(cx.kernels, cx.pool, &self.wk_b[hd], nope_in, n, lat_q, act);
            for t in 0..n {
                let dst = (t * nh + hd) * width;
                q_abs[dst..dst + lora].copy_from_slice(&lat_q[t * lora..(t + 1) * lora]);
                let src = (t * nh + hd) * k_head + nope;
                q_abs[dst + lora..dst + width].copy_from_slice(&q[src..src + rot]);
            }
        }
        cx.trace("Qcur", Some(layer), q_abs);

        // V is the latent: transpose each sequence's pages once for all heads and tokens.
        grow(&mut b.vt, kv.n_pages() * lora * KV_PAGE);
        for c in &batch.chunks {
            kv.transpose_latent(c.slot, layer, lora, &mut b.vt);
        }

        grow(&mut b.lat, n * nh * lora);
        let tasks = HeadTasks {
            n_head: nh,
            // One latent for every head: they all read the same cached rows.
            group: nh,
            q_width: width,
            out_width: lora,
            scale: self.kq_scale,
            n_pad: kv.n_ctx_pad(),
        };
        let lat = &mut b.lat[..n * nh * lora];
        let (vt, kv) = (&b.vt[..], &*kv);
        tasks.run(
            cx,
            batch,
            q_abs,
            lat,
            &mut b.scores,
            &mut b.f16s,
            |slot, _head| kv.latent_view(slot, layer, vt, lora),
            |_head, _pos| HeadOptions::default(),
        );
        cx.trace("kqv", Some(layer), lat);

        // Expand each head's latent output, then mix the heads.
        let vh = self.v_head;
        grow(&mut b.v_h, n * vh);
        grow(&mut b.v_out, n * nh * vh);
        let v_out = &mut b.v_out[..n * nh * vh];
        for hd in 0..nh {
            let lat_h = &mut b.lat_h[..n * lora];
            for t in 0..n {
                let src = (t * nh + hd) * lora;
                lat_h[t * lora..(t + 1) * lora].copy_from_slice(&lat[src..src + lora]);
            }
            let v_h = &mut b.v_h[..n * vh];
            linear(cx.kernels, cx.pool, &self.wv_b[hd], lat_h, n, v_h, act);
            for t in 0..n {
                let dst = (t * nh + hd) * vh;
                v_out[dst..dst + vh].copy_from_slice(&v_h[t * vh..(t + 1) * vh]);
            }
        }
        cx.trace("kqv_out", Some(layer), v_out);
        linear(cx.kernels, cx.pool, &self.wo, v_out, n, out, act);
    }
}
