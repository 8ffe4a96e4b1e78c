//! Hyper-parameters read from GGUF metadata (`{arch}.*` keys), validated once at load.

use owl_gguf::GgufFile;
use owl_kernels::rope::{RopeConfig, RopeOrder, YarnParams};

use crate::keys::Keys;
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
    /// `{arch}.pooling_type`, when the file states one (embedding models).
    pub pooling: Option<crate::pooling::Pooling>,
}

impl HParams {
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// The width of the dense FFN layers: `feed_forward_length`, required once a model has
    /// a dense layer.
    pub fn dense_ff(&self) -> Result<usize, ModelError> {
        if self.n_ff == 0 {
            return Err(ModelError::MissingKey(format!(
                "{}.feed_forward_length",
                self.arch
            )));
        }
        Ok(self.n_ff)
    }

    /// Reads the hyper-parameters of architecture `arch` (whose RoPE pairing is `order`).
    pub fn from_gguf(g: &GgufFile, arch: &str, order: RopeOrder) -> Result<HParams, ModelError> {
        let keys = Keys::new(g, arch);
        let n_layer = keys.dim_req("block_count")?;
        let n_embd = keys.dim_req("embedding_length")?;
        // Optional, as in llama.cpp (0 when absent): a model whose every layer is a mixture
        // of experts has no dense FFN to size. Dense layers ask `dense_ff`.
        let n_ff = keys.dim_or("feed_forward_length", 0)?;
        let n_head = keys.dim_req("attention.head_count")?;
        let n_head_kv = keys.dim_or("attention.head_count_kv", n_head)?;
        let head_dim = keys.dim_or("attention.key_length", n_embd / n_head)?;
        if n_head % n_head_kv != 0 {
            return Err(ModelError::BadKey {
                key: keys.name("attention.head_count_kv"),
                why: format!("{n_head} heads are not a multiple of {n_head_kv} KV heads"),
            });
        }
        let n_ctx_train = keys.dim_or("context_length", 2048)?;
        let rms_eps = keys.f32_req("attention.layer_norm_rms_epsilon")?;
        let n_dims = keys.dim_or("rope.dimension_count", head_dim)?;
        if n_dims > head_dim || n_dims % 2 != 0 {
            return Err(ModelError::BadKey {
                key: keys.name("rope.dimension_count"),
                why: format!("{n_dims} rotated dims for heads of {head_dim}"),
            });
        }
        let freq_base = keys.f32_or("rope.freq_base", 10000.0)?;
        let yarn = YarnParams::default();
        let rope = rope_from_gguf(g, arch, n_dims, freq_base, order, n_ctx_train, yarn)?;
        let n_vocab = match keys.dim("vocab_size")? {
            Some(v) => v,
            None => g
                .get_array("tokenizer.ggml.tokens")
                .map(|a| a.len())
                .or_else(|| {
                    g.tensor("token_embd.weight")
                        .and_then(|t| t.dims.get(1).map(|&d| d as usize))
                })
                .ok_or(ModelError::MissingKey(keys.name("vocab_size")))?,
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
            rope,
            pooling: crate::pooling::Pooling::from_gguf(g, arch)?,
        })
    }
}

