//! Replaying a recorded reply through prompt lookup and the drafting policy, without a model.
//!
//! Whether a lookup or policy change pays is hard to see in wall-clock benchmarks on a noisy
//! two-core host: a 50-token reply's speed-up moves by ±0.2× from run to run. But at
//! temperature 0 the reply does not depend on speculation (`crate::spec`), so a reply recorded
//! once (`owl run --json --spec off`) says which guess the model would have accepted at
//! every step. [`replay`] walks it as the scheduler does — budget, draft, check, learn — and
//! counts the pass cost as `1 + beta·k` per step of `k` drafted positions, the same model the
//! policy optimises. The ratio of reply tokens to cost is the speed-up plain decoding would
//! see at that `beta`. `examples/spec_replay.rs` runs it over `spec_bench.py`'s prompts.

use owl_text::Tokenizer;

use crate::lookup::{LookupDrafter, WordStarts};
use crate::spec::SpecConfig;

/// What a replay saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayReport {
    /// Reply tokens generated.
    pub tokens: usize,
    /// Pass cost in one-token passes: `Σ (1 + beta·k)`.
    pub cost: f64,
    /// Each step's (forward pass's) draft and how many of its tokens were right.
    pub log: Vec<(Vec<u32>, usize)>,
}

impl ReplayReport {
    /// Reply tokens per one-token pass: the predicted speed-up over plain decoding.
    pub fn speedup(&self) -> f64 {
        if self.cost > 0.0 {
            self.tokens as f64 / self.cost
        } else {
            1.0
        }
    }

    /// Forward passes.
    pub fn steps(&self) -> usize {
        self.log.len()
    }

    /// Tokens drafted, over every step.
    pub fn drafted(&self) -> usize {
        self.log.iter().map(|(d, _)| d.len()).sum()
    }

    /// Drafted tokens accepted, over every step.
    pub fn accepted(&self) -> usize {
        self.log.iter().map(|(_, a)| a).sum()
    }
}

/// The word-start table `replay` needs, built once per tokenizer (it walks the vocabulary).
pub struct ReplayWords(WordStarts);

impl ReplayWords {
    pub fn new(tok: &Tokenizer) -> ReplayWords {
        ReplayWords(WordStarts::new(tok))
    }
}

/// Replays `reply` after `prompt` with prompt lookup under `cfg`, a checked position costing
/// `beta` of a one-token pass.
pub fn replay(
    prompt: &[u32],
    reply: &[u32],
    words: &ReplayWords,
    cfg: SpecConfig,
    beta: f64,
) -> ReplayReport {
    let mut lookup = LookupDrafter::new(cfg);
    let mut tokens = prompt.to_vec();
    let mut draft = Vec::new();
    let mut r = ReplayReport::default();
    while r.tokens < reply.len() {
        // As the scheduler: every drafted token may be accepted and one more chosen.
        let room = reply.len() - r.tokens - 1;
        lookup.propose(&tokens, beta, room, &words.0, &mut draft);
        let ahead = &reply[r.tokens..];
        let accepted = draft.iter().zip(ahead).take_while(|(d, t)| d == t).count();
        // The accepted tokens and the one the model chose after them.
        tokens.extend_from_slice(&ahead[..accepted + 1]);
        lookup.record(draft.len(), accepted, &tokens);
        r.log.push((draft.clone(), accepted));
        r.cost += 1.0 + beta * draft.len() as f64;
        r.tokens += accepted + 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecMode;

    fn words() -> ReplayWords {
        ReplayWords(WordStarts::from_flags((0..200).map(|t| t >= 100).collect()))
    }

    #[test]
    fn a_copied_reply_replays_faster_than_plain_decoding_and_off_does_not() {
        let src: Vec<u32> = (100..160).collect();
        let prompt: Vec<u32> = src.iter().copied().chain([1]).collect();
        let cfg = SpecConfig::default();
        let r = replay(&prompt, &src, &words(), cfg, 0.25);
        assert_eq!(r.tokens, src.len());
        assert!(r.accepted() > 40, "{r:?}");
        assert!(r.speedup() > 2.0, "{r:?}");
        let off = SpecConfig {
            mode: SpecMode::Off,
            ..cfg
        };
        let r = replay(&prompt, &src, &words(), off, 0.25);
        assert_eq!((r.steps(), r.drafted(), r.speedup()), (src.len(), 0, 1.0));
    }
}
