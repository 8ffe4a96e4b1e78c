//! How a model's hidden states become one vector per input: llama.cpp's pooling types.
//!
//! An embedding model states its pooling in `{arch}.pooling_type` (llama.cpp's
//! `LLAMA_POOLING_TYPE_*` numbers): the mean of every token's final hidden state (sentence
//! transformers such as all-MiniLM), the first token's (`[CLS]`: BGE), the last token's
//! (decoder embedders such as Qwen3-Embedding, whose last token has seen the whole input), or
//! `rank`: the first token through the model's classification head, one relevance score per
//! input (cross-encoder rerankers). A generative model states none; owl then embeds with the
//! mean, as Ollama and llama-server do for such models.

use owl_gguf::GgufFile;

use crate::ModelError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    /// The first token (`[CLS]`).
    Cls,
    /// The last token.
    Last,
    /// The first token through the classification head: a relevance score (reranking).
    Rank,
}

impl Pooling {
    /// `{arch}.pooling_type`, if the file states a pooling; `none` (0) and absent are `None`.
    pub fn from_gguf(g: &GgufFile, arch: &str) -> Result<Option<Pooling>, ModelError> {
        let keys = crate::keys::Keys::new(g, arch);
        let key = keys.name("pooling_type");
        match keys.count("pooling_type")? {
            None | Some(0) => Ok(None),
            Some(1) => Ok(Some(Pooling::Mean)),
            Some(2) => Ok(Some(Pooling::Cls)),
            Some(3) => Ok(Some(Pooling::Last)),
            Some(4) => Ok(Some(Pooling::Rank)),
            Some(n) => Err(ModelError::BadKey {
                key,
                why: format!("unknown pooling type {n} (0 none, 1 mean, 2 cls, 3 last, 4 rank)"),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Last => "last",
            Pooling::Rank => "rank",
        }
    }
}
