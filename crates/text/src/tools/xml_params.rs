//! Calls whose arguments are XML-ish key/value pairs rather than JSON: Qwen3-Coder
//! (`<parameter=K>\nV\n</parameter>`) and GLM-4.5 (`<arg_key>K</arg_key><arg_value>V
//! </arg_value>`). Values are text; the tool's schema says which are strings, the rest are
//! read as JSON when they parse. Arguments are released a whole parameter at a time, as a
//! JSON object that only ever grows (`{"a": 1`, then `, "b": 2`, then `}`).

use super::parser::Partial;
use super::scan::{param_json, push_member, ws};
use super::ToolSpec;

/// One family's parameter markup.
pub struct Params {
    /// Before the key (`<parameter=`, `<arg_key>`).
    pub key_open: &'static str,
    /// After the key (`>`, `</arg_key>`), then (after whitespace) `value_open`.
    pub key_close: &'static str,
    pub value_open: &'static str,
    pub value_close: &'static str,
    /// Ends the parameter list (`</function>`, `</tool_call>`).
    pub list_close: &'static str,
    /// Qwen3-Coder puts values on their own lines: one leading and trailing newline go.
    pub strip_newlines: bool,
}

/// What scanning a parameter list found.
pub struct ParamScan {
    pub call: Partial,
    /// Bytes consumed when the list closed (after `list_close`).
    pub end: Option<usize>,
}

impl Params {
    /// Scans the parameters of call `name` in `s` (the text after the call's name).
    pub fn scan(&self, tools: &[ToolSpec], name: &str, s: &str, eof: bool) -> ParamScan {
        let tool = tools.iter().find(|t| t.name == name);
        let mut call = Partial {
            name: name.to_string(),
            ..Partial::default()
        };
        let mut at = 0;
        loop {
            at += ws(&s[at..]);
            let rest = &s[at..];
            if rest.starts_with(self.list_close) {
                if call.args.is_empty() {
                    call.args.push('{');
                }
                call.args.push('}');
                call.done = true;
                return ParamScan {
                    call,
                    end: Some(at + self.list_close.len()),
                };
            }
            let Some(after_key) = rest.strip_prefix(self.key_open) else {
                let waiting = self.key_open.starts_with(rest) || self.list_close.starts_with(rest);
                // Stray text ends the call here, unterminated (at the end of the reply the
                // parser decides what to do with it).
                let end = (!waiting && !eof).then_some(at);
                return ParamScan { call, end };
            };
            let Some(key_len) = after_key.find(self.key_close) else {
                return ParamScan { call, end: None };
            };
            let key = after_key[..key_len].trim().to_string();
            let mut v = at + self.key_open.len() + key_len + self.key_close.len();
            v += ws(&s[v..]);
            let Some(value_text) = s[v..].strip_prefix(self.value_open) else {
                return ParamScan { call, end: None };
            };
            let Some(value_len) = value_text.find(self.value_close) else {
                return ParamScan { call, end: None };
            };
            let mut raw = &value_text[..value_len];
            if self.strip_newlines {
                raw = raw.strip_prefix('\n').unwrap_or(raw);
                raw = raw.strip_suffix('\n').unwrap_or(raw);
            }
            push_member(&mut call.args, &key, &param_json(tool, &key, raw));
            at = v + self.value_open.len() + value_len + self.value_close.len();
        }
    }
}
