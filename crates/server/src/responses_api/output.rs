//! Output items and response objects of the Responses API, shared by the plain and the
//! streamed answer so both describe a reply identically (the `openai` client checks that a
//! streamed item's id and kind stay the same from `output_item.added` to
//! `response.completed`).
//!
//! A reply is at most one `reasoning` item (a reasoning model's thinking), one `message`
//! item (the text; present when there is text or nothing else) and one `function_call` item
//! per call, in that order. A reply cut short by `max_output_tokens` is `incomplete`.

use serde_json::{json, Map, Value};

use super::convert::Meta;
use super::store::Stored;
use crate::convo::assistant_message;
use crate::ids::new_id;
use crate::state::AppState;
use crate::turn::{Ending, Reply, TurnUsage};
use owl_text::tools::ToolCall;
use owl_text::ChatMessage;

/// One output item.
#[derive(Clone, Debug)]
pub enum Item {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

impl Item {
    pub fn reasoning(text: String) -> Item {
        Item::Reasoning {
            id: new_id("rs_"),
            text,
        }
    }

    pub fn message(text: String) -> Item {
        Item::Message {
            id: new_id("msg_"),
            text,
        }
    }

    pub fn call(call_id: String, name: String, arguments: String) -> Item {
        Item::Call {
            id: new_id("fc_"),
            call_id,
            name,
            arguments,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. } => id,
        }
    }

    /// The item as JSON with `status` (`in_progress`, `completed`, `incomplete`); an item in
    /// progress has no content yet.
    pub fn json(&self, status: &str) -> Value {
        let started = status == "in_progress";
        match self {
            Item::Reasoning { id, text } => {
                let content = if started {
                    json!([])
                } else {
                    json!([{"type": "reasoning_text", "text": text}])
                };
                json!({"type": "reasoning", "id": id, "summary": [], "content": content, "status": status})
            }
            Item::Message { id, text } => {
                let content = if started {
                    json!([])
                } else {
                    json!([text_part(text)])
                };
                json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
            }
            Item::Call {
                id,
                call_id,
                name,
                arguments,
            } => {
                let arguments = if started { "" } else { arguments.as_str() };
                json!({
                    "type": "function_call", "id": id, "call_id": call_id, "name": name,
                    "arguments": arguments, "status": status,
                })
            }
        }
    }
}

/// An `output_text` content part.
pub fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// The output items of a whole reply.
pub fn items(reply: &Reply) -> Vec<Item> {
    let mut out = Vec::new();
    if let Some(r) = reply.reasoning.as_ref().filter(|r| !r.is_empty()) {
        out.push(Item::reasoning(r.clone()));
    }
    if !reply.text.is_empty() || reply.tool_calls.is_empty() {
        out.push(Item::message(reply.text.clone()));
    }
    for c in &reply.tool_calls {
        out.push(Item::call(
            c.id.clone(),
            c.name.clone(),
            c.arguments.clone(),
        ));
    }
    out
}

/// `completed`, or `incomplete` when the reply hit `max_output_tokens` (or the context).
pub fn status(ending: Ending) -> &'static str {
    match ending {
        Ending::Length => "incomplete",
        Ending::Stop | Ending::ToolCalls => "completed",
    }
}

/// The parts of a response object that do not come from the request.
pub struct Head<'a> {
    pub id: &'a str,
    pub created_at: u64,
    pub model: &'a str,
}

/// A response object: `status` `in_progress` (no usage yet), `completed` or `incomplete`.
pub fn response(
    head: &Head,
    meta: &Meta,
    status: &str,
    items: &[Item],
    usage: Option<TurnUsage>,
) -> Value {
    let item_status = if status == "in_progress" {
        "in_progress"
    } else {
        status
    };
    let mut m = Map::new();
    m.insert("id".into(), json!(head.id));
    m.insert("object".into(), json!("response"));
    m.insert("created_at".into(), json!(head.created_at));
    m.insert("status".into(), json!(status));
    m.insert("model".into(), json!(head.model));
    m.insert(
        "output".into(),
        Value::Array(items.iter().map(|i| i.json(item_status)).collect()),
    );
    let incomplete = (status == "incomplete").then(|| json!({"reason": "max_output_tokens"}));
    m.insert("incomplete_details".into(), json!(incomplete));
    m.insert(
        "usage".into(),
        match usage {
            None => Value::Null,
            Some(u) => json!({
                "input_tokens": u.prompt,
                "input_tokens_details": {"cached_tokens": u.cached, "cache_write_tokens": 0},
                "output_tokens": u.completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": u.prompt + u.completion,
            }),
        },
    );
    for (k, v) in &meta.echo {
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(m)
}

/// The conversation after the reply, to store: the history and the reply's text and calls
/// as one assistant message (thinking is dropped, as templates drop past thinking).
pub fn history_after(meta: &Meta, items: &[Item]) -> (Vec<ChatMessage>, Vec<ToolCall>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for i in items {
        match i {
            Item::Reasoning { .. } => {}
            Item::Message { text: t, .. } => text.push_str(t),
            Item::Call {
                call_id,
                name,
                arguments,
                ..
            } => calls.push(ToolCall {
                id: call_id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
            }),
        }
    }
    let mut history = meta.history.clone();
    history.push(assistant_message(text, calls.clone()));
    (history, calls)
}

/// The final response object of a finished reply; kept in the store when the request asked
/// for it (`store`, default true).
pub fn finish(
    state: &AppState,
    head: &Head,
    meta: &Meta,
    items: &[Item],
    ending: Ending,
    usage: TurnUsage,
) -> Value {
    let resp = response(head, meta, status(ending), items, Some(usage));
    if meta.store {
        let (history, calls) = history_after(meta, items);
        let mut names = meta.names.clone();
        names.extend(calls.into_iter().map(|c| (c.id, c.name)));
        state.responses().put(
            head.id.to_string(),
            Stored {
                response: resp.clone(),
                history,
                names,
            },
        );
    }
    resp
}
