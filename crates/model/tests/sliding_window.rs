//! Sliding-window layers keep only their window in the KV cache, and that changes no bit:
//! a sequence well past the window, run in chunks of several lengths (a prompt, then a mix of
//! short chunks and single-token steps), gives the same logits with the model's windowed
//! cache as with a cache that keeps every position on every layer, while each sliding layer
//! holds a bounded number of pages. The tiny Gemma 3 and gpt-oss fixtures slide over 8
//! positions (so 300 tokens cross dozens of windows and pages); the real gemma-3-270m (window
//! 512) is checked too when `OWL_TEST_GEMMA3` names it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_kernels::Kernels;
use owl_model::kv_cache::pages_for;
use owl_model::{Batch, KvCache, LoadOptions, Logits, LogitsWanted, Runner};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/arch")
        .join(name)
}

fn runner(path: &Path) -> Runner {
    let file = Arc::new(GgufFile::open(path).expect("open model"));
    Runner::new(file, Kernels::detect(), 2, &LoadOptions::default()).expect("load model")
}

/// Chunk lengths: a prompt of `prompt`, then 1..=7 tokens in turn, then single tokens.
fn chunks(prompt: usize, n: usize) -> Vec<usize> {
    let mut out = vec![prompt];
    let mut pos = prompt;
    let mut step = 1;
    while pos < n {
        let len = if pos < n * 3 / 4 { step } else { 1 }.min(n - pos);
        out.push(len);
        pos += len;
        step = step % 7 + 1;
    }
    out
}

/// Runs `tokens` through `kv` in `chunks`, returning every position's logits.
fn run(r: &mut Runner, kv: &mut KvCache, tokens: &[u32], chunks: &[usize]) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut batch = Batch::new();
    let mut logits = Logits::default();
    for &len in chunks {
        batch.clear();
        batch.push(0, pos, &tokens[pos..pos + len], LogitsWanted::All);
        r.forward(&batch, kv, &mut logits).expect("forward");
        out.extend((0..len).map(|i| logits.row(i).to_vec()));
        pos += len;
    }
    out
}

/// Windowed against full-length over `n` tokens, the windowed cache's sliding pages bounded
/// after every chunk.
fn windowed_matches_full(path: &Path, n: usize, prompt: usize, window: usize) {
    let mut r = runner(path);
    let n_vocab = r.model.hparams().n_vocab as u64;
    let n_layer = r.model.hparams().n_layer;
    let kv_dim = r.model.hparams().kv_dim();
    // Deterministic, varied token ids.
    let tokens: Vec<u32> = (0..n as u64)
        .map(|i| ((i * 2654435761 + 17) % n_vocab) as u32)
        .collect();
    let chunks = chunks(prompt, n);
    let max_chunk = *chunks.iter().max().expect("chunks");
    let n_ctx = n + 3;

    let mut full = KvCache::full(n_layer, kv_dim, n_ctx, 1);
    assert_eq!(full.window(), None);
    let want = run(&mut r, &mut full, &tokens, &chunks);

    let mut kv = r
        .model
        .new_paged_cache(n_ctx, 1, pages_for(n_ctx), max_chunk);
    assert_eq!(kv.window(), Some(window), "{}", path.display());
    assert!(kv.bytes() < full.bytes());
    let mut got = Vec::new();
    let mut pos = 0;
    let bound = pages_for(window - 1 + max_chunk) + 1;
    let mut most = 0;
    for &len in &chunks {
        got.extend(run_at(&mut r, &mut kv, pos, &tokens[pos..pos + len]));
        pos += len;
        most = most.max(kv.sliding_pages(0));
        assert!(
            kv.sliding_pages(0) <= bound,
            "{} pages at {pos}",
            kv.sliding_pages(0)
        );
        assert_eq!(kv.slot_pages(0), pages_for(pos));
    }
    assert!(most > 0);
    assert_eq!(got.len(), want.len());
    for (p, (g, w)) in got.iter().zip(&want).enumerate() {
        let same = g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{}: logits of position {p} differ", path.display());
    }
}

/// Logits of every token of one chunk of slot 0 starting at position `pos`.
fn run_at(r: &mut Runner, kv: &mut KvCache, pos: usize, tokens: &[u32]) -> Vec<Vec<f32>> {
    let mut batch = Batch::new();
    let mut logits = Logits::default();
    batch.push(0, pos, tokens, LogitsWanted::All);
    r.forward(&batch, kv, &mut logits).expect("forward");
    (0..tokens.len()).map(|i| logits.row(i).to_vec()).collect()
}

