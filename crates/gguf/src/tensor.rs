//! Tensor infos: decoding one entry and checking its shape against its type.

use crate::error::{quote, GgufError};
use crate::reader::Cursor;
use crate::types::GgmlType;

/// ggml's GGML_MAX_DIMS.
pub const MAX_DIMS: u32 = 4;

/// The smallest encoded tensor info: name length, n_dims, type id and offset.
pub(crate) const MIN_TENSOR_INFO_SIZE: u64 = 8 + 4 + 4 + 8;

/// Where one tensor lives and what it holds. Every field was validated when the file was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous row length.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Relative to the start of the data section; a multiple of the file's alignment.
    pub offset: u64,
    /// The product of `dims` (1 for a tensor with no dims).
    pub n_elements: u64,
    /// Bytes the data occupies (`ty.bytes_for(n_elements)`).
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Builds an info from a shape, checking what [`check_shape`] checks.
    pub(crate) fn new(
        name: String,
        dims: Vec<u64>,
        ty: GgmlType,
        offset: u64,
    ) -> Result<TensorInfo, GgufError> {
        let (n_elements, n_bytes) = match check_shape(&dims, ty) {
            Ok(sizes) => sizes,
            Err(reason) => {
                return Err(GgufError::BadShape {
                    tensor: name,
                    dims,
                    reason,
                })
            }
        };
        Ok(TensorInfo {
            name,
            dims,
            ty,
            offset,
            n_elements,
            n_bytes,
        })
    }
}

/// (n_elements, n_bytes) for a shape, or why the shape is unusable: a dim above `i64::MAX`, a
/// product that overflows `i64` (zero dims are counted as one, so no partial product a consumer
/// might form can overflow either), a row that is not a whole number of blocks, or a byte size
/// that overflows.
pub(crate) fn check_shape(dims: &[u64], ty: GgmlType) -> Result<(u64, u64), String> {
    if dims.len() > MAX_DIMS as usize {
        return Err(format!("more than {MAX_DIMS} dimensions"));
    }
    let limit = i64::MAX as u64;
    let mut bound: u64 = 1;
    let mut n_elements: u64 = 1;
    for &d in dims {
        bound = bound
            .checked_mul(d.max(1))
            .filter(|&b| b <= limit)
            .ok_or_else(|| "element count overflows".to_string())?;
        n_elements = n_elements.saturating_mul(d);
    }
    let row = dims.first().copied().unwrap_or(1);
    let block = ty.block_size() as u64;
    if row % block != 0 {
        return Err(format!(
            "row length {row} is not a multiple of the {ty} block size {block}"
        ));
    }
    let n_bytes = ty
        .bytes_for(n_elements)
        .ok_or_else(|| "byte size overflows".to_string())?;
    Ok((n_elements, n_bytes))
}

/// Reads one tensor info: name, n_dims, dims, type id, offset.
pub(crate) fn read_tensor_info(c: &mut Cursor<'_>) -> Result<TensorInfo, GgufError> {
    let name = c.string("tensor name")?;
    let n_dims = c.u32(&format!("n_dims of tensor {}", quote(&name)))?;
    if n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            tensor: name,
            n_dims,
            max: MAX_DIMS,
        });
    }
    let what = format!("dims of tensor {}", quote(&name));
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(&what)?);
    }
    let id = c.u32(&format!("type of tensor {}", quote(&name)))?;
    let Some(ty) = GgmlType::from_id(id) else {
        return Err(GgufError::UnknownTensorType { tensor: name, id });
    };
    let offset = c.u64(&format!("offset of tensor {}", quote(&name)))?;
    TensorInfo::new(name, dims, ty, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(check_shape(&[], GgmlType::F32), Ok((1, 4)));
        assert_eq!(check_shape(&[64, 3], GgmlType::Q8_0), Ok((192, 204)));
        assert_eq!(check_shape(&[0, 5], GgmlType::F16), Ok((0, 0)));
        assert!(check_shape(&[32, 3], GgmlType::Q4_K).is_err());
        assert!(check_shape(&[1 << 32, 1 << 31], GgmlType::F32).is_err());
        assert!(check_shape(&[0, 1 << 40, 1 << 40], GgmlType::F32).is_err());
        assert!(check_shape(&[u64::MAX], GgmlType::I8).is_err());
        // 2^62 elements fit i64, but 2^62 * 8 bytes does not fit u64.
        assert!(check_shape(&[1 << 62], GgmlType::F64).is_err());
        assert!(check_shape(&[1; 5], GgmlType::F32).is_err());
    }
}
