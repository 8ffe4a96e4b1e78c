//! Why an adapter could not be loaded, naming its file and tensor.

#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    #[error("{file}: not a LoRA adapter ({why})")]
    NotAdapter { file: String, why: String },
    #[error("{file}: tensor '{tensor}': {why}")]
    BadTensor {
        file: String,
        tensor: String,
        why: String,
    },
    #[error("{file}: tensor '{tensor}' has shape {got:?} but the base model needs {want:?} (is this adapter for another base model?)")]
    Shape {
        file: String,
        tensor: String,
        got: Vec<u64>,
        want: Vec<u64>,
    },
    #[error("{file}: tensor '{tensor}' adapts a matrix this model has no adaptable counterpart for (owl adapts {supported})")]
    NoTarget {
        file: String,
        tensor: String,
        supported: String,
    },
    #[error("{file}: the adapter has no LoRA tensors")]
    Empty { file: String },
    #[error("the '{arch}' architecture does not support LoRA adapters in owl")]
    Unsupported { arch: String },
    #[error("LoRA scale {0} is not a finite number")]
    BadScale(f32),
}
