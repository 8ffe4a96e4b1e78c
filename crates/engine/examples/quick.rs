use std::sync::Arc;
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let threads: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(2);
    let file = Arc::new(owl_gguf::GgufFile::open(std::path::Path::new(&path)).unwrap());
    let runner = owl_model::Runner::new(file, owl_kernels::Kernels::detect(), threads, &Default::default()).unwrap();
    let mut s = owl_engine::Session::new(runner, 2048, 512);
    let np: usize = std::env::var("NP").ok().and_then(|s| s.parse().ok()).unwrap_or(512);
    let prompt: Vec<u32> = (0..np as u32).map(|i| (i * 37 % 40000 + 100) as u32).collect();
    let t = Instant::now();
    let (l, _) = s.prefill(&prompt).unwrap();
    let am = l.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    let pp = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut tok = am as u32;
    for _ in 0..128 { let l = s.decode(tok).unwrap(); tok = l.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as u32; }
    let tg = t.elapsed().as_secs_f64();
    println!("pp512 {:.1} tok/s, tg64 {:.1} tok/s", np as f64 / pp, 128.0 / tg);
}
