//! `owl serve`: resolve the models and options, then hand over to `owl-server`.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use owl_server::{KeepAlive, ModelOptions, ServeOptions};

use crate::cli::ServeArgs;
use crate::serve_catalog::{served_id, StoreCatalog};

pub fn run(a: ServeArgs) -> Result<()> {
    if a.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    if a.queue == 0 {
        bail!("--queue must be at least 1");
    }
    if a.ctx_size == Some(0) {
        bail!("--ctx-size must be at least 1");
    }
    for o in &a.cors_origins {
        let url_like = (o.starts_with("http://") || o.starts_with("https://"))
            && !o.ends_with('/')
            && o.bytes().all(|b| b.is_ascii_graphic());
        if o != "*" && !url_like {
            bail!("--cors-origin {o:?}: give a scheme and host like https://app.example (no path, no trailing slash), or *");
        }
    }
    let keep_alive =
        KeepAlive::parse(&a.keep_alive).map_err(|e| anyhow::anyhow!("--keep-alive: {e}"))?;
    let max_memory = match &a.max_memory {
        Some(m) => parse_bytes(m).with_context(|| format!("--max-memory {m:?}"))?,
        None => available_memory().map_or(u64::MAX, |b| b / 4 * 3),
    };
    if !a.lora.is_empty() && a.model.len() > 1 {
        bail!("--lora adapts the default model: give it with one --model");
    }
    let store = crate::models::store()?;
    let mut named = Vec::new();
    if a.model.is_empty() {
        let r = crate::models::resolve(None)?;
        named.push((r.name.clone(), r));
    }
    for m in &a.model {
        let r = crate::models::resolve(Some(m))?;
        // A model carrying adapters is refused now if owl cannot apply them (several).
        crate::models::adapter_of(&r)?;
        named.push((served_id(m, &r), r));
    }
    if let Some((id, r)) = named.first() {
        if !a.lora.is_empty() && !r.defaults.adapters.is_empty() {
            bail!(
                "--lora adapts the default model, but '{id}' carries a LoRA adapter of its own \
                 and owl applies one adapter per request: serve its base model with --lora"
            );
        }
    }
    let default_model = named.first().map(|(id, _)| id.clone());
    let first_path = named
        .first()
        .map(|(_, r)| r.path.clone())
        .unwrap_or_default();
    owl_server::run(ServeOptions {
        engine: ModelOptions {
            path: first_path,
            threads: a.threads.unwrap_or_else(owl_engine::default_threads).max(1),
            ctx_size: a.ctx_size,
            parallel: a.parallel,
            queue: a.queue,
            kv_tokens: a.kv_tokens,
            quantize: crate::cli::quantize_at_load(a.quantize.as_deref(), false)?,
            spec: a.spec.config()?,
            draft_model: match &a.spec.draft_model {
                Some(m) => Some(crate::models::resolve(Some(m))?.path),
                None => None,
            },
        },
        catalog: Arc::new(StoreCatalog::new(store, named)),
        default_model,
        keep_alive,
        max_memory,
        host: a.host,
        port: a.port,
        api_key: a.api_key.filter(|k| !k.is_empty()),
        cors_origins: a.cors_origins,
        adapters: a.lora,
    })
}

/// Parses a byte count such as `8G`, `512M`, `1.5GiB`, `1000000`.
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("give a size such as 8G or 512M"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => bail!("unknown unit {u:?}: use K, M, G or T"),
    };
    if !v.is_finite() || v <= 0.0 {
        bail!("the size must be positive");
    }
    Ok((v * mult as f64) as u64)
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
