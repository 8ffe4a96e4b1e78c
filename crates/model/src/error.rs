//! Model-loading and forward-pass errors.

use owl_gguf::GgmlType;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] owl_gguf::GgufError),
    #[error("unsupported architecture '{0}' (owl supports: {1})")]
    UnsupportedArch(String, String),
    #[error("model file has no 'general.architecture' key")]
    NoArch,
    #[error("missing metadata key '{0}'")]
    MissingKey(String),
    #[error("bad metadata value for '{key}': {why}")]
    BadKey { key: String, why: String },
    #[error("missing tensor '{0}'")]
    MissingTensor(String),
    #[error("tensor '{name}' has shape {got:?}, expected {want:?}")]
    BadShape {
        name: String,
        got: Vec<u64>,
        want: Vec<u64>,
    },
    #[error("tensor '{name}' has type {ty}, which owl cannot compute with yet")]
    UnsupportedType { name: String, ty: GgmlType },
    #[error("sequence slot {slot} does not exist (the cache has {n_slots})")]
    BadSlot { slot: usize, n_slots: usize },
    #[error("position {pos} is past the context size {n_ctx}")]
    ContextFull { pos: usize, n_ctx: usize },
    #[error("the KV cache is full: {need} more pages needed, {free} free")]
    KvFull { need: usize, free: usize },
    #[error("tensor '{0}' is read row by row but was loaded in a repacked layout")]
    NotRowLayout(&'static str),
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    BadToken { id: u32, n_vocab: usize },
    #[error("'{0}' is an encoder model: it embeds and ranks, it does not generate text")]
    EncoderOnly(String),
    #[error("'{0}' is not an encoder model")]
    NotEncoder(String),
    #[error("'{0}' has no classification head: it is not a reranker")]
    NoClassifier(String),
    #[error("a batch chunk names adapter {index} but the pass was given {n_adapters}")]
    BadAdapter { index: usize, n_adapters: usize },
    #[error("input of {len} tokens is longer than the model's {n_pos} positions")]
    TooLong { len: usize, n_pos: usize },
}
