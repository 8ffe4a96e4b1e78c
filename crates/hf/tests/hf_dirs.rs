//! Hugging Face directories against their GGUF conversions.
//!
//! `tests/fixtures/hf/tiny-{llama,qwen2}` were made by `scripts/make_hf_fixtures.py` from the
//! committed `tests/fixtures/arch/tiny-*.gguf`, and llama.cpp's own `convert_hf_to_gguf.py`
//! turns each directory back into that GGUF (the script checks this with `--check-convert`).
//! So owl's view of a directory must carry the GGUF's metadata and tensor bytes, and give its
//! logits bit for bit; llama.cpp's logits on the GGUF are checked by the arch references.
//!
//! `tests/fixtures/hf/tiny-{gemma3,qwen3moe}` and their `tiny-*.gguf` twins were both made by
//! that script (no committed GGUF is small enough to start from, and the converter needs
//! torch): random BF16 checkpoints, the GGUF written with gguf-py following
//! `convert_hf_to_gguf.py`'s `Gemma3Model` and `Qwen3MoeModel` (Gemma's SentencePiece
//! vocabulary by the converter's own code, special tokens by gguf-py's `SpecialVocab`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use owl_gguf::{GgufFile, Value};
use owl_kernels::Kernels;
use owl_model::{LoadOptions, Runner};
use owl_testkit::Stepper;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fixtures whose GGUF twin is the committed arch fixture.
const FROM_ARCH: &[&str] = &["llama", "qwen2"];
/// Fixtures whose GGUF twin lies next to the directory.
const OWN_TWIN: &[&str] = &["gemma3", "qwen3moe", "deepseek2"];

fn all() -> impl Iterator<Item = &'static str> {
    FROM_ARCH.iter().chain(OWN_TWIN).copied()
}

fn pair(name: &str) -> (GgufFile, GgufFile) {
    let dir = repo()
        .join("tests/fixtures/hf")
        .join(format!("tiny-{name}"));
    let view = owl_hf::open_model(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let gguf = if OWN_TWIN.contains(&name) {
        repo().join(format!("tests/fixtures/hf/tiny-{name}.gguf"))
    } else {
        repo().join(format!("tests/fixtures/arch/tiny-{name}.gguf"))
    };
    (view, GgufFile::open(&gguf).expect("fixture"))
}

/// Equal values, integers compared by value (writers differ on widths).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

#[test]
fn directories_carry_their_gguf_conversions_metadata_and_tensors() {
    for name in all() {
        let (view, gguf) = pair(name);
        let relevant = |k: &str| !k.starts_with("general.");
        for (k, v) in gguf.metadata().iter().filter(|(k, _)| relevant(k)) {
            let got = view
                .get(k)
                .unwrap_or_else(|| panic!("{name}: view lacks `{k}`"));
            assert!(same(got, v), "{name}: `{k}` differs");
        }
        for (k, _) in view.metadata().iter().filter(|(k, _)| relevant(k)) {
            assert!(gguf.get(k).is_some(), "{name}: view adds `{k}`");
        }
        assert_eq!(view.tensors().len(), gguf.tensors().len(), "{name}");
        for t in gguf.tensors() {
            let v = view
                .tensor(&t.name)
                .unwrap_or_else(|| panic!("{name}: view lacks {}", t.name));
            assert_eq!((&v.dims, v.ty), (&t.dims, t.ty), "{name}: {}", t.name);
            assert!(
                view.tensor_data(v) == gguf.tensor_data(t),
                "{name}: {} bytes differ",
                t.name
            );
        }
        // Weights are read in place: only the tensors the converter changes are copies.
        assert!(view.is_mapped());
    }
}

#[test]
fn directories_give_their_ggufs_logits_bit_for_bit() {
    for name in all() {
        let (view, gguf) = pair(name);
        let tok = owl_text::Tokenizer::from_gguf(&view).expect("tokenizer");
        let prompt = tok
            .encode("The capital of France is", true, false)
            .expect("encode");
        let run = |file: GgufFile| {
            let runner = Runner::new(
                Arc::new(file),
                Kernels::detect(),
                2,
                &LoadOptions::default(),
            )
            .expect("load");
            let mut s = Stepper::new(runner, 64);
            let mut out = s.prefill(&prompt).to_vec();
            out.extend_from_slice(s.decode(42));
            out
        };
        let (a, b) = (run(view), run(gguf));
        assert_eq!(a.len(), b.len());
        assert!(a == b, "{name}: logits differ");
    }
}

/// A copy of the llama fixture directory to break.
fn scratch_copy() -> tempfile::TempDir {
    let src = repo().join("tests/fixtures/hf/tiny-llama");
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(&src).expect("fixture dir") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dir.path().join(p.file_name().expect("name"))).expect("copy");
    }
    dir
}

