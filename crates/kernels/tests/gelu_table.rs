//! owl's GELU table equals the one llama.cpp's CPU backend builds, entry for entry
//! (`fixtures/ggml_gelu_f16.bin`, read out of `libggml-cpu.so` by `scripts/make_gelu_table.py`):
//! all 63,490 finite and infinite inputs bit for bit.

use std::path::Path;

#[test]
fn gelu_table_matches_ggml() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ggml_gelu_f16.bin");
    let bytes = std::fs::read(&path).expect("fixture");
    assert_eq!(bytes.len(), 2 << 16);
    let want: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let got = owl_kernels::gelu::table();
    // A NaN input gives a NaN whose payload bits differ (F16C's conversion against `half`'s):
    // equal as values, so NaN entries only have to be NaN on both sides.
    let nan = |b: u16| b & 0x7c00 == 0x7c00 && b & 0x03ff != 0;
    let bad: Vec<usize> = (0..want.len())
        .filter(|&i| {
            if nan(i as u16) {
                !(nan(got[i]) && nan(want[i]))
            } else {
                got[i] != want[i]
            }
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} entries differ from ggml's, first at input bits {:#06x}: owl {:#06x}, ggml {:#06x}",
        bad.len(),
        bad[0],
        got[bad[0]],
        want[bad[0]]
    );
}
