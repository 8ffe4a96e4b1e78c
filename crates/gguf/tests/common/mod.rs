//! Helpers shared by the integration tests: a raw GGUF byte builder that can write any field
//! value (including nonsense), and a writer-made sample file.
#![allow(dead_code, clippy::unwrap_used)]

use owl_gguf::{GgmlType, GgufError, GgufWriter, Value};

/// Builds GGUF bytes field by field, with no validation.
pub struct Raw(pub Vec<u8>);

impl Raw {
    /// Magic, version, tensor_count and kv_count.
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        let mut r = Raw(b"GGUF".to_vec());
        r.u32(version).u64(n_tensors).u64(n_kv);
        r
    }
    pub fn u32(&mut self, v: u32) -> &mut Raw {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Raw {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Raw {
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Raw {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }
    /// A key with a u32 value.
    pub fn kv_u32(&mut self, key: &str, v: u32) -> &mut Raw {
        self.str(key).u32(4).u32(v)
    }
    /// One tensor info.
    pub fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> &mut Raw {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(type_id).u64(offset)
    }
    /// Zero padding up to a multiple of `align`, then `n` data bytes.
    pub fn data(&mut self, align: usize, n: usize) -> &mut Raw {
        while self.0.len() % align != 0 {
            self.0.push(0);
        }
        self.0.extend(std::iter::repeat_n(0x5a, n));
        self
    }
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// A v3 file with one tensor info "t" holding the given fields, then `data` bytes of data.
pub fn one_tensor(dims: &[u64], type_id: u32, offset: u64, data: usize) -> Vec<u8> {
    Raw::header(3, 1, 0)
        .tensor("t", dims, type_id, offset)
        .data(32, data)
        .finish()
}

/// Parses and returns the error, checking that its message is one line.
pub fn parse_err(bytes: Vec<u8>) -> GgufError {
    let err = owl_gguf::GgufFile::from_bytes(bytes).expect_err("expected the file to be refused");
    let msg = err.to_string();
    assert!(
        !msg.contains('\n') && !msg.is_empty(),
        "multi-line message: {msg:?}"
    );
    err
}

/// A writer with a spread of metadata and tensors of several types and sizes.
pub fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::String("llama".into()));
    w.add_kv("llama.block_count", Value::U32(2));
    w.add_kv("llama.rope.freq_base", Value::F32(10000.0));
    w.add_kv(
        "tokenizer.ggml.tokens",
        Value::Array(vec![Value::String("a".into()), Value::String("bc".into())]),
    );
    w.add_kv(
        "tokenizer.ggml.token_type",
        Value::Array(vec![Value::I32(1), Value::I32(3)]),
    );
    let f32s: Vec<u8> = (0..24).flat_map(|i| (i as f32).to_le_bytes()).collect();
    w.add_tensor("a", &[8, 3], GgmlType::F32, f32s).unwrap();
    w.add_tensor("b", &[5], GgmlType::I8, vec![1, 2, 3, 4, 5])
        .unwrap();
    w.add_tensor("c", &[64, 2], GgmlType::Q8_0, pattern(136))
        .unwrap();
    w.add_tensor("d", &[7], GgmlType::F16, pattern(14)).unwrap();
    w
}

/// `n` bytes of a recognisable pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// FNV-1a 64, as tests/fixtures/make_tiny_py.py prints it.
pub fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
