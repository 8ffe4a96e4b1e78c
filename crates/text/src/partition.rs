//! Splitting special-token text out of the input before the tokenizer model sees it.
//!
//! This mirrors llama.cpp's `tokenizer_st_partition` rather than the `tokenizers` added-token
//! matcher, because llama.cpp's rules differ in ways that change token ids: user-defined
//! tokens are split out even when special parsing is off, control and unknown tokens only
//! when it is on, longer tokens are matched first, and lstrip/rstrip attributes eat ASCII
//! whitespace next to the token.

use crate::vocab::{attr, Vocab};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Splits `text` into raw-text fragments and special tokens.
pub(crate) fn partition<'a>(
    vocab: &Vocab,
    text: &'a str,
    parse_special: bool,
) -> Vec<Fragment<'a>> {
    let mut frags = Vec::new();
    if text.is_empty() {
        return frags;
    }
    frags.push(Fragment::Text(text));
    for &id in &vocab.special_cache {
        let a = vocab.attr(id);
        if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let special = vocab.tokens[id as usize].as_str();
        if special.is_empty()
            || !frags
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(special)))
        {
            continue;
        }
        let mut out = Vec::with_capacity(frags.len() + 2);
        for f in frags {
            match f {
                Fragment::Token(_) => out.push(f),
                Fragment::Text(t) => split_one(t, special, id, a, &mut out),
            }
        }
        frags = out;
    }
    frags
}

fn split_one<'a>(mut rest: &'a str, special: &str, id: u32, a: u32, out: &mut Vec<Fragment<'a>>) {
    while let Some(pos) = rest.find(special) {
        let mut left = &rest[..pos];
        if a & attr::LSTRIP != 0 {
            left = left.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
        }
        if !left.is_empty() {
            out.push(Fragment::Text(left));
        }
        out.push(Fragment::Token(id));
        rest = &rest[pos + special.len()..];
        if a & attr::RSTRIP != 0 {
            rest = rest.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
        }
    }
    if !rest.is_empty() {
        out.push(Fragment::Text(rest));
    }
}
