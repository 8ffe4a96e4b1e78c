//! Grammar text adapted to the vocabulary it runs on.
//!
//! A tool-call marker such as `<tool_call>` is a plain-text added token in Qwen's vocabulary
//! but a control token in others. A grammar that writes it as the literal `"<tool_call>"`
//! would, on a vocabulary where it is special, force the model to spell it out of ordinary
//! tokens (which it never does), and the special token itself would be masked. So before
//! compiling, every string literal whose text is exactly a special token's becomes that token
//! (`<[ID]>`). Literals inside `%json { … }` schemas, regexes and comments are left alone.

use std::collections::HashMap;

/// `grammar` with literals naming special tokens replaced by those tokens.
pub fn special_literals(grammar: &str, specials: &HashMap<String, u32>) -> String {
    if specials.is_empty() {
        return grammar.to_string();
    }
    let b = grammar.as_bytes();
    let mut out = String::with_capacity(grammar.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            b'%' if grammar[i..].starts_with("%json") => {
                i = skip_json_block(b, i + 5);
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = grammar[i..].find('\n').map_or(b.len(), |n| i + n);
            }
            b'/' => i = skip_quoted(b, i, b'/'),
            b'"' => {
                let end = skip_quoted(b, i, b'"');
                let literal = &grammar[i..end];
                if let Ok(text) = serde_json::from_str::<String>(literal) {
                    if let Some(id) = specials.get(&text) {
                        out.push_str(&grammar[copied..i]);
                        out.push_str(&format!("<[{id}]>"));
                        copied = end;
                    }
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&grammar[copied..]);
    out
}

/// The index after a literal opened by `quote` at `start` (escapes honoured).
fn skip_quoted(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// The index after the `{ … }` JSON value that follows `%json` at `from`.
fn skip_json_block(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len() && b[i] != b'{' {
        i += 1;
    }
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = skip_quoted(b, i, b'"');
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_naming_special_tokens_become_tokens() {
        let specials = HashMap::from([("<tool_call>".to_string(), 7u32)]);
        let g = r#"start: "<tool_call>" %json {"const": "<tool_call>"} "</tool_call>" /"<tool_call>"/
// "<tool_call>"
x: "a\"<tool_call>""#;
        let out = special_literals(g, &specials);
        assert!(
            out.starts_with("start: <[7]> %json {\"const\": \"<tool_call>\"} \"</tool_call>\""),
            "{out}"
        );
        assert!(
            out.contains(r#"/"<tool_call>"/"#) && out.contains(r#"// "<tool_call>""#),
            "{out}"
        );
        assert!(out.ends_with(r#"x: "a\"<tool_call>""#), "{out}");
    }
}
