//! `gemma3`: Google's Gemma 3 text models (llama.cpp's LLM_ARCH_GEMMA3, `src/models/gemma3.cpp`).
//!
//! Gemma 3 is not the shared pre-norm decoder, so it has its own short forward pass built from
//! the shared blocks rather than options on `decoder.rs`:
//! - the token embeddings are scaled by `sqrt(n_embd)`;
//! - each half of a layer is sandwiched between two RMSNorms: `x += post(attn(pre(x)))`, and
//!   the same for the FFN (`attn_post_norm`, `ffn_post_norm`). Gemma's norms multiply by
//!   `1 + w`; llama.cpp's converter already adds the 1 into the GGUF weights (`norm_shift`), so
//!   they are plain RMSNorms here;
//! - attention is GQA with per-head Q/K RMSNorm before NeoX RoPE, and Q scaled by
//!   `1/sqrt(head_dim)` before it meets the cache (27B: `1/sqrt(n_embd / n_head)`), the scores
//!   not scaled again;
//! - with `attention.sliding_window` present, five of every six layers (`load_swa_pattern(ml,
//!   6)`, or the file's `sliding_window_pattern`) attend over that window only, with their own
//!   RoPE base (`rope.freq_base_swa`, default 10000) and no frequency scaling (llama.cpp's
//!   `rope_freq_scale_train_swa` is 1); the others see everything with the model's RoPE;
//! - the FFN is GELU-gated (`blocks/geglu.rs`);
//! - the output head is tied to the embeddings unless the file has `output.weight`, and the
//!   logits are soft-capped, `cap * tanh(logit / cap)`, when `final_logit_softcapping` is set.

use owl_kernels::rope::{RopeConfig, RopeOrder};
use owl_kernels::QMatrix;

use super::dense::rms;
use crate::batch::{Batch, Logits};
use crate::blocks::ffn::FfnScratch;
use crate::blocks::geglu::GeGluFfn;
use crate::blocks::gqa::{AttnScratch, Gqa, QkNorm};
use crate::blocks::norm::RmsNorm;
use crate::decoder::{embed, head};
use crate::hparams::{swa_layers, HParams};
use crate::keys::Keys;
use crate::kv_cache::KvCache;
use crate::loader::Loader;
use crate::scratch::{Buffers, Compute, Dims};
use crate::tensors::part::{ATTN_NORM, ATTN_POST_NORM, FFN_NORM, OUTPUT_NORM};
use crate::{Model, ModelError};

const ARCH: &str = "gemma3";

struct Layer {
    attn_norm: RmsNorm,
    attn: Gqa,
    attn_post_norm: RmsNorm,
    ffn_norm: RmsNorm,
    ffn: GeGluFfn,
    ffn_post_norm: RmsNorm,
}

pub struct Gemma3 {
    hp: HParams,
    /// [n_vocab, n_embd]
    token_embd: QMatrix,
    layers: Vec<Layer>,
    output_norm: RmsNorm,
    /// [n_vocab, n_embd]; shares bytes with `token_embd` unless the file has `output.weight`.
    output: QMatrix,
    /// `final_logit_softcapping`, when set and non-zero.
    softcap: Option<f32>,
}

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let hp = HParams::from_gguf(ld.file, ARCH, RopeOrder::Neox)?;
    let keys = Keys::new(ld.file, ARCH);
    let e = hp.n_embd;
    let n_ff = hp.dense_ff()?;
    let window = keys.sliding_window()?;
    let swa = match window {
        Some(_) => swa_layers(ld.file, ARCH, hp.n_layer, 6, false)?,
        None => vec![false; hp.n_layer],
    };
    let base_swa = keys.f32_or("rope.freq_base_swa", 10000.0)?;
    let mut rope_swa = RopeConfig::new(hp.rope.n_dims, base_swa, 1.0, RopeOrder::Neox);
    rope_swa.attn_factor = hp.rope.attn_factor;
    // gemma_pytorch's query_pre_attn_scalar: n_embd / n_head for the 27B (62 layers).
    let q_scale = if hp.n_layer == 62 {
        1.0 / ((e / hp.n_head) as f32).sqrt()
    } else {
        1.0 / (hp.head_dim as f32).sqrt()
    };
    let softcap = keys.f32("final_logit_softcapping")?.filter(|&c| c != 0.0);
    let mut layers = Vec::with_capacity(hp.n_layer);
    for (i, &slides) in swa.iter().enumerate() {
        let t = ld.layer(i);
        layers.push(Layer {
            attn_norm: rms(&t, ATTN_NORM, &hp)?,
            attn: Gqa {
                qk_norm: Some(QkNorm::load(&t, hp.head_dim, hp.rms_eps)?),
                window: if slides { window } else { None },
                rope: if slides {
                    rope_swa.clone()
                } else {
                    hp.rope.clone()
                },
                q_scale: Some(q_scale),
                ..Gqa::load(&t, &hp)?
            },
            attn_post_norm: rms(&t, ATTN_POST_NORM, &hp)?,
            ffn_norm: rms(&t, FFN_NORM, &hp)?,
            ffn: GeGluFfn::load(&t, e, n_ff)?,
            ffn_post_norm: rms(&t, "post_ffw_norm", &hp)?,
        });
    }
    let (token_embd, output) = ld.embeddings(e, hp.n_vocab)?;
    Ok(Box::new(Gemma3 {
        output_norm: rms(&ld.root(), OUTPUT_NORM, &hp)?,
        token_embd,
        output,
        layers,
        softcap,
        hp,
    }))
}

