//! [`GgufAssembler`]: a [`GgufFile`] put together from other containers, without copying.
//!
//! Models also come as Hugging Face directories: `config.json`, `tokenizer.json` and one or
//! more `.safetensors` files. Rather than teach every architecture a second way to find its
//! weights, an importer translates such a directory into what llama.cpp's converter would
//! have written — the same metadata keys and tensor names — and hands over this assembled
//! file. The rest of owl then cannot tell the difference.
//!
//! The weights stay where they are: a tensor is a window of a memory-mapped file, so an F16 or
//! BF16 checkpoint is read in place exactly like a GGUF. Only tensors the translation must
//! change (a row permutation, a dtype the kernels do not read) become owned bytes. Internally
//! the parts are laid end to end in one virtual data section, each at an aligned offset, so a
//! [`TensorInfo`] means the same thing as in a parsed file and every accessor keeps working.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::error::GgufError;
use crate::file::{align_up, GgufFile};
use crate::storage::{Segment, Segments, Storage};
use crate::tensor::TensorInfo;
use crate::types::GgmlType;
use crate::value::Value;

/// Alignment of the parts in the virtual data section.
const PART_ALIGN: u64 = 64;

/// A file mapped by [`GgufAssembler::map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapId(usize);

/// Builds a [`GgufFile`] from metadata and tensors that live in mapped files or owned buffers.
#[derive(Default)]
pub struct GgufAssembler {
    metadata: Vec<(String, Value)>,
    kv_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    maps: Vec<Arc<memmap2::Mmap>>,
    segments: Segments,
}

impl GgufAssembler {
    pub fn new() -> GgufAssembler {
        GgufAssembler::default()
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: &str, value: Value) {
        match self.kv_index.get(key) {
            Some(&i) => self.metadata[i].1 = value,
            None => {
                self.kv_index.insert(key.to_string(), self.metadata.len());
                self.metadata.push((key.to_string(), value));
            }
        }
    }

    /// Whether `key` has been set.
    pub fn has(&self, key: &str) -> bool {
        self.kv_index.contains_key(key)
    }

    /// Memory-maps `path` (read-only) for tensors to point into. The file must not change
    /// while the assembled file is alive, as for [`GgufFile::open`].
    pub fn map(&mut self, path: &Path) -> Result<MapId, GgufError> {
        let file = File::open(path).map_err(|e| GgufError::io(path, e))?;
        // SAFETY: read-only private map of a model file treated as immutable while loaded;
        // see `Storage::map` for the same reasoning.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| GgufError::io(path, e))?;
        self.maps.push(Arc::new(map));
        Ok(MapId(self.maps.len() - 1))
    }

    /// The bytes of a mapped file.
    pub fn mapped(&self, id: MapId) -> &[u8] {
        self.maps.get(id.0).map_or(&[], |m| &m[..])
    }

    /// A tensor whose bytes are `start..` of the mapped file `id` (as many as its type and
    /// dims need; they must lie inside the file).
    pub fn add_mapped(
        &mut self,
        name: &str,
        dims: Vec<u64>,
        ty: GgmlType,
        id: MapId,
        start: usize,
    ) -> Result<(), GgufError> {
        let info = TensorInfo::new(name.to_string(), dims, ty, 0)?;
        let map = self
            .maps
            .get(id.0)
            .cloned()
            .ok_or(GgufError::TensorOutOfRange {
                tensor: name.to_string(),
                offset: start as u64,
                n_bytes: info.n_bytes,
                data_len: 0,
            })?;
        let len = usize::try_from(info.n_bytes).unwrap_or(usize::MAX);
        if start.checked_add(len).is_none_or(|end| end > map.len()) {
            return Err(GgufError::TensorOutOfRange {
                tensor: name.to_string(),
                offset: start as u64,
                n_bytes: info.n_bytes,
                data_len: map.len() as u64,
            });
        }
        self.push(info, Segment::Mapped { map, start, len })
    }

