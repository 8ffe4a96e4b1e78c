//! Prompt lookup: guessing a reply's next tokens from the text it is copying.
//!
//! A reply that repeats, proofreads or edits its prompt copies long spans of it. The plain
//! lookup ([`ngram_draft`]) finds the last few generated tokens earlier in the context and
//! proposes what followed them there. It loses the thread at every edit: after a corrected
//! word (`compnay` → `company`) the last tokens occur nowhere, so nothing is drafted until two
//! tokens of copied text have been generated again one at a time. A proofreading reply edits
//! every few words, and those one-token steps were most of its steps.
//!
//! [`CopyCursor`] remembers where in the context the sequence was copying from, so it can
//! pick the copy up again after an edit without waiting for a fresh match:
//! - the token just generated is looked for a little around the cursor (a word the reply
//!   kept, after one it changed or left out): drafting resumes after it;
//! - a new word found nowhere near is taken to replace the source's word at the cursor:
//!   drafting resumes at the source's next word (`WordStarts`);
//! - such a resumed draft is short ([`RESYNC_MAX`]), since an edit often spans more than one
//!   word; and a cursor whose resumed drafts keep failing ([`MAX_MISSES`] in a row) is not
//!   trusted again until a draft from it copies a run ([`TRUST_RUN`] tokens). Free-form text,
//!   whose chance matches are not a copy, so stops paying for guesses after an edit that is
//!   not one.
//!
//! Every guess is checked by the model (`crate::spec`), so a bad guess costs time, never text.

use owl_text::Tokenizer;

use crate::spec::{Policy, SpecConfig};

/// The longest and shortest suffix looked up in the context.
const NGRAM_MAX: usize = 4;
const NGRAM_MIN: usize = 2;
/// How far around the cursor the token just generated is looked for: from `RESYNC_BACK`
/// positions before it to `RESYNC_AHEAD` after.
const RESYNC_BACK: usize = 2;
const RESYNC_AHEAD: usize = 8;
/// The most tokens a draft resumed after an edit proposes.
pub(crate) const RESYNC_MAX: usize = 4;
/// Resumed drafts that may fail in a row before the cursor is distrusted.
const MAX_MISSES: u8 = 2;
/// Tokens one draft from the cursor must copy to make it trusted again.
const TRUST_RUN: usize = 3;

/// Prompt lookup: finds the most recent earlier occurrence of the longest suffix of `tokens`
/// (between `NGRAM_MAX` and `NGRAM_MIN` tokens long) and writes what followed it, at most `max`
/// tokens, into `out` (cleared first). Returns where in `tokens` the draft was taken from.
pub(crate) fn ngram_draft(tokens: &[u32], max: usize, out: &mut Vec<u32>) -> Option<usize> {
    out.clear();
    let len = tokens.len();
    if max == 0 {
        return None;
    }
    for n in (NGRAM_MIN..=NGRAM_MAX.min(len.saturating_sub(1))).rev() {
        let key = &tokens[len - n..];
        // Candidate starts, most recent first; the match must end before the suffix does.
        for start in (0..len - n).rev() {
            if &tokens[start..start + n] == key {
                let from = start + n;
                let to = (from + max).min(len);
                out.extend_from_slice(&tokens[from..to]);
                return Some(from);
            }
        }
    }
    None
}

/// Which tokens begin a word: their text is white space, then a letter or digit (` Oak`,
/// ` 1998`, not ` "` or a newline and indentation). Where a reply that wrote its own word
/// picks the copied text up again. Punctuation and layout are left out: a reply that
/// re-indents or re-quotes what it copies is not replacing words, and resuming after such a
/// token guessed wrong (measured on a JSON edit).
#[derive(Debug, Default)]
pub(crate) struct WordStarts(Vec<bool>);

impl WordStarts {
    pub fn new(tok: &Tokenizer) -> WordStarts {
        let starts = (0..tok.vocab_size() as u32)
            .map(|id| begins_word(&tok.token_to_piece(id, false)))
            .collect();
        WordStarts(starts)
    }

    #[cfg(test)]
    pub fn from_flags(starts: Vec<bool>) -> WordStarts {
        WordStarts(starts)
    }

    fn get(&self, id: u32) -> bool {
        self.0.get(id as usize).copied().unwrap_or(false)
    }
}