/// Runs `tail` in slot 0 of `kv`, which holds `prefix` (cut back to it), and checks its
/// logits bit for bit against one fresh run of `prefix` then `tail`.
fn resumes_like_a_fresh_run(r: &mut Runner, kv: &mut KvCache, prefix: &[u32], tail: &[u32]) {
    let at = prefix.len();
    let resumed = run_at(r, kv, at, tail);
    let mut fresh = r.model.new_cache(kv.n_ctx(), 1);
    let seq: Vec<u32> = prefix.iter().chain(tail).copied().collect();
    let all = run_at(r, &mut fresh, 0, &seq);
    for (i, row) in resumed.iter().enumerate() {
        let same = row
            .iter()
            .zip(&all[at + i])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "resumed position {}", at + i);
    }
}

#[test]
fn tiny_gemma3_windowed_cache_is_bit_identical_to_full_length() {
    windowed_matches_full(&fixture("tiny-gemma3.gguf"), 300, 40, 8);
    windowed_matches_full(&fixture("tiny-gemma3-7l-q8.gguf"), 200, 9, 8);
}

#[test]
fn tiny_gpt_oss_windowed_cache_is_bit_identical_to_full_length() {
    windowed_matches_full(&fixture("tiny-gpt-oss.gguf"), 300, 40, 8);
    windowed_matches_full(&fixture("tiny-gpt-oss-2l-q8.gguf"), 200, 9, 8);
}

/// After a long sequence, rolling back inside the window resumes bit-identically, and rolling
/// back before it is refused (the cache keeps nothing, so the caller recomputes).
#[test]
fn rolling_back_a_windowed_slot_resumes_exactly_or_starts_over() {
    let path = fixture("tiny-gemma3.gguf");
    let mut r = runner(&path);
    let n_vocab = r.model.hparams().n_vocab as u64;
    let tokens: Vec<u32> = (0..200u64)
        .map(|i| ((i * 40503 + 5) % n_vocab) as u32)
        .collect();
    let mut kv = r.model.new_paged_cache(256, 1, pages_for(256), 16);
    let mut pos = 0;
    while pos < 160 {
        run_at(&mut r, &mut kv, pos, &tokens[pos..pos + 16]);
        pos += 16;
    }
    // Resume at 150 (its window, 143..150, is live) with other tokens, against a fresh run.
    assert_eq!(kv.truncate(0, 150), 150);
    resumes_like_a_fresh_run(&mut r, &mut kv, &tokens[..150], &tokens[40..56]);
    // Position 60's window was dropped long ago: nothing is kept.
    assert_eq!(kv.truncate(0, 60), 0);
    assert_eq!((kv.slot_pages(0), kv.sliding_pages(0)), (0, 0));
}

/// A draft model's guesses: one position per chunk past the last accepted token, then cut
/// back. A plain windowed cache may already have dropped the page the window of the cut
/// point reaches (the cut then keeps nothing); one made with a rollback of as many positions
/// as the guesses keeps it, and resuming there gives a fresh run's bits.
#[test]
fn a_cache_with_rollback_can_always_drop_its_guesses() {
    let path = fixture("tiny-gemma3.gguf");
    let mut r = runner(&path);
    let n_vocab = r.model.hparams().n_vocab as u64;
    let tokens: Vec<u32> = (0..120u64)
        .map(|i| ((i * 7919 + 3) % n_vocab) as u32)
        .collect();
    // Accepted up to 38; guesses at 38..44 (the chunk at 44 drops the page of 0..32 from a
    // window-8 pool, which the window of 38, 31..38, still reads).
    let guess = |kv: &mut KvCache, r: &mut Runner| {
        run_at(r, kv, 0, &tokens[..38]);
        for p in 38..45 {
            run_at(r, kv, p, &tokens[p..p + 1]);
        }
    };
    let mut plain = r.model.new_paged_cache(256, 1, pages_for(256), 38);
    guess(&mut plain, &mut r);
    assert_eq!(
        plain.truncate(0, 38),
        0,
        "the plain cache dropped a page still needed"
    );
    let mut kv = r
        .model
        .new_paged_cache_with_rollback(256, 1, pages_for(256), 38, 6);
    assert_eq!(
        kv.window(),
        Some(8 + 6),
        "the pool keeps six more positions"
    );
    guess(&mut kv, &mut r);
    assert_eq!(kv.truncate(0, 38), 38);
    resumes_like_a_fresh_run(&mut r, &mut kv, &tokens[..38], &tokens[80..90]);
}

/// The real gemma-3-270m (window 512): 1100 tokens cross the window twice.
#[test]
fn gemma3_270m_windowed_cache_is_bit_identical_to_full_length() {
    let Some(path) = std::env::var_os("OWL_TEST_GEMMA3").filter(|p| !p.is_empty()) else {
        eprintln!("OWL_TEST_GEMMA3 not set: skipping the real gemma-3-270m");
        return;
    };
    windowed_matches_full(Path::new(&path), 1100, 100, 512);
}
