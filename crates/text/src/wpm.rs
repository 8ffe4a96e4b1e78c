//! WordPiece vocabularies (`tokenizer.ggml.model == "bert"`, llama.cpp's `LLAMA_VOCAB_TYPE_WPM`).
//!
//! BERT-family embedding models (all-MiniLM, BGE, nomic-embed...) tokenize with WordPiece:
//! normalise (lowercase, strip accents), split into words at whitespace and around every
//! punctuation mark and CJK ideograph, then cut each word greedily into the longest vocabulary
//! pieces, left to right; a word with any part that no piece covers becomes `[UNK]` as a whole.
//!
//! llama.cpp's converter rewrites the Hugging Face vocabulary so that a word start carries a
//! `▁` prefix (`hello` → `▁hello`) and a continuation loses its `##` (`##ing` → `ing`);
//! special tokens (`[CLS]`, `[SEP]`...) are kept as they are. Tokenizing a word is then one
//! greedy longest match over `▁word` ([`tokenize_word`]).
//!
//! This follows llama.cpp's `llm_tokenizer_wpm_session` rather than the `tokenizers` crate's
//! `BertNormalizer` + `BertPreTokenizer` + `WordPiece`, because the two disagree on text a
//! user can type and llama.cpp is the reference owl is held to:
//!
//! * llama.cpp's "NFD" maps each code point to the *first* code point of its decomposition
//!   (`é` → `e`, but also the Hangul syllable `한` → its first jamo `ᄒ`), where HF decomposes
//!   fully;
//! * it lowercases with a one-to-one map (UnicodeData's simple mapping), HF with Rust's full
//!   `to_lowercase`;
//! * it has no `max_input_chars_per_word` (HF turns a word over 100 characters into `[UNK]`;
//!   llama.cpp still cuts it into pieces);
//! * its Unicode tables are its own snapshot (`wpm_unicode.rs`, generated from llama.cpp's
//!   `unicode-data.cpp`), so a code point's class never depends on the Unicode version of a
//!   dependency.
//!
//! `crates/text/tests/wpm.rs` checks owl against llama.cpp's own output on all-MiniLM-L6-v2's
//! vocabulary (CJK, emoji, accents, control characters, long words, whitespace runs).

use crate::vocab::Vocab;
use crate::wpm_unicode::{CLASSES, LOWER, NFD};
use crate::TextError;

/// The BertNormalizer options llama.cpp reads (`tokenizer.ggml.normalizer.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Normalizer {
    pub lowercase: bool,
    pub strip_accents: bool,
}

/// What [`preprocess`] does with one code point (`wpm_unicode::CLASSES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Other,
    Whitespace,
    Control,
    Mark,
    Punctuation,
    Symbol,
}

fn class(cp: u32) -> Class {
    let i = CLASSES.partition_point(|&(start, _)| start <= cp);
    match i.checked_sub(1).map(|i| CLASSES[i].1) {
        Some(1) => Class::Whitespace,
        Some(2) => Class::Control,
        Some(3) => Class::Mark,
        Some(4) => Class::Punctuation,
        Some(5) => Class::Symbol,
        _ => Class::Other,
    }
}

/// llama.cpp's `unicode_tolower`: the simple (one code point) lowercase mapping.
fn to_lower(cp: u32) -> u32 {
    let i = LOWER.partition_point(|&(first, _, _, _)| first <= cp);
    let Some(&(first, count, delta, stride)) = i.checked_sub(1).map(|i| &LOWER[i]) else {
        return cp;
    };
    let (off, stride) = (cp - first, u32::from(stride));
    if off % stride == 0 && off / stride < u32::from(count) {
        cp.checked_add_signed(delta).unwrap_or(cp)
    } else {
        cp
    }
}

/// llama.cpp's `unicode_cpts_normalize_nfd` for one code point: the first code point of its
/// canonical decomposition.
fn nfd_base(cp: u32) -> u32 {
    let i = NFD.partition_point(|&(first, _, _)| first <= cp);
    match i.checked_sub(1).map(|i| NFD[i]) {
        Some((_, last, base)) if cp <= last => base,
        _ => cp,
    }
}

