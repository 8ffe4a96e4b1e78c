//! Special tokens, BOS/EOS, end-of-generation and pieces, as llama.cpp defines them.
#![allow(clippy::unwrap_used)]

mod common;

use owl_text::{Tokenizer, VocabSpec};

#[test]
fn qwen2_special_tokens() {
    let tok = common::vocab("qwen2");
    let text = "<|im_start|>user\nhi<|im_end|>";
    let parsed = tok.encode(text, false, true).unwrap();
    assert_eq!(parsed.first(), Some(&151644));
    assert_eq!(parsed.last(), Some(&151645));
    assert_eq!(tok.decode(&parsed, true), text);
    assert_eq!(tok.decode(&parsed, false), "user\nhi");

    // Without parse_special the markers are plain text and cannot become control tokens.
    let plain = tok.encode(text, false, false).unwrap();
    assert!(
        !plain.contains(&151644) && !plain.contains(&151645),
        "{plain:?}"
    );
    assert_eq!(tok.decode(&plain, false), text);

    assert!(tok.is_eog(151643)); // <|endoftext|> (eos)
    assert!(tok.is_eog(151645)); // <|im_end|>
    assert!(!tok.is_eog(151644));
    assert!(!tok.add_bos());
    assert_eq!(
        tok.encode("hi", true, false).unwrap(),
        tok.encode("hi", false, false).unwrap()
    );
    assert_eq!(tok.token_text(151644), Some("<|im_start|>"));
    assert_eq!(tok.token_id("<|im_end|>"), Some(151645));
    assert_eq!(tok.vocab_size(), 151936);
    assert_eq!(tok.pre_tokenizer(), "qwen2");
    assert!(tok.pre_tokenizer_known());
}

#[test]
fn llama3_bos_and_eog() {
    let tok = common::vocab("llama-bpe");
    assert!(tok.add_bos());
    assert_eq!(tok.bos(), Some(128000));
    let ids = tok.encode("Hello", true, false).unwrap();
    assert_eq!(ids, vec![128000, 9906]);
    assert_eq!(tok.decode(&ids, false), "Hello");
    assert_eq!(tok.decode(&ids, true), "<|begin_of_text|>Hello");
    assert_eq!(tok.detokenize(&ids, true, true), "Hello");
    assert!(tok.is_eog(128001) && tok.is_eog(128009)); // <|end_of_text|>, <|eot_id|>
    assert_eq!(tok.eot(), Some(128009));
    assert!(!tok.is_eog(128000));
    assert!(tok.is_control(128006));
    assert!(tok.token_to_piece(128006, false).is_empty());
    assert_eq!(tok.token_to_piece(128006, true), b"<|start_header_id|>");
}

#[test]
fn spm_prefix_space_bos_and_bytes() {
    let tok = common::vocab("llama-spm");
    assert!(tok.is_sentencepiece());
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.eos(), Some(2));
    let ids = tok.encode("Hello world", true, false).unwrap();
    assert_eq!(ids, vec![1, 15043, 3186]);
    assert_eq!(tok.token_to_piece(15043, false), b" Hello");
    // llama.cpp keeps the space after a BOS it does not strip, and drops it otherwise.
    assert_eq!(tok.decode(&ids, false), " Hello world");
    assert_eq!(tok.decode(&ids[1..], false), "Hello world");
    assert_eq!(tok.detokenize(&ids, true, false), " Hello world");
    // Text after a special token gets its own leading space.
    let ids = tok.encode("<s>Hi</s>Hi", false, true).unwrap();
    let hi = tok.encode("Hi", false, false).unwrap();
    assert_eq!(ids, [&[1][..], &hi, &[2], &hi].concat());
    // Byte-fallback tokens render as single bytes.
    assert_eq!(tok.token_to_piece(13, false), b"\n"); // <0x0A>
    assert!(tok.is_eog(2));
    assert!(tok.token_to_piece(0, false).is_empty()); // <unk>
    assert_eq!(tok.token_to_piece(0, true), b"<unk>");
}

#[test]
fn user_defined_tokens_always_match() {
    // deepseek-llm marks single characters such as 'ø' as user-defined: llama.cpp (like HF)
    // splits them out even when special parsing is off.
    let tok = common::vocab("deepseek-llm");
    let id = tok.token_id("ø").unwrap();
    assert!(!tok.is_control(id));
    assert_eq!(tok.encode("ø", false, false).unwrap(), vec![id]);
    assert_eq!(tok.decode(&[id], false), "ø");
    assert!(tok.add_bos());
    assert_eq!(tok.encode("a", true, false).unwrap()[0], 100000);
}

