//! Speculative decoding: guessing the next tokens cheaply and checking them in one pass.
//!
//! Decoding one token reads every weight once; checking five guessed tokens of the same
//! sequence in one pass reads them once too, so each guess that turns out right is a token for
//! (almost) nothing. The guesses here come from the sequence itself (prompt lookup,
//! `crate::lookup`): the last few tokens are looked up earlier in the context, and what
//! followed them there is proposed; after an edit the copy is picked up where it left off.
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
//! **When to guess, and how far** ([`Policy`], [`StepCost`]). A guess costs a wider pass. The
//! engine measures what one more position in a decode pass costs relative to a one-token pass
//! (`beta`: about 0.3 for a 135M model on two cores, where compute dominates; far less for a
//! large model, whose pass is bound by reading the weights). Copying comes in runs: once a
//! guess is right, the next one usually is too. So each sequence keeps two running estimates,
//! `a1`, the chance that a draft's first token is right, and `a2`, the chance that a token is
//! right after a right one. A draft of `k` tokens then yields `1 + a1·(1 + a2 + … + a2ᵏ⁻¹)`
//! tokens for a pass that costs `1 + beta·k`; the policy drafts the `k` that maximises that
//! ratio, and in `auto` mode (the default) nothing while no `k` beats plain decoding. A paused
//! sequence's `a1` drifts back toward a prior, so it tries again now and then: free-form text
//! pays a few short probes, copied text is drafted at full length. In `ngram` mode a sequence
//! drafts at least one token whenever its context offers a match.

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
    /// A draft model's greedy guesses (`crate::draft`), paused like `Auto`'s while they do
    /// not pay.
    Draft,
}

impl SpecMode {
    /// The name `--spec` takes.
    pub fn name(self) -> &'static str {
        match self {
            SpecMode::Off => "off",
            SpecMode::Ngram => "ngram",
            SpecMode::Auto => "auto",
            SpecMode::Draft => "draft",
        }
    }
}

impl std::str::FromStr for SpecMode {
    type Err = String;