/// llama.cpp's `is_chinese_char` (with its copy of HF's 0x2B920 typo).
fn is_chinese_char(cp: u32) -> bool {
    matches!(cp,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// Normalises `text` and splits it into words (`llm_tokenizer_wpm_session::preprocess`):
/// whitespace ends a word; NUL, U+FFFD and `\p{C}` are dropped; with `strip_accents`, marks
/// are dropped after the NFD base map; punctuation, ASCII symbols and CJK ideographs become
/// one-character words.
pub(crate) fn preprocess(text: &str, norm: Normalizer) -> Vec<String> {
    let mut words = vec![String::new()];
    for ch in text.chars() {
        let mut cp = u32::from(ch);
        if norm.strip_accents {
            cp = nfd_base(cp);
        }
        let class = class(cp);
        if class == Class::Whitespace {
            if words.last().is_some_and(|w| !w.is_empty()) {
                words.push(String::new());
            }
            continue;
        }
        if cp == 0 || cp == 0xFFFD || class == Class::Control {
            continue;
        }
        if norm.strip_accents && class == Class::Mark {
            continue;
        }
        let out = if norm.lowercase { to_lower(cp) } else { cp };
        // The tables only hold scalar values; fall back to the unmapped character otherwise.
        let out = char::from_u32(out).unwrap_or(ch);
        let split = class == Class::Punctuation
            || (cp < 0x7F && class == Class::Symbol)
            || is_chinese_char(cp);
        if split {
            if words.last().is_some_and(|w| !w.is_empty()) {
                words.push(String::new());
            }
            if let Some(last) = words.last_mut() {
                *last = out.to_string();
            }
            words.push(String::new());
        } else if let Some(last) = words.last_mut() {
            last.push(out);
        }
    }
    if words.last().is_some_and(String::is_empty) {
        words.pop();
    }
    words
}

/// Longest-match WordPiece of one word, as llama.cpp does it: `▁word`, then from each
/// position the longest vocabulary token (at most `max_len` bytes) starting there. If some
/// position matches nothing, nothing is appended and the caller emits `[UNK]` for the word.
fn tokenize_word(vocab: &Vocab, word: &str, max_len: usize, out: &mut Vec<u32>) -> bool {
    let word1 = format!("\u{2581}{word}");
    let n = word1.len();
    let start_len = out.len();
    let mut i = 0;
    while i < n {
        let mut matched = None;
        let mut j = n.min(i + max_len + 1);
        while j > i {
            if word1.is_char_boundary(j) {
                if let Some(&id) = vocab.token_to_id.get(&word1[i..j]) {
                    matched = Some((id, j));
                    break;
                }
            }
            j -= 1;
        }
        match matched {
            Some((id, end)) => {
                out.push(id);
                i = end;
            }
            None => {
                out.truncate(start_len);
                break;
            }
        }
    }
    out.len() > start_len
}

/// The WordPiece tokenizer of one vocabulary.
pub(crate) struct Wpm {
    norm: Normalizer,
    /// Longest token text in bytes (llama.cpp's `max_token_len`).
    max_len: usize,
    unk: Option<u32>,
}

impl Wpm {
    pub(crate) fn new(vocab: &Vocab, norm: Normalizer) -> Wpm {
        let max_len = vocab.tokens.iter().map(String::len).max().unwrap_or(0);
        Wpm {
            norm,
            max_len,
            unk: vocab.ids.unk,
        }
    }

    /// Appends the ids of one raw-text fragment (special tokens already split out).
    pub(crate) fn tokenize(
        &self,
        vocab: &Vocab,
        text: &str,
        out: &mut Vec<u32>,
    ) -> Result<(), TextError> {
        for word in preprocess(text, self.norm) {
            if !tokenize_word(vocab, &word, self.max_len, out) {
                out.push(self.unk.ok_or(TextError::MissingSpecialToken("UNK"))?);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERT: Normalizer = Normalizer {
        lowercase: true,
        strip_accents: true,
    };

    #[test]
    fn tables_follow_unicode() {
        assert_eq!(class(u32::from(' ')), Class::Whitespace);
        assert_eq!(class(0x3000), Class::Whitespace);
        assert_eq!(class(0x200B), Class::Control); // zero width space is Cf
        assert_eq!(class(0x0301), Class::Mark);
        assert_eq!(class(u32::from('!')), Class::Punctuation);
        assert_eq!(class(u32::from('$')), Class::Symbol);
        assert_eq!(class(u32::from('a')), Class::Other);
        assert_eq!(to_lower(u32::from('A')), u32::from('a'));
        assert_eq!(to_lower(0x100), 0x101); // Ā → ā (a stride-2 run)
        assert_eq!(to_lower(0x101), 0x101);
        assert_eq!(to_lower(0x130), u32::from('i')); // İ: simple mapping only
        assert_eq!(nfd_base(u32::from('é')), u32::from('e'));
        assert_eq!(nfd_base(0xD55C), 0x1112); // 한 → ᄒ, llama.cpp's first-code-point NFD
        assert_eq!(nfd_base(u32::from('x')), u32::from('x'));
    }

    #[test]
    fn preprocess_splits_like_llama_cpp() {
        let w = preprocess("Héllo,  WORLD!你好 a$b x\u{7}y", BERT);
        assert_eq!(
            w,
            ["hello", ",", "world", "!", "你", "好", "a", "$", "b", "xy"]
        );
        // symbols above ASCII stay inside the word; without lowercase the case is kept
        let raw = Normalizer {
            lowercase: false,
            strip_accents: false,
        };
        assert_eq!(preprocess("Café ©x", raw), ["Café", "©x"]);
        assert!(preprocess(" \t\n ", BERT).is_empty());
    }
}
