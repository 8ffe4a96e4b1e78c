//! The OpenAI-shaped values tool calling trades in: what the client offers ([`ToolSpec`],
//! [`ToolChoice`]), what the model did ([`ToolCall`]) and what a streaming reply releases
//! ([`ReplyPiece`]). They are plain data so the server can map its wire types onto them.

/// A function the model may call (OpenAI `tools[i].function`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments; `{"type":"object","properties":{}}` when the client gave
    /// none.
    #[serde(default = "empty_object_schema")]
    pub parameters: serde_json::Value,
    #[serde(default)]
    pub strict: bool,
}

/// The schema of a function that takes no documented arguments.
pub fn empty_object_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

impl ToolSpec {
    /// A tool with a name, a description and a parameters schema.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: Some(description.into()),
            parameters,
            strict: false,
        }
    }

    /// The OpenAI `tools[i]` object (`{"type":"function","function":{…}}`) templates expect.
    pub fn openai_json(&self) -> serde_json::Value {
        let mut f = serde_json::Map::new();
        f.insert("name".into(), self.name.clone().into());
        if let Some(d) = &self.description {
            f.insert("description".into(), d.clone().into());
        }
        f.insert("parameters".into(), self.parameters.clone());
        serde_json::json!({"type": "function", "function": f})
    }
}

/// OpenAI `tool_choice`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides between text and calls.
    Auto,
    /// The model must not call (tools are still described).
    None,
    /// The reply must be one or more calls.
    Required,
    /// The reply must be a call of this function.
    Function(String),
}

/// A call the model made (or an earlier assistant turn made). `arguments` is a JSON text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What the reply parser releases, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyPiece {
    /// Content text for the user.
    Text(String),
    /// A call starts; its arguments follow as [`ReplyPiece::CallArgs`] with the same index.
    CallBegin {
        index: usize,
        id: String,
        name: String,
    },
    /// The next piece of call `index`'s arguments (JSON text).
    CallArgs { index: usize, text: String },
}
