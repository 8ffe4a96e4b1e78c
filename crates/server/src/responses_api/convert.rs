//! A Responses request as a [`Turn`], plus what the response object echoes back.
//!
//! The conversation is the previous response's (with `previous_response_id`), then this
//! request's input items: messages, `function_call` items (joined into one assistant turn
//! with the message before them, as the API returns them) and `function_call_output` items
//! (`tool` messages). `instructions` go first as a system message, for this turn only: the
//! API does not carry them over to continuations, so the stored history leaves them out.

use std::collections::HashMap;

use owl_grammar::Constraint;
use owl_text::tools::{ToolCall, ToolChoice, ToolSpec};
use owl_text::{ChatMessage, TemplateVars};
use serde_json::{json, Map, Value};

use super::request::{Content, InputField, Item, ResponsesRequest, TextConfig, ToolIn};
use super::store::Stored;
use crate::convo::Convo;
use crate::error::ApiError;
use crate::openai::CommonFields;
use crate::params;
use crate::tool_params;
use crate::turn::Turn;

/// What a response needs besides the turn.
pub struct Meta {
    /// Request settings every response object repeats (`instructions`, `tools`, …).
    pub echo: Map<String, Value>,
    /// Keep the finished response (`store`, default true).
    pub store: bool,
    /// The conversation before the reply, without `instructions`.
    pub history: Vec<ChatMessage>,
    /// Function names by call id in `history`.
    pub names: HashMap<String, String>,
}

pub struct Converted {
    pub turn: Turn,
    pub meta: Meta,
    pub stream: bool,
}

/// Checks `req` and builds its turn; `previous` is the response `previous_response_id`
/// names (looked up by the caller).
pub fn convert(
    mut req: ResponsesRequest,
    previous: Option<&Stored>,
    n_vocab: usize,
) -> Result<Converted, ApiError> {
    if req.background == Some(true) {
        return Err(ApiError::bad_param(
            "background",
            "background responses are not supported; leave `background` out or false",
        ));
    }
    if let Some(t) = req.truncation.as_deref() {
        if t != "disabled" && t != "auto" {
            return Err(ApiError::bad_param(
                "truncation",
                format!("`truncation` must be \"disabled\" or \"auto\", got {t:?}"),
            ));
        }
    }
    let common = CommonFields {
        model: req.model.clone(),
        temperature: req.temperature,
        top_p: req.top_p,
        stream: req.stream,
        ..CommonFields::default()
    };
    let settings = params::settings(&common, n_vocab)?;
    let tools = tools(req.tools.take().unwrap_or_default())?;
    let tool_choice = tool_choice(req.tool_choice.as_ref(), &tools)?;
    let parallel = req.parallel_tool_calls.unwrap_or(true);
    let (output, text_echo) = format(req.text.take())?;
    let mut convo = match previous {
        Some(p) => Convo::from_history(p.history.clone(), p.names.clone()),
        None => Convo::new(),
    };
    input(&mut convo, req.input.take())?;
    let (history, names) = convo.finish_with_names();
    if history.is_empty() {
        return Err(ApiError::bad_param(
            "input",
            "`input` is required (a string or a list of input items)",
        ));
    }
    let mut messages = Vec::with_capacity(history.len() + 1);
    if let Some(i) = req.instructions.as_ref().filter(|i| !i.is_empty()) {
        messages.push(ChatMessage::new("system", i.clone()));
    }
    messages.extend(history.iter().cloned());
    let mut template_vars = TemplateVars::new();
    let effort = req.reasoning.as_ref().and_then(|r| r.effort.clone());
    // As `reasoning_effort` in Chat Completions: the template reads it (gpt-oss); `none` and
    // `minimal` turn thinking off where the template can (Qwen3's `enable_thinking`).
    match effort.as_deref() {
        None => {}
        Some("none" | "minimal") => {
            template_vars.insert("enable_thinking".into(), Value::Bool(false));
        }
        Some(e @ ("low" | "medium" | "high")) => {
            template_vars.insert("reasoning_effort".into(), Value::String(e.to_string()));
        }
        Some(other) => {
            return Err(ApiError::bad_param(
                "reasoning.effort",
                format!(
                    "`reasoning.effort` must be none, minimal, low, medium or high, got {other:?}"
                ),
            ))
        }
    }
    let echo = echo(&req, &tools, &tool_choice, parallel, text_echo, effort);
    let stream = settings.stream;
    Ok(Converted {
        turn: Turn {
            messages,
            tools,
            tool_choice,
            parallel_tool_calls: parallel,
            output,
            output_field: "text.format",
            settings,
            max_tokens: req.max_output_tokens,
            max_tokens_field: "max_output_tokens",
            logprobs: None,
            template_vars,
        },
        meta: Meta {
            echo,
            store: req.store.unwrap_or(true),
            history,
            names,
        },
        stream,
    })
}

