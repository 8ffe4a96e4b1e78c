//! Weight loading with shape and type checks: every tensor is validated before the first
//! forward pass, so a malformed model fails at load with a message naming the tensor.

use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_kernels::{Kernels, QMatrix, WeightBytes};

use crate::ModelError;

/// How weights are held in memory.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Copy weights out of the memory map into owned buffers (default: borrow the map).
    pub copy_weights: bool,
    /// Keep every matrix in the file's row layout instead of repacking `Q4_0`/`Q4_1`/`Q5_0`/`Q4_K`/
    /// `Q5_K`/`Q6_K`/`Q8_0` into the faster eight-row layouts: slower, but quantized products then sum in
    /// exactly the order of ggml's row-layout kernels (llama.cpp's numbers bit for bit where
    /// llama.cpp itself does not repack). `OWL_NO_REPACK=1` sets it for the CLI and server.
    pub no_repack: bool,
    /// With tied embeddings, let the output head read `token_embd`'s bytes in the row layout
    /// (one copy) instead of a repacked copy of its own. The copy costs the embedding's size in
    /// memory (29 MiB for SmolLM2-135M, 170 MiB for Gemma 3 270M) and makes the head ~1.3×
    /// faster wherever a pass computes several logit rows: batched decoding, speculative
    /// checks. `OWL_TIED_HEAD=shared` sets it.
    pub shared_tied_head: bool,
}

impl LoadOptions {
    /// The defaults, with `no_repack` taken from the `OWL_NO_REPACK` environment variable
    /// (set and not `0`).
    pub fn from_env() -> LoadOptions {
        LoadOptions {
            no_repack: std::env::var_os("OWL_NO_REPACK").is_some_and(|v| !v.is_empty() && v != "0"),
            shared_tied_head: std::env::var_os("OWL_TIED_HEAD").is_some_and(|v| v == "shared"),
            ..LoadOptions::default()
        }
    }
}

pub struct Loader<'a> {
    pub file: &'a Arc<GgufFile>,
    pub kernels: &'a Kernels,
    pub opts: &'a LoadOptions,
}

