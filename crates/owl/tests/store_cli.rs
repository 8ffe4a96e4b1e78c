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

    /// `owl ARGS` in this environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_owl"));
        c.args(args)
            .env("OWL_HOME", self.p("owl"))
            .env("OLLAMA_MODELS", self.p("ollama"))
            .env("HF_HOME", self.p("hf"))
            .env("HOME", self.p("home"))
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_ENDPOINT")
            .env_remove("HF_TOKEN")
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null());
        c
    }

    fn owl(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run owl")
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

    // An adapter that is not one is refused at create time.
    let adapter = e.p("adapter.gguf");
    std::fs::write(&adapter, b"GGUF").expect("write");
    e.fails(
        &[
            "create",
            "tuned",
            "--from",
            "brief",
            "--adapter",
            adapter.to_str().expect("utf8"),
        ],
        &["adapter.gguf", "does not fit 'brief'"],
    );
    e.fails(&["run", "tuned", "Hello"], &["tuned"]);
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

/// The tiny llama's LoRA adapter fixtures: the GGUF file and the PEFT directory.
fn lora_fixtures() -> (String, String) {
    // Canonical, as the store records them.
    let p = |rel: &str| {
        std::fs::canonicalize(owl_testkit::fixture_path(rel))
            .expect("fixture")
            .display()
            .to_string()
    };
    (p("lora/tiny-llama-lora.gguf"), p("lora/tiny-llama-peft"))
}

/// Greedy raw completion flags, then the prompt.
const GREEDY: [&str; 6] = [
    "--raw",
    "--temperature",
    "0",
    "-n",
    "8",
    "The capital of France is",
];

#[test]
fn a_derived_model_applies_its_lora_adapter() {
    let e = Env::new();
    let m = tiny();
    let m = m.to_str().expect("utf8");
    let (gguf, peft) = lora_fixtures();
    e.ok(&["create", "tuned", "--from", m, "--adapter", &gguf]);
    e.ok(&["create", "tuned-peft", "--from", m, "--adapter", &peft]);
    // A model derived from an adapted one keeps its adapter.
    e.ok(&[
        "create",
        "tuned-brief",
        "--from",
        "tuned",
        "--param",
        "seed=7",
    ]);

    let run = |model: &str, extra: &[&str]| {
        let mut args = vec!["run", "--model", model];
        args.extend_from_slice(extra);
        args.extend_from_slice(&GREEDY);
        e.ok(&args)
    };
    let base = run(m, &[]);
    let by_hand = run(m, &["--lora", &gguf]);
    assert_ne!(by_hand, base, "the adapter changes the tiny model's reply");
    assert_eq!(run("tuned", &[]), by_hand);
    assert_eq!(run("tuned-peft", &[]), by_hand);
    assert_eq!(run("tuned-brief", &[]), by_hand);

    // One adapter at a time: the model's own and --lora together are refused.
    let mut both = vec!["run", "--model", "tuned", "--lora", &gguf];
    both.extend_from_slice(&GREEDY);
    e.fails(
        &both,
        &["tuned", "already carries a LoRA adapter", "--lora"],
    );
    e.fails(
        &["create", "twice", "--from", "tuned", "--adapter", &peft],
        &["one LoRA adapter per model", "tiny-llama-lora.gguf"],
    );
    // Commands that cannot apply it refuse rather than ignore it.
    e.fails(
        &["embed", "--model", "tuned", "hi"],
        &["tuned", "owl embed"],
    );

    // `owl show` describes the adapter.
    let show = e.ok(&["show", "tuned"]);
    assert!(!show.contains("not supported"), "{show}");
    for want in [
        gguf.as_str(),
        "format      gguf",
        "rank        ",
        "alpha",
        "targets",
    ] {
        assert!(show.contains(want), "{want:?} in {show}");
    }
    let show = e.ok(&["show", "tuned-peft"]);
    assert!(show.contains("format      peft"), "{show}");

    // Perplexity scores with the adapter too.
    let text = e.p("text.txt");
    let sentence = "The quick brown fox jumps over the lazy dog while the cat sleeps. ";
    std::fs::write(&text, sentence.repeat(8)).expect("write");
    let text = text.to_str().expect("utf8");
    let ppl = |model: &str, extra: &[&str]| {
        let mut args = vec!["perplexity", "--model", model, "-f", text, "-c", "16"];
        args.extend_from_slice(extra);
        let out = e.ok(&args);
        out.lines()
            .find(|l| l.starts_with("Final estimate"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no estimate in {out}"))
    };
    let tuned = ppl("tuned", &[]);
    assert_eq!(tuned, ppl(m, &["--lora", &gguf]));
    assert_ne!(tuned, ppl(m, &[]));
}

#[test]
fn create_checks_the_adapter_against_the_base_model() {
    let e = Env::new();
    let (gguf, peft) = lora_fixtures();
    let qwen = owl_testkit::tiny_model("qwen3");
    let qwen = qwen.to_str().expect("utf8");
    e.fails(
        &["create", "wrong", "--from", qwen, "--adapter", &gguf],
        &["tiny-llama-lora.gguf", "not a LoRA adapter", "qwen3"],
    );
    e.fails(
        &["create", "wrong", "--from", qwen, "--adapter", &peft],
        &["tiny-llama-peft"],
    );
    // Same architecture, other sizes: the mismatch is named.
    let other = owl_testkit::tiny_model("llama-3l-q8");
    e.fails(
        &[
            "create",
            "wrong",
            "--from",
            other.to_str().expect("utf8"),
            "--adapter",
            &gguf,
        ],
        &[
            "blk.0.attn_k.weight.lora_b",
            "has shape [4, 16]",
            "needs [4, 32]",
        ],
    );
    let missing = e.p("nothere.gguf");
    e.fails(
        &[
            "create",
            "wrong",
            "--from",
            qwen,
            "--adapter",
            missing.to_str().expect("utf8"),
        ],
        &["nothere.gguf"],
    );
    let m = tiny();
    let m = m.to_str().expect("utf8");
    e.fails(
        &[
            "create",
            "wrong",
            "--from",
            m,
            "--adapter",
            &gguf,
            "--adapter",
            &peft,
        ],
        &["one LoRA adapter per model"],
    );
    assert!(!e.ok(&["list"]).contains("wrong"));
}

/// `owl serve` in an environment, stopped when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(e: &Env, args: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let port_arg = port.to_string();
        let mut all = vec!["serve", "--port", &port_arg, "--threads", "1"];
        all.extend_from_slice(args);
        let child = e
            .cmd(&all)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start owl serve");
        let mut s = Server { child, port };
        for _ in 0..600 {
            if let Some((200, _)) = s.try_request("GET", "/health", None) {
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("owl serve exited: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("owl serve did not become ready");
    }

    /// One HTTP/1.1 request; `None` if the server cannot be reached.
    fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Option<(u16, serde_json::Value)> {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply).ok()?;
        let (head, payload) = reply.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, serde_json::from_str(payload).unwrap_or_default()))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let (status, v) = self
            .try_request(method, path, body)
            .expect("the server answers");
        assert_eq!(status, 200, "{method} {path}: {v}");
        v
    }

    /// The greedy completion of `GREEDY`'s prompt by `model`.
    fn complete(&self, model: &str) -> String {
        let body = serde_json::json!({
            "model": model,
            "prompt": GREEDY[5],
            "max_tokens": 8,
            "temperature": 0,
        });
        let v = self.request("POST", "/v1/completions", Some(&body));
        assert_eq!(v["model"], model, "{v}");
        v["choices"][0]["text"].as_str().expect("text").to_string()
    }
}

#[test]
fn serve_applies_a_derived_models_adapter_beside_its_base() {
    let e = Env::new();
    let m = tiny();
    let m = m.to_str().expect("utf8");
    let (gguf, _) = lora_fixtures();
    e.ok(&["create", "tuned", "--from", m, "--adapter", &gguf]);
    let mut run_tuned = vec!["run", "--model", "tuned"];
    run_tuned.extend_from_slice(&GREEDY);
    let cli = e.ok(&run_tuned);

    let lora = format!("byhand={gguf}");
    let s = Server::start(&e, &["--model", m, "--lora", &lora]);
    let base = s.complete("tiny-llama");
    let tuned = s.complete("tuned");
    assert_ne!(tuned, base, "the derived model applies its adapter");
    assert_eq!(tuned, s.complete("byhand"), "as --lora applies it");
    assert_eq!(tuned, cli.trim_end_matches('\n'), "as `owl run tuned` does");
    assert_eq!(s.complete("tiny-llama"), base, "the base is untouched");

    let models = s.request("GET", "/v1/models", None);
    let listed = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|d| d["id"] == "tuned")
        .unwrap_or_else(|| panic!("tuned in {models}"))
        .clone();
    assert_eq!(listed["root"], gguf.as_str(), "{listed}");
    // Embeddings cannot apply it: refused, not the base's.
    let body = serde_json::json!({"model": "tuned", "input": "hi"});
    let (status, v) = s
        .try_request("POST", "/v1/embeddings", Some(&body))
        .expect("the server answers");
    assert_eq!(status, 400, "{v}");

    // `owl serve --model tuned`: the derived model is the default.
    drop(s);
    let s = Server::start(&e, &["--model", "tuned"]);
    assert_eq!(s.complete("tuned"), tuned);
    // Its adapter is its own: --lora over it is refused.
    let out = e.owl(&["serve", "--model", "tuned", "--lora", &lora, "--port", "1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("carries a LoRA adapter"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
