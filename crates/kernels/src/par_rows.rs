//! Row-wise work of a wide batch split over the thread pool: norms, activations, RoPE, K/V
//! stores — everything between the matrix products that works on one token's row at a time.
//!
//! Why: in a 16-sequence decode step these ran on the engine thread alone while the worker
//! spun, about a tenth of the step (a system-wide profile had the worker spinning 5–7 % of all
//! samples, against the engine thread's `rms_norm_rows`, `swiglu`, `store_with` and RoPE).
//! Each row's result depends only on that row, so splitting the rows over threads gives the
//! same bits; below `PARALLEL_ROWS_MIN` rows (a single sequence's decode step) the fork would
//! cost more than it saves, and the caller does all of it.

use std::ops::Range;

use crate::pool::{chunking, SharedMut, ThreadPool};

/// Rows from which the work is split over the pool's threads.
pub const PARALLEL_ROWS_MIN: usize = 8;

/// Runs `f(rows)` over `0..n` in ranges whose starts are multiples of `align` rows, on every
/// thread of `pool` when `n >= PARALLEL_ROWS_MIN`, else once on the caller's thread.
pub fn for_row_ranges(pool: &ThreadPool, n: usize, align: usize, f: impl Fn(Range<usize>) + Sync) {
    let align = align.max(1);
    if n < PARALLEL_ROWS_MIN || pool.n_threads() == 1 {
        if n > 0 {
            f(0..n);
        }
        return;
    }
    // Two chunks per thread, so a thread that starts late leaves little to wait for.
    let units = n.div_ceil(align);
    let (n_chunks, per) = chunking(units, pool.n_threads(), 2, 1);
    pool.run_chunks(n_chunks, |c, _thread| {
        let start = c * per * align;
        f(start..((c + 1) * per * align).min(n));
    });
}

/// `f(rows, a_rows)` over disjoint ranges of the rows of `a` (`a_row` elements each), split as
/// `for_row_ranges` splits them; `a_rows` holds exactly the range's rows.
pub fn rows_mut<A: Send>(
    pool: &ThreadPool,
    a: &mut [A],
    a_row: usize,
    align: usize,
    f: impl Fn(Range<usize>, &mut [A]) + Sync,
) {
    if a_row == 0 {
        return;
    }
    let n = a.len() / a_row;
    let sa = SharedMut::new(a);
    for_row_ranges(pool, n, align, |rows| {
        // SAFETY: the ranges of `for_row_ranges` are disjoint and inside 0..n, so these
        // elements lie inside `a` (n whole rows), which outlives the call, and no other range
        // touches them.
        let ra = unsafe { sa.slice(rows.start * a_row, rows.len() * a_row) };
        f(rows, ra)
    });
}

/// `f(rows, a_rows, b_rows)` over disjoint ranges of the rows of two buffers (`a_row` and
/// `b_row` elements a row), for as many rows as both hold whole.
pub fn rows_mut2<A: Send, B: Send>(
    pool: &ThreadPool,
    (a, a_row): (&mut [A], usize),
    (b, b_row): (&mut [B], usize),
    align: usize,
    f: impl Fn(Range<usize>, &mut [A], &mut [B]) + Sync,
) {
    if a_row == 0 || b_row == 0 {
        return;
    }
    let n = (a.len() / a_row).min(b.len() / b_row);
    let (sa, sb) = (SharedMut::new(a), SharedMut::new(b));
    for_row_ranges(pool, n, align, |rows| {
        // SAFETY: as in `rows_mut`, for each buffer: disjoint ranges of whole rows inside it.
        let (ra, rb) = unsafe {
            (
                sa.slice(rows.start * a_row, rows.len() * a_row),
                sb.slice(rows.start * b_row, rows.len() * b_row),
            )
        };
        f(rows, ra, rb)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_row_is_visited_once_in_aligned_ranges() {
        let pool = ThreadPool::new(3);
        for n in [0usize, 1, 7, 8, 9, 16, 33, 100] {
            for align in [1usize, 4] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                for_row_ranges(&pool, n, align, |r| {
                    assert_eq!(r.start % align, 0, "n {n} align {align}: start {r:?}");
                    for i in r {
                        hits[i].fetch_add(1, Ordering::SeqCst);
                    }
                });
                assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1), "n {n}");
            }
        }
    }

    #[test]
    fn row_slices_match_their_ranges() {
        let pool = ThreadPool::new(2);
        let (n, wa, wb) = (37usize, 5usize, 3usize);
        let mut a = vec![0usize; n * wa];
        let mut b = vec![0usize; n * wb + 2];
        rows_mut2(&pool, (&mut a, wa), (&mut b, wb), 1, |rows, ra, rb| {
            assert_eq!((ra.len(), rb.len()), (rows.len() * wa, rows.len() * wb));
            for (i, row) in rows.clone().zip(ra.chunks_exact_mut(wa)) {
                row.fill(i);
            }
            for (i, row) in rows.zip(rb.chunks_exact_mut(wb)) {
                row.fill(i + 1);
            }
        });
        assert!(a
            .chunks_exact(wa)
            .enumerate()
            .all(|(i, r)| r.iter().all(|&v| v == i)));
        assert!(b[..n * wb]
            .chunks_exact(wb)
            .enumerate()
            .all(|(i, r)| r.iter().all(|&v| v == i + 1)));
        assert_eq!(&b[n * wb..], &[0, 0]);
    }
}
