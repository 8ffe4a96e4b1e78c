//! [`HfError`]: why a Hugging Face directory could not be read, naming the file and field.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HfError {
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: invalid JSON: {source}", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("{}: {why}", .path.display())]
    Safetensors { path: PathBuf, why: String },

    #[error("{} is missing (a Hugging Face model directory needs config.json, tokenizer.json and *.safetensors)", .0.display())]
    MissingFile(PathBuf),

    #[error("config.json: `{key}` {why}")]
    BadConfig { key: String, why: String },

    #[error("{0}")]
    Unsupported(String),

    #[error("tensor `{0}` is missing")]
    MissingTensor(String),

    #[error("tensor `{name}`: {why}")]
    BadTensor { name: String, why: String },

    #[error(transparent)]
    Gguf(#[from] owl_gguf::GgufError),
}
