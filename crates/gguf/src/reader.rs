//! A bounds-checked little-endian cursor over the file's bytes.
//!
//! Every read goes through [`Cursor::take`], which compares the request with what is left
//! before slicing, so a hostile length can only ever produce an error. Counts that decide an
//! allocation go through [`Cursor::count`], which refuses any count whose smallest possible
//! encoding would not fit in the rest of the file.

use crate::error::GgufError;

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// The current offset from the start of the file.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, or `Truncated` naming `what`.
    pub(crate) fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], GgufError> {
        let truncated = || GgufError::Truncated {
            what: what.to_string(),
            offset: self.pos as u64,
            needed: n,
            available: self.remaining() as u64,
        };
        let n = usize::try_from(n).map_err(|_| truncated())?;
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        // `take` returned exactly N bytes, so this conversion cannot fail.
        bytes.try_into().map_err(|_| GgufError::Truncated {
            what: what.to_string(),
            offset: self.pos as u64,
            needed: N as u64,
            available: 0,
        })
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, GgufError> {
        Ok(u8::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i8(&mut self, what: &str) -> Result<i8, GgufError> {
        Ok(i8::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, GgufError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i16(&mut self, what: &str) -> Result<i16, GgufError> {
        Ok(i16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, GgufError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, GgufError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn f32(&mut self, what: &str) -> Result<f32, GgufError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn f64(&mut self, what: &str) -> Result<f64, GgufError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A u64 count of items each at least `min_size` bytes long, checked against the rest of
    /// the file so that `Vec::with_capacity(count)` is always bounded by the file size.
    pub(crate) fn count(&mut self, min_size: u64, what: &str) -> Result<usize, GgufError> {
        let offset = self.pos as u64;
        let count = self.u64(what)?;
        let available = self.remaining() as u64;
        let fits = count
            .checked_mul(min_size)
            .is_some_and(|bytes| bytes <= available);
        match usize::try_from(count) {
            Ok(n) if fits => Ok(n),
            _ => Err(GgufError::CountTooLarge {
                what: what.to_string(),
                count,
                offset,
                available,
            }),
        }
    }

    /// A GGUF string: u64 byte length, then that many bytes of UTF-8.
    pub(crate) fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let offset = self.pos as u64;
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 {
                what: what.to_string(),
                offset,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_little_endian_and_stops_at_the_end() {
        let bytes = [1u8, 0, 0, 0, 0xff, 2];
        let mut c = Cursor::new(&bytes);
        assert_eq!(c.u32("a").unwrap(), 1);
        assert_eq!(c.i8("b").unwrap(), -1);
        let err = c.u16("the thing").unwrap_err();
        assert!(matches!(
            err,
            GgufError::Truncated { offset: 5, needed: 2, available: 1, ref what } if what == "the thing"
        ));
        assert_eq!(c.u8("c").unwrap(), 2);
        assert_eq!(c.remaining(), 0);
        assert!(c.take(u64::MAX, "huge").is_err());
    }

    #[test]
    fn absurd_counts_and_lengths_are_refused_before_allocating() {
        let mut bytes = (1u64 << 60).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let err = Cursor::new(&bytes).count(1, "array").unwrap_err();
        assert!(matches!(err, GgufError::CountTooLarge { count, .. } if count == 1 << 60));
        assert!(matches!(
            Cursor::new(&bytes).string("key").unwrap_err(),
            GgufError::Truncated { .. }
        ));
        // 2 items of 8 bytes fit in 16, 3 do not.
        let mut two = 2u64.to_le_bytes().to_vec();
        two.extend_from_slice(&[0; 16]);
        assert_eq!(Cursor::new(&two).count(8, "x").unwrap(), 2);
        let mut three = 3u64.to_le_bytes().to_vec();
        three.extend_from_slice(&[0; 16]);
        assert!(Cursor::new(&three).count(8, "x").is_err());
        // count * min_size overflowing u64 is refused too.
        let max = u64::MAX.to_le_bytes();
        assert!(Cursor::new(&max).count(12, "x").is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0xc3, 0x28]);
        let err = Cursor::new(&bytes).string("name").unwrap_err();
        assert!(matches!(err, GgufError::InvalidUtf8 { offset: 0, .. }));
    }
}
