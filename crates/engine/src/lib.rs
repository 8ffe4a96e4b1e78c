//! owl-engine: turning prompts into tokens with a model, a KV cache and a sampler.
//!
//! There is one generation loop and every front end uses it: `owl serve` with many sequences,
//! `owl run` and `owl chat` with one. [`ModelBundle::open`] opens a model once (runner,
//! tokenizer, template, context cap); [`ModelBundle::start`] moves the runner into the engine
//! thread, which owns the model, the paged KV cache and every sequence, and advances all
//! running sequences in one ragged batch per step (continuous batching with chunked prefill,
//! prefix reuse and pre-emption). Other threads talk to it only through an [`EngineHandle`]
//! and per-request event channels, so nothing a client does can touch engine state directly.
//!
//! Module map, leaves first: `api` (requests and events), `adapters` (LoRA adapters by name), `error`, `config` (sizes), `gate` (turns on the cores between engines), `command` (what
//! the handle sends), `pages` (page accounting as a trait), `prefix_cache` (slots, LRU),
//! `plan` (the pure scheduling policy), `stop` (stop strings), `lookup` (prompt lookup: drafts from the text being copied), `spec` (speculative decoding: when to draft and how far), `spec_replay` (a recorded reply walked through lookup and policy, to tune them without timing noise), `draft` (a draft model's guesses), `scheduler` (the thread: plan →
//! execute → commit), `handle` (starting it, submitting), `bundle` (opening a model).

mod adapters;
pub mod api;
mod bundle;
mod command;
mod config;
mod draft;
mod embed;
mod error;
mod gate;
mod handle;
mod lookup;
mod pages;
mod pair;
mod plan;
mod prefix_cache;
mod scheduler;
mod spec;
mod spec_replay;
pub mod stop;

pub use adapters::{
    inspect_adapter, Adapter, AdapterBase, AdapterError, AdapterInfo, AdapterSummary,
};
pub use api::{
    EngineStats, Event, Finish, FinishReason, Request, RequestStream, SubmitError, TokenLogprob,
};
pub use bundle::{
    default_threads, gguf_header, HeaderFacts, ModelBundle, OpenOptions, QuantizeAtLoad,
    RunningModel, DEFAULT_CTX_CAP,
};
pub use config::EngineConfig;
pub use draft::check_draft_vocabulary;
pub use error::EngineError;
pub use gate::{ComputeGate, GatePass};
pub use handle::{EmbedResult, Engine, EngineHandle};
pub use owl_model::Pooling;
pub use pair::PairLayout;
pub use spec::{SpecConfig, SpecMode};
pub use spec_replay::{replay, ReplayReport, ReplayWords};