fn error_of(dir: &Path) -> String {
    match owl_hf::open_model(dir) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_directories_get_errors_that_name_the_problem() {
    let d = scratch_copy();
    std::fs::remove_file(d.path().join("tokenizer.json")).expect("rm");
    assert!(
        error_of(d.path()).contains("tokenizer.json"),
        "{}",
        error_of(d.path())
    );

    let d = scratch_copy();
    let weights = d.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("read");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");
    assert!(
        error_of(d.path()).contains("model.safetensors"),
        "{}",
        error_of(d.path())
    );

    let d = scratch_copy();
    let cfg = d.path().join("config.json");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, text.replace("LlamaForCausalLM", "MambaForCausalLM")).expect("w");
    let e = error_of(d.path());
    assert!(
        e.contains("MambaForCausalLM") && e.contains("LlamaForCausalLM"),
        "{e}"
    );

    std::fs::write(
        &cfg,
        text.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": -2"),
    )
    .expect("w");
    assert!(
        error_of(d.path()).contains("num_hidden_layers"),
        "{}",
        error_of(d.path())
    );

    std::fs::write(&cfg, "{ not json").expect("w");
    assert!(
        error_of(d.path()).contains("config.json"),
        "{}",
        error_of(d.path())
    );

    let d = scratch_copy();
    std::fs::write(
        d.path().join("model.safetensors"),
        b"\x08\0\0\0\0\0\0\0{}      ",
    )
    .expect("w");
    // A checkpoint without the tensors the architecture needs fails at model load, by name.
    let view = owl_hf::open_model(d.path()).expect("an empty checkpoint still opens");
    let e = Runner::new(
        Arc::new(view),
        Kernels::detect(),
        1,
        &LoadOptions::default(),
    )
    .err()
    .expect("load fails")
    .to_string();
    // (Which tensor is missed first is the loader's business: name some tensor.)
    assert!(e.contains("missing tensor") && e.contains(".weight"), "{e}");
}

/// Gemma's `tokenizer.model` read by owl splits text as SentencePiece does (ids from the
/// `sentencepiece` package on the fixture's model; byte fallback for the accents and emoji).
#[test]
fn gemma3_vocabulary_tokenizes_like_sentencepiece() {
    let (view, _) = pair("gemma3");
    let tok = owl_text::Tokenizer::from_gguf(&view).expect("tokenizer");
    let cases: &[(&str, &[u32])] = &[
        (
            "The capital of France is",
            &[
                2, 292, 263, 268, 281, 270, 289, 274, 272, 270, 277, 267, 285, 268, 314, 276, 270,
                273, 281, 269, 268, 274, 275,
            ],
        ),
        (
            " two  spaces, é ü 😀",
            &[
                2, 264, 291, 271, 268, 268, 275, 289, 270, 281, 269, 275, 287, 268, 201, 175, 268,
                201, 194, 268, 246, 165, 158, 134,
            ],
        ),
    ];
    for (text, want) in cases {
        let got = tok.encode(text, true, false).expect("encode");
        assert_eq!(&got[..], *want, "{text:?}");
    }
}

