//! Small scanners the per-family parsers share: where a JSON value ends in text that is
//! still arriving, JSON call objects (`{"name": …, "arguments": …}`), marker prefixes held
//! back at a chunk boundary, and XML-style parameter values turned into JSON.
//!
//! Everything here works on the text seen so far and answers "complete", "not yet" or
//! "not this shape"; the streaming parser re-scans a call's text as it grows.

use super::ToolSpec;

/// What a scan of a growing text concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe<T> {
    /// Complete: the value and the bytes it took.
    Done(T, usize),
    /// The text ends before the value does.
    More,
    /// The text is not of this shape.
    Bad,
}

/// Length of the whitespace at the start of `s`.
pub fn ws(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

/// Length of the complete JSON value at the start of `s` (no leading whitespace).
pub fn json_value_len(s: &str) -> Probe<()> {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return Probe::More;
    };
    match first {
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut in_str = false;
            let mut esc = false;
            for (i, &c) in b.iter().enumerate() {
                if in_str {
                    match (esc, c) {
                        (true, _) => esc = false,
                        (false, b'\\') => esc = true,
                        (false, b'"') => in_str = false,
                        _ => {}
                    }
                    continue;
                }
                match c {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Probe::Done((), i + 1);
                        }
                    }
                    _ => {}
                }
            }
            Probe::More
        }
        b'"' => match json_string(s) {
            Probe::Done(_, n) => Probe::Done((), n),
            Probe::More => Probe::More,
            Probe::Bad => Probe::Bad,
        },
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let n = b
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || b"+-.".contains(c)))
                .unwrap_or(b.len());
            if n == b.len() {
                Probe::More
            } else if serde_json::from_str::<serde_json::Value>(&s[..n]).is_ok() {
                Probe::Done((), n)
            } else {
                Probe::Bad
            }
        }
        _ => Probe::Bad,
    }
}

/// The complete JSON string at the start of `s`, decoded.
pub fn json_string(s: &str) -> Probe<String> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return if b.is_empty() {
            Probe::More
        } else {
            Probe::Bad
        };
    }
    let mut esc = false;
    for (i, &c) in b.iter().enumerate().skip(1) {
        match (esc, c) {
            (true, _) => esc = false,
            (false, b'\\') => esc = true,
            (false, b'"') => {
                return match serde_json::from_str::<String>(&s[..=i]) {
                    Ok(v) => Probe::Done(v, i + 1),
                    Err(_) => Probe::Bad,
                };
            }
            _ => {}
        }
    }
    Probe::More
}

/// A call object scanned so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallObject {
    pub name: Option<String>,
    /// The arguments text seen so far (raw JSON of an object, or a decoded string).
    pub args: String,
    /// The arguments value is complete.
    pub args_done: bool,
    /// Bytes the whole object took, once its `}` arrived.
    pub end: Option<usize>,
}

/// Scans a JSON call object at the start of `s` (after whitespace): `name` from one of
/// `name_keys`, arguments from one of `args_keys`, other keys skipped. Arguments stream as
/// raw text while their value is open; a string value (stringified arguments) is decoded once
/// complete.
pub fn call_object(s: &str, name_keys: &[&str], args_keys: &[&str]) -> Result<CallObject, ()> {
    let mut out = CallObject::default();
    let mut at = ws(s);
    if s.len() == at {
        return Ok(out);
    }
    if !s[at..].starts_with('{') {
        return Err(());
    }
    at += 1;
    loop {
        at += ws(&s[at..]);
        let rest = &s[at..];
        if rest.is_empty() {
            return Ok(out);
        }
        if rest.starts_with('}') {
            out.end = Some(at + 1);
            return Ok(out);
        }
        if rest.starts_with(',') {
            at += 1;
            continue;
        }
        let (key, n) = match json_string(rest) {
            Probe::Done(k, n) => (k, n),
            Probe::More => return Ok(out),
            Probe::Bad => return Err(()),
        };
        at += n;
        at += ws(&s[at..]);
        match s[at..].chars().next() {
            None => return Ok(out),
            Some(':') => at += 1,
            Some(_) => return Err(()),
        }
        at += ws(&s[at..]);
        let value = &s[at..];
        if value.is_empty() {
            return Ok(out);
        }
        let is_args = args_keys.contains(&key.as_str());
        match json_value_len(value) {
            Probe::Done((), n) => {
                let v = &value[..n];
                if name_keys.contains(&key.as_str()) {
                    match serde_json::from_str::<String>(v) {
                        Ok(name) => out.name = Some(name),
                        Err(_) => return Err(()),
                    }
                } else if is_args {
                    out.args = match serde_json::from_str::<String>(v) {
                        Ok(text) => text,
                        Err(_) => v.to_string(),
                    };
                    out.args_done = true;
                }
                at += n;
            }
            Probe::More => {
                if is_args && !value.starts_with('"') {
                    out.args = value.trim_end().to_string();
                }
                return Ok(out);
            }
            Probe::Bad => return Err(()),
        }
    }
}

