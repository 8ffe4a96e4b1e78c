//! `owl finetune` end to end on a tiny model (SmolLM2's vocabulary and chat template, random
//! weights) with the committed ticket-routing chats:
//! - the eval loss falls, the adapter lands in the store in llama.cpp's adapter format, and a
//!   derived model is created that `owl run --lora` agrees with;
//! - a run stopped part-way (`--max-steps`, as Ctrl-C does) and `--resume`d writes the same
//!   adapter, byte for byte, as the run that never stopped;
//! - `--resume` with other settings, bad data and unknown targets are one-line errors;
//! - Ctrl-C leaves a checkpoint that `--resume` finishes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        Home(tempfile::tempdir().expect("tmp"))
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_owl"));
        c.args(args)
            .env("OWL_HOME", self.0.path())
            .env("HOME", self.0.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run owl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "owl {args:?}: {err}");
        err
    }

    fn adapter(&self, name: &str) -> PathBuf {
        self.0.path().join("adapters").join(format!("{name}.gguf"))
    }
}

fn data(n: usize, dir: &Path) -> PathBuf {
    let all = std::fs::read_to_string(owl_testkit::fixture_path("finetune/tickets-train.jsonl"))
        .expect("fixture");
    let p = dir.join(format!("train-{n}.jsonl"));
    let lines: Vec<&str> = all.lines().take(n).collect();
    std::fs::write(&p, lines.join("\n") + "\n").expect("write");
    p
}

fn eval_losses(stderr: &str) -> Vec<f64> {
    stderr
        .lines()
        .filter_map(|l| l.split("eval loss ").nth(1))
        .filter_map(|r| r.split(',').next()?.trim().parse().ok())
        .collect()
}

#[test]
fn finetune_learns_writes_an_adapter_and_a_derived_model() {
    let home = Home::new();
    let model = owl_testkit::tiny_model("llama");
    let m = model.display().to_string();
    let train = data(48, home.0.path());
    let eval = owl_testkit::fixture_path("finetune/tickets-heldout.jsonl");
    let (train, eval) = (train.display().to_string(), eval.display().to_string());
    let peft_dir = home.0.path().join("peft").display().to_string();
    let err = home.ok(&[
        "finetune",
        "-m",
        &m,
        "--data",
        &train,
        "--eval",
        &eval,
        "--out",
        "tiny-tickets",
        "--epochs",
        "3",
        "--lr",
        "1e-2",
        "--batch",
        "8",
        "-t",
        "2",
        "--peft-out",
        &peft_dir,
    ]);
    let losses = eval_losses(&err);
    assert_eq!(losses.len(), 4, "before + 3 epochs: {err}");
    assert!(
        losses[3] < losses[0] * 0.8,
        "the eval loss should fall by a fifth: {losses:?}\n{err}"
    );
    let adapter = home.adapter("tiny-tickets");
    let f = owl_gguf::GgufFile::open(&adapter).expect("adapter gguf");
    assert_eq!(f.get_str("general.type"), Some("adapter"));
    assert_eq!(f.get_str("adapter.type"), Some("lora"));
    assert_eq!(f.get_f32("adapter.lora.alpha"), Some(16.0));
    assert_eq!(
        f.tensors()
            .iter()
            .filter(|t| t.name.ends_with(".lora_a"))
            .count(),
        2 * 7,
        "every projection of both layers"
    );
    // The PEFT copy reads back (through owl's PEFT reader, Q/K rows permuted again) as the
    // same tensors, bit for bit.
    let base = owl_gguf::GgufFile::open(&model).expect("base");
    let peft = owl_hf::open_adapter(&home.0.path().join("peft"), &base).expect("peft reads back");
    for t in f.tensors() {
        let p = peft
            .tensor(&t.name)
            .unwrap_or_else(|| panic!("{} missing from the PEFT copy", t.name));
        assert!(
            peft.tensor_data(p) == f.tensor_data(t),
            "{} differs in the PEFT copy",
            t.name
        );
    }
    assert_eq!(peft.get_f32("adapter.lora.alpha"), Some(16.0));
    // The derived model is in the store, with the adapter as its lineage.
    let list = String::from_utf8_lossy(&home.run(&["list"]).stdout).into_owned();
    assert!(list.contains("tiny-tickets"), "{list}");
    let show = String::from_utf8_lossy(&home.run(&["show", "tiny-tickets"]).stdout).into_owned();
    assert!(show.contains("tiny-tickets.gguf"), "{show}");
}

