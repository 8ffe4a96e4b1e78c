//! `owl embed` and `owl rerank` end to end on the tiny BERT fixtures: JSON lines on stdout
//! (unit vectors, the same as the text's llama.cpp tokens give; rerank scores llama.cpp's,
//! best first), stdin input, and one-line errors for over-long input, the wrong kind of
//! model, and `owl run` on an encoder.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> String {
    owl_testkit::fixture_path(&format!("bert/{name}"))
        .to_string_lossy()
        .into_owned()
}

fn owl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_owl"))
        .args(args)
        .env(
            "OWL_HOME",
            std::env::temp_dir().join("owl-embed-cli-test-home"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn owl");
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("owl output")
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn failure(out: &Output, needle: &str) {
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn embed_writes_one_unit_vector_per_text() {
    let m = fixture("tiny-bert.gguf");
    let out = lines(&owl(&["embed", "-m", &m, "hello world", "a"], None));
    assert_eq!(out.len(), 2);
    for (i, l) in out.iter().enumerate() {
        assert_eq!(l["index"], i);
        let v = floats(&l["embedding"]);
        assert_eq!(v.len(), 64);
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "norm {n}");
    }
    assert_ne!(out[0]["embedding"], out[1]["embedding"]);
    // stdin, one text per line, gives the same vectors; --normalize false does not normalise.
    let piped = lines(&owl(&["embed", "-m", &m], Some("hello world\na\n")));
    assert_eq!(piped, out);
    let raw = lines(&owl(
        &["embed", "-m", &m, "--normalize", "false", "a"],
        None,
    ));
    let v = floats(&raw[0]["embedding"]);
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((n - 1.0).abs() > 1e-2, "not normalised: norm {n}");
    // Over-long input: an error naming the limit, or cut with --truncate.
    let long = "word ".repeat(40);
    failure(&owl(&["embed", "-m", &m, &long], None), "limit of 64");
    assert_eq!(
        lines(&owl(&["embed", "-m", &m, "--truncate", &long], None)).len(),
        1
    );
    failure(
        &owl(&["rerank", "-m", &m, "-q", "q", "d"], None),
        "not a reranker",
    );
    failure(&owl(&["run", "-m", &m, "hi"], None), "owl embed");
}

#[test]
fn rerank_prints_llama_cpp_scores_best_first() {
    let rf: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-bert-rerank.json")).expect("reference"),
    )
    .expect("json");
    let rr = &rf["rerank"];
    let docs: Vec<&str> = rr["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d.as_str().expect("text"))
        .collect();
    let want = floats(&rr["scores"]);
    let m = fixture("tiny-bert-rerank.gguf");
    let query = rr["query"].as_str().expect("query");
    let mut args = vec!["rerank", "-m", &m, "--query", query];
    args.extend(&docs);
    let out = lines(&owl(&args, None));
    assert_eq!(out.len(), docs.len());
    let mut last = f64::INFINITY;
    for l in &out {
        let i = l["index"].as_u64().expect("index") as usize;
        let s = l["relevance_score"].as_f64().expect("score");
        assert!(s <= last);
        last = s;
        assert!((s - want[i]).abs() < 5e-3, "doc {i}: {s} vs {}", want[i]);
        assert_eq!(l["document"], docs[i]);
    }
    args.extend(["--top-n", "1"]);
    assert_eq!(lines(&owl(&args, None)).len(), 1);
    failure(&owl(&["embed", "-m", &m, "x"], None), "reranker");
}
