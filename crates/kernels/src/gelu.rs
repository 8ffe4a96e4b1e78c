//! GELU for encoder feed-forward layers, as ggml's CPU backend computes it.
//!
//! ggml builds with `GGML_GELU_FP16`: the tanh approximation
//! `0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))` is tabulated once for every f16 value,
//! and an input is rounded to f16, looked up, and the f16 result widened back; inputs at or
//! below -10 give 0 and at or above 10 give `x`. owl builds the same 65 536-entry table on
//! first use, so BERT's FFN activations match llama.cpp's bit for bit. (Gemma's gated
//! GELU-tanh FFN lives elsewhere; this is the ungated BERT one.)

use std::sync::OnceLock;

use half::f16;

const GELU_COEF_A: f32 = 0.044715;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// The tanh-approximated GELU in f32 (ggml's `ggml_gelu_f32`).
pub fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)).tanh())
}

/// ggml's `ggml_table_gelu_f16`: `f16(gelu(f32(h)))` for every f16 bit pattern `h`.
fn table() -> &'static [f16] {
    static TABLE: OnceLock<Vec<f16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_f32(f16::from_bits(bits).to_f32())))
            .collect()
    })
}

/// `x = gelu(x)` in place, through the f16 table as ggml's `ggml_vec_gelu_f32` does.
pub fn gelu_in_place(x: &mut [f32]) {
    let t = table();
    for v in x.iter_mut() {
        if *v <= -10.0 {
            *v = 0.0;
        } else if *v < 10.0 {
            *v = t[f16::from_f32(*v).to_bits() as usize].to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_close_to_the_exact_function() {
        let mut x: Vec<f32> = (-1200..1200).map(|i| i as f32 * 0.01).collect();
        let want: Vec<f64> = x
            .iter()
            .map(|&v| {
                let v = v as f64;
                0.5 * v
                    * (1.0
                        + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh())
            })
            .collect();
        gelu_in_place(&mut x);
        for (i, (&got, &w)) in x.iter().zip(&want).enumerate() {
            // f16 rounding of input and output: about 1e-3 relative.
            assert!(
                (got as f64 - w).abs() <= 2e-3 * w.abs().max(1.0),
                "{i}: {got} vs {w}"
            );
        }
        let mut edge = [-10.0f32, -20.0, 10.0, 31.5];
        gelu_in_place(&mut edge);
        assert_eq!(edge, [0.0, 0.0, 10.0, 31.5]);
    }

    #[test]
    fn matches_the_f16_lookup() {
        let mut x = [0.3f32, -1.7, 2.25, -0.001];
        let want: Vec<f32> = x
            .iter()
            .map(|&v| f16::from_f32(gelu_f32(f16::from_f32(v).to_f32())).to_f32())
            .collect();
        gelu_in_place(&mut x);
        assert_eq!(x.to_vec(), want);
    }
}
