//! Decoding the metadata key/value section.

use std::collections::HashMap;

use crate::error::{quote, GgufError};
use crate::reader::Cursor;
use crate::value::{Value, ValueType};

/// How deeply arrays may nest. llama.cpp accepts no nesting at all and the Python package
/// writes one level at most; the bound keeps recursion (and the stack) small on hostile input.
pub(crate) const MAX_ARRAY_DEPTH: usize = 8;

/// The smallest encoded key/value pair: an empty key's length, a type id and a one-byte value.
const MIN_KV_SIZE: u64 = 8 + 4 + 1;

/// Metadata in file order plus a key → position index.
pub(crate) struct Metadata {
    pub(crate) entries: Vec<(String, Value)>,
    pub(crate) index: HashMap<String, usize>,
}

/// Reads the kv-count field and that many pairs.
pub(crate) fn read_metadata(c: &mut Cursor<'_>) -> Result<Metadata, GgufError> {
    let n = c.count(MIN_KV_SIZE, "metadata kv_count")?;
    let mut entries = Vec::with_capacity(n);
    let mut index = HashMap::with_capacity(n);
    for _ in 0..n {
        let key_offset = c.pos() as u64;
        let key = c.string("metadata key")?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey { offset: key_offset });
        }
        if index.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key });
        }
        let value = read_typed_value(c, &key)?;
        index.insert(key.clone(), entries.len());
        entries.push((key, value));
    }
    Ok(Metadata { entries, index })
}

/// A value preceded by its u32 type id.
fn read_typed_value(c: &mut Cursor<'_>, key: &str) -> Result<Value, GgufError> {
    let ty = read_type(c, key)?;
    let what = format!("value of key {}", quote(key));
    read_value(c, ty, key, &what, 0)
}

fn read_type(c: &mut Cursor<'_>, key: &str) -> Result<ValueType, GgufError> {
    let offset = c.pos() as u64;
    let id = c.u32(&format!("value type of key {}", quote(key)))?;
    ValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType {
        key: key.to_string(),
        id,
        offset,
    })
}

fn read_value(
    c: &mut Cursor<'_>,
    ty: ValueType,
    key: &str,
    what: &str,
    depth: usize,
) -> Result<Value, GgufError> {
    Ok(match ty {
        ValueType::U8 => Value::U8(c.u8(what)?),
        ValueType::I8 => Value::I8(c.i8(what)?),
        ValueType::U16 => Value::U16(c.u16(what)?),
        ValueType::I16 => Value::I16(c.i16(what)?),
        ValueType::U32 => Value::U32(c.u32(what)?),
        ValueType::I32 => Value::I32(c.i32(what)?),
        ValueType::U64 => Value::U64(c.u64(what)?),
        ValueType::I64 => Value::I64(c.i64(what)?),
        ValueType::F32 => Value::F32(c.f32(what)?),
        ValueType::F64 => Value::F64(c.f64(what)?),
        // Like llama.cpp, any nonzero byte is true.
        ValueType::Bool => Value::Bool(c.u8(what)? != 0),
        ValueType::String => Value::String(c.string(what)?),
        ValueType::Array => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(GgufError::NestingTooDeep {
                    key: key.to_string(),
                    limit: MAX_ARRAY_DEPTH,
                    offset: c.pos() as u64,
                });
            }
            let elem = read_type(c, key)?;
            let n = c.count(elem.min_size(), &format!("array in key {}", quote(key)))?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_value(c, elem, key, what, depth + 1)?);
            }
            Value::Array(items)
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kv_bytes(key: &str, body: &[u8]) -> Vec<u8> {
        let mut b = 1u64.to_le_bytes().to_vec();
        b.extend_from_slice(&(key.len() as u64).to_le_bytes());
        b.extend_from_slice(key.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn nesting_is_bounded() {
        let mut body = 9u32.to_le_bytes().to_vec(); // the value is an ARRAY
        for _ in 0..=MAX_ARRAY_DEPTH {
            body.extend_from_slice(&9u32.to_le_bytes()); // of ARRAYs
            body.extend_from_slice(&1u64.to_le_bytes()); // one of them
        }
        body.extend_from_slice(&[0; 64]);
        let bytes = kv_bytes("deep", &body);
        let err = read_metadata(&mut Cursor::new(&bytes)).err().unwrap();
        assert!(matches!(err, GgufError::NestingTooDeep { .. }), "{err}");
    }

    #[test]
    fn unknown_value_type_names_key_and_id() {
        let bytes = kv_bytes("k", &13u32.to_le_bytes());
        let err = read_metadata(&mut Cursor::new(&bytes)).err().unwrap();
        assert!(
            matches!(err, GgufError::UnknownValueType { id: 13, ref key, offset: 17 } if key == "k"),
            "{err}"
        );
    }

    #[test]
    fn nonzero_bool_byte_is_true() {
        let mut body = 7u32.to_le_bytes().to_vec();
        body.push(2);
        let bytes = kv_bytes("b", &body);
        let md = read_metadata(&mut Cursor::new(&bytes)).unwrap();
        assert_eq!(md.entries[0].1, Value::Bool(true));
    }
}
