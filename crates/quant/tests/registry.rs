//! The registry lists every promised type once, with geometry consistent with `GgmlType`.

use owl_quant::GgmlType::{self, *};
use owl_quant::{format, formats, row_bytes};

/// (type, vec_dot_type, has vec_dot) as ggml's CPU type traits define them.
const EXPECTED: [(GgmlType, GgmlType, bool); 16] = [
    (F32, F32, true),
    (F16, F16, true),
    (BF16, BF16, true),
    (Q4_0, Q8_0, true),
    (Q4_1, Q8_1, true),
    (Q5_0, Q8_0, true),
    (Q5_1, Q8_1, true),
    (Q8_0, Q8_0, true),
    (Q8_1, Q8_1, false),
    (Q2_K, Q8_K, true),
    (Q3_K, Q8_K, true),
    (Q4_K, Q8_K, true),
    (Q5_K, Q8_K, true),
    (Q6_K, Q8_K, true),
    (Q8_K, Q8_K, false),
    (MXFP4, Q8_0, true),
];

#[test]
fn every_listed_type_has_a_consistent_format() {
    for (ty, dot_ty, has_dot) in EXPECTED {
        let f = format(ty).unwrap_or_else(|| panic!("{ty} missing"));
        assert_eq!(f.ty, ty);
        assert_eq!(f.name(), ty.name());
        assert_eq!(f.block_size, ty.block_size(), "{ty} block size");
        assert_eq!(f.type_size, ty.type_size(), "{ty} type size");
        assert_eq!(f.vec_dot_type, dot_ty, "{ty} vec_dot_type");
        assert_eq!(f.vec_dot.is_some(), has_dot, "{ty} vec_dot");
        assert!(f.quantize.is_some(), "{ty} quantize");
        // The activation format is itself registered and can be produced.
        let act = format(dot_ty).unwrap_or_else(|| panic!("{dot_ty} missing"));
        assert!(act.quantize.is_some(), "{dot_ty} quantize");
        assert_eq!(
            act.block_size % f.block_size,
            0,
            "{ty}: activation blocks split weight blocks"
        );
    }
}

#[test]
fn registry_has_nothing_else_and_no_duplicates() {
    assert_eq!(formats().len(), EXPECTED.len());
    for (i, f) in formats().iter().enumerate() {
        assert!(EXPECTED.iter().any(|e| e.0 == f.ty), "{} unexpected", f.ty);
        assert!(
            formats()[..i].iter().all(|g| g.ty != f.ty),
            "{} listed twice",
            f.ty
        );
    }
    for ty in GgmlType::all() {
        let listed = EXPECTED.iter().any(|e| e.0 == ty);
        assert_eq!(format(ty).is_some(), listed, "{ty}");
    }
}

#[test]
fn row_bytes_agrees_with_gguf_sizes() {
    for ty in GgmlType::all() {
        for blocks in [0usize, 1, 3, 64] {
            let n = blocks * ty.block_size();
            assert_eq!(
                Some(row_bytes(ty, n) as u64),
                ty.bytes_for(n as u64),
                "{ty} x {n}"
            );
            if let Some(f) = format(ty) {
                assert_eq!(f.row_bytes(n), row_bytes(ty, n));
            }
        }
    }
}
