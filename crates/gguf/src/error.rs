//! Everything that can go wrong reading or writing a GGUF file.
//!
//! Each variant carries enough to locate the problem (a byte offset, a key or a tensor name)
//! and its `Display` is a single line, so callers can print it as-is after "failed to load".

use std::path::PathBuf;

/// Why a GGUF file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The operating system refused to open, map, read or write a file.
    #[error("I/O error on {}: {source}", quote(&.path.to_string_lossy()))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The first four bytes are not "GGUF".
    #[error("not a GGUF file (bad magic 0x{magic:08x} at offset 0)")]
    BadMagic { magic: u32 },

    /// The version field reads like a byte-swapped small number: a big-endian file.
    #[error("big-endian GGUF not supported (version field reads 0x{raw:08x})")]
    BigEndian { raw: u32 },

    /// A version other than 2 or 3 (v1 used 32-bit counts and is long obsolete).
    #[error("unsupported GGUF version {version} (only versions 2 and 3 are supported)")]
    UnsupportedVersion { version: u32 },

    /// The file ends before `what` does.
    #[error(
        "truncated file: {what} at offset {offset} needs {needed} bytes, only {available} left"
    )]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },

    /// A count or length that cannot possibly fit in what is left of the file.
    #[error("{what} count too large: {count} at offset {offset} cannot fit in the {available} bytes left")]
    CountTooLarge {
        what: String,
        count: u64,
        offset: u64,
        available: u64,
    },

    /// A string that is not valid UTF-8.
    #[error("invalid UTF-8 in {what} at offset {offset}")]
    InvalidUtf8 { what: String, offset: u64 },

    /// A metadata value type id that GGUF does not define.
    #[error("unknown metadata value type {id} for key {} at offset {offset}", quote(.key))]
    UnknownValueType { key: String, id: u32, offset: u64 },

    /// Arrays nested deeper than the reader allows.
    #[error("arrays nested more than {limit} deep in key {} at offset {offset}", quote(.key))]
    NestingTooDeep {
        key: String,
        limit: usize,
        offset: u64,
    },

    /// An empty metadata key.
    #[error("empty metadata key at offset {offset}")]
    EmptyKey { offset: u64 },

    /// The same metadata key appears twice.
    #[error("duplicate metadata key {}", quote(.key))]
    DuplicateKey { key: String },

    /// The same tensor name appears twice.
    #[error("duplicate tensor name {}", quote(.tensor))]
    DuplicateTensor { tensor: String },

    /// A metadata value whose type does not suit the key's meaning.
    #[error("metadata key {} should be {expected}, found {found}", quote(.key))]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },

    /// `general.alignment` is zero, not a power of two, or too large.
    #[error("bad alignment {value}: must be a nonzero power of two")]
    BadAlignment { value: u64 },

    /// A tensor type id this build does not know.
    #[error("tensor {} has unknown ggml type id {id}", quote(.tensor))]
    UnknownTensorType { tensor: String, id: u32 },

    /// More dimensions than ggml supports.
    #[error("tensor {} has {n_dims} dimensions (at most {max} supported)", quote(.tensor))]
    TooManyDims {
        tensor: String,
        n_dims: u32,
        max: u32,
    },

    /// Dimensions that overflow or do not fit the type's block size.
    #[error("tensor {} has a bad shape {dims:?}: {reason}", quote(.tensor))]
    BadShape {
        tensor: String,
        dims: Vec<u64>,
        reason: String,
    },

    /// A tensor offset that is not a multiple of the file's alignment.
    #[error("tensor {} offset {offset} is not a multiple of the alignment {alignment}", quote(.tensor))]
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },

    /// A tensor whose bytes do not lie inside the data section.
    #[error("tensor {} ({n_bytes} bytes at data offset {offset}) lies outside the {data_len}-byte data section", quote(.tensor))]
    TensorOutOfRange {
        tensor: String,
        offset: u64,
        n_bytes: u64,
        data_len: u64,
    },

    /// Writer: tensor data whose length does not match its shape and type.
    #[error("tensor {} data is {actual} bytes, its shape and type need {expected}", quote(.tensor))]
    TensorSizeMismatch {
        tensor: String,
        expected: u64,
        actual: u64,
    },

    /// Writer: an array whose elements are not all of one type (GGUF arrays are homogeneous).
    #[error("metadata key {} holds an array mixing {first} and {other} elements", quote(.key))]
    MixedArray {
        key: String,
        first: &'static str,
        other: &'static str,
    },
}

impl GgufError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        GgufError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A file-supplied name as it appears in messages: quoted, control characters escaped (so a
/// message stays on one line) and cut short if absurdly long.
pub(crate) fn quote(s: &str) -> String {
    const MAX_CHARS: usize = 120;
    let mut out = String::from("'");
    for (i, ch) in s.chars().enumerate() {
        if i == MAX_CHARS {
            out.push_str("...");
            break;
        }
        out.extend(ch.escape_debug());
    }
    out.push('\'');
    out
}
