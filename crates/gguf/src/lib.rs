//! GGUF container support: a zero-copy reader (v2 and v3) and a v3 writer.
//!
//! Why it is built this way:
//!
//! * **Parse everything up front, then lend slices.** [`GgufFile::open`] memory-maps the file
//!   and validates the whole header — every key, every tensor's shape, type, alignment and
//!   extent — before returning. After that, [`GgufFile::tensor_data`] is an infallible,
//!   zero-copy slice of the map, so model loading never copies weights and never meets a
//!   half-checked tensor.
//! * **The file is hostile until proven otherwise.** Model files come from the internet. All
//!   reads go through one bounds-checked cursor; every length or count is compared with the
//!   bytes that remain *before* anything is allocated or sliced, array nesting is bounded, and
//!   every failure is a typed [`GgufError`] whose one-line message says what was being read
//!   and where. No input can make the reader panic or allocate more than a small multiple of
//!   the file size.
//! * **Metadata is decoded eagerly into [`Value`]s.** Headers are small next to the weights,
//!   and typed, lenient accessors (`get_u32` accepts any integer that fits) absorb the
//!   differences between writers.
//! * **The writer exists for tests and tools.** [`GgufWriter`] produces v3 files the reader
//!   (and llama.cpp's `gguf` Python package) read back. It checks shapes, sizes and value
//!   types as they are added, so it cannot produce a file the reader would refuse.
//!
//! Only little-endian files are supported; big-endian ones are recognised and refused.

mod assemble;
mod error;
mod file;
mod kv;
mod reader;
mod storage;
mod tensor;
pub mod types;
mod value;
mod writer;

pub use assemble::{GgufAssembler, MapId};
pub use error::GgufError;
pub use file::{GgufFile, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC};
pub use tensor::{TensorInfo, MAX_DIMS};
pub use types::GgmlType;
pub use value::Value;
pub use writer::{GgufWriter, WRITE_VERSION};
