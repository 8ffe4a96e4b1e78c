//! Bit-exact agreement with the `gguf` Python package (fixtures from `fixtures/make_fixtures.py`).

mod common;

use common::{dequantize, fixture, floats, fmt, quantize, WEIGHT_TYPES};
use owl_quant::GgmlType;

const ROWS: usize = 4;
const COLS: usize = 512;

#[test]
fn dequantize_matches_python_bit_for_bit() {
    for ty in WEIGHT_TYPES {
        let q = fixture(&format!("{ty}.q"));
        let want = floats(&fixture(&format!("{ty}.f32")));
        assert_eq!(want.len(), ROWS * COLS, "{ty}");
        let got = dequantize(ty, &q, ROWS * COLS);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{ty} element {i}: owl {g:e}, python {w:e}"
            );
        }
    }
}

#[test]
fn dequantize_row_by_row_matches_whole_tensor() {
    for ty in WEIGHT_TYPES {
        let f = fmt(ty);
        let q = fixture(&format!("{ty}.q"));
        let want = floats(&fixture(&format!("{ty}.f32")));
        let rb = f.row_bytes(COLS);
        for r in 0..ROWS {
            let got = dequantize(ty, &q[r * rb..(r + 1) * rb], COLS);
            let same = got
                .iter()
                .zip(&want[r * COLS..])
                .all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "{ty} row {r}");
        }
    }
}

/// Our reference quantizers produce the same bytes as python's for every format python can
/// quantize (python's Q4_0..Q8_0 quantizers mirror ggml's `*_ref` functions).
#[test]
fn quantize_matches_python_bytes() {
    let x = floats(&fixture("input.f32"));
    assert_eq!(x.len(), ROWS * COLS);
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::MXFP4,
    ] {
        let want = fixture(&format!("{ty}.q"));
        let got = quantize(ty, &x);
        assert_eq!(got.len(), want.len(), "{ty}");
        let tsz = fmt(ty).type_size;
        for (i, (g, w)) in got.chunks(tsz).zip(want.chunks(tsz)).enumerate() {
            assert_eq!(g, w, "{ty} block {i}");
        }
    }
}