    /// A tensor holding `bytes` (exactly as many as its type and dims need).
    pub fn add_owned(
        &mut self,
        name: &str,
        dims: Vec<u64>,
        ty: GgmlType,
        bytes: Vec<u8>,
    ) -> Result<(), GgufError> {
        let info = TensorInfo::new(name.to_string(), dims, ty, 0)?;
        if bytes.len() as u64 != info.n_bytes {
            return Err(GgufError::TensorOutOfRange {
                tensor: name.to_string(),
                offset: 0,
                n_bytes: info.n_bytes,
                data_len: bytes.len() as u64,
            });
        }
        self.push(info, Segment::Owned(bytes))
    }

    fn push(&mut self, mut info: TensorInfo, seg: Segment) -> Result<(), GgufError> {
        if self.tensor_index.contains_key(&info.name) {
            return Err(GgufError::DuplicateTensor { tensor: info.name });
        }
        let base = align_up(self.segments.end as u64, PART_ALIGN)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(GgufError::TensorOutOfRange {
                tensor: info.name.clone(),
                offset: self.segments.end as u64,
                n_bytes: info.n_bytes,
                data_len: u64::MAX,
            })?;
        info.offset = base as u64;
        self.segments.end = base.saturating_add(info.n_bytes as usize);
        self.segments.bases.push(base);
        self.segments.parts.push(seg);
        self.tensor_index
            .insert(info.name.clone(), self.tensors.len());
        self.tensors.push(info);
        Ok(())
    }

    /// The assembled file (GGUF version 3, alignment [`PART_ALIGN`]).
    pub fn build(self) -> GgufFile {
        let mut g = self;
        g.set(crate::ALIGNMENT_KEY, Value::U32(PART_ALIGN as u32));
        GgufFile::assembled(
            g.metadata,
            g.kv_index,
            g.tensors,
            g.tensor_index,
            Storage::Segments(g.segments),
            PART_ALIGN,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn tensors_read_their_own_bytes_from_maps_and_owned_parts() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..=255u8).collect();
        f.write_all(&bytes).unwrap();
        let mut a = GgufAssembler::new();
        a.set("general.architecture", Value::String("llama".into()));
        let id = a.map(f.path()).unwrap();
        a.add_mapped("a", vec![4], GgmlType::F32, id, 3).unwrap();
        a.add_owned("b", vec![2], GgmlType::F16, vec![9, 8, 7, 6])
            .unwrap();
        a.add_mapped("c", vec![2, 3], GgmlType::F16, id, 100)
            .unwrap();
        // Out of the file, wrong length, duplicate name.
        assert!(a.add_mapped("d", vec![4], GgmlType::F32, id, 250).is_err());
        assert!(a
            .add_owned("e", vec![4], GgmlType::F32, vec![0; 3])
            .is_err());
        assert!(a
            .add_owned("b", vec![2], GgmlType::F16, vec![0; 4])
            .is_err());
        let g = a.build();
        assert_eq!(g.get_str("general.architecture"), Some("llama"));
        assert_eq!(g.tensor_data(g.tensor("a").unwrap()), &bytes[3..19]);
        assert_eq!(g.tensor_data(g.tensor("b").unwrap()), &[9, 8, 7, 6]);
        assert_eq!(g.tensor_data(g.tensor("c").unwrap()), &bytes[100..112]);
        let c = g.tensor("c").unwrap();
        assert_eq!(c.offset % PART_ALIGN, 0);
        assert_eq!(g.data_bytes(c.offset as usize + 2, 4), &bytes[102..106]);
        // A range crossing two parts is refused rather than stitched.
        let b = g.tensor("b").unwrap();
        assert!(g.data_bytes(b.offset as usize, 200).is_empty());
        assert!(g.is_mapped());
        assert_eq!(g.file_size(), 16 + 4 + 12);
    }
}
