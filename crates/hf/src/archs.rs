//! The architectures a Hugging Face directory can hold, as a table: for each, the
//! `config.json` architecture names it answers to, the GGUF architecture it becomes, the
//! hyper-parameter keys it writes and how its checkpoint tensor names map to llama.cpp's.
//! Adding one is one entry and, when its names differ from the shared ones, one small file.

use std::path::Path;

use owl_gguf::GgufAssembler;

use crate::config::Config;
use crate::{bert, decoder, deepseek, gemma, HfError};

/// What a checkpoint tensor must go through on its way to the GGUF view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Read in place.
    AsIs,
    /// llama.cpp's Q/K row order for `n_head` heads (its converter's `permute`): HF rotates
    /// halves of a head, llama.cpp's `llama` RoPE rotates adjacent pairs.
    PermuteRows { n_head: usize },
    /// Gemma's RMSNorm scales by `1 + w` where llama.cpp's scales by `w`: the converter adds
    /// one (in the stored precision for F16, in F32 otherwise) and writes F32.
    AddOne,
    /// Expert `index` of `count` in a stacked `[count, rows, cols]` tensor (Mixture-of-Experts
    /// checkpoints store one matrix per expert, llama.cpp one tensor per layer).
    Expert { index: usize, count: usize },
    /// DeepSeek's `kv_b_proj` (`[n_head × (nope + v), kv_lora_rank]`) split per head into
    /// `attn_k_b` (the K rows, transposed: `[n_head, rank, nope]`) and `attn_v_b`
    /// (`[n_head, v, rank]`); the mapped name is `….attn_kv_b.weight`.
    SplitKvB {
        n_head: usize,
        nope: usize,
        v: usize,
    },
    /// A fused `mlp.experts.gate_up_proj` (`[n_expert, 2 × n_ff, n_embd]`, transformers 5)
    /// split into `ffn_gate_exps` (first halves) and `ffn_up_exps`; the mapped name is
    /// `….ffn_gate_up_exps.weight`.
    SplitGateUp,
}

/// A checkpoint tensor's GGUF name and transform; `None` drops it (unused by inference).
pub type Mapped = Option<(String, Transform)>;

pub struct HfArch {
    /// `config.json` `architectures[0]` values.
    pub hf: &'static [&'static str],
    /// The GGUF `general.architecture` it becomes.
    pub gguf: &'static str,
    /// Writes the `{gguf}.*` keys (and any tensors the converter derives, like `rope_freqs`)
    /// from the config and, where the family keeps settings in files of its own
    /// (sentence-transformers' pooling), the directory.
    pub keys: fn(&Config, &Path, &mut GgufAssembler) -> Result<(), HfError>,
    /// Maps one checkpoint tensor name.
    pub tensor: fn(&str, &Config) -> Result<Mapped, HfError>,
    /// `config.json` values the family's `transformers` config class supplies when the file
    /// leaves them out (the converter reads the config through `transformers`, so it sees
    /// them); integers and floats.
    pub defaults: &'static [(&'static str, ConfigDefault)],
}

/// A default `config.json` value.
#[derive(Clone, Copy, Debug)]
pub enum ConfigDefault {
    Int(u64),
    Float(f64),
}

pub const ARCHS: &[HfArch] = &[
    HfArch {
        hf: &["LlamaForCausalLM", "MistralForCausalLM"],
        gguf: "llama",
        keys: decoder::llama_keys,
        tensor: decoder::llama_tensor,
        defaults: &[],
    },
    HfArch {
        hf: &["Qwen2ForCausalLM"],
        gguf: "qwen2",
        keys: decoder::qwen2_keys,
        tensor: decoder::plain_tensor,
        defaults: &[],
    },
    HfArch {
        hf: &["Qwen3ForCausalLM"],
        gguf: "qwen3",
        keys: decoder::qwen3_keys,
        tensor: decoder::plain_tensor,
        defaults: &[],
    },
    HfArch {
        hf: &["Qwen3MoeForCausalLM"],
        gguf: "qwen3moe",
        keys: decoder::qwen3moe_keys,
        tensor: decoder::moe_tensor,
        defaults: &[],
    },
    HfArch {
        hf: &["Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"],
        gguf: "gemma3",
        keys: gemma::keys,
        tensor: gemma::tensor,
        defaults: gemma::DEFAULTS,
    },
    HfArch {
        hf: &["DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM"],
        gguf: "deepseek2",
        keys: deepseek::keys,
        tensor: deepseek::tensor,
        defaults: &[],
    },
    HfArch {
        hf: &[
            "BertModel",
            "BertForMaskedLM",
            "BertForSequenceClassification",
        ],
        gguf: "bert",
        keys: bert::keys,
        tensor: bert::tensor,
        defaults: &[],
    },
];

/// The names owl can read, for error messages.
pub fn names() -> String {
    ARCHS
        .iter()
        .flat_map(|a| a.hf.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}
