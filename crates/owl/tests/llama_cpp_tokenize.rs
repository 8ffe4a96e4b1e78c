//! owl's tokenizer for the default model against llama.cpp's (`llama_tokenize` and
//! `llama_token_to_piece`), on the committed tricky strings and on every reference prompt.

use owl_testkit as common;

use owl_gguf::GgufFile;
use owl_text::{StreamDecoder, Tokenizer};

fn tokenizer() -> Tokenizer {
    let g = GgufFile::open(&common::default_model()).expect("open default model");
    Tokenizer::from_gguf(&g).expect("tokenizer")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn tricky_strings_tokenize_like_llama_cpp() {
    let t = tokenizer();
    let doc = common::reference("tokenize.json");
    let cases = doc["tokenize"]["cases"].as_array().expect("cases");
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for c in cases {
        let text = c["text"].as_str().expect("text");
        let add = c["add_special"].as_bool().expect("add_special");
        let parse = c["parse_special"].as_bool().expect("parse_special");
        let want = common::ids(&c["tokens"]);
        let got = t.encode(text, add, parse).expect("encode");
        if got != want {
            failures.push(format!(
                "{} {text:?}: owl {got:?} llama.cpp {want:?}",
                c["name"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reference_prompts_tokenize_like_llama_cpp() {
    let t = tokenizer();
    let doc = common::reference("generation.json");
    for c in doc["cases"].as_array().expect("cases") {
        let got = t
            .encode(
                c["prompt"].as_str().expect("prompt"),
                c["add_special"].as_bool().expect("add_special"),
                c["parse_special"].as_bool().expect("parse_special"),
            )
            .expect("encode");
        assert_eq!(got, common::ids(&c["prompt_tokens"]), "{}", c["name"]);
    }
}

#[test]
fn pieces_and_streaming_match_llama_cpp() {
    let t = tokenizer();
    let doc = common::reference("tokenize.json");
    for c in doc["detokenize"]["cases"].as_array().expect("detokenize") {
        let ids = common::ids(&c["tokens"]);
        for (special, key) in [(false, "pieces_hex_plain"), (true, "pieces_hex_special")] {
            let want: Vec<&str> = c[key]
                .as_array()
                .expect("pieces")
                .iter()
                .map(|p| p.as_str().expect("hex"))
                .collect();
            let got: Vec<String> = ids
                .iter()
                .map(|&id| hex(&t.token_to_piece(id, special)))
                .collect();
            assert_eq!(got, want, "{} ({key})", c["name"]);
        }
        // Streaming never emits a partial character; what it emits, plus the flush, is the
        // concatenation of the pieces.
        let mut d = StreamDecoder::with_special(true);
        let mut out = String::new();
        for &id in &ids {
            out.push_str(&d.push(&t, id));
        }
        let tail = d.finish();
        let concat = c["concat_hex_special"].as_str().expect("concat");
        match c["concat_text_special"].as_str() {
            Some(text) => assert_eq!(format!("{out}{tail}"), text, "{}", c["name"]),
            None => {
                // Invalid UTF-8 (e.g. a cut emoji): nothing partial was emitted early.
                assert!(
                    concat.len() / 2 > out.len(),
                    "{}: partial bytes emitted",
                    c["name"]
                );
            }
        }
    }
}
