//! Server metrics and their Prometheus text rendering (`GET /metrics`).
//!
//! Counters the HTTP side owns (requests by route and status, tokens, latency histograms) live
//! here; queue depth, running sequences, KV pages and pre-emptions are read from the engine's
//! atomic [`EngineStats`] at scrape time. No metrics crate: the text format is simple and this
//! keeps the label set (and so the cardinality) under our control.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use owl_engine::EngineStats;

const TTFT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const TPOT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A Prometheus histogram with fixed buckets.
pub struct Histogram {
    bounds: &'static [f64],
    state: Mutex<HistState>,
}

#[derive(Default)]
struct HistState {
    /// Per-bucket (not cumulative) counts; the last entry is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            state: Mutex::new(HistState {
                counts: vec![0; bounds.len() + 1],
                ..HistState::default()
            }),
        }
    }

    pub fn observe(&self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let i = self
            .bounds
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(self.bounds.len());
        if let Ok(mut s) = self.state.lock() {
            s.counts[i] += 1;
            s.sum += v;
            s.count += 1;
        }
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let Ok(s) = self.state.lock() else { return };
        let mut cum = 0;
        for (i, b) in self.bounds.iter().enumerate() {
            cum += s.counts[i];
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        cum += s.counts[self.bounds.len()];
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cum}");
        let _ = writeln!(out, "{name}_sum {}", s.sum);
        let _ = writeln!(out, "{name}_count {}", s.count);
    }
}

pub struct Metrics {
    /// (route, status) → requests answered.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    pub prompt_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    /// Submission to first generated token.
    pub ttft: Histogram,
    /// Mean time between generated tokens, one observation per request with two or more.
    pub tpot: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            prompt_tokens: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            ttft: Histogram::new(TTFT_BUCKETS),
            tpot: Histogram::new(TPOT_BUCKETS),
        }
    }

    pub fn count_request(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), status)).or_insert(0) += 1;
        }
    }

    /// The Prometheus text exposition; engine gauges only once the model is loaded.
    /// The metrics, with the engine figures summed over `engines` (the loaded models).
    pub fn render(&self, engines: &[&EngineStats]) -> String {
        let mut out = String::new();
        out.push_str("# HELP owl_requests_total HTTP requests answered, by route and status.\n");
        out.push_str("# TYPE owl_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "owl_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape_label(route)
                );
            }
        }
        counter(
            &mut out,
            "owl_prompt_tokens_total",
            "Prompt tokens of submitted requests.",
            self.prompt_tokens.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "owl_generated_tokens_total",
            "Tokens generated for clients.",
            self.generated_tokens.load(Ordering::Relaxed),
        );
        {
            let g = |f: fn(&EngineStats) -> &std::sync::atomic::AtomicU64| -> u64 {
                engines.iter().map(|s| EngineStats::get(f(s))).sum()
            };
            gauge(
                &mut out,
                "owl_models_loaded",
                "Models loaded in memory.",
                engines.len() as f64,
            );
            gauge(
                &mut out,
                "owl_queue_depth",
                "Requests waiting to start.",
                g(|s| &s.waiting) as f64,
            );
            gauge(
                &mut out,
                "owl_running_sequences",
                "Sequences being prefilled or decoded.",
                g(|s| &s.running) as f64,
            );
            let (used, total) = (g(|s| &s.kv_pages_used), g(|s| &s.kv_pages_total));
            gauge(
                &mut out,
                "owl_kv_cache_pages_used",
                "KV cache pages in use.",
                used as f64,
            );
            gauge(
                &mut out,
                "owl_kv_cache_pages_total",
                "KV cache pages in the pool.",
                total as f64,
            );
            let ratio = if total == 0 {
                0.0
            } else {
                used as f64 / total as f64
            };
            gauge(
                &mut out,
                "owl_kv_cache_usage_ratio",
                "Fraction of KV cache pages in use.",
                ratio,
            );
            counter(
                &mut out,
                "owl_preemptions_total",
                "Sequences pre-empted for lack of KV pages.",
                g(|s| &s.preemptions),
            );
            counter(
                &mut out,
                "owl_prompt_tokens_evaluated_total",
                "Prompt tokens the engine computed.",
                g(|s| &s.prompt_tokens_evaluated),
            );
            counter(
                &mut out,
                "owl_prompt_tokens_cached_total",
                "Prompt tokens reused from the prefix cache.",
                g(|s| &s.prompt_tokens_cached),
            );
            counter(
                &mut out,
                "owl_engine_steps_total",
                "Forward passes run by the engine.",
                g(|s| &s.steps),
            );
            counter(
                &mut out,
                "owl_spec_draft_tokens_total",
                "Tokens guessed ahead by speculative decoding (prompt lookup or a draft model) and checked.",
                g(|s| &s.spec_drafted),
            );
            counter(
                &mut out,
                "owl_spec_accepted_tokens_total",
                "Guessed tokens that were right (each one a token without its own pass).",
                g(|s| &s.spec_accepted),
            );
            counter(
                &mut out,
                "owl_spec_draft_model_tokens_total",
                "The part of owl_spec_draft_tokens_total guessed by the draft model (--spec draft).",
                g(|s| &s.spec_model_drafted),
            );
            counter(
                &mut out,
                "owl_spec_draft_model_accepted_tokens_total",
                "The part of owl_spec_accepted_tokens_total guessed by the draft model.",
                g(|s| &s.spec_model_accepted),
            );
        }
        self.ttft.render(
            &mut out,
            "owl_time_to_first_token_seconds",
            "Time from submission to the first generated token.",
        );
        self.tpot.render(
            &mut out,
            "owl_time_per_output_token_seconds",
            "Mean time between generated tokens of a request.",
        );
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
