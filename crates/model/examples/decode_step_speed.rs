//! Micro-benchmark of a wide decode step, what a server runs with many clients: `N` sequences
//! each prefilled with a prompt, then steps of one token per sequence, timed without HTTP,
//! sampling or scheduling. Timings only; the median of the rounds is what to quote.
//!
//! `cargo run --release -p owl-model --example decode_step_speed -- MODEL.gguf [SEQS] [PROMPT]
//! [STEPS] [ROUNDS]` (defaults 16, 64, 64, 5; 2 threads, or `OWL_THREADS`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use owl_gguf::GgufFile;
use owl_kernels::Kernels;
use owl_model::{Batch, LoadOptions, Logits, LogitsWanted, Runner};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: decode_step_speed MODEL.gguf [SEQS] [PROMPT] [STEPS] [ROUNDS]");
        std::process::exit(2);
    };
    let arg = |i: usize, default: usize| {
        args.get(i)
            .map(|s| s.parse().expect("a number"))
            .unwrap_or(default)
    };
    let (seqs, prompt, steps, rounds) = (arg(1, 16), arg(2, 64), arg(3, 64), arg(4, 5));
    let threads = std::env::var("OWL_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let file = Arc::new(GgufFile::open(Path::new(path)).expect("open the model"));
    let mut r = Runner::new(file, Kernels::detect(), threads, &LoadOptions::default())
        .expect("load the model");
    let n_vocab = r.model.hparams().n_vocab;
    let n_ctx = prompt + steps;
    let mut times = Vec::new();
    for round in 0..rounds {
        let mut kv = r.model.new_cache(n_ctx, seqs);
        let mut logits = Logits::default();
        let mut b = Batch::new();
        for s in 0..seqs {
            let toks: Vec<u32> = (0..prompt)
                .map(|i| ((s * 7919 + i * 104_729) % n_vocab) as u32)
                .collect();
            b.push(s, 0, &toks, LogitsWanted::Last);
        }
        r.forward(&b, &mut kv, &mut logits).expect("prefill");
        let t = Instant::now();
        for step in 0..steps {
            b.clear();
            for s in 0..seqs {
                let tok = ((s * 31 + step * 17) % n_vocab) as u32;
                b.push(s, prompt + step, &[tok], LogitsWanted::Last);
            }
            r.forward(&b, &mut kv, &mut logits).expect("decode step");
        }
        let secs = t.elapsed().as_secs_f64();
        let tps = (seqs * steps) as f64 / secs;
        eprintln!("round {round}: {tps:.1} tok/s");
        times.push(tps);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{seqs} sequences, prompt {prompt}, {steps} steps, {threads} threads: median {:.1} tok/s",
        times[times.len() / 2]
    );
}