/// Length of the longest suffix of `s` that is a proper prefix of one of `markers` (held
/// back: the marker may be completed by the next chunk). Char-boundary safe.
pub fn partial_marker(s: &str, markers: &[&str]) -> usize {
    markers
        .iter()
        .map(|m| {
            let max = m.len().saturating_sub(1).min(s.len());
            (1..=max)
                .rev()
                .find(|&n| s.is_char_boundary(s.len() - n) && m.starts_with(&s[s.len() - n..]))
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

/// The JSON text of an XML-style parameter value (Qwen3-Coder, GLM): a string when the
/// schema says so or the text is not JSON, the parsed value otherwise.
pub fn param_json(tool: Option<&ToolSpec>, param: &str, raw: &str) -> String {
    let ty = tool
        .and_then(|t| t.parameters.get("properties"))
        .and_then(|p| p.get(param))
        .and_then(|p| p.get("type"))
        .and_then(|t| t.as_str());
    let string = || serde_json::Value::String(raw.to_string()).to_string();
    if ty == Some("string") {
        return string();
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v) => v.to_string(),
        Err(_) => string(),
    }
}

/// Appends `"key": value` to an arguments object being built (`{` first, `, ` between).
pub fn push_member(args: &mut String, key: &str, value_json: &str) {
    args.push_str(if args.is_empty() { "{" } else { ", " });
    args.push_str(&serde_json::Value::String(key.to_string()).to_string());
    args.push_str(": ");
    args.push_str(value_json);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_end_where_they_should() {
        assert_eq!(json_value_len(r#"{"a": "}"} x"#), Probe::Done((), 10));
        assert_eq!(json_value_len(r#"{"a": [1, 2"#), Probe::More);
        assert_eq!(json_value_len("12,"), Probe::Done((), 2));
        assert_eq!(json_value_len("12"), Probe::More);
        assert_eq!(json_value_len("x"), Probe::Bad);
        assert_eq!(json_string(r#""a\"b" "#), Probe::Done("a\"b".into(), 6));
    }

    #[test]
    fn call_objects_stream_their_arguments() {
        let keys = (["name"], ["arguments"]);
        let full = r#"{"name": "f", "arguments": {"x": [1, "}"]}}"#;
        let o = call_object(full, &keys.0, &keys.1).unwrap_or_default();
        assert_eq!(o.name.as_deref(), Some("f"));
        assert_eq!(o.args, r#"{"x": [1, "}"]}"#);
        assert_eq!(o.end, Some(full.len()));
        let o = call_object(&full[..35], &keys.0, &keys.1).unwrap_or_default();
        assert_eq!((o.args.as_str(), o.args_done), (r#"{"x": [1"#, false));
        let o = call_object(
            r#"{"arguments": "{\"x\":1}", "name": "g"}"#,
            &keys.0,
            &keys.1,
        )
        .unwrap_or_default();
        assert_eq!(
            (o.name.as_deref(), o.args.as_str()),
            (Some("g"), r#"{"x":1}"#)
        );
        assert!(call_object("hello", &keys.0, &keys.1).is_err());
    }

    #[test]
    fn partial_markers_are_held() {
        assert_eq!(partial_marker("abc<tool", &["<tool_call>"]), 5);
        assert_eq!(partial_marker("abc", &["<tool_call>"]), 0);
        assert_eq!(partial_marker("é<", &["<|a|>", "<x"]), 1);
    }
}
