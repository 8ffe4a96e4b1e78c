//! GELU (tanh approximation) and the gated `geglu` of Gemma's feed-forward block, as llama.cpp's
//! CPU backend computes them.
//!
//! ggml does not evaluate the tanh formula per element: it builds `ggml_table_gelu_f16` once
//! (every f16 input → the f16 of `ggml_gelu_f32` of it) and `ggml_vec_geglu_f32` looks each gate
//! value up by the bits of its f16 rounding, except below -10 (0) and from 10 up (the identity).
//! The result is therefore quantized to f16 steps, and owl must quantize the same way to give the
//! same numbers: the table here is built with the same formula, float order and C library
//! `tanhf`, and `tests/gelu_table.rs` checks it entry for entry against the table read out of
//! llama.cpp's own library (`scripts/make_gelu_table.py`). The loop is ggml's, scalar in ggml
//! too, so this one function is both the reference and the kernel.

use std::sync::OnceLock;

use half::f16;

const GELU_COEF_A: f32 = 0.044715;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// `ggml_gelu_f32`: `0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))`, in C's left-to-right
/// float order with the C library's `tanhf`, and with the one FMA contraction llama.cpp's native
/// build makes (`1 + (0.044715 x) x`; without it one table entry, x = -1.999, differs).
pub fn gelu_f32(x: f32) -> f32 {
    let inner = (GELU_COEF_A * x).mul_add(x, 1.0);
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * inner).tanh())
}

/// ggml's `ggml_table_gelu_f16`: entry `i` is the f16 bits of `gelu_f32(f16::from_bits(i))`.
pub fn table() -> &'static [u16] {
    static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|i| f16::from_f32(gelu_f32(f16::from_bits(i).to_f32())).to_bits())
            .collect()
    })
}

/// `ggml_vec_geglu_f32` in place: `gate[i] = gelu(gate[i]) * up[i]`, the GELU looked up in
/// `table()` by the f16 rounding of the gate value (0 at or below -10, the identity at or above
/// 10).
pub fn geglu(gate: &mut [f32], up: &[f32]) {
    let t = table();
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * u
        } else {
            f16::from_bits(t[usize::from(f16::from_f32(x).to_bits())]).to_f32() * u
        };
    }
}

/// `ggml_vec_gelu_f32` in place (BERT's ungated FFN): `x = gelu(x)` looked up in `table()` by
/// the f16 rounding of `x` (0 at or below -10, the identity at or above 10).
pub fn gelu_in_place(x: &mut [f32]) {
    let t = table();
    for v in x.iter_mut() {
        if *v <= -10.0 {
            *v = 0.0;
        } else if *v < 10.0 {
            *v = f16::from_bits(t[usize::from(f16::from_f32(*v).to_bits())]).to_f32();
        }
    }
}

/// `gelu_in_place` with the elements split over the threads of `pool` (element-wise, so the
/// result is the same bits whatever the split). An encoder's FFN activation is n_tokens × n_ff
/// elements, too many for one thread while the others wait at the next matrix product.
pub fn gelu_in_place_par(pool: &crate::pool::ThreadPool, x: &mut [f32]) {
    const CHUNK: usize = 16 * 1024;
    if pool.n_threads() == 1 || x.len() <= CHUNK {
        gelu_in_place(x);
        return;
    }
    let (n, n_chunks) = (x.len(), x.len().div_ceil(CHUNK));
    let shared = crate::pool::SharedMut::new(x);
    pool.run_chunks(n_chunks, |c, _thread| {
        let start = c * CHUNK;
        // SAFETY: chunk c covers start..start + len inside `x`, and no other chunk touches it.
        gelu_in_place(unsafe { shared.slice(start, CHUNK.min(n - start)) });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_values() {
        // gelu(1) = 0.841192 (tanh form), gelu(-1) = -0.158808, gelu(0) = 0.
        assert!((gelu_f32(1.0) - 0.841_192).abs() < 1e-6);
        assert!((gelu_f32(-1.0) + 0.158_808).abs() < 1e-6);
        assert_eq!(gelu_f32(0.0), 0.0);
    }

    #[test]
    fn geglu_quantizes_through_f16_and_clips() {
        let mut g = vec![-11.0f32, -10.0, 0.0, 1.0, 1.0001, 10.0, 12.0];
        let u = [2.0f32, 2.0, 2.0, 3.0, 3.0, 0.5, 0.5];
        geglu(&mut g, &u);
        assert_eq!(&g[..3], &[0.0, 0.0, 0.0]);
        // 1.0001 rounds to the f16 1.0: the same table entry as 1.0.
        let one = f16::from_f32(gelu_f32(1.0)).to_f32() * 3.0;
        assert_eq!(g[3], one);
        assert_eq!(g[4], one);
        assert_eq!(g[5], 5.0);
        assert_eq!(g[6], 6.0);
    }
}