    fn from_str(s: &str) -> Result<SpecMode, String> {
        match s {
            "off" => Ok(SpecMode::Off),
            "ngram" => Ok(SpecMode::Ngram),
            "auto" => Ok(SpecMode::Auto),
            "draft" => Ok(SpecMode::Draft),
            other => Err(format!(
                "unknown speculation mode '{other}': use auto, ngram, draft or off"
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

/// What a sequence believes of its guesses before it has made any (a draft's first token, a
/// token after a right one), and where a paused one's belief in first tokens drifts back to.
const PRIOR_FIRST: f64 = 0.6;
const PRIOR_NEXT: f64 = 0.85;
/// Weight of each checked draft token in the running acceptance estimate.
const LEARN: f64 = 0.3;
/// How fast a paused sequence's estimate returns toward the prior, per step.
const FORGET: f64 = 0.05;

/// Per-sequence state of the guessing policy.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    mode: SpecMode,
    max_draft: usize,
    /// Running estimates of the chance that a draft's first token is right, and that a token
    /// right after a right one is.
    first: f64,
    next: f64,
}

impl Policy {
    pub fn new(cfg: SpecConfig) -> Policy {
        Policy {
            mode: cfg.mode,
            max_draft: cfg.max_draft,
            first: PRIOR_FIRST,
            next: PRIOR_NEXT,
        }
    }

    /// How many tokens this step may draft (0: none), given what one more position costs
    /// relative to a one-token pass (`beta`, see [`StepCost`]).
    pub fn budget(&mut self, beta: f64) -> usize {
        if self.mode == SpecMode::Off || self.max_draft == 0 {
            return 0;
        }
        let k = best_draft_len(self.first, self.next, beta, self.max_draft);
        if k > 0 {
            return k;
        }
        self.first += (PRIOR_FIRST - self.first) * FORGET;
        usize::from(self.mode == SpecMode::Ngram)
    }

    /// Learns from a checked draft of `drafted` tokens, `accepted` of which were right: every
    /// token up to the first wrong one was a trial. When all were right, `went_on` says, where
    /// the drafter knows, whether its next guess would have been right too (the token the
    /// model chose after the draft): one more trial, without which a sequence drafting one
    /// token at a time could never learn that its guesses come in runs.
    pub fn record(&mut self, drafted: usize, accepted: usize, went_on: Option<bool>) {
        if drafted == 0 {
            return;
        }
        let hit = |right: bool| if right { 1.0 } else { 0.0 };
        self.first += LEARN * (hit(accepted > 0) - self.first);
        let trials = accepted + usize::from(accepted < drafted);
        for i in 1..trials {
            self.next += LEARN * (hit(i < accepted) - self.next);
        }
        if let (true, Some(right)) = (accepted == drafted, went_on) {
            self.next += LEARN * (hit(right) - self.next);
        }
    }
}

/// The draft length `k ≤ max` with the most tokens per unit of pass time,
/// `(1 + a1·(1 + a2 + … + a2ᵏ⁻¹)) / (1 + beta·k)`; 0 when none beats plain decoding.
pub(crate) fn best_draft_len(a1: f64, a2: f64, beta: f64, max: usize) -> usize {
    let (mut best, mut best_gain) = (0, 1.0);
    let (mut tokens, mut p) = (1.0, a1);
    for k in 1..=max {
        tokens += p;
        p *= a2;
        let gain = tokens / (1.0 + beta * k as f64);
        if gain > best_gain {
            (best, best_gain) = (k, gain);
        }
    }
    best
}

/// What an extra position costs in a decode pass: a running least-squares fit of step time
/// against step width over recent decode-only steps, `t ≈ t0 + δ·n`, read as
/// `beta = δ / (t0/S + δ)` for a step of `S` decoding sequences: one more position, relative
/// to one sequence's share of the pass. Alone (`S = 1`) a position is cheap beside the fixed
/// cost of reading the weights; in a wide batch that cost is already shared, an extra
/// position costs about what a sequence's own token does, and drafting stops paying.
#[derive(Clone, Debug, Default)]
pub(crate) struct StepCost {
    /// Exponentially weighted sums of 1, n, t, n², n·t.
    w: f64,
    n: f64,
    t: f64,
    nn: f64,
    nt: f64,
}

/// `beta` until the fit has seen steps of different widths.
const PRIOR_BETA: f64 = 0.3;
/// Per-step decay of the fit's weights (it follows the last few hundred steps).
const DECAY: f64 = 0.99;

impl StepCost {
    /// Records a decode-only step of `n` positions that took `secs`.
    pub fn record(&mut self, n: usize, secs: f64) {
        let n = n as f64;
        self.w = self.w * DECAY + 1.0;
        self.n = self.n * DECAY + n;
        self.t = self.t * DECAY + secs;
        self.nn = self.nn * DECAY + n * n;
        self.nt = self.nt * DECAY + n * secs;
    }

    /// Predicted seconds of a decode-only step of `n` positions (`None` before the fit has
    /// seen two widths).
    pub fn secs(&self, n: usize) -> Option<f64> {
        let (t0, delta) = self.fit()?;
        Some(t0 + delta * n as f64)
    }

    /// `t0` and `δ` of the fit, when it has one.
    fn fit(&self) -> Option<(f64, f64)> {
        if self.w <= 0.0 {
            return None;
        }
        let (mn, mt) = (self.n / self.w, self.t / self.w);
        let var = self.nn / self.w - mn * mn;
        if var < 0.05 {
            return None;
        }
        let delta = (self.nt / self.w - mn * mt) / var;
        let t0 = mt - delta * mn;
        (delta > 0.0 && t0 + delta > 0.0).then_some((t0, delta))
    }

    /// `beta` for a step of `seqs` decoding sequences.
    pub fn beta(&self, seqs: usize) -> f64 {
        let Some((t0, delta)) = self.fit() else {
            return PRIOR_BETA;
        };
        let share = t0.max(0.0) / seqs.max(1) as f64;
        (delta / (share + delta)).clamp(0.01, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draft_length_follows_acceptance_and_cost() {
        // Cheap positions and right guesses: draft far; costly positions or poor guesses: not.
        assert_eq!(best_draft_len(0.95, 0.95, 0.05, 8), 8);
        assert_eq!(best_draft_len(0.8, 0.8, 0.3, 8), 3);
        assert_eq!(
            best_draft_len(0.6, 0.97, 0.3, 8),
            8,
            "runs of right guesses"
        );
        assert_eq!(best_draft_len(0.25, 0.9, 0.3, 8), 0);
        assert_eq!(best_draft_len(0.9, 0.9, 1.0, 8), 0);
        assert_eq!(best_draft_len(0.9, 0.9, 0.3, 0), 0);
    }

    #[test]
    fn auto_pauses_after_failures_and_tries_again_later() {
        let cfg = SpecConfig {
            mode: SpecMode::Auto,
            max_draft: 8,
        };
        let mut p = Policy::new(cfg);
        let first = p.budget(0.3);
        assert!(first > 0, "the prior drafts");
        p.record(4, 4, None);
        p.record(4, 4, None);
        assert!(p.budget(0.3) > first, "right guesses lengthen the draft");
        for _ in 0..5 {
            p.record(4, 0, None);
        }
        assert_eq!(p.budget(0.3), 0, "wrong guesses pause it");
        let steps = (1..100).find(|_| p.budget(0.3) > 0);
        assert!(
            steps.is_some_and(|s| s > 3),
            "a paused sequence tries again, not at once: {steps:?}"
        );
        let mut n = Policy::new(SpecConfig {
            mode: SpecMode::Ngram,
            ..cfg
        });
        for _ in 0..3 {
            n.record(4, 0, None);
        }
        assert_eq!(n.budget(0.3), 1, "ngram mode never pauses");
        let mut off = Policy::new(SpecConfig {
            mode: SpecMode::Off,
            ..cfg
        });
        assert_eq!(off.budget(0.01), 0);
    }

    #[test]
    fn one_token_drafts_learn_runs_from_the_token_after_them() {
        let cfg = SpecConfig::default();
        let mut p = Policy::new(cfg);
        // Early drafts broke off after their first token: one-token drafts.
        for _ in 0..4 {
            p.record(4, 1, None);
        }
        assert_eq!(p.budget(0.3), 1);
        // Right single guesses teach nothing about runs on their own...
        let mut blind = p.clone();
        for _ in 0..10 {
            blind.record(1, 1, None);
        }
        assert_eq!(blind.budget(0.3), 1);
        // ...but the token the model chose after each, which the lookup had guessed too, does.
        for _ in 0..10 {
            p.record(1, 1, Some(true));
        }
        assert!(p.budget(0.3) > 2, "{}", p.budget(0.3));
    }

    #[test]
    fn the_cost_fit_reads_beta_from_step_times() {
        let mut c = StepCost::default();
        assert_eq!(c.beta(1), PRIOR_BETA);
        for _ in 0..5 {
            c.record(1, 0.004);
        }
        assert_eq!(c.beta(1), PRIOR_BETA, "one width says nothing of the slope");
        // t = 3 ms + 1 ms per position: beta = 1 / 4 alone, 1 / 1.25 among 12 sequences.
        for n in [1, 5, 9, 3, 1, 9] {
            c.record(n, 0.003 + 0.001 * n as f64);
        }
        assert!((c.beta(1) - 0.25).abs() < 1e-6, "{}", c.beta(1));
        assert!((c.beta(12) - 0.8).abs() < 1e-6, "{}", c.beta(12));
    }
}
