//! User-facing sampling configuration and its validation.

use crate::SampleError;

/// Everything that configures one [`Sampler`](crate::Sampler).
///
/// Each knob has an "off" value (documented per field) at which the
/// corresponding processor is left out of the chain entirely.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature. `0.0` selects greedy decoding (argmax, ties go to
    /// the lowest token id; logit bias and penalties still apply first).
    /// Negative values are rejected by [`validate`](Self::validate).
    pub temperature: f32,
    /// Keep only the `top_k` highest logits. `0` = off.
    pub top_k: usize,
    /// Nucleus sampling: keep the smallest prefix (by descending probability)
    /// whose cumulative probability is `>= top_p`, at least one token.
    /// Must be in `(0, 1]`; `1.0` = off.
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p * p_max`. Must be in
    /// `[0, 1]`; `0.0` = off.
    pub min_p: f32,
    /// llama.cpp repetition penalty: for every token occurring in the last
    /// `repeat_last_n` history tokens, a positive logit is divided by it and a
    /// non-positive one multiplied by it. Must be finite and `> 0`; `1.0` = off.
    pub repeat_penalty: f32,
    /// Size of the history window all three penalties look at (as in
    /// llama.cpp, frequency and presence penalties count occurrences inside
    /// this window too). `0` disables every penalty; `usize::MAX` means the
    /// whole history.
    pub repeat_last_n: usize,
    /// OpenAI frequency penalty: `logit -= count * frequency_penalty`. Must be
    /// finite; `0.0` = off; negative values encourage repetition.
    pub frequency_penalty: f32,
    /// OpenAI presence penalty: `logit -= presence_penalty` if `count > 0`.
    /// Must be finite; `0.0` = off.
    pub presence_penalty: f32,
    /// Added to the raw logit of the given token ids before anything else.
    /// `f32::NEG_INFINITY` bans a token. Ids outside the vocabulary are
    /// ignored; repeated ids add up. NaN biases are rejected.
    pub logit_bias: Vec<(u32, f32)>,
    /// PRNG seed; `None` seeds from the clock and process-local entropy.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            logit_bias: Vec::new(),
            seed: None,
        }
    }
}

fn invalid(field: &'static str, reason: String) -> Result<(), SampleError> {
    Err(SampleError::InvalidParam { field, reason })
}

impl SamplingParams {
    /// Deterministic argmax decoding with every filter and penalty off.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..Self::default()
        }
    }

    /// True when these params decode greedily (`temperature <= 0`).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// True when the penalties processor would change anything.
    pub fn penalties_active(&self) -> bool {
        self.repeat_last_n > 0
            && (self.repeat_penalty != 1.0
                || self.frequency_penalty != 0.0
                || self.presence_penalty != 0.0)
    }

    /// Checks every field's range; the error names the first bad field.
    pub fn validate(&self) -> Result<(), SampleError> {
        let t = self.temperature;
        if !t.is_finite() {
            return invalid("temperature", format!("must be a finite number, got {t}"));
        }
        if t < 0.0 {
            return invalid(
                "temperature",
                format!("must be >= 0 (0 selects greedy decoding), got {t}"),
            );
        }
        let p = self.top_p;
        if p.is_nan() || p <= 0.0 || p > 1.0 {
            return invalid("top_p", format!("must be in (0, 1] (1 = off), got {p}"));
        }
        let m = self.min_p;
        if m.is_nan() || !(0.0..=1.0).contains(&m) {
            return invalid("min_p", format!("must be in [0, 1] (0 = off), got {m}"));
        }
        let r = self.repeat_penalty;
        if !r.is_finite() || r <= 0.0 {
            return invalid(
                "repeat_penalty",
                format!("must be a finite number > 0 (1 = off), got {r}"),
            );
        }
        if !self.frequency_penalty.is_finite() {
            return invalid(
                "frequency_penalty",
                format!("must be a finite number, got {}", self.frequency_penalty),
            );
        }
        if !self.presence_penalty.is_finite() {
            return invalid(
                "presence_penalty",
                format!("must be a finite number, got {}", self.presence_penalty),
            );
        }
        if let Some((id, _)) = self.logit_bias.iter().find(|(_, b)| b.is_nan()) {
            return invalid("logit_bias", format!("bias for token {id} is NaN"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(p: &SamplingParams) -> Option<&'static str> {
        match p.validate() {
            Err(SampleError::InvalidParam { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn defaults_and_greedy_are_valid() {
        assert_eq!(SamplingParams::default().validate(), Ok(()));
        assert_eq!(SamplingParams::greedy().validate(), Ok(()));
        assert!(SamplingParams::greedy().is_greedy());
        assert!(!SamplingParams::default().is_greedy());
        assert!(!SamplingParams::default().penalties_active());
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        let d = SamplingParams::default;
        let cases: Vec<(SamplingParams, &str)> = vec![
            (
                SamplingParams {
                    temperature: f32::NAN,
                    ..d()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    temperature: -0.5,
                    ..d()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    temperature: f32::INFINITY,
                    ..d()
                },
                "temperature",
            ),
            (SamplingParams { top_p: 0.0, ..d() }, "top_p"),
            (SamplingParams { top_p: 1.01, ..d() }, "top_p"),
            (
                SamplingParams {
                    top_p: f32::NAN,
                    ..d()
                },
                "top_p",
            ),
            (SamplingParams { min_p: -0.1, ..d() }, "min_p"),
            (SamplingParams { min_p: 1.5, ..d() }, "min_p"),
            (
                SamplingParams {
                    min_p: f32::NAN,
                    ..d()
                },
                "min_p",
            ),
            (
                SamplingParams {
                    repeat_penalty: 0.0,
                    ..d()
                },
                "repeat_penalty",
            ),
            (
                SamplingParams {
                    repeat_penalty: -1.0,
                    ..d()
                },
                "repeat_penalty",
            ),
            (
                SamplingParams {
                    repeat_penalty: f32::NAN,
                    ..d()
                },
                "repeat_penalty",
            ),
            (
                SamplingParams {
                    frequency_penalty: f32::NAN,
                    ..d()
                },
                "frequency_penalty",
            ),
            (
                SamplingParams {
                    presence_penalty: f32::INFINITY,
                    ..d()
                },
                "presence_penalty",
            ),
            (
                SamplingParams {
                    logit_bias: vec![(1, 0.5), (7, f32::NAN)],
                    ..d()
                },
                "logit_bias",
            ),
        ];
        for (p, want) in cases {
            assert_eq!(field_of(&p), Some(want), "{p:?}");
            let msg = p
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains(want), "message `{msg}` should name `{want}`");
        }
    }

    #[test]
    fn accepts_edge_values() {
        let d = SamplingParams::default;
        for p in [
            SamplingParams {
                temperature: 0.0,
                ..d()
            },
            SamplingParams { top_p: 1.0, ..d() },
            SamplingParams { top_p: 1e-9, ..d() },
            SamplingParams { min_p: 0.0, ..d() },
            SamplingParams { min_p: 1.0, ..d() },
            SamplingParams {
                frequency_penalty: -2.0,
                presence_penalty: -2.0,
                ..d()
            },
            SamplingParams {
                logit_bias: vec![(3, f32::NEG_INFINITY)],
                ..d()
            },
            SamplingParams {
                repeat_last_n: 0,
                top_k: 0,
                ..d()
            },
        ] {
            assert_eq!(p.validate(), Ok(()), "{p:?}");
        }
    }
}
