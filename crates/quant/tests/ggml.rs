//! Bit-exact agreement with llama.cpp's own C code: `fixtures/ggml/` holds the output of ggml's
//! `quantize_row_*_ref` and `ggml_vec_dot_*_generic` (built without FMA contraction by
//! `fixtures/ggml/make_ggml_fixtures.sh`) on `fixtures/input.f32` and `fixtures/act.f32`.

mod common;

use common::{fixture, floats, fmt, quantize};
use owl_quant::GgmlType::{self, *};

const ROWS: usize = 4;
const COLS: usize = 512;

fn assert_blocks_eq(ty: GgmlType, got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{ty} {what}");
    let ts = fmt(ty).type_size;
    for (i, (g, w)) in got.chunks(ts).zip(want.chunks(ts)).enumerate() {
        assert_eq!(g, w, "{ty} {what}: block {i} differs from ggml");
    }
}

#[test]
fn reference_quantizers_match_ggml_bytes() {
    let x = floats(&fixture("input.f32"));
    for ty in [
        Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
    ] {
        let want = fixture(&format!("ggml/{ty}.q"));
        assert_blocks_eq(ty, &quantize(ty, &x), &want, "quantize(input)");
    }
    let a = floats(&fixture("act.f32"));
    for ty in [Q8_0, Q8_1, Q8_K] {
        let want = fixture(&format!("ggml/{ty}.act"));
        assert_blocks_eq(ty, &quantize(ty, &a), &want, "quantize(act)");
    }
}

#[test]
fn dot_products_match_ggml_bits() {
    let want = floats(&fixture("ggml/dots.f32"));
    let mut k = 0;
    for ty in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K] {
        let f = fmt(ty);
        let af = fmt(f.vec_dot_type);
        let w = fixture(&format!("ggml/{ty}.q"));
        let a = fixture(&format!("ggml/{}.act", f.vec_dot_type));
        let dot = f.vec_dot.unwrap_or_else(|| panic!("{ty}"));
        let (rb, arb) = (f.row_bytes(COLS), af.row_bytes(COLS));
        for r in 0..ROWS {
            for n in [COLS, 256] {
                let got = dot(
                    n,
                    &w[r * rb..][..f.row_bytes(n)],
                    &a[r * arb..][..af.row_bytes(n)],
                );
                assert_eq!(
                    got.to_bits(),
                    want[k].to_bits(),
                    "{ty} row {r} n {n}: owl {got:e}, ggml {:e}",
                    want[k]
                );
                k += 1;
            }
        }
    }
    assert_eq!(k, want.len());
}
