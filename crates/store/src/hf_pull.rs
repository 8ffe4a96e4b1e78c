//! `pull hf:ORG/REPO[:QUANT|:FILE]`: downloads from the Hugging Face Hub into the shared HF
//! cache with the `hf-hub` crate's blocking client (resumable: an interrupted download keeps
//! its `blobs/<etag>.part` and continues with a Range request). `HF_ENDPOINT` and `HF_TOKEN`
//! are honoured (the token file `$HF_HOME/token` too). A GGUF repository gives one file,
//! picked by quant or name; a safetensors repository gives its whole directory (config,
//! tokenizer, weights).

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::api::Progress;
use hf_hub::{Cache, Repo, RepoType};

use crate::hf_cache::{self, pick_gguf};
use crate::names::HF_PREFIX;
use crate::{PullEvent, StoreError};

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Which Hub to pull from, and as whom.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    /// `HF_ENDPOINT`; `https://huggingface.co` when `None`.
    pub endpoint: Option<String>,
    /// `HF_TOKEN`; when `None`, the token file next to the cache (`$HF_HOME/token`) if any.
    pub token: Option<String>,
}

impl Hub {
    pub fn from_env() -> Hub {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Hub {
            endpoint: var("HF_ENDPOINT"),
            token: var("HF_TOKEN"),
        }
    }
}

/// Turns `hf-hub`'s progress calls into `PullEvent`s.
struct Reporter<'a> {
    sink: &'a mut dyn FnMut(&PullEvent),
    file: String,
    completed: u64,
    total: u64,
}

impl Progress for Reporter<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.total = size as u64;
        self.completed = 0;
    }

    fn update(&mut self, size: usize) {
        self.completed += size as u64;
        (self.sink)(&PullEvent::Progress {
            file: self.file.clone(),
            completed: self.completed.min(self.total),
            total: self.total,
        });
    }

    fn finish(&mut self) {}
}

/// Files of a safetensors repository owl keeps: config, tokenizer, weights.
fn wanted_for_dir(f: &str) -> bool {
    let lower = f.to_ascii_lowercase();
    !lower.contains('/')
        && (lower.ends_with(".json")
            || lower.ends_with(".safetensors")
            || lower.ends_with(".model")
            || lower.ends_with(".tiktoken")
            || lower.ends_with(".txt")
            || lower.ends_with(".jinja"))
}

/// Downloads `spec` (`ORG/REPO[:QUANT|:FILE]`) into the cache at `hub_root`; returns the GGUF
/// file, or the snapshot directory of a safetensors repository.
pub fn pull(
    hub: &Hub,
    hub_root: &Path,
    spec: &str,
    progress: &mut dyn FnMut(&PullEvent),
) -> Result<PathBuf, StoreError> {
    let name = format!("{HF_PREFIX}{spec}");
    let (repo_id, pick) = hf_cache::parse(spec)?;
    let fail = |reason: String| StoreError::Fetch {
        name: name.clone(),
        reason,
    };
    let endpoint = hub.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    let mut builder = ApiBuilder::from_cache(Cache::new(hub_root.to_path_buf()))
        .with_progress(false)
        // A dropped connection mid-file continues from where it stopped (Range request).
        .with_retries(3)
        .with_endpoint(endpoint.trim_end_matches('/').to_string());
    if let Some(token) = &hub.token {
        builder = builder.with_token(Some(token.clone()));
    }
    let api = builder.build().map_err(|e| fail(e.to_string()))?;
    let repo = api.repo(Repo::new(repo_id.clone(), RepoType::Model));
    progress(&PullEvent::Status(format!(
        "looking up {repo_id} on {}",
        api_host(endpoint)
    )));
    let info = repo
        .info()
        .map_err(|e| fail(format!("cannot read the repository's file list: {e}")))?;
    let files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let snapshot = hf_cache::repo_dir(hub_root, &repo_id)
        .join("snapshots")
        .join(&info.sha);
    let has_gguf = files
        .iter()
        .any(|f| f.to_ascii_lowercase().ends_with(".gguf"));
    let is_dir = files.iter().any(|f| f == "config.json")
        && files.iter().any(|f| f.ends_with(".safetensors"));
    let chosen: Vec<String> = if has_gguf || pick.is_some() || !is_dir {
        vec![pick_gguf(&name, &files, pick.as_deref())?.clone()]
    } else {
        files
            .iter()
            .filter(|f| wanted_for_dir(f))
            .cloned()
            .collect()
    };
    let mut last = snapshot.clone();
    for f in &chosen {
        let cached = snapshot.join(f);
        if cached.is_file() {
            progress(&PullEvent::Status(format!("{f} is already in the cache")));
            last = cached;
            continue;
        }
        progress(&PullEvent::Status(format!("downloading {f}")));
        let reporter = Reporter {
            sink: &mut *progress,
            file: f.clone(),
            completed: 0,
            total: 0,
        };
        last = repo
            .download_with_progress(f, reporter)
            .map_err(|e| fail(format!("downloading {f}: {e}")))?;
    }
    if chosen.len() == 1 && has_gguf {
        Ok(last)
    } else {
        Ok(snapshot)
    }
}

fn api_host(endpoint: &str) -> &str {
    endpoint
        .split("://")
        .nth(1)
        .unwrap_or(endpoint)
        .trim_end_matches('/')
}
