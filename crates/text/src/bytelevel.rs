//! GPT-2's byte-level alphabet: every byte is stored in the vocabulary as one printable char.
//!
//! Encoding goes through the `tokenizers` `ByteLevel` pre-tokenizer; this table is the
//! reverse direction, needed per token (the `tokenizers` decoder only decodes whole sequences
//! lossily, but a token can hold half a UTF-8 character).

use std::collections::HashMap;
use std::sync::LazyLock;

/// Bytes that GPT-2 keeps as their own code point; the rest move to U+0100 and up, in order.
fn is_kept(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

static CHAR_TO_BYTE: LazyLock<HashMap<char, u8>> = LazyLock::new(|| {
    let mut next = 256u32;
    let mut map = HashMap::with_capacity(256);
    for b in 0..=255u8 {
        let cp = if is_kept(b) {
            u32::from(b)
        } else {
            next += 1;
            next - 1
        };
        if let Some(c) = char::from_u32(cp) {
            map.insert(c, b);
        }
    }
    map
});

/// The raw bytes a byte-level token text stands for. Characters outside the alphabet (which a
/// well-formed vocabulary never has) are kept as their UTF-8.
pub(crate) fn decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match CHAR_TO_BYTE.get(&c) {
            Some(&b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_characters() {
        assert_eq!(decode("Ġ"), b" ");
        assert_eq!(decode("Ċ"), b"\n");
        assert_eq!(decode("ĉ"), b"\t");
        assert_eq!(decode("Hello"), b"Hello");
        assert_eq!(decode("Ã©"), "é".as_bytes());
        assert_eq!(CHAR_TO_BYTE.len(), 256);
    }
}