impl Loader<'_> {
    fn dims(&self, name: &str) -> Result<&owl_gguf::TensorInfo, ModelError> {
        self.file
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_some()
    }

    /// The tensor `name`, checked to have GGUF dims `want` and a type `linear` supports.
    fn weight(&self, name: &str, want: Vec<u64>) -> Result<&owl_gguf::TensorInfo, ModelError> {
        let info = self.dims(name)?;
        if info.dims != want {
            return Err(ModelError::BadShape {
                name: name.into(),
                got: info.dims.clone(),
                want,
            });
        }
        if !self.kernels.supports(info.ty) {
            return Err(ModelError::UnsupportedType {
                name: name.into(),
                ty: info.ty,
            });
        }
        Ok(info)
    }

    /// `len` bytes at `offset` into the tensor: borrowed from the map, or copied.
    fn bytes(&self, info: &owl_gguf::TensorInfo, offset: usize, len: usize) -> WeightBytes {
        if self.opts.copy_weights {
            let data = self.file.tensor_data(info);
            WeightBytes::Owned(Arc::new(data[offset..offset + len].to_vec()))
        } else {
            WeightBytes::Mapped {
                file: Arc::clone(self.file),
                offset: info.offset as usize + offset,
                len,
            }
        }
    }

    /// A `rows × cols` matrix (GGUF dims `[cols, rows]`) in a format `linear` supports, in the
    /// fastest layout `linear` has for it (see [`Loader::prepared`]).
    pub fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<QMatrix, ModelError> {
        let info = self.weight(name, vec![cols as u64, rows as u64])?;
        Ok(self.prepared(QMatrix::new(
            info.ty,
            rows,
            cols,
            self.bytes(info, 0, info.n_bytes as usize),
        )))
    }

    /// A matrix in the file's row layout (for matrices also read row by row: embeddings).
    fn row_matrix(&self, name: &str, cols: usize, rows: usize) -> Result<QMatrix, ModelError> {
        let info = self.weight(name, vec![cols as u64, rows as u64])?;
        Ok(QMatrix::new(
            info.ty,
            rows,
            cols,
            self.bytes(info, 0, info.n_bytes as usize),
        ))
    }

    /// `m` repacked into a faster layout when one exists for its type and shape (a type of
    /// `owl_kernels::repack::PACKED` with rows in groups of eight), else `m`. The repacked copy replaces the mapped bytes, whose
    /// pages are handed back to the OS so resident memory holds the weights once.
    fn prepared(&self, m: QMatrix) -> QMatrix {
        if self.opts.no_repack {
            return m;
        }
        match m.repacked() {
            Some(r) => {
                if let WeightBytes::Mapped { offset, len, .. } = &m.bytes {
                    self.file.release(*offset, *len);
                }
                r
            }
            None => m,
        }
    }

    /// The `n` expert matrices (`rows × cols` each) of a 3-D tensor with GGUF dims
    /// `[cols, rows, n]`, each a view of its slice of the tensor's bytes.
    pub fn experts(
        &self,
        name: &str,
        cols: usize,
        rows: usize,
        n: usize,
    ) -> Result<Vec<QMatrix>, ModelError> {
        let info = self.weight(name, vec![cols as u64, rows as u64, n as u64])?;
        let per = owl_quant::row_bytes(info.ty, cols) * rows;
        Ok((0..n)
            .map(|i| {
                self.prepared(QMatrix::new(
                    info.ty,
                    rows,
                    cols,
                    self.bytes(info, i * per, per),
                ))
            })
            .collect())
    }

    /// The `[cols, sum(rows)]` matrix `name` cut into consecutive blocks of `rows[i]` rows,
    /// each a view of its slice of the bytes (row layout keeps rows contiguous), prepared like
    /// any matrix: a product with each block equals the fused product's rows bit for bit.
    pub fn split_rows<const N: usize>(
        &self,
        name: &str,
        cols: usize,
        rows: [usize; N],
    ) -> Result<[QMatrix; N], ModelError> {
        let total: usize = rows.iter().sum();
        let info = self.weight(name, vec![cols as u64, total as u64])?;
        let row = owl_quant::row_bytes(info.ty, cols);
        let mut start = 0;
        Ok(rows.map(|n| {
            let m = QMatrix::new(info.ty, n, cols, self.bytes(info, start * row, n * row));
            start += n;
            self.prepared(m)
        }))
    }

    /// A vector of `len` values, dequantized to f32 (norm weights, biases).
    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        self.values(name, vec![len as u64], len)
    }

    /// `rows` vectors of `cols` values (GGUF dims `[cols, rows]`), dequantized to f32 and
    /// concatenated (per-expert biases).
    pub fn vectors(&self, name: &str, cols: usize, rows: usize) -> Result<Vec<f32>, ModelError> {
        self.values(name, vec![cols as u64, rows as u64], cols * rows)
    }

    fn values(&self, name: &str, want: Vec<u64>, len: usize) -> Result<Vec<f32>, ModelError> {
        let info = self.dims(name)?;
        if info.dims != want {
            return Err(ModelError::BadShape {
                name: name.into(),
                got: info.dims.clone(),
                want,
            });
        }
        let format = owl_quant::format(info.ty).ok_or(ModelError::UnsupportedType {
            name: name.into(),
            ty: info.ty,
        })?;
        let mut out = vec![0.0f32; len];
        (format.dequantize)(self.file.tensor_data(info), &mut out);
        Ok(out)
    }

    /// `name` as a vector of `len` if the file has it (optional biases).
    pub fn optional_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        if self.has(name) {
            Ok(Some(self.vector(name, len)?))
        } else {
            Ok(None)
        }
    }

    /// `token_embd.weight`, kept in the file's row layout: the decoder reads it row by row
    /// (`QMatrix::dequantize_row`), which a repacked layout cannot serve. Every architecture
    /// loads its token embedding through here, never through [`Loader::matrix`].
    pub fn token_embd(&self, n_embd: usize, n_vocab: usize) -> Result<QMatrix, ModelError> {
        self.row_matrix("token_embd.weight", n_embd, n_vocab)
    }

    /// `position_embd.weight` (absolute position embeddings of encoders), in the row layout
    /// like `token_embd`: it is read row by row.
    pub fn position_embd(&self, n_embd: usize, n_pos: usize) -> Result<QMatrix, ModelError> {
        self.row_matrix("position_embd.weight", n_embd, n_pos)
    }

    /// `token_embd` and the output head. When the file has no `output.weight` (tied
    /// embeddings) the head is a repacked copy of `token_embd` (which must stay in the row
    /// layout for lookups), or shares its bytes with `no_repack` / `shared_tied_head`.
    pub fn embeddings(
        &self,
        n_embd: usize,
        n_vocab: usize,
    ) -> Result<(QMatrix, QMatrix), ModelError> {
        let token_embd = self.token_embd(n_embd, n_vocab)?;
        let output = if self.has("output.weight") {
            self.matrix("output.weight", n_embd, n_vocab)?
        } else if !self.opts.no_repack && !self.opts.shared_tied_head {
            token_embd.repacked().unwrap_or_else(|| token_embd.clone())
        } else {
            token_embd.clone()
        };
        Ok((token_embd, output))
    }
}
