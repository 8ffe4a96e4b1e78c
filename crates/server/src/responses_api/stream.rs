//! The event stream of a streamed response: `response.created` and `response.in_progress`;
//! per output item `response.output_item.added`, its content part's `added`, the deltas
//! (`response.reasoning_text.delta`, `response.output_text.delta`,
//! `response.function_call_arguments.delta`), their `done`, the part's `done` and
//! `response.output_item.done`; finally `response.completed` (or `response.incomplete`) with
//! the whole response, which is stored like a plain one. Every event carries its
//! `sequence_number`. A failure after the start is an `error` event, and the stream ends.

use serde_json::{json, Value};

use super::convert::Meta;
use super::output::{self, text_part, Head, Item};
use crate::error::ApiError;
use crate::state::AppState;
use crate::turn::{Ending, Piece, TurnUsage};
use crate::turn_sse::{event, EventFormat};

pub struct ResponseStream {
    state: AppState,
    id: String,
    created_at: u64,
    model: String,
    meta: Meta,
    /// Items so far; the last one is open when `open` is set.
    items: Vec<Item>,
    open: bool,
    seq: u64,
}

impl ResponseStream {
    pub fn new(state: AppState, id: String, created_at: u64, model: String, meta: Meta) -> Self {
        ResponseStream {
            state,
            id,
            created_at,
            model,
            meta,
            items: Vec::new(),
            open: false,
            seq: 0,
        }
    }

    fn head(&self) -> Head<'_> {
        Head {
            id: &self.id,
            created_at: self.created_at,
            model: &self.model,
        }
    }

    /// An event of `kind` with `fields` and the next sequence number.
    fn emit(&mut self, kind: &str, mut fields: Value, out: &mut String) {
        if let Value::Object(m) = &mut fields {
            m.insert("type".into(), json!(kind));
            m.insert("sequence_number".into(), json!(self.seq));
        }
        self.seq += 1;
        out.push_str(&event(kind, &fields));
    }

    fn index(&self) -> usize {
        self.items.len().saturating_sub(1)
    }

    /// Opens `item` (closing the open one) and announces it with its empty content part.
    fn open(&mut self, item: Item, out: &mut String) {
        self.close("completed", out);
        let added = item.json("in_progress");
        let part = match &item {
            Item::Reasoning { .. } => Some(json!({"type": "reasoning_text", "text": ""})),
            Item::Message { .. } => Some(text_part("")),
            Item::Call { .. } => None,
        };
        let item_id = item.id().to_string();
        self.items.push(item);
        self.open = true;
        let output_index = self.index();
        self.emit(
            "response.output_item.added",
            json!({"output_index": output_index, "item": added}),
            out,
        );
        if let Some(part) = part {
            self.emit(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "part": part}),
                out,
            );
        }
    }

    /// Closes the open item with `status`.
    fn close(&mut self, status: &str, out: &mut String) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let Some(item) = self.items.last().cloned() else {
            return;
        };
        let output_index = self.index();
        let item_id = item.id().to_string();
        match &item {
            Item::Reasoning { text, .. } => {
                self.emit(
                    "response.reasoning_text.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "text": text}),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                           "part": {"type": "reasoning_text", "text": text}}),
                    out,
                );
            }
            Item::Message { text, .. } => {
                self.emit(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                           "text": text, "logprobs": []}),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                           "part": text_part(text)}),
                    out,
                );
            }
            Item::Call {
                name, arguments, ..
            } => {
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": output_index, "name": name,
                           "arguments": arguments}),
                    out,
                );
            }
        }
        self.emit(
            "response.output_item.done",
            json!({"output_index": output_index, "item": item.json(status)}),
            out,
        );
    }

    /// Appends `delta` to the open item's text or arguments.
    fn grow(&mut self, delta: &str) {
        if let Some(
            Item::Reasoning { text, .. }
            | Item::Message { text, .. }
            | Item::Call {
                arguments: text, ..
            },
        ) = self.items.last_mut()
        {
            text.push_str(delta);
        }
    }

    fn open_kind(&self) -> Option<&Item> {
        self.items.last().filter(|_| self.open)
    }
}

impl EventFormat for ResponseStream {
    fn opening(&mut self) -> String {
        let mut out = String::new();
        let snapshot = output::response(&self.head(), &self.meta, "in_progress", &[], None);
        self.emit("response.created", json!({"response": snapshot}), &mut out);
        self.emit(
            "response.in_progress",
            json!({"response": snapshot}),
            &mut out,
        );
        out
    }

    fn pieces(&mut self, pieces: Vec<Piece>) -> String {
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Reasoning(t) | Piece::Text(t) if t.is_empty() => {}
                Piece::Reasoning(t) => {
                    if !matches!(self.open_kind(), Some(Item::Reasoning { .. })) {
                        self.open(Item::reasoning(String::new()), &mut out);
                    }
                    self.grow(&t);
                    let (item_id, output_index) =
                        (self.items[self.index()].id().to_string(), self.index());
                    self.emit(
                        "response.reasoning_text.delta",
                        json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "delta": t}),
                        &mut out,
                    );
                }
                Piece::Text(t) => {
                    if !matches!(self.open_kind(), Some(Item::Message { .. })) {
                        self.open(Item::message(String::new()), &mut out);
                    }
                    self.grow(&t);
                    let (item_id, output_index) =
                        (self.items[self.index()].id().to_string(), self.index());
                    self.emit(
                        "response.output_text.delta",
                        json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                               "delta": t, "logprobs": []}),
                        &mut out,
                    );
                }
                Piece::CallBegin { id, name, .. } => {
                    self.open(Item::call(id, name, String::new()), &mut out);
                }
                Piece::CallArgs { text, .. } => {
                    if !matches!(self.open_kind(), Some(Item::Call { .. })) {
                        continue;
                    }
                    self.grow(&text);
                    let (item_id, output_index) =
                        (self.items[self.index()].id().to_string(), self.index());
                    self.emit(
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": output_index, "delta": text}),
                        &mut out,
                    );
                }
            }
        }
        out
    }

    fn done(&mut self, ending: Ending, usage: TurnUsage) -> String {
        let mut out = String::new();
        let status = output::status(ending);
        // As in a plain response, a reply with nothing else has an (empty) message.
        if self.items.is_empty() {
            self.open(Item::message(String::new()), &mut out);
        }
        self.close(status, &mut out);
        let head = Head {
            id: &self.id,
            created_at: self.created_at,
            model: &self.model,
        };
        let resp = output::finish(&self.state, &head, &self.meta, &self.items, ending, usage);
        let kind = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(kind, json!({"response": resp}), &mut out);
        out
    }

    fn failed(&mut self, error: &ApiError) -> String {
        let mut out = String::new();
        self.emit(
            "error",
            json!({"code": error.code.clone().unwrap_or_else(|| error.kind.to_string()),
                   "message": error.message, "param": error.param}),
            &mut out,
        );
        out
    }
}
