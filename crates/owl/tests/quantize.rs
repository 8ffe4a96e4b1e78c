//! `owl quantize` end to end on tiny random llamas written by the test itself.
//!
//! Why it is built this way: the tensor-type rules are checked against expectations written out
//! by hand for two model shapes (one whose rows all fit 256-element blocks, one whose 320-wide
//! rows force llama.cpp's fallbacks), not against `owl_quant::mix` itself, so a wrong rule
//! cannot confirm itself. The bytes are checked to be exactly what the reference quantizer makes
//! of the input and to decode within the format's error bound; the model must then load in owl,
//! give logits close to the unquantized model's, and generate through `owl run --raw`. The
//! models carry a small synthetic byte-level BPE tokenizer, so the test needs no model download.
//! (That llama.cpp loads the output, and that its own quantizer makes the same bytes, was checked
//! by hand with llama-cpp-python; see the report of the change that added this file.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use owl_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use owl_kernels::{Isa, Kernels};
use owl_model::{Batch, LoadOptions, Logits, LogitsWanted, Runner};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// A tiny llama's shape.
struct Spec {
    n_layer: usize,
    n_embd: u64,
    n_ff: u64,
    n_head: u64,
    n_head_kv: u64,
    tied: bool,
    /// The type of the 2-D weights in the input file.
    src: GgmlType,
    /// Layers whose `attn_v`/`ffn_down` get more bits in the `_M` mixes (llama.cpp's
    /// `use_more_bits`, worked out by hand for `n_layer`).
    more_bits: &'static [usize],
}

/// 8 layers, every row a multiple of 256, separate output matrix, F32 weights.
const FITS: Spec = Spec {
    n_layer: 8,
    n_embd: 256,
    n_ff: 512,
    n_head: 4,
    n_head_kv: 2,
    tied: false,
    src: GgmlType::F32,
    // n/8 = 1: layer 0, layer 7 (>= 7n/8), and (i - 1) % 3 == 2: layers 3 and 6.
    more_bits: &[0, 3, 6, 7],
};

/// 2 layers, 320-wide rows (multiples of 32, not of 256), tied embeddings, F16 weights.
const ODD: Spec = Spec {
    n_layer: 2,
    n_embd: 320,
    n_ff: 512,
    n_head: 5,
    n_head_kv: 1,
    tied: true,
    src: GgmlType::F16,
    // n/8 = 0, 7n/8 = 1: only layer 1.
    more_bits: &[1],
};

/// GPT-2's byte-to-character table: printable bytes stand for themselves, the others are
/// shifted to U+0100 and up.
fn byte_tokens() -> Vec<String> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut shifted = 0u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                char::from(b).to_string()
            } else {
                shifted += 1;
                char::from_u32(255 + shifted)
                    .expect("valid char")
                    .to_string()
            }
        })
        .collect()
}

/// 256 byte tokens, one merge ("he") and an end-of-text control token.
fn tokenizer(w: &mut GgufWriter) -> u64 {
    let mut tokens = byte_tokens();
    let mut types = vec![1i32; tokens.len()];
    tokens.push("he".into());
    types.push(1);
    tokens.push("<|endoftext|>".into());
    types.push(3);
    let n = tokens.len() as u64;
    let strs = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    w.add_kv("tokenizer.ggml.model", Value::String("gpt2".into()));
    w.add_kv("tokenizer.ggml.tokens", strs(tokens));
    w.add_kv(
        "tokenizer.ggml.token_type",
        Value::Array(types.into_iter().map(Value::I32).collect()),
    );
    w.add_kv("tokenizer.ggml.merges", strs(vec!["h e".into()]));
    w.add_kv("tokenizer.ggml.eos_token_id", Value::U32(n as u32 - 1));
    w.add_kv("tokenizer.ggml.bos_token_id", Value::U32(n as u32 - 1));
    w.add_kv("tokenizer.ggml.add_bos_token", Value::Bool(false));
    n
}

