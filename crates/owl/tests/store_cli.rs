//! `owl list`, `rm`, `cp`, `create`, `show` and `run` with every kind of model name, against
//! temp directories standing in for `$OWL_HOME`, Ollama's store and the Hugging Face cache
//! (the real ones are never read: every location is set in the child's environment).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        for d in ["owl/models", "ollama", "hf/hub", "home"] {
            std::fs::create_dir_all(tmp.path().join(d)).expect("mkdir");
        }
        Env { tmp }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn owl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_owl"))
            .args(args)
            .env("OWL_HOME", self.p("owl"))
            .env("OLLAMA_MODELS", self.p("ollama"))
            .env("HF_HOME", self.p("hf"))
            .env("HOME", self.p("home"))
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_ENDPOINT")
            .env_remove("HF_TOKEN")
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("run owl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.owl(args);
        assert!(
            out.status.success(),
            "owl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A one-line error on stderr containing each of `needles`, exit status 1.
    fn fails(&self, args: &[&str], needles: &[&str]) {
        let out = self.owl(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "owl {args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        for n in needles {
            assert!(err.contains(n), "owl {args:?}: {err:?} lacks {n:?}");
        }
    }
}

fn tiny() -> PathBuf {
    owl_testkit::tiny_model("llama")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An Ollama store with `tinyllama:latest` (model, system, params layers).
fn ollama_store(root: &Path, model: &[u8]) {
    let mut layers = Vec::new();
    for (ty, bytes) in [
        ("model", model),
        ("system", b"From Ollama.".as_slice()),
        ("params", br#"{"temperature":0,"num_predict":2}"#.as_slice()),
    ] {
        let hex = sha256_hex(bytes);
        std::fs::create_dir_all(root.join("blobs")).expect("mkdir");
        std::fs::write(root.join("blobs").join(format!("sha256-{hex}")), bytes).expect("blob");
        layers.push(serde_json::json!({
            "mediaType": format!("application/vnd.ollama.image.{ty}"),
            "digest": format!("sha256:{hex}"),
            "size": bytes.len(),
        }));
    }
    let dir = root.join("manifests/registry.ollama.ai/library/tinyllama");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("latest"),
        serde_json::json!({"schemaVersion": 2, "layers": layers}).to_string(),
    )
    .expect("manifest");
}

fn hf_cache(hub: &Path, model: &[u8]) -> PathBuf {
    let dir = hub.join("models--org--tiny-GGUF");
    let rev = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(dir.join("blobs")).expect("mkdir");
    std::fs::create_dir_all(dir.join("refs")).expect("mkdir");
    std::fs::create_dir_all(dir.join("snapshots").join(rev)).expect("mkdir");
    std::fs::write(dir.join("refs/main"), rev).expect("ref");
    let etag = sha256_hex(model);
    std::fs::write(dir.join("blobs").join(&etag), model).expect("blob");
    let link = dir.join("snapshots").join(rev).join("tiny-Q8_0.gguf");
    std::os::unix::fs::symlink(format!("../../blobs/{etag}"), &link).expect("symlink");
    link
}

#[test]
fn list_create_cp_show_rm() {
    let e = Env::new();
    let model = std::fs::read(owl_testkit::tiny_model("llama-3l-q8")).expect("fixture");
    std::fs::copy(tiny(), e.p("owl/models/tiny.gguf")).expect("copy");
    ollama_store(&e.p("ollama"), &model);
    let link = hf_cache(&e.p("hf/hub"), &model);

    let list = e.ok(&["list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("ORIGIN"),
        "{list}"
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in {list}"))
            .to_string()
    };
    assert!(
        row("tiny").contains("llama") && row("tiny").ends_with("owl"),
        "{list}"
    );
    let o = row("ollama:tinyllama:latest");
    assert!(o.contains("Q8_0") && o.ends_with("ollama"), "{o}");
    assert!(row("hf:org/tiny-GGUF:tiny-Q8_0.gguf").ends_with("hf:org/tiny-GGUF"));
    assert!(row("smollm2-135m-instruct").contains("not pulled"));

    e.fails(
        &["create", "x", "--from", "tiny", "--param", "temprature=1"],
        &["temprature", "top_k"],
    );
    e.fails(&["create", "x", "--from", "nothing"], &["nothing"]);
    e.fails(
        &["create", "a b", "--from", "tiny"],
        &["invalid model name"],
    );
    e.ok(&[
        "create",
        "helper",
        "--from",
        "tiny:latest",
        "--system",
        "Be brief.",
        "--param",
        "temperature=0",
        "--param",
        "stop=END",
        "--param",
        "num_predict=3",
    ]);
    e.ok(&["cp", "helper", "me/helper:v2"]);
    let list = e.ok(&["ls"]);
    assert!(list.contains("derived from helper"), "{list}");

    let show = e.ok(&["show", "me/helper:v2"]);
    let base = e.p("owl/models/tiny.gguf");
    assert!(
        show.contains(&format!(
            "me/helper:v2 ← helper ← tiny ← {}",
            base.display()
        )),
        "{show}"
    );
    assert!(show.contains("system        Be brief."), "{show}");
    assert!(show.contains("temperature = 0"), "{show}");
    assert!(show.contains(r#"stop = ["END"]"#), "{show}");
    let show = e.ok(&["show", "ollama:tinyllama"]);
    assert!(show.contains("From Ollama."), "{show}");
    let show = e.ok(&["show", "hf:org/tiny-GGUF:Q8_0"]);
    assert!(show.contains(&link.display().to_string()), "{show}");

    e.fails(
        &["rm", "ollama:tinyllama"],
        &["Ollama", "ollama rm tinyllama"],
    );
    e.fails(&["rm", "hf:org/tiny-GGUF:Q8_0"], &["Hugging Face cache"]);
    e.fails(&["rm", "helper"], &["me/helper:v2"]);
    e.ok(&["rm", "me/helper:v2", "helper"]);
    e.fails(&["rm", "helper"], &["'helper'"]);
    assert!(base.is_file());
    let list = e.ok(&["list"]);
    assert!(!list.contains("helper"), "{list}");
    e.ok(&["rm", "tiny"]);
    assert!(!base.exists());
}

/// The JSON summary line of `owl run --json`.
fn summary(out: &str) -> serde_json::Value {
    let last = out.lines().last().expect("a summary line");
    serde_json::from_str(last).expect("JSON")
}

#[test]
fn run_applies_a_derived_models_defaults_and_flags_override_them() {
    let e = Env::new();
    let m = tiny();
    let m = m.to_str().expect("utf8");
    e.ok(&[
        "create",
        "brief",
        "--from",
        m,
        "--system",
        "Be brief.",
        "--param",
        "temperature=0",
        "--param",
        "num_predict=3",
    ]);
    let derived = summary(&e.ok(&["run", "brief", "--ignore-eos", "--json", "Hello"]));
    assert_eq!(derived["usage"]["completion_tokens"], 3, "{derived}");
    let by_hand = summary(&e.ok(&[
        "run",
        "--model",
        m,
        "--system",
        "Be brief.",
        "--temperature",
        "0",
        "-n",
        "3",
        "--ignore-eos",
        "--json",
        "Hello",
    ]));
    assert_eq!(derived, by_hand, "the same request as the flags spell out");
    let flags = summary(&e.ok(&["run", "brief", "-n", "5", "--ignore-eos", "--json", "Hello"]));
    assert_eq!(flags["usage"]["completion_tokens"], 5, "{flags}");

    // --template replaces the GGUF's chat template.
    let tpl = e.p("plain.jinja");
    std::fs::write(&tpl, "{% for m in messages %}{{ m.content }}\n{% endfor %}").expect("write");
    e.ok(&[
        "create",
        "plain",
        "--from",
        "brief",
        "--template",
        tpl.to_str().expect("utf8"),
    ]);
    let plain = summary(&e.ok(&["run", "plain", "--ignore-eos", "--json", "Hello"]));
    let prompt = |v: &serde_json::Value| v["usage"]["prompt_tokens"].as_u64().expect("n");
    assert!(prompt(&plain) < prompt(&derived), "{plain} vs {derived}");
    std::fs::write(&tpl, "{% for m in messages %}").expect("write");
    e.fails(
        &[
            "create",
            "broken",
            "--from",
            "brief",
            "--template",
            tpl.to_str().expect("utf8"),
        ],
        &["plain.jinja", "does not compile"],
    );

    // Adapters are refused, not ignored.
    let adapter = e.p("adapter.gguf");
    std::fs::write(&adapter, b"GGUF").expect("write");
    e.ok(&[
        "create",
        "tuned",
        "--from",
        "brief",
        "--adapter",
        adapter.to_str().expect("utf8"),
    ]);
    e.fails(
        &["run", "tuned", "Hello"],
        &["tuned", "LoRA adapters", "not support"],
    );
}

#[test]
fn run_finds_ollama_models_and_applies_their_params() {
    let e = Env::new();
    let model = std::fs::read(tiny()).expect("fixture");
    ollama_store(&e.p("ollama"), &model);
    let out = summary(&e.ok(&["run", "tinyllama", "--ignore-eos", "--json", "Hello"]));
    assert_eq!(out["usage"]["completion_tokens"], 2, "{out}");
    e.fails(&["run", "ollama:nothere", "Hello"], &["ollama:nothere"]);
    e.fails(&["pull", "nothere"], &["nothere"]);
}
