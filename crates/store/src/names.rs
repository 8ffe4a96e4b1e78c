//! Model names: what a user may call a model, how each kind of name is recognised, and how a
//! name becomes a safe file name. One place decides this so `resolve`, `list` and the
//! manifests agree.

use crate::StoreError;

/// Prefix of a model found in Ollama's store.
pub const OLLAMA_PREFIX: &str = "ollama:";
/// Prefix of a model in the Hugging Face cache (or on the Hub, for `pull`).
pub const HF_PREFIX: &str = "hf:";

/// `name` without a trailing `:latest` (which means the same as the bare name).
pub fn strip_latest(name: &str) -> &str {
    match name.strip_suffix(":latest") {
        Some(s) if !s.is_empty() && !s.ends_with(':') => s,
        _ => name,
    }
}

/// Checks a name a user gives to a new (derived) model.
pub fn validate_new(name: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| {
        Err(StoreError::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.trim().is_empty() {
        return bad("a name cannot be empty");
    }
    if name.chars().count() > 200 {
        return bad("a name is at most 200 characters");
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("a name has no spaces or control characters");
    }
    if name.contains("..") {
        return bad("a name cannot contain '..'");
    }
    if name.starts_with('/')
        || name.starts_with('.')
        || name.starts_with('-')
        || name.contains('\\')
    {
        return bad("a name cannot start with '/', '.' or '-', or contain '\\'");
    }
    if name.starts_with(OLLAMA_PREFIX) || name.starts_with(HF_PREFIX) {
        return bad("'ollama:' and 'hf:' name models owl finds in those tools' stores");
    }
    if name.to_ascii_lowercase().ends_with(".gguf") {
        return bad("a name ending in .gguf reads as a file path");
    }
    if name.ends_with(':') || name.ends_with('/') {
        return bad("a name cannot end with ':' or '/'");
    }
    Ok(())
}

/// A file name that stands for `name`: letters, digits, `-`, `_` and inner `.` as they are,
/// every other byte as `%XX`. Reversible with [`unescape`].
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The name a file name made by [`escape`] stands for.
pub fn unescape(file: &str) -> Option<String> {
    let bytes = file.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = file.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `part` appears in `text` as a whole token (not inside a longer word such as
/// `Q4_K` inside `Q4_K_M`), ignoring case.
pub fn contains_token(text: &str, part: &str) -> bool {
    if part.is_empty() {
        return false;
    }
    let text = text.to_ascii_lowercase();
    let part = part.to_ascii_lowercase();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut from = 0;
    while let Some(pos) = text[from..].find(&part) {
        let start = from + pos;
        let end = start + part.len();
        let before = start == 0 || !word(text.as_bytes()[start - 1]);
        let after = end == text.len() || !word(text.as_bytes()[end]);
        if before && after {
            return true;
        }
        from = start + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips() {
        for n in ["a", "llama3:8b", "me/model:v2", ".x", "ü%"] {
            let e = escape(n);
            assert!(e
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.%".contains(&b)));
            assert!(!e.starts_with('.'));
            assert_eq!(unescape(&e).as_deref(), Some(n));
        }
    }

    #[test]
    fn latest_is_the_bare_name() {
        assert_eq!(strip_latest("m:latest"), "m");
        assert_eq!(strip_latest("m"), "m");
        assert_eq!(strip_latest(":latest"), ":latest");
    }

    #[test]
    fn tokens_match_whole_quant_names() {
        assert!(contains_token("model-Q4_K_M.gguf", "q4_k_m"));
        assert!(!contains_token("model-Q4_K_M.gguf", "Q4_K"));
        assert!(contains_token("model.Q8_0.gguf", "Q8_0"));
    }

    #[test]
    fn bad_names_are_refused() {
        for n in [
            "", " ", "a b", "../x", "x/../y", "hf:x", "ollama:y", "m.gguf", "a\u{7}",
        ] {
            assert!(validate_new(n).is_err(), "{n:?}");
        }
        for n in ["mine", "me/model:v2", "a.b-c_d"] {
            assert!(validate_new(n).is_ok(), "{n:?}");
        }
    }
}
