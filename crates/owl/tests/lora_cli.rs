//! `owl run --lora PATH [--lora-scale S]` end to end on the tiny llama and its adapter
//! fixture: the GGUF adapter and the PEFT directory give the same reply, which is not the base
//! model's; scale 0 is the base model; an adapter for another model is a one-line error.

use std::process::{Command, Output};

fn run(extra: &[&str]) -> Output {
    let model = owl_testkit::tiny_model("llama");
    let mut args = vec![
        "run".to_string(),
        "-m".into(),
        model.display().to_string(),
        "--raw".into(),
        "--temperature".into(),
        "0".into(),
        "-n".into(),
        "8".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("The capital of France is".into());
    Command::new(env!("CARGO_BIN_EXE_owl"))
        .args(&args)
        .env(
            "OWL_HOME",
            std::env::temp_dir().join("owl-cli-test-empty-home"),
        )
        .output()
        .expect("run owl")
}

fn reply(extra: &[&str]) -> String {
    let out = run(extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn run_with_a_lora_adapter() {
    let gguf = owl_testkit::fixture_path("lora/tiny-llama-lora.gguf");
    let peft = owl_testkit::fixture_path("lora/tiny-llama-peft");
    let (gguf, peft) = (gguf.display().to_string(), peft.display().to_string());
    let base = reply(&[]);
    let with_gguf = reply(&["--lora", &gguf]);
    assert_ne!(with_gguf, base);
    assert_eq!(reply(&["--lora", &peft]), with_gguf);
    assert_eq!(reply(&["--lora", &gguf, "--lora-scale", "0"]), base);

    let qwen = owl_testkit::tiny_model("qwen3");
    let out = Command::new(env!("CARGO_BIN_EXE_owl"))
        .args(["run", "-m", &qwen.display().to_string(), "--raw", "-n", "2"])
        .args(["--lora", &gguf, "hi"])
        .output()
        .expect("run owl");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a LoRA adapter") && err.contains("qwen3"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
