//! A decoder reranker (Qwen3-Reranker's shape, as llama.cpp's converter writes it) against
//! llama.cpp: `tests/fixtures/rerank/tiny-qwen3-reranker.gguf` (the tiny Qwen3 with rank
//! pooling, `cls.output` = the "yes"/"no" rows of its output head and the converter's
//! `tokenizer.chat_template.rerank`), and `scripts/make_rerank_references.py`'s record of
//! llama.cpp's pair tokens and outputs. owl must build the same tokens from the template
//! (filled in and tokenized whole, specials parsed) and give the same softmaxed (P(yes), P(no))
//! within f16-activation rounding; `owl rerank` must rank by P(yes).

use std::path::PathBuf;
use std::process::Command;

use owl_engine::{EngineConfig, ModelBundle, OpenOptions, Pooling};

/// Largest |owl - llama.cpp| of a probability: both round activations differently on their
/// tiled paths (the encoders' rank bound).
const MAX_ABS: f32 = 5e-3;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/rerank")
}

fn reference() -> serde_json::Value {
    let p = fixture().join("tiny-qwen3-reranker.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("reference")).expect("json")
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn qwen3_reranker_matches_llama_cpp() {
    let rf = reference();
    let model = fixture().join("tiny-qwen3-reranker.gguf");
    let b = ModelBundle::open(&model, &OpenOptions::from_env(Some(2), Some(256))).expect("open");
    let m = b.start(EngineConfig::single(256)).expect("engine");
    assert_eq!(m.engine.pooling(), Pooling::Rank);
    let query = rf["query"].as_str().expect("query");
    let docs = strings(&rf["documents"]);
    let want_pairs: Vec<Vec<u32>> = serde_json::from_value(rf["pairs"].clone()).expect("pairs");
    let want: Vec<Vec<f32>> = serde_json::from_value(rf["outputs"].clone()).expect("outputs");
    let pairs: Vec<Vec<u32>> = docs
        .iter()
        .map(|d| {
            m.pair
                .template_tokens(&m.tokenizer, query, d, 256, false)
                .expect("a rerank template")
                .expect("tokens")
        })
        .collect();
    assert_eq!(pairs, want_pairs, "pair tokens differ from llama-server's");
    let got = m
        .engine
        .embed(pairs.clone(), true)
        .expect("queued")
        .blocking_recv()
        .expect("answer")
        .expect("scores");
    let mut worst = 0.0f32;
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.len(), 2, "(P(yes), P(no)) per pair");
        assert!((g[0] + g[1] - 1.0).abs() < 1e-5, "a softmax: {g:?}");
        for (a, b) in g.iter().zip(w) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!("tiny-qwen3-reranker: max |owl - llama.cpp| {worst:.2e}");
    assert!(worst <= MAX_ABS, "max |diff| {worst}");
    // A pair alone gives what it gives among the others.
    let alone = m
        .engine
        .embed(vec![pairs[1].clone()], true)
        .expect("queued")
        .blocking_recv()
        .expect("answer")
        .expect("scores");
    assert_eq!(alone[0], got[1]);
    m.engine.shutdown(std::time::Duration::ZERO);

    // `owl rerank` ranks by P(yes), best first, with the engine's scores.
    let out = Command::new(env!("CARGO_BIN_EXE_owl"))
        .args(["rerank", "-m", &model.to_string_lossy(), "--query", query])
        .args(&docs)
        .env(
            "OWL_HOME",
            std::env::temp_dir().join("owl-rerank-test-home"),
        )
        .output()
        .expect("owl rerank");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), docs.len());
    let first = lines[0]["index"].as_u64().expect("index") as usize;
    let best = (0..got.len())
        .max_by(|&a, &b| got[a][0].total_cmp(&got[b][0]))
        .expect("scores");
    assert_eq!(first, best, "{lines:?}");
}
