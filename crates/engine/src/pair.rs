//! How a reranker reads a (query, document) pair: the special tokens around and between them,
//! as llama-server builds a rerank prompt (`format_prompt_rerank`).
//!
//! A cross-encoder scores one token sequence holding both texts. llama.cpp writes it as BOS
//! (when the vocabulary adds one), the query, EOS (when it adds one; the separator when there
//! is no EOS), the separator (when the vocabulary adds one: WordPiece vocabularies do), the
//! document, and EOS again: `[CLS] query [SEP] document` for a WordPiece BERT,
//! `<s> query </s></s> document </s>` for an XLM-R style one. The token ids and the flags come
//! from the GGUF's `tokenizer.ggml.*` keys, with llama.cpp's WordPiece defaults (separator
//! 102, added) when the vocabulary is `bert`. The texts themselves are tokenized without
//! specials.

use owl_gguf::GgufFile;
use owl_text::Tokenizer;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairLayout {
    pub bos: Option<u32>,
    /// After the query: EOS and/or the separator.
    pub mid: Vec<u32>,
    /// After the document.
    pub end: Option<u32>,
}

impl PairLayout {
    pub fn from_gguf(g: &GgufFile, tok: &Tokenizer) -> PairLayout {
        let wpm = g.get_str("tokenizer.ggml.model") == Some("bert");
        let id = |k: &str| {
            g.get_u64(&format!("tokenizer.ggml.{k}"))
                .and_then(|v| u32::try_from(v).ok())
        };
        let sep = id("seperator_token_id").or(if wpm { Some(102) } else { None });
        let add_sep = g.get_bool("tokenizer.ggml.add_sep_token").unwrap_or(wpm);
        let eos = if tok.add_eos() {
            tok.eos().or(sep)
        } else {
            None
        };
        let mut mid: Vec<u32> = eos.into_iter().collect();
        if add_sep {
            mid.extend(sep);
        }
        PairLayout {
            bos: if tok.add_bos() { tok.bos() } else { None },
            mid,
            end: eos,
        }
    }

    /// The pair's tokens: `bos query mid document end`.
    pub fn join(&self, query: &[u32], doc: &[u32]) -> Vec<u32> {
        let mut v = Vec::with_capacity(query.len() + doc.len() + 4);
        v.extend(self.bos);
        v.extend_from_slice(query);
        v.extend_from_slice(&self.mid);
        v.extend_from_slice(doc);
        v.extend(self.end);
        v
    }
}
