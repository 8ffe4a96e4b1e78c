//! [`GgufFile`]: a parsed header over memory-mapped (or owned) bytes.
//!
//! Opening parses the whole header and validates every tensor against the data section, so
//! afterwards `tensor_data` is a plain, infallible slice of the map.

use std::collections::HashMap;
use std::path::Path;

use crate::error::GgufError;
use crate::kv::{read_metadata, Metadata};
use crate::reader::Cursor;
use crate::storage::Storage;
use crate::tensor::{read_tensor_info, TensorInfo, MIN_TENSOR_INFO_SIZE};
use crate::value::Value;

/// The magic every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Data-section alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides [`DEFAULT_ALIGNMENT`].
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// An opened GGUF v2/v3 file.
pub struct GgufFile {
    pub version: u32,
    /// Alignment of the data section and of every tensor offset.
    pub alignment: u64,
    storage: Storage,
    metadata: Vec<(String, Value)>,
    kv_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    /// File offset of the data section (clamped to the file size when no data follows).
    data_offset: usize,
}

impl GgufFile {
    /// Memory-maps and parses the file at `path`. The file must not be modified while the
    /// returned value is alive.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        GgufFile::parse(Storage::map(path)?)
    }

    /// Parses a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        GgufFile::parse(Storage::Owned(bytes))
    }

    /// A file put together by [`crate::GgufAssembler`], whose parts were checked as added.
    pub(crate) fn assembled(
        metadata: Vec<(String, Value)>,
        kv_index: HashMap<String, usize>,
        tensors: Vec<TensorInfo>,
        tensor_index: HashMap<String, usize>,
        storage: Storage,
        alignment: u64,
    ) -> GgufFile {
        GgufFile {
            version: 3,
            alignment,
            storage,
            metadata,
            kv_index,
            tensors,
            tensor_index,
            data_offset: 0,
        }
    }

    fn parse(storage: Storage) -> Result<GgufFile, GgufError> {
        let bytes = storage.as_slice();
        let mut c = Cursor::new(bytes);
        let version = read_preamble(&mut c)?;
        let n_tensors = c.count(MIN_TENSOR_INFO_SIZE, "tensor_count")?;
        let Metadata { entries, index } = read_metadata(&mut c)?;
        let alignment = alignment_of(&entries, &index)?;

        let mut tensors = Vec::with_capacity(n_tensors);
        let mut tensor_index = HashMap::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let info = read_tensor_info(&mut c)?;
            if tensor_index.contains_key(&info.name) {
                return Err(GgufError::DuplicateTensor { tensor: info.name });
            }
            tensor_index.insert(info.name.clone(), tensors.len());
            tensors.push(info);
        }

        let data_offset = align_up(c.pos() as u64, alignment)
            .and_then(|o| usize::try_from(o).ok())
            .map_or(bytes.len(), |o| o.min(bytes.len()));
        let data_len = (bytes.len() - data_offset) as u64;
        for t in &tensors {
            check_placement(t, alignment, data_len)?;
        }

        Ok(GgufFile {
            version,
            alignment,
            metadata: entries,
            kv_index: index,
            tensors,
            tensor_index,
            data_offset,
            storage,
        })
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        let i = *self.kv_index.get(key)?;
        self.metadata.get(i).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Any integer value that fits in a `u32`.
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        u32::try_from(self.get(key)?.as_u64()?).ok()
    }

    /// Any non-negative integer value.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// Any integer value that fits in an `i64`.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// An F32 or F64 value (or an integer), as `f32`.
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key)?.as_f64().map(|v| v as f32)
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    pub fn get_array(&self, key: &str) -> Option<&[Value]> {
        self.get(key)?.as_array()
    }

    /// `None` unless the value is an array whose elements are all strings.
    pub fn get_str_array(&self, key: &str) -> Option<Vec<&str>> {
        self.get_array(key)?.iter().map(Value::as_str).collect()
    }

    /// `None` unless the value is an array of integers that all fit in an `i32`.
    pub fn get_i32_array(&self, key: &str) -> Option<Vec<i32>> {
        self.get_array(key)?
            .iter()
            .map(|v| i32::try_from(v.as_i64()?).ok())
            .collect()
    }

    /// `None` unless the value is an array of numbers.
    pub fn get_f32_array(&self, key: &str) -> Option<Vec<f32>> {
        self.get_array(key)?
            .iter()
            .map(|v| v.as_f64().map(|f| f as f32))
            .collect()
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(*self.tensor_index.get(name)?)
    }

    /// The bytes of a tensor of this file, without copying. Infos of this file were checked
    /// at open; an info from elsewhere that does not fit yields an empty slice.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        match (usize::try_from(info.offset), usize::try_from(info.n_bytes)) {
            (Ok(offset), Ok(len)) => self.data_bytes(offset, len),
            _ => &[],
        }
    }

    /// `len` bytes at `offset` into the data section, without copying; empty when the range
    /// is outside it (or, in an assembled file, spans two of its parts).
    pub fn data_bytes(&self, offset: usize, len: usize) -> &[u8] {
        offset
            .checked_add(self.data_offset)
            .and_then(|o| self.storage.get(o, len))
            .unwrap_or(&[])
    }

    /// Everything from the (aligned) start of the data section to the end of the file; empty
    /// for an assembled file, whose data lives in several buffers (use [`Self::data_bytes`]).
    pub fn data_section(&self) -> &[u8] {
        self.storage
            .as_slice()
            .get(self.data_offset..)
            .unwrap_or(&[])
    }

    /// Tells the OS that `len` bytes at `offset` into the data section will not be read for a
    /// while (their contents were copied elsewhere, e.g. repacked): the pages leave this
    /// process's resident set and are read from the file again if touched. A no-op for owned
    /// bytes or a range outside the file.
    pub fn release(&self, offset: usize, len: usize) {
        self.storage
            .release(self.data_offset.saturating_add(offset), len);
    }

    /// File offset at which the data section starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset as u64
    }

    /// Bytes of the file (of its tensors, for an assembled file).
    pub fn file_size(&self) -> u64 {
        self.storage.len() as u64
    }

    /// Whether the bytes are a memory map (from [`GgufFile::open`]) rather than owned.
    pub fn is_mapped(&self) -> bool {
        self.storage.is_mapped()
    }
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("file_size", &self.file_size())
            .field("n_kv", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .finish_non_exhaustive()
    }
}

