//! How an assistant turn's tool calls look to a chat template.
//!
//! Templates expect OpenAI's shape, `[{"id", "type": "function", "function": {"name",
//! "arguments"}}]`, but disagree on `arguments`: Qwen/Hermes, Llama 3.1, DeepSeek and gpt-oss
//! apply `| tojson` to it, Qwen3-Coder and GLM iterate it as a mapping, Kimi accepts either.
//! A JSON *text* would come out double-encoded or fail in all but Kimi's, so arguments are
//! given to templates as the parsed JSON value; only arguments that are not valid JSON stay a
//! string. Reading accepts both shapes (and both kinds of `arguments`).

use crate::tools::ToolCall;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

#[derive(Serialize)]
struct Shown<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ShownFunction<'a>,
}

#[derive(Serialize)]
struct ShownFunction<'a> {
    name: &'a str,
    arguments: Value,
}

pub fn serialize<S: Serializer>(calls: &[ToolCall], s: S) -> Result<S::Ok, S::Error> {
    let shown: Vec<Shown> = calls
        .iter()
        .map(|c| Shown {
            id: &c.id,
            kind: "function",
            function: ShownFunction {
                name: &c.name,
                arguments: serde_json::from_str(&c.arguments)
                    .unwrap_or_else(|_| Value::String(c.arguments.clone())),
            },
        })
        .collect();
    shown.serialize(s)
}

#[derive(Deserialize)]
struct Read {
    #[serde(default)]
    id: String,
    #[serde(default)]
    function: Option<ReadFunction>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct ReadFunction {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

fn args_text(v: Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => "{}".to_string(),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ToolCall>, D::Error> {
    let read: Option<Vec<Read>> = Option::deserialize(d)?;
    Ok(read
        .unwrap_or_default()
        .into_iter()
        .map(|r| match r.function {
            Some(f) => ToolCall {
                id: r.id,
                name: f.name,
                arguments: args_text(f.arguments),
            },
            None => ToolCall {
                id: r.id,
                name: r.name.unwrap_or_default(),
                arguments: args_text(r.arguments),
            },
        })
        .collect())
}

/// Reads a string that may be `null` (OpenAI's `content` of a calling assistant turn).
pub fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}
