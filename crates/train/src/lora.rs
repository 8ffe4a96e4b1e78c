//! The trainable low-rank pairs: `y += s · B·(A·x)` next to a frozen weight, with their
//! gradients and AdamW moments.
//!
//! Layout and scale are llama.cpp's adapter conventions (`owl_model::lora`): A is
//! `[rank, n_in]`, B is `[n_out, rank]`, both row-major, and `s = alpha / rank`. A starts as
//! PEFT's Kaiming-uniform draw (bound `1/√n_in`) and B at zero, so the untrained adapter
//! leaves the model exactly as it was.
//!
//! Every product goes through [`crate::frozen::gemm_nt`] (the float GEMM kernels): the
//! rank-8 pairs of a 135M model are about a fiftieth of its weights, but summed over seven
//! targets and four passes they would dominate a step if written as scalar loops.

use owl_model::lora::{LoraTarget, Target};

use crate::frozen::{gemm_nt, transpose, Gemm};

/// One trained pair.
#[derive(Clone, Debug)]
pub struct LoraParam {
    pub target: LoraTarget,
    pub rank: usize,
    /// [rank, n_in]
    pub a: Vec<f32>,
    /// [n_out, rank]
    pub b: Vec<f32>,
    pub grad_a: Vec<f32>,
    pub grad_b: Vec<f32>,
    /// AdamW first and second moments of `a` then `b` (`[a.len() + b.len()]` each).
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// A small deterministic generator (SplitMix64) for the initial draw.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
    }
}

impl LoraParam {
    /// A fresh pair for `target`: A drawn uniformly in ±1/√n_in, B zero.
    pub fn new(target: LoraTarget, rank: usize, rng: &mut Rng) -> LoraParam {
        let bound = 1.0 / (target.n_in as f32).sqrt();
        let a: Vec<f32> = (0..rank * target.n_in)
            .map(|_| rng.uniform() * bound)
            .collect();
        let b = vec![0f32; target.n_out * rank];
        let n = a.len() + b.len();
        LoraParam {
            grad_a: vec![0.0; a.len()],
            grad_b: vec![0.0; b.len()],
            m: vec![0.0; n],
            v: vec![0.0; n],
            target,
            rank,
            a,
            b,
        }
    }

    pub fn n_params(&self) -> usize {
        self.a.len() + self.b.len()
    }

    /// `y += s·B·(A·x)` for the `n` rows of `x` ([n, n_in]); returns `z = A·x` ([n, rank]).
    pub fn forward(&self, g: Gemm<'_>, x: &[f32], n: usize, s: f32, y: &mut [f32]) -> Vec<f32> {
        let (r, no) = (self.rank, self.target.n_out);
        let mut z = vec![0f32; n * r];
        gemm_nt(g, &self.a, r, x, n, &mut z);
        let mut bz = vec![0f32; n * no];
        gemm_nt(g, &self.b, no, &z, n, &mut bz);
        for (o, &v) in y[..n * no].iter_mut().zip(&bz) {
            *o += s * v;
        }
        z
    }

    /// Adds this pair's gradients for output gradient `dy` ([n, n_out]), given the forward's
    /// input `x` and `z`, and adds its share of the input gradient to `dx` ([n, n_in]).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &mut self,
        g: Gemm<'_>,
        x: &[f32],
        z: &[f32],
        dy: &[f32],
        n: usize,
        s: f32,
        dx: &mut [f32],
    ) {
        let (r, ni, no) = (self.rank, self.target.n_in, self.target.n_out);
        // dB[o, k] += s Σ_t dy[t, o] z[t, k]
        let (zt, dyt) = (transpose(z, n, r), transpose(dy, n, no));
        let mut gb = vec![0f32; no * r];
        gemm_nt(g, &zt, r, &dyt, no, &mut gb);
        for (a, &b) in self.grad_b.iter_mut().zip(&gb) {
            *a += s * b;
        }
        // dz[t, k] = s Σ_o dy[t, o] B[o, k]
        let bt = transpose(&self.b, no, r);
        let mut dz = vec![0f32; n * r];
        gemm_nt(g, &bt, r, dy, n, &mut dz);
        for v in &mut dz {
            *v *= s;
        }
        // dA[k, c] += Σ_t dz[t, k] x[t, c]
        let (dzt, xt) = (transpose(&dz, n, r), transpose(x, n, ni));
        let mut ga = vec![0f32; ni * r];
        gemm_nt(g, &dzt, r, &xt, ni, &mut ga);
        for k in 0..r {
            for c in 0..ni {
                self.grad_a[k * ni + c] += ga[c * r + k];
            }
        }
        // dx[t, c] += Σ_k dz[t, k] A[k, c]
        let at = transpose(&self.a, r, ni);
        let mut d = vec![0f32; n * ni];
        gemm_nt(g, &at, ni, &dz, n, &mut d);
        for (a, &b) in dx[..n * ni].iter_mut().zip(&d) {
            *a += b;
        }
    }

    pub fn zero_grad(&mut self) {
        self.grad_a.fill(0.0);
        self.grad_b.fill(0.0);
    }
}

/// The adapter being trained: at most one pair per (layer, target).
#[derive(Clone, Debug)]
pub struct LoraSet {
    pub rank: usize,
    pub alpha: f32,
    pub layers: Vec<[Option<LoraParam>; 7]>,
}

impl LoraSet {
    /// Fresh pairs on every `targets` matrix the model offers (`offered`), seeded by `seed`.
    pub fn new(
        offered: &[LoraTarget],
        targets: &[Target],
        n_layer: usize,
        rank: usize,
        alpha: f32,
        seed: u64,
    ) -> LoraSet {
        let mut rng = Rng(seed);
        let mut layers: Vec<[Option<LoraParam>; 7]> =
            (0..n_layer).map(|_| Default::default()).collect();
        for t in offered {
            if targets.contains(&t.target) && t.layer < n_layer {
                layers[t.layer][t.target as usize] =
                    Some(LoraParam::new(t.clone(), rank, &mut rng));
            }
        }
        LoraSet {
            rank,
            alpha,
            layers,
        }
    }

    /// `alpha / rank`.
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    pub fn get(&self, layer: usize, t: Target) -> Option<&LoraParam> {
        self.layers.get(layer)?[t as usize].as_ref()
    }

    pub fn get_mut(&mut self, layer: usize, t: Target) -> Option<&mut LoraParam> {
        self.layers.get_mut(layer)?[t as usize].as_mut()
    }

    pub fn params(&self) -> impl Iterator<Item = &LoraParam> {
        self.layers.iter().flatten().flatten()
    }

    pub fn params_mut(&mut self) -> impl Iterator<Item = &mut LoraParam> {
        self.layers.iter_mut().flatten().flatten()
    }

    pub fn n_params(&self) -> usize {
        self.params().map(LoraParam::n_params).sum()
    }

    pub fn zero_grad(&mut self) {
        self.params_mut().for_each(LoraParam::zero_grad);
    }
}
