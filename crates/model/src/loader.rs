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

    /// A `rows × cols` matrix (GGUF dims `[cols, rows]`) in a format `linear` supports.
    pub fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<QMatrix, ModelError> {
        let info = self.dims(name)?;
        let want = vec![cols as u64, rows as u64];
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
        let data = self.file.tensor_data(info);
        let bytes = if self.opts.copy_weights {
            WeightBytes::Owned(Arc::new(data.to_vec()))
        } else {
            WeightBytes::Mapped {
                file: Arc::clone(self.file),
                offset: info.offset as usize,
                len: info.n_bytes as usize,
            }
        };
        Ok(QMatrix {
            ty: info.ty,
            rows,
            cols,
            bytes,
        })
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
        let info = self.dims(name)?;
        let want = vec![cols as u64, rows as u64, n as u64];
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
        let per = owl_quant::row_bytes(info.ty, cols) * rows;
        let data = self.file.tensor_data(info);
        (0..n)
            .map(|i| {
                let bytes = if self.opts.copy_weights {
                    WeightBytes::Owned(Arc::new(data[i * per..(i + 1) * per].to_vec()))
                } else {
                    WeightBytes::Mapped {
                        file: Arc::clone(self.file),
                        offset: info.offset as usize + i * per,
                        len: per,
                    }
                };
                Ok(QMatrix {
                    ty: info.ty,
                    rows,
                    cols,
                    bytes,
                })
            })
            .collect()
    }

    /// A vector of `len` values, dequantized to f32 (norm weights, biases).
    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let info = self.dims(name)?;
        if info.dims != [len as u64] {
            return Err(ModelError::BadShape {
                name: name.into(),
                got: info.dims.clone(),
                want: vec![len as u64],
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
}
