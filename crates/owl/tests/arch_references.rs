//! Every supported architecture against llama.cpp, on tiny random-weight models committed in
//! `tests/fixtures/arch/` (made by `scripts/make_arch_references.py` with llama-cpp-python
//! 0.3.36): one per architecture and variants of each (other layer counts, experts as wide as
//! the embedding, quantized token embeddings and outputs, absent optional keys), every
//! `tiny-*.gguf` found. For 3 prompts: along llama.cpp's tokens every top-10 logit agrees
//! within `TOLERANCE` (`DECODE_REFERENCE_TOLERANCE` for references made through llama.cpp's
//! decode path), and owl's greedy continuation of 32 tokens equals llama.cpp's. The decode path
//! (prompt fed one token per call, weights in the row layout) is bit-identical with the AVX2
//! kernels. Also, per fixture, a whole-prompt prefill gives the same logits as feeding the
//! prompt token by token (up to the attention order llama.cpp itself switches between) and
//! batched equals alone.

use std::path::PathBuf;
use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_kernels::{Isa, Kernels};
use owl_model::{Batch, KvCache, LoadOptions, Logits, LogitsWanted, Runner};
use owl_testkit::Stepper;

/// Largest allowed |owl - llama.cpp| on a reference logit after a whole-prompt prefill. The
/// weights are F16 (and F32 routers): llama.cpp's prompt path multiplies them with its tiled
/// GEMM (llamafile's tinyBLAS, another summation order than the dot products owl and
/// llama.cpp's decode path use), so logits that depend on the prompt's K/V rows differ in the
/// last bits, amplified through the layers (most in deepseek2: 3 layers, weights scaled by
/// 2.5, measured 5.5e-3). The decode path itself is held to bit equality by
/// `every_architecture_matches_llama_cpp_token_by_token`.
const TOLERANCE: f32 = 1e-2;

/// The same where the reference fed the prompt through llama.cpp's decode path (`n_ubatch` 1
/// in the JSON, the variants): owl's prompt batch then differs only by its repacked weights'
/// own summation order (measured: at most 1e-6).
const DECODE_REFERENCE_TOLERANCE: f32 = 1e-4;

/// Every fixture: the `{name}` of each `tiny-{name}.gguf` in the fixture directory (one per
/// architecture and the variants `make_arch_references.py` makes: other layer counts, expert
/// widths, quantized embeddings and outputs, absent optional keys), sorted. Each must have
/// its `tiny-{name}.json`, and every architecture owl supports must have at least one, so a
/// new variant needs no edit here and a lost fixture fails.
fn fixtures() -> Vec<String> {
    let dir = fixture_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name())
        .filter_map(|f| {
            let f = f.to_str()?;
            Some(f.strip_prefix("tiny-")?.strip_suffix(".gguf")?.to_string())
        })
        .collect();
    names.sort();
    for name in &names {
        let json = dir.join(format!("tiny-{name}.json"));
        assert!(json.is_file(), "{}: no reference", json.display());
    }
    for a in owl_model::arch::ARCHITECTURES {
        // Encoders embed rather than generate: their fixtures and references are in
        // `tests/fixtures/bert/`, checked by `bert_references.rs`.
        if encoder_fixture_exists(a.gguf_arch) {
            continue;
        }
        assert!(
            names.iter().any(|n| {
                let file = GgufFile::open(&dir.join(format!("tiny-{n}.gguf"))).expect("tiny model");
                file.get_str("general.architecture") == Some(a.gguf_arch)
            }),
            "no tiny model of architecture {}",
            a.gguf_arch
        );
    }
    // While debugging one fixture: OWL_ARCH_ONLY=name (exact; comma-separated for several).
    if let Ok(only) = std::env::var("OWL_ARCH_ONLY") {
        let only: Vec<&str> = only.split(',').collect();
        names.retain(|n| only.contains(&n.as_str()));
        assert!(!names.is_empty(), "OWL_ARCH_ONLY matches no fixture");
    }
    names
}

/// Whether `tests/fixtures/bert/` holds a `tiny-{arch}.gguf` of architecture `arch`.
fn encoder_fixture_exists(arch: &str) -> bool {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../tests/fixtures/bert/tiny-{arch}.gguf"));
    p.is_file()
        && GgufFile::open(&p)
            .expect("encoder fixture")
            .get_str("general.architecture")
            == Some(arch)
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/arch")
}

fn runner(arch: &str, isa: Isa) -> Runner {
    runner_with(arch, isa, &LoadOptions::default())
}

fn runner_with(arch: &str, isa: Isa, opts: &LoadOptions) -> Runner {
    let path = fixture_dir().join(format!("tiny-{arch}.gguf"));
    let file = Arc::new(GgufFile::open(&path).expect("tiny model"));
    Runner::new(file, Kernels::for_isa(isa), 2, opts).expect("load")
}

