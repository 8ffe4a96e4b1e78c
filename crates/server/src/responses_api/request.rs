//! The body of `POST /v1/responses`, as serde types.
//!
//! Input items and their content parts are structs holding every kind's fields rather than
//! tagged enums, so `convert` can refuse an unsupported kind (`input_image`, a hosted tool's
//! call) with a message naming exactly where it is. `tool_choice` is read as JSON for the
//! same reason: it is a string or an object.

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Debug, Default)]
pub struct ResponsesRequest {
    pub model: Option<String>,
    pub input: Option<InputField>,
    pub instructions: Option<String>,
    pub tools: Option<Vec<ToolIn>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub text: Option<TextConfig>,
    pub max_output_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stream: Option<bool>,
    pub previous_response_id: Option<String>,
    pub store: Option<bool>,
    pub reasoning: Option<ReasoningIn>,
    pub background: Option<bool>,
    pub truncation: Option<String>,
    /// Echoed back, never read.
    pub metadata: Option<Value>,
    pub user: Option<String>,
}

/// Fields owl acts on.
pub const KNOWN: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "previous_response_id",
    "store",
    "reasoning",
    "background",
    "truncation",
];

/// Fields accepted and dropped: labels, billing and cache routing on OpenAI's side, and
/// extra output (`include`) owl does not produce.
pub const IGNORED: &[&str] = &[
    "metadata",
    "user",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "include",
    "stream_options",
];

/// `input`: a string (one user message) or a list of items.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum InputField {
    Text(String),
    Items(Vec<Item>),
}

/// One input item, whatever its `type` (absent: a message).
#[derive(Deserialize, Debug)]
pub struct Item {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `message`.
    pub role: Option<String>,
    pub content: Option<Content>,
    /// `function_call` and `function_call_output`.
    pub call_id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
    pub output: Option<Content>,
}

/// Message content or a function's output: a string or a list of parts.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize, Debug)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
}

/// `tools[i]`: only `{"type": "function", …}`.
#[derive(Deserialize, Debug)]
pub struct ToolIn {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

/// `text`: the output format (checked by `tool_params::output_format`; `verbosity` is
/// accepted and has no effect).
#[derive(Deserialize, Debug)]
pub struct TextConfig {
    pub format: Option<Value>,
    pub verbosity: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct ReasoningIn {
    pub effort: Option<String>,
    pub summary: Option<String>,
}
