//! The store on the command line: resolving `--model` names for every command (with a
//! progress bar when a model is fetched on first use), and `owl list`, `pull`, `rm`, `cp`,
//! `create`. The store itself is the `owl-store` crate, shared with the server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use owl_store::{DerivedSpec, PullEvent, Resolved, Store, CATALOG, KNOWN_PARAMS};

/// The store named by the environment.
pub fn store() -> Result<Store> {
    Ok(Store::from_env()?)
}

/// Draws `PullEvent`s on stderr: statuses as lines, downloads as progress bars.
pub struct Progress {
    bar: Option<(String, indicatif::ProgressBar)>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress { bar: None }
    }

    pub fn event(&mut self, e: &PullEvent) {
        match e {
            PullEvent::Status(s) => {
                self.finish();
                eprintln!("owl: {s}");
            }
            PullEvent::Progress {
                file,
                completed,
                total,
            } => {
                if self.bar.as_ref().is_none_or(|(f, _)| f != file) {
                    self.finish();
                    let bar = indicatif::ProgressBar::with_draw_target(
                        Some(*total),
                        indicatif::ProgressDrawTarget::stderr(),
                    );
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_message(short(file));
                    self.bar = Some((file.clone(), bar));
                }
                if let Some((_, bar)) = &self.bar {
                    bar.set_length(*total);
                    bar.set_position(*completed);
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn short(file: &str) -> String {
    let n = file.chars().count();
    if n > 32 {
        format!("..{}", file.chars().skip(n - 30).collect::<String>())
    } else {
        file.to_string()
    }
}

/// Resolves `--model` (the default model when `None`), fetching a catalogue model on first
/// use.
pub fn resolve(name: Option<&str>) -> Result<Resolved> {
    let mut p = Progress::new();
    Ok(store()?.resolve_or_fetch(name, &mut |e| p.event(e))?)
}

/// The GGUF for `--model`, for commands that use no derived-model defaults (bench): adapters
/// are refused rather than ignored.
pub fn resolve_path(name: Option<&str>, command: &str) -> Result<PathBuf> {
    let r = resolve(name)?;
    refuse_adapters(&r, command)?;
    Ok(r.path)
}

/// Refuses a model that carries a LoRA adapter, for a command that cannot apply one.
pub fn refuse_adapters(r: &Resolved, command: &str) -> Result<()> {
    if !r.defaults.adapters.is_empty() {
        bail!(
            "model '{}' carries a LoRA adapter ({}); `owl {command}` does not apply adapters \
             (run, chat, serve and perplexity do): use its base model '{}'",
            r.name,
            shown(&r.defaults.adapters),
            r.path.display()
        );
    }
    Ok(())
}

/// The LoRA adapter a model's name carries (a derived model's `--adapter`), if any. owl
/// applies one adapter per model (the engine runs each request with at most one), so a
/// model whose lineage collected several is refused, naming them.
pub fn adapter_of(r: &Resolved) -> Result<Option<&Path>> {
    match &r.defaults.adapters[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        several => bail!(
            "model '{}' carries {} LoRA adapters ({}); owl applies one adapter per model: \
             create a model with a single --adapter",
            r.name,
            several.len(),
            shown(several)
        ),
    }
}

/// The adapter a command applies, and its scale: the model's own (a derived model's
/// `--adapter`, at scale 1) or `--lora`'s (at `--lora-scale`). Both at once is an error: the
/// engine runs a request with one adapter, and silently dropping either would be wrong.
pub fn pick_adapter(r: &Resolved, lora: &crate::cli::LoraArgs) -> Result<Option<(PathBuf, f32)>> {
    Ok(match (adapter_of(r)?, &lora.lora) {
        (Some(own), Some(_)) => bail!(
            "model '{}' already carries a LoRA adapter ({}) and owl applies one adapter at a \
             time: drop --lora, or give --lora with its base model",
            r.name,
            own.display()
        ),
        (Some(own), None) => Some((own.to_path_buf(), 1.0)),
        (None, Some(path)) => Some((path.clone(), lora.lora_scale)),
        (None, None) => None,
    })
}

/// Checks the adapters a derived model of `from` would carry (`owl create --adapter`,
/// `/api/create`): one in all (with any its base carries), and it must read as a GGUF LoRA
/// adapter or a PEFT directory whose tensors match the base model's matrices, by name and
/// shape. The error names the adapter and the mismatch.
pub fn check_adapters(store: &Store, from: &str, adapters: &[PathBuf]) -> Result<()> {
    if adapters.is_empty() {
        return Ok(());
    }
    let base = store.resolve(from)?;
    let inherited = &base.defaults.adapters;
    if inherited.len() + adapters.len() > 1 {
        let all: Vec<PathBuf> = inherited.iter().chain(adapters).cloned().collect();
        bail!(
            "owl applies one LoRA adapter per model, and this one would carry {} ({})",
            all.len(),
            shown(&all)
        );
    }
    for a in adapters {
        // The adapter's errors name their causes already: no chain to repeat them.
        owl_engine::inspect_adapter(&base.path, a)
            .map_err(|e| anyhow::anyhow!("adapter {} does not fit '{from}': {e}", a.display()))?;
    }
    Ok(())
}

fn shown(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|a| a.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `owl pull`: fetches and prints the stored path as the last line of stdout.
pub fn pull(name: Option<&str>) -> Result<()> {
    let name = name.unwrap_or(owl_store::DEFAULT_MODEL);
    let mut p = Progress::new();
    let r = store()?.pull(name, &mut |e| p.event(e))?;
    drop(p);
    println!("{}", r.path.display());
    Ok(())
}

/// `owl list`: everything the store finds, then catalogue models not yet pulled.
pub fn list() -> Result<()> {
    let s = store()?;
    let models = s.list();
    println!(
        "{:<40} {:>9} {:<10} {:<9} {:<14} ORIGIN",
        "NAME", "SIZE", "FAMILY", "QUANT", "MODIFIED"
    );
    let now = SystemTime::now();
    for m in &models {
        println!(
            "{:<40} {:>9} {:<10} {:<9} {:<14} {}",
            m.name,
            human_size(m.size),
            m.family.as_deref().unwrap_or("-"),
            m.quant.as_deref().unwrap_or(match m.format {
                owl_store::ModelFormat::SafetensorsDir => "safetensors",
                owl_store::ModelFormat::Gguf => "-",
            }),
            ago(now, m.modified),
            m.origin
        );
    }
    for e in CATALOG {
        if !s.is_stored(e) {
            println!(
                "{:<40} {:>9} {:<10} {:<9} {:<14} catalog, not pulled: {}",
                e.name, "-", "-", "-", "-", e.description
            );
        }
    }
    Ok(())
}

/// `owl rm`.
pub fn remove(names: &[String]) -> Result<()> {
    let s = store()?;
    for n in names {
        s.remove(n)?;
        eprintln!("owl: removed {n}");
    }
    Ok(())
}

/// `owl cp`.
pub fn copy(from: &str, to: &str) -> Result<()> {
    let m = store()?.copy(from, to)?;
    eprintln!("owl: copied {from} to {} ({})", m.name, m.origin);
    Ok(())
}

/// `owl create`.
pub fn create(a: &crate::cli::CreateArgs) -> Result<()> {
    let mut params = BTreeMap::new();
    for kv in &a.params {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--param {kv:?}: expected KEY=VALUE"))?;
        let k = k.trim();
        if !KNOWN_PARAMS.contains(&k) {
            bail!(
                "--param {k}: unknown parameter; known: {}",
                KNOWN_PARAMS.join(", ")
            );
        }
        let v = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
        // `stop` collects: `--param stop=a --param stop=b`.
        match (k, params.get_mut(k)) {
            ("stop", Some(serde_json::Value::Array(list))) => list.push(v),
            ("stop", None) if !v.is_array() => {
                params.insert(k.to_string(), serde_json::Value::Array(vec![v]));
            }
            _ => {
                params.insert(k.to_string(), v);
            }
        }
    }
    let template = match &a.template {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the template {}", f.display()))?;
            if let Err(e) = owl_text::ChatTemplate::new(&text, "", "") {
                bail!(
                    "--template {}: does not compile: {}",
                    f.display(),
                    first_line(&e.to_string())
                );
            }
            Some(text)
        }
        None => None,
    };
    let spec = DerivedSpec {
        from: a.from.clone(),
        system: a.system.clone(),
        params,
        template,
        adapters: a.adapters.clone(),
    };
    let s = store()?;
    check_adapters(&s, &spec.from, &spec.adapters)?;
    let m = s.create(&a.name, &spec)?;
    eprintln!("owl: created {} ({})", m.name, m.origin);
    Ok(())
}

pub fn human_size(n: u64) -> String {
    match n {
        0 => "-".into(),
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn ago(now: SystemTime, t: SystemTime) -> String {
    let Ok(d) = now.duration_since(t) else {
        return "just now".into();
    };
    let s = d.as_secs();
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} hours ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// The first line of a multi-line message (template errors come with a source excerpt).
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