#[test]
fn gpt2_eos_is_eog_and_clean_spaces() {
    let tok = common::vocab("gpt-2");
    assert_eq!(tok.eos(), Some(50256));
    assert!(tok.is_eog(50256));
    assert!(!tok.add_bos());
    // llama.cpp's clean_spaces applies to gpt-2 detokenization.
    let ids = tok.encode("Hi , you ?", false, false).unwrap();
    assert_eq!(tok.decode(&ids, false), "Hi, you?");
}

#[test]
fn out_of_range_ids_are_harmless() {
    let tok = common::vocab("gpt-2");
    assert!(tok.token_to_piece(u32::MAX, true).is_empty());
    assert_eq!(tok.token_text(1 << 30), None);
    assert!(!tok.is_eog(u32::MAX));
    assert_eq!(tok.decode(&[u32::MAX, 15496], false), "Hello");
}

fn tiny_spec(pre: &str) -> VocabSpec {
    let mut tokens: Vec<String> = (0u8..=255)
        .map(|b| {
            let c = match b {
                b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF => char::from(b),
                _ => char::from_u32(0x100 + u32::from(b)).unwrap(), // not the real map; unused
            };
            c.to_string()
        })
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens.push("<|im_end|>".into());
    tokens.push("<|endoftext|>".into());
    let n = tokens.len();
    let mut types = vec![1; n];
    types[n - 2] = 3;
    types[n - 1] = 3;
    VocabSpec {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens,
        token_types: types,
        merges: vec!["a b".into()],
        ..VocabSpec::default()
    }
}

#[test]
fn spec_defaults_and_eog_detection() {
    let spec = tiny_spec("no-such-pre");
    let n = spec.tokens.len() as u32;
    let tok = Tokenizer::from_spec(spec).unwrap();
    // unknown pre falls back to llama.cpp's default regexes
    assert!(!tok.pre_tokenizer_known());
    assert_eq!(tok.pre_tokenizer(), "default");
    // gpt2 default BOS/EOS id is 11 (llama.cpp)
    assert_eq!(tok.eos(), Some(11));
    assert!(tok.is_eog(n - 2) && tok.is_eog(n - 1) && tok.is_eog(11));
    assert_eq!(tok.eot(), Some(n - 2));
}

#[test]
fn bad_specs_are_errors() {
    let mut spec = tiny_spec("gpt-2");
    spec.model = "t5".into(); // Unigram: not implemented (`bert` is, see tests/wpm.rs)
    assert!(Tokenizer::from_spec(spec).is_err());
    let mut spec = tiny_spec("gpt-2");
    spec.merges.clear();
    assert!(Tokenizer::from_spec(spec).is_err());
    let mut spec = tiny_spec("gpt-2");
    spec.token_types.truncate(3);
    assert!(Tokenizer::from_spec(spec).is_err());
    assert!(Tokenizer::from_spec(VocabSpec::default()).is_err());
    // add_bos without a usable BOS: encode reports it instead of panicking
    let mut spec = tiny_spec("gpt-2");
    spec.add_bos = Some(true);
    spec.bos = Some(1 << 20);
    spec.tokens.truncate(10);
    spec.token_types.truncate(10);
    let tok = Tokenizer::from_spec(spec).unwrap();
    assert!(tok.encode("x", true, false).is_err());
}

#[test]
fn types_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<owl_text::ChatTemplate>();
    assert_send_sync::<owl_text::StreamDecoder>();
}

#[test]
fn phi3_special_tokens_eat_following_spaces() {
    // llama.cpp gives Phi-3's special tokens the rstrip attribute (by model name).
    let g = owl_gguf::GgufFile::open(&common::fixture("vocab/ggml-vocab-llama-spm.gguf")).unwrap();
    let mut spec = VocabSpec::from_gguf(&g).unwrap();
    let plain = Tokenizer::from_spec(spec.clone()).unwrap();
    spec.name = Some("Phi-3-mini-4k-instruct".into());
    let phi = Tokenizer::from_spec(spec).unwrap();
    let spaced = "</s>  \n Hi";
    assert_eq!(
        phi.encode(spaced, false, true).unwrap(),
        phi.encode("</s>Hi", false, true).unwrap()
    );
    assert_ne!(
        plain.encode(spaced, false, true).unwrap(),
        plain.encode("</s>Hi", false, true).unwrap()
    );
    // <s> keeps its spaces
    assert_ne!(
        phi.encode("<s>  Hi", false, true).unwrap(),
        phi.encode("<s>Hi", false, true).unwrap()
    );
}
