//! The event stream of a streamed message: `message_start`; for each content block
//! `content_block_start`, its deltas (`thinking_delta`, `text_delta`, `input_json_delta`)
//! and `content_block_stop`; then `message_delta` (stop reason, usage) and `message_stop`.
//!
//! Blocks never interleave: a piece of another kind (thinking after text, a new tool call)
//! closes the open block and opens the next, with the next index. A failure after the start
//! is an `error` event, after which the stream ends.

use serde_json::json;

use super::reply::{stop_reason, Message, Usage};
use crate::error::ApiError;
use crate::turn::{Ending, Piece, TurnUsage};
use crate::turn_sse::{event, EventFormat};

/// The kind of the open content block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Open {
    Thinking,
    Text,
    /// The tool call with this index in the turn.
    Tool(usize),
}

pub struct MessageStream {
    id: String,
    model: String,
    /// Prompt tokens, for `message_start` (`message_delta` splits off the cached ones).
    prompt_tokens: usize,
    open: Option<Open>,
    /// Index of the open block, or of the next one when none is open.
    index: usize,
}

impl MessageStream {
    pub fn new(id: String, model: String, prompt_tokens: usize) -> MessageStream {
        MessageStream {
            id,
            model,
            prompt_tokens,
            open: None,
            index: 0,
        }
    }

    fn close(&mut self, out: &mut String) {
        if self.open.take().is_some() {
            out.push_str(&event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.index}),
            ));
            self.index += 1;
        }
    }

    /// Makes `want` the open block (opening it with `block` as its start).
    fn ensure(&mut self, want: Open, block: impl FnOnce() -> serde_json::Value, out: &mut String) {
        if self.open == Some(want) {
            return;
        }
        self.close(out);
        out.push_str(&event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.index, "content_block": block()}),
        ));
        self.open = Some(want);
    }

    fn delta(&self, delta: serde_json::Value, out: &mut String) {
        out.push_str(&event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        ));
    }
}

impl EventFormat for MessageStream {
    fn opening(&mut self) -> String {
        let message = Message {
            id: self.id.clone(),
            kind: "message",
            role: "assistant",
            model: self.model.clone(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: Usage {
                input_tokens: self.prompt_tokens,
                ..Usage::default()
            },
        };
        event(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        )
    }

    fn pieces(&mut self, pieces: Vec<Piece>) -> String {
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Reasoning(t) if t.is_empty() => {}
                Piece::Text(t) if t.is_empty() => {}
                Piece::Reasoning(t) => {
                    self.ensure(
                        Open::Thinking,
                        || json!({"type": "thinking", "thinking": "", "signature": ""}),
                        &mut out,
                    );
                    self.delta(json!({"type": "thinking_delta", "thinking": t}), &mut out);
                }
                Piece::Text(t) => {
                    self.ensure(Open::Text, || json!({"type": "text", "text": ""}), &mut out);
                    self.delta(json!({"type": "text_delta", "text": t}), &mut out);
                }
                Piece::CallBegin { index, id, name } => {
                    self.close(&mut out);
                    self.ensure(
                        Open::Tool(index),
                        || json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                        &mut out,
                    );
                }
                Piece::CallArgs { text, .. } => {
                    // Arguments follow their call's begin, so the open block is that call;
                    // arguments with no open call (never produced by the turn) are dropped.
                    if !matches!(self.open, Some(Open::Tool(_))) {
                        continue;
                    }
                    self.delta(
                        json!({"type": "input_json_delta", "partial_json": text}),
                        &mut out,
                    );
                }
            }
        }
        out
    }

    fn done(&mut self, ending: Ending, usage: TurnUsage) -> String {
        let mut out = String::new();
        self.close(&mut out);
        out.push_str(&event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(ending), "stop_sequence": null},
                "usage": Usage::of(usage),
            }),
        ));
        out.push_str(&event("message_stop", &json!({"type": "message_stop"})));
        out
    }

    fn failed(&mut self, error: &ApiError) -> String {
        event("error", &super::error::body(error))
    }
}
