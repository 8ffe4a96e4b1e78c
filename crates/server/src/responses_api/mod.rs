//! OpenAI's Responses API (`POST /v1/responses`, `GET /v1/responses/{id}`) over the same
//! chat turn as Chat Completions.
//!
//! The Responses API is OpenAI's newer front door (the Agents SDK and Codex speak it), and
//! it differs from Chat Completions in shape, not in work: input items instead of messages,
//! output items instead of a choice, and stored responses that a later request can continue
//! with `previous_response_id`. `request` is the wire format, `convert` builds the
//! [`crate::turn::Turn`], `output` builds output items and response objects, `stream` the
//! event stream, and `store` keeps finished responses (bounded, least recently used first
//! out) for the server's lifetime.

pub mod convert;
pub mod output;
pub mod request;
pub mod store;
pub mod stream;
