//! `bert`: BERT-family encoders (all-MiniLM, BGE, E5, ms-marco and bge-reranker
//! cross-encoders) as llama.cpp's converter writes them.
//!
//! Token, token-type and absolute position embeddings with a LayerNorm; post-norm layers with
//! biased Q/K/V/output projections and a GELU FFN (`crate::encoder`). `bert.pooling_type`
//! picks the pooling (mean for sentence transformers, CLS for BGE, rank for cross-encoders,
//! whose `cls` / `cls.output` tensors are the classification head). No RoPE, no KV cache.

use owl_kernels::rope::{RopeConfig, RopeOrder};

use crate::blocks::layer_norm::LayerNorm;
use crate::encoder::{Affine, Encoder, EncoderLayer};
use crate::hparams::{positive_dim, HParams};
use crate::loader::Loader;
use crate::pooling::Pooling;
use crate::{Model, ModelError};

const ARCH: &str = "bert";

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let g = ld.file;
    let key = |k: &str| format!("{ARCH}.{k}");
    let req = |k: &str| positive_dim(g, &key(k));
    let n_layer = req("block_count")?;
    let n_embd = req("embedding_length")?;
    let n_ff = req("feed_forward_length")?;
    let n_head = req("attention.head_count")?;
    let n_ctx_train = req("context_length")?;
    if n_embd % n_head != 0 {
        return Err(ModelError::BadKey {
            key: key("attention.head_count"),
            why: format!("{n_head} heads do not divide {n_embd}"),
        });
    }
    let eps = g
        .get_f32(&key("attention.layer_norm_epsilon"))
        .ok_or(ModelError::MissingKey(key("attention.layer_norm_epsilon")))?;
    let n_vocab = g
        .tensor("token_embd.weight")
        .and_then(|t| t.dims.get(1).map(|&d| d as usize))
        .ok_or(ModelError::MissingTensor("token_embd.weight".into()))?;
    let head_dim = n_embd / n_head;
    let pooling = Pooling::from_gguf(g, ARCH)?;
    let hp = HParams {
        arch: ARCH.into(),
        n_layer,
        n_embd,
        n_ff,
        n_head,
        n_head_kv: n_head,
        head_dim,
        n_vocab,
        n_ctx_train,
        rms_eps: eps,
        rope: RopeConfig::new(head_dim, 10000.0, 1.0, RopeOrder::Normal),
        pooling,
    };
    let norm = |name: &str| -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm {
            weight: ld.vector(&format!("{name}.weight"), n_embd)?,
            bias: ld.vector(&format!("{name}.bias"), n_embd)?,
            eps,
        })
    };
    let affine = |name: &str, cols: usize, rows: usize| -> Result<Affine, ModelError> {
        Ok(Affine {
            w: ld.matrix(&format!("{name}.weight"), cols, rows)?,
            b: ld.optional_vector(&format!("{name}.bias"), rows)?,
        })
    };
    let type_embd = if ld.has("token_types.weight") {
        let n_types = g
            .tensor("token_types.weight")
            .and_then(|t| t.dims.get(1).copied())
            .unwrap_or(0) as usize;
        let all = ld.vectors("token_types.weight", n_embd, n_types.max(1))?;
        Some(all[..n_embd].to_vec())
    } else {
        None
    };
    let layers = (0..n_layer)
        .map(|i| {
            let b = |s: &str| format!("blk.{i}.{s}");
            Ok(EncoderLayer {
                q: affine(&b("attn_q"), n_embd, n_embd)?,
                k: affine(&b("attn_k"), n_embd, n_embd)?,
                v: affine(&b("attn_v"), n_embd, n_embd)?,
                o: affine(&b("attn_output"), n_embd, n_embd)?,
                attn_out_norm: norm(&b("attn_output_norm"))?,
                up: affine(&b("ffn_up"), n_embd, n_ff)?,
                down: affine(&b("ffn_down"), n_ff, n_embd)?,
                out_norm: norm(&b("layer_output_norm"))?,
            })
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    let cls = if ld.has("cls.weight") {
        Some(affine("cls", n_embd, n_embd)?)
    } else {
        None
    };
    let cls_out = match g.tensor("cls.output.weight") {
        Some(t) => {
            let n_out = t.dims.get(1).copied().unwrap_or(0) as usize;
            Some(affine("cls.output", n_embd, n_out.max(1))?)
        }
        None => None,
    };
    let pooling = pooling.unwrap_or(Pooling::Mean);
    if pooling == Pooling::Rank && cls.is_none() && cls_out.is_none() {
        return Err(ModelError::MissingTensor(
            "cls.output.weight (rank pooling needs a classification head)".into(),
        ));
    }
    Ok(Box::new(Encoder {
        hp,
        pooling,
        token_embd: ld.token_embd(n_embd, n_vocab)?,
        type_embd,
        pos_embd: ld.position_embd(n_embd, n_ctx_train)?,
        embd_norm: norm("token_embd_norm")?,
        layers,
        cls,
        cls_out,
    }))
}
