//! Adding the low-rank products to a matmul's output, group by group of batch rows.
//!
//! [`LoraRows`] is built once per forward pass from the batch: for each adapter some chunk
//! names, the row ranges of those chunks. Every adapted matmul then calls [`LoraRows::add`],
//! which for each group computes `t = A x` and `y += scale · (B t)` row by row. A row's sums
//! run in one fixed order whatever else is in the batch, so batching never changes a result.

use std::ops::Range;

use owl_kernels::pool::SharedMut;
use owl_kernels::ThreadPool;

use crate::batch::Batch;
use crate::ModelError;

use super::{LoraAdapter, Target};

/// The batch's rows grouped by the adapter they use (rows of the base model are in no group).
#[derive(Default)]
pub struct LoraRows<'a> {
    groups: Vec<(&'a LoraAdapter, Vec<Range<usize>>)>,
}

impl<'a> LoraRows<'a> {
    /// Groups the rows of `batch`; a chunk's `adapter` indexes `adapters`.
    pub fn new(batch: &Batch, adapters: &[&'a LoraAdapter]) -> Result<LoraRows<'a>, ModelError> {
        let mut by_index: Vec<Option<usize>> = vec![None; adapters.len()];
        let mut groups: Vec<(&'a LoraAdapter, Vec<Range<usize>>)> = Vec::new();
        for c in &batch.chunks {
            let Some(i) = c.adapter else { continue };
            let adapter = *adapters.get(i).ok_or(ModelError::BadAdapter {
                index: i,
                n_adapters: adapters.len(),
            })?;
            let g = *by_index[i].get_or_insert_with(|| {
                groups.push((adapter, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(c.start..c.start + c.len);
        }
        Ok(LoraRows { groups })
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// `y[r] += scale · B (A x[r])` for every row `r` whose adapter adapts `target` of
    /// `layer`. `x`: [n, n_in] (the matmul's input); `y`: [n, n_out] (its output). Rows are
    /// spread over `pool` in chunks; each row is computed alone, so the split changes no bit.
    pub fn add(&self, pool: &ThreadPool, layer: usize, target: Target, x: &[f32], y: &mut [f32]) {
        for (adapter, ranges) in &self.groups {
            let Some(p) = adapter.pair(layer, target) else {
                continue;
            };
            let rows: Vec<usize> = ranges.iter().flat_map(Range::clone).collect();
            // Shapes were checked at load time against this model; this only guards the
            // pointer arithmetic below.
            let n = rows.iter().map(|&r| r + 1).max().unwrap_or(0);
            if x.len() < n * p.n_in || y.len() < n * p.n_out {
                continue;
            }
            let out = SharedMut::new(y);
            let n_chunks = rows.len().div_ceil(ROWS_PER_TASK);
            pool.run_chunks(n_chunks, |c, _| {
                let mut t = vec![0.0f32; p.rank];
                let end = ((c + 1) * ROWS_PER_TASK).min(rows.len());
                for &row in &rows[c * ROWS_PER_TASK..end] {
                    let xr = &x[row * p.n_in..(row + 1) * p.n_in];
                    // SAFETY: `rows` holds distinct rows (the batch's chunks do not overlap),
                    // each chunk of tasks takes its own rows, and `row < n` keeps the range
                    // inside `y`, which outlives `run_chunks`.
                    let yr = unsafe { out.slice(row * p.n_out, p.n_out) };
                    for (tj, aj) in t.iter_mut().zip(p.a.chunks_exact(p.n_in)) {
                        *tj = dot(aj, xr);
                    }
                    for (yo, bo) in yr.iter_mut().zip(p.b.chunks_exact(p.rank)) {
                        *yo += dot(bo, &t) * p.scale;
                    }
                }
            });
        }
    }
}

/// Rows one pool task takes.
const ROWS_PER_TASK: usize = 4;

/// A dot product in a fixed order (eight interleaved partial sums, then a fixed tree), which
/// the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum_on_small_integers() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| (i % 3) as f32).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), want);
    }
}