/// RoPE scaling as llama.cpp derives it (`llama_model::load_hparams`, `llama_context`): the
/// type defaults to linear; the factor (`rope.scaling.factor`, else the old
/// `rope.scale_linear`, 0 meaning none) gives `freq_scale = 1/factor` unless the type is
/// `none`; `yarn` adds ext_factor 1, the original context
/// (`rope.scaling.original_context_length`, else the training context) and llama.cpp's YaRN
/// attention factor; `rope.scaling.attn_factor` multiplies the magnitude in every case.
/// The betas, log multiplier and mscale come from `yarn` (llama.cpp's defaults 32, 1, 0, 1 in
/// `YarnParams::default()`: its generic loader does not read them; architectures that do, like
/// DeepSeek-V2's log multiplier, pass their own); its `n_ctx_orig` is filled in here.
pub fn rope_from_gguf(
    g: &GgufFile,
    arch: &str,
    n_dims: usize,
    freq_base: f32,
    order: RopeOrder,
    n_ctx_train: usize,
    yarn: YarnParams,
) -> Result<RopeConfig, ModelError> {
    let keys = Keys::new(g, arch);
    let key = |k: &str| keys.name(k);
    let scaling = keys.str("rope.scaling.type")?.unwrap_or("linear");
    let factor = match keys.f32("rope.scaling.factor")? {
        Some(f) => f,
        None => keys.f32_or("rope.scale_linear", 0.0)?,
    };
    if factor < 0.0 {
        return Err(ModelError::BadKey {
            key: key("rope.scaling.factor"),
            why: format!("{factor} is not a scaling factor"),
        });
    }
    let train_scale = if factor == 0.0 { 1.0 } else { 1.0 / factor };
    let attn = keys.f32_or("rope.scaling.attn_factor", 1.0)?;
    let mut rope = match scaling {
        "none" => RopeConfig::new(n_dims, freq_base, 1.0, order),
        "linear" => RopeConfig::new(n_dims, freq_base, train_scale, order),
        "yarn" => {
            let orig = match keys.count("rope.scaling.original_context_length")? {
                Some(v) if v > 0 => v,
                _ => n_ctx_train,
            };
            let n_ctx_orig = u32::try_from(orig).map_err(|_| ModelError::BadKey {
                key: key("rope.scaling.original_context_length"),
                why: format!("{orig} is out of range"),
            })?;
            let yarn = YarnParams { n_ctx_orig, ..yarn };
            RopeConfig::new(n_dims, freq_base, train_scale, order).with_yarn(&yarn)
        }
        other => {
            return Err(ModelError::BadKey {
                key: key("rope.scaling.type"),
                why: format!("RoPE scaling '{other}' is not supported yet"),
            })
        }
    };
    rope.attn_factor *= attn;
    Ok(rope)
}

