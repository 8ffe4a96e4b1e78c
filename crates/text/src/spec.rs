//! [`VocabSpec`]: the tokenizer description as plain data, and its GGUF adapter.
//!
//! Everything else in the crate is built from this struct, so tests and tools can construct a
//! tokenizer without a GGUF file, and the only code that knows the `tokenizer.ggml.*` key names
//! is [`VocabSpec::from_gguf`].

use crate::TextError;
use owl_gguf::GgufFile;

/// The tokenizer as described by a model's `tokenizer.ggml.*` metadata.
///
/// `None` / empty means "absent from the file"; [`crate::Tokenizer::from_spec`] then applies the
/// same defaults llama.cpp does for the tokenizer model and pre-tokenizer.
#[derive(Clone, Debug, Default)]
pub struct VocabSpec {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE), `"llama"` (SentencePiece) or `"bert"`
    /// (WordPiece).
    pub model: String,
    /// `tokenizer.ggml.pre`: selects the pre-tokenizer regexes for `gpt2` vocabularies.
    pub pre: Option<String>,
    /// `general.name`: llama.cpp keys a few per-model token attributes off it (Phi-3 rstrip).
    pub name: Option<String>,
    /// `tokenizer.ggml.tokens`, indexed by token id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    /// 6 byte. Empty: every token is normal.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges`: `"left right"` strings, highest priority first (`gpt2` only).
    pub merges: Vec<String>,
    /// `tokenizer.ggml.scores` (`llama` only). Empty: all zero.
    pub scores: Vec<f32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub fim_pre: Option<u32>,
    pub fim_suf: Option<u32>,
    pub fim_mid: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece's leading `▁`).
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.ggml.normalizer.lowercase` (`bert` only; llama.cpp's default: true).
    pub normalizer_lowercase: Option<bool>,
    /// `tokenizer.ggml.normalizer.strip_accents` (`bert` only; default: as `lowercase`).
    pub normalizer_strip_accents: Option<bool>,
}

const P: &str = "tokenizer.ggml.";

impl VocabSpec {
    /// Reads the `tokenizer.ggml.*` keys of a GGUF file.
    pub fn from_gguf(g: &GgufFile) -> Result<VocabSpec, TextError> {
        let key = |k: &str| format!("{P}{k}");
        let model = g
            .get_str(&key("model"))
            .ok_or_else(|| TextError::Metadata("tokenizer.ggml.model is missing".into()))?
            .to_string();
        let tokens = g
            .get_str_array(&key("tokens"))
            .ok_or_else(|| {
                TextError::Metadata("tokenizer.ggml.tokens is missing or not a string array".into())
            })?
            .into_iter()
            .map(str::to_string)
            .collect();
        let token_types = match g.get(&key("token_type")) {
            None => Vec::new(),
            Some(_) => g.get_i32_array(&key("token_type")).ok_or_else(|| {
                TextError::Metadata("tokenizer.ggml.token_type is not an i32 array".into())
            })?,
        };
        let merges = match g.get(&key("merges")) {
            None => Vec::new(),
            Some(_) => g
                .get_str_array(&key("merges"))
                .ok_or_else(|| {
                    TextError::Metadata("tokenizer.ggml.merges is not a string array".into())
                })?
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        let scores = match g.get(&key("scores")) {
            None => Vec::new(),
            Some(_) => g.get_f32_array(&key("scores")).ok_or_else(|| {
                TextError::Metadata("tokenizer.ggml.scores is not a numeric array".into())
            })?,
        };
        let id = |k: &str| g.get_u32(&key(k));
        let flag = |k: &str| g.get_bool(&key(k));
        Ok(VocabSpec {
            model,
            pre: g.get_str(&key("pre")).map(str::to_string),
            name: g.get_str("general.name").map(str::to_string),
            tokens,
            token_types,
            merges,
            scores,
            bos: id("bos_token_id"),
            eos: id("eos_token_id"),
            eot: id("eot_token_id"),
            eom: id("eom_token_id"),
            unk: id("unknown_token_id"),
            // sic: llama.cpp's key name
            sep: id("seperator_token_id"),
            pad: id("padding_token_id"),
            mask: id("mask_token_id"),
            fim_pre: id("fim_pre_token_id").or_else(|| id("prefix_token_id")),
            fim_suf: id("fim_suf_token_id").or_else(|| id("suffix_token_id")),
            fim_mid: id("fim_mid_token_id").or_else(|| id("middle_token_id")),
            fim_pad: id("fim_pad_token_id"),
            fim_rep: id("fim_rep_token_id"),
            fim_sep: id("fim_sep_token_id"),
            add_bos: flag("add_bos_token"),
            add_eos: flag("add_eos_token"),
            add_space_prefix: flag("add_space_prefix"),
            normalizer_lowercase: flag("normalizer.lowercase"),
            normalizer_strip_accents: flag("normalizer.strip_accents"),
        })
    }
}