fn write_model(dir: &Path, file: &str, s: &Spec) -> PathBuf {
    let mut r = Rng(7);
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::String("llama".into()));
    w.add_kv("general.name", Value::String("quantize-test".into()));
    w.add_kv("general.file_type", Value::U32(0));
    let n_vocab = tokenizer(&mut w);
    for (k, v) in [
        ("block_count", s.n_layer as u32),
        ("embedding_length", s.n_embd as u32),
        ("feed_forward_length", s.n_ff as u32),
        ("attention.head_count", s.n_head as u32),
        ("attention.head_count_kv", s.n_head_kv as u32),
        ("context_length", 128),
        ("vocab_size", n_vocab as u32),
    ] {
        w.add_kv(&format!("llama.{k}"), Value::U32(v));
    }
    w.add_kv("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5));
    w.add_kv("llama.rope.freq_base", Value::F32(10000.0));

    let mut t = |name: &str, dims: &[u64], scale: f32, offset: f32| {
        let n = dims.iter().product::<u64>() as usize;
        let data: Vec<f32> = (0..n).map(|_| offset + scale * r.next()).collect();
        let ty = if dims.len() == 1 {
            GgmlType::F32
        } else {
            s.src
        };
        w.add_tensor(name, dims, ty, encode(ty, &data))
            .expect("add tensor");
    };
    let (e, kv) = (s.n_embd, s.n_embd / s.n_head * s.n_head_kv);
    t("token_embd.weight", &[e, n_vocab], 1.0, 0.0);
    for i in 0..s.n_layer {
        let p = |n: &str| format!("blk.{i}.{n}.weight");
        t(&p("attn_norm"), &[e], 0.1, 1.0);
        t(&p("attn_q"), &[e, e], 0.1, 0.0);
        t(&p("attn_k"), &[e, kv], 0.1, 0.0);
        t(&p("attn_v"), &[e, kv], 0.1, 0.0);
        t(&p("attn_output"), &[e, e], 0.1, 0.0);
        t(&p("ffn_norm"), &[e], 0.1, 1.0);
        t(&p("ffn_gate"), &[e, s.n_ff], 0.1, 0.0);
        t(&p("ffn_up"), &[e, s.n_ff], 0.1, 0.0);
        t(&p("ffn_down"), &[s.n_ff, e], 0.1, 0.0);
    }
    t("output_norm.weight", &[e], 0.1, 1.0);
    if !s.tied {
        t("output.weight", &[e, n_vocab], 0.1, 0.0);
    }
    let path = dir.join(file);
    w.write_file(&path).expect("write model");
    path
}

fn encode(ty: GgmlType, data: &[f32]) -> Vec<u8> {
    let f = owl_quant::format(ty).expect("format");
    let mut bytes = vec![0u8; f.row_bytes(data.len())];
    (f.quantize.expect("quantizer"))(data, &mut bytes);
    bytes
}

fn decode(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    (owl_quant::format(ty).expect("format").dequantize)(bytes, &mut out);
    out
}

/// (name on the command line, `LLAMA_FTYPE_*` id)
const TYPES: [(&str, u32); 15] = [
    ("Q4_0", 2),
    ("Q4_1", 3),
    ("Q5_0", 8),
    ("Q5_1", 9),
    ("Q8_0", 7),
    ("q4_k", 15),
    ("Q4_K_S", 14),
    ("Q4_K_M", 15),
    ("Q5_K", 17),
    ("Q5_K_S", 16),
    ("Q5_K_M", 17),
    ("Q6_K", 18),
    ("F16", 1),
    ("BF16", 32),
    ("F32", 0),
];

/// The type llama.cpp's rules give `name` (None: copied unchanged), written out for the two
/// test shapes.
fn expected(s: &Spec, ftype: &str, name: &str, dims: &[u64]) -> Option<GgmlType> {
    use GgmlType as T;
    if dims.len() < 2 {
        return None;
    }
    let ftype = match ftype.to_ascii_uppercase().as_str() {
        "Q4_K" => "Q4_K_M".to_string(),
        "Q5_K" => "Q5_K_M".to_string(),
        f => f.to_string(),
    };
    let base = match ftype.as_str() {
        "Q4_K_S" | "Q4_K_M" => T::Q4_K,
        "Q5_K_S" | "Q5_K_M" => T::Q5_K,
        f => T::from_name(f).expect("type"),
    };
    if base.block_size() == 1 {
        return Some(base);
    }
    let row = dims[0];
    let layer = name
        .strip_prefix("blk.")
        .and_then(|r| r.split('.').next())
        .and_then(|l| l.parse::<usize>().ok());
    let more = layer.is_some_and(|i| s.more_bits.contains(&i));
    let mut ty = base;
    if name == "output.weight" || (s.tied && name == "token_embd.weight") {
        ty = if row % base.block_size() as u64 != 0 || base == T::Q8_0 {
            T::Q8_0
        } else {
            T::Q6_K
        };
    } else if name.ends_with("attn_v.weight") {
        match ftype.as_str() {
            "Q4_K_M" | "Q5_K_M" if more => ty = T::Q6_K,
            "Q4_K_S" if layer.is_some_and(|i| i < 4) => ty = T::Q5_K,
            _ => {}
        }
    } else if name.ends_with("ffn_down.weight") {
        match ftype.as_str() {
            "Q4_K_M" | "Q5_K_M" if more => ty = T::Q6_K,
            "Q4_K_S" if layer.is_some_and(|i| i < s.n_layer / 8) => ty = T::Q5_K,
            _ => {}
        }
    }
    if row % ty.block_size() as u64 != 0 {
        ty = match ty {
            T::Q4_K => T::Q5_0,
            T::Q5_K => T::Q5_1,
            T::Q6_K => T::Q8_0,
            t => t,
        };
    }
    Some(ty)
}

