//! The vocabulary as llama.cpp sees it after loading: token texts, per-token attributes,
//! special ids with llama.cpp's defaults, the end-of-generation set and the special-token
//! cache used to split special text out of the input.

use crate::pretokenize::{self, PreConfig};
use crate::wpm::Normalizer;
use crate::{TextError, VocabSpec};
use std::collections::{HashMap, HashSet};

/// Token attribute bits (llama.cpp's `llama_token_attr`).
pub(crate) mod attr {
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
    pub const LSTRIP: u32 = 1 << 7;
    pub const RSTRIP: u32 = 1 << 8;
}

/// Which tokenization algorithm the vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `tokenizer.ggml.model == "gpt2"`: byte-level BPE with merges.
    Bpe,
    /// `tokenizer.ggml.model == "llama"`: SentencePiece, score-driven merges, byte fallback.
    Spm,
    /// `tokenizer.ggml.model == "bert"`: WordPiece, greedy longest match (`wpm.rs`).
    Wpm,
}

/// Special token ids after defaults and metadata are applied.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    /// Separator (`[SEP]`): WordPiece vocabularies end every sequence with it.
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
}

pub(crate) struct Vocab {
    pub kind: Kind,
    /// Resolved pre-tokenizer (BPE only) and whether the name was recognised.
    pub pre: PreConfig,
    pub pre_known: bool,
    pub tokens: Vec<String>,
    pub attrs: Vec<u32>,
    pub token_to_id: HashMap<String, u32>,
    pub ids: SpecialIds,
    pub eog: HashSet<u32>,
    /// Control, user-defined and unknown tokens, longest text first.
    pub special_cache: Vec<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    /// WordPiece normalisation (llama.cpp reads it for every vocabulary; only `bert` uses it).
    pub normalizer: Normalizer,
}

/// Texts llama.cpp treats as end-of-turn / end-of-generation markers.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

fn type_to_attr(t: i32) -> u32 {
    match t {
        1 => attr::NORMAL,
        2 => attr::UNKNOWN,
        3 => attr::CONTROL,
        4 => attr::USER_DEFINED,
        5 => attr::UNUSED,
        6 => attr::BYTE,
        _ => 0,
    }
}

impl Vocab {
    pub fn build(spec: &VocabSpec) -> Result<Vocab, TextError> {
        let n = spec.tokens.len();
        if n == 0 {
            return Err(TextError::InvalidVocab("the token list is empty".into()));
        }
        if n > u32::MAX as usize {
            return Err(TextError::InvalidVocab("too many tokens".into()));
        }
        if !spec.token_types.is_empty() && spec.token_types.len() < n {
            return Err(TextError::InvalidVocab(format!(
                "{} token types for {n} tokens",
                spec.token_types.len()
            )));
        }

        // Per-family defaults (llama_vocab::impl::load).
        let (kind, mut ids, pre, pre_known) = match spec.model.as_str() {
            "llama" => {
                let ids = SpecialIds {
                    bos: Some(1),
                    eos: Some(2),
                    unk: Some(0),
                    ..SpecialIds::default()
                };
                (Kind::Spm, ids, pretokenize::DEFAULT, true)
            }
            "gpt2" => {
                let resolved = pretokenize::resolve(spec.pre.as_deref());
                let pre = resolved.unwrap_or(pretokenize::DEFAULT);
                let ids = SpecialIds {
                    bos: Some(11).filter(|_| !pre.no_default_bos),
                    eos: Some(11),
                    ..SpecialIds::default()
                };
                (Kind::Bpe, ids, pre, resolved.is_some())
            }
            "bert" => {
                let ids = SpecialIds {
                    bos: Some(101),
                    unk: Some(100),
                    sep: Some(102),
                    pad: Some(0),
                    ..SpecialIds::default()
                };
                (Kind::Wpm, ids, pretokenize::DEFAULT, true)
            }
            other => return Err(TextError::UnsupportedModel(other.to_string())),
        };
        let (mut add_bos, mut add_eos, mut add_space_prefix, clean_spaces) = match kind {
            Kind::Spm => (true, false, true, false),
            Kind::Bpe => (pre.add_bos, false, false, pre.clean_spaces),
            Kind::Wpm => (true, false, false, true),
        };
        if let Some(v) = spec.add_space_prefix {
            add_space_prefix = v;
        }

        let mut tokens = Vec::with_capacity(n);
        let mut attrs = Vec::with_capacity(n);
        let mut token_to_id = HashMap::with_capacity(n);
        for (i, t) in spec.tokens.iter().enumerate() {
            let text = if t.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                t.clone()
            };
            token_to_id.insert(text.clone(), i as u32);
            tokens.push(text);
            attrs.push(
                spec.token_types
                    .get(i)
                    .map_or(attr::NORMAL, |&t| type_to_attr(t)),
            );
        }

