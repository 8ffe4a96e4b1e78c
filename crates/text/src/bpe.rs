//! Byte-level BPE (`tokenizer.ggml.model == "gpt2"`) on the `tokenizers` crate.
//!
//! Pipeline: the pre-tokenizer regexes for `tokenizer.ggml.pre` as a sequence of isolating
//! `Split`s, then `ByteLevel` (no prefix space, no regex of its own) maps bytes to GPT-2's
//! alphabet, then `BPE` applies the GGUF merges by rank. Special tokens never reach it: they
//! are split out beforehand (see `partition`), so this tokenizer has no added tokens.

use crate::pretokenize;
use crate::vocab::Vocab;
use crate::TextError;
use tokenizers::models::bpe::{Merges, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{SplitDelimiterBehavior, Tokenizer};

/// Parses GGUF merges (`"left right"`), dropping any that do not resolve to vocabulary
/// tokens (llama.cpp ignores those too: they can never fire). Order, and so rank, is kept.
fn parse_merges(vocab: &Vocab, merges: &[String]) -> Merges {
    let has = |s: &str| vocab.token_to_id.contains_key(s);
    merges
        .iter()
        .filter_map(|m| {
            // llama.cpp splits at the first space that is not the first byte.
            let (pos, _) = m.char_indices().skip(1).find(|&(_, c)| c == ' ')?;
            let (a, b) = (&m[..pos], &m[pos + 1..]);
            (has(a) && has(b) && has(&format!("{a}{b}"))).then(|| (a.to_string(), b.to_string()))
        })
        .collect()
}

pub(crate) fn build(vocab: &Vocab, merges: &[String]) -> Result<Tokenizer, TextError> {
    if merges.is_empty() {
        return Err(TextError::Metadata(
            "tokenizer.ggml.merges is missing (required for gpt2 vocabularies)".into(),
        ));
    }
    let map: tokenizers::models::bpe::Vocab = vocab
        .token_to_id
        .iter()
        .map(|(k, &v)| (k.clone(), v))
        .collect();
    let model = BPE::builder()
        .vocab_and_merges(map, parse_merges(vocab, merges))
        .ignore_merges(vocab.pre.ignore_merges)
        .build()?;

    let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
    for re in pretokenize::regexes(vocab.pre.kind) {
        let split = Split::new(
            SplitPattern::Regex(re),
            SplitDelimiterBehavior::Isolated,
            false,
        )?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, false, false).into());

    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Sequence::new(steps)));
    Ok(tok)
}
