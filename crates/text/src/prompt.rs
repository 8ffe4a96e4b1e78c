//! A conversation turned into prompt tokens, written once for the CLI and the server so both
//! feed the model the same ids: the chat template renders the messages with the generation
//! prompt, the text is tokenized with BOS as the model wants it and control tokens parsed
//! (they came from the template, not from a user), and a reasoning model's template says how
//! the reply splits into thinking and answer.

use crate::{ChatMessage, ChatTemplate, ReplySplitter, TextError, Tokenizer};

/// Template variables beyond `messages` (`enable_thinking`, `tools`, …).
pub type TemplateVars = serde_json::Map<String, serde_json::Value>;

/// A rendered, tokenized conversation.
#[derive(Clone, Debug)]
pub struct ChatPrompt {
    pub ids: Vec<u32>,
    /// How a reasoning model's reply splits into thinking and answer (`None`: all answer).
    pub splitter: Option<ReplySplitter>,
}

impl ChatPrompt {
    /// Renders `messages` (generation prompt added) and tokenizes the result.
    pub fn render(
        template: &ChatTemplate,
        tokenizer: &Tokenizer,
        messages: &[ChatMessage],
        vars: &TemplateVars,
    ) -> Result<ChatPrompt, ChatPromptError> {
        let text = template
            .render_with(messages, true, vars)
            .map_err(ChatPromptError::Template)?;
        let ids = tokenizer
            .encode(&text, true, true)
            .map_err(ChatPromptError::Tokenize)?;
        Ok(ChatPrompt {
            ids,
            splitter: template.reasoning().map(|f| ReplySplitter::new(f, &text)),
        })
    }

    /// Whether generated text must render special tokens (gpt-oss's channel markers) for the
    /// splitter to see them.
    pub fn needs_special_tokens(&self) -> bool {
        self.splitter
            .as_ref()
            .is_some_and(ReplySplitter::needs_special_tokens)
    }
}

/// Why a conversation could not become a prompt.
#[derive(Debug, thiserror::Error)]
pub enum ChatPromptError {
    #[error("cannot apply the chat template: {0}")]
    Template(TextError),
    #[error("cannot tokenize the prompt: {0}")]
    Tokenize(TextError),
}