/// The request settings a response object repeats (OpenAI's defaults when absent).
fn echo(
    req: &ResponsesRequest,
    tools: &[ToolSpec],
    choice: &ToolChoice,
    parallel: bool,
    text: Value,
    effort: Option<String>,
) -> Map<String, Value> {
    let tools: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": t.strict,
            })
        })
        .collect();
    let choice = match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Function(name) => json!({"type": "function", "name": name}),
    };
    let v = json!({
        "instructions": req.instructions,
        "tools": tools,
        "tool_choice": choice,
        "parallel_tool_calls": parallel,
        "temperature": req.temperature.unwrap_or(1.0),
        "top_p": req.top_p.unwrap_or(1.0),
        "text": text,
        "previous_response_id": req.previous_response_id,
        "max_output_tokens": req.max_output_tokens,
        "metadata": req.metadata.clone().unwrap_or_else(|| json!({})),
        "reasoning": {"effort": effort, "summary": null},
        "store": req.store.unwrap_or(true),
        "truncation": req.truncation.clone().unwrap_or_else(|| "disabled".into()),
        "user": req.user,
        "service_tier": "default",
        "background": false,
        "error": null,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn tools(input: Vec<ToolIn>) -> Result<Vec<ToolSpec>, ApiError> {
    let tools = input
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let field = format!("tools[{i}]");
            match t.kind.as_deref() {
                Some("function") => {}
                other => {
                    return Err(ApiError::bad_param(
                        &format!("{field}.type"),
                        format!("`{field}.type`: only function tools are supported (`\"type\": \"function\"`), got {}", crate::body::shown(other)),
                    ))
                }
            }
            // The API's default is strict; owl holds calls to the schema either way.
            tool_params::tool(
                &field,
                t.name.as_deref(),
                t.description.as_deref(),
                t.parameters.as_ref(),
                t.strict.unwrap_or(true),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    tool_params::unique(&tools, "tools")?;
    Ok(tools)
}

/// `"auto" | "none" | "required"` or `{"type": "function", "name": …}` (flat, unlike Chat
/// Completions).
fn tool_choice(c: Option<&Value>, tools: &[ToolSpec]) -> Result<ToolChoice, ApiError> {
    const F: &str = "tool_choice";
    let choice = match c {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::bad_param(
                    F,
                    format!("`tool_choice` must be \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"name\": …}}, got {other:?}"),
                ))
            }
        },
        Some(Value::Object(o)) => {
            match o.get("type").and_then(Value::as_str) {
                Some("function") => {}
                other => {
                    return Err(ApiError::bad_param(
                        "tool_choice.type",
                        format!("only `{{\"type\": \"function\", \"name\": …}}` is supported as an object `tool_choice`, got type {}", crate::body::shown(other)),
                    ))
                }
            }
            let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_param(
                    "tool_choice.name",
                    "`tool_choice` of type function needs a `name`",
                )
            })?;
            ToolChoice::Function(name.to_string())
        }
        Some(_) => {
            return Err(ApiError::bad_param(
                F,
                "`tool_choice` must be a string or an object",
            ))
        }
    };
    let field = match choice {
        ToolChoice::Function(_) if !tools.is_empty() => "tool_choice.name",
        _ => F,
    };
    tool_params::choice(choice, tools, field)
}