/// Which layers use sliding-window attention, as llama.cpp's `load_swa_pattern`: the
/// `{arch}.attention.sliding_window_pattern` key as a per-layer array (missing entries are
/// full attention), else as a period `n` (default `default_period`) for `set_swa_pattern`:
/// layer `il` slides when `n == 0 || il % n < n - 1` (with `dense_first`, `il % n != 0`).
pub fn swa_layers(
    g: &GgufFile,
    arch: &str,
    n_layer: usize,
    default_period: u32,
    dense_first: bool,
) -> Result<Vec<bool>, ModelError> {
    let key = format!("{arch}.attention.sliding_window_pattern");
    if let Some(arr) = g.get_array(&key) {
        let mut out = vec![false; n_layer];
        for (slot, v) in out.iter_mut().zip(arr) {
            *slot = v
                .as_bool()
                .or_else(|| v.as_u64().map(|x| x != 0))
                .ok_or_else(|| ModelError::BadKey {
                    key: key.clone(),
                    why: format!(
                        "entries must be booleans or integers, not {}",
                        v.type_name()
                    ),
                })?;
        }
        return Ok(out);
    }
    let n = match g.get(&key) {
        None => default_period,
        Some(v) => v
            .as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| ModelError::BadKey {
                key: key.clone(),
                why: format!("expected a period or an array, not {}", v.type_name()),
            })?,
    };
    Ok((0..n_layer as u64)
        .map(|il| {
            let n = n as u64;
            if dense_first {
                n == 0 || il % n != 0
            } else {
                n == 0 || il % n < n - 1
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use owl_gguf::Value;

    use super::*;
    use crate::keys::tests::file;

    fn rope(kvs: &[(&str, Value)]) -> Result<RopeConfig, ModelError> {
        let yarn = YarnParams::default();
        rope_from_gguf(&file(kvs), "t", 64, 150000.0, RopeOrder::Neox, 131072, yarn)
    }

    #[test]
    fn feed_forward_length_is_needed_only_by_dense_layers() {
        let mut kvs = vec![
            ("t.block_count", Value::U32(2)),
            ("t.embedding_length", Value::U32(32)),
            ("t.attention.head_count", Value::U32(4)),
            ("t.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
            ("t.vocab_size", Value::U32(256)),
        ];
        let hp = HParams::from_gguf(&file(&kvs), "t", RopeOrder::Normal).expect("no n_ff");
        assert_eq!(hp.n_ff, 0);
        assert!(
            matches!(hp.dense_ff(), Err(ModelError::MissingKey(k)) if k == "t.feed_forward_length")
        );
        kvs.push(("t.feed_forward_length", Value::U32(96)));
        let hp = HParams::from_gguf(&file(&kvs), "t", RopeOrder::Normal).expect("n_ff");
        assert_eq!(hp.dense_ff().expect("n_ff"), 96);
    }

    #[test]
    fn swa_pattern_as_llama_cpp_sets_it() {
        let g = file(&[]);
        // gpt-oss: load_swa_pattern(ml, 2): even layers slide.
        let want = [true, false, true, false, true];
        assert_eq!(swa_layers(&g, "t", 5, 2, false).expect("ok"), want);
        let g = file(&[("t.attention.sliding_window_pattern", Value::U32(3))]);
        let want = [true, true, false, true, true, false];
        assert_eq!(swa_layers(&g, "t", 6, 2, false).expect("ok"), want);
        let want = [false, true, true, false, true, true];
        assert_eq!(swa_layers(&g, "t", 6, 2, true).expect("ok"), want);
        let g = file(&[("t.attention.sliding_window_pattern", Value::U32(0))]);
        assert_eq!(swa_layers(&g, "t", 2, 2, false).expect("ok"), [true, true]);
        let arr = Value::Array(vec![Value::Bool(false), Value::Bool(true)]);
        let g = file(&[("t.attention.sliding_window_pattern", arr)]);
        assert_eq!(
            swa_layers(&g, "t", 3, 2, false).expect("ok"),
            [false, true, false]
        );
        let g = file(&[("t.attention.sliding_window_pattern", Value::F32(1.0))]);
        assert!(swa_layers(&g, "t", 3, 2, false).is_err());
    }

    #[test]
    fn rope_scaling_keys_as_llama_cpp_reads_them() {
        let plain = rope(&[]).expect("ok");
        assert_eq!(
            (plain.freq_scale, plain.ext_factor, plain.attn_factor),
            (1.0, 0.0, 1.0)
        );
        // No type means linear.
        let lin = rope(&[("t.rope.scaling.factor", Value::F32(4.0))]).expect("ok");
        assert_eq!((lin.freq_scale, lin.ext_factor), (0.25, 0.0));
        let none = rope(&[
            ("t.rope.scaling.type", Value::String("none".into())),
            ("t.rope.scaling.factor", Value::F32(4.0)),
        ])
        .expect("ok");
        assert_eq!(none.freq_scale, 1.0);
        // gpt-oss: YaRN, factor 32 over 4096 positions.
        let yarn = rope(&[
            ("t.rope.scaling.type", Value::String("yarn".into())),
            ("t.rope.scaling.factor", Value::F32(32.0)),
            ("t.rope.scaling.original_context_length", Value::U32(4096)),
        ])
        .expect("ok");
        assert_eq!(yarn.freq_scale, 1.0 / 32.0);
        assert_eq!(yarn.ext_factor, 1.0);
        assert_eq!(yarn.n_ctx_orig, 4096);
        assert_eq!(yarn.corr_dims, [8.0, 18.0]);
        assert!((yarn.attn_factor - 1.0).abs() < 1e-6);
        // Without the original length, the training context.
        let yarn = rope(&[("t.rope.scaling.type", Value::String("yarn".into()))]).expect("ok");
        assert_eq!(yarn.n_ctx_orig, 131072);
        let scaled = rope(&[("t.rope.scaling.attn_factor", Value::F32(0.5))]).expect("ok");
        assert_eq!(scaled.attn_factor, 0.5);
        assert!(rope(&[("t.rope.scaling.type", Value::String("longrope".into()))]).is_err());
        assert!(rope(&[("t.rope.scaling.factor", Value::F32(-2.0))]).is_err());
    }
}
