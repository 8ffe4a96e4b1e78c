//! `owl show`: what a model file is, and what this machine computes with.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use owl_kernels::{Isa, Kernels};

pub fn model(name: Option<&str>) -> Result<()> {
    let store = crate::models::store()?;
    let r = store.resolve(name.unwrap_or(owl_store::DEFAULT_MODEL))?;
    let path = r.path.clone();
    let g = owl_hf::open_model(&path).with_context(|| format!("cannot load {}", path.display()))?;
    let arch = g.get_str("general.architecture").unwrap_or("?");
    let key = |k: &str| format!("{arch}.{k}");
    println!("model         {}", lineage(&r));
    println!("file          {}", path.display());
    print_defaults(&r.defaults, &r.path);
    println!("name          {}", g.get_str("general.name").unwrap_or("-"));
    println!("architecture  {arch}");
    let params: u64 = g.tensors().iter().map(|t| t.n_elements).sum();
    println!("parameters    {} ({params})", human(params));
    let mut formats: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for t in g.tensors() {
        let e = formats.entry(t.ty.name()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
    }
    let f: Vec<String> = formats
        .iter()
        .map(|(k, (n, b))| format!("{k} ×{n} ({:.1} MB)", *b as f64 / 1e6))
        .collect();
    println!("formats       {}", f.join(", "));
    println!(
        "file size     {:.1} MB, GGUF v{}",
        g.file_size() as f64 / 1e6,
        g.version
    );
    if let Some(c) = g.get_u64(&key("context_length")) {
        println!("context       {c}");
    }
    for (label, k) in [
        ("layers", "block_count"),
        ("embedding", "embedding_length"),
        ("heads", "attention.head_count"),
        ("kv heads", "attention.head_count_kv"),
        ("ffn", "feed_forward_length"),
    ] {
        if let Some(v) = g.get_u64(&key(k)) {
            println!("{label:<13} {v}");
        }
    }
    let g = std::sync::Arc::new(g);
    match owl_model::load_model(&g, &Kernels::detect(), &owl_model::LoadOptions::default()) {
        Ok(m) => {
            // A 4096-token cache for one sequence fed in chunks of the engine's default batch
            // (512): sliding-window layers hold only their window and a chunk.
            let n = 4096;
            let kv = m.new_paged_cache(n, 1, owl_model::kv_cache::pages_for(n), 512);
            let b = kv.bytes_per_position();
            let per = if b < 1024 {
                format!("{b} B")
            } else {
                format!("{:.1} KiB", b as f64 / 1024.0)
            };
            let layers = match kv.window() {
                Some(w) => format!("global layers; sliding layers keep a window of {w}"),
                None => "all layers".to_string(),
            };
            println!(
                "kv cache      {per} per token (f16, {layers}; {:.1} MiB for {n} tokens)",
                kv.bytes() as f64 / (1 << 20) as f64
            );
        }
        Err(e) => println!("runs          no: {e}"),
    }
    if let Some(t) = g.get_str("tokenizer.ggml.model") {
        let n = g
            .get_array("tokenizer.ggml.tokens")
            .map(|a| a.len())
            .unwrap_or(0);
        let pre = g.get_str("tokenizer.ggml.pre").unwrap_or("default");
        println!("tokenizer     {t} ({n} tokens, pre-tokenizer {pre})");
    }
    println!(
        "license       {}",
        g.get_str("general.license").unwrap_or("-")
    );
    match g.get_str("tokenizer.chat_template") {
        Some(t) => {
            println!("template      {} chars:", t.len());
            for line in t.lines().take(12) {
                println!("  {line}");
            }
            if t.lines().count() > 12 {
                println!("  ...");
            }
        }
        None => println!("template      none (use `owl run --raw`)"),
    }
    Ok(())
}

/// `NAME ← parent ← … ← base file`.
fn lineage(r: &owl_store::Resolved) -> String {
    let mut parts = r.lineage.clone();
    let file = r.path.display().to_string();
    if parts.last() != Some(&file) {
        parts.push(file);
    }
    parts.join(" ← ")
}

/// A derived (or Ollama) model's defaults, one line each; its adapter as read against the
/// base file at `base`.
fn print_defaults(d: &owl_store::Defaults, base: &std::path::Path) {
    if let Some(sys) = &d.system {
        let first = sys.lines().next().unwrap_or("");
        let more = if sys.lines().count() > 1 { " …" } else { "" };
        println!("system        {first}{more}");
    }
    for (k, v) in &d.params {
        println!("param         {k} = {v}");
    }
    if let Some(t) = &d.template {
        println!(
            "template src  derived ({} chars; replaces the file's)",
            t.len()
        );
    }
    for a in &d.adapters {
        println!("adapter       {}", a.display());
        match owl_engine::inspect_adapter(base, a) {
            Ok(s) => {
                let ranks: Vec<String> = s.ranks.iter().map(usize::to_string).collect();
                println!("  format      {}", s.format);
                println!("  rank        {}", ranks.join(", "));
                println!("  alpha       {}", s.alpha);
                println!(
                    "  targets     {} ({} matrices over {} layers)",
                    s.targets.join(", "),
                    s.pairs,
                    s.layers
                );
            }
            Err(e) => println!("  unusable    {e}"),
        }
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n => format!("{:.1}K", n as f64 / 1e3),
    }
}

pub fn system() {
    let k = Kernels::detect();
    println!("cpu           {}", cpu_model());
    println!("threads       {} (default)", owl_engine::default_threads());
    println!(
        "isa           {} (OWL_ISA picks another: {})",
        k.isa().name(),
        Isa::all().map(Isa::name).collect::<Vec<_>>().join("|")
    );
    for isa in Isa::all() {
        let def = isa.def();
        let state = match (isa.supported(), isa <= k.isa()) {
            (true, true) => "detected, in use",
            (true, false) if !def.by_default => "detected, opt-in (OWL_ISA)",
            (true, false) => "detected, not used (OWL_ISA)",
            (false, _) => "not detected",
        };
        // AMX needs the kernel's permission as well as the CPU's bits: say which is missing.
        let why = if def.name == "amx" {
            format!(" ({})", owl_kernels::amx::state().describe())
        } else {
            String::new()
        };
        println!("  {:<10}  {:<22} {state}{why}", def.name, def.features);
    }
    println!("kernels");
    for (what, name) in k.chosen() {
        println!("  {what:<28} {name}");
    }
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
