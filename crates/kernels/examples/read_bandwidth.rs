//! Measures the machine's memory read bandwidth the way token generation uses it: `T` threads
//! (default 2) each stream over their half of a buffer much larger than the caches, reading
//! every byte once per pass. Prints the median of several passes in GB/s (10⁹ bytes), the
//! figure docs/PERFORMANCE.md divides a model's bytes per token by for the bandwidth bound.
//!
//! `cargo run --release -p owl-kernels --example read_bandwidth [-- THREADS [MiB]]`

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2048);
    let words = mib * 1024 * 1024 / 8;
    // Filled (not just allocated) so every page is resident before timing.
    let buf: Vec<u64> = (0..words as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let per = words.div_ceil(threads);
    let mut rates = Vec::new();
    let mut check = 0u64;
    for _ in 0..7 {
        let t = Instant::now();
        let folds: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        // Eight independent lanes so the loop is bound by loads, not by a
                        // dependency chain.
                        let mut acc = [0u64; 8];
                        for c in part.chunks_exact(8) {
                            for (a, &w) in acc.iter_mut().zip(c) {
                                *a ^= w;
                            }
                        }
                        acc.iter().fold(0, |x, &y| x ^ y)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        let secs = t.elapsed().as_secs_f64();
        check ^= folds.iter().fold(0, |x, &y| x ^ y);
        rates.push((words * 8) as f64 / secs / 1e9);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "read bandwidth: {:.1} GB/s median of {} passes over {mib} MiB with {threads} threads \
         (min {:.1}, max {:.1}; checksum {check:x})",
        rates[rates.len() / 2],
        rates.len(),
        rates[0],
        rates[rates.len() - 1]
    );
}
