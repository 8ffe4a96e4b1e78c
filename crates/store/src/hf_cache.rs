//! The Hugging Face cache (`hub/models--ORG--REPO/{blobs,refs/main,snapshots/<rev>/…}`),
//! found in place and shared with Python tools. Each GGUF in the current snapshot is a model
//! `hf:ORG/REPO:FILE`; a snapshot with `config.json` and `*.safetensors` is one
//! `SafetensorsDir` model `hf:ORG/REPO`, listed but not runnable yet.

use std::path::{Path, PathBuf};

use crate::info::{cheap_digest, gguf_info, stat, ModelFormat, ModelInfo, Origin};
use crate::names::{contains_token, HF_PREFIX};
use crate::StoreError;

/// One model in the cache.
#[derive(Debug, Clone)]
pub struct HfModel {
    pub repo: String,
    /// The GGUF's path inside the snapshot; `None` for a safetensors directory.
    pub file: Option<String>,
    /// The file (through the snapshot's symlink) or the snapshot directory.
    pub path: PathBuf,
}

impl HfModel {
    pub fn name(&self) -> String {
        match &self.file {
            Some(f) => format!("{HF_PREFIX}{}:{f}", self.repo),
            None => format!("{HF_PREFIX}{}", self.repo),
        }
    }

    pub fn info(&self) -> Option<ModelInfo> {
        let origin = Origin::HuggingFace {
            repo: self.repo.clone(),
        };
        if self.file.is_some() {
            return gguf_info(self.name(), &self.path, origin);
        }
        let (_, modified) = stat(&self.path)?;
        let facts = crate::info::dir_facts(&self.path);
        let size = walk(&self.path)
            .iter()
            .filter_map(|(_, p)| stat(p))
            .map(|(s, _)| s)
            .sum();
        Some(ModelInfo {
            name: self.name(),
            path: self.path.clone(),
            size,
            format: ModelFormat::SafetensorsDir,
            family: facts.family,
            quant: facts.quant,
            parameters: None,
            modified,
            origin,
            digest: cheap_digest(&self.path, size, modified),
        })
    }
}

/// The cache folder of a model repository.
pub fn repo_dir(root: &Path, repo: &str) -> PathBuf {
    root.join(format!("models--{}", repo.replace('/', "--")))
}

/// The snapshot `refs/main` points at, else the newest one.
pub fn current_snapshot(repo_dir: &Path) -> Option<PathBuf> {
    let snaps = repo_dir.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo_dir.join("refs").join("main")) {
        let rev = rev.trim();
        if !rev.is_empty() && !rev.contains(['/', '\\']) && snaps.join(rev).is_dir() {
            return Some(snaps.join(rev));
        }
    }
    std::fs::read_dir(&snaps)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .max_by_key(|p| stat(p).map(|(_, t)| t))
}

/// Every file under `dir`: (path relative to `dir` with `/`, full path).
pub(crate) fn walk(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((rel, p)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = e.path();
            if path.is_dir() {
                stack.push((r, path));
            } else if path.is_file() {
                out.push((r, path));
            }
        }
    }
    out.sort();
    out
}

/// The models of one repository's current snapshot.
fn repo_models(root: &Path, repo: &str) -> Vec<HfModel> {
    let Some(snap) = current_snapshot(&repo_dir(root, repo)) else {
        return Vec::new();
    };
    let files = walk(&snap);
    let mut out: Vec<HfModel> = files
        .iter()
        .filter(|(r, _)| r.to_ascii_lowercase().ends_with(".gguf"))
        .map(|(r, p)| HfModel {
            repo: repo.to_string(),
            file: Some(r.clone()),
            path: p.clone(),
        })
        .collect();
    let has = |f: &dyn Fn(&str) -> bool| files.iter().any(|(r, _)| f(r));
    if has(&|r| r == "config.json") && has(&|r| r.ends_with(".safetensors")) {
        out.push(HfModel {
            repo: repo.to_string(),
            file: None,
            path: snap,
        });
    }
    out
}

/// Every model in the cache at `root`.
pub fn scan(root: &Path) -> Vec<HfModel> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return out;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(dir) = e.file_name().into_string() else {
            continue;
        };
        if let Some(rest) = dir.strip_prefix("models--") {
            out.extend(repo_models(root, &rest.replace("--", "/")));
        }
    }
    out
}

