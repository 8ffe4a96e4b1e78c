//! tests/fixtures/tiny_py.gguf was written by the reference `gguf` Python package (see
//! make_tiny_py.py next to it); we must read exactly what it wrote.
#![allow(clippy::unwrap_used)]

mod common;

use common::fnv1a64;
use owl_gguf::{GgmlType, GgufFile, Value};

fn fixture() -> GgufFile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_py.gguf");
    GgufFile::open(&path).unwrap()
}

#[test]
fn metadata_matches_the_script() {
    let f = fixture();
    assert_eq!((f.version, f.alignment), (3, 32));
    let s = |x: &str| Value::String(x.to_string());
    let want = vec![
        ("general.architecture", s("tiny")),
        ("general.name", s("tiny py fixture é☃")),
        ("tiny.context_length", Value::U32(128)),
        ("tiny.rope.freq_base", Value::F32(10000.0)),
        ("tiny.use_parallel_residual", Value::Bool(true)),
        ("tiny.big", Value::U64(1 << 40)),
        ("tiny.neg", Value::I8(-5)),
        ("tiny.eps", Value::F64(1e-6)),
        (
            "tokenizer.ggml.tokens",
            Value::Array(vec![s("<s>"), s("</s>"), s("hello"), s("wörld")]),
        ),
        (
            "tokenizer.ggml.scores",
            Value::Array(vec![
                Value::F32(0.0),
                Value::F32(-1.5),
                Value::F32(2.25),
                Value::F32(3.0),
            ]),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(vec![
                Value::I32(3),
                Value::I32(3),
                Value::I32(1),
                Value::I32(1),
            ]),
        ),
        (
            "tiny.nested",
            Value::Array(vec![
                Value::Array(vec![Value::I32(1), Value::I32(2)]),
                Value::Array(vec![Value::I32(3), Value::I32(4), Value::I32(5)]),
            ]),
        ),
    ];
    let got: Vec<(&str, &Value)> = f.metadata().iter().map(|(k, v)| (k.as_str(), v)).collect();
    let want: Vec<(&str, &Value)> = want.iter().map(|(k, v)| (*k, v)).collect();
    assert_eq!(got, want);
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap(),
        ["<s>", "</s>", "hello", "wörld"]
    );
    assert_eq!(
        f.get_i32_array("tokenizer.ggml.token_type").unwrap(),
        [3, 3, 1, 1]
    );
    assert_eq!(f.get_u32("tiny.context_length"), Some(128));
    assert_eq!(f.get_f32("tiny.eps"), Some(1e-6));
}

#[test]
fn tensors_match_the_script() {
    let f = fixture();
    // (name, dims, type, offset, bytes, FNV-1a printed by make_tiny_py.py)
    let want = [
        (
            "tok_embd.weight",
            vec![8, 3],
            GgmlType::F32,
            0,
            96,
            0x7f38_ec5d_6f4c_ee9d_u64,
        ),
        (
            "blk.0.attn_norm.weight",
            vec![16],
            GgmlType::F16,
            96,
            32,
            0x2754_9bb5_0277_78c5,
        ),
        (
            "blk.0.ffn_up.weight",
            vec![64, 2],
            GgmlType::Q8_0,
            128,
            136,
            0x4469_67d0_329a_81a9,
        ),
    ];
    assert_eq!(f.tensors().len(), want.len());
    for (t, (name, dims, ty, offset, n_bytes, hash)) in f.tensors().iter().zip(want) {
        assert_eq!(
            (t.name.as_str(), &t.dims, t.ty, t.offset, t.n_bytes),
            (name, &dims, ty, offset, n_bytes)
        );
        assert_eq!(fnv1a64(f.tensor_data(t)), hash, "{name}");
    }
    assert_eq!(f.data_offset(), 800);
    let emb = f.tensor("tok_embd.weight").unwrap();
    let first: Vec<f32> = f.tensor_data(emb)[..12]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(first, [-3.0, -2.5, -2.0]);
    let norm = f.tensor_data(f.tensor("blk.0.attn_norm.weight").unwrap());
    // f16 -1.0 and 1.0 at the ends of linspace(-1, 1, 16).
    assert_eq!(&norm[..2], &[0x00, 0xbc]);
    assert_eq!(&norm[30..], &[0x00, 0x3c]);
}
