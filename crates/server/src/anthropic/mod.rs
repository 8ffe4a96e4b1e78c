//! Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`) over
//! the same chat turn as OpenAI's Chat Completions.
//!
//! Anthropic's client libraries and tools (Claude Code, the `anthropic` SDKs) speak only this
//! API, so owl answers it in its own shapes instead of asking them to switch. Nothing here
//! generates: `request` is the wire format of a request, `convert` turns it into a
//! [`crate::turn::Turn`], `reply` and `stream` turn the turn's reply back into a message or
//! its event stream, and `error` gives every failure Anthropic's error shape.

pub mod convert;
pub mod error;
pub mod reply;
pub mod request;
pub mod stream;