/// `text.format` as a constraint, and the `text` object to echo.
fn format(text: Option<TextConfig>) -> Result<(Option<Constraint>, Value), ApiError> {
    let (format, verbosity) = match text {
        None => (None, None),
        Some(t) => (t.format, t.verbosity),
    };
    let constraint = tool_params::output_format(format.as_ref(), "text.format")?;
    let format = format
        .filter(|f| !f.is_null())
        .unwrap_or_else(|| json!({"type": "text"}));
    Ok((
        constraint,
        json!({"format": format, "verbosity": verbosity}),
    ))
}

fn input(convo: &mut Convo, input: Option<InputField>) -> Result<(), ApiError> {
    let items = match input {
        None => return Ok(()),
        Some(InputField::Text(t)) => {
            convo.say("user", t);
            return Ok(());
        }
        Some(InputField::Items(items)) => items,
    };
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("input[{i}]");
        match item.kind.as_deref() {
            None | Some("message") => message(convo, item, &at)?,
            Some("function_call") => {
                let call_id = required(item.call_id, &at, "call_id")?;
                let name = required(item.name, &at, "name")?;
                let arguments = item.arguments.unwrap_or_else(|| "{}".into());
                convo.assistant_call(ToolCall {
                    id: call_id,
                    name,
                    arguments,
                });
            }
            Some("function_call_output") => {
                let call_id = required(item.call_id, &at, "call_id")?;
                let output = match item.output {
                    None => {
                        return Err(ApiError::bad_param(
                            &format!("{at}.output"),
                            "a function_call_output needs `output`",
                        ))
                    }
                    Some(c) => text(c, &format!("{at}.output"))?,
                };
                convo.tool_result(&call_id, output);
            }
            // Earlier reasoning: chat templates drop past thinking, so does owl.
            Some("reasoning") => {}
            Some(other) => {
                return Err(ApiError::bad_param(
                    &format!("{at}.type"),
                    format!("input items of type {other:?} are not supported; use message, function_call or function_call_output"),
                ))
            }
        }
    }
    Ok(())
}

fn required(v: Option<String>, at: &str, field: &str) -> Result<String, ApiError> {
    v.ok_or_else(|| {
        ApiError::bad_param(&format!("{at}.{field}"), format!("`{at}` needs `{field}`"))
    })
}

fn message(convo: &mut Convo, item: Item, at: &str) -> Result<(), ApiError> {
    let content = match item.content {
        None => {
            return Err(ApiError::bad_param(
                &format!("{at}.content"),
                "a message needs `content`",
            ))
        }
        Some(c) => text(c, &format!("{at}.content"))?,
    };
    match item.role.as_deref() {
        Some("user") => convo.say("user", content),
        Some("system" | "developer") => convo.say("system", content),
        Some("assistant") => {
            convo.end_assistant();
            convo.assistant_text(&content);
        }
        other => {
            return Err(ApiError::bad_param(
                &format!("{at}.role"),
                format!(
                    "`role` must be user, assistant, system or developer, got {}",
                    crate::body::shown(other)
                ),
            ))
        }
    }
    Ok(())
}

/// Text content: a string or text parts joined.
fn text(c: Content, at: &str) -> Result<String, ApiError> {
    let parts = match c {
        Content::Text(t) => return Ok(t),
        Content::Parts(p) => p,
    };
    let mut out = String::new();
    for (j, p) in parts.into_iter().enumerate() {
        let here = format!("{at}[{j}]");
        match p.kind.as_deref() {
            Some("input_text" | "output_text" | "text") => {
                out.push_str(&p.text.ok_or_else(|| {
                    ApiError::bad_param(&format!("{here}.text"), "a text part needs `text`")
                })?);
            }
            other => {
                let why = match other {
                    Some("input_image" | "input_file" | "input_audio") => {
                        " (owl serves text-only models)"
                    }
                    _ => "",
                };
                return Err(ApiError::bad_param(
                    &format!("{here}.type"),
                    format!(
                        "content parts of type {} are not supported{why}; use input_text",
                        crate::body::shown(other)
                    ),
                ));
            }
        }
    }
    Ok(out)
}
