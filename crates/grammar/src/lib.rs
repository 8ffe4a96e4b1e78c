//! Constrained decoding: the reply must match a JSON Schema, a regular expression or a Lark
//! grammar, so a client that asks for parseable output gets it on every request.
//!
//! Why it is built this way:
//!
//! * **llguidance does the grammar work.** It compiles JSON Schema (with `$ref`, `anyOf`,
//!   bounds and patterns), regexes and Lark into a lexer + Earley parser, and computes the
//!   set of allowed tokens by walking a trie of the vocabulary, typically in tens of
//!   microseconds. What is ours is the bridge: [`vocab::OwlTokEnv`] describes owl's own
//!   tokenizer to it (token bytes, which tokens are special, the end-of-generation set).
//! * **Compile once per model, match once per sequence.** [`Grammars`] holds the tokenizer
//!   trie and llguidance's factory (built once per model, the slow part); [`Grammars::compile`]
//!   turns a [`Constraint`] into a [`TokenConstraint`], the per-sequence state the engine
//!   advances one token at a time. Compile errors are the request's fault and carry a message
//!   a client can act on.
//! * **The engine stays in charge of sampling.** A [`TokenConstraint`] only answers "which
//!   tokens may come next" as a [`Mask`] and is told which token was chosen; the sampler runs
//!   on masked logits, so temperature, top-k/p and seeds behave as without a constraint.
//! * **Compact JSON by default.** Schemas are compiled with fixed separators (`", "`,
//!   `": "`) and no free whitespace: a small model given the freedom to emit whitespace can
//!   spend its whole budget on newlines.

mod constraint;
mod error;
mod lark;
mod matcher;
pub mod vocab;

pub use constraint::Constraint;
pub use error::GrammarError;
pub use matcher::{Grammars, Mask, TokenConstraint};
