//! Speculative decoding: guessing the next tokens cheaply and checking them in one pass.
//!
//! Decoding one token reads every weight once; checking five guessed tokens of the same
//! sequence in one pass reads them once too, so each guess that turns out right is a token for
//! (almost) nothing. The guesses here come from the sequence itself (prompt lookup): the last
//! few tokens are looked up earlier in the context, and what followed them there is proposed.
//! Replies that repeat, proofread or edit their prompt copy long spans and gain the most.
//!
//! **Exactness.** The checking pass computes the drafted positions in the decode order
//! (`tiled_attention = false`), and every kernel gives a row the same bits whatever the batch,
//! so each logit row is bit for bit the row plain decoding would compute. The scheduler then
//! samples each row in turn with the sequence's own sampler and keeps a drafted token only when
//! the sampled token equals it. For a deterministic drafter this *is* the standard rejection
//! rule (accept the draft `x` with probability `p(x)`; on rejection sample from `p` without
//! `x`), and it is more: the sampler draws its random numbers in the same order as without
//! speculation, so a reply is identical to the unspeculated one at any temperature and seed,
//! not only at temperature 0.
//!
//! **When to guess** ([`Policy`]). A guess costs a wider pass. In `ngram` mode a sequence drafts
//! whenever its context offers a match; in `auto` mode (the default) a sequence whose guesses
//! keep failing stops guessing for a while, twice as long after each failure, so free-form text
//! pays almost nothing. The draft length adapts too: it grows while whole drafts are accepted
//! and shrinks to what was accepted otherwise.

/// How a sequence guesses tokens ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SpecMode {
    /// Never.
    Off,
    /// Prompt lookup whenever the context has a match.
    Ngram,
    /// Prompt lookup that pauses itself while its guesses fail.
    #[default]
    Auto,
}

impl std::str::FromStr for SpecMode {
    type Err = String;

    fn from_str(s: &str) -> Result<SpecMode, String> {
        match s {
            "off" => Ok(SpecMode::Off),
            "ngram" => Ok(SpecMode::Ngram),
            "auto" => Ok(SpecMode::Auto),
            "draft" => Err(
                "--spec draft (a draft model) is not supported yet; use auto, ngram or off".into(),
            ),
            other => Err(format!(
                "unknown speculation mode '{other}': use auto, ngram or off"
            )),
        }
    }
}

/// Speculation settings of an engine.
#[derive(Clone, Copy, Debug)]
pub struct SpecConfig {
    pub mode: SpecMode,
    /// Most tokens drafted for one sequence in one step.
    pub max_draft: usize,
}

impl Default for SpecConfig {
    fn default() -> SpecConfig {
        SpecConfig {
            mode: SpecMode::Auto,
            max_draft: 8,
        }
    }
}

/// The longest and shortest suffix looked up in the context.
const NGRAM_MAX: usize = 4;
const NGRAM_MIN: usize = 2;

/// Prompt lookup: finds the most recent earlier occurrence of the longest suffix of `tokens`
/// (between `NGRAM_MAX` and `NGRAM_MIN` tokens long) and writes what followed it, at most `max`
/// tokens, into `out` (cleared first).
pub(crate) fn ngram_draft(tokens: &[u32], max: usize, out: &mut Vec<u32>) {
    out.clear();
    let len = tokens.len();
    if max == 0 {
        return;
    }
    for n in (NGRAM_MIN..=NGRAM_MAX.min(len.saturating_sub(1))).rev() {
        let key = &tokens[len - n..];
        // Candidate starts, most recent first; the match must end before the suffix does.
        for start in (0..len - n).rev() {
            if &tokens[start..start + n] == key {
                let from = start + n;
                let to = (from + max).min(len);
                out.extend_from_slice(&tokens[from..to]);
                return;
            }
        }
    }
}

/// Per-sequence state of the guessing policy.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    mode: SpecMode,
    max_draft: usize,
    /// Current draft length cap.
    len: usize,
    /// Steps left without guessing (auto mode).
    pause: u32,
    /// The next pause after a failed guess.
    backoff: u32,
}

/// The longest pause, in steps, after repeated failures.
const MAX_PAUSE: u32 = 64;

impl Policy {
    pub fn new(cfg: SpecConfig) -> Policy {
        Policy {
            mode: cfg.mode,
            max_draft: cfg.max_draft,
            len: cfg.max_draft.min(4),
            pause: 0,
            backoff: 1,
        }
    }

    /// How many tokens this step may draft (0: none), counting down a pause.
    pub fn budget(&mut self) -> usize {
        if self.mode == SpecMode::Off || self.max_draft == 0 {
            return 0;
        }
        if self.pause > 0 {
            self.pause -= 1;
            return 0;
        }
        self.len
    }

    /// Learns from a checked draft of `drafted` tokens, `accepted` of which were right.
    pub fn record(&mut self, drafted: usize, accepted: usize) {
        if drafted == 0 {
            return;
        }
        if accepted == drafted {
            self.len = (self.len * 2).min(self.max_draft);
            self.backoff = 1;
        } else {
            self.len = (accepted + 1).clamp(2, self.max_draft.max(2));
        }
        if accepted == 0 && self.mode == SpecMode::Auto {
            self.pause = self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_PAUSE);
        } else if accepted > 0 {
            self.backoff = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_proposes_what_followed_the_latest_longest_match() {
        let mut out = Vec::new();
        // "1 2 3 9 | 7 2 3 5 | ... 2 3": the 2-gram [2,3] last occurred before 5.
        ngram_draft(&[1, 2, 3, 9, 7, 2, 3, 5, 6, 2, 3], 3, &mut out);
        assert_eq!(out, [5, 6, 2]);
        // A longer suffix wins over a more recent shorter one.
        ngram_draft(&[1, 2, 3, 4, 8, 3, 4, 9, 1, 2, 3, 4], 2, &mut out);
        assert_eq!(out, [8, 3]);
        // No match, or nothing allowed: nothing.
        ngram_draft(&[1, 2, 3, 4], 4, &mut out);
        assert!(out.is_empty());
        ngram_draft(&[5, 6, 5, 6], 0, &mut out);
        assert!(out.is_empty());
        // The draft stops at the end of the context.
        ngram_draft(&[5, 6, 7, 5, 6], 8, &mut out);
        assert_eq!(out, [7, 5, 6]);
        ngram_draft(&[], 4, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn auto_pauses_after_failures_and_ngram_does_not() {
        let cfg = SpecConfig {
            mode: SpecMode::Auto,
            max_draft: 8,
        };
        let mut p = Policy::new(cfg);
        assert_eq!(p.budget(), 4);
        p.record(4, 4);
        assert_eq!(p.budget(), 8, "a whole draft accepted doubles the length");
        p.record(8, 0);
        assert_eq!(p.budget(), 0, "paused one step");
        assert_eq!(p.budget(), 2);
        p.record(2, 0);
        assert_eq!((p.budget(), p.budget(), p.budget()), (0, 0, 2), "then two");
        p.record(2, 1);
        assert_eq!(p.budget(), 2, "a partial success ends the backoff");
        let mut n = Policy::new(SpecConfig {
            mode: SpecMode::Ngram,
            ..cfg
        });
        n.record(4, 0);
        assert_eq!(n.budget(), 2);
        let mut off = Policy::new(SpecConfig {
            mode: SpecMode::Off,
            ..cfg
        });
        assert_eq!(off.budget(), 0);
    }
}
