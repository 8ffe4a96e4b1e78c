//! Building the conversation a [`crate::turn::Turn`] carries, for the APIs whose messages are
//! not OpenAI chat messages (Anthropic's Messages, OpenAI's Responses).
//!
//! Both APIs describe tool use as separate items (an assistant's `tool_use` / `function_call`,
//! a user's `tool_result` / `function_call_output`) that the model's template wants as an
//! assistant message carrying calls and `tool` messages answering them. [`Convo`] collects
//! them in that shape and remembers each call's function name, because several templates
//! print the name beside a tool result and neither API repeats it there.

use std::collections::HashMap;

use owl_text::tools::ToolCall;
use owl_text::ChatMessage;

/// A conversation being assembled, in order.
#[derive(Default)]
pub struct Convo {
    messages: Vec<ChatMessage>,
    /// The assistant turn being assembled: its text and calls.
    open: Option<(String, Vec<ToolCall>)>,
    /// Function names by call id, for tool results.
    names: HashMap<String, String>,
}

impl Convo {
    pub fn new() -> Convo {
        Convo::default()
    }

    /// Starts from earlier turns (a stored response's conversation) and the function names
    /// of their calls.
    pub fn from_history(history: Vec<ChatMessage>, names: HashMap<String, String>) -> Convo {
        Convo {
            messages: history,
            open: None,
            names,
        }
    }

    /// Function names by call id, of every call seen.
    pub fn names(&self) -> &HashMap<String, String> {
        &self.names
    }

    /// A system, user or developer message (`role` already checked).
    pub fn say(&mut self, role: &str, text: String) {
        self.close();
        self.messages.push(ChatMessage::new(role, text));
    }

    /// Assistant text; joins the assistant turn being assembled.
    pub fn assistant_text(&mut self, text: &str) {
        let open = self.open.get_or_insert_with(Default::default);
        open.0.push_str(text);
    }

    /// An assistant tool call; joins the assistant turn being assembled.
    pub fn assistant_call(&mut self, call: ToolCall) {
        self.names.insert(call.id.clone(), call.name.clone());
        self.open.get_or_insert_with(Default::default).1.push(call);
    }

    /// Ends the assistant turn being assembled, if any (two assistant messages in a row stay
    /// two messages).
    pub fn end_assistant(&mut self) {
        self.close();
    }

    /// The result of call `call_id` (its function name looked up among the calls seen).
    pub fn tool_result(&mut self, call_id: &str, content: String) {
        self.close();
        let name = self.names.get(call_id).cloned();
        self.messages.push(tool_message(call_id, name, content));
    }

    /// The messages, the assistant turn being assembled closed.
    pub fn finish(self) -> Vec<ChatMessage> {
        self.finish_with_names().0
    }

    /// The messages and the function names by call id.
    pub fn finish_with_names(mut self) -> (Vec<ChatMessage>, HashMap<String, String>) {
        self.close();
        (self.messages, self.names)
    }

    fn close(&mut self) {
        if let Some((text, calls)) = self.open.take() {
            self.messages.push(assistant_message(text, calls));
        }
    }
}

/// An assistant message with its tool calls (rendered through the model's template).
pub fn assistant_message(text: String, calls: Vec<ToolCall>) -> ChatMessage {
    if calls.is_empty() {
        ChatMessage::new("assistant", text)
    } else {
        ChatMessage::assistant_calls(text, calls)
    }
}

/// A `tool` message answering call `call_id` of function `name`.
pub fn tool_message(call_id: &str, name: Option<String>, content: String) -> ChatMessage {
    ChatMessage::tool_result(call_id, name.unwrap_or_default(), content)
}
