//! AdamW (Loshchilov & Hutter) over the LoRA pairs, with global gradient-norm clipping and a
//! linear warm-up then linear decay of the learning rate — the defaults of Hugging Face's
//! `Trainer`, which PEFT users know.

use crate::lora::{LoraParam, LoraSet};

/// Optimizer settings.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Gradients are scaled down to this global L2 norm when above it (0: no clipping).
    pub max_grad_norm: f32,
    /// Steps of linear warm-up.
    pub warmup: usize,
    /// Steps in the whole run (the learning rate decays linearly to 0 at the end).
    pub total: usize,
}

impl AdamW {
    /// The learning rate at step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f32 {
        if step < self.warmup {
            return self.lr * (step + 1) as f32 / self.warmup as f32;
        }
        let left = self.total.saturating_sub(step) as f32;
        let span = self.total.saturating_sub(self.warmup).max(1) as f32;
        self.lr * (left / span).clamp(0.0, 1.0)
    }

    /// Applies step `step` (0-based; bias correction uses `step + 1`) to every pair and
    /// returns the gradient norm before clipping.
    pub fn step(&self, lora: &mut LoraSet, step: usize) -> f32 {
        let norm = lora
            .params()
            .flat_map(|p| p.grad_a.iter().chain(&p.grad_b))
            .map(|&g| (g as f64) * (g as f64))
            .sum::<f64>()
            .sqrt() as f32;
        let clip = if self.max_grad_norm > 0.0 && norm > self.max_grad_norm {
            self.max_grad_norm / norm
        } else {
            1.0
        };
        let lr = self.lr_at(step);
        let t = (step + 1) as i32;
        let (bc1, bc2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        for p in lora.params_mut() {
            self.update(p, clip, lr, bc1, bc2);
        }
        norm
    }

    fn update(&self, p: &mut LoraParam, clip: f32, lr: f32, bc1: f32, bc2: f32) {
        let (m, v) = (&mut p.m, &mut p.v);
        let params =
            p.a.iter_mut()
                .zip(&p.grad_a)
                .chain(p.b.iter_mut().zip(&p.grad_b));
        for (i, (w, &g)) in params.enumerate() {
            let g = g * clip;
            m[i] = self.beta1 * m[i] + (1.0 - self.beta1) * g;
            v[i] = self.beta2 * v[i] + (1.0 - self.beta2) * g * g;
            let mh = m[i] / bc1;
            let vh = v[i] / bc2;
            *w -= lr * (mh / (vh.sqrt() + self.eps) + self.weight_decay * *w);
        }
    }
}
