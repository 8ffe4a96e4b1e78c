//! Ollama's API on the same port (`/api/*`), so the long tail of apps written for Ollama, and
//! the official `ollama` clients, work against owl unchanged.
//!
//! Each route translates Ollama's shapes into owl's own: a chat or generate request becomes a
//! [`crate::turn::Turn`] (or a raw completion), its `options` become the same sampling
//! settings the OpenAI routes use, and the reply streams as Ollama's NDJSON lines. Models come
//! from the same [`crate::pool::ModelPool`], so `keep_alive` is the pool's keep-alive.
//! Errors take Ollama's shape (`{"error": "…"}`) with the status the OpenAI routes would use.
//!
//! Files: `error` (the shape), `options` (sampling options and `keep_alive`), `time`
//! (timestamps), `ndjson` (streaming a turn), `chat` and `generate` (the two generation
//! routes), `embed`, `models` (tags, show, ps, version), `store` (pull, delete, copy, create).

pub mod chat;
pub mod embed;
pub mod error;
pub mod generate;
pub mod models;
pub mod ndjson;
pub mod options;
pub mod store;
pub mod time;

pub use error::OllamaError;
