//! The bytes a [`GgufFile`](crate::GgufFile) parses and lends out: a read-only memory map of
//! the file, an owned buffer (for tests and in-memory files), or, for a file assembled from
//! other containers ([`crate::GgufAssembler`]), a list of segments laid end to end in one
//! virtual data section.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::error::GgufError;

pub(crate) enum Storage {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
    Segments(Segments),
}

/// A window of bytes an assembled file reads from: part of a mapped file, or owned bytes.
pub(crate) enum Segment {
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
    Owned(Vec<u8>),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Mapped { map, start, len } => {
                map.get(*start..start.saturating_add(*len)).unwrap_or(&[])
            }
            Segment::Owned(v) => v,
        }
    }
}

/// Segments at increasing virtual offsets (`bases`, each aligned): a tensor lies inside one.
#[derive(Default)]
pub(crate) struct Segments {
    pub(crate) parts: Vec<Segment>,
    pub(crate) bases: Vec<usize>,
    pub(crate) end: usize,
}

impl Segments {
    /// The segment holding virtual `offset`, and the offset inside it.
    fn locate(&self, offset: usize) -> Option<(&Segment, usize)> {
        let i = self
            .bases
            .partition_point(|&b| b <= offset)
            .checked_sub(1)?;
        Some((&self.parts[i], offset - self.bases[i]))
    }

    pub(crate) fn get(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let (seg, at) = self.locate(offset)?;
        seg.bytes().get(at..at.checked_add(len)?)
    }
}

impl Storage {
    pub(crate) fn map(path: &Path) -> Result<Storage, GgufError> {
        let file = File::open(path).map_err(|e| GgufError::io(path, e))?;
        let len = file.metadata().map_err(|e| GgufError::io(path, e))?.len();
        if len == 0 {
            // Mapping zero bytes fails on some platforms; the parser reports the truncation.
            return Ok(Storage::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and private to this process. Memory-mapping is only
        // unsound if another process truncates or rewrites the file while it is mapped; model
        // files are treated as immutable while loaded, as llama.cpp does, and documenting that is
        // the best a library can do (there is no portable way to lock a file against writers).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| GgufError::io(path, e))?;
        Ok(Storage::Mapped(map))
    }

    /// The bytes of a single-buffer storage; empty for segments (use [`Storage::get`]).
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
            Storage::Segments(_) => &[],
        }
    }

    /// `len` bytes at `offset` (virtual for segments), if they lie in one buffer.
    pub(crate) fn get(&self, offset: usize, len: usize) -> Option<&[u8]> {
        match self {
            Storage::Segments(s) => s.get(offset, len),
            _ => self.as_slice().get(offset..offset.checked_add(len)?),
        }
    }

    /// Total bytes held.
    pub(crate) fn len(&self) -> usize {
        match self {
            Storage::Segments(s) => s.parts.iter().map(|p| p.bytes().len()).sum(),
            _ => self.as_slice().len(),
        }
    }

    /// `madvise(MADV_DONTNEED)` on the whole pages inside `offset..offset + len` of a map.
    pub(crate) fn release(&self, offset: usize, len: usize) {
        match self {
            Storage::Mapped(m) => release_pages(m, offset, len),
            Storage::Segments(s) => {
                if let Some((Segment::Mapped { map, start, .. }, at)) = s.locate(offset) {
                    release_pages(map, start.saturating_add(at), len);
                }
            }
            Storage::Owned(_) => {}
        }
    }

    pub(crate) fn is_mapped(&self) -> bool {
        match self {
            Storage::Mapped(_) => true,
            Storage::Owned(_) => false,
            Storage::Segments(s) => s.parts.iter().any(|p| matches!(p, Segment::Mapped { .. })),
        }
    }
}

/// `madvise(MADV_DONTNEED)` on the whole pages of `m` inside `offset..offset + len`.
fn release_pages(m: &memmap2::Mmap, offset: usize, len: usize) {
    #[cfg(unix)]
    {
        // Only whole pages inside the range: a page shared with a neighbouring tensor stays.
        let page = 4096;
        let start = offset.div_ceil(page) * page;
        let end = offset.saturating_add(len).min(m.len()) / page * page;
        if start < end {
            // SAFETY: the map is read-only and private: dropping its pages cannot lose
            // data, and any later read (through slices that stay valid) faults the same
            // bytes back in from the file.
            let _ = unsafe {
                m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
    #[cfg(not(unix))]
    let _ = (m, offset, len);
}