/// Largest error allowed when decoding, as a fraction of the row's largest magnitude.
fn max_error(ty: GgmlType) -> f32 {
    match ty {
        GgmlType::F32 => 0.0,
        GgmlType::F16 => 1.0 / 1024.0,
        GgmlType::BF16 => 1.0 / 128.0,
        GgmlType::Q8_0 => 1.0 / 127.0,
        GgmlType::Q6_K => 1.0 / 24.0,
        GgmlType::Q5_1 | GgmlType::Q5_K => 1.0 / 12.0,
        GgmlType::Q5_0 => 1.0 / 15.0,
        GgmlType::Q4_1 | GgmlType::Q4_K => 1.0 / 6.0,
        GgmlType::Q4_0 => 1.0 / 7.5,
        t => panic!("no bound for {t:?}"),
    }
}

fn owl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_owl"))
        .args(args)
        .env(
            "OWL_HOME",
            std::env::temp_dir().join("owl-quantize-test-home"),
        )
        .output()
        .expect("run owl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Logits for a short prompt, all positions.
fn logits(path: &Path) -> Vec<f32> {
    let file = Arc::new(GgufFile::open(path).expect("open"));
    let mut r = Runner::new(
        file,
        Kernels::for_isa(Isa::SCALAR),
        1,
        &LoadOptions::default(),
    )
    .expect("owl loads the model");
    let prompt = [104u32, 256, 108, 108, 111, 32, 119];
    let mut kv = r.model.new_cache(32, 1);
    let mut b = Batch::new();
    b.push(0, 0, &prompt, LogitsWanted::All);
    let mut l = Logits::default();
    r.forward(&b, &mut kv, &mut l).expect("forward");
    l.data
}

fn rel_rms(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let n: f32 = a.iter().map(|x| x * x).sum();
    (d / n.max(1e-30)).sqrt()
}

/// Relative RMS difference of the logits allowed for a file of type `ftype`: about twice what
/// the 8-layer random model shows (errors compound through layers of random weights; F16 and
/// F32 differ because F16 weights take F16 activations).
fn logit_bound(ftype: &str) -> f32 {
    match ftype.to_ascii_uppercase().as_str() {
        "F32" | "F16" => 0.005,
        "BF16" => 0.02,
        "Q8_0" => 0.06,
        "Q6_K" => 0.14,
        "Q5_0" | "Q5_1" | "Q5_K" | "Q5_K_S" | "Q5_K_M" => 0.26,
        _ => 0.5,
    }
}

fn check_all_types(s: &Spec, file: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_model(dir.path(), file, s);
    let src = GgufFile::open(&input).expect("open input");
    let src_logits = logits(&input);
    for (ftype, id) in TYPES {
        let out = dir.path().join(format!("{ftype}.gguf"));
        let o = owl(&[
            "quantize",
            &input.to_string_lossy(),
            &out.to_string_lossy(),
            ftype,
            "--threads",
            "2",
        ]);
        let err = text(&o.stderr);
        assert!(o.status.success(), "{ftype}: {err}");
        assert!(o.stdout.is_empty(), "{ftype}: stdout {:?}", text(&o.stdout));
        assert!(err.contains("owl: quantized"), "{ftype}: {err}");
        let q = GgufFile::open(&out).expect("open output");

        // Metadata: copied, plus the file type and quantization version.
        assert_eq!(q.get_u32("general.file_type"), Some(id), "{ftype}");
        assert_eq!(
            q.get_u32("general.quantization_version"),
            Some(2),
            "{ftype}"
        );
        for (k, v) in src.metadata() {
            if k != "general.file_type" {
                assert_eq!(q.get(k), Some(v), "{ftype}: metadata {k}");
            }
        }

        assert_eq!(q.tensors().len(), src.tensors().len());
        let mut fallbacks = false;
        for t in src.tensors() {
            let u = q.tensor(&t.name).expect("tensor kept");
            assert_eq!(u.dims, t.dims, "{ftype}: {}", t.name);
            let want = expected(s, ftype, &t.name, &t.dims);
            let (src_bytes, out_bytes) = (src.tensor_data(t), q.tensor_data(u));
            let Some(want) = want else {
                assert_eq!(u.ty, t.ty, "{ftype}: {} should be copied", t.name);
                assert_eq!(out_bytes, src_bytes, "{ftype}: {} should be copied", t.name);
                continue;
            };
            assert_eq!(u.ty, want, "{ftype}: type of {}", t.name);
            fallbacks |= t.dims[0] % 256 != 0 && ftype.to_ascii_uppercase().contains('K');
            let n = t.n_elements as usize;
            let x = decode(t.ty, src_bytes, n);
            // Exactly the reference quantizer's bytes ...
            assert!(
                out_bytes == encode(want, &x).as_slice(),
                "{ftype}: {} differs from the reference quantizer",
                t.name
            );
            // ... which decode within the format's bound, row by row.
            let y = decode(u.ty, out_bytes, n);
            let row = t.dims[0] as usize;
            for (xr, yr) in x.chunks(row).zip(y.chunks(row)) {
                let amax = xr.iter().fold(0f32, |m, v| m.max(v.abs()));
                let err = xr
                    .iter()
                    .zip(yr)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    err <= max_error(u.ty) * amax,
                    "{ftype}: {} ({:?}) error {err} > {} x {amax}",
                    t.name,
                    u.ty,
                    max_error(u.ty)
                );
            }
        }
        if fallbacks {
            assert!(
                err.contains("instead of"),
                "{ftype}: fallbacks not reported: {err}"
            );
        }

        // owl loads it and computes nearly what the unquantized model does ...
        let d = rel_rms(&logits(&out), &src_logits);
        assert!(d <= logit_bound(ftype), "{ftype}: logits differ by {d}");
        // ... and generates from it.
        let o = owl(&[
            "run",
            "--raw",
            "--model",
            &out.to_string_lossy(),
            "-n",
            "4",
            "--temperature",
            "0",
            "--ignore-eos",
            "-v",
            "hello",
        ]);
        let err = text(&o.stderr);
        assert!(o.status.success(), "{ftype}: owl run: {err}");
        let generated = err
            .split("generated ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok());
        assert!(generated.is_some_and(|n| n >= 1), "{ftype}: {err}");
    }
}

#[test]
fn every_type_on_a_model_whose_rows_fit_k_blocks() {
    check_all_types(&FITS, "fits-f32.gguf");
}

#[test]
fn every_type_on_a_model_that_needs_fallbacks() {
    check_all_types(&ODD, "odd-f16.gguf");
}

#[test]
fn pure_gives_every_weight_the_base_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_model(dir.path(), "odd.gguf", &ODD);
    let out = dir.path().join("pure.gguf");
    let o = owl(&[
        "quantize",
        "--pure",
        &input.to_string_lossy(),
        &out.to_string_lossy(),
        "Q8_0",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let q = GgufFile::open(&out).expect("open output");
    for t in q.tensors() {
        let want = if t.dims.len() < 2 {
            GgmlType::F32
        } else {
            GgmlType::Q8_0
        };
        assert_eq!(t.ty, want, "{}", t.name);
    }
    // With the mix, the 320-wide attn_v of layer 1 wants Q6_K and falls back to Q8_0; pure
    // Q4_K_M gives it Q4_K's fallback, Q5_0.
    let o = owl(&[
        "quantize",
        "--pure",
        &input.to_string_lossy(),
        &out.to_string_lossy(),
        "Q4_K_M",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let q = GgufFile::open(&out).expect("open output");
    let v = q.tensor("blk.1.attn_v.weight").expect("attn_v");
    assert_eq!(v.ty, GgmlType::Q5_0);
    let d = q.tensor("blk.1.ffn_down.weight").expect("ffn_down");
    assert_eq!(d.ty, GgmlType::Q4_K);
}

/// A one-line error on stderr, nothing on stdout, exit status 1, no output file.
fn assert_clean_failure(o: &Output, needle: &str, out: &Path) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(o.stdout.is_empty(), "{:?}", text(&o.stdout));
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "{} should not be written", out.display());
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_model(dir.path(), "odd.gguf", &ODD);
    let inp = input.to_string_lossy().into_owned();
    let out = dir.path().join("out.gguf");
    let outs = out.to_string_lossy().into_owned();

    let o = owl(&["quantize", &inp, &outs, "Q3_K"]);
    assert_clean_failure(&o, "unknown quantization type", &out);
    let o = owl(&["quantize", &inp, &outs, "IQ4_XS"]);
    assert_clean_failure(&o, "unknown quantization type", &out);
    let missing = dir.path().join("missing.gguf");
    let o = owl(&["quantize", &missing.to_string_lossy(), &outs, "Q4_0"]);
    assert_clean_failure(&o, "not found", &out);
    let o = owl(&["quantize", &inp, &inp, "Q4_0"]);
    assert_clean_failure(&o, "different file", &out);
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").expect("write");
    let o = owl(&["quantize", &junk.to_string_lossy(), &outs, "Q4_0"]);
    assert_clean_failure(&o, "magic", &out);

    let nowhere = dir.path().join("no-such-dir").join("out.gguf");
    let o = owl(&["quantize", &inp, &nowhere.to_string_lossy(), "Q4_0"]);
    assert_clean_failure(&o, "does not exist", &nowhere);

    // Quantizing a quantized file is refused.
    let q = dir.path().join("q.gguf");
    let o = owl(&["quantize", &inp, &q.to_string_lossy(), "Q8_0"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = owl(&["quantize", &q.to_string_lossy(), &outs, "Q4_0"]);
    assert_clean_failure(&o, "already quantized", &out);
}

/// Logits of every position of a short prompt, from a model opened as the engine opens it.
fn bundle_logits(path: &Path, quantize: Option<owl_engine::QuantizeAtLoad>) -> Vec<f32> {
    let mut opts = owl_engine::OpenOptions::from_env(Some(1), Some(64));
    opts.quantize = quantize;
    let mut b = owl_engine::ModelBundle::open(path, &opts).expect("open");
    let prompt = [1u32, 300, 301, 302, 5000, 17];
    let mut kv = b.runner.model.new_cache(64, 1);
    let mut batch = Batch::new();
    batch.push(0, 0, &prompt, LogitsWanted::All);
    let mut l = Logits::default();
    b.runner.forward(&batch, &mut kv, &mut l).expect("forward");
    l.data
}

/// `--quantize` at load is `owl quantize` in memory: a Hugging Face directory quantized at load
/// gives exactly the logits of the file `owl quantize` writes from it; an already-quantized
/// model is refused by name on the command line.
#[test]
fn quantize_at_load_equals_the_quantized_file() {
    let hf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf/tiny-llama");
    let dir = tempfile::tempdir().expect("tempdir");
    for ty in ["Q8_0", "Q4_K_M"] {
        let out = dir.path().join(format!("{ty}.gguf"));
        let o = owl(&[
            "quantize",
            &hf.to_string_lossy(),
            &out.to_string_lossy(),
            ty,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let want = bundle_logits(&out, None);
        let to = owl_quant::mix::FileType::parse(ty).expect("type");
        let at_load = owl_engine::QuantizeAtLoad { to, strict: true };
        let got = bundle_logits(&hf, Some(at_load));
        assert_eq!(got, want, "{ty}: in memory and on disk differ");
        // And the quantization did something: the F16 directory's logits are not these.
        assert_ne!(bundle_logits(&hf, None), want, "{ty}");
    }
    let q = dir.path().join("Q8_0.gguf");
    let o = owl(&[
        "run",
        "-m",
        &q.to_string_lossy(),
        "--quantize",
        "Q4_0",
        "hi",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("already quantized"), "{err}");
    let o = owl(&[
        "run",
        "-m",
        &hf.to_string_lossy(),
        "--quantize",
        "Q3_X",
        "hi",
    ]);
    assert!(
        text(&o.stderr).contains("unknown quantization type"),
        "{}",
        text(&o.stderr)
    );
}
