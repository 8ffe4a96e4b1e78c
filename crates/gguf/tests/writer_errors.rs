//! What the writer refuses, and when.
#![allow(clippy::unwrap_used)]

use owl_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Value};

#[test]
fn add_tensor_checks_size_shape_and_uniqueness() {
    let mut w = GgufWriter::new();
    let err = w
        .add_tensor("t", &[4], GgmlType::F32, vec![0; 15])
        .unwrap_err();
    assert!(matches!(
        err,
        GgufError::TensorSizeMismatch {
            expected: 16,
            actual: 15,
            ..
        }
    ));
    let err = w
        .add_tensor("q", &[33], GgmlType::Q8_0, vec![0; 34])
        .unwrap_err();
    assert!(
        matches!(err, GgufError::BadShape { ref tensor, .. } if tensor == "q"),
        "{err}"
    );
    let err = w
        .add_tensor("d", &[1; 5], GgmlType::F32, vec![0; 4])
        .unwrap_err();
    assert!(matches!(err, GgufError::TooManyDims { n_dims: 5, .. }));
    let err = w
        .add_tensor("o", &[u64::MAX, 2], GgmlType::F32, vec![])
        .unwrap_err();
    assert!(matches!(err, GgufError::BadShape { .. }));
    w.add_tensor("t", &[4], GgmlType::F32, vec![0; 16]).unwrap();
    let err = w
        .add_tensor("t", &[4], GgmlType::F32, vec![0; 16])
        .unwrap_err();
    assert!(matches!(err, GgufError::DuplicateTensor { ref tensor } if tensor == "t"));
    // The refused tensors left no trace.
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(f.tensors().len(), 1);
}

#[test]
fn add_kv_replaces_in_place() {
    let mut w = GgufWriter::new();
    w.add_kv("a", Value::U8(1));
    w.add_kv("b", Value::U8(2));
    w.add_kv("a", Value::String("again".into()));
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let keys: Vec<&str> = f.metadata().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(f.get_str("a"), Some("again"));
}

#[test]
fn invalid_pairs_are_refused_or_deferred() {
    let mixed = Value::Array(vec![Value::U8(1), Value::I8(1)]);
    let mut w = GgufWriter::new();
    let err = w.try_add_kv("m", mixed.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            GgufError::MixedArray {
                first: "u8",
                other: "i8",
                ..
            }
        ),
        "{err}"
    );
    let nested = Value::Array(vec![Value::Array(vec![Value::U8(1), Value::Bool(true)])]);
    assert!(w.try_add_kv("n", nested).is_err());
    assert!(matches!(
        w.try_add_kv("", Value::U8(0)),
        Err(GgufError::EmptyKey { .. })
    ));
    let err = w
        .try_add_kv("general.alignment", Value::U32(48))
        .unwrap_err();
    assert!(matches!(err, GgufError::BadAlignment { value: 48 }));
    let err = w
        .try_add_kv("general.alignment", Value::F32(32.0))
        .unwrap_err();
    assert!(matches!(err, GgufError::WrongType { .. }));
    assert!(w.try_to_bytes().is_ok());

    w.add_kv("m", mixed);
    w.add_kv("ok", Value::U8(1));
    assert!(matches!(
        w.try_to_bytes(),
        Err(GgufError::MixedArray { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let err = w.write_file(&dir.path().join("x.gguf")).unwrap_err();
    assert!(matches!(err, GgufError::MixedArray { .. }));
}

#[test]
#[should_panic(expected = "mixing")]
fn to_bytes_panics_on_a_deferred_error() {
    let mut w = GgufWriter::new();
    w.add_kv(
        "m",
        Value::Array(vec![Value::U8(1), Value::String("x".into())]),
    );
    let _ = w.to_bytes();
}

#[test]
fn write_file_reports_io_errors() {
    let w = GgufWriter::new();
    let err = w
        .write_file(std::path::Path::new("/nonexistent/dir/x.gguf"))
        .unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }));
}
