//! Chat templates: the model's Jinja `tokenizer.chat_template`, rendered like Hugging Face
//! `apply_chat_template` does.
//!
//! HF renders with jinja2 `trim_blocks=True, lstrip_blocks=True`, the loop-controls
//! extension, `raise_exception`, `strftime_now` and a Python-`json.dumps` `tojson`, and passes
//! `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, `tools=None`,
//! `documents=None`. Templates call Python string/dict methods, which minijinja-contrib's
//! `pycompat` provides; `None`/`True`/`False` print the Python way.

use crate::strftime::Tm;
use crate::tools::ToolCall;
use crate::{pyjson, TextError};
use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Value};
use owl_gguf::GgufFile;

/// One chat turn.
///
/// Its serde form is what templates see: OpenAI's message shape, with `tool_calls`,
/// `tool_call_id` and `name` present only when set (templates test `'tool_calls' in
/// message`). See `template_calls.rs` for how calls are shown to templates.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    /// `null` (an assistant turn that only calls) reads as empty.
    #[serde(default, deserialize_with = "crate::template_calls::null_as_empty")]
    pub content: String,
    /// Calls an assistant turn made.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::template_calls::serialize",
        deserialize_with = "crate::template_calls::deserialize"
    )]
    pub tool_calls: Vec<ToolCall>,
    /// The call a `tool` turn answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The function a `tool` turn's result comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            ..ChatMessage::default()
        }
    }

    /// An assistant turn that made `calls` (content may be empty).
    pub fn assistant_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        ChatMessage {
            tool_calls: calls,
            ..ChatMessage::new("assistant", content)
        }
    }

    /// A `tool` turn: the result of call `id` of function `name`.
    pub fn tool_result(
        id: impl Into<String>,
        name: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        ChatMessage {
            tool_call_id: Some(id.into()),
            name: Some(name.into()),
            ..ChatMessage::new("tool", content)
        }
    }
}

/// A compiled chat template with the model's BOS/EOS texts.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// The Jinja source (tool-call format detection reads it).
    source: String,
    bos_token: String,
    eos_token: String,
    /// The template writes `<think>` blocks (a reasoning model: Qwen3, DeepSeek-R1, …).
    thinks: bool,
    /// gpt-oss's channel format.
    harmony: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

const NAME: &str = "chat_template";

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

fn strftime_now(fmt: String) -> String {
    Tm::now().format(&fmt)
}

/// Prints `None`, `True`, `False` as Python does; everything else as minijinja does.
fn py_formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), Error> {
    let text = match value.kind() {
        ValueKind::None => "None",
        ValueKind::Bool if value.is_true() => "True",
        ValueKind::Bool => "False",
        _ => return minijinja::escape_formatter(out, state, value),
    };
    out.write_str(text).map_err(Error::from)
}

/// Text of token `id` as the template should see it (llama.cpp uses the rendered piece).
fn token_text(g: &GgufFile, id_key: &str) -> String {
    let Some(id) = g.get_u32(id_key) else {
        return String::new();
    };
    let tokens = g.get_str_array("tokenizer.ggml.tokens").unwrap_or_default();
    let Some(text) = tokens.get(id as usize) else {
        return String::new();
    };
    let ty = g
        .get_i32_array("tokenizer.ggml.token_type")
        .and_then(|t| t.get(id as usize).copied())
        .unwrap_or(3);
    match (ty, g.get_str("tokenizer.ggml.model")) {
        (1, Some("gpt2")) => String::from_utf8_lossy(&crate::bytelevel::decode(text)).into_owned(),
        (1, Some("llama")) => text.replace('▁', " "),
        _ => text.to_string(),
    }
}

impl ChatTemplate {
    /// The template in `tokenizer.chat_template`, or `None` if the model has none.
    pub fn from_gguf(g: &GgufFile) -> Result<Option<ChatTemplate>, TextError> {
        let Some(source) = g.get_str("tokenizer.chat_template") else {
            return Ok(None);
        };
        let bos = token_text(g, "tokenizer.ggml.bos_token_id");
        let eos = token_text(g, "tokenizer.ggml.eos_token_id");
        ChatTemplate::new(source, &bos, &eos).map(Some)
    }

    /// Compiles `source` in place of the file's own template (a derived model's `--template`),
    /// with the file's BOS and EOS tokens.
    pub fn with_source(g: &GgufFile, source: &str) -> Result<ChatTemplate, TextError> {
        let bos = token_text(g, "tokenizer.ggml.bos_token_id");
        let eos = token_text(g, "tokenizer.ggml.eos_token_id");
        ChatTemplate::new(source, &bos, &eos)
    }

    /// Compiles `source`; `bos_token`/`eos_token` are exposed to the template by those names.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, TextError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(py_formatter);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", pyjson::tojson);
        env.add_template_owned(NAME, source.to_string())?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            thinks: source.contains(crate::reasoning::THINK_CLOSE),
            harmony: source.contains(crate::harmony::CHANNEL),
        })
    }

    /// Whether the template belongs to a reasoning model that thinks inside `<think>` tags.
    pub fn thinks(&self) -> bool {
        self.thinks
    }

    /// How this template's model marks its thinking, if it is a reasoning model.
    pub fn reasoning(&self) -> Option<crate::reasoning::ReasoningFormat> {
        use crate::reasoning::ReasoningFormat;
        if self.harmony {
            Some(ReasoningFormat::Harmony)
        } else if self.thinks {
            Some(ReasoningFormat::Think)
        } else {
            None
        }
    }

    /// Renders the conversation; with `add_generation_prompt` the output ends with the
    /// header that starts the assistant's reply.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TextError> {
        self.render_with(messages, add_generation_prompt, &serde_json::Map::new())
    }

    /// Like [`Self::render`], with extra template variables (e.g. `tools`, `date_string`,
    /// `enable_thinking`); they override the defaults of the same name.
    pub fn render_with(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TextError> {
        let mut ctx: Vec<(String, Value)> = vec![
            ("messages".into(), Value::from_serialize(messages)),
            (
                "add_generation_prompt".into(),
                Value::from(add_generation_prompt),
            ),
            ("bos_token".into(), Value::from(self.bos_token.as_str())),
            ("eos_token".into(), Value::from(self.eos_token.as_str())),
            ("tools".into(), Value::from(())),
            ("documents".into(), Value::from(())),
        ];
        for (k, v) in extra {
            ctx.retain(|(name, _)| name != k);
            ctx.push((k.clone(), Value::from_serialize(v)));
        }
        let ctx: Value = ctx.into_iter().collect();
        let tmpl = self.env.get_template(NAME)?;
        Ok(tmpl.render(ctx)?)
    }

    /// The template's Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The tool-call markup this template's model uses.
    pub fn tool_format(&self) -> crate::tools::ToolFormat {
        crate::tools::ToolFormat::detect(&self.source)
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }
}
