//! Checking tool definitions, tool choices and output formats, for every API.
//!
//! OpenAI's Chat Completions nests a tool as `{"type": "function", "function": {…}}`, the
//! Responses API flattens it, Anthropic calls the schema `input_schema`; all of them end up as
//! an [`owl_text::tools::ToolSpec`] checked here once: a name a template can carry, a schema
//! that is a JSON object, no duplicate names, and a tool choice that names a defined tool.
//! Each error names the request field, so a client sees exactly what to fix.

use owl_grammar::Constraint;
use owl_text::tools::{ToolChoice, ToolSpec};
use serde_json::{json, Value};

use crate::error::ApiError;

/// A checked tool. `field` is the tool's place in the request (`tools[2]`).
pub fn tool(
    field: &str,
    name: Option<&str>,
    description: Option<&str>,
    parameters: Option<&Value>,
    strict: bool,
) -> Result<ToolSpec, ApiError> {
    let name = name.ok_or_else(|| ApiError::bad_param(field, format!("`{field}` needs a name")))?;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !ok {
        return Err(ApiError::bad_param(
            field,
            format!("tool name {name:?} must be 1 to 64 letters, digits, `_`, `-` or `.`"),
        ));
    }
    let parameters = match parameters {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(_) => {
            return Err(ApiError::bad_param(
                field,
                format!("the parameters of tool `{name}` must be a JSON Schema object"),
            ))
        }
    };
    Ok(ToolSpec {
        name: name.to_string(),
        description: description.map(str::to_string),
        parameters,
        strict,
    })
}

/// Refuses two tools of the same name.
pub fn unique(tools: &[ToolSpec], field: &str) -> Result<(), ApiError> {
    for (i, t) in tools.iter().enumerate() {
        if tools[..i].iter().any(|u| u.name == t.name) {
            return Err(ApiError::bad_param(
                field,
                format!("two tools are named `{}`", t.name),
            ));
        }
    }
    Ok(())
}

/// Checks `choice` against the defined tools: a named function must exist, and any choice
/// but `none`/`auto` needs tools.
pub fn choice(choice: ToolChoice, tools: &[ToolSpec], field: &str) -> Result<ToolChoice, ApiError> {
    match &choice {
        ToolChoice::Function(name) if !tools.iter().any(|t| &t.name == name) => {
            Err(ApiError::bad_param(
                field,
                format!("`{field}` names the function `{name}`, which is not among the tools"),
            ))
        }
        ToolChoice::Required | ToolChoice::Function(_) if tools.is_empty() => Err(
            ApiError::bad_param(field, format!("`{field}` needs `tools`")),
        ),
        _ => Ok(choice),
    }
}

/// OpenAI's Chat Completions `tool_choice`: `"auto" | "none" | "required"` or
/// `{"type": "function", "function": {"name": …}}`.
pub fn openai_choice(v: Option<&Value>) -> Result<Option<ToolChoice>, ApiError> {
    const F: &str = "tool_choice";
    let Some(v) = v else { return Ok(None) };
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::String(s) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::bad_param(
                    F,
                    format!(
                        "unknown `tool_choice` {other:?}: use auto, none, required or a function"
                    ),
                ))
            }
        },
        Value::Object(m) => {
            let kind = m.get("type").and_then(Value::as_str);
            let name = m
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            match (kind, name) {
                (Some("function"), Some(n)) => ToolChoice::Function(n.to_string()),
                _ => {
                    return Err(ApiError::bad_param(
                        F,
                        "`tool_choice` objects must be {\"type\": \"function\", \"function\": {\"name\": …}}",
                    ))
                }
            }
        }
        _ => {
            return Err(ApiError::bad_param(
                F,
                "`tool_choice` must be a string or an object",
            ))
        }
    }))
}

/// OpenAI's `response_format` (Chat Completions) or `text.format` (Responses): `text`,
/// `json_object`, `json_schema` (`{"name", "schema", "strict"}`, nested under `json_schema`
/// in Chat Completions, flat in Responses), and owl's `regex` / `grammar` extensions.
pub fn output_format(v: Option<&Value>, field: &str) -> Result<Option<Constraint>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    if v.is_null() {
        return Ok(None);
    }
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::bad_param(field, format!("`{field}` must be an object")))?;
    let kind = m.get("type").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_param(
            &format!("{field}.type"),
            format!("`{field}` needs a `type`"),
        )
    })?;
    let text_of = |key: &str| -> Result<String, ApiError> {
        m.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ApiError::bad_param(
                    &format!("{field}.{key}"),
                    format!("`{field}` of type {kind} needs a string `{key}`"),
                )
            })
    };
    Ok(match kind {
        "text" => None,
        "json_object" => Some(Constraint::JsonObject),
        "json_schema" => {
            // Chat Completions nests the schema under `json_schema`; Responses does not.
            let holder = m.get("json_schema").unwrap_or(v);
            let schema = holder.get("schema").ok_or_else(|| {
                ApiError::bad_param(
                    &format!("{field}.json_schema.schema"),
                    format!("`{field}` of type json_schema needs a `schema`"),
                )
            })?;
            if !(schema.is_object() || schema.is_boolean()) {
                return Err(ApiError::bad_param(
                    &format!("{field}.json_schema.schema"),
                    "the schema must be a JSON object",
                ));
            }
            Some(Constraint::JsonSchema(schema.clone()))
        }
        "regex" => Some(Constraint::Regex(text_of("regex")?)),
        "grammar" => Some(Constraint::Lark(text_of("grammar")?)),
        other => {
            return Err(ApiError::bad_param(
                &format!("{field}.type"),
                format!("unsupported `{field}` type {other:?}: use text, json_object, json_schema, regex or grammar"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_and_formats() {
        assert_eq!(
            openai_choice(Some(
                &json!({"type": "function", "function": {"name": "f"}})
            ))
            .ok(),
            Some(Some(ToolChoice::Function("f".into())))
        );
        assert!(openai_choice(Some(&json!("sometimes"))).is_err());
        let t = tool("tools[0]", Some("f"), None, None, false).ok();
        let tools: Vec<ToolSpec> = t.into_iter().collect();
        assert!(choice(ToolChoice::Function("g".into()), &tools, "tool_choice").is_err());
        assert!(choice(ToolChoice::Required, &[], "tool_choice").is_err());
        assert!(tool("tools[0]", Some("bad name"), None, None, false).is_err());
        assert!(tool("tools[0]", Some("f"), None, Some(&json!([1])), false).is_err());
        let f = output_format(
            Some(
                &json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
            ),
            "response_format",
        );
        assert!(matches!(f, Ok(Some(Constraint::JsonSchema(_)))));
        assert!(output_format(Some(&json!({"type": "xml"})), "response_format").is_err());
        assert!(matches!(
            output_format(Some(&json!({"type": "text"})), "response_format"),
            Ok(None)
        ));
    }
}
