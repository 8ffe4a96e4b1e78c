//! The engine's token logprobs in OpenAI's two shapes: chat (`logprobs.content[]` with
//! `bytes` and `top_logprobs`) and legacy completions (parallel `tokens`, `token_logprobs`,
//! `top_logprobs`, `text_offset` arrays).
//!
//! A token's text is its piece with control tokens rendered (so `<|im_end|>` shows up as
//! itself), lossily decoded when a token holds part of a UTF-8 character; `bytes` has the exact
//! bytes. `text_offset` counts characters of those token strings.

use std::collections::BTreeMap;

use owl_engine::TokenLogprob;
use owl_text::Tokenizer;

use crate::openai::{ChatTokenLogprob, LegacyLogprobs, TopLogprob};

fn piece(tok: &Tokenizer, id: u32) -> (String, Vec<u8>) {
    let bytes = tok.token_to_piece(id, true);
    (String::from_utf8_lossy(&bytes).into_owned(), bytes)
}

/// One chat `logprobs.content` entry.
pub fn chat_entry(tok: &Tokenizer, id: u32, lp: &TokenLogprob) -> ChatTokenLogprob {
    let (token, bytes) = piece(tok, id);
    let top_logprobs = lp
        .top
        .iter()
        .map(|&(alt, logprob)| {
            let (token, bytes) = piece(tok, alt);
            TopLogprob {
                token,
                logprob,
                bytes,
            }
        })
        .collect();
    ChatTokenLogprob {
        token,
        logprob: lp.logprob,
        bytes,
        top_logprobs,
    }
}

/// Builds legacy `logprobs`, keeping track of the text offset across chunks.
#[derive(Debug, Default)]
pub struct LegacyBuilder {
    offset: usize,
    out: LegacyLogprobs,
}

impl LegacyBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a token; `lp` is `None` for the first prompt token (nothing predicts it).
    pub fn push(&mut self, tok: &Tokenizer, id: u32, lp: Option<&TokenLogprob>) {
        let (text, _) = piece(tok, id);
        self.out.text_offset.push(self.offset);
        self.offset += text.chars().count();
        self.out.tokens.push(text);
        self.out.token_logprobs.push(lp.map(|l| l.logprob));
        self.out.top_logprobs.push(lp.map(|l| {
            let mut m = BTreeMap::new();
            for &(alt, v) in &l.top {
                m.entry(piece(tok, alt).0).or_insert(v);
            }
            m
        }));
    }

    /// Sets where the next token's text starts (after echoed prompt text).
    pub fn set_offset(&mut self, offset: usize) {
        self.offset = offset;
    }

    /// Takes what was built so far (the offset carries on).
    pub fn take(&mut self) -> LegacyLogprobs {
        std::mem::take(&mut self.out)
    }
}
