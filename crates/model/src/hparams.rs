//! Hyper-parameters read from GGUF metadata (`{arch}.*` keys), validated once at load.

use owl_gguf::GgufFile;
use owl_kernels::rope::{RopeConfig, RopeOrder};

use crate::ModelError;

/// Shapes and constants of a decoder-only transformer.
#[derive(Clone, Debug)]
pub struct HParams {
    pub arch: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    pub rope: RopeConfig,
}

impl HParams {
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Reads the hyper-parameters of architecture `arch` (whose RoPE pairing is `order`).
    pub fn from_gguf(g: &GgufFile, arch: &str, order: RopeOrder) -> Result<HParams, ModelError> {
        let key = |k: &str| format!("{arch}.{k}");
        let req = |k: &str| -> Result<usize, ModelError> {
            let full = key(k);
            let v = g
                .get_u64(&full)
                .ok_or(ModelError::MissingKey(full.clone()))?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0 && v < (1 << 24))
                .ok_or(ModelError::BadKey {
                    key: full,
                    why: format!("{v} is out of range"),
                })
        };
        let n_layer = req("block_count")?;
        let n_embd = req("embedding_length")?;
        let n_ff = req("feed_forward_length")?;
        let n_head = req("attention.head_count")?;
        let n_head_kv = if g.get(&key("attention.head_count_kv")).is_some() {
            req("attention.head_count_kv")?
        } else {
            n_head
        };
        let head_dim = if g.get(&key("attention.key_length")).is_some() {
            req("attention.key_length")?
        } else {
            n_embd / n_head
        };
        if n_head % n_head_kv != 0 {
            return Err(ModelError::BadKey {
                key: key("attention.head_count_kv"),
                why: format!("{n_head} heads are not a multiple of {n_head_kv} KV heads"),
            });
        }
        let n_ctx_train = g.get_u64(&key("context_length")).unwrap_or(2048) as usize;
        let rms_eps =
            g.get_f32(&key("attention.layer_norm_rms_epsilon"))
                .ok_or(ModelError::MissingKey(key(
                    "attention.layer_norm_rms_epsilon",
                )))?;
        let n_dims = if g.get(&key("rope.dimension_count")).is_some() {
            req("rope.dimension_count")?
        } else {
            head_dim
        };
        if n_dims > head_dim || n_dims % 2 != 0 {
            return Err(ModelError::BadKey {
                key: key("rope.dimension_count"),
                why: format!("{n_dims} rotated dims for heads of {head_dim}"),
            });
        }
        let freq_base = g.get_f32(&key("rope.freq_base")).unwrap_or(10000.0);
        let scaling = g
            .get_str(&key("rope.scaling.type"))
            .unwrap_or("none")
            .to_string();
        let factor = g.get_f32(&key("rope.scaling.factor")).unwrap_or(1.0);
        let freq_scale = match scaling.as_str() {
            "linear" if factor > 0.0 => 1.0 / factor,
            "none" | "linear" => 1.0,
            other => {
                return Err(ModelError::BadKey {
                    key: key("rope.scaling.type"),
                    why: format!("RoPE scaling '{other}' is not supported yet"),
                })
            }
        };
        let n_vocab = match g.get_u64(&key("vocab_size")) {
            Some(v) => v as usize,
            None => g
                .get_array("tokenizer.ggml.tokens")
                .map(|a| a.len())
                .or_else(|| {
                    g.tensor("token_embd.weight")
                        .and_then(|t| t.dims.get(1).map(|&d| d as usize))
                })
                .ok_or(ModelError::MissingKey(key("vocab_size")))?,
        };
        Ok(HParams {
            arch: arch.to_string(),
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            n_vocab,
            n_ctx_train,
            rms_eps,
            rope: RopeConfig {
                n_dims,
                freq_base,
                freq_scale,
                order,
                freq_factors: None,
            },
        })
    }
}
