//! Token ids back to bytes: llama.cpp's `token_to_piece` and `detokenize`.

use crate::bytelevel;
use crate::vocab::{attr, Kind, Vocab};

/// The piece of every token as llama.cpp renders it with `special = true`.
pub(crate) fn piece_table(vocab: &Vocab) -> Vec<Vec<u8>> {
    (0..vocab.tokens.len())
        .map(|i| {
            let text = vocab.tokens[i].as_str();
            let a = vocab.attrs[i];
            if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
                text.as_bytes().to_vec()
            } else if a & attr::NORMAL != 0 {
                match vocab.kind {
                    // llama_unescape_whitespace: WordPiece word starts carry `▁` too.
                    Kind::Spm | Kind::Wpm => text.replace('▁', " ").into_bytes(),
                    Kind::Bpe => bytelevel::decode(text),
                }
            } else if a & attr::BYTE != 0 {
                byte_token(text).map(|b| vec![b]).unwrap_or_default()
            } else {
                // unused / undefined tokens render as nothing
                Vec::new()
            }
        })
        .collect()
}

/// `<0xAB>` → `0xAB`.
fn byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

/// llama.cpp's `clean_spaces` post-pass: drop the space in " ?", " !", " .", " ,", in a lone
/// " ' " and before "'s", "'m", "'re", "'ve".
pub(crate) fn clean_spaces(text: &[u8]) -> Vec<u8> {
    // pass 1: " ?", " !", " .", " ,"
    let mut a: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            a.pop();
        }
        a.push(x);
    }
    // pass 2: " ' " -> "'" (llama.cpp blanks the skipped space in place; so do we)
    let mut b: Vec<u8> = Vec::with_capacity(a.len());
    let mut i = 0;
    while i < a.len() {
        let x = a[i];
        if i > 0 && x == b'\'' && i + 1 < a.len() && a[i - 1] == b' ' && a[i + 1] == b' ' {
            b.pop();
            b.push(x);
            a[i + 1] = 0;
            i += 2;
            continue;
        }
        b.push(x);
        i += 1;
    }
    // pass 3: " 's", " 'm", " 're", " 've"
    let mut c: Vec<u8> = Vec::with_capacity(b.len());
    for (i, &x) in b.iter().enumerate() {
        if i > 0 && b[i - 1] == b' ' && x == b'\'' && i + 1 < b.len() {
            let x1 = b[i + 1];
            let x2 = b.get(i + 2).copied();
            if matches!(x1, b's' | b'm')
                || matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e')))
            {
                c.pop();
            }
        }
        c.push(x);
    }
    c
}
