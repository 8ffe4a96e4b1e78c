//! Writer → reader round trips: every value type, tensors of several types, alignment.
#![allow(clippy::unwrap_used)]

mod common;

use common::{pattern, sample_writer};
use owl_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Value};

fn every_value() -> Vec<(&'static str, Value)> {
    vec![
        ("u8", Value::U8(200)),
        ("i8", Value::I8(-100)),
        ("u16", Value::U16(65000)),
        ("i16", Value::I16(-32000)),
        ("u32", Value::U32(4_000_000_000)),
        ("i32", Value::I32(-2_000_000_000)),
        ("u64", Value::U64(u64::MAX)),
        ("i64", Value::I64(i64::MIN)),
        ("f32", Value::F32(-1.5e-7)),
        ("f64", Value::F64(std::f64::consts::PI)),
        ("bool.t", Value::Bool(true)),
        ("bool.f", Value::Bool(false)),
        ("str", Value::String("héllo ☃ wörld".into())),
        ("str.empty", Value::String(String::new())),
        ("arr.u8", Value::Array(vec![Value::U8(1), Value::U8(2)])),
        (
            "arr.f64",
            Value::Array(vec![Value::F64(0.25), Value::F64(-8.0)]),
        ),
        (
            "arr.bool",
            Value::Array(vec![Value::Bool(true), Value::Bool(false)]),
        ),
        ("arr.empty", Value::Array(vec![])),
        (
            "arr.nested",
            Value::Array(vec![
                Value::Array(vec![Value::I16(1), Value::I16(2)]),
                Value::Array(vec![Value::String("x".into())]),
                Value::Array(vec![]),
            ]),
        ),
    ]
}

#[test]
fn every_value_type_round_trips_in_order() {
    let mut w = GgufWriter::new();
    for (k, v) in every_value() {
        w.add_kv(k, v);
    }
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.alignment, 32);
    let got: Vec<(&str, &Value)> = f.metadata().iter().map(|(k, v)| (k.as_str(), v)).collect();
    let want = every_value();
    let want: Vec<(&str, &Value)> = want.iter().map(|(k, v)| (*k, v)).collect();
    assert_eq!(got, want);
    assert!(f.tensors().is_empty());
}

#[test]
fn float_bit_patterns_survive() {
    let specials = [f32::NAN, f32::INFINITY, -0.0, f32::MIN_POSITIVE / 2.0];
    let mut w = GgufWriter::new();
    let arr = specials.iter().map(|&x| Value::F32(x)).collect();
    w.add_kv("f", Value::Array(arr));
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let got = f.get_f32_array("f").unwrap();
    for (a, b) in got.iter().zip(specials) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
}

#[test]
fn tensors_round_trip_aligned_and_padded() {
    let w = sample_writer();
    let bytes = w.to_bytes();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert_eq!(f.data_offset() % 32, 0);
    assert_eq!(f.file_size(), bytes.len() as u64);
    let names: Vec<&str> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);

    let a = f.tensor("a").unwrap();
    assert_eq!(
        (a.dims.as_slice(), a.ty, a.n_elements, a.n_bytes),
        (&[8, 3][..], GgmlType::F32, 24, 96)
    );
    let floats: Vec<f32> = f
        .tensor_data(a)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(floats, (0..24).map(|i| i as f32).collect::<Vec<_>>());

    assert_eq!(f.tensor_data(f.tensor("b").unwrap()), &[1, 2, 3, 4, 5]);
    let c = f.tensor("c").unwrap();
    assert_eq!((c.ty, c.n_elements, c.n_bytes), (GgmlType::Q8_0, 128, 136));
    assert_eq!(f.tensor_data(c), pattern(136).as_slice());
    assert_eq!(
        f.tensor_data(f.tensor("d").unwrap()),
        pattern(14).as_slice()
    );

    let mut expected_offset = 0;
    for t in f.tensors() {
        assert_eq!(t.offset, expected_offset, "{}", t.name);
        expected_offset = (t.offset + t.n_bytes).next_multiple_of(32);
    }
    // Every tensor, the last included, is padded to the alignment.
    assert_eq!(f.data_section().len() as u64, expected_offset);
    // Padding is zeros.
    let b = f.tensor("b").unwrap();
    let pad =
        &f.data_section()[(b.offset + b.n_bytes) as usize..f.tensor("c").unwrap().offset as usize];
    assert!(pad.iter().all(|&x| x == 0));
    assert!(f.tensor("zzz").is_none());
}

