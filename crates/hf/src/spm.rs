//! SentencePiece's `tokenizer.model`: the pieces, scores and types of its `ModelProto`, read
//! straight from the protobuf wire format (only these three fields of field 1 are needed).

use std::path::Path;

use crate::HfError;

/// One vocabulary entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    /// SentencePiece's `Type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    /// 6 byte (the same numbers as gguf's token types).
    pub kind: i32,
}

/// The pieces of the model at `path`, in id order.
pub fn read(path: &Path) -> Result<Vec<Piece>, HfError> {
    let bytes = std::fs::read(path).map_err(|e| HfError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse(&bytes).map_err(|why| HfError::Unsupported(format!("{}: {why}", path.display())))
}

fn parse(buf: &[u8]) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        if field == 1 && wire == 2 {
            out.push(piece(r.bytes()?)?);
        } else {
            r.skip(wire)?;
        }
    }
    if out.is_empty() {
        return Err("holds no pieces (is it a SentencePiece model?)".into());
    }
    Ok(out)
}

fn piece(buf: &[u8]) -> Result<Piece, String> {
    let mut p = Piece {
        piece: String::new(),
        score: 0.0,
        kind: 1,
    };
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        match r.key()? {
            (1, 2) => {
                p.piece = String::from_utf8(r.bytes()?.to_vec())
                    .map_err(|_| "a piece is not UTF-8".to_string())?;
            }
            (2, 5) => p.score = f32::from_le_bytes(r.fixed::<4>()?),
            (3, 0) => {
                p.kind = i32::try_from(r.varint()?).map_err(|_| "bad piece type".to_string())?;
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(p)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("overlong varint".into())
    }

    fn key(&mut self) -> Result<(u64, u8), String> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("truncated field")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "field too long")?;
        self.take(n)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn skip(&mut self, wire: u8) -> Result<(), String> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            w => Err(format!("unsupported protobuf wire type {w}")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_pieces_and_skips_the_rest() {
        // piece {"<unk>", 0.0, UNKNOWN}, piece {"▁a", -1.5} (type left out: normal), then a
        // trainer_spec (field 2) to skip.
        let mut b = vec![0x0a, 14, 0x0a, 5];
        b.extend_from_slice(b"<unk>");
        b.extend_from_slice(&[0x15, 0, 0, 0, 0, 0x18, 2]);
        let mut p = vec![0x0a, 4];
        p.extend_from_slice("▁a".as_bytes());
        p.push(0x15);
        p.extend_from_slice(&(-1.5f32).to_le_bytes());
        b.push(0x0a);
        b.push(p.len() as u8);
        b.extend_from_slice(&p);
        b.extend_from_slice(&[0x12, 2, 0x08, 1]);
        let got = parse(&b).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].piece.as_str(), got[0].kind), ("<unk>", 2));
        assert_eq!(
            (got[1].piece.as_str(), got[1].score, got[1].kind),
            ("▁a", -1.5, 1)
        );
        assert!(parse(&b[..5]).is_err());
    }
}
