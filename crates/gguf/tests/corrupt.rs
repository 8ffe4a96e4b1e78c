//! Hostile and damaged files: every one must give a typed error, never a panic or a huge
//! allocation.
#![allow(clippy::unwrap_used)]

mod common;

use common::{one_tensor, parse_err, sample_writer, Raw};
use owl_gguf::{GgufError, GgufFile, GgufWriter, Value};

const F32: u32 = 0;
const Q8_0: u32 = 8;

#[test]
fn truncation_anywhere_is_an_error() {
    let bytes = sample_writer().to_bytes();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    let header_end = f.data_offset() as usize;
    let data_end = header_end
        + f.tensors()
            .iter()
            .map(|t| (t.offset + t.n_bytes) as usize)
            .max()
            .unwrap();
    let cuts = (0..header_end).chain((header_end..data_end).step_by(7));
    for cut in cuts {
        let err = parse_err(bytes[..cut].to_vec());
        assert!(
            matches!(
                err,
                GgufError::Truncated { .. }
                    | GgufError::CountTooLarge { .. }
                    | GgufError::TensorOutOfRange { .. }
            ),
            "cut at {cut}: {err}"
        );
        if cut >= header_end {
            assert!(
                matches!(err, GgufError::TensorOutOfRange { .. }),
                "cut at {cut}: {err}"
            );
        }
    }
}

