//! `bert`: BERT-family encoders (all-MiniLM, BGE, E5, ms-marco and bge-reranker
//! cross-encoders) as llama.cpp's converter writes them.
//!
//! Token, token-type and absolute position embeddings with a LayerNorm; post-norm layers with
//! biased Q/K/V/output projections and a GELU FFN (`crate::encoder`). `bert.pooling_type`
//! picks the pooling (mean for sentence transformers, CLS for BGE, rank for cross-encoders,
//! whose `cls` / `cls.output` tensors are the classification head). No RoPE, no KV cache.
//!
//! The loader is shared with `nomic-bert` (`arch/nomic_bert.rs`), which llama.cpp builds with
//! the same graph: an [`EncoderSpec`] states what differs (RoPE instead of position rows, a
//! fused `attn_qkv`, a SwiGLU FFN without biases).

use owl_kernels::rope::{RopeConfig, RopeOrder};

use crate::blocks::layer_norm::LayerNorm;
use crate::encoder::{Encoder, EncoderLayer, Positions};
use crate::hparams::HParams;
use crate::keys::Keys;
use crate::loader::Loader;
use crate::pooling::{ClassifierHead, Pooling};
use crate::{Model, ModelError};

/// What distinguishes one encoder family from another.
pub(super) struct EncoderSpec {
    /// The GGUF `general.architecture` value, also the metadata key prefix.
    pub arch: &'static str,
    /// RoPE (NeoX pairing, `{arch}.rope.freq_base`) on Q and K instead of `position_embd`.
    pub rope: bool,
    /// A gated SiLU FFN (`ffn_gate`, `ffn_up`, `ffn_down`) instead of BERT's GELU one.
    pub swiglu: bool,
}

const BERT: EncoderSpec = EncoderSpec {
    arch: "bert",
    rope: false,
    swiglu: false,
};

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    load_encoder(ld, &BERT)
}

pub(super) fn load_encoder(
    ld: &Loader<'_>,
    spec: &EncoderSpec,
) -> Result<Box<dyn Model>, ModelError> {
    let arch = spec.arch;
    let keys = Keys::new(ld.file, arch);
    let n_layer = keys.dim_req("block_count")?;
    let n_embd = keys.dim_req("embedding_length")?;
    let n_ff = keys.dim_req("feed_forward_length")?;
    let n_head = keys.dim_req("attention.head_count")?;
    let n_ctx_train = keys.dim_req("context_length")?;
    if n_embd % n_head != 0 {
        return Err(ModelError::BadKey {
            key: keys.name("attention.head_count"),
            why: format!("{n_head} heads do not divide {n_embd}"),
        });
    }
    let eps = keys.f32_req("attention.layer_norm_epsilon")?;
    let root = ld.root();
    let dim = |part: &str, i: usize| -> Option<usize> {
        root.dims(part).and_then(|d| d.get(i).map(|&n| n as usize))
    };
    let n_vocab =
        dim("token_embd", 1).ok_or(ModelError::MissingTensor("token_embd.weight".into()))?;
    let head_dim = n_embd / n_head;
    let pooling = Pooling::from_gguf(ld.file, arch)?;
    let rope = RopeConfig::new(
        head_dim,
        keys.f32_or("rope.freq_base", 10000.0)?,
        1.0,
        if spec.rope {
            RopeOrder::Neox
        } else {
            RopeOrder::Normal
        },
    );
    let hp = HParams {
        arch: arch.into(),
        n_layer,
        n_embd,
        n_ff,
        n_head,
        n_head_kv: n_head,
        head_dim,
        n_vocab,
        n_ctx_train,
        rms_eps: eps,
        rope: rope.clone(),
        pooling,
    };
    // Only the first token type is ever used (llama.cpp's `bert` graph adds type 0).
    let type_embd = match dim("token_types", 1) {
        Some(n_types) => {
            let all = root.vectors("token_types", n_embd, n_types.max(1))?;
            Some(all[..n_embd].to_vec())
        }
        None => None,
    };
    let layers = (0..n_layer)
        .map(|i| {
            let t = ld.layer(i);
            if spec.swiglu {
                EncoderLayer::load_swiglu(&t, n_embd, n_ff, eps)
            } else {
                EncoderLayer::load(&t, n_embd, n_ff, eps)
            }
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    let pooling = pooling.unwrap_or(Pooling::Mean);
    let head = if pooling == Pooling::Rank {
        Some(ClassifierHead::load(&root, n_embd, false)?)
    } else {
        None
    };
    Ok(Box::new(Encoder {
        hp,
        pooling,
        token_embd: ld.token_embd(n_embd, n_vocab)?,
        type_embd,
        positions: if spec.rope {
            Positions::Rope {
                rope,
                n_pos: n_ctx_train,
            }
        } else {
            Positions::Absolute(ld.position_embd(n_embd, n_ctx_train)?)
        },
        embd_norm: LayerNorm::load(&root, "token_embd_norm", n_embd, eps)?,
        layers,
        head,
    }))
}
