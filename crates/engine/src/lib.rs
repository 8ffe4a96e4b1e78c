//! owl-engine: turning prompts into tokens with a model, a KV cache and a sampler.
//!
//! A `Session` owns one KV-cache slot and remembers which tokens it holds, so the next turn of a
//! chat only evaluates what is new (prefix reuse). Prompts are prefilled in chunks of `n_batch`
//! tokens as one ragged batch each; decoding then runs one token per forward pass. Nothing in the
//! decode loop allocates: the batch, the logits and the model's scratch are reused.
//!
//! The serving engine (`Engine::start`) runs many sequences at once: one thread owns the model,
//! the paged KV cache and every sequence, and advances all running sequences in one ragged
//! batch per step (continuous batching with chunked prefill, prefix reuse and pre-emption, see
//! `scheduler`). Other threads talk to it only through an `EngineHandle` and per-request event
//! channels, so nothing an HTTP client does can touch engine state directly.

pub mod api;
mod handle;
mod scheduler;
mod session;
pub mod stop;

pub use api::{
    EngineStats, Event, Finish, FinishReason, Request, RequestStream, SubmitError, TokenLogprob,
};
pub use handle::{Engine, EngineConfig, EngineHandle};
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
    #[error("bad engine configuration: {0}")]
    BadConfig(String),
}