        // Metadata ids override defaults when in range; out-of-range defaults are dropped.
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let pick = |default: Option<u32>, meta: Option<u32>| in_range(meta).or(in_range(default));
        ids.bos = pick(ids.bos, spec.bos);
        ids.eos = pick(ids.eos, spec.eos);
        ids.unk = pick(ids.unk, spec.unk);
        ids.eot = in_range(spec.eot);
        ids.eom = in_range(spec.eom);
        ids.sep = pick(ids.sep, spec.sep);
        ids.pad = pick(ids.pad, spec.pad);
        ids.fim_pad = in_range(spec.fim_pad);
        ids.fim_rep = in_range(spec.fim_rep);
        ids.fim_sep = in_range(spec.fim_sep);
        if let Some(v) = spec.add_bos {
            add_bos = v;
        }
        if let Some(v) = spec.add_eos {
            add_eos = v;
        }
        let lowercase = spec.normalizer_lowercase.unwrap_or(true);
        let normalizer = Normalizer {
            lowercase,
            strip_accents: spec.normalizer_strip_accents.unwrap_or(lowercase),
        };

        let mut v = Vocab {
            kind,
            pre,
            pre_known,
            tokens,
            attrs,
            token_to_id,
            ids,
            eog: HashSet::new(),
            special_cache: Vec::new(),
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            normalizer,
        };
        v.detect_special_by_text();
        v.build_eog();
        v.build_special_cache();
        v.apply_model_attrs(spec.name.as_deref());
        Ok(v)
    }

    fn mark_control(&mut self, id: u32) {
        self.attrs[id as usize] |= attr::CONTROL;
    }

    /// The token for the first of `texts` the vocabulary has. (llama.cpp scans a hash map, so
    /// its pick among several candidates is arbitrary; list order makes ours the intended one,
    /// e.g. `<|eot_id|>` over `<|end_of_text|>`.)
    fn find_text(&self, texts: &[&str]) -> Option<u32> {
        texts.iter().find_map(|t| self.token_to_id.get(*t).copied())
    }

    /// llama.cpp guesses EOT/EOM/FIM ids from token text when the metadata omits them, and
    /// forces such tokens to be control tokens.
    fn detect_special_by_text(&mut self) {
        self.ids.eot = self.fill(self.ids.eot, EOT_TEXTS);
        self.ids.eom = self.fill(self.ids.eom, &["<|eom_id|>"]);
        self.ids.fim_pad = self.fill(self.ids.fim_pad, FIM_PAD_TEXTS);
        self.ids.fim_rep = self.fill(self.ids.fim_rep, FIM_REP_TEXTS);
        self.ids.fim_sep = self.fill(self.ids.fim_sep, FIM_SEP_TEXTS);
    }

    fn fill(&mut self, slot: Option<u32>, texts: &[&str]) -> Option<u32> {
        if slot.is_some() {
            return slot;
        }
        let found = self.find_text(texts);
        if let Some(id) = found {
            self.mark_control(id);
        }
        found
    }

    fn build_eog(&mut self) {
        let mut eog: HashSet<u32> = [self.ids.fim_pad, self.ids.fim_rep, self.ids.fim_sep]
            .into_iter()
            .flatten()
            .collect();
        for text in EOG_TEXTS {
            if let Some(&id) = self.token_to_id.get(*text) {
                eog.insert(id);
                self.mark_control(id);
            }
        }
        // gpt-oss: these structural tokens are always rendered.
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = self.token_to_id.get(text) {
                self.attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend(
            [self.ids.eos, self.ids.eot, self.ids.eom]
                .into_iter()
                .flatten(),
        );

        let has = |eog: &HashSet<u32>, t: &str| {
            self.token_to_id.get(t).is_some_and(|id| eog.contains(id))
        };
        // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation.
        let end_is_not_eog = (has(&eog, "<|return|>") && has(&eog, "<|call|>")
            || has(&eog, "<|calls|>") && has(&eog, "<|flush|>"))
            && has(&eog, "<|end|>");
        // gemma4 / plamo: "</s>" is an ordinary token there.
        let s_is_normal =
            (has(&eog, "<|tool_response>") || has(&eog, "<|plamo:eos|>")) && has(&eog, "</s>");
        if end_is_not_eog {
            if let Some(&id) = self.token_to_id.get("<|end|>") {
                eog.remove(&id);
                self.attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        if s_is_normal {
            if let Some(&id) = self.token_to_id.get("</s>") {
                eog.remove(&id);
                self.attrs[id as usize] = attr::NORMAL;
            }
        }
        self.eog = eog;
    }

    fn build_special_cache(&mut self) {
        let mask = attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN;
        let mut cache: Vec<u32> = (0..self.tokens.len() as u32)
            .filter(|&id| self.attrs[id as usize] & mask != 0)
            .collect();
        cache.sort_by_key(|&id| std::cmp::Reverse(self.tokens[id as usize].len()));
        self.special_cache = cache;
    }

    /// Per-model attributes llama.cpp sets by name (only Phi-3's rstrip matters for chat).
    fn apply_model_attrs(&mut self, name: Option<&str>) {
        let name = name.unwrap_or("").to_lowercase();
        if name.contains("phi-3") || name.contains("phi3") {
            for &id in &self.special_cache {
                self.attrs[id as usize] |= attr::RSTRIP;
            }
            if let Some(&id) = self.token_to_id.get("</s>") {
                self.attrs[id as usize] |= attr::RSTRIP;
            }
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                if let Some(&id) = self.token_to_id.get(t) {
                    self.attrs[id as usize] &= !attr::RSTRIP;
                }
            }
        }
    }

    pub fn attr(&self, id: u32) -> u32 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }
}
