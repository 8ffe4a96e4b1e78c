//! owl's tokenizer described to llguidance: the bytes of every token, which tokens are
//! special, and the end-of-generation set.
//!
//! llguidance walks a trie of token byte strings to find which tokens keep the reply inside
//! the grammar. Ordinary tokens are their raw bytes (SentencePiece's `▁` already a space,
//! byte-fallback tokens their byte). Control tokens (`<|im_end|>`, `<|python_tag|>`) are
//! written as llguidance's special-token marker byte `0xFF` followed by their text, so free
//! text can never produce them and a grammar names them as `<|python_tag|>`. So are added
//! tokens shaped like `<|…|>` or `<｜…｜>`, which llama.cpp keeps user-defined (gpt-oss's
//! `<|channel|>`, DeepSeek's and Kimi's tool-call markers): they are structure, not text.
//! Other user-defined tokens (Qwen's `<tool_call>`) are plain text: owl's tokenizer matches
//! them in any text, and so may the grammar. Ids past the tokenizer's vocabulary (padding rows of the
//! output matrix) are empty, which llguidance never allows.

use std::sync::Arc;

use owl_text::Tokenizer;
use toktrie::{TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::GrammarError;

/// The tokenizer environment llguidance runs on.
pub struct OwlTokEnv {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
    /// Text and id of every special token.
    specials: Vec<(String, u32)>,
}

impl OwlTokEnv {
    /// Describes `tokenizer` for a model whose logits have `n_vocab` entries.
    pub fn new(tokenizer: Arc<Tokenizer>, n_vocab: usize) -> Result<OwlTokEnv, GrammarError> {
        let n_tok = tokenizer.vocab_size();
        let words: Vec<Vec<u8>> = (0..n_vocab as u32)
            .map(|id| {
                if id as usize >= n_tok {
                    Vec::new()
                } else if is_special(&tokenizer, id) {
                    let text = tokenizer.token_to_piece(id, true);
                    if text.is_empty() {
                        Vec::new()
                    } else {
                        let mut w = Vec::with_capacity(text.len() + 1);
                        w.push(TokTrie::SPECIAL_TOKEN_MARKER);
                        w.extend_from_slice(&text);
                        w
                    }
                } else {
                    tokenizer.token_to_piece(id, false)
                }
            })
            .collect();
        let eog = tokenizer.eog_ids();
        let eos = tokenizer
            .eos()
            .or_else(|| eog.first().copied())
            .ok_or_else(|| {
                GrammarError::Vocabulary("the model has no end-of-generation token".into())
            })?;
        if eos as usize >= n_vocab {
            return Err(GrammarError::Vocabulary(format!(
                "end-of-generation token {eos} is outside the {n_vocab}-token vocabulary"
            )));
        }
        let info = TokRxInfo::new(n_vocab as u32, eos);
        let mut ends: Vec<TokenId> = eog
            .into_iter()
            .filter(|&t| (t as usize) < n_vocab)
            .collect();
        if !ends.contains(&eos) {
            ends.push(eos);
        }
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&ends);
        let specials = words
            .iter()
            .enumerate()
            .filter(|(_, w)| w.first() == Some(&TokTrie::SPECIAL_TOKEN_MARKER))
            .map(|(id, w)| (String::from_utf8_lossy(&w[1..]).into_owned(), id as u32))
            .collect();
        Ok(OwlTokEnv {
            trie,
            tokenizer,
            specials,
        })
    }

    /// Text and id of every special token.
    pub fn specials(&self) -> &[(String, u32)] {
        &self.specials
    }
}

/// Whether token `id` is special for the grammar (see the module docs).
pub fn is_special(tokenizer: &Tokenizer, id: u32) -> bool {
    if tokenizer.is_control(id) {
        return true;
    }
    if !tokenizer.is_user_defined(id) {
        return false;
    }
    let text = tokenizer.token_to_piece(id, true);
    let text = String::from_utf8_lossy(&text);
    (text.starts_with("<|") && text.ends_with("|>"))
        || (text.starts_with("<｜") && text.ends_with("｜>"))
}

impl TokenizerEnv for OwlTokEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        // Text only (never control tokens): what a grammar's literal would tokenize to.
        self.tokenizer
            .encode(&String::from_utf8_lossy(s), false, false)
            .unwrap_or_default()
    }

    fn tokenize_is_canonical(&self) -> bool {
        // SentencePiece vocabularies prefix a space when encoding text on its own.
        !self.tokenizer.is_sentencepiece()
    }
}
