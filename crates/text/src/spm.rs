//! SentencePiece vocabularies (`tokenizer.ggml.model == "llama"`) on the `tokenizers` crate.
//!
//! llama.cpp tokenizes these by repeatedly merging the adjacent pair whose concatenation is
//! the highest-scoring vocabulary token, and falls back to `<0xXX>` byte tokens for
//! characters that never formed a token. A `tokenizers` `BPE` model does the same when its
//! merge list holds every split of every token into two tokens, ranked by the score of the
//! token they form (the construction Hugging Face uses to convert SentencePiece models), and
//! `byte_fallback` is on. Whitespace escaping (`▁`) and the leading space depend on where
//! special tokens sit, so the caller does them per fragment.

use crate::vocab::Vocab;
use crate::TextError;
use tokenizers::models::bpe::{Merges, BPE};
use tokenizers::Tokenizer;

/// Every `(left, right)` with `left + right` a token, best score of the result first; ties
/// keep vocabulary order, then the order of the parts' ids.
fn derive_merges(vocab: &Vocab, scores: &[f32]) -> Merges {
    let mut ranked: Vec<(f32, u32, u32, u32)> = Vec::new();
    for (id, text) in vocab.tokens.iter().enumerate() {
        let score = scores.get(id).copied().unwrap_or(0.0);
        for (k, _) in text.char_indices().skip(1) {
            let (l, r) = text.split_at(k);
            if let (Some(&li), Some(&ri)) = (vocab.token_to_id.get(l), vocab.token_to_id.get(r)) {
                ranked.push((score, id as u32, li, ri));
            }
        }
    }
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    let text = |i: u32| vocab.tokens[i as usize].clone();
    ranked
        .into_iter()
        .map(|(_, _, l, r)| (text(l), text(r)))
        .collect()
}

pub(crate) fn build(vocab: &Vocab, scores: &[f32]) -> Result<Tokenizer, TextError> {
    if !scores.is_empty() && scores.len() < vocab.tokens.len() {
        return Err(TextError::InvalidVocab(format!(
            "{} scores for {} tokens",
            scores.len(),
            vocab.tokens.len()
        )));
    }
    let map: tokenizers::models::bpe::Vocab = vocab
        .token_to_id
        .iter()
        .map(|(k, &v)| (k.clone(), v))
        .collect();
    let model = BPE::builder()
        .vocab_and_merges(map, derive_merges(vocab, scores))
        .byte_fallback(true)
        .build()?;
    Ok(Tokenizer::new(model))
}