#[test]
fn truncated_errors_name_what_and_where() {
    let bytes = sample_writer().to_bytes();
    match parse_err(bytes[..10].to_vec()) {
        GgufError::Truncated { what, offset, .. } => {
            assert_eq!((what.as_str(), offset), ("tensor_count", 8))
        }
        e => panic!("{e}"),
    }
    // Cut inside the string value of a key.
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::String("llama".into()));
    let cut = 24 + 8 + "general.architecture".len() + 4 + 8 + 2;
    let err = parse_err(w.to_bytes()[..cut].to_vec());
    assert!(
        matches!(
            err,
            GgufError::Truncated {
                offset: 64,
                needed: 5,
                available: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("'general.architecture'"), "{err}");
    assert!(matches!(
        parse_err(vec![]),
        GgufError::Truncated { offset: 0, .. }
    ));
    assert!(matches!(
        parse_err(b"GGU".to_vec()),
        GgufError::Truncated { .. }
    ));
}

#[test]
fn bad_magic() {
    let mut bytes = sample_writer().to_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    let err = parse_err(bytes);
    assert!(
        matches!(err, GgufError::BadMagic { magic: 0x4c4d_4747 }),
        "{err}"
    );
    assert!(err.to_string().contains("0x4c4d4747"));
}

#[test]
fn unsupported_versions() {
    for v in [0, 1, 4, 99] {
        let err = parse_err(Raw::header(v, 0, 0).finish());
        assert!(
            matches!(err, GgufError::UnsupportedVersion { version } if version == v),
            "{err}"
        );
    }
    // Version 3 written big-endian.
    let err = parse_err(Raw::header(3u32.swap_bytes(), 0, 0).finish());
    assert!(
        matches!(err, GgufError::BigEndian { raw: 0x0300_0000 }),
        "{err}"
    );
    assert!(err.to_string().contains("big-endian"));
}

#[test]
fn absurd_counts() {
    let huge = 1u64 << 60;
    let err = parse_err(Raw::header(3, huge, 0).finish());
    assert!(
        matches!(err, GgufError::CountTooLarge { count, ref what, .. } if count == huge && what == "tensor_count"),
        "{err}"
    );
    let err = parse_err(Raw::header(3, 0, huge).finish());
    assert!(
        matches!(err, GgufError::CountTooLarge { count, .. } if count == huge),
        "{err}"
    );
    let err = parse_err(Raw::header(3, 0, u64::MAX).bytes(&[0; 64]).finish());
    assert!(matches!(err, GgufError::CountTooLarge { .. }), "{err}");
}

#[test]
fn absurd_string_lengths() {
    // Key length 2^60.
    let err = parse_err(
        Raw::header(3, 0, 1)
            .u64(1 << 60)
            .bytes(&[b'a'; 32])
            .finish(),
    );
    assert!(
        matches!(err, GgufError::Truncated { needed, .. } if needed == 1 << 60),
        "{err}"
    );
    // String value length 2^60.
    let err = parse_err(
        Raw::header(3, 0, 1)
            .str("k")
            .u32(8)
            .u64(1 << 60)
            .bytes(&[0; 32])
            .finish(),
    );
    assert!(matches!(err, GgufError::Truncated { .. }), "{err}");
    // Tensor name length u64::MAX.
    let err = parse_err(Raw::header(3, 1, 0).u64(u64::MAX).bytes(&[0; 32]).finish());
    assert!(matches!(err, GgufError::Truncated { .. }), "{err}");
}

#[test]
fn absurd_array_counts() {
    for (elem_type, count) in [
        (0u32, 1u64 << 40),
        (8, 1 << 60),
        (9, 1 << 40),
        (12, u64::MAX),
    ] {
        let bytes = Raw::header(3, 0, 1)
            .str("arr")
            .u32(9)
            .u32(elem_type)
            .u64(count)
            .bytes(&[0; 64])
            .finish();
        let err = parse_err(bytes);
        assert!(
            matches!(err, GgufError::CountTooLarge { count: c, .. } if c == count),
            "type {elem_type}: {err}"
        );
    }
    // Each string element needs at least 8 bytes: 5 strings cannot fit in 32 bytes.
    let bytes = Raw::header(3, 0, 1)
        .str("arr")
        .u32(9)
        .u32(8)
        .u64(5)
        .bytes(&[0; 32])
        .finish();
    assert!(matches!(parse_err(bytes), GgufError::CountTooLarge { .. }));
}

#[test]
fn bad_metadata() {
    let err = parse_err(Raw::header(3, 0, 1).str("k").u32(13).u32(0).finish());
    assert!(
        matches!(err, GgufError::UnknownValueType { id: 13, .. }),
        "{err}"
    );
    let err = parse_err(Raw::header(3, 0, 1).str("k").u32(9).u32(77).u64(0).finish());
    assert!(
        matches!(err, GgufError::UnknownValueType { id: 77, .. }),
        "{err}"
    );
    let err = parse_err(Raw::header(3, 0, 2).kv_u32("k", 1).kv_u32("k", 2).finish());
    assert!(
        matches!(err, GgufError::DuplicateKey { ref key } if key == "k"),
        "{err}"
    );
    let err = parse_err(Raw::header(3, 0, 1).kv_u32("", 1).finish());
    assert!(matches!(err, GgufError::EmptyKey { offset: 24 }), "{err}");
    let err = parse_err(
        Raw::header(3, 0, 1)
            .u64(2)
            .bytes(&[0xff, 0xfe])
            .u32(4)
            .u32(0)
            .finish(),
    );
    assert!(
        matches!(err, GgufError::InvalidUtf8 { offset: 24, .. }),
        "{err}"
    );
    let err = parse_err(
        Raw::header(3, 0, 1)
            .str("s")
            .u32(8)
            .u64(1)
            .bytes(&[0x80])
            .finish(),
    );
    assert!(matches!(err, GgufError::InvalidUtf8 { .. }), "{err}");
}

#[test]
fn bad_alignment() {
    for a in [0, 3, 48] {
        let err = parse_err(Raw::header(3, 0, 1).kv_u32("general.alignment", a).finish());
        assert!(
            matches!(err, GgufError::BadAlignment { value } if value == u64::from(a)),
            "{err}"
        );
    }
    let err = parse_err(
        Raw::header(3, 0, 1)
            .str("general.alignment")
            .u32(8)
            .str("32")
            .finish(),
    );
    assert!(
        matches!(
            err,
            GgufError::WrongType {
                found: "string",
                ..
            }
        ),
        "{err}"
    );
    let f =
        GgufFile::from_bytes(Raw::header(3, 0, 1).kv_u32("general.alignment", 1).finish()).unwrap();
    assert_eq!(f.alignment, 1);
}

#[test]
fn bad_tensor_infos() {
    let err = parse_err(one_tensor(&[8], F32, 64, 32));
    assert!(
        matches!(err, GgufError::TensorOutOfRange { ref tensor, .. } if tensor == "t"),
        "{err}"
    );
    let err = parse_err(one_tensor(&[8], F32, u64::MAX - 31, 32));
    assert!(matches!(err, GgufError::TensorOutOfRange { .. }), "{err}");
    let err = parse_err(one_tensor(&[8], F32, 4, 64));
    assert!(
        matches!(
            err,
            GgufError::MisalignedTensor {
                offset: 4,
                alignment: 32,
                ..
            }
        ),
        "{err}"
    );
    let err = parse_err(one_tensor(&[8], 4, 0, 32));
    assert!(
        matches!(err, GgufError::UnknownTensorType { ref tensor, id: 4 } if tensor == "t"),
        "{err}"
    );
    let err = parse_err(one_tensor(&[8], 1000, 0, 32));
    assert!(
        matches!(err, GgufError::UnknownTensorType { id: 1000, .. }),
        "{err}"
    );
    let err = parse_err(one_tensor(&[1, 1, 1, 1, 1], F32, 0, 32));
    assert!(
        matches!(err, GgufError::TooManyDims { n_dims: 5, .. }),
        "{err}"
    );
    let err = parse_err(
        Raw::header(3, 1, 0)
            .str("t")
            .u32(u32::MAX)
            .bytes(&[0; 64])
            .finish(),
    );
    assert!(matches!(err, GgufError::TooManyDims { .. }), "{err}");
    let err = parse_err(one_tensor(&[1 << 32, 1 << 32], F32, 0, 32));
    assert!(
        matches!(err, GgufError::BadShape { ref tensor, .. } if tensor == "t"),
        "{err}"
    );
    let err = parse_err(one_tensor(&[u64::MAX], F32, 0, 32));
    assert!(matches!(err, GgufError::BadShape { .. }), "{err}");
    let err = parse_err(one_tensor(&[48, 2], Q8_0, 0, 256));
    assert!(matches!(err, GgufError::BadShape { .. }), "{err}");
    let two = Raw::header(3, 2, 0)
        .tensor("t", &[8], F32, 0)
        .tensor("t", &[8], F32, 32)
        .data(32, 64)
        .finish();
    assert!(matches!(parse_err(two), GgufError::DuplicateTensor { ref tensor } if tensor == "t"));
    // The same file with distinct names is fine.
    let ok = Raw::header(3, 2, 0)
        .tensor("t", &[8], F32, 0)
        .tensor("u", &[8], F32, 32)
        .data(32, 64)
        .finish();
    assert_eq!(GgufFile::from_bytes(ok).unwrap().tensors().len(), 2);
}

#[test]
fn names_in_messages_are_escaped_and_shortened() {
    let err = parse_err(
        Raw::header(3, 0, 2)
            .kv_u32("a\nb", 1)
            .kv_u32("a\nb", 1)
            .finish(),
    );
    assert!(err.to_string().contains("'a\\nb'"), "{err}");
    let long = "x".repeat(10_000);
    let err = parse_err(one_tensor_named(&long));
    let msg = err.to_string();
    assert!(matches!(err, GgufError::UnknownTensorType { ref tensor, .. } if tensor == &long));
    assert!(msg.len() < 300, "{msg}");
}

fn one_tensor_named(name: &str) -> Vec<u8> {
    Raw::header(3, 1, 0)
        .tensor(name, &[8], 4, 0)
        .data(32, 32)
        .finish()
}

#[test]
fn huge_alignment_does_not_overflow() {
    let bytes = Raw::header(3, 1, 1)
        .kv_u32("general.alignment", 1 << 31)
        .tensor("t", &[8], F32, 0)
        .finish();
    assert!(matches!(
        parse_err(bytes),
        GgufError::TensorOutOfRange { .. }
    ));
}

/// Deterministic xorshift so failures reproduce.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_header_corruption_never_panics() {
    let bytes = sample_writer().to_bytes();
    let header_end = GgufFile::from_bytes(bytes.clone()).unwrap().data_offset() as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next(&mut state) % 4 {
            let at = (next(&mut state) % header_end as u64) as usize;
            b[at] = next(&mut state) as u8;
        }
        if let Err(e) = GgufFile::from_bytes(b) {
            assert!(!e.to_string().contains('\n'));
        }
    }
}