/// Magic and version; returns the version.
fn read_preamble(c: &mut Cursor<'_>) -> Result<u32, GgufError> {
    let magic = c.take(4, "magic")?;
    if magic != GGUF_MAGIC {
        let magic = <[u8; 4]>::try_from(magic).map_or(0, u32::from_le_bytes);
        return Err(GgufError::BadMagic { magic });
    }
    let version = c.u32("version")?;
    // A small version written big-endian reads as 0xVV000000 (this is llama.cpp's test too).
    if version != 0 && version & 0xffff == 0 {
        return Err(GgufError::BigEndian { raw: version });
    }
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion { version });
    }
    Ok(version)
}

fn alignment_of(
    entries: &[(String, Value)],
    index: &HashMap<String, usize>,
) -> Result<u64, GgufError> {
    let Some((_, v)) = index.get(ALIGNMENT_KEY).and_then(|&i| entries.get(i)) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
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

/// `x` rounded up to a multiple of the power of two `align`, if that fits in a u64.
pub(crate) fn align_up(x: u64, align: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    Some(x.checked_add(mask)? & !mask)
}

fn check_placement(t: &TensorInfo, alignment: u64, data_len: u64) -> Result<(), GgufError> {
    if t.offset % alignment != 0 {
        return Err(GgufError::MisalignedTensor {
            tensor: t.name.clone(),
            offset: t.offset,
            alignment,
        });
    }
    if t.offset
        .checked_add(t.n_bytes)
        .is_none_or(|end| end > data_len)
    {
        return Err(GgufError::TensorOutOfRange {
            tensor: t.name.clone(),
            offset: t.offset,
            n_bytes: t.n_bytes,
            data_len,
        });
    }
    Ok(())
}
