//! The analytic gradients of the LoRA pairs equal finite differences of the loss, on tiny
//! models of every layer kind the trainer supports: plain Llama attention (F16 weights),
//! Qwen2's Q/K/V biases, Qwen3's per-head Q/K norms, and quantized bases (Q8_0, Q4_1).
//! Every pair (q, k, v, o, gate, up, down) of the first and last layers is probed, so the
//! checks run through attention, RoPE, the norms and the SwiGLU FFN, and the residual path
//! between layers.

use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_kernels::{Kernels, ThreadPool};
use owl_model::lora::Target;
use owl_model::{load_model, LoadOptions};
use owl_train::frozen::Gemm;
use owl_train::lora::Rng;
use owl_train::{LoraSet, Sequence, TrainModel};

fn check(fixture: &str) {
    let path = owl_testkit::tiny_model(fixture);
    let file = Arc::new(GgufFile::open(&path).expect("fixture"));
    let kernels = Kernels::detect();
    let opts = LoadOptions {
        no_repack: true,
        ..LoadOptions::default()
    };
    let model = load_model(&file, &kernels, &opts).expect("load");
    let dec = model.as_decoder().expect("a decoder");
    let pool = ThreadPool::new(2);
    let g = Gemm {
        kernels: &kernels,
        pool: &pool,
    };
    let n_layer = dec.hp.n_layer;
    let mut lora = LoraSet::new(&model.lora_targets(), &Target::ALL, n_layer, 2, 4.0, 1);
    // B starts at zero (no gradient reaches A then): give it values.
    let mut rng = Rng(9);
    for p in lora.params_mut() {
        for b in &mut p.b {
            *b = rng.uniform() * 0.5;
        }
    }
    let mut tm = TrainModel::new(dec, lora, g).expect("supported");
    let nv = dec.hp.n_vocab as u32;
    let seq = |len: usize, salt: u32| Sequence {
        tokens: (0..len as u32)
            .map(|i| (i * 7 + salt * 13 + 1) % nv)
            .collect(),
        targets: (0..len as u32)
            .map(|i| (i % 3 != 0).then_some((i * 5 + salt + 2) % nv))
            .collect(),
    };
    let batch = vec![seq(7, 1), seq(5, 2)];
    tm.lora.zero_grad();
    tm.accumulate(&batch, 1.0).expect("backward");
    // Keeping every layer's intermediates instead of recomputing them gives the same bits.
    let recomputed: Vec<Vec<f32>> = tm
        .lora
        .params()
        .map(|p| [p.grad_a.clone(), p.grad_b.clone()].concat())
        .collect();
    tm.keep_bytes = usize::MAX;
    tm.lora.zero_grad();
    tm.accumulate(&batch, 1.0).expect("backward");
    let kept: Vec<Vec<f32>> = tm
        .lora
        .params()
        .map(|p| [p.grad_a.clone(), p.grad_b.clone()].concat())
        .collect();
    assert!(
        recomputed == kept,
        "{fixture}: checkpointing changed the gradients"
    );

    let h = 1e-2f32;
    let mut probed = 0;
    let mut worst = 0f64;
    for layer in [0, n_layer - 1] {
        for t in Target::ALL {
            for which in 0..2 {
                for k in 0..2 {
                    let p = tm.lora.get(layer, t).expect("pair");
                    let len = if which == 0 { p.a.len() } else { p.b.len() };
                    let i = (k * 37 + 5) % len;
                    let analytic = if which == 0 { p.grad_a[i] } else { p.grad_b[i] } as f64;
                    let mut at = |d: f32| {
                        let p = tm.lora.get_mut(layer, t).expect("pair");
                        let v = if which == 0 { &mut p.a[i] } else { &mut p.b[i] };
                        let old = *v;
                        *v = old + d;
                        let loss = tm.loss(&batch).expect("forward").0;
                        let p = tm.lora.get_mut(layer, t).expect("pair");
                        let v = if which == 0 { &mut p.a[i] } else { &mut p.b[i] };
                        *v = old;
                        loss
                    };
                    let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
                    let err =
                        (analytic - numeric).abs() / (numeric.abs().max(analytic.abs()).max(1e-2));
                    worst = worst.max(err);
                    assert!(
                        err < 2e-2,
                        "{fixture} layer {layer} {t:?} {} [{i}]: analytic {analytic:.6}, finite difference {numeric:.6}",
                        if which == 0 { "A" } else { "B" }
                    );
                    probed += 1;
                }
            }
        }
    }
    eprintln!("{fixture}: {probed} parameters, worst relative error {worst:.2e}");
}

#[test]
fn llama_f16() {
    check("llama");
}

#[test]
fn qwen2_biases() {
    check("qwen2");
}

#[test]
fn qwen3_qk_norms() {
    check("qwen3");
}

#[test]
fn llama_q8_0() {
    check("llama-3l-q8");
}

#[test]
fn qwen2_q4_1() {
    check("qwen2-1l-q4_1");
}
