//! [`GgufWriter`]: builds a GGUF v3 file in memory or streams it to disk.
//!
//! Tensor offsets are assigned only when the file is produced, because `general.alignment`
//! may be set after tensors are added. Everything that could make the output unreadable is
//! checked when it is added. `add_kv` has no way to report a bad pair, so it keeps the first
//! one and producing the file reports it: `try_to_bytes`/`write_file` return the error and
//! `to_bytes` panics (it is a caller bug, like indexing out of bounds).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::GgufError;
use crate::file::{align_up, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::tensor::{check_shape, MAX_DIMS};
use crate::types::GgmlType;
use crate::value::{Value, ValueType};

/// The version this writer produces.
pub const WRITE_VERSION: u32 = 3;

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one GGUF v3 file.
#[derive(Default)]
pub struct GgufWriter {
    kvs: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
    names: HashSet<String>,
    /// The first pair [`GgufWriter::add_kv`] refused; validating it again when the file is
    /// produced reports the error (`GgufError` is not `Clone`: it can hold an `io::Error`).
    deferred: Option<(String, Value)>,
}

impl GgufWriter {
    /// An empty writer. Its alignment is 32 unless `general.alignment` is added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces, keeping its position) a metadata pair. An invalid pair (an empty key,
    /// an array mixing element types, a bad `general.alignment`) is not stored; the error is
    /// returned later by [`GgufWriter::write_file`] and [`GgufWriter::try_to_bytes`].
    /// Use [`GgufWriter::try_add_kv`] to see it at once.
    pub fn add_kv(&mut self, key: &str, value: Value) {
        if validate_kv(key, &value).is_err() {
            self.deferred.get_or_insert((key.to_string(), value));
            return;
        }
        self.store_kv(key, value);
    }

    /// [`GgufWriter::add_kv`], returning the error instead of deferring it.
    pub fn try_add_kv(&mut self, key: &str, value: Value) -> Result<(), GgufError> {
        validate_kv(key, &value)?;
        self.store_kv(key, value);
        Ok(())
    }

    fn store_kv(&mut self, key: &str, value: Value) {
        match self.kvs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.kvs.push((key.to_string(), value)),
        }
    }

    /// Adds a tensor; `dims` are in ggml order (`dims[0]` is the row length) and `data` must be
    /// exactly `ty.bytes_for(product(dims))` bytes.
    pub fn add_tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Result<(), GgufError> {
        if self.names.contains(name) {
            return Err(GgufError::DuplicateTensor {
                tensor: name.to_string(),
            });
        }
        if dims.len() > MAX_DIMS as usize {
            return Err(GgufError::TooManyDims {
                tensor: name.to_string(),
                n_dims: u32::try_from(dims.len()).unwrap_or(u32::MAX),
                max: MAX_DIMS,
            });
        }
        let (_, n_bytes) = check_shape(dims, ty).map_err(|reason| GgufError::BadShape {
            tensor: name.to_string(),
            dims: dims.to_vec(),
            reason,
        })?;
        if data.len() as u64 != n_bytes {
            return Err(GgufError::TensorSizeMismatch {
                tensor: name.to_string(),
                expected: n_bytes,
                actual: data.len() as u64,
            });
        }
        self.names.insert(name.to_string());
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            data,
        });
        Ok(())
    }

    /// The whole file.
    ///
    /// # Panics
    /// If [`GgufWriter::add_kv`] was given an invalid pair (see [`GgufWriter::try_to_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.try_to_bytes() {
            Ok(bytes) => bytes,
            Err(e) => panic!("GgufWriter::to_bytes: {e}"),
        }
    }

    /// The whole file, or the first error [`GgufWriter::add_kv`] deferred.
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, GgufError> {
        self.check_deferred()?;
        let alignment = self.alignment();
        let mut out = self.header(alignment);
        for t in &self.tensors {
            out.extend_from_slice(&t.data);
            let padded = align_up(out.len() as u64, alignment).unwrap_or(0);
            out.resize(padded as usize, 0);
        }
        Ok(out)
    }

    /// Streams the file to `path` (created or truncated).
    pub fn write_file(&self, path: &Path) -> Result<(), GgufError> {
        self.check_deferred()?;
        let alignment = self.alignment();
        let file = File::create(path).map_err(|e| GgufError::io(path, e))?;
        let mut w = BufWriter::new(file);
        self.stream(&mut w, alignment)
            .and_then(|()| w.flush())
            .map_err(|e| GgufError::io(path, e))
    }

    fn stream(&self, w: &mut impl Write, alignment: u64) -> std::io::Result<()> {
        w.write_all(&self.header(alignment))?;
        let zeros = vec![0u8; usize::try_from(alignment).unwrap_or(0)];
        for t in &self.tensors {
            w.write_all(&t.data)?;
            w.write_all(padding(&zeros, t.data.len() as u64, alignment))?;
        }
        Ok(())
    }

    fn check_deferred(&self) -> Result<(), GgufError> {
        match &self.deferred {
            Some((key, value)) => validate_kv(key, value),
            None => Ok(()),
        }
    }

    fn alignment(&self) -> u64 {
        self.kvs
            .iter()
            .find(|(k, _)| k == ALIGNMENT_KEY)
            .and_then(|(_, v)| alignment_value(v).ok())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Everything before the data section, padding included.
    fn header(&self, alignment: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&GGUF_MAGIC);
        b.extend_from_slice(&WRITE_VERSION.to_le_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (key, value) in &self.kvs {
            put_str(&mut b, key);
            b.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut b, value);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut b, &t.name);
            b.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&t.ty.id().to_le_bytes());
            b.extend_from_slice(&offset.to_le_bytes());
            let len = t.data.len() as u64;
            offset = align_up(offset.saturating_add(len), alignment).unwrap_or(u64::MAX);
        }
        let pad = align_up(b.len() as u64, alignment).unwrap_or(0) - b.len() as u64;
        b.resize(b.len() + pad as usize, 0);
        b
    }
}

