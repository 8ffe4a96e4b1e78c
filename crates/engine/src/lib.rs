//! owl-engine: turning prompts into tokens with a model, a KV cache and a sampler.
//!
//! A `Session` owns one KV-cache slot and remembers which tokens it holds, so the next turn of a
//! chat only evaluates what is new (prefix reuse). Prompts are prefilled in chunks of `n_batch`
//! tokens as one ragged batch each; decoding then runs one token per forward pass. Nothing in the
//! decode loop allocates: the batch, the logits and the model's scratch are reused.
//! The multi-sequence scheduler of the server builds on the same `Batch` and `Runner`.

mod session;

pub use session::{GenerateParams, GenerateStats, Session, StopReason};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] owl_model::ModelError),
    #[error(transparent)]
    Sample(#[from] owl_sample::SampleError),
    #[error("the prompt has {prompt} tokens but the context holds {n_ctx}; use a shorter prompt or a larger --ctx-size")]
    PromptTooLong { prompt: usize, n_ctx: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
}
