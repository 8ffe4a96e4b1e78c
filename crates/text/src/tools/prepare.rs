//! What to render for a request with tools.
//!
//! Native families get OpenAI's `tools` list as the template variable and their own
//! template does the rest, including rendering earlier calls and results in the family's
//! markup. Where a family's templates need help, the messages are adjusted here:
//!
//! * DeepSeek's official templates never print `tools`: a system message in DeepSeek's
//!   documented wording describes them (the variable is passed too, for templates that do).
//! * Mistral's templates reject call ids that are not exactly 9 alphanumerics: ids are mapped
//!   to stable 9-character ones (the same mapping for a call and its result).
//! * Llama 3.1 and gpt-oss templates take one call per assistant turn: a turn with several is
//!   split, each call followed by its result.
//! * Generic templates know nothing of tools: a system message describes the tools and the
//!   JSON reply shape, earlier calls become that JSON, and results become user turns.
//!
//! With `ToolChoice::None` native templates still describe the tools (OpenAI semantics: the
//! model sees them but must not call; no grammar is imposed). Generic, whose description
//! would demand a JSON reply, then describes nothing.

use super::id::nine_char_id;
use super::{deepseek, generic, ToolCall, ToolChoice, ToolFormat, ToolSpec};
use crate::{ChatMessage, TemplateVars};

pub fn prepare(
    format: ToolFormat,
    messages: &[ChatMessage],
    tools: &[ToolSpec],
    choice: &ToolChoice,
) -> (Vec<ChatMessage>, TemplateVars) {
    let mut vars = TemplateVars::new();
    let mut messages = messages.to_vec();
    if format == ToolFormat::Generic {
        let messages = generic_history(&messages);
        if tools.is_empty() || *choice == ToolChoice::None {
            return (messages, vars);
        }
        let text = generic::system_prompt(tools, choice);
        return (with_system(messages, &text), vars);
    }
    if !tools.is_empty() {
        let list: Vec<serde_json::Value> = tools.iter().map(ToolSpec::openai_json).collect();
        vars.insert("tools".into(), serde_json::Value::Array(list));
    }
    match format {
        ToolFormat::DeepSeekV3 | ToolFormat::DeepSeekV31 if !tools.is_empty() => {
            let text = deepseek::system_prompt(tools, format == ToolFormat::DeepSeekV31);
            messages = with_system(messages, &text);
        }
        ToolFormat::Mistral => {
            for m in &mut messages {
                for c in &mut m.tool_calls {
                    c.id = nine_char_id(&c.id);
                }
                if let Some(id) = &mut m.tool_call_id {
                    *id = nine_char_id(id);
                }
            }
        }
        ToolFormat::Llama3 | ToolFormat::Harmony => messages = one_call_per_turn(messages),
        _ => {}
    }
    (messages, vars)
}

/// Prepends `text` to the first system message, or inserts one.
fn with_system(mut messages: Vec<ChatMessage>, text: &str) -> Vec<ChatMessage> {
    match messages.first_mut() {
        Some(m) if m.role == "system" => {
            m.content = format!("{}\n\n{text}", m.content.trim_end());
        }
        _ => messages.insert(0, ChatMessage::new("system", text)),
    }
    messages
}

/// Splits assistant turns with several calls so each call is followed by its result.
fn one_call_per_turn(messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    let mut rest = messages.into_iter().peekable();
    while let Some(m) = rest.next() {
        if m.tool_calls.len() < 2 {
            out.push(m);
            continue;
        }
        // The results that follow this turn, in order.
        let mut results = Vec::new();
        while rest.peek().is_some_and(|n| n.role == "tool") {
            if let Some(r) = rest.next() {
                results.push(r);
            }
        }
        for (i, call) in m.tool_calls.iter().enumerate() {
            let content = if i == 0 {
                m.content.clone()
            } else {
                String::new()
            };
            out.push(ChatMessage::assistant_calls(content, vec![call.clone()]));
            let at = results
                .iter()
                .position(|r| r.tool_call_id.as_deref() == Some(call.id.as_str()))
                .or_else(|| (!results.is_empty()).then_some(0));
            if let Some(at) = at {
                out.push(results.remove(at));
            }
        }
        out.extend(results);
    }
    out
}

/// History for a template without tool support: calls as the JSON the model is asked to
/// write, results (consecutive ones merged) as user turns.
fn generic_history(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    for m in messages {
        if !m.tool_calls.is_empty() {
            out.push(ChatMessage::new("assistant", calls_json(&m.tool_calls)));
        } else if m.role == "tool" {
            let result = serde_json::json!({"tool_response": {
                "name": m.name.clone().unwrap_or_default(),
                "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
                "content": m.content,
            }})
            .to_string();
            match out.last_mut() {
                Some(prev)
                    if prev.role == "user" && prev.content.starts_with("{\"tool_response\"") =>
                {
                    prev.content.push('\n');
                    prev.content.push_str(&result);
                }
                _ => out.push(ChatMessage::new("user", result)),
            }
        } else {
            out.push(m.clone());
        }
    }
    out
}

fn calls_json(calls: &[ToolCall]) -> String {
    let list: Vec<serde_json::Value> = calls
        .iter()
        .map(|c| {
            let args = serde_json::from_str::<serde_json::Value>(&c.arguments)
                .unwrap_or_else(|_| serde_json::Value::String(c.arguments.clone()));
            serde_json::json!({"name": c.name, "arguments": args})
        })
        .collect();
    serde_json::json!({ "tool_calls": list }).to_string()
}