/// The zeros that follow `len` bytes to reach the next multiple of `alignment`.
fn padding(zeros: &[u8], len: u64, alignment: u64) -> &[u8] {
    let pad = (alignment - len % alignment) % alignment;
    zeros.get(..pad as usize).unwrap_or(&[])
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// A value without its type id (arrays carry their element type id inside).
fn put_value(b: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => b.push(*x),
        Value::I8(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => b.push(u8::from(*x)),
        Value::String(s) => put_str(b, s),
        Value::Array(items) => {
            // An empty array still needs an element type; u8 is as good as any.
            let elem = items.first().map_or(ValueType::U8, Value::value_type);
            b.extend_from_slice(&elem.id().to_le_bytes());
            b.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(b, item);
            }
        }
    }
}

fn validate_kv(key: &str, value: &Value) -> Result<(), GgufError> {
    if key.is_empty() {
        return Err(GgufError::EmptyKey { offset: 0 });
    }
    check_homogeneous(key, value)?;
    if key == ALIGNMENT_KEY {
        alignment_value(value)?;
    }
    Ok(())
}

/// GGUF arrays store one element type, so every element must share the first one's type.
fn check_homogeneous(key: &str, v: &Value) -> Result<(), GgufError> {
    let Value::Array(items) = v else {
        return Ok(());
    };
    if let Some(first) = items.first() {
        let ty = first.value_type();
        if let Some(other) = items.iter().find(|x| x.value_type() != ty) {
            return Err(GgufError::MixedArray {
                key: key.to_string(),
                first: ty.name(),
                other: other.type_name(),
            });
        }
    }
    items
        .iter()
        .try_for_each(|item| check_homogeneous(key, item))
}

fn alignment_value(v: &Value) -> Result<u64, GgufError> {
    let value = v.as_u64().ok_or_else(|| GgufError::WrongType {
        key: ALIGNMENT_KEY.to_string(),
        expected: "u32",
        found: v.type_name(),
    })?;
    if value == 0 || !value.is_power_of_two() || value > u64::from(u32::MAX) {
        return Err(GgufError::BadAlignment { value });
    }
    Ok(value)
}
