//! Shared test helpers: fixture files and a small deterministic generator.
#![allow(dead_code)]

use owl_quant::{Format, GgmlType};
use std::path::PathBuf;

/// Bytes of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Little-endian `f32`s.
pub fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn fmt(ty: GgmlType) -> &'static Format {
    owl_quant::format(ty).unwrap_or_else(|| panic!("no format for {ty}"))
}

/// `n` elements of `ty` quantized with its reference quantizer.
pub fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let f = fmt(ty);
    let q = f
        .quantize
        .unwrap_or_else(|| panic!("{ty} has no quantizer"));
    let mut out = vec![0u8; f.row_bytes(x.len())];
    q(x, &mut out);
    out
}

pub fn dequantize(ty: GgmlType, b: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    (fmt(ty).dequantize)(b, &mut out);
    out
}

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = (self.uniform() as f64).max(1e-12);
        let u2 = self.uniform() as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Test data of `n` values in one of several shapes (Gaussian, scaled Gaussian, uniform,
    /// sparse with outliers, one-signed), chosen by `kind`.
    pub fn data(&mut self, n: usize, kind: usize) -> Vec<f32> {
        match kind % 5 {
            0 => (0..n).map(|_| self.normal()).collect(),
            1 => {
                let s = 10f32.powf(self.uniform() * 6.0 - 3.0);
                (0..n).map(|_| self.normal() * s).collect()
            }
            2 => (0..n).map(|_| self.uniform() * 2.0 - 1.0).collect(),
            3 => (0..n)
                .map(|_| {
                    if self.below(10) == 0 {
                        self.normal() * 20.0
                    } else {
                        self.normal() * 0.1
                    }
                })
                .collect(),
            _ => (0..n).map(|_| self.normal().abs() + 0.5).collect(),
        }
    }
}

/// Types that have fixtures.
pub const WEIGHT_TYPES: [GgmlType; 14] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::MXFP4,
];
