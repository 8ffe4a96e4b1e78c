//! `StoreError`: every way finding, fetching or changing a model can fail, each a one-line
//! message that names the model or file, so front ends print it as is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid model name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("unknown model '{name}'{hint}")]
    NotFound { name: String, hint: String },
    #[error("model file '{}' not found", path.display())]
    NoFile { path: PathBuf },
    #[error("model '{name}' is not in the store; run `owl pull {name}`")]
    NotPulled { name: String },
    #[error("'{name}' is ambiguous: {reason}")]
    Ambiguous { name: String, reason: String },
    #[error("cannot remove '{name}': it belongs to {owner}; {how}")]
    NotOwned {
        name: String,
        owner: &'static str,
        how: String,
    },
    #[error("model '{name}' already exists ({what})")]
    Exists { name: String, what: String },
    #[error("derived model '{name}' has a cycle: {}", chain.join(" ← "))]
    Cycle { name: String, chain: Vec<String> },
    #[error("model '{name}' is the base of {}; remove those first", dependents.join(", "))]
    InUse {
        name: String,
        dependents: Vec<String>,
    },
    #[error("unknown parameter '{key}' for '{name}'; known: {}", known.join(", "))]
    UnknownParam {
        name: String,
        key: String,
        known: Vec<&'static str>,
    },
    #[error("adapter {} for '{name}' not found", path.display())]
    MissingAdapter { name: String, path: PathBuf },
    #[error("manifest {} of '{name}' is invalid: {reason}", path.display())]
    BadManifest {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not fetch '{name}': {reason}")]
    Fetch { name: String, reason: String },
    #[error("downloaded '{name}' has sha256 {got}, expected {expected}: the file was not stored")]
    Checksum {
        name: String,
        got: String,
        expected: String,
    },
    #[error("cannot find the home directory: neither {var} nor HOME is set")]
    NoHome { var: &'static str },
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn not_found(name: &str, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        StoreError::NotFound {
            name: name.to_string(),
            hint: if hint.is_empty() {
                hint
            } else {
                format!(": {hint}")
            },
        }
    }
}
