//! The `owl` binary end to end: clean stdout, clear one-line errors, non-zero exits.

use owl_testkit as common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use owl_gguf::{GgmlType, GgufFile, GgufWriter, Value};

fn owl(args: &[&str], stdin: Option<&str>) -> Output {
    owl_with_env(args, stdin, &[])
}

fn owl_with_env(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_owl"))
        .args(args)
        .envs(env.iter().copied())
        .env(
            "OWL_HOME",
            std::env::temp_dir().join("owl-cli-test-empty-home"),
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn model() -> String {
    common::default_model().to_string_lossy().into_owned()
}

/// A one-line error on stderr, nothing on stdout, exit status 1.
fn assert_clean_failure(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(
        out.stdout.is_empty(),
        "stdout should be empty, got {:?}",
        text(&out.stdout)
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error should be one line: {err:?}"
    );
    assert!(
        err.contains(needle),
        "error {err:?} should mention {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn greedy_raw_run_prints_only_the_completion() {
    let doc = common::reference("generation.json");
    let case = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["kind"] == "raw" && c["first_eog_step"].is_null())
        .expect("a raw case without EOG");
    let prompt = case["prompt"].as_str().expect("prompt");
    let expected = case["text"].as_str().expect("text");
    let m = model();
    // Weights in the file's layout, so the text is llama.cpp's bit for bit (repacked weights
    // sum in another order and may break a near-tie differently).
    let out = owl_with_env(
        &[
            "run",
            "--raw",
            "--model",
            &m,
            "--temperature",
            "0",
            "--max-tokens",
            "48",
            prompt,
        ],
        None,
        &[("OWL_NO_REPACK", "1")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = text(&out.stdout);
    // stdout is the completion followed by one newline; no prompt echo, no banner.
    assert_eq!(got.strip_suffix('\n').unwrap_or(&got), expected);
}

#[test]
fn prompt_from_stdin_and_seeded_sampling_is_reproducible() {
    let m = model();
    let args = [
        "run",
        "--model",
        &m,
        "--seed",
        "7",
        "--temperature",
        "1.0",
        "--max-tokens",
        "24",
        "-",
    ];
    let a = owl(&args, Some("Write a haiku about owls."));
    let b = owl(&args, Some("Write a haiku about owls."));
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert!(!text(&a.stdout).trim().is_empty(), "empty reply");
    assert_eq!(
        a.stdout, b.stdout,
        "same seed and input must give the same output"
    );
    let c = owl(
        &[
            "run",
            "--model",
            &m,
            "--seed",
            "8",
            "--temperature",
            "1.0",
            "--max-tokens",
            "24",
            "-",
        ],
        Some("Write a haiku about owls."),
    );
    assert_ne!(
        a.stdout, c.stdout,
        "different seeds should (almost surely) differ"
    );
}

#[test]
fn verbose_reports_speed_on_stderr_only() {
    let m = model();
    let out = owl(
        &[
            "run",
            "--model",
            &m,
            "--temperature",
            "0",
            "-n",
            "8",
            "--ignore-eos",
            "--verbose",
            "Hi",
        ],
        None,
    );
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("tok/s"), "{err}");
    assert!(
        err.contains("generated 8 tokens"),
        "--ignore-eos should run to -n: {err}"
    );
    assert!(!text(&out.stdout).contains("tok/s"));
}

#[test]
fn show_describes_the_model() {
    let out = owl(&["show", &model()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for needle in [
        "llama",
        "Q4_1",
        "Q8_0",
        "8192",
        "apache-2.0",
        "im_start",
        "parameters",
    ] {
        assert!(s.contains(needle), "`owl show` output lacks {needle}:\n{s}");
    }
}

/// A tiny random llama carrying the default model's tokenizer but no chat template.
fn model_without_template(dir: &Path) -> String {
    let src = GgufFile::open(&common::default_model()).expect("open default model");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        if k.starts_with("tokenizer.") && k != "tokenizer.chat_template" {
            w.add_kv(k, v.clone());
        }
    }
    let (e, ff, nv) = (64u64, 128u64, 49152u64);
    w.add_kv("general.architecture", Value::String("llama".into()));
    for (k, v) in [
        ("block_count", 1u32),
        ("embedding_length", e as u32),
        ("feed_forward_length", ff as u32),
        ("attention.head_count", 2),
        ("context_length", 128),
    ] {
        w.add_kv(&format!("llama.{k}"), Value::U32(v));
    }
    w.add_kv("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5));
    let mut t = |name: &str, dims: &[u64]| {
        let n: u64 = dims.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 2654435761) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut bytes = vec![0u8; owl_quant::row_bytes(GgmlType::F32, n as usize)];
        (owl_quant::format(GgmlType::F32)
            .and_then(|f| f.quantize)
            .expect("f32"))(&data, &mut bytes);
        w.add_tensor(name, dims, GgmlType::F32, bytes)
            .expect("tensor");
    };
    t("token_embd.weight", &[e, nv]);
    for n in ["attn_norm", "ffn_norm"] {
        t(&format!("blk.0.{n}.weight"), &[e]);
    }
    for n in ["attn_q", "attn_k", "attn_v", "attn_output"] {
        t(&format!("blk.0.{n}.weight"), &[e, e]);
    }
    t("blk.0.ffn_gate.weight", &[e, ff]);
    t("blk.0.ffn_up.weight", &[e, ff]);
    t("blk.0.ffn_down.weight", &[ff, e]);
    t("output_norm.weight", &[e]);
    let p = dir.join("no-template.gguf");
    w.write_file(&p).expect("write tiny model");
    p.to_string_lossy().into_owned()
}

#[test]
fn chat_without_template_is_a_clear_error_and_raw_still_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = model_without_template(dir.path());
    let out = owl(&["run", "--model", &m, "hello"], None);
    assert_clean_failure(&out, "--raw");
    let out = owl(
        &[
            "run",
            "--raw",
            "--model",
            &m,
            "-n",
            "4",
            "--temperature",
            "0",
            "hello",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn corrupt_model_files_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read(model_without_template(dir.path())).expect("read");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad-magic",
            [b"GGUX".as_slice(), &good[4..]].concat(),
            "magic",
        ),
        ("truncated-header", good[..20].to_vec(), "truncated"),
        ("truncated-data", good[..good.len() / 2].to_vec(), "tensor"),
        ("empty", Vec::new(), "truncated"),
    ];
    for (name, bytes, needle) in cases {
        let p = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&p, bytes).expect("write");
        let ps = p.to_string_lossy().into_owned();
        for args in [
            vec!["run", "--raw", "--model", &ps, "hi"],
            vec!["show", &ps],
        ] {
            let out = owl(&args, None);
            let err = text(&out.stderr).to_lowercase();
            assert_clean_failure(&out, "");
            assert!(
                err.contains(needle),
                "{name}: {err:?} should mention {needle:?}"
            );
        }
    }
    let out = owl(&["run", "--model", "/nonexistent/model.gguf", "hi"], None);
    assert_clean_failure(&out, "not found");
    let out = owl(&["run", "--model", "no-such-model", "hi"], None);
    assert_clean_failure(&out, "unknown model");
}

#[test]
fn invalid_sampling_options_are_rejected() {
    let out = owl(&["run", "--model", &model(), "--top-p", "1.5", "hi"], None);
    assert_clean_failure(&out, "top_p");
}

#[test]
fn chat_keeps_history_resets_and_leaves() {
    let m = model();
    let out = owl(
        &["chat", "--model", &m, "--temperature", "0", "-n", "16"],
        Some("My name is Ada.\nWhat is my name?\n/reset\nHello!\n/bye\nthis line is never read\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let replies = text(&out.stdout);
    // One reply per user turn (three), each ending with a newline.
    assert!(
        replies.lines().filter(|l| !l.trim().is_empty()).count() >= 3,
        "{replies:?}"
    );
    assert!(text(&out.stderr).contains("history cleared"));
    // Ctrl-D (end of input) leaves cleanly too.
    let out = owl(
        &["chat", "--model", &m, "--temperature", "0", "-n", "4"],
        Some("Hi\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_reasoning_models_thinking_goes_to_stderr_or_nowhere() {
    // tiny-qwen3 has a Qwen3-style thinking template whose prompt opens a <think> block; the
    // random model never closes it, so its whole reply is thinking.
    let m = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/arch/tiny-qwen3.gguf"
    );
    let base = [
        "run",
        "-m",
        m,
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "-t",
        "2",
        "hi",
    ];
    let out = owl(&base, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "", "stdout gets the answer only");
    let thinking = text(&out.stderr);
    assert!(!thinking.trim().is_empty(), "the thinking goes to stderr");

    let hidden = owl(&[&base[..], &["--hide-thinking"]].concat(), None);
    assert!(hidden.status.success());
    assert_eq!(text(&hidden.stderr).trim(), "");

    // --no-thinking: the template closes the block itself, the reply is an answer.
    let answer = owl(&[&base[..], &["--no-thinking"]].concat(), None);
    assert!(answer.status.success());
    assert!(!text(&answer.stdout).trim().is_empty());
}

fn tiny() -> String {
    owl_testkit::tiny_model("llama")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn json_lines_carry_every_token_with_its_logprobs_and_a_summary() {
    let m = tiny();
    let out = owl(
        &[
            "run",
            "--model",
            &m,
            "--temperature",
            "0",
            "-n",
            "8",
            "--ignore-eos",
            "--json",
            "--logprobs",
            "2",
            "Hello",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 9, "8 tokens and a summary");
    let mut joined = String::new();
    for t in &lines[..8] {
        let top = t["top_logprobs"].as_array().expect("top_logprobs");
        assert_eq!(top.len(), 2);
        // Greedy: the chosen token is the best alternative, with the same logprob.
        assert_eq!(top[0]["token"], t["token"]);
        assert_eq!(top[0]["logprob"], t["logprob"]);
        assert!(t["logprob"].as_f64().expect("logprob") <= 0.0);
        joined.push_str(t["text"].as_str().expect("text"));
    }
    let s = &lines[8];
    assert_eq!(s["finish_reason"], "length");
    assert_eq!(s["usage"]["completion_tokens"], 8);
    assert_eq!(s["content"], joined.as_str());
}

#[test]
fn stop_strings_end_the_reply_before_them() {
    let m = tiny();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--raw",
            "--model",
            &m,
            "--temperature",
            "0",
            "-n",
            "24",
            "--ignore-eos",
        ];
        args.extend_from_slice(extra);
        args.push("Once upon a time");
        let out = owl(&args, None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let free = run(&[]);
    let chars: Vec<char> = free.chars().collect();
    assert!(chars.len() > 12, "{free:?}");
    let stop: String = chars[8..11].iter().collect();
    let cut = run(&["--stop", "never-there", "--stop", &stop]);
    let want = &free[..free.find(&stop).expect("stop in the free reply")];
    assert_eq!(cut.strip_suffix('\n').unwrap_or(&cut), want);
}

#[test]
fn chat_reuses_the_previous_turn_and_says_so() {
    let m = tiny();
    let out = owl(
        &[
            "chat",
            "--model",
            &m,
            "--temperature",
            "0",
            "-n",
            "6",
            "--verbose",
        ],
        Some("first question\nsecond question\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let reused: Vec<usize> = err
        .lines()
        .filter_map(|l| l.split(" tokens (").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(reused.len(), 2, "{err}");
    assert_eq!(reused[0], 0);
    // The second turn's prompt starts with the whole first exchange.
    assert!(reused[1] > 10, "{err}");
}

#[test]
fn constrained_output_flags() {
    let m = tiny();
    let schema = r#"{"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["ok", "n"], "additionalProperties": false}"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let schema_file = dir.path().join("schema.json");
    std::fs::write(&schema_file, schema).expect("write schema");
    let grammar_file = dir.path().join("g.lark");
    std::fs::write(
        &grammar_file,
        "start: \"It is \" ANSWER \".\"\nANSWER: /(yes|no)/\n",
    )
    .expect("write grammar");
    let run = |flag: &str, value: &str| {
        let out = owl(
            &[
                "run",
                "--model",
                &m,
                "--temperature",
                "0.9",
                "--seed",
                "3",
                "-n",
                "40",
                flag,
                value,
                "Hello",
            ],
            None,
        );
        assert!(out.status.success(), "{flag}: {}", text(&out.stderr));
        text(&out.stdout).trim_end().to_string()
    };
    for value in [schema, schema_file.to_str().expect("utf-8 path")] {
        let reply = run("--json-schema", value);
        let v: serde_json::Value =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"));
        assert!(
            v["ok"].is_boolean() && v["n"].as_u64().is_some_and(|n| n <= 9),
            "{v}"
        );
    }
    let reply = run("--regex", "[A-C]{3}-[0-9]");
    assert!(reply.len() == 5 && reply.as_bytes()[3] == b'-', "{reply:?}");
    let reply = run("--grammar", grammar_file.to_str().expect("utf-8 path"));
    assert!(reply == "It is yes." || reply == "It is no.", "{reply:?}");
    // A bad constraint is a one-line error naming the flag, and a non-zero exit.
    let out = owl(&["run", "--model", &m, "--regex", "(", "Hello"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--regex"),
        "{}",
        text(&out.stderr)
    );
    let out = owl(
        &[
            "run",
            "--model",
            &m,
            "--regex",
            "a",
            "--json-schema",
            "{}",
            "Hello",
        ],
        None,
    );
    assert!(!out.status.success(), "the flags exclude each other");
}

/// `owl show M | head -1`: the reader leaves early; owl stops quietly (SIGPIPE, as `cat` does)
/// instead of panicking in `println!`. The pipe is closed before owl has read the model, so
/// its first write meets it closed.
#[test]
#[cfg(unix)]
fn a_reader_that_leaves_early_is_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_owl"))
        .args(["show", &model()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn owl");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("owl");
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert_eq!(
        out.status.signal(),
        Some(13),
        "status {:?}, stderr: {err}",
        out.status
    );
}

#[test]
fn a_draft_model_gives_the_same_reply_and_bad_spec_flags_are_clear_errors() {
    let m = tiny();
    let prompt = "one two three four five one two three four five one two three";
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--raw",
            "--model",
            &m,
            "--temperature",
            "0",
            "-n",
            "24",
            "--ignore-eos",
        ];
        args.extend_from_slice(extra);
        args.push(prompt);
        owl(&args, None)
    };
    let off = run(&["--spec", "off"]);
    assert!(off.status.success(), "{}", text(&off.stderr));
    // The real default model guesses for the tiny one (same vocabulary): right or wrong, the
    // reply is the unspeculated one.
    let d = model();
    for extra in [
        vec!["--draft-model", d.as_str()],
        vec![
            "--spec",
            "draft",
            "--draft-model",
            m.as_str(),
            "--draft-max",
            "3",
        ],
    ] {
        let out = run(&extra);
        assert!(out.status.success(), "{extra:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), text(&off.stdout), "{extra:?}");
    }
    assert_clean_failure(&run(&["--spec", "draft"]), "--draft-model");
    assert_clean_failure(
        &run(&["--spec", "ngram", "--draft-model", m.as_str()]),
        "--spec draft",
    );
    assert_clean_failure(&run(&["--draft-model", "/nonexistent/draft.gguf"]), "draft");
    let other = owl_testkit::fixture_path("hf/tiny-deepseek2.gguf");
    assert_clean_failure(
        &run(&["--draft-model", &other.to_string_lossy()]),
        "vocabulary",
    );
}
