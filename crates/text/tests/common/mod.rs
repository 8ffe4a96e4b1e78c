//! Shared helpers for the integration tests.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use owl_text::Tokenizer;
use std::path::PathBuf;

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn vocab(name: &str) -> Tokenizer {
    let path = fixture(&format!("vocab/ggml-vocab-{name}.gguf"));
    let g = owl_gguf::GgufFile::open(&path).unwrap();
    Tokenizer::from_gguf(&g).unwrap()
}

/// llama.cpp's `.inp`/`.out` pairs (tests/test-tokenizer-0.cpp `read_tests`).
pub fn cases(name: &str) -> Vec<(String, Vec<u32>)> {
    cases_at(&format!("vocab/ggml-vocab-{name}.gguf"))
}

/// The `.inp`/`.out` pair at `fixtures/{stem}.inp` and `.out`.
pub fn cases_at(stem: &str) -> Vec<(String, Vec<u32>)> {
    let name = stem;
    let inp = std::fs::read_to_string(fixture(&format!("{stem}.inp"))).unwrap();
    let out = std::fs::read_to_string(fixture(&format!("{stem}.out"))).unwrap();
    let sep = "\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut rest = inp.as_str();
    while !rest.is_empty() {
        match rest.find(sep) {
            Some(i) => {
                inputs.push(rest[..i].to_string());
                rest = &rest[i + sep.len()..];
            }
            None => {
                inputs.push(rest.to_string());
                rest = "";
            }
        }
    }
    let outputs: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "{name}: .inp/.out case counts differ"
    );
    inputs.into_iter().zip(outputs).collect()
}
