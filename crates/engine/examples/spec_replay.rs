//! Predicts prompt lookup's speed-up on recorded replies (`owl_engine::replay`), at fixed
//! costs of a checked position, without the timing noise of a benchmark.
//!
//! `scripts/spec_bench.py --record FILE` writes the input: one JSON object per line,
//! `{"name", "prompt", "raw", "reply": [token ids]}`, the reply recorded with `--spec off` at
//! temperature 0. Usage: `spec_replay MODEL.gguf FILE [BETA ...]` (default betas 0.2 0.3).

use std::path::Path;

use owl_engine::{replay, ModelBundle, OpenOptions, ReplayWords, SpecConfig};
use owl_text::{ChatMessage, ChatPrompt, TemplateVars};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, file, betas @ ..] = args.as_slice() else {
        return Err("usage: spec_replay MODEL.gguf FILE [BETA ...]".into());
    };
    let betas: Vec<f64> = if betas.is_empty() {
        vec![0.2, 0.3]
    } else {
        betas.iter().map(|b| b.parse()).collect::<Result<_, _>>()?
    };
    let bundle = ModelBundle::open(Path::new(model), &OpenOptions::from_env(Some(1), None))?;
    let words = ReplayWords::new(&bundle.tokenizer);
    let mut cfg = SpecConfig::default();
    if let Some(m) = std::env::var("OWL_REPLAY_MAX")
        .ok()
        .and_then(|m| m.parse().ok())
    {
        cfg.max_draft = m;
    }
    print!("{:<20}{:>7}", "prompt", "tokens");
    for b in &betas {
        print!("{:>16}", format!("beta {b}"));
    }
    println!();
    // Geometric means by the part of the name before '/' (`copy`, `free`).
    let mut groups: Vec<(String, Vec<f64>, usize)> = Vec::new();
    for line in std::fs::read_to_string(file)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let text = v["prompt"].as_str().ok_or("no prompt")?;
        let reply: Vec<u32> = serde_json::from_value(v["reply"].clone())?;
        let prompt = if v["raw"].as_bool().unwrap_or(false) {
            bundle.tokenizer.encode(text, true, false)?
        } else {
            let template = bundle
                .template
                .as_ref()
                .ok_or("the model has no chat template")?;
            let user = ChatMessage {
                role: "user".into(),
                content: text.into(),
                ..Default::default()
            };
            ChatPrompt::render(template, &bundle.tokenizer, &[user], &TemplateVars::new())?.ids
        };
        let name = v["name"].as_str().unwrap_or("?");
        let group = name.split('/').next().unwrap_or(name).to_string();
        let g = match groups.iter().position(|g| g.0 == group) {
            Some(i) => i,
            None => {
                groups.push((group, vec![0.0; betas.len()], 0));
                groups.len() - 1
            }
        };
        groups[g].2 += 1;
        print!("{:<20}{:>7}", name, reply.len());
        for (b, log) in betas.iter().zip(&mut groups[g].1) {
            let r = replay(&prompt, &reply, &words, cfg, *b);
            print!(
                "{:>16}",
                format!("{:.2}× {}/{}", r.speedup(), r.accepted(), r.drafted())
            );
            *log += r.speedup().ln();
            if std::env::var_os("OWL_REPLAY_TRACE").is_some() {
                let show = |ids: &[u32]| bundle.tokenizer.decode(ids, false);
                let mut at = 0;
                for (d, acc) in &r.log {
                    let next = (at + acc + 1).min(reply.len());
                    eprintln!(
                        "  {:?} → {:?} ({acc}/{})",
                        show(d),
                        show(&reply[at..next]),
                        d.len()
                    );
                    at = next;
                }
            }
        }
        println!();
    }
    for (group, logs, n) in groups {
        print!("{:<27}", format!("geometric mean, {group}"));
        for log in logs {
            print!("{:>16}", format!("{:.3}×", (log / n.max(1) as f64).exp()));
        }
        println!();
    }
    Ok(())
}
