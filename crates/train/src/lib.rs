//! owl-train: LoRA fine-tuning of a frozen, quantized base model on a plain CPU.
//!
//! The pieces, each its own module:
//! - [`frozen`]: products with the frozen weights, forward and backward, dequantizing each tile
//!   of rows once per batch (never once per token);
//! - [`ops`]: the differentiable operations of a decoder layer (norms, RoPE, attention,
//!   SwiGLU, cross-entropy), each a forward and its derived backward;
//! - [`lora`]: the trained pairs, their gradients and optimizer moments;
//! - [`model`]: the decoder's forward and backward passes with per-layer checkpointing;
//! - [`adamw`]: the optimizer; [`data`]: chat JSONL to sequences with assistant-only loss;
//! - [`fit`]: the loop; [`adapter_file`]: the adapter (llama.cpp's GGUF adapter format) and
//!   checkpoints.
//!
//! What trains: only the LoRA A/B matrices and their AdamW state, in f32. The base stays in its
//! file's format (Q4_1, Q8_0, Q4_K, F16, …), memory-mapped and never modified.

pub mod adamw;
pub mod adapter_file;
pub mod data;
pub mod fit;
pub mod frozen;
pub mod lora;
pub mod model;
pub mod ops;

pub use adamw::AdamW;
pub use fit::{fit, FitOptions, Observer, Outcome};
pub use lora::LoraSet;
pub use model::{Sequence, TrainModel};

/// Why training could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("owl cannot fine-tune this model: {0}")]
    Unsupported(String),
    #[error("token id {0} is outside the vocabulary")]
    BadToken(u32),
    #[error("{file}, line {line}: {why}")]
    Data {
        file: String,
        line: usize,
        why: String,
    },
    #[error("cannot render the training conversations: {0}")]
    Template(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Gguf(#[from] owl_gguf::GgufError),
    #[error("checkpoint {0} cannot be resumed: {1}")]
    BadCheckpoint(String, String),
}
