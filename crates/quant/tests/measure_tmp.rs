mod common;
use common::*;
use owl_quant::GgmlType;
#[test]
fn measure() {
    let mut rng = Rng(1);
    for ty in [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q4_0, GgmlType::Q8_0] {
        for kind in 0..5 {
            let mut worst_rel: f64 = 0.0;
            let mut worst_max: f64 = 0.0;
            for _ in 0..200 {
                let x = rng.data(256, kind);
                let y = dequantize(ty, &quantize(ty, &x), 256);
                let e2: f64 = x.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
                let x2: f64 = x.iter().map(|a| (*a as f64).powi(2)).sum();
                let amax = x.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
                let emax = x.iter().zip(&y).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
                worst_rel = worst_rel.max((e2 / x2).sqrt());
                worst_max = worst_max.max(emax / amax);
            }
            println!("{ty} kind {kind}: worst rel rms {worst_rel:.4} worst max/amax {worst_max:.4}");
        }
    }
}
