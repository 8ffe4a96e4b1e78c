//! Detokenization: decode(encode(s)) round trips, and StreamDecoder never splits characters.
#![allow(clippy::unwrap_used)]

mod common;

use owl_text::{StreamDecoder, Tokenizer};

const ALL: &[&str] = &[
    "llama-spm",
    "llama-bpe",
    "qwen2",
    "deepseek-llm",
    "deepseek-coder",
    "gpt-2",
    "starcoder",
];
/// Vocabularies llama.cpp detokenizes with `clean_spaces` (" ?" → "?", " 's" → "'s", ...).
const CLEANED: &[&str] = &["llama-bpe", "gpt-2", "starcoder"];

fn stream_all(tok: &Tokenizer, ids: &[u32]) -> (String, usize) {
    let mut dec = StreamDecoder::new();
    let mut out = String::new();
    let mut held = 0;
    for &id in ids {
        let s = dec.push(tok, id);
        assert!(
            !s.contains('\u{FFFD}'),
            "stream emitted a broken character: {s:?}"
        );
        if s.is_empty() && dec.has_pending() {
            held += 1;
        }
        out.push_str(&s);
    }
    assert!(!dec.has_pending());
    assert_eq!(dec.finish(), "");
    (out, held)
}

#[test]
fn decode_round_trips_like_llama_cpp() {
    for name in ALL {
        let tok = common::vocab(name);
        let cleaned = CLEANED.contains(name);
        for (text, _) in common::cases(name) {
            let ids = tok.encode(&text, false, false).unwrap();
            // Raw pieces always reproduce the input (plus SentencePiece's prefix space).
            let raw = if tok.is_sentencepiece() && !text.is_empty() {
                format!(" {text}")
            } else {
                text.clone()
            };
            let (streamed, _) = stream_all(&tok, &ids);
            assert_eq!(streamed, raw, "{name}: stream of {text:?}");
            // decode() applies llama.cpp's detokenize rules on top.
            let has_cleanable = [" ?", " !", " .", " ,", " '"]
                .iter()
                .any(|p| text.contains(p));
            if !cleaned || !has_cleanable {
                assert_eq!(
                    tok.decode(&ids, false),
                    text,
                    "{name}: decode(encode({text:?}))"
                );
            }
        }
    }
}

#[test]
fn stream_holds_partial_characters() {
    let texts = [
        "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙",
        "我想在apple工作1314151天～ 日本語のテキスト",
        "нещо на Български",
        "កាន់តែពិសេសអាចខលចេញ",
    ];
    for name in ALL {
        let tok = common::vocab(name);
        let mut held_total = 0;
        for text in texts {
            let ids = tok.encode(text, false, false).unwrap();
            let (streamed, held) = stream_all(&tok, &ids);
            held_total += held;
            let want = if tok.is_sentencepiece() {
                format!(" {text}")
            } else {
                text.to_string()
            };
            assert_eq!(streamed, want, "{name}");
            assert_eq!(tok.decode(&ids, false), text, "{name}");
        }
        assert!(
            held_total > 0,
            "{name}: expected some tokens to end mid-character"
        );
    }
}

#[test]
fn stream_handles_invalid_and_truncated_bytes() {
    let tok = common::vocab("llama-spm");
    let byte = |b: u8| tok.token_id(&format!("<0x{b:02X}>")).unwrap();
    let mut dec = StreamDecoder::new();
    // a lone continuation byte can never become valid: replaced at once
    assert_eq!(dec.push(&tok, byte(0x80)), "\u{FFFD}");
    // "é" = C3 A9 arrives in two tokens
    assert_eq!(dec.push(&tok, byte(0xC3)), "");
    assert_eq!(dec.push(&tok, byte(0xA9)), "é");
    // a truncated character at the end is flushed lossily
    assert_eq!(dec.push(&tok, byte(0xE6)), "");
    assert_eq!(dec.finish(), "\u{FFFD}");
    assert_eq!(dec.finish(), "");
    // control tokens are hidden unless asked for
    assert_eq!(dec.push(&tok, 2), "");
    let mut dec = StreamDecoder::with_special(true);
    assert_eq!(dec.push(&tok, 2), "</s>");
}