impl Model for Gemma3 {
    fn hparams(&self) -> &HParams {
        &self.hp
    }

    fn new_paged_cache_with_rollback(
        &self,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        max_chunk: usize,
        rollback: usize,
    ) -> KvCache {
        let windows: Vec<Option<usize>> = self.layers.iter().map(|l| l.attn.window).collect();
        let kv_dim = self.hp.kv_dim();
        KvCache::windowed_with_rollback(
            &windows, kv_dim, n_ctx, n_slots, n_pages, max_chunk, rollback,
        )
    }

    fn weights(&self) -> Vec<(&'static str, &QMatrix)> {
        let mut w = vec![("token_embd", &self.token_embd)];
        for l in &self.layers {
            w.extend([
                ("attn_q", &l.attn.wq),
                ("attn_k", &l.attn.wk),
                ("attn_v", &l.attn.wv),
                ("attn_output", &l.attn.wo),
                ("ffn_gate", &l.ffn.gate),
                ("ffn_up", &l.ffn.up),
                ("ffn_down", &l.ffn.down),
            ]);
        }
        w.push(("output", &self.output));
        w
    }

    fn forward(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        kv: &mut KvCache,
        buf: &mut Buffers,
        logits: &mut Logits,
    ) -> Result<(), ModelError> {
        let n = batch.n_tokens();
        let e = self.hp.n_embd;
        let dims = Dims {
            n_embd: e,
            q_dim: self.hp.q_dim(),
            kv_dim: self.hp.kv_dim(),
            n_ff: self.hp.n_ff,
            head_dim: self.hp.head_dim,
        };
        embed(&self.hp, &self.token_embd, batch, kv, buf, &dims)?;
        // [n, n_embd]
        let scale = (e as f32).sqrt();
        for v in &mut buf.x[..n * e] {
            *v *= scale;
        }
        cx.trace("inp_scaled", None, &buf.x[..n * e]);
        for (li, layer) in self.layers.iter().enumerate() {
            let x = &mut buf.x[..n * e];
            let h = &mut buf.h[..n * e];
            let o = &mut buf.o[..n * e];
            layer.attn_norm.forward(x, h);
            cx.trace("attn_norm", Some(li), h);
            let scratch = AttnScratch {
                layer: li,
                q: &mut buf.q,
                k: &mut buf.k,
                v: &mut buf.v,
                attn: &mut buf.attn,
                scores: &mut buf.attn_scores,
                f16s: &mut buf.attn_f16,
                cos_sin: &mut buf.cos_sin,
                act: &mut buf.act,
            };
            layer.attn.forward(cx, batch, kv, h, o, scratch);
            layer.attn_post_norm.forward(o, h);
            cx.trace("attn_post_norm", Some(li), h);
            for (a, b) in x.iter_mut().zip(h.iter()) {
                *a += *b;
            }
            cx.trace("sa_out", Some(li), x);
            layer.ffn_norm.forward(x, h);
            cx.trace("ffn_norm", Some(li), h);
            let scratch = FfnScratch {
                layer: li,
                gate: &mut buf.ff_a,
                up: &mut buf.ff_b,
                act: &mut buf.act,
            };
            layer.ffn.forward(cx, h, n, o, scratch);
            cx.trace("ffn_out", Some(li), o);
            layer.ffn_post_norm.forward(o, h);
            cx.trace("ffn_post_norm", Some(li), h);
            for (a, b) in x.iter_mut().zip(h.iter()) {
                *a += *b;
            }
            cx.trace("l_out", Some(li), x);
        }
        let n_out = head(
            cx,
            &self.hp,
            &self.output_norm,
            &self.output,
            batch,
            buf,
            logits,
        );
        if let (Some(cap), false) = (self.softcap, logits.hidden) {
            // ggml_scale by 1/cap, ggml_tanh, ggml_scale by cap.
            let inv = 1.0 / cap;
            let rows = &mut logits.data[..n_out * logits.n_vocab];
            for v in rows.iter_mut() {
                *v = (*v * inv).tanh() * cap;
            }
            cx.trace("result_output", None, rows);
        }
        Ok(())
    }
}
