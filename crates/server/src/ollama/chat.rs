//! `POST /api/chat`: a chat turn in Ollama's shapes, through the same [`crate::turn`] every
//! other chat API uses: messages (with `tool_calls` and `tool` results), `tools`, `format`,
//! `options`, `think`, `keep_alive`, streamed as NDJSON unless `stream` is false.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use owl_text::tools::{ToolCall, ToolChoice, ToolSpec};
use owl_text::ChatMessage;
use serde::Deserialize;
use serde_json::Value;

use crate::body;
use crate::error::ApiError;
use crate::generation::RequestLog;
use crate::ollama::ndjson::{self, Kind, Meta};
use crate::ollama::options;
use crate::ollama::OllamaError;
use crate::params;
use crate::state::AppState;
use crate::tool_params;
use crate::turn::{self, Turn};

const KNOWN: &[&str] = &[
    "model",
    "messages",
    "tools",
    "format",
    "options",
    "stream",
    "keep_alive",
    "think",
];

#[derive(Deserialize)]
struct ChatIn {
    model: Option<String>,
    messages: Option<Vec<MessageIn>>,
    tools: Option<Vec<Value>>,
    format: Option<Value>,
    options: Option<Value>,
    stream: Option<bool>,
    keep_alive: Option<Value>,
    think: Option<Value>,
}

#[derive(Deserialize)]
struct MessageIn {
    role: String,
    #[serde(default)]
    content: Option<String>,
    images: Option<Value>,
    /// Earlier thinking of an assistant message: templates drop it, so it is accepted.
    #[allow(dead_code)]
    thinking: Option<String>,
    tool_calls: Option<Vec<CallIn>>,
    tool_name: Option<String>,
}

#[derive(Deserialize)]
struct CallIn {
    function: FunctionIn,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: String,
    #[serde(default)]
    arguments: Value,
}

pub async fn chat(
    State(state): State<AppState>,
    log: Option<Extension<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OllamaError> {
    let started = Instant::now();
    let bytes = body::bytes(body)?;
    let req: ChatIn = body::parse(&bytes)?;
    body::check_fields(&bytes, KNOWN, &[])?;
    let keep_alive = options::keep_alive(req.keep_alive.as_ref())?;
    let model = state.pool().get(req.model.as_deref(), keep_alive).await?;
    let load = started.elapsed();
    let msgs = messages(req.messages.unwrap_or_default())?;
    if msgs.is_empty() {
        // Ollama: an empty chat loads the model (and `keep_alive: 0` unloads it).
        let done_reason =
            if keep_alive == Some(crate::pool::KeepAlive::For(std::time::Duration::ZERO)) {
                "unload"
            } else {
                "load"
            };
        return Ok(Json(serde_json::json!({
            "model": model.spec().id,
            "created_at": crate::ollama::time::now(),
            "message": {"role": "assistant", "content": ""},
            "done_reason": done_reason,
            "done": true,
        }))
        .into_response());
    }
    let tools = tools(req.tools.unwrap_or_default())?;
    let opts = options::options(req.options.as_ref(), &model.spec().defaults.params)?;
    let mut settings = params::settings(&opts.common, model.engine.n_vocab())?;
    settings.stream = req.stream.unwrap_or(true);
    let output = options::format(req.format.as_ref())?;
    let vars = options::think(req.think.as_ref())?;
    let choice = if tools.is_empty() {
        ToolChoice::None
    } else {
        ToolChoice::Auto
    };
    let stream_wanted = settings.stream;
    let turn = Turn {
        messages: msgs,
        tools,
        tool_choice: choice,
        parallel_tool_calls: true,
        output,
        output_field: "format",
        settings,
        max_tokens: options::max_tokens(&opts),
        max_tokens_field: "options.num_predict",
        logprobs: None,
        template_vars: vars,
    };
    let _ = opts.num_ctx; // bounded below by the loaded context; see docs/SERVER.md
    let running = turn::start(&state, &model, turn, log.map(|Extension(l)| l)).await?;
    let meta = Meta {
        kind: Kind::Chat,
        model: model.spec().id.clone(),
        started,
        load,
        show_thinking: options::thinking_shown(req.think.as_ref()),
    };
    if stream_wanted {
        return Ok(ndjson::stream(running, meta));
    }
    Ok(Json(ndjson::complete(running, meta).await?).into_response())
}

/// Ollama's messages as chat messages. Calls get ids (`call_I_J`), and each `tool` result
/// answers the earliest unanswered call of its `tool_name` (or the earliest unanswered one).
fn messages(input: Vec<MessageIn>) -> Result<Vec<ChatMessage>, ApiError> {
    let mut out = Vec::with_capacity(input.len());
    let mut open: Vec<(String, String)> = Vec::new();
    for (i, m) in input.into_iter().enumerate() {
        options::no_images(m.images.as_ref(), &format!("messages[{i}].images"))?;
        let content = m.content.unwrap_or_default();
        match m.role.as_str() {
            "system" | "user" => out.push(ChatMessage::new(m.role.as_str(), content)),
            "assistant" => {
                let calls: Vec<ToolCall> = m
                    .tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(j, c)| ToolCall {
                        id: format!("call_{i}_{j}"),
                        name: c.function.name,
                        arguments: match c.function.arguments {
                            Value::Null => "{}".to_string(),
                            Value::String(s) => s,
                            v => v.to_string(),
                        },
                    })
                    .collect();
                open.extend(calls.iter().map(|c| (c.id.clone(), c.name.clone())));
                out.push(if calls.is_empty() {
                    ChatMessage::new("assistant", content)
                } else {
                    ChatMessage::assistant_calls(content, calls)
                });
            }
            "tool" => {
                let name = m.tool_name.unwrap_or_default();
                let k = open
                    .iter()
                    .position(|(_, n)| !name.is_empty() && *n == name)
                    .or(if open.is_empty() { None } else { Some(0) });
                let (id, called) = match k {
                    Some(k) => open.remove(k),
                    None => (format!("call_{i}"), name.clone()),
                };
                let name = if name.is_empty() { called } else { name };
                out.push(ChatMessage::tool_result(id, name, content));
            }
            other => {
                return Err(ApiError::bad_param(
                    &format!("messages[{i}].role"),
                    format!("unknown role {other:?}: use system, user, assistant or tool"),
                ))
            }
        }
    }
    Ok(out)
}

/// Ollama's tools have OpenAI's shape: `{"type": "function", "function": {…}}`.
fn tools(input: Vec<Value>) -> Result<Vec<ToolSpec>, ApiError> {
    let mut out = Vec::new();
    for (i, t) in input.iter().enumerate() {
        let field = format!("tools[{i}]");
        if t.get("type").and_then(Value::as_str).unwrap_or("function") != "function" {
            return Err(ApiError::bad_param(
                &format!("{field}.type"),
                "only tools of type \"function\" are supported",
            ));
        }
        let f = t.get("function").ok_or_else(|| {
            ApiError::bad_param(&format!("{field}.function"), "a tool needs `function`")
        })?;
        out.push(tool_params::tool(
            &format!("{field}.function"),
            f.get("name").and_then(Value::as_str),
            f.get("description").and_then(Value::as_str),
            f.get("parameters"),
            false,
        )?);
    }
    tool_params::unique(&out, "tools")?;
    Ok(out)
}