fn reference(arch: &str) -> serde_json::Value {
    let p = fixture_dir().join(format!("tiny-{arch}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("reference JSON")
}

/// One sequence run straight on a `Runner`: the prompt in one batch, then one token per call.
/// `tiled` is the prompt's attention order: llama.cpp's for a multi-token micro-batch, or its
/// single-token order where the reference fed the prompt one token per micro-batch
/// (`n_ubatch` 1 in the JSON).
struct Seq {
    run: Runner,
    kv: KvCache,
    batch: Batch,
    logits: Logits,
    pos: usize,
    tiled: bool,
}

impl Seq {
    fn new(run: Runner, reference: &serde_json::Value) -> Seq {
        let kv = run.model.new_cache(256, 1);
        Seq {
            run,
            kv,
            batch: Batch::new(),
            logits: Logits::default(),
            pos: 0,
            tiled: reference["n_ubatch"].as_u64().is_none_or(|u| u >= 2),
        }
    }

    fn run(&mut self, tokens: &[u32], tiled: bool) -> Vec<f32> {
        self.batch.clear();
        let wanted = LogitsWanted::Last;
        self.batch
            .push_with_order(0, self.pos, tokens, wanted, tiled && tokens.len() >= 2);
        self.run
            .forward(&self.batch, &mut self.kv, &mut self.logits)
            .expect("forward");
        self.pos += tokens.len();
        self.logits.row(0).to_vec()
    }

    /// A new sequence: `prompt` in one batch; the logits after its last token.
    fn prefill(&mut self, prompt: &[u32]) -> Vec<f32> {
        self.kv = self.run.model.new_cache(256, 1);
        self.pos = 0;
        self.run(prompt, self.tiled)
    }

    fn decode(&mut self, token: u32) -> Vec<f32> {
        self.run(&[token], false)
    }
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in l.iter().enumerate() {
        if x > l[best] {
            best = i;
        }
    }
    best as u32
}

/// Logit agreement along llama.cpp's tokens, then greedy equality, for one fixture; returns
/// the max difference. The logits come first: where they disagree, the message says by how
/// much and where, which a diverging greedy run would not.
fn check_arch(arch: &str) -> f32 {
    let r = reference(arch);
    let tolerance = if r["n_ubatch"].as_u64() == Some(1) {
        DECODE_REFERENCE_TOLERANCE
    } else {
        TOLERANCE
    };
    let mut s = Seq::new(runner(arch, Isa::detect()), &r);
    let mut worst = 0.0f32;
    for case in r["cases"].as_array().expect("cases") {
        let prompt = ids(&case["prompt_tokens"]);
        let want = ids(&case["tokens"]);
        // Logits along llama.cpp's tokens: the worst (difference, step, token, owl, llama.cpp).
        let mut logits = s.prefill(&prompt);
        let mut case_worst = (0.0f32, 0, 0, 0.0f32, 0.0f32);
        for (step, top) in case["top_logits"]
            .as_array()
            .expect("top")
            .iter()
            .enumerate()
        {
            for pair in top.as_array().expect("pairs") {
                let id = pair[0].as_u64().expect("id") as usize;
                let want = pair[1].as_f64().expect("logit") as f32;
                let d = (logits[id] - want).abs();
                if d > case_worst.0 {
                    case_worst = (d, step, id, logits[id], want);
                }
            }
            if step + 1 < want.len() {
                logits = s.decode(want[step]);
            }
        }
        let (d, step, id, got, want_logit) = case_worst;
        assert!(
            d <= tolerance,
            "{arch} {:?} step {step} token {id}: owl {got} llama.cpp {want_logit} (|diff| {d:.2e})",
            case["prompt"]
        );
        worst = worst.max(d);
        // Free-running greedy.
        let mut got = Vec::new();
        let mut logits = s.prefill(&prompt);
        for _ in 0..want.len() {
            let t = argmax(&logits);
            got.push(t);
            logits = s.decode(t);
        }
        assert_eq!(
            got, want,
            "{arch}: greedy continuation of {:?}",
            case["prompt"]
        );
    }
    worst
}

#[test]
fn every_architecture_matches_llama_cpp() {
    for arch in fixtures() {
        let worst = check_arch(&arch);
        eprintln!("{arch}: greedy 3x32 equal, max |logit diff| {worst:.2e}");
    }
}

/// Largest allowed |owl - llama.cpp| when both run their decode path only (the prompt fed one
/// token per call): with the AVX2 kernels owl mirrors that path's float order, so the logits
/// are bit-identical (the references come from llama.cpp built for an AVX2 machine) — with
/// the weights in the file's row layout (`LoadOptions::no_repack`): owl's repacked layouts sum
/// in their own order, and llama.cpp's AVX2 build does not repack Q8_0/Q4_1/Q5_0/MXFP4 (the
/// variants' types; it does repack Q4_0, which is why no variant has a Q4_0 output). The
/// scalar fallback sums in another order and gets the prompt tolerance.
fn one_by_one_tolerance() -> f32 {
    if Isa::detect() == Isa::SCALAR {
        TOLERANCE
    } else {
        0.0
    }
}

/// The decode path alone, without llama.cpp's tiled prompt GEMM: the prompt fed one token at a
/// time, then greedy steps; every top-10 logit within `one_by_one_tolerance()`.
#[test]
fn every_architecture_matches_llama_cpp_token_by_token() {
    for arch in fixtures() {
        let r = reference(&arch);
        let opts = LoadOptions {
            no_repack: true,
            ..LoadOptions::default()
        };
        // The references come from llama.cpp's AVX2 build. BF16 weights are the one type
        // whose product owl computes in another order at the AVX-512 level (`vdpbf16ps`, as
        // llama.cpp's AVX-512 BF16 build does), so their fixtures check the AVX2 kernels here
        // and the level in use against the prompt tolerance in `every_architecture_matches_llama_cpp`.
        let isa = if arch.contains("bf16") && Isa::available().contains(&Isa::AVX2) {
            Isa::AVX2
        } else {
            Isa::detect()
        };
        let mut s = Stepper::new(runner_with(&arch, isa, &opts), 256);
        let mut worst = 0.0f32;
        for case in r["cases"].as_array().expect("cases") {
            let prompt = ids(&case["prompt_tokens"]);
            let steps = case["one_by_one_top_logits"]
                .as_array()
                .expect("one_by_one");
            assert!(
                !steps.is_empty(),
                "{arch}: reference without one-by-one logits"
            );
            s.reset();
            let mut logits = s.prefill(&prompt[..1]).to_vec();
            for &t in &prompt[1..] {
                logits = s.decode(t).to_vec();
            }
            for (step, top) in steps.iter().enumerate() {
                let top = top.as_array().expect("pairs");
                for pair in top {
                    let id = pair[0].as_u64().expect("id") as usize;
                    let want = pair[1].as_f64().expect("logit") as f32;
                    let d = (logits[id] - want).abs();
                    worst = worst.max(d);
                    assert!(
                        d <= one_by_one_tolerance(),
                        "{arch} one-by-one step {step} token {id}: owl {} llama.cpp {want}",
                        logits[id]
                    );
                }
                let next = top[0][0].as_u64().expect("id") as u32;
                logits = s.decode(next).to_vec();
            }
        }
        eprintln!("{arch}: decode path max |logit diff| {worst:.2e}");
    }
}

#[test]
fn every_architecture_is_prefill_and_batch_invariant() {
    for arch in fixtures() {
        let r = reference(&arch);
        let prompt = ids(&r["cases"][2]["prompt_tokens"]);
        let other = ids(&r["cases"][1]["prompt_tokens"]);
        let n = prompt.len();
        // Scalar kernels: one summation order everywhere, so prefill == token by token exactly.
        let mut run = runner(&arch, Isa::SCALAR);
        let mut logits = Logits::default();
        let mut kv = run.model.new_cache(64, 2);
        let mut b = Batch::new();
        b.push(0, 0, &prompt, LogitsWanted::All);
        run.forward(&b, &mut kv, &mut logits).expect("prefill");
        let whole: Vec<Vec<f32>> = (0..n).map(|i| logits.row(i).to_vec()).collect();
        let mut kv = run.model.new_cache(64, 2);
        for (i, &t) in prompt.iter().enumerate() {
            b.clear();
            b.push(0, i, &[t], LogitsWanted::Last);
            run.forward(&b, &mut kv, &mut logits).expect("step");
            assert_eq!(logits.row(0), &whole[i][..], "{arch}: prefill vs step {i}");
        }
        // Batched with another sequence equals alone (fast kernels, bit for bit).
        let mut run = runner(&arch, Isa::detect());
        let mut kv = run.model.new_cache(64, 2);
        b.clear();
        b.push(0, 0, &prompt, LogitsWanted::Last);
        run.forward(&b, &mut kv, &mut logits).expect("alone");
        let alone = logits.row(0).to_vec();
        let mut kv = run.model.new_cache(64, 2);
        b.clear();
        b.push(1, 0, &other, LogitsWanted::Last);
        b.push(0, 0, &prompt, LogitsWanted::Last);
        run.forward(&b, &mut kv, &mut logits).expect("batched");
        assert_eq!(
            logits.last_of_chunk(1).expect("row"),
            &alone[..],
            "{arch}: batched"
        );
    }
}
