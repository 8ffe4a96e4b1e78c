//! The decode step allocates nothing once buffers have grown: a counting global allocator
//! watches forward passes of single tokens after a warm-up. One thread, so the count is not
//! disturbed by a worker thread's first sleep inside the standard library (the pool itself
//! allocates nothing per job by construction: no boxes, no queues).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use owl_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use owl_kernels::Kernels;
use owl_model::{Batch, LoadOptions, Logits, LogitsWanted, Runner};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn model() -> Arc<GgufFile> {
    let (e, ff, nv) = (256u64, 512u64, 64u64);
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::String("llama".into()));
    for (k, v) in [
        ("block_count", 2u32),
        ("embedding_length", e as u32),
        ("feed_forward_length", ff as u32),
        ("attention.head_count", 4),
        ("attention.head_count_kv", 2),
        ("vocab_size", nv as u32),
    ] {
        w.add_kv(&format!("llama.{k}"), Value::U32(v));
    }
    w.add_kv("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5));
    let mut t = |name: &str, dims: &[u64], ty: GgmlType| {
        let n: u64 = dims.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut bytes = vec![0u8; owl_quant::row_bytes(ty, n as usize)];
        (owl_quant::format(ty)
            .and_then(|f| f.quantize)
            .expect("quantizer"))(&data, &mut bytes);
        w.add_tensor(name, dims, ty, bytes).expect("tensor");
    };
    t("token_embd.weight", &[e, nv], GgmlType::Q8_0);
    t("output_norm.weight", &[e], GgmlType::F32);
    for l in 0..2 {
        t(&format!("blk.{l}.attn_norm.weight"), &[e], GgmlType::F32);
        t(&format!("blk.{l}.ffn_norm.weight"), &[e], GgmlType::F32);
        t(&format!("blk.{l}.attn_q.weight"), &[e, e], GgmlType::Q4_1);
        t(
            &format!("blk.{l}.attn_k.weight"),
            &[e, e / 2],
            GgmlType::Q4_1,
        );
        t(
            &format!("blk.{l}.attn_v.weight"),
            &[e, e / 2],
            GgmlType::Q4_1,
        );
        t(
            &format!("blk.{l}.attn_output.weight"),
            &[e, e],
            GgmlType::Q4_1,
        );
        t(
            &format!("blk.{l}.ffn_gate.weight"),
            &[e, ff],
            GgmlType::Q4_K,
        );
        t(&format!("blk.{l}.ffn_up.weight"), &[e, ff], GgmlType::Q4_K);
        t(
            &format!("blk.{l}.ffn_down.weight"),
            &[ff, e],
            GgmlType::Q6_K,
        );
    }
    Arc::new(GgufFile::from_bytes(w.to_bytes()).expect("parse"))
}

#[test]
fn decode_steps_do_not_allocate() {
    let mut r = Runner::new(model(), Kernels::detect(), 1, &LoadOptions::default()).expect("load");
    let mut kv = r.model.new_cache(128, 1);
    let mut logits = Logits::default();
    let mut batch = Batch::new();
    batch.push(0, 0, &[1, 2, 3, 4, 5, 6, 7, 8], LogitsWanted::Last);
    r.forward(&batch, &mut kv, &mut logits).expect("prefill");
    // Warm-up decode step: buffers for single-token batches settle.
    batch.clear();
    batch.push(0, 8, &[9], LogitsWanted::Last);
    r.forward(&batch, &mut kv, &mut logits).expect("decode");
    let before = ALLOCS.load(Ordering::SeqCst);
    for pos in 9..120 {
        batch.clear();
        batch.push(0, pos, &[(pos % 64) as u32], LogitsWanted::Last);
        r.forward(&batch, &mut kv, &mut logits).expect("decode");
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "decode steps allocated {} times",
        after - before
    );
}