/// Whether a token's text begins a word: white space, then a letter or digit (any byte of a
/// multi-byte UTF-8 character counts as one, so other scripts' words do too).
fn begins_word(piece: &[u8]) -> bool {
    let body = piece.trim_ascii_start();
    body.len() < piece.len()
        && body
            .first()
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b >= 0x80)
}

/// A sequence's prompt lookup: where its copy stands and how far to guess from it. The one
/// sequence of propose, check and learn that the scheduler runs every step and
/// `crate::spec_replay` replays from a recording.
#[derive(Clone, Debug)]
pub(crate) struct LookupDrafter {
    policy: Policy,
    copy: CopyCursor,
}

impl LookupDrafter {
    pub fn new(cfg: SpecConfig) -> LookupDrafter {
        LookupDrafter {
            policy: Policy::new(cfg),
            copy: CopyCursor::default(),
        }
    }

    /// Writes this step's guesses to follow `tokens` into `out` (cleared first): at most the
    /// policy's budget at `beta` (see `crate::spec::StepCost`) and `room`.
    pub fn propose(
        &mut self,
        tokens: &[u32],
        beta: f64,
        room: usize,
        words: &WordStarts,
        out: &mut Vec<u32>,
    ) {
        let max = self.policy.budget(beta).min(room);
        self.copy.draft(tokens, max, words, out);
    }

    /// Learns from a checked draft of `drafted` tokens, `accepted` of them right; `tokens` is
    /// the sequence after the step (the accepted tokens and the one chosen after them).
    pub fn record(&mut self, drafted: usize, accepted: usize, tokens: &[u32]) {
        if drafted > 0 {
            let went_on = self.copy.record(drafted, accepted, tokens);
            self.policy.record(drafted, accepted, went_on);
        }
    }
}

/// Where a sequence is copying from, kept between steps.
#[derive(Clone, Debug, Default)]
pub(crate) struct CopyCursor {
    /// The position in the sequence's tokens that the copy is expected to go on from.
    at: Option<usize>,
    /// Whether the last draft was resumed after an edit (rather than found by lookup).
    resumed: bool,
    /// Resumed drafts that failed in a row.
    misses: u8,
}

impl CopyCursor {
    /// Writes at most `max` guessed tokens to follow `tokens` into `out` (cleared first):
    /// by lookup, else resumed from the cursor.
    pub fn draft(&mut self, tokens: &[u32], max: usize, words: &WordStarts, out: &mut Vec<u32>) {
        self.resumed = false;
        // The token just chosen is the one the copy had next: go on from the same place,
        // rather than from wherever the last tokens occurred most recently (code repeats
        // its lines, and a fresh lookup jumped to the wrong function's).
        if let (Some(at), Some(&last)) = (self.at, tokens.last()) {
            if at + 1 < tokens.len() && tokens[at] == last {
                out.clear();
                let to = (at + 1 + max).min(tokens.len());
                out.extend_from_slice(&tokens[at + 1..to]);
                self.at = Some(at + 1);
                return;
            }
        }
        if let Some(from) = ngram_draft(tokens, max, out) {
            self.at = Some(from);
            return;
        }
        let (Some(at), Some(&last)) = (self.at, tokens.last()) else {
            return;
        };
        if max == 0 || self.misses >= MAX_MISSES {
            return;
        }
        let len = tokens.len();
        // Search up to the token before `last`, so the match is earlier text, not itself.
        let hi = (at + RESYNC_AHEAD).min(len - 1);
        let lo = at.saturating_sub(RESYNC_BACK).min(hi);
        let from = match tokens[lo..hi].iter().position(|&t| t == last) {
            Some(i) => lo + i + 1,
            None if words.get(last) && at + 1 < len => {
                // The reply wrote a word of its own: skip the source's word at the cursor.
                let next = tokens[at + 1..len - 1].iter().position(|&t| words.get(t));
                match next {
                    Some(i) => at + 1 + i,
                    None => return,
                }
            }
            None => return,
        };
        let to = (from + max.min(RESYNC_MAX)).min(len);
        out.extend_from_slice(&tokens[from..to]);
        self.at = Some(from);
        self.resumed = !out.is_empty();
    }