/// Splits `ORG/REPO[:QUANT|:FILE]`.
pub fn parse(spec: &str) -> Result<(String, Option<String>), StoreError> {
    let (repo, pick) = match spec.split_once(':') {
        Some((r, p)) => (
            r,
            Some(p.to_string()).filter(|p| !p.is_empty() && p != "latest"),
        ),
        None => (spec, None),
    };
    let segs: Vec<&str> = repo.split('/').collect();
    let ok_seg = |s: &&str| {
        !s.is_empty()
            && *s != "."
            && *s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if segs.is_empty() || segs.len() > 2 || !segs.iter().all(ok_seg) {
        return Err(StoreError::InvalidName {
            name: format!("{HF_PREFIX}{spec}"),
            reason: "expected hf:ORG/REPO[:QUANT|:FILE]".into(),
        });
    }
    if pick
        .as_deref()
        .is_some_and(|p| p.split('/').any(|s| s == ".."))
    {
        return Err(StoreError::InvalidName {
            name: format!("{HF_PREFIX}{spec}"),
            reason: "a file name cannot contain '..'".into(),
        });
    }
    Ok((repo.to_string(), pick))
}

/// Picks the GGUF named by `pick` (a file path, or a quant name matched as a whole word in
/// the file name, case-insensitively) among `files`; with no `pick`, the only GGUF (or the
/// only one not a multimodal projector), else Q4_K_M when there is one.
pub fn pick_gguf<'a>(
    name: &str,
    files: &'a [String],
    pick: Option<&str>,
) -> Result<&'a String, StoreError> {
    let ggufs: Vec<&String> = files
        .iter()
        .filter(|f| f.to_ascii_lowercase().ends_with(".gguf"))
        .collect();
    let list = |v: &[&String]| v.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
    if let Some(p) = pick {
        if let Some(f) = ggufs.iter().find(|f| f.as_str() == p) {
            return Ok(f);
        }
        let base = |f: &str| f.rsplit('/').next().unwrap_or(f).to_string();
        let by_quant: Vec<&String> = ggufs
            .iter()
            .copied()
            .filter(|f| contains_token(&base(f), p) || base(f).eq_ignore_ascii_case(p))
            .collect();
        return match by_quant.as_slice() {
            [one] => Ok(one),
            [] => Err(StoreError::not_found(
                name,
                if ggufs.is_empty() {
                    "the repository has no GGUF file".to_string()
                } else {
                    format!("no GGUF file matches '{p}'; there are: {}", list(&ggufs))
                },
            )),
            many => Err(StoreError::Ambiguous {
                name: name.to_string(),
                reason: format!("'{p}' matches {}; name the file", list(many)),
            }),
        };
    }
    let runnable: Vec<&String> = ggufs
        .iter()
        .copied()
        .filter(|f| {
            !f.rsplit('/')
                .next()
                .unwrap_or(f)
                .to_ascii_lowercase()
                .starts_with("mmproj")
        })
        .collect();
    match runnable.as_slice() {
        [one] => Ok(one),
        [] => Err(StoreError::not_found(
            name,
            "the repository has no GGUF file",
        )),
        many => {
            let q4km: Vec<&String> = many
                .iter()
                .copied()
                .filter(|f| contains_token(f, "Q4_K_M"))
                .collect();
            match q4km.as_slice() {
                [one] => Ok(one),
                _ => Err(StoreError::Ambiguous {
                    name: name.to_string(),
                    reason: format!(
                        "the repository has several GGUF files ({}); add :QUANT or :FILE",
                        list(many)
                    ),
                }),
            }
        }
    }
}

/// The cached model named by `spec` (`ORG/REPO[:QUANT|:FILE]`, without `hf:`).
pub fn find(root: &Path, spec: &str) -> Result<HfModel, StoreError> {
    let name = format!("{HF_PREFIX}{spec}");
    let (repo, pick) = parse(spec)?;
    let models = repo_models(root, &repo);
    if models.is_empty() {
        return Err(StoreError::not_found(
            &name,
            format!(
                "not in the Hugging Face cache {}; run `owl pull {name}`",
                root.display()
            ),
        ));
    }
    let files: Vec<String> = models.iter().filter_map(|m| m.file.clone()).collect();
    let st = models.iter().find(|m| m.file.is_none());
    if pick.is_none() && files.is_empty() {
        if let Some(m) = st {
            return Ok(m.clone());
        }
    }
    let f = pick_gguf(&name, &files, pick.as_deref())?;
    models
        .into_iter()
        .find(|m| m.file.as_ref() == Some(f))
        .ok_or_else(|| StoreError::not_found(&name, ""))
}