#[test]
fn odd_shapes_round_trip() {
    let mut w = GgufWriter::new();
    w.add_tensor("scalar", &[], GgmlType::F32, 2.5f32.to_le_bytes().to_vec())
        .unwrap();
    w.add_tensor("empty", &[0, 4], GgmlType::F16, vec![])
        .unwrap();
    w.add_tensor("k", &[256, 1, 1, 2], GgmlType::Q4_K, pattern(288))
        .unwrap();
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let s = f.tensor("scalar").unwrap();
    assert_eq!((s.dims.len(), s.n_elements, s.n_bytes), (0, 1, 4));
    assert_eq!(f.tensor_data(s), 2.5f32.to_le_bytes());
    let e = f.tensor("empty").unwrap();
    assert_eq!((e.n_elements, e.n_bytes), (0, 0));
    assert!(f.tensor_data(e).is_empty());
    let k = f.tensor("k").unwrap();
    assert_eq!((k.dims.as_slice(), k.n_bytes), (&[256, 1, 1, 2][..], 288));
    assert_eq!(f.tensor_data(k), pattern(288).as_slice());
}

#[test]
fn alignment_override_is_honoured() {
    let mut w = sample_writer();
    w.add_kv("general.alignment", Value::U32(64));
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(f.alignment, 64);
    assert_eq!(f.data_offset() % 64, 0);
    assert!(f.tensors().iter().all(|t| t.offset % 64 == 0));
    assert_eq!(
        f.tensor_data(f.tensor("d").unwrap()),
        pattern(14).as_slice()
    );
}

#[test]
fn write_file_then_open_maps_the_same_file() {
    let w = sample_writer();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gguf");
    w.write_file(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), w.to_bytes());
    let f = GgufFile::open(&path).unwrap();
    assert!(f.is_mapped());
    assert_eq!(f.get_str("general.architecture"), Some("llama"));
    let c = f.tensor("c").unwrap();
    assert_eq!(f.tensor_data(c), pattern(136).as_slice());
    // Zero-copy: the slice points into the data section.
    let base = f.data_section().as_ptr() as usize;
    assert_eq!(f.tensor_data(c).as_ptr() as usize, base + c.offset as usize);
}

#[test]
fn open_reports_io_errors_with_the_path() {
    let err = GgufFile::open(std::path::Path::new("/nonexistent/owl.gguf")).unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/owl.gguf"));
}

#[test]
fn version_2_files_are_read() {
    let mut bytes = sample_writer().to_bytes();
    bytes[4] = 2;
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(f.version, 2);
    assert_eq!(f.tensors().len(), 4);
}

#[test]
fn typed_getters_are_lenient_about_integer_widths() {
    let mut w = GgufWriter::new();
    w.add_kv("i32", Value::I32(7));
    w.add_kv("neg", Value::I64(-1));
    w.add_kv("big", Value::U64(1 << 40));
    w.add_kv("f64", Value::F64(0.5));
    w.add_kv("ints", Value::Array(vec![Value::U8(1), Value::U8(2)]));
    w.add_kv("huge", Value::Array(vec![Value::U64(1 << 40)]));
    w.add_kv("strs", Value::Array(vec![Value::String("a".into())]));
    w.add_kv("b", Value::Bool(true));
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(f.get_u32("i32"), Some(7));
    assert_eq!(f.get_u64("i32"), Some(7));
    assert_eq!(f.get_u32("neg"), None);
    assert_eq!(f.get_i64("neg"), Some(-1));
    assert_eq!(f.get_u32("big"), None);
    assert_eq!(f.get_u64("big"), Some(1 << 40));
    assert_eq!(f.get_f32("f64"), Some(0.5));
    assert_eq!(f.get_f32("i32"), Some(7.0));
    assert_eq!(f.get_i32_array("ints"), Some(vec![1, 2]));
    assert_eq!(f.get_f32_array("ints"), Some(vec![1.0, 2.0]));
    assert_eq!(f.get_i32_array("huge"), None);
    assert_eq!(f.get_str_array("ints"), None);
    assert_eq!(f.get_str_array("strs"), Some(vec!["a"]));
    assert_eq!(f.get_str_array("i32"), None);
    assert_eq!(f.get_bool("b"), Some(true));
    assert_eq!(f.get_bool("i32"), None);
    assert_eq!(f.get_str("i32"), None);
    assert_eq!(f.get_array("ints").map(<[Value]>::len), Some(2));
    assert!(f.get("missing").is_none());
}