/// A multimodal Gemma 3 checkpoint keeps the language model's settings under `text_config`,
/// leaving out those equal to `Gemma3TextConfig`'s defaults; its view is the same GGUF.
#[test]
fn gemma3_conditional_generation_reads_its_text_config() {
    let src = repo().join("tests/fixtures/hf/tiny-gemma3");
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(&src).expect("fixture dir") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dir.path().join(p.file_name().expect("name"))).expect("copy");
    }
    let text = std::fs::read_to_string(src.join("config.json")).expect("config");
    let mut text_cfg: serde_json::Value = serde_json::from_str(&text).expect("json");
    let obj = text_cfg.as_object_mut().expect("object");
    obj.remove("architectures");
    // Equal to Gemma3TextConfig's defaults, so transformers leaves them out.
    obj.remove("rms_norm_eps");
    obj.remove("rope_theta");
    obj.remove("rope_local_base_freq");
    let nested = serde_json::json!({
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": text_cfg,
        "vision_config": {"hidden_size": 8},
    });
    std::fs::write(dir.path().join("config.json"), nested.to_string()).expect("write");
    let view = owl_hf::open_model(dir.path()).expect("open");
    let (flat, _) = pair("gemma3");
    for (k, v) in flat.metadata() {
        if k.starts_with("general.") {
            continue;
        }
        let got = view.get(k).unwrap_or_else(|| panic!("lacks `{k}`"));
        assert!(same(got, v), "`{k}` differs");
    }
    assert_eq!(view.tensors().len(), flat.tensors().len());
}

/// transformers 5 writes Qwen 3 MoE's experts fused per layer (`mlp.experts.gate_up_proj`
/// `[n_expert, 2 × n_ff, n_embd]`, `mlp.experts.down_proj` `[n_expert, n_embd, n_ff]`); the
/// view of such a checkpoint is the same GGUF.
#[test]
fn qwen3moe_fused_experts_give_the_same_tensors() {
    use safetensors::tensor::TensorView;
    use safetensors::SafeTensors;

    let src = repo().join("tests/fixtures/hf/tiny-qwen3moe");
    let dir = tempfile::tempdir().expect("tempdir");
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).expect("copy");
    }
    let shards: Vec<Vec<u8>> = ["model-00001-of-00002", "model-00002-of-00002"]
        .iter()
        .map(|s| std::fs::read(src.join(format!("{s}.safetensors"))).expect("shard"))
        .collect();
    let files: Vec<SafeTensors> = shards
        .iter()
        .map(|b| SafeTensors::deserialize(b).expect("safetensors"))
        .collect();
    let get = |name: &str| {
        files
            .iter()
            .find_map(|f| f.tensor(name).ok())
            .unwrap_or_else(|| panic!("{name}"))
    };
    let mut out: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for f in &files {
        for (name, t) in f.tensors() {
            if !name.contains(".mlp.experts.") {
                out.push((name, t.shape().to_vec(), t.data().to_vec()));
            }
        }
    }
    let n_expert = 4;
    for layer in 0..2 {
        let e =
            |i: usize, w: &str| get(&format!("model.layers.{layer}.mlp.experts.{i}.{w}.weight"));
        let (mut gate_up, mut down) = (Vec::new(), Vec::new());
        for i in 0..n_expert {
            gate_up.extend_from_slice(e(i, "gate_proj").data());
            gate_up.extend_from_slice(e(i, "up_proj").data());
            down.extend_from_slice(e(i, "down_proj").data());
        }
        let g = e(0, "gate_proj").shape().to_vec();
        let d = e(0, "down_proj").shape().to_vec();
        let p = format!("model.layers.{layer}.mlp.experts");
        out.push((
            format!("{p}.gate_up_proj"),
            vec![n_expert, 2 * g[0], g[1]],
            gate_up,
        ));
        out.push((format!("{p}.down_proj"), vec![n_expert, d[0], d[1]], down));
    }
    let views: Vec<(String, TensorView)> = out
        .iter()
        .map(|(n, shape, data)| {
            let v = TensorView::new(safetensors::Dtype::BF16, shape.clone(), data).expect("view");
            (n.clone(), v)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors"))
        .expect("write");

    let view = owl_hf::open_model(dir.path()).expect("open");
    let (_, gguf) = pair("qwen3moe");
    assert_eq!(view.tensors().len(), gguf.tensors().len());
    for t in gguf.tensors() {
        let v = view
            .tensor(&t.name)
            .unwrap_or_else(|| panic!("view lacks {}", t.name));
        assert_eq!((&v.dims, v.ty), (&t.dims, t.ty), "{}", t.name);
        assert!(
            view.tensor_data(v) == gguf.tensor_data(t),
            "{} bytes differ",
            t.name
        );
    }
}
