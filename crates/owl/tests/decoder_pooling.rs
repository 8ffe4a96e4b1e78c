//! Decoder embedding models pool as their file says: the tiny Qwen3 fixture, copied with
//! `qwen3.pooling_type = 3` (last, as Qwen3-Embedding's GGUFs state it), embeds through the
//! engine as the L2-normalised final-normed hidden state of its last token; without the key
//! it embeds as the mean over all tokens (what Ollama and llama-server do for generative
//! models); several inputs in one command give what each gives alone.

use std::sync::Arc;

use owl_engine::{EngineConfig, ModelBundle, OpenOptions, Pooling};
use owl_gguf::{GgufFile, GgufWriter, Value};
use owl_kernels::Kernels;
use owl_model::{Batch, LoadOptions, Logits, LogitsWanted, Runner};

fn with_last_pooling(dir: &std::path::Path) -> std::path::PathBuf {
    let src = GgufFile::open(&owl_testkit::tiny_model("qwen3")).expect("fixture");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        w.add_kv(k, v.clone());
    }
    w.add_kv("qwen3.pooling_type", Value::U32(3));
    for t in src.tensors() {
        w.add_tensor(&t.name, &t.dims, t.ty, src.tensor_data(t).to_vec())
            .expect("tensor");
    }
    let p = dir.join("tiny-qwen3-last.gguf");
    w.write_file(&p).expect("write");
    p
}

/// Final-normed hidden states of every row of `tokens` (row layout, one pass).
fn hidden(path: &std::path::Path, tokens: &[u32]) -> Vec<Vec<f32>> {
    let file = Arc::new(GgufFile::open(path).expect("open"));
    let opts = LoadOptions {
        no_repack: false,
        ..LoadOptions::default()
    };
    let mut r = Runner::new(file, Kernels::detect(), 2, &opts).expect("load");
    let mut kv = r.model.new_cache(tokens.len(), 1);
    let mut b = Batch::new();
    b.push(0, 0, tokens, LogitsWanted::All);
    let mut out = Logits {
        hidden: true,
        ..Logits::default()
    };
    r.forward(&b, &mut kv, &mut out).expect("forward");
    (0..tokens.len()).map(|i| out.row(i).to_vec()).collect()
}

fn normalised(v: &[f64]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| (x / n) as f32).collect()
}

fn embed(path: &std::path::Path, inputs: Vec<Vec<u32>>) -> (Pooling, Vec<Vec<f32>>) {
    let b = ModelBundle::open(path, &OpenOptions::from_env(Some(2), Some(256))).expect("open");
    let m = b.start(EngineConfig::single(256)).expect("engine");
    let pooling = m.engine.pooling();
    let out = m
        .engine
        .embed(inputs, true)
        .expect("queued")
        .blocking_recv()
        .expect("answer")
        .expect("embedding");
    m.engine.shutdown(std::time::Duration::ZERO);
    (pooling, out)
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
}

#[test]
fn decoders_pool_by_last_token_or_mean_as_the_file_says() {
    let dir = std::env::temp_dir().join(format!("owl-decoder-pooling-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let last = with_last_pooling(&dir);
    let mean = owl_testkit::tiny_model("qwen3");
    let a: Vec<u32> = vec![9, 400, 1203, 77, 5000, 12];
    let b: Vec<u32> = vec![31, 8, 900];

    let h = hidden(&last, &a);
    let (pooling, got) = embed(&last, vec![a.clone(), b.clone()]);
    assert_eq!(pooling, Pooling::Last);
    let want: Vec<f64> = h[a.len() - 1].iter().map(|&x| x as f64).collect();
    close(&got[0], &normalised(&want));
    let (_, alone) = embed(&last, vec![b.clone()]);
    assert_eq!(alone[0], got[1]);

    let (pooling, got) = embed(&mean, vec![a.clone()]);
    assert_eq!(pooling, Pooling::Mean);
    let mut sum = vec![0f64; h[0].len()];
    for row in &h {
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += x as f64;
        }
    }
    close(&got[0], &normalised(&sum));
    let _ = std::fs::remove_dir_all(&dir);
}
