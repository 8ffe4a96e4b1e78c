//! The body of `POST /v1/messages` and `POST /v1/messages/count_tokens`, as serde types.
//!
//! Every field is optional at the serde level, so a missing required field gets a message
//! naming it (from `convert`) instead of a generic parse error. Content blocks are one struct
//! with every block's fields, not a tagged enum: an unsupported block type (`image`,
//! `document`, …) must be a 400 that names the block, which `convert` writes by hand.

use serde::Deserialize;
use serde_json::Value;

/// The top-level fields owl reads; [`KNOWN`] lists them for `body::check_fields`.
#[derive(Deserialize, Debug, Default)]
pub struct MessagesRequest {
    pub model: Option<String>,
    pub max_tokens: Option<i64>,
    pub system: Option<SystemField>,
    pub messages: Option<Vec<MessageIn>>,
    pub tools: Option<Vec<ToolIn>>,
    pub tool_choice: Option<ToolChoiceIn>,
    pub stop_sequences: Option<Vec<String>>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub stream: Option<bool>,
    pub thinking: Option<ThinkingIn>,
    pub output_config: Option<OutputConfigIn>,
}

/// Fields of `/v1/messages` owl acts on.
pub const KNOWN: &[&str] = &[
    "model",
    "max_tokens",
    "system",
    "messages",
    "tools",
    "tool_choice",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "stream",
    "thinking",
    "output_config",
];

/// Fields of `/v1/messages/count_tokens` owl acts on (the prompt's parts).
pub const KNOWN_COUNT: &[&str] = &[
    "model",
    "system",
    "messages",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
];

/// Fields accepted and dropped: they change billing, routing or caching on Anthropic's side,
/// never the reply (owl reuses cached prefixes by itself).
pub const IGNORED: &[&str] = &[
    "metadata",
    "service_tier",
    "cache_control",
    "inference_geo",
    "speed",
    "diagnostics",
    "user_profile_id",
    "workspace_id",
];

/// `system`: a string or a list of text blocks.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum SystemField {
    Text(String),
    Blocks(Vec<Block>),
}

/// `content` of a message or a `tool_result`: a string or a list of blocks.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

/// One content block, whatever its `type`.
#[derive(Deserialize, Debug)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    /// `text`.
    pub text: Option<String>,
    /// `tool_use`.
    pub id: Option<String>,
    pub name: Option<String>,
    pub input: Option<Value>,
    /// `tool_result`.
    pub tool_use_id: Option<String>,
    pub content: Option<Content>,
    pub is_error: Option<bool>,
}

#[derive(Deserialize, Debug)]
pub struct MessageIn {
    pub role: Option<String>,
    pub content: Option<Content>,
}

/// `tools[i]`: a client tool. `type` is absent or `custom`; server tools are refused.
#[derive(Deserialize, Debug)]
pub struct ToolIn {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub input_schema: Option<Value>,
    pub strict: Option<bool>,
}

#[derive(Deserialize, Debug)]
pub struct ToolChoiceIn {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize, Debug)]
pub struct ThinkingIn {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub budget_tokens: Option<i64>,
}

/// `output_config`: structured output (`format`) and `effort` (ignored).
#[derive(Deserialize, Debug)]
pub struct OutputConfigIn {
    pub format: Option<FormatIn>,
    pub effort: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct FormatIn {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub schema: Option<Value>,
}
