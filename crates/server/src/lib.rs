//! owl-server: the HTTP side of `owl serve`, OpenAI's APIs (Chat Completions, Completions,
//! Responses) and Anthropic's Messages API over the serving engine.
//!
//! # Why it is built this way
//!
//! * **The engine does the work; this crate only translates.** Handlers check a request,
//!   render and tokenize the prompt, submit it with [`owl_engine::EngineHandle::submit`] and
//!   turn the engine's events into OpenAI JSON or server-sent events. Batching, stop strings,
//!   end-of-generation, logprobs and cancellation live in the engine; nothing here touches
//!   model state, so no client can corrupt it.
//! * **Cancellation is ownership.** A request's `RequestStream` is owned by the handler future
//!   (non-streaming) or by the SSE body stream (streaming). When a client disconnects, hyper
//!   drops that future or body, which drops the stream, which cancels the request in the engine.
//! * **Every failure is an OpenAI error.** Handlers return [`ApiError`]; a middleware rewrites
//!   axum's own plain-text errors (405, 413, …) into the same JSON shape; a panic is caught and
//!   answered with a 500, and the server keeps serving. Request bodies are read as bytes and
//!   parsed by hand, so nothing a client sends reaches an `unwrap`.
//! * **Bind first, load later.** [`serve`] listens before the model is loaded and answers
//!   `/health` with 503 until it is, so supervisors can tell "starting" from "dead".
//! * **Testable in process.** [`router`] is the whole application as an `axum::Router`; tests
//!   call it with `tower::ServiceExt::oneshot`, no sockets. [`layers::apply`] is the middleware
//!   stack alone, so tests can wrap their own routes in it.
//! * **Small files, one concept each:** `config` (options, limits), `state` (shared state),
//!   `model` (opening the model through the engine's bundle), `openai` (wire types), `body` (parsing), `params` (sampling fields),
//!   `generation` (submitting and tracking a request), `logprobs`, `sse`, `metrics`, `error`,
//!   `layers` (middleware), `routes/*` (one endpoint each), `serve` (sockets, signals), `lora` (adapter names).
//!   `turn` is one chat turn in no API's shape; `anthropic` (Messages) and `responses_api`
//!   (Responses) translate their APIs to and from it, with `convo` (their conversations as
//!   chat messages) and `turn_sse` (named-event streams). `routes/web` serves the chat page
//!   at `/`, whose files (`web/`) are compiled in.

pub mod anthropic;
pub mod base64;
pub mod body;
pub mod catalog;
pub mod config;
pub mod convo;
pub mod embed_inputs;
pub mod error;
pub mod generation;
pub mod ids;
pub mod layers;
pub mod logprobs;
pub mod lora;
pub mod metrics;
pub mod model;
pub mod ollama;
pub mod openai;
pub mod params;
pub mod pool;
pub mod responses_api;
pub mod routes;
pub mod serve;
pub mod sse;
pub mod state;
pub mod tool_params;
pub mod turn;
pub mod turn_sse;

pub use catalog::{Catalog, CatalogError, FileCatalog, ModelDefaults, ModelSpec};
pub use config::{HttpConfig, ModelOptions, ServeOptions};
pub use error::ApiError;
pub use model::{load, LoadedModel};
pub use pool::{KeepAlive, Lease, ModelPool, PoolOptions};
pub use serve::{run, serve};
pub use state::AppState;

/// The whole application: every route and the middleware stack.
pub fn router(state: AppState) -> axum::Router {
    layers::apply(routes::table().with_state(state.clone()), state)
}
