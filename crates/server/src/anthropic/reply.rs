//! A finished turn as an Anthropic message: thinking, text and `tool_use` content blocks, the
//! stop reason and the usage.
//!
//! Usage follows Anthropic's accounting: `input_tokens` are the prompt tokens that were not
//! read from the prefix cache, `cache_read_input_tokens` those that were (their sum is the
//! prompt), so clients that add them up get the prompt size.

use serde::Serialize;
use serde_json::{json, Value};

use crate::turn::{Ending, Reply, TurnUsage};

/// Anthropic's `stop_reason` for an ending.
///
/// A stop sequence cannot be told apart from the end of generation (the engine reports both
/// as a stop), so both are `end_turn` and `stop_sequence` stays null.
pub fn stop_reason(ending: Ending) -> &'static str {
    match ending {
        Ending::Stop => "end_turn",
        Ending::Length => "max_tokens",
        Ending::ToolCalls => "tool_use",
    }
}

#[derive(Serialize, Debug, Clone, Copy, Default)]
pub struct Usage {
    pub input_tokens: usize,
    pub output_tokens: usize,
    pub cache_creation_input_tokens: usize,
    pub cache_read_input_tokens: usize,
}

impl Usage {
    pub fn of(u: TurnUsage) -> Usage {
        Usage {
            input_tokens: u.prompt.saturating_sub(u.cached),
            output_tokens: u.completion,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: u.cached,
        }
    }
}

/// The message object (`content` empty and `stop_reason` null in a stream's `message_start`).
#[derive(Serialize, Debug)]
pub struct Message {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: String,
    pub content: Vec<Value>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// A `tool_use` call's `input`: its arguments as a JSON object. Arguments that are not one
/// (cut short by `max_tokens`, which the stop reason says) become `{}`.
pub fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// The whole reply as a message.
pub fn message(id: String, model: String, reply: Reply) -> Message {
    let mut content = Vec::new();
    if let Some(r) = reply.reasoning.filter(|r| !r.is_empty()) {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    if !reply.text.is_empty() || reply.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": reply.text}));
    }
    for c in reply.tool_calls {
        content.push(json!({
            "type": "tool_use",
            "id": c.id,
            "name": c.name,
            "input": tool_input(&c.arguments),
        }));
    }
    Message {
        id,
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason: Some(stop_reason(reply.ending)),
        stop_sequence: None,
        usage: Usage::of(reply.usage),
    }
}
