//! The bytes a [`GgufFile`](crate::GgufFile) parses and lends out: a read-only memory map of
//! the file, or an owned buffer (for tests and in-memory files).

use std::fs::File;
use std::path::Path;

use crate::error::GgufError;

pub(crate) enum Storage {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
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

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }

    /// `madvise(MADV_DONTNEED)` on the whole pages inside `offset..offset + len` of a map.
    pub(crate) fn release(&self, offset: usize, len: usize) {
        #[cfg(unix)]
        if let Storage::Mapped(m) = self {
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
        let _ = (offset, len);
    }

    pub(crate) fn is_mapped(&self) -> bool {
        matches!(self, Storage::Mapped(_))
    }
}
