//! Placeholder types for tool calling; the tool-format module replaces this file.

/// A function the model may call (OpenAI `tools[i].function`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    pub parameters: serde_json::Value,
    pub strict: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Function(String),
}

/// A call the model made. `arguments` is a JSON text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What the reply parser releases, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyPiece {
    Text(String),
    CallBegin {
        index: usize,
        id: String,
        name: String,
    },
    CallArgs {
        index: usize,
        text: String,
    },
}

/// Placeholder: every template is treated as having no tool support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolFormat {
    Generic,
}

impl ToolFormat {
    pub fn detect(_template_source: &str) -> ToolFormat {
        ToolFormat::Generic
    }

    pub fn prepare(
        &self,
        messages: &[crate::ChatMessage],
        _tools: &[ToolSpec],
        _choice: &ToolChoice,
    ) -> (Vec<crate::ChatMessage>, crate::TemplateVars) {
        (messages.to_vec(), crate::TemplateVars::new())
    }

    pub fn grammar(
        &self,
        _tools: &[ToolSpec],
        _choice: &ToolChoice,
        _parallel: bool,
    ) -> Option<String> {
        None
    }

    pub fn parser(&self, _tools: &[ToolSpec]) -> ToolCallParser {
        ToolCallParser { calls: Vec::new() }
    }

    pub fn needs_special_tokens(&self) -> bool {
        false
    }
}

pub struct ToolCallParser {
    calls: Vec<ToolCall>,
}

impl ToolCallParser {
    pub fn push(&mut self, text: &str) -> Vec<ReplyPiece> {
        vec![ReplyPiece::Text(text.to_string())]
    }

    pub fn finish(&mut self) -> Vec<ReplyPiece> {
        Vec::new()
    }

    pub fn calls(&self) -> Vec<ToolCall> {
        self.calls.clone()
    }
}

impl crate::ChatMessage {
    pub fn assistant_calls(content: impl Into<String>, _calls: Vec<ToolCall>) -> Self {
        Self::new("assistant", content)
    }

    pub fn tool_result(
        _id: impl Into<String>,
        _name: Option<String>,
        content: impl Into<String>,
    ) -> Self {
        Self::new("tool", content)
    }
}
