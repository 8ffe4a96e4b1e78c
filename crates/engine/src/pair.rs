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
//!
//! A decoder reranker (Qwen3-Reranker) brings its own prompt instead: the GGUF's
//! `tokenizer.chat_template.rerank`, with `{query}` and `{document}` replaced by the texts and
//! the whole string tokenized at once with special tokens parsed, as llama-server does. (Joining
//! separately tokenized pieces would split byte-level BPE words differently at the seams.)

use owl_gguf::GgufFile;
use owl_text::{TextError, Tokenizer};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairLayout {
    pub bos: Option<u32>,
    /// After the query: EOS and/or the separator.
    pub mid: Vec<u32>,
    /// After the document.
    pub end: Option<u32>,
    /// `tokenizer.chat_template.rerank`: the whole input as text, replacing the tokens above.
    pub template: Option<String>,
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
            template: g
                .get_str("tokenizer.chat_template.rerank")
                .map(str::to_string),
        }
    }

    /// A templated pair's tokens (`None` without a template): the prompt with `{query}` and
    /// `{document}` filled in, tokenized whole with specials parsed. With `truncate`, a pair
    /// longer than `n_ctx` loses the end of its document (the query and the template's frame
    /// are kept); otherwise it is returned as it is, for the caller to refuse.
    pub fn template_tokens(
        &self,
        tok: &Tokenizer,
        query: &str,
        doc: &str,
        n_ctx: usize,
        truncate: bool,
    ) -> Option<Result<Vec<u32>, TextError>> {
        let t = self.template.as_ref()?;
        let fill = |d: &str| {
            let prompt = t.replace("{query}", query).replace("{document}", d);
            tok.encode(&prompt, false, true)
        };
        Some((|| {
            let mut ids = fill(doc)?;
            if !truncate || ids.len() <= n_ctx {
                return Ok(ids);
            }
            let dt = tok.encode(doc, false, false)?;
            let mut keep = dt.len();
            // Cutting tokens and re-reading the text can merge differently at the seam: a few
            // rounds settle it.
            for _ in 0..4 {
                let over = ids.len().saturating_sub(n_ctx);
                if over == 0 {
                    break;
                }
                keep = keep.saturating_sub(over);
                ids = fill(&tok.decode(&dt[..keep], false))?;
            }
            Ok(ids)
        })())
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