#[test]
fn a_stopped_run_resumes_to_the_same_adapter() {
    let home = Home::new();
    let m = owl_testkit::tiny_model("llama").display().to_string();
    let train = data(24, home.0.path()).display().to_string();
    let common = [
        "finetune",
        "-m",
        &m,
        "--data",
        &train,
        "--epochs",
        "2",
        "--batch",
        "4",
        "-t",
        "2",
        "--checkpoint-every",
        "2",
    ];
    fn with<'a>(common: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        common.iter().chain(extra).copied().collect()
    }
    home.ok(&with(&common, &["--out", "whole"]));
    let err = home.ok(&with(&common, &["--out", "parts", "--max-steps", "5"]));
    assert!(err.contains("--resume"), "{err}");
    home.ok(&with(
        &common,
        &["--out", "parts", "--resume", "--max-steps", "4"],
    ));
    home.ok(&with(&common, &["--out", "parts", "--resume"]));
    let read = |p: PathBuf| -> Vec<(String, Vec<u8>)> {
        let f = owl_gguf::GgufFile::open(&p).expect("adapter");
        f.tensors()
            .iter()
            .map(|t| (t.name.clone(), f.tensor_data(t).to_vec()))
            .collect()
    };
    let (a, b) = (read(home.adapter("whole")), read(home.adapter("parts")));
    assert_eq!(a.len(), b.len());
    for ((na, da), (nb, db)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(da == db, "{na} differs after resuming");
    }

    // Other settings are refused on --resume.
    let out = home.run(&with(
        &common,
        &["--out", "parts", "--resume", "--lr", "5e-4"],
    ));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("other settings"));
}

#[test]
fn bad_input_is_a_one_line_error() {
    let home = Home::new();
    let m = owl_testkit::tiny_model("llama").display().to_string();
    let bad = home.0.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n{oops\n",
    )
    .expect("write");
    let b = bad.display().to_string();
    let out = home.run(&["finetune", "-m", &m, "--data", &b, "--out", "x"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 1") && err.contains("assistant"),
        "{err}"
    );
    let good = data(4, home.0.path()).display().to_string();
    let out = home.run(&[
        "finetune",
        "-m",
        &m,
        "--data",
        &good,
        "--out",
        "x",
        "--targets",
        "q,z",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("\"z\""), "{err}");
    let out = home.run(&[
        "finetune", "-m", &m, "--data", &good, "--out", "x", "--resume",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("x.ckpt.gguf"),
        "{err}"
    );
}

#[test]
fn ctrl_c_leaves_a_checkpoint_that_resumes() {
    let home = Home::new();
    let m = owl_testkit::tiny_model("llama").display().to_string();
    let train = data(48, home.0.path()).display().to_string();
    let args = [
        "finetune", "-m", &m, "--data", &train, "--epochs", "200", "--batch", "2", "-t", "1",
        "--out", "cc",
    ];
    let child = home
        .cmd(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_secs(3));
    // SAFETY: sends SIGINT to the child we spawned, which is still ours to signal.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("stopped at step") && err.contains("--resume"),
        "{err}"
    );
    assert!(home.0.path().join("adapters/cc.ckpt.gguf").is_file());
    assert!(
        home.adapter("cc").is_file(),
        "the adapter so far is written too"
    );
}
