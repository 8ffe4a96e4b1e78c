//! [`Tokenizer`]: text ↔ token ids with llama.cpp's semantics.

use crate::detok;
use crate::partition::{partition, Fragment};
use crate::vocab::{attr, Kind, Vocab};
use crate::wpm::Wpm;
use crate::{bpe, spm, TextError, VocabSpec};

/// The algorithm that turns a raw-text fragment into ids.
enum Model {
    /// A `tokenizers` pipeline (byte-level BPE, SentencePiece as BPE).
    Hf(Box<tokenizers::Tokenizer>),
    /// llama.cpp's WordPiece.
    Wpm(Wpm),
}

/// A model's tokenizer, built from its GGUF metadata.
///
/// Encoding splits special-token text out first (llama.cpp's rules), then runs the remaining
/// text through a `tokenizers` pipeline with no added tokens (or, for WordPiece, through
/// llama.cpp's longest match). Decoding uses a per-token piece table, so it works on arbitrary
/// (even partial-character) token sequences.
pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    pieces: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("pre", &self.vocab.pre.kind)
            .field("vocab_size", &self.vocab.tokens.len())
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Reads `tokenizer.ggml.*` from a GGUF file and builds the tokenizer.
    pub fn from_gguf(g: &owl_gguf::GgufFile) -> Result<Tokenizer, TextError> {
        Self::from_spec(VocabSpec::from_gguf(g)?)
    }

    /// Builds the tokenizer from plain metadata. An unknown `pre` falls back to llama.cpp's
    /// default regexes (llama.cpp itself refuses such files); see [`Self::pre_tokenizer_known`].
    pub fn from_spec(spec: VocabSpec) -> Result<Tokenizer, TextError> {
        let vocab = Vocab::build(&spec)?;
        let model = match vocab.kind {
            Kind::Bpe => Model::Hf(Box::new(bpe::build(&vocab, &spec.merges)?)),
            Kind::Spm => Model::Hf(Box::new(spm::build(&vocab, &spec.scores)?)),
            Kind::Wpm => Model::Wpm(Wpm::new(&vocab, vocab.normalizer)),
        };
        let pieces = detok::piece_table(&vocab);
        Ok(Tokenizer {
            vocab,
            model,
            pieces,
        })
    }

    /// Tokenizes `text`.
    ///
    /// * `add_special`: prepend BOS / append EOS when the model's `add_bos` / `add_eos` say so.
    ///   WordPiece (`bert`) vocabularies always get `[CLS]` (BOS) first and `[SEP]` last, as
    ///   llama.cpp does whatever the flags say.
    /// * `parse_special`: text of control tokens (e.g. `<|im_start|>`) becomes that token;
    ///   otherwise it is tokenized as plain text. As in llama.cpp (and HF), user-defined
    ///   tokens are always matched, whatever this flag says.
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TextError> {
        let v = &self.vocab;
        let mut out = Vec::new();
        if let Model::Wpm(wpm) = &self.model {
            if add_special {
                out.push(
                    v.ids
                        .bos
                        .ok_or(TextError::MissingSpecialToken("BOS ([CLS])"))?,
                );
            }
            for frag in partition(v, text, parse_special) {
                match frag {
                    Fragment::Token(id) => out.push(id),
                    Fragment::Text(t) => wpm.tokenize(v, t, &mut out)?,
                }
            }
            if add_special {
                out.push(v.ids.sep.ok_or(TextError::MissingSpecialToken("SEP"))?);
            }
            return Ok(out);
        }
        if add_special && v.add_bos {
            out.push(v.ids.bos.ok_or(TextError::MissingSpecialToken("BOS"))?);
        }
        // SentencePiece: a fragment at the start or right after a special token gets a space.
        let mut prev_special = true;
        for frag in partition(v, text, parse_special) {
            match frag {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) if v.kind == Kind::Spm => {
                    let mut s = String::with_capacity(t.len() + 3);
                    if v.add_space_prefix && prev_special {
                        s.push(' ');
                    }
                    s.push_str(t);
                    self.encode_plain(&s.replace(' ', "▁"), &mut out)?;
                    prev_special = false;
                }
                Fragment::Text(t) => self.encode_plain(t, &mut out)?,
            }
        }
        if add_special && v.add_eos {
            out.push(v.ids.eos.ok_or(TextError::MissingSpecialToken("EOS"))?);
        }
        Ok(out)
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) -> Result<(), TextError> {
        match &self.model {
            Model::Hf(model) => {
                let enc = model.encode(text, false)?;
                out.extend_from_slice(enc.get_ids());
                Ok(())
            }
            Model::Wpm(wpm) => wpm.tokenize(&self.vocab, text, out),
        }
    }

    /// The raw bytes of one token, as llama.cpp's `token_to_piece(.., special)`: control and
    /// unknown tokens are empty unless `render_special`. Unknown ids give nothing.
    pub fn token_to_piece(&self, id: u32, render_special: bool) -> Vec<u8> {
        self.piece(id, render_special).to_vec()
    }

    pub(crate) fn piece(&self, id: u32, render_special: bool) -> &[u8] {
        let a = self.vocab.attr(id);
        if !render_special && a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return &[];
        }
        self.pieces.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Text of a token sequence as llama.cpp's `common_detokenize` shows it: pieces
    /// concatenated, the SentencePiece leading space dropped, llama.cpp's space clean-up
    /// applied for vocabularies that use it, invalid UTF-8 replaced.
    pub fn decode(&self, ids: &[u32], render_special: bool) -> String {
        self.detokenize(ids, false, render_special)
    }

    /// llama.cpp's `llama_detokenize`: like [`Self::decode`], and with `remove_special` a
    /// leading BOS / trailing EOS (when the model adds them) are dropped.
    pub fn detokenize(
        &self,
        mut ids: &[u32],
        remove_special: bool,
        render_special: bool,
    ) -> String {
        let v = &self.vocab;
        let mut remove_space = v.add_space_prefix;
        if remove_special && v.add_bos {
            if let (Some(&first), Some(bos)) = (ids.first(), v.ids.bos) {
                if first == bos {
                    remove_space = false;
                    ids = &ids[1..];
                }
            }
        }
        if remove_special && v.add_eos {
            if let (Some(&last), Some(eos)) = (ids.last(), v.ids.eos) {
                if last == eos {
                    ids = &ids[..ids.len() - 1];
                }
            }
        }
        let mut bytes = Vec::new();
        for &id in ids {
            let mut p = self.piece(id, render_special);
            if remove_space {
                p = p.strip_prefix(b" ").unwrap_or(p);
                remove_space = false;
            }
            bytes.extend_from_slice(p);
        }
        if v.clean_spaces {
            bytes = detok::clean_spaces(&bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Number of tokens (the logits width).
    pub fn vocab_size(&self) -> usize {
        self.vocab.tokens.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.vocab.ids.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.vocab.ids.eos
    }

    /// End-of-turn token (from metadata, or guessed from its text as llama.cpp does).
    pub fn eot(&self) -> Option<u32> {
        self.vocab.ids.eot
    }

    /// Padding token, if the model names one.
    pub fn pad(&self) -> Option<u32> {
        self.vocab.ids.pad
    }

    /// Whether generation should stop at `id` (llama.cpp's EOG set: EOS, EOT, EOM, FIM
    /// pad/repo/sep, and tokens such as `<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.contains(&id)
    }

    /// All end-of-generation ids, ascending.
    pub fn eog_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.vocab.eog.iter().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The token's vocabulary text (byte-level or `▁`-escaped, as stored in the GGUF).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.tokens.get(id as usize).map(String::as_str)
    }

    /// Id of the token whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.token_to_id.get(text).copied()
    }

    /// Control or unknown token: hidden unless rendered as special, matched in text only
    /// with `parse_special`.
    pub fn is_control(&self, id: u32) -> bool {
        self.vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0
    }

    /// A user-defined (added) token: matched in any text, rendered always.
    pub fn is_user_defined(&self, id: u32) -> bool {
        self.vocab.attr(id) & attr::USER_DEFINED != 0
    }

    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }

    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }

    /// `true` for SentencePiece (`llama`) vocabularies, `false` for byte-level BPE and WordPiece.
    pub fn is_sentencepiece(&self) -> bool {
        self.vocab.kind == Kind::Spm
    }

    /// `true` for WordPiece (`bert`) vocabularies, those of BERT-style embedding models.
    pub fn is_wordpiece(&self) -> bool {
        self.vocab.kind == Kind::Wpm
    }

    /// Separator token (`[SEP]`), which WordPiece vocabularies append to every sequence.
    pub fn sep(&self) -> Option<u32> {
        self.vocab.ids.sep
    }

    /// The llama.cpp pre-tokenizer type in use (`"default"` for SentencePiece vocabularies).
    pub fn pre_tokenizer(&self) -> &str {
        self.vocab.pre.kind
    }

    /// `false` when `tokenizer.ggml.pre` was not recognised and the default regexes are used
    /// instead (tokenization may then differ from the model's own).
    pub fn pre_tokenizer_known(&self) -> bool {
        self.vocab.pre_known
    }
}
