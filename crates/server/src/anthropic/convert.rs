//! A Messages request as a [`Turn`]: the system prompt becomes a system message, an
//! assistant's `tool_use` blocks become its tool calls, a user's `tool_result` blocks become
//! `tool` messages, and the sampling fields go through the same checks as OpenAI's (with
//! Anthropic's temperature range, 0 to 1).
//!
//! Every refusal names the field (`messages[2].content[0].type`), so a client can tell what
//! to change.

use owl_grammar::Constraint;
use owl_text::tools::{ToolCall, ToolChoice, ToolSpec};
use owl_text::TemplateVars;
use serde_json::Value;

use super::request::{Block, Content, MessagesRequest, SystemField, ToolChoiceIn, ToolIn};
use crate::convo::Convo;
use crate::error::ApiError;
use crate::openai::{CommonFields, StopField};
use crate::params;
use crate::tool_params;
use crate::turn::Turn;

/// What the request asks for besides the turn itself.
pub struct Converted {
    pub turn: Turn,
    pub stream: bool,
}

/// Checks `req` and builds its turn. `counting`: for `count_tokens`, where `max_tokens` is
/// not part of the request.
pub fn convert(
    req: MessagesRequest,
    n_vocab: usize,
    counting: bool,
) -> Result<Converted, ApiError> {
    let max_tokens = match (req.max_tokens, counting) {
        (None, false) => {
            return Err(ApiError::bad_param(
                "max_tokens",
                "`max_tokens` is required (the most tokens to generate)",
            ))
        }
        (m, _) => m,
    };
    if let Some(t) = req.temperature {
        if !(0.0..=1.0).contains(&t) {
            return Err(ApiError::bad_param(
                "temperature",
                format!("`temperature` must be between 0 and 1, got {t}"),
            ));
        }
    }
    let common = CommonFields {
        model: req.model.clone(),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req.stop_sequences.clone().map(StopField::Many),
        stream: req.stream,
        ..CommonFields::default()
    };
    let settings = params::settings(&common, n_vocab).map_err(rename_stop)?;
    let tools = tools(req.tools.unwrap_or_default())?;
    let (tool_choice, parallel) = tool_choice(req.tool_choice.as_ref(), &tools)?;
    let messages = conversation(req.system, req.messages)?;
    let mut template_vars = TemplateVars::new();
    if let Some(t) = &req.thinking {
        let on = match t.kind.as_deref() {
            Some("enabled" | "adaptive") => true,
            Some("disabled") => false,
            other => {
                return Err(ApiError::bad_param(
                    "thinking.type",
                    format!(
                        "`thinking.type` must be \"enabled\", \"adaptive\" or \"disabled\", got {}",
                        crate::body::shown(other)
                    ),
                ))
            }
        };
        template_vars.insert("enable_thinking".into(), Value::Bool(on));
    }
    let output = match req.output_config.and_then(|o| o.format) {
        None => None,
        Some(f) => match (f.kind.as_deref(), f.schema) {
            (Some("json_schema"), Some(schema)) => Some(Constraint::JsonSchema(schema)),
            (Some("json_schema"), None) => {
                return Err(ApiError::bad_param(
                    "output_config.format.schema",
                    "`output_config.format` needs a `schema`",
                ))
            }
            (other, _) => {
                return Err(ApiError::bad_param(
                    "output_config.format.type",
                    format!(
                        "`output_config.format.type` must be \"json_schema\", got {}",
                        crate::body::shown(other)
                    ),
                ))
            }
        },
    };
    let stream = settings.stream;
    Ok(Converted {
        turn: Turn {
            messages,
            tools,
            tool_choice,
            parallel_tool_calls: parallel,
            output,
            output_field: "output_config.format",
            settings,
            max_tokens,
            max_tokens_field: "max_tokens",
            logprobs: None,
            template_vars,
        },
        stream,
    })
}

/// The shared sampling checks call the stop strings `stop`; Anthropic calls them
/// `stop_sequences`.
fn rename_stop(mut e: ApiError) -> ApiError {
    if e.param.as_deref() == Some("stop") {
        e.param = Some("stop_sequences".into());
        e.message = e.message.replace("stop string", "stop sequence");
    }
    e
}

fn tools(input: Vec<ToolIn>) -> Result<Vec<ToolSpec>, ApiError> {
    let tools = input
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let field = format!("tools[{i}]");
            if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
                return Err(ApiError::bad_param(
                    &format!("{field}.type"),
                    format!("server tools ({kind:?}) are not supported; define client tools with `name` and `input_schema`"),
                ));
            }
            if t.input_schema.is_none() {
                return Err(ApiError::bad_param(
                    &format!("{field}.input_schema"),
                    "a tool needs an `input_schema` (a JSON Schema object)",
                ));
            }
            tool_params::tool(
                &field,
                t.name.as_deref(),
                t.description.as_deref(),
                t.input_schema.as_ref(),
                t.strict.unwrap_or(false),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    tool_params::unique(&tools, "tools")?;
    Ok(tools)
}

/// `tool_choice` and whether parallel calls are allowed.
fn tool_choice(
    c: Option<&ToolChoiceIn>,
    tools: &[ToolSpec],
) -> Result<(ToolChoice, bool), ApiError> {
    let Some(c) = c else {
        return Ok((ToolChoice::Auto, true));
    };
    let parallel = !c.disable_parallel_tool_use.unwrap_or(false);
    let choice = match c.kind.as_deref() {
        Some("auto") => ToolChoice::Auto,
        Some("none") => ToolChoice::None,
        Some("any") => ToolChoice::Required,
        Some("tool") => ToolChoice::Function(c.name.clone().ok_or_else(|| {
            ApiError::bad_param(
                "tool_choice.name",
                "`tool_choice` of type \"tool\" needs a `name`",
            )
        })?),
        other => {
            return Err(ApiError::bad_param(
                "tool_choice.type",
                format!(
                    "`tool_choice.type` must be \"auto\", \"any\", \"tool\" or \"none\", got {}",
                    crate::body::shown(other)
                ),
            ))
        }
    };
    let field = match choice {
        ToolChoice::Function(_) if !tools.is_empty() => "tool_choice.name",
        _ => "tool_choice",
    };
    Ok((tool_params::choice(choice, tools, field)?, parallel))
}

