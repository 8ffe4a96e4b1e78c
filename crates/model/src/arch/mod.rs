//! The architecture registry: one entry per GGUF `general.architecture` value.

mod bert;
mod deepseek2;
mod dense;
mod ernie45moe;
mod gemma3;
mod glm4moe;
mod gpt_oss;
mod llama;
mod nomic_bert;
mod qwen2;
mod qwen3;
mod qwen3moe;
mod routed;

use std::sync::Arc;

use owl_gguf::GgufFile;

use crate::loader::Loader;
use crate::{Model, ModelError};

/// How to build a model of one architecture from a GGUF file.
pub struct ArchEntry {
    pub gguf_arch: &'static str,
    pub load: fn(&Loader<'_>) -> Result<Box<dyn Model>, ModelError>,
}

/// Every architecture owl can run.
pub const ARCHITECTURES: &[ArchEntry] = &[
    ArchEntry {
        gguf_arch: "llama",
        load: llama::load,
    },
    ArchEntry {
        gguf_arch: "qwen2",
        load: qwen2::load,
    },
    ArchEntry {
        gguf_arch: "qwen3",
        load: qwen3::load,
    },
    ArchEntry {
        gguf_arch: "qwen3moe",
        load: qwen3moe::load,
    },
    ArchEntry {
        gguf_arch: "deepseek2",
        load: deepseek2::load,
    },
    ArchEntry {
        gguf_arch: "gpt-oss",
        load: gpt_oss::load,
    },
    ArchEntry {
        gguf_arch: "glm4moe",
        load: glm4moe::load,
    },
    ArchEntry {
        gguf_arch: "ernie4_5-moe",
        load: ernie45moe::load,
    },
    ArchEntry {
        gguf_arch: "gemma3",
        load: gemma3::load,
    },
    ArchEntry {
        gguf_arch: "bert",
        load: bert::load,
    },
    ArchEntry {
        gguf_arch: "nomic-bert",
        load: nomic_bert::load,
    },
];

/// Names of the supported architectures, for error messages.
pub fn names() -> String {
    ARCHITECTURES
        .iter()
        .map(|a| a.gguf_arch)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds the entry for the file's architecture.
pub fn entry_for(file: &Arc<GgufFile>) -> Result<&'static ArchEntry, ModelError> {
    let arch = file
        .get_str("general.architecture")
        .ok_or(ModelError::NoArch)?;
    ARCHITECTURES
        .iter()
        .find(|a| a.gguf_arch == arch)
        .ok_or_else(|| ModelError::UnsupportedArch(arch.to_string(), names()))
}
