//! The differentiable pieces of a decoder layer, each a forward and its backward, in plain f32
//! over `[n_tokens, width]` rows: RMSNorm, the SiLU-gated product, RoPE, causal attention and
//! the cross-entropy of the output head.
//!
//! Why written out rather than taken from inference: the inference kernels are tuned for
//! one direction and some round on purpose (f16 K/V cache, quantized activations). Training
//! needs a function and its exact derivative, so each forward here is the plain definition and
//! each backward is derived from it (the finite-difference tests in `tests/gradients.rs` check
//! every one).

use owl_kernels::pool::SharedMut;
use owl_kernels::rope::RopeConfig;
use owl_kernels::ThreadPool;

/// `y = x / rms(x) · w` per row; returns each row's `1/rms` for the backward pass.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) -> Vec<f32> {
    let n = w.len();
    let mut inv = Vec::with_capacity(x.len() / n);
    for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let ss: f64 = xr.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let s = (1.0 / (ss / n as f64 + eps as f64).sqrt()) as f32;
        for ((o, &v), &wv) in yr.iter_mut().zip(xr).zip(w) {
            *o = v * s * wv;
        }
        inv.push(s);
    }
    inv
}

/// `dx += ∂(rms_norm)ᵀ · dy`, with `inv` from the forward pass.
pub fn rms_norm_back(x: &[f32], w: &[f32], inv: &[f32], dy: &[f32], dx: &mut [f32]) {
    let n = w.len();
    for (((xr, dyr), dxr), &s) in x
        .chunks_exact(n)
        .zip(dy.chunks_exact(n))
        .zip(dx.chunks_exact_mut(n))
        .zip(inv)
    {
        // y_i = s·x_i·w_i with s = (mean(x²) + eps)^(-1/2): ∂s/∂x_j = -s³·x_j/n.
        let gx: f64 = (0..n).map(|i| (dyr[i] * w[i]) as f64 * xr[i] as f64).sum();
        let k = (gx * (s as f64).powi(3) / n as f64) as f32;
        for i in 0..n {
            dxr[i] += s * dyr[i] * w[i] - k * xr[i];
        }
    }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// `a = silu(g) · u`.
pub fn swiglu(g: &[f32], u: &[f32], a: &mut [f32]) {
    for ((o, &gv), &uv) in a.iter_mut().zip(g).zip(u) {
        *o = gv * sigmoid(gv) * uv;
    }
}

/// The gradients of `g` and `u` from that of `a` (written, not added).
pub fn swiglu_back(g: &[f32], u: &[f32], da: &[f32], dg: &mut [f32], du: &mut [f32]) {
    for i in 0..da.len() {
        let s = sigmoid(g[i]);
        let silu = g[i] * s;
        du[i] = da[i] * silu;
        dg[i] = da[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
    }
}

/// Rotates every head of the rows of `x` ([n, n_heads·head_dim]) by its position's angles;
/// with `inverse`, by the opposite angles — the transpose, which is the backward pass of a
/// rotation (also under a YaRN magnitude factor, which scales cos and sin alike).
pub fn rope(
    cfg: &RopeConfig,
    x: &mut [f32],
    width: usize,
    head_dim: usize,
    pos: &[usize],
    inverse: bool,
) {
    let mut cs = vec![(0f32, 0f32); cfg.n_dims / 2];
    for (row, &p) in x.chunks_exact_mut(width).zip(pos) {
        cfg.angles(p as u32, &mut cs, false);
        if inverse {
            for c in cs.iter_mut() {
                c.1 = -c.1;
            }
        }
        cfg.apply(row, head_dim, &cs, false);
    }
}

/// Per-head RMSNorm of a `[n, heads·head_dim]` buffer in place (Qwen3's Q/K norms); returns the
/// input (for the backward pass) and each head's `1/rms`.
pub fn head_norm(x: &mut [f32], w: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let input = x.to_vec();
    let inv = rms_norm(&input, w, eps, x);
    (input, inv)
}

/// Shapes of one attention computation.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Scores are `scale · q·k`.
    pub scale: f32,
    /// A key at distance `window` or more is masked (`None`: none is).
    pub window: Option<usize>,
}

impl AttnShape {
    fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
    /// The first key position query `i` sees.
    fn first(&self, i: usize) -> usize {
        self.window.map_or(0, |w| (i + 1).saturating_sub(w))
    }
}

/// The attention probabilities of every (sequence, head): `probs[s][h]` is `[len, len]`, row
/// `i` holding query `i`'s softmax over keys `0..=i` (zeros past `i`).
pub type Probs = Vec<Vec<Vec<f32>>>;

/// Causal attention of each sequence (`seqs`: (first row, length)) over itself: `q` [n, q_dim],
/// `k`/`v` [n, kv_dim] → `o` [n, q_dim]. Returns the probabilities for the backward pass.
pub fn attention(
    pool: &ThreadPool,
    sh: AttnShape,
    seqs: &[(usize, usize)],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    o: &mut [f32],
) -> Probs {
    let (hd, qd, kd) = (sh.head_dim, sh.q_dim(), sh.kv_dim());
    let group = sh.n_head / sh.n_head_kv;
    let n_tasks = seqs.len() * sh.n_head;
    let mut flat: Vec<Vec<f32>> = vec![Vec::new(); n_tasks];
    let probs_out = SharedMut::new(&mut flat);
    let os = SharedMut::new(o);
    pool.run_chunks(n_tasks, |task, _| {
        let (si, h) = (task / sh.n_head, task % sh.n_head);
        let (start, len) = seqs[si];
        let kh = h / group;
        let mut p = vec![0f32; len * len];
        for i in 0..len {
            let qi = &q[(start + i) * qd + h * hd..][..hd];
            let row = &mut p[i * len..(i + 1) * len];
            let first = sh.first(i);
            let mut max = f32::NEG_INFINITY;
            for j in first..=i {
                let kj = &k[(start + j) * kd + kh * hd..][..hd];
                let s = sh.scale * dot(qi, kj);
                row[j] = s;
                max = max.max(s);
            }
            let mut sum = 0f32;
            for pj in &mut row[first..=i] {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            for pj in &mut row[first..=i] {
                *pj /= sum;
            }
            // SAFETY: task (s, h) alone writes head h of its sequence's rows.
            let oi = unsafe { os.slice((start + i) * qd + h * hd, hd) };
            oi.fill(0.0);
            for j in first..=i {
                let vj = &v[(start + j) * kd + kh * hd..][..hd];
                for (a, &b) in oi.iter_mut().zip(vj) {
                    *a += row[j] * b;
                }
            }
        }
        // SAFETY: each task writes its own slot.
        unsafe { probs_out.write(task, p) };
    });
    let mut it = flat.into_iter();
    seqs.iter()
        .map(|_| it.by_ref().take(sh.n_head).collect())
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The backward pass of [`attention`]: from `dout` [n, q_dim], writes `dq` [n, q_dim] and
/// `dk`, `dv` [n, kv_dim] (overwritten). One task per (sequence, KV head), so the query heads
/// that share a K/V head add into it in a fixed order.
#[allow(clippy::too_many_arguments)]
pub fn attention_back(
    pool: &ThreadPool,
    sh: AttnShape,
    seqs: &[(usize, usize)],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &Probs,
    dout: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
) {
    let (hd, qd, kd) = (sh.head_dim, sh.q_dim(), sh.kv_dim());
    let group = sh.n_head / sh.n_head_kv;
    let n_tasks = seqs.len() * sh.n_head_kv;
    let (dqs, dks, dvs) = (SharedMut::new(dq), SharedMut::new(dk), SharedMut::new(dv));
    pool.run_chunks(n_tasks, |task, _| {
        let (si, kh) = (task / sh.n_head_kv, task % sh.n_head_kv);
        let (start, len) = seqs[si];
        let mut dkh = vec![0f32; len * hd];
        let mut dvh = vec![0f32; len * hd];
        let mut ds = vec![0f32; len];
        for h in kh * group..(kh + 1) * group {
            let p = &probs[si][h];
            for i in 0..len {
                let first = sh.first(i);
                let row = &p[i * len..(i + 1) * len];
                let doi = &dout[(start + i) * qd + h * hd..][..hd];
                let qi = &q[(start + i) * qd + h * hd..][..hd];
                // dP_ij = dO_i·v_j; dS_ij = P_ij (dP_ij − Σ_k P_ik dP_ik).
                let mut acc = 0f32;
                for j in first..=i {
                    let vj = &v[(start + j) * kd + kh * hd..][..hd];
                    ds[j] = dot(doi, vj);
                    acc += row[j] * ds[j];
                    for (a, &b) in dvh[j * hd..(j + 1) * hd].iter_mut().zip(doi) {
                        *a += row[j] * b;
                    }
                }
                // SAFETY: task (s, kv head) alone writes the query heads of its group.
                let dqi = unsafe { dqs.slice((start + i) * qd + h * hd, hd) };
                dqi.fill(0.0);
                for j in first..=i {
                    let g = row[j] * (ds[j] - acc) * sh.scale;
                    let kj = &k[(start + j) * kd + kh * hd..][..hd];
                    for (a, &b) in dqi.iter_mut().zip(kj) {
                        *a += g * b;
                    }
                    for (a, &b) in dkh[j * hd..(j + 1) * hd].iter_mut().zip(qi) {
                        *a += g * b;
                    }
                }
            }
        }
        for j in 0..len {
            // SAFETY: task (s, kv head) alone writes that head of its sequence's rows.
            unsafe {
                dks.slice((start + j) * kd + kh * hd, hd)
                    .copy_from_slice(&dkh[j * hd..(j + 1) * hd]);
                dvs.slice((start + j) * kd + kh * hd, hd)
                    .copy_from_slice(&dvh[j * hd..(j + 1) * hd]);
            }
        }
    });
}

/// Cross-entropy of `logits` ([m, n_vocab]) against `targets`: returns the summed loss and
/// overwrites `logits` with `(softmax − onehot) · grad_scale`.
pub fn cross_entropy(logits: &mut [f32], n_vocab: usize, targets: &[u32], grad_scale: f32) -> f64 {
    let mut total = 0f64;
    for (row, &t) in logits.chunks_exact_mut(n_vocab).zip(targets) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
        let lse = max as f64 + sum.ln();
        total += lse - row[t as usize] as f64;
        for v in row.iter_mut() {
            *v = (((*v as f64) - lse).exp() as f32) * grad_scale;
        }
        row[t as usize] -= grad_scale;
    }
    total
}

/// The summed cross-entropy of `logits` against `targets`, without gradients.
pub fn loss_only(logits: &[f32], n_vocab: usize, targets: &[u32]) -> f64 {
    logits
        .chunks_exact(n_vocab)
        .zip(targets)
        .map(|(row, &t)| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
            max as f64 + sum.ln() - row[t as usize] as f64
        })
        .sum()
}
