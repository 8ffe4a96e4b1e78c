//! The sampler: a processor chain built from params, plus a selector.

use crate::processors::{LogitBias, MinP, Penalties, Temperature, TopK, TopP};
use crate::selectors::{Dist, Greedy};
use crate::{Candidates, LogitsProcessor, SampleError, SamplingParams, Selector};

/// Turns one step's logits into a token id.
///
/// Chain (llama.cpp's default order, disabled stages omitted):
/// logit bias → penalties → top-k → top-p → min-p → temperature → draw.
/// With `temperature <= 0` only logit bias and penalties run, followed by
/// argmax. All buffers live in the sampler, so steady-state calls do not
/// allocate.
#[derive(Debug)]
pub struct Sampler {
    chain: Vec<Box<dyn LogitsProcessor>>,
    selector: Box<dyn Selector>,
    candidates: Candidates,
    /// Plain argmax (greedy, no bias, no penalties): read straight from the logits, without
    /// building the candidate list (a wide decode step samples one row per sequence on the
    /// engine thread, and copying 49k–152k candidates per row was most of that time).
    argmax_only: bool,
}

impl Sampler {
    /// Validates `params` and builds the chain.
    pub fn new(params: SamplingParams) -> Result<Sampler, SampleError> {
        params.validate()?;
        let mut chain: Vec<Box<dyn LogitsProcessor>> = Vec::new();
        if !params.logit_bias.is_empty() {
            chain.push(Box::new(LogitBias::new(&params.logit_bias)));
        }
        if params.penalties_active() {
            chain.push(Box::new(Penalties::new(
                params.repeat_last_n,
                params.repeat_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            )));
        }
        let argmax_only = params.is_greedy() && chain.is_empty();
        let selector: Box<dyn Selector> = if params.is_greedy() {
            // Filters and temperature cannot change the argmax: skip them.
            Box::new(Greedy)
        } else {
            if params.top_k > 0 {
                chain.push(Box::new(TopK::new(params.top_k)));
            }
            if params.top_p < 1.0 {
                chain.push(Box::new(TopP::new(params.top_p)));
            }
            if params.min_p > 0.0 {
                chain.push(Box::new(MinP::new(params.min_p)));
            }
            if params.temperature != 1.0 {
                chain.push(Box::new(Temperature::new(params.temperature)));
            }
            Box::new(Dist::new(params.seed))
        };
        let mut s = Self::from_parts(chain, selector);
        s.argmax_only = argmax_only;
        Ok(s)
    }

    /// Builds a sampler from a custom chain (no validation involved).
    pub fn from_parts(chain: Vec<Box<dyn LogitsProcessor>>, selector: Box<dyn Selector>) -> Self {
        Self {
            chain,
            selector,
            candidates: Candidates::new(),
            argmax_only: false,
        }
    }

    /// Names of the active processors in order, then the selector's name.
    pub fn chain_names(&self) -> Vec<&'static str> {
        self.chain
            .iter()
            .map(|p| p.name())
            .chain(std::iter::once(self.selector.name()))
            .collect()
    }

    /// Picks the next token from raw logits (`len` = vocab size). `history`
    /// is prompt + generated tokens so far (penalties look at its tail).
    ///
    /// Never panics: for empty logits it returns 0, and if a custom processor
    /// empties the candidate list it falls back to the argmax of the raw
    /// logits. Use [`try_sample`](Self::try_sample) to see those cases.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        match self.try_sample(logits, history) {
            Ok(t) => t,
            Err(_) => {
                self.candidates.fill_from_logits(logits);
                Greedy.select(&self.candidates)
            }
        }
    }

    /// Like [`sample`](Self::sample) but reports degenerate input.
    pub fn try_sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32, SampleError> {
        if logits.is_empty() {
            return Err(SampleError::EmptyLogits);
        }
        if self.argmax_only {
            return Ok(argmax_of_logits(logits));
        }
        self.candidates.fill_from_logits(logits);
        for p in &mut self.chain {
            p.apply(&mut self.candidates, history);
            if self.candidates.is_empty() {
                return Err(SampleError::NoCandidates {
                    processor: p.name(),
                });
            }
        }
        Ok(self.selector.select(&self.candidates))
    }
}