    /// Learns from the checked draft: `accepted` of its `drafted` tokens were right, and
    /// `tokens` now ends with them and the token the model chose next. Returns, when every
    /// drafted token was right, whether the copied text goes on with that chosen token (what
    /// one more drafted token would have been), where the text before this step shows it.
    pub fn record(&mut self, drafted: usize, accepted: usize, tokens: &[u32]) -> Option<bool> {
        if drafted == 0 {
            return None;
        }
        let at = self.at.as_mut()?;
        let went_on = (accepted == drafted)
            .then(|| {
                let chosen = tokens.len().checked_sub(1)?;
                let src = *at + drafted;
                (src < chosen.saturating_sub(accepted)).then(|| tokens[src] == tokens[chosen])
            })
            .flatten();
        *at += accepted;
        if accepted >= TRUST_RUN {
            self.misses = 0;
        } else if self.resumed && accepted == 0 {
            self.misses = self.misses.saturating_add(1);
        }
        went_on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_proposes_what_followed_the_latest_longest_match() {
        let mut out = Vec::new();
        // "1 2 3 9 | 7 2 3 5 | ... 2 3": the 2-gram [2,3] last occurred before 5.
        let from = ngram_draft(&[1, 2, 3, 9, 7, 2, 3, 5, 6, 2, 3], 3, &mut out);
        assert_eq!((out.as_slice(), from), (&[5, 6, 2][..], Some(7)));
        // A longer suffix wins over a more recent shorter one.
        ngram_draft(&[1, 2, 3, 4, 8, 3, 4, 9, 1, 2, 3, 4], 2, &mut out);
        assert_eq!(out, [8, 3]);
        // No match, or nothing allowed: nothing.
        assert_eq!(ngram_draft(&[1, 2, 3, 4], 4, &mut out), None);
        assert!(out.is_empty());
        ngram_draft(&[5, 6, 5, 6], 0, &mut out);
        assert!(out.is_empty());
        // The draft stops at the end of the context.
        ngram_draft(&[5, 6, 7, 5, 6], 8, &mut out);
        assert_eq!(out, [7, 5, 6]);
        ngram_draft(&[], 4, &mut out);
        assert!(out.is_empty());
    }

    /// Tokens ≥ 100 begin a word, the others continue one.
    fn words() -> WordStarts {
        WordStarts::from_flags((0..200).map(|t| t >= 100).collect())
    }

    #[test]
    fn the_cursor_resumes_the_copy_after_an_edit() {
        let w = words();
        let mut out = Vec::new();
        // Source: "a b c+1 d e f g" where c+1 is one word in two tokens (103 7).
        let src = [100, 101, 102, 103, 7, 104, 105, 106, 107, 108];
        let mut c = CopyCursor::default();
        // The reply copied "100 101 102": lookup drafts from the source.
        let mut seq: Vec<u32> = src.iter().copied().chain([1, 100, 101, 102]).collect();
        c.draft(&seq, 8, &w, &mut out);
        assert_eq!(out, [103, 7, 104, 105, 106, 107, 108, 1]);
        // The reply wrote its own word (150) instead of "103 7": no lookup matches, and the
        // cursor skips the source's word, resuming at 104 for at most RESYNC_MAX tokens.
        seq.push(150);
        assert_eq!(c.record(8, 0, &seq), None, "not every token was right");
        c.draft(&seq, 8, &w, &mut out);
        assert_eq!(out, [104, 105, 106, 107]);
        assert_eq!(out.len(), RESYNC_MAX);
        // Two accepted, then the reply leaves out 106 and writes 107: the cursor finds
        // 107 just ahead and resumes after it.
        seq.extend([104, 105, 107]);
        c.record(4, 2, &seq);
        c.draft(&seq, 8, &w, &mut out);
        assert_eq!(out, [108, 1, 100, 101]);
    }

    #[test]
    fn the_copy_goes_on_from_its_own_place_not_the_latest_match() {
        let w = words();
        let mut out = Vec::new();
        // Two "functions" share five tokens, 100..=104, and go on differently (105, 110).
        let src = [
            7, 100, 101, 102, 103, 104, 105, 1, 8, 100, 101, 102, 103, 104, 110, 1,
        ];
        // The reply copies the first one: "7 100" is found there.
        let mut seq: Vec<u32> = src.iter().copied().chain([7, 100]).collect();
        let mut c = CopyCursor::default();
        c.draft(&seq, 3, &w, &mut out);
        assert_eq!(out, [101, 102, 103]);
        seq.extend([101, 102, 103, 104]);
        assert_eq!(c.record(3, 3, &seq), Some(true));
        // The last four tokens occur in both functions and a lookup takes the latest match
        // (the second function, 110); the cursor stays with the first.
        c.draft(&seq, 2, &w, &mut out);
        assert_eq!(out, [105, 1]);
        let mut fresh = Vec::new();
        ngram_draft(&seq, 2, &mut fresh);
        assert_eq!(fresh, [110, 1], "what a lookup without the cursor guesses");
    }

    #[test]
    fn a_fully_right_draft_says_whether_the_copy_went_on() {
        let w = words();
        let mut out = Vec::new();
        let mut seq: Vec<u32> = vec![100, 101, 102, 103, 104, 1, 100, 101];
        let mut c = CopyCursor::default();
        c.draft(&seq, 1, &w, &mut out);
        assert_eq!(out, [102]);
        // Right, and the model then chose 103, as the source goes on: a run.
        seq.extend([102, 103]);
        assert_eq!(c.record(1, 1, &seq), Some(true));
        c.draft(&seq, 1, &w, &mut out);
        assert_eq!(out, [104]);
        // Right, but the model then chose 150 where the source has 1.
        seq.extend([104, 150]);
        assert_eq!(c.record(1, 1, &seq), Some(false));
        // Past the end of the earlier text there is nothing to compare with.
        let mut seq: Vec<u32> = vec![100, 101, 102, 100, 101];
        let mut c = CopyCursor::default();
        c.draft(&seq, 4, &w, &mut out);
        assert_eq!(out, [102, 100, 101]);
        seq.extend([102, 100, 101, 102]);
        assert_eq!(c.record(3, 3, &seq), None);
    }

    #[test]
    fn a_word_is_white_space_then_a_letter_or_digit() {
        for w in [" Oak", " 1998", "\n\nThe", " été", "  x"] {
            assert!(begins_word(w.as_bytes()), "{w:?}");
        }
        for n in ["Oak", " \"", "\n   ", ",", "", " ", "ing"] {
            assert!(!begins_word(n.as_bytes()), "{n:?}");
        }
    }

    #[test]
    fn any_sequence_of_steps_drafts_from_the_context_and_never_panics() {
        // Random small-alphabet replies (many chance matches), every draft length and
        // outcome: each draft is text of the context, never past its end.
        let w = words();
        let mut state = 0x9e37_79b9_u64;
        let mut rand = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let mut out = Vec::new();
        for _ in 0..200 {
            let mut seq: Vec<u32> = (0..1 + rand(12)).map(|_| 98 + rand(6) as u32).collect();
            let mut c = CopyCursor::default();
            for _ in 0..60 {
                let max = rand(9) as usize;
                c.draft(&seq, max, &w, &mut out);
                assert!(out.len() <= max);
                let contained = out.is_empty() || seq.windows(out.len()).any(|x| x == out);
                assert!(contained, "{out:?} is not text of {seq:?}");
                let accepted = if out.is_empty() {
                    0
                } else {
                    rand(out.len() as u64 + 1) as usize
                };
                let drafted = out.len();
                seq.extend_from_slice(&out[..accepted]);
                seq.push(98 + rand(6) as u32);
                c.record(drafted, accepted, &seq);
            }
        }
    }

    #[test]
    fn a_failing_cursor_is_distrusted_until_a_run_is_copied() {
        let w = words();
        let mut out = Vec::new();
        let src: Vec<u32> = (100..120).collect();
        let mut seq: Vec<u32> = src.iter().copied().chain([1, 100, 101]).collect();
        let mut c = CopyCursor::default();
        c.draft(&seq, 8, &w, &mut out);
        assert_eq!(out[0], 102);
        // New words the source does not have: resumed drafts fail, then stop.
        let mut resumed = 0;
        let mut drafted = out.len();
        for t in 150..156 {
            seq.push(t);
            c.record(drafted, 0, &seq);
            c.draft(&seq, 8, &w, &mut out);
            drafted = out.len();
            resumed += usize::from(drafted > 0);
        }
        assert_eq!(resumed, usize::from(MAX_MISSES));
        // A lookup draft that copies a run trusts the cursor again.
        seq.extend([110, 111]);
        c.draft(&seq, 8, &w, &mut out);
        assert_eq!(out[..3], [112, 113, 114]);
        seq.extend([112, 113, 114, 160]);
        c.record(8, TRUST_RUN, &seq);
        c.draft(&seq, 8, &w, &mut out);
        assert_eq!(
            out,
            [116, 117, 118, 119],
            "resumed after the replaced word 115"
        );
    }
}
