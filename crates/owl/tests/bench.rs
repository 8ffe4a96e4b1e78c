//! `owl bench` end to end on the default model: the JSON has llama-bench's shape (one object
//! per test, one sample per repetition, finite positive speeds), the table has one row per
//! test, and bad arguments fail with one line before any model loads. Speeds are never
//! compared with thresholds: the machines that run this are shared.

use owl_testkit as common;

use std::process::{Command, Output};

use serde_json::Value;

fn owl_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_owl"))
        .arg("bench")
        .args(args)
        .env(
            "OWL_HOME",
            std::env::temp_dir().join("owl-bench-test-empty-home"),
        )
        .output()
        .expect("run owl bench")
}

fn model() -> String {
    common::default_model().to_string_lossy().into_owned()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn succeed(out: &Output) -> String {
    assert!(
        out.status.success(),
        "owl bench failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json_tests(args: &[&str]) -> Vec<Value> {
    let out = owl_bench(args);
    let stdout = succeed(&out);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    v.as_array().expect("a JSON array").clone()
}

fn positive(t: &Value, key: &str) -> f64 {
    let x = t[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {t}"));
    assert!(x.is_finite() && x > 0.0, "{key} = {x}");
    x
}

#[test]
fn json_has_llama_bench_fields() {
    let m = model();
    let tests = json_tests(&["-m", &m, "-p", "16", "-n", "4", "-r", "2", "-o", "json"]);
    assert_eq!(tests.len(), 2, "one object per test: {tests:?}");
    let want = [(16, 0), (0, 4)];
    for (t, (n_prompt, n_gen)) in tests.iter().zip(want) {
        assert_eq!(t["n_prompt"].as_u64(), Some(n_prompt), "{t}");
        assert_eq!(t["n_gen"].as_u64(), Some(n_gen), "{t}");
        for key in [
            "model_filename",
            "model_type",
            "cpu_info",
            "build_commit",
            "test_time",
        ] {
            let s = t[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} missing: {t}"));
            assert!(!s.is_empty(), "{key} is empty");
        }
        assert!(t["model_filename"]
            .as_str()
            .is_some_and(|f| f.ends_with(".gguf")));
        assert!(t["build_commit"]
            .as_str()
            .is_some_and(|b| b.contains(env!("CARGO_PKG_VERSION"))));
        let time = t["test_time"].as_str().unwrap_or_default();
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "test_time {time:?} is not ISO 8601 UTC"
        );
        for key in [
            "model_size",
            "model_n_params",
            "n_threads",
            "avg_ns",
            "avg_ts",
            "peak_rss_bytes",
        ] {
            positive(t, key);
        }
        for key in ["stddev_ns", "stddev_ts"] {
            let x = t[key].as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite() && x >= 0.0, "{key} = {x}");
        }
        for key in ["samples_ns", "samples_ts"] {
            let s = t[key].as_array().unwrap_or_else(|| panic!("{key}: {t}"));
            assert_eq!(s.len(), 2, "{key} should hold one sample per repetition");
            for x in s {
                let x = x.as_f64().unwrap_or(f64::NAN);
                assert!(x.is_finite() && x > 0.0, "{key} sample {x}");
            }
        }
        // avg_ts is the mean of the per-sample speeds, each n_tokens / seconds.
        let n_tokens = (n_prompt + n_gen) as f64;
        let ts: Vec<f64> = t["samples_ts"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let ns: Vec<f64> = t["samples_ns"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        for (ts, ns) in ts.iter().zip(&ns) {
            assert!((ts - n_tokens * 1e9 / ns).abs() <= 1e-6 * ts);
        }
        let mean = ts.iter().sum::<f64>() / ts.len() as f64;
        assert!((positive(t, "avg_ts") - mean).abs() <= 1e-9 * mean);
    }
}

#[test]
fn comma_lists_and_zero_skips() {
    let m = model();
    let tests = json_tests(&["-m", &m, "-p", "8,16", "-n", "0", "-r", "1", "-o", "json"]);
    let got: Vec<(u64, u64)> = tests
        .iter()
        .map(|t| {
            (
                t["n_prompt"].as_u64().unwrap_or(u64::MAX),
                t["n_gen"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    assert_eq!(got, [(8, 0), (16, 0)]);
    assert!(tests
        .iter()
        .all(|t| t["samples_ns"].as_array().map(Vec::len) == Some(1)));
}

#[test]
fn markdown_table_has_a_row_per_test() {
    let m = model();
    let out = owl_bench(&["-m", &m, "-p", "16", "-n", "4", "-r", "1", "-t", "1"]);
    let stdout = succeed(&out);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 4, "header, rule, pp16, tg4:\n{stdout}");
    assert!(rows[0].contains("model") && rows[0].contains("t/s"));
    for (row, test) in rows[2..].iter().zip(["pp16", "tg4"]) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells.get(5), Some(&test), "{row}");
        assert_eq!(cells.get(4), Some(&"1"), "threads column: {row}");
        let speed = cells.get(6).copied().unwrap_or_default();
        let mean: f64 = speed
            .split(" ± ")
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(f64::NAN);
        assert!(mean.is_finite() && mean > 0.0, "t/s cell {speed:?}");
    }
    assert!(stdout.contains("peak RSS"), "{stdout}");
    assert!(stdout.contains("kernels"), "{stdout}");
}

#[test]
fn bad_arguments_fail_with_one_line() {
    let m = model();
    for (args, needle) in [
        (vec!["-r", "0"], "repetitions"),
        (vec!["-o", "xml"], "xml"),
        (vec!["-p", "12x"], "12x"),
        (vec!["-p", "0", "-n", "0"], "nothing to measure"),
        (vec!["-t", "0"], "threads"),
        (vec!["-p", "64", "--ctx-size", "32"], "ctx-size"),
    ] {
        let mut all = vec!["-m", m.as_str()];
        all.extend(args.iter().copied());
        let out = owl_bench(&all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err:?}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    }
}
