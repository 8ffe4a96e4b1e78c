//! The crate's error type.

/// Everything that can go wrong while building a tokenizer or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A `tokenizer.ggml.*` key is missing or has the wrong type.
    #[error("GGUF tokenizer metadata: {0}")]
    Metadata(String),
    /// `tokenizer.ggml.model` names a tokenizer family this crate does not implement.
    #[error("unsupported tokenizer model '{0}' (supported: 'gpt2' byte-level BPE, 'llama' SentencePiece, 'bert' WordPiece)")]
    UnsupportedModel(String),
    /// The vocabulary is internally inconsistent (bad merge, missing byte token, ...).
    #[error("invalid vocabulary: {0}")]
    InvalidVocab(String),
    /// `add_bos`/`add_eos` is requested but the model has no such token.
    #[error("the model asks for a {0} token but does not define one")]
    MissingSpecialToken(&'static str),
    /// The underlying `tokenizers` pipeline failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The model file carries no `tokenizer.chat_template`.
    #[error("the model has no chat template (tokenizer.chat_template); pass --raw to send the prompt as plain text")]
    NoChatTemplate,
    /// The chat template failed to parse or render (including `raise_exception` calls).
    #[error("chat template: {0}")]
    Template(String),
}

impl From<tokenizers::Error> for TextError {
    fn from(e: tokenizers::Error) -> Self {
        TextError::Tokenizer(e.to_string())
    }
}

impl From<minijinja::Error> for TextError {
    fn from(e: minijinja::Error) -> Self {
        // `{:#}` includes the template location and the causing error chain.
        TextError::Template(format!("{e:#}"))
    }
}
