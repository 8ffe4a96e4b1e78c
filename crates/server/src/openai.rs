//! OpenAI request and response bodies (the subset owl serves), as serde types.
//!
//! Requests: every field is optional at the serde level (`null` counts as absent, unknown
//! fields are ignored) and range checks happen in `params.rs`, so a wrong value gets a
//! message naming the field instead of a generic parse error. Fields both endpoints share
//! are in [`CommonFields`], parsed from the same body a second time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `stop`: one string or a list.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum StopField {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug, Clone, Default)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// Fields shared by `/v1/chat/completions` and `/v1/completions`.
#[derive(Deserialize, Debug, Default)]
pub struct CommonFields {
    pub model: Option<String>,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub min_p: Option<f64>,
    pub seed: Option<serde_json::Number>,
    pub stop: Option<StopField>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub repetition_penalty: Option<f64>,
    /// llama.cpp's name for `repetition_penalty`.
    pub repeat_penalty: Option<f64>,
    pub logit_bias: Option<BTreeMap<String, f64>>,
    pub n: Option<i64>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// llama.cpp's extension: keep generating past end-of-generation tokens (benchmarks).
    pub ignore_eos: Option<bool>,
}

/// `content` of a chat message: a string or a list of parts.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize, Debug)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct ChatMessageIn {
    pub role: String,
    pub content: Option<MessageContent>,
    /// An assistant turn's tool calls.
    pub tool_calls: Option<Vec<ToolCallIn>>,
    /// A `tool` message's answer to this call.
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
}

/// A tool call in an assistant message of the conversation.
#[derive(Deserialize, Debug)]
pub struct ToolCallIn {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub function: FunctionCallIn,
}

#[derive(Deserialize, Debug)]
pub struct FunctionCallIn {
    pub name: String,
    /// A JSON text (OpenAI); an object is accepted too.
    pub arguments: Option<serde_json::Value>,
}

/// `tools[i]`: `{"type": "function", "function": {name, description, parameters, strict}}`.
#[derive(Deserialize, Debug)]
pub struct ToolIn {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub function: Option<FunctionIn>,
}

#[derive(Deserialize, Debug)]
pub struct FunctionIn {
    pub name: Option<String>,
    pub description: Option<String>,
    pub parameters: Option<serde_json::Value>,
    pub strict: Option<bool>,
}

/// `/v1/chat/completions` fields besides [`CommonFields`].
#[derive(Deserialize, Debug)]
pub struct ChatRequest {
    pub messages: Option<Vec<ChatMessageIn>>,
    pub max_completion_tokens: Option<i64>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<i64>,
    /// Extra chat-template variables (llama-server and vLLM's name), e.g. Qwen3's
    /// `{"enable_thinking": false}`.
    pub chat_template_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
    /// Shorthand for `chat_template_kwargs.enable_thinking`.
    pub enable_thinking: Option<bool>,
    pub tools: Option<Vec<ToolIn>>,
    /// Checked by hand (a string or an object).
    pub tool_choice: Option<serde_json::Value>,
    pub parallel_tool_calls: Option<bool>,
    /// Checked by hand (`text`, `json_object`, `json_schema`, `regex`, `grammar`).
    pub response_format: Option<serde_json::Value>,
    /// gpt-oss's `reasoning_effort` template variable (`low`, `medium`, `high`).
    pub reasoning_effort: Option<String>,
}

/// `/v1/completions` fields besides [`CommonFields`]; `prompt` is checked by hand because it
/// takes four shapes.
#[derive(Deserialize, Debug)]
pub struct CompletionRequest {
    pub prompt: Option<serde_json::Value>,
    pub echo: Option<bool>,
    pub logprobs: Option<i64>,
    pub suffix: Option<String>,
    pub best_of: Option<i64>,
}

#[derive(Deserialize, Debug)]
pub struct TokenizeRequest {
    pub content: Option<String>,
    pub add_special: Option<bool>,
    pub parse_special: Option<bool>,
    pub with_pieces: Option<bool>,
}

#[derive(Deserialize, Debug)]
pub struct DetokenizeRequest {
    pub tokens: Option<Vec<i64>>,
}

// ---- responses ----

#[derive(Serialize, Debug, Clone, Copy)]
pub struct PromptTokensDetails {
    pub cached_tokens: usize,
}

#[derive(Serialize, Debug, Clone, Copy)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub prompt_tokens_details: PromptTokensDetails,
}

impl Usage {
    pub fn new(prompt: usize, completion: usize, cached: usize) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: cached,
            },
        }
    }
}

/// One alternative in chat `logprobs.content[].top_logprobs`.
#[derive(Serialize, Debug, Clone)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

/// One generated token in chat `logprobs.content`.
#[derive(Serialize, Debug, Clone)]
pub struct ChatTokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct ChatLogprobs {
    pub content: Vec<ChatTokenLogprob>,
}

#[derive(Serialize, Debug)]
pub struct AssistantMessage {
    pub role: &'static str,
    /// `null` when the reply is only tool calls.
    pub content: Option<String>,
    /// A reasoning model's thinking (DeepSeek's API field), when the template thinks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut>,
}

/// A tool call in a reply: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Serialize, Debug, Clone)]
pub struct ToolCallOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionOut,
}

#[derive(Serialize, Debug, Clone)]
pub struct FunctionOut {
    pub name: String,
    pub arguments: String,
}

/// A streamed piece of a tool call: `index` always; `id`, `type` and the name first, then
/// the arguments in pieces.
#[derive(Serialize, Debug, Clone)]
pub struct ToolCallDelta {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta,
}

#[derive(Serialize, Debug, Clone)]
pub struct FunctionDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub arguments: String,
}

#[derive(Serialize, Debug)]
pub struct ChatChoice {
    pub index: usize,
    pub message: AssistantMessage,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: &'static str,
}

#[derive(Serialize, Debug)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
}

#[derive(Serialize, Debug, Default)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallDelta>,
}

#[derive(Serialize, Debug)]
pub struct ChatChunkChoice {
    pub index: usize,
    pub delta: Delta,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Serialize, Debug)]
pub struct ChatChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub system_fingerprint: &'a str,
    pub choices: Vec<ChatChunkChoice>,
    /// With `include_usage`: `null` on every chunk but the last, absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

/// Legacy completions `logprobs`.
#[derive(Serialize, Debug, Clone, Default)]
pub struct LegacyLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<Option<f32>>,
    pub top_logprobs: Vec<Option<BTreeMap<String, f32>>>,
    pub text_offset: Vec<usize>,
}

#[derive(Serialize, Debug)]
pub struct CompletionChoice {
    pub index: usize,
    pub text: String,
    pub logprobs: Option<LegacyLogprobs>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Serialize, Debug)]
pub struct Completion<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub system_fingerprint: &'a str,
    pub choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

#[derive(Serialize, Debug)]
pub struct ModelEntry {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    /// A LoRA adapter's base model (vLLM's field); absent for models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// A LoRA adapter's path (vLLM's field); absent for models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelEntry>,
}