/// [`Greedy`]'s choice made on raw logits: the highest, NaN as −∞, ties (−0 and +0 too) to
/// the lowest id; 0 for no logits.
///
/// Two passes, because one pass that tracks the index is a chain of branches the compiler
/// cannot vectorize, and a wide decode step takes this for every sequence over the whole
/// vocabulary on the engine thread while the other threads wait: first the largest value, eight
/// independent lanes at a time (a NaN never wins a `>`, so it counts as −∞), then the first
/// position holding it (`==` treats −0 and +0 as equal, as `>` does).
pub fn argmax_of_logits(logits: &[f32]) -> u32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = logits.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            if v > *m {
                *m = v;
            }
        }
    }
    let mut max = f32::NEG_INFINITY;
    for &v in lanes.iter().chain(rest) {
        if v > max {
            max = v;
        }
    }
    if max == f32::NEG_INFINITY {
        // Nothing beats −∞ (all −∞ or NaN): the first id, as the selector.
        return 0;
    }
    logits
        .iter()
        .position(|&v| v == max)
        .map_or(0, |p| p as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argmax_shortcut_chooses_as_the_greedy_selector() {
        let mut rows: Vec<Vec<f32>> = vec![
            vec![1.0, 3.0, f32::NAN, 3.0, -0.0],
            vec![0.0, -0.0],
            vec![-0.0, 0.0],
            vec![f32::NEG_INFINITY; 3],
            vec![f32::NAN, f32::NAN],
            vec![f32::NAN, -1e30, f32::INFINITY, f32::INFINITY],
            vec![f32::NAN, f32::NEG_INFINITY],
            // The largest in the tail after whole lanes, then in a lane after the tail's value.
            (0..13).map(|i| if i == 12 { 5.0 } else { -1.0 }).collect(),
            (0..19).map(|i| [0.5, 2.0, 1.0][i % 3]).collect(),
            (0..17).map(|i| if i == 9 { -0.0 } else { -2.0 }).collect(),
        ];
        let mut x = 12345u32;
        rows.extend((0..50).map(|_| {
            (0..300)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    // Few distinct values: many ties.
                    ((x >> 16) % 17) as f32 - 8.0
                })
                .collect()
        }));
        for row in &rows {
            let mut c = Candidates::new();
            c.fill_from_logits(row);
            assert_eq!(argmax_of_logits(row), Greedy.select(&c), "{row:?}");
        }
        assert_eq!(argmax_of_logits(&[]), 0, "no logits");
        let mut s = Sampler::new(SamplingParams::greedy()).expect("greedy");
        assert!(s.argmax_only);
        assert_eq!(s.sample(&rows[0], &[]), 1);
    }

    #[test]
    fn chain_order_matches_llama_cpp_default() {
        let p = SamplingParams {
            logit_bias: vec![(0, 1.0)],
            repeat_penalty: 1.1,
            temperature: 0.7,
            seed: Some(0),
            ..SamplingParams::default()
        };
        let s = Sampler::new(p.clone()).expect("valid");
        assert_eq!(
            s.chain_names(),
            vec![
                "logit_bias",
                "penalties",
                "top_k",
                "top_p",
                "min_p",
                "temperature",
                "dist"
            ]
        );
        let g = Sampler::new(SamplingParams {
            temperature: 0.0,
            ..p
        })
        .expect("valid");
        assert_eq!(g.chain_names(), vec!["logit_bias", "penalties", "greedy"]);
        let plain = Sampler::new(SamplingParams::greedy()).expect("valid");
        assert_eq!(plain.chain_names(), vec!["greedy"]);
    }

    #[test]
    fn new_rejects_invalid_params() {
        let bad = SamplingParams {
            top_p: 0.0,
            ..SamplingParams::default()
        };
        assert!(matches!(
            Sampler::new(bad),
            Err(SampleError::InvalidParam { field: "top_p", .. })
        ));
    }

    #[derive(Debug)]
    struct DropAll;
    impl LogitsProcessor for DropAll {
        fn name(&self) -> &'static str {
            "drop_all"
        }
        fn apply(&mut self, c: &mut Candidates, _: &[u32]) {
            c.truncate(0);
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let mut s = Sampler::new(SamplingParams::default()).expect("valid");
        assert_eq!(s.try_sample(&[], &[]), Err(SampleError::EmptyLogits));
        assert_eq!(s.sample(&[], &[]), 0);
        assert!(s.sample(&[f32::NAN; 3], &[1, 2, 3, 99]) < 3);
        let mut custom = Sampler::from_parts(vec![Box::new(DropAll)], Box::new(Dist::new(Some(1))));
        assert_eq!(
            custom.try_sample(&[0.0, 1.0], &[]),
            Err(SampleError::NoCandidates {
                processor: "drop_all"
            })
        );
        assert_eq!(custom.sample(&[0.0, 1.0], &[]), 1);
    }
}
