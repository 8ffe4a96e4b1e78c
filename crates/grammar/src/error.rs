//! Why a constraint could not be built or followed.

/// A grammar failure: the request's (`Invalid`) or the matcher's (`Matcher`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    /// The schema, regex or grammar does not compile; the message says where.
    #[error("{0}")]
    Invalid(String),
    /// The tokenizer could not be described to the grammar engine.
    #[error("cannot build the token trie: {0}")]
    Vocabulary(String),
    /// The matcher failed while generating (a token outside the mask, an internal error).
    #[error("constrained decoding failed: {0}")]
    Matcher(String),
}
