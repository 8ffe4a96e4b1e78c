//! A running turn as Ollama's replies: NDJSON lines while it streams (one JSON object per
//! line, the last with `"done": true` and the timings), or one object when `stream` is false.
//!
//! Chat replies carry `message` (`content`, `thinking`, `tool_calls` with arguments as
//! objects); generate replies carry `response` and `thinking`. Tool calls go out whole, in
//! one line before the last, as Ollama sends them. Durations are nanoseconds: `load_duration`
//! is the wait for the model, `prompt_eval_duration` the time to the first token,
//! `eval_duration` the rest.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use owl_text::tools::ToolCall;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::ollama::error::message;
use crate::ollama::time;
use crate::turn::{Ending, Piece, TurnEvent, TurnStream, TurnUsage};

/// Which route's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Generate,
}

/// What every line of one reply shares.
pub struct Meta {
    pub kind: Kind,
    pub model: String,
    /// When the request arrived.
    pub started: Instant,
    /// Time spent waiting for the model to load.
    pub load: Duration,
    /// Send the thinking (`think` was not false).
    pub show_thinking: bool,
}

struct Builder {
    meta: Meta,
    calls: Vec<ToolCall>,
    submitted: Instant,
    first: Option<Instant>,
}

impl Builder {
    fn head(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("model".into(), json!(self.meta.model));
        m.insert("created_at".into(), json!(time::now()));
        m
    }

    /// A line with `text` and `thinking` (either may be empty).
    fn chunk(
        &self,
        text: &str,
        thinking: &str,
        calls: Option<Value>,
        done: bool,
    ) -> Map<String, Value> {
        let mut m = self.head();
        match self.meta.kind {
            Kind::Chat => {
                let mut msg = Map::new();
                msg.insert("role".into(), json!("assistant"));
                msg.insert("content".into(), json!(text));
                if !thinking.is_empty() && self.meta.show_thinking {
                    msg.insert("thinking".into(), json!(thinking));
                }
                if let Some(c) = calls {
                    msg.insert("tool_calls".into(), c);
                }
                m.insert("message".into(), Value::Object(msg));
            }
            Kind::Generate => {
                m.insert("response".into(), json!(text));
                if !thinking.is_empty() && self.meta.show_thinking {
                    m.insert("thinking".into(), json!(thinking));
                }
            }
        }
        m.insert("done".into(), json!(done));
        m
    }

    fn take(&mut self, pieces: Vec<Piece>, text: &mut String, thinking: &mut String) {
        for p in pieces {
            match p {
                Piece::Reasoning(r) => thinking.push_str(&r),
                Piece::Text(t) => text.push_str(&t),
                Piece::CallBegin { index, id, name } => {
                    if self.calls.len() <= index {
                        self.calls.resize_with(index + 1, || ToolCall {
                            id: String::new(),
                            name: String::new(),
                            arguments: String::new(),
                        });
                    }
                    self.calls[index].id = id;
                    self.calls[index].name = name;
                }
                Piece::CallArgs { index, text } => {
                    if let Some(c) = self.calls.get_mut(index) {
                        c.arguments.push_str(&text);
                    }
                }
            }
        }
    }

    fn calls_json(&self) -> Option<Value> {
        (!self.calls.is_empty()).then(|| {
            Value::Array(
                self.calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let args = serde_json::from_str::<Value>(&c.arguments)
                            .unwrap_or_else(|_| Value::String(c.arguments.clone()));
                        json!({"id": c.id, "function": {"index": i, "name": c.name, "arguments": args}})
                    })
                    .collect(),
            )
        })
    }

    /// The closing fields: why it ended, counts and timings.
    fn finish(&self, m: &mut Map<String, Value>, ending: Ending, usage: TurnUsage) {
        let now = Instant::now();
        let first = self.first.unwrap_or(now);
        let ns = |d: Duration| json!(d.as_nanos() as u64);
        m.insert(
            "done_reason".into(),
            json!(match ending {
                Ending::Length => "length",
                Ending::Stop | Ending::ToolCalls => "stop",
            }),
        );
        m.insert("total_duration".into(), ns(now - self.meta.started));
        m.insert("load_duration".into(), ns(self.meta.load));
        m.insert("prompt_eval_count".into(), json!(usage.prompt));
        m.insert("prompt_eval_duration".into(), ns(first - self.submitted));
        m.insert("eval_count".into(), json!(usage.completion));
        m.insert("eval_duration".into(), ns(now - first));
    }
}

fn line(v: Map<String, Value>) -> Bytes {
    let mut s = Value::Object(v).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// The whole reply as one object (`stream: false`).
pub async fn complete(mut stream: TurnStream, meta: Meta) -> Result<Value, ApiError> {
    let mut b = Builder {
        meta,
        calls: Vec::new(),
        submitted: Instant::now(),
        first: None,
    };
    let (mut text, mut thinking) = (String::new(), String::new());
    while let Some(ev) = stream.next().await {
        match ev? {
            TurnEvent::Pieces(pieces, _) => {
                b.first.get_or_insert_with(Instant::now);
                b.take(pieces, &mut text, &mut thinking);
            }
            TurnEvent::Done { ending, usage } => {
                let mut m = b.chunk(&text, &thinking, b.calls_json(), true);
                b.finish(&mut m, ending, usage);
                return Ok(Value::Object(m));
            }
        }
    }
    Err(ApiError::server("the generation ended without a result"))
}

/// The reply as NDJSON lines (`stream: true`, Ollama's default).
pub fn stream(stream: TurnStream, meta: Meta) -> Response {
    let b = Builder {
        meta,
        calls: Vec::new(),
        submitted: Instant::now(),
        first: None,
    };
    let lines = futures_util::stream::unfold(Some((stream, b)), |st| async move {
        let (mut stream, mut b) = st?;
        loop {
            match stream.next().await {
                Some(Ok(TurnEvent::Pieces(pieces, _))) => {
                    b.first.get_or_insert_with(Instant::now);
                    let (mut text, mut thinking) = (String::new(), String::new());
                    b.take(pieces, &mut text, &mut thinking);
                    let shown_thinking = if b.meta.show_thinking {
                        thinking.len()
                    } else {
                        0
                    };
                    if text.is_empty() && shown_thinking == 0 {
                        continue;
                    }
                    let l = line(b.chunk(&text, &thinking, None, false));
                    return Some((Ok::<Bytes, Infallible>(l), Some((stream, b))));
                }
                Some(Ok(TurnEvent::Done { ending, usage })) => {
                    let mut out = Vec::new();
                    if let Some(calls) = b.calls_json() {
                        out.extend_from_slice(&line(b.chunk("", "", Some(calls), false)));
                    }
                    let mut m = b.chunk("", "", None, true);
                    b.finish(&mut m, ending, usage);
                    out.extend_from_slice(&line(m));
                    return Some((Ok(Bytes::from(out)), None));
                }
                Some(Err(e)) => {
                    let mut m = Map::new();
                    m.insert("error".into(), json!(message(&e)));
                    return Some((Ok(line(m)), None));
                }
                None => return None,
            }
        }
    });
    ndjson_response(Body::from_stream(lines))
}

/// A 200 NDJSON response around `body`.
pub fn ndjson_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}