fn conversation(
    system: Option<SystemField>,
    messages: Option<Vec<super::request::MessageIn>>,
) -> Result<Vec<owl_text::ChatMessage>, ApiError> {
    let messages =
        messages.ok_or_else(|| ApiError::bad_param("messages", "`messages` is required"))?;
    if messages.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    let mut convo = Convo::new();
    match system {
        None => {}
        Some(SystemField::Text(t)) => convo.say("system", t),
        Some(SystemField::Blocks(b)) => convo.say("system", text_blocks(b, "system")?),
    }
    for (i, m) in messages.into_iter().enumerate() {
        let at = format!("messages[{i}]");
        let blocks = match m.content {
            None => {
                return Err(ApiError::bad_param(
                    &format!("{at}.content"),
                    "a message needs `content`",
                ))
            }
            Some(Content::Text(t)) => vec![text_block(t)],
            Some(Content::Blocks(b)) => b,
        };
        match m.role.as_deref() {
            Some("user") => user(&mut convo, blocks, &at)?,
            Some("assistant") => assistant(&mut convo, blocks, &at)?,
            other => {
                return Err(ApiError::bad_param(
                    &format!("{at}.role"),
                    format!(
                        "`role` must be \"user\" or \"assistant\", got {}",
                        crate::body::shown(other)
                    ),
                ))
            }
        }
    }
    Ok(convo.finish())
}

fn text_block(t: String) -> Block {
    Block {
        kind: "text".into(),
        text: Some(t),
        id: None,
        name: None,
        input: None,
        tool_use_id: None,
        content: None,
        is_error: None,
    }
}

/// A user turn: text, and `tool_result` blocks (each a `tool` message, in order).
fn user(convo: &mut Convo, blocks: Vec<Block>, at: &str) -> Result<(), ApiError> {
    let mut text = String::new();
    for (j, b) in blocks.into_iter().enumerate() {
        let here = format!("{at}.content[{j}]");
        match b.kind.as_str() {
            "text" => text.push_str(&block_text(b.text, &here)?),
            "tool_result" => {
                if !text.is_empty() {
                    convo.say("user", std::mem::take(&mut text));
                }
                let id = b.tool_use_id.ok_or_else(|| {
                    ApiError::bad_param(
                        &format!("{here}.tool_use_id"),
                        "a `tool_result` needs `tool_use_id`",
                    )
                })?;
                let mut content = match b.content {
                    None => String::new(),
                    Some(Content::Text(t)) => t,
                    Some(Content::Blocks(bs)) => text_blocks(bs, &format!("{here}.content"))?,
                };
                if b.is_error == Some(true) {
                    content = format!("Error: {content}");
                }
                convo.tool_result(&id, content);
            }
            other => return Err(unsupported(other, &here, "text or tool_result")),
        }
    }
    if !text.is_empty() {
        convo.say("user", text);
    }
    Ok(())
}

/// An assistant turn: text and `tool_use` blocks (its calls); earlier thinking is dropped,
/// as chat templates drop it from past turns.
fn assistant(convo: &mut Convo, blocks: Vec<Block>, at: &str) -> Result<(), ApiError> {
    for (j, b) in blocks.into_iter().enumerate() {
        let here = format!("{at}.content[{j}]");
        match b.kind.as_str() {
            "text" => convo.assistant_text(&block_text(b.text, &here)?),
            "tool_use" => {
                let id = b.id.ok_or_else(|| {
                    ApiError::bad_param(&format!("{here}.id"), "a `tool_use` block needs `id`")
                })?;
                let name = b.name.ok_or_else(|| {
                    ApiError::bad_param(&format!("{here}.name"), "a `tool_use` block needs `name`")
                })?;
                let input = b.input.unwrap_or_else(|| Value::Object(Default::default()));
                convo.assistant_call(ToolCall {
                    id,
                    name,
                    arguments: input.to_string(),
                });
            }
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported(other, &here, "text, tool_use or thinking")),
        }
    }
    convo.end_assistant();
    Ok(())
}

fn block_text(t: Option<String>, here: &str) -> Result<String, ApiError> {
    t.ok_or_else(|| ApiError::bad_param(&format!("{here}.text"), "a text block needs `text`"))
}

/// Text blocks joined (system prompts, tool results).
fn text_blocks(blocks: Vec<Block>, at: &str) -> Result<String, ApiError> {
    let mut out = String::new();
    for (j, b) in blocks.into_iter().enumerate() {
        let here = format!("{at}[{j}]");
        match b.kind.as_str() {
            "text" => out.push_str(&block_text(b.text, &here)?),
            other => return Err(unsupported(other, &here, "text")),
        }
    }
    Ok(out)
}

fn unsupported(kind: &str, here: &str, allowed: &str) -> ApiError {
    let why = match kind {
        "image" | "document" | "search_result" => " (owl serves text-only models)",
        _ => "",
    };
    ApiError::bad_param(
        &format!("{here}.type"),
        format!(
            "`{here}` is a {kind:?} block, which is not supported here{why}; use {allowed} blocks"
        ),
    )
}
