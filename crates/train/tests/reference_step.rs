//! One training step equals the same step computed independently in float64 by
//! `scripts/make_train_reference.py` (numpy + autograd on the dequantized weights of the same
//! tiny model): the loss, every gradient of every LoRA pair, and the values after AdamW.
//!
//! Tolerances: owl computes in f32 (a 1e-6 relative rounding per operation over a few hundred
//! operations in a row), so gradients agree to 1e-3 of the largest gradient of their pair, and
//! the loss to 1e-5 relative. After one AdamW step each value moves by about ±lr (the first
//! step normalises each gradient by its own magnitude); a value agrees to 1e-4 unless its
//! gradient is so small that its sign is rounding noise.

use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_kernels::{Kernels, ThreadPool};
use owl_model::lora::Target;
use owl_model::{load_model, LoadOptions};
use owl_train::frozen::Gemm;
use owl_train::{AdamW, LoraSet, Sequence, TrainModel};
use serde_json::Value;

fn init_value(layer: usize, t: usize, which: usize, i: usize) -> f32 {
    (0.1 * (0.37 * i as f64 + 1.3 * layer as f64 + 0.71 * t as f64 + 2.1 * which as f64).sin())
        as f32
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[test]
fn one_step_equals_the_float64_reference() {
    let path = owl_testkit::repo_root().join("tests/fixtures/train/step-tiny-llama.json");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reference")).expect("json");
    let model_path = owl_testkit::tiny_model("llama");
    let file = Arc::new(GgufFile::open(&model_path).expect("fixture"));
    let kernels = Kernels::detect();
    let opts = LoadOptions {
        no_repack: true,
        ..LoadOptions::default()
    };
    let model = load_model(&file, &kernels, &opts).expect("load");
    let dec = model.as_decoder().expect("decoder");
    let pool = ThreadPool::new(2);
    let g = Gemm {
        kernels: &kernels,
        pool: &pool,
    };
    let rank = r["rank"].as_u64().expect("rank") as usize;
    let alpha = r["alpha"].as_f64().expect("alpha") as f32;
    let mut lora = LoraSet::new(
        &model.lora_targets(),
        &Target::ALL,
        dec.hp.n_layer,
        rank,
        alpha,
        0,
    );
    for p in lora.params_mut() {
        let (l, t) = (p.target.layer, p.target.target as usize);
        for (i, a) in p.a.iter_mut().enumerate() {
            *a = init_value(l, t, 0, i);
        }
        for (i, b) in p.b.iter_mut().enumerate() {
            *b = init_value(l, t, 1, i);
        }
    }
    let mut tm = TrainModel::new(dec, lora, g).expect("supported");
    let batch: Vec<Sequence> = r["batch"]
        .as_array()
        .expect("batch")
        .iter()
        .map(|s| Sequence {
            tokens: owl_testkit::ids(&s["tokens"]),
            targets: s["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(|t| t.as_u64().map(|v| v as u32))
                .collect(),
        })
        .collect();
    let n_targets: usize = batch.iter().map(Sequence::n_targets).sum();
    tm.lora.zero_grad();
    let (loss, _) = tm.accumulate(&batch, 1.0 / n_targets as f32).expect("step");
    let loss = loss / n_targets as f64;
    let want_loss = r["loss"].as_f64().expect("loss");
    assert!(
        ((loss - want_loss) / want_loss).abs() < 1e-5,
        "loss {loss} vs reference {want_loss}"
    );
    let f = |k: &str| r[k].as_f64().expect(k) as f32;
    let opt = AdamW {
        lr: f("lr"),
        beta1: f("beta1"),
        beta2: f("beta2"),
        eps: f("eps"),
        weight_decay: 0.0,
        max_grad_norm: f("max_grad_norm"),
        warmup: 0,
        total: 1_000_000,
    };
    // Gradients first (the step overwrites nothing of them, but check before it anyway).
    let pairs = r["pairs"].as_array().expect("pairs");
    let mut worst_grad = 0f64;
    for want in pairs {
        let layer = want["layer"].as_u64().expect("layer") as usize;
        let role = want["target"].as_str().expect("target");
        let t = Target::ALL
            .into_iter()
            .find(|t| t.role() == role)
            .expect("role");
        let p = tm.lora.get(layer, t).expect("pair");
        for (got, key) in [(&p.grad_a, "grad_a"), (&p.grad_b, "grad_b")] {
            let w = floats(&want[key]);
            let big = w.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
            for (i, (&g, &wv)) in got.iter().zip(&w).enumerate() {
                let err = (g as f64 - wv).abs() / big;
                worst_grad = worst_grad.max(err);
                assert!(err < 1e-3, "layer {layer} {role} {key}[{i}]: {g} vs {wv}");
            }
        }
    }
    let norm = opt.step(&mut tm.lora, 0);
    let want_norm = r["grad_norm"].as_f64().expect("grad_norm");
    assert!(
        ((norm as f64 - want_norm) / want_norm).abs() < 1e-4,
        "grad norm {norm} vs {want_norm}"
    );
    let mut checked = 0;
    for want in pairs {
        let layer = want["layer"].as_u64().expect("layer") as usize;
        let role = want["target"].as_str().expect("target");
        let t = Target::ALL
            .into_iter()
            .find(|t| t.role() == role)
            .expect("role");
        let p = tm.lora.get(layer, t).expect("pair");
        for (got, key, gkey) in [(&p.a, "a", "grad_a"), (&p.b, "b", "grad_b")] {
            let (w, gw) = (floats(&want[key]), floats(&want[gkey]));
            let big = gw.iter().fold(0f64, |m, v| m.max(v.abs()));
            for (i, (&v, &wv)) in got.iter().zip(&w).enumerate() {
                if gw[i].abs() < 1e-3 * big {
                    continue; // the sign of a near-zero gradient is rounding noise
                }
                assert!(
                    (v as f64 - wv).abs() < 1e-4,
                    "layer {layer} {role} {key}[{i}]: {v} vs {wv}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "only {checked} values compared");
    eprintln!("loss {loss:.6} (reference {want_loss:.6}); worst gradient error {worst_grad:.2e} of the pair's largest; {checked} values after the step agree");
}
