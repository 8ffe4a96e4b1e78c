//! Text in and out of a GGUF model: tokenizer, streaming detokenizer, chat templates.
//!
//! Why it is built this way:
//!
//! * **llama.cpp is the reference.** A GGUF file only describes its tokenizer loosely
//!   (`tokenizer.ggml.model`, `.pre`, tokens, types, merges or scores); the exact behaviour —
//!   pre-tokenizer regexes per `pre` name, which tokens are special, BOS/EOS defaults, the
//!   end-of-generation set, how pieces render — lives in llama.cpp's `llama-vocab.cpp`. We
//!   reproduce those rules and test against llama.cpp's own `ggml-vocab-*.gguf` `.inp/.out`
//!   pairs, so prompts tokenize to the ids the model was evaluated with.
//! * **The heavy lifting is the `tokenizers` crate.** Byte-level BPE is its `Split` +
//!   `ByteLevel` + `BPE` pipeline; SentencePiece vocabularies become a `BPE` with merges
//!   derived from the scores and byte fallback (the same construction HF uses to convert
//!   them). We do not run our own merge loops for those. WordPiece (`bert`, embedding
//!   models) is the exception: llama.cpp's normalisation differs from HF's `BertNormalizer`
//!   on typed text, so `wpm.rs` follows llama.cpp's greedy longest match with its Unicode
//!   tables.
//! * **Special tokens are split out by us, not by `tokenizers`.** llama.cpp matches control
//!   tokens only when asked to (`parse_special`), user-defined tokens always, longest first,
//!   with lstrip/rstrip attributes. Doing that partition ourselves keeps one `tokenizers`
//!   pipeline with no added tokens and makes `parse_special = false` honest: chat text that
//!   happens to contain `<|im_start|>` cannot inject a control token.
//! * **Everything is built from a plain [`VocabSpec`].** Only `spec.rs` knows GGUF key names,
//!   so tests and tools can build a tokenizer without a model file.
//! * **Decoding is bytes first.** A token may hold part of a UTF-8 character; pieces are kept
//!   as bytes and [`StreamDecoder`] only releases whole characters.
//! * **Chat templates run on minijinja** configured like HF's jinja2 environment
//!   (trim/lstrip blocks, loop controls, `raise_exception`, `strftime_now`, Python-style
//!   `tojson` and string methods), checked against Python jinja2 output for real templates.
//! * **Tool calling is per family** ([`tools`]): each model family's markup is detected from
//!   its template, rendered by the template itself, parsed from the streaming reply and, when
//!   asked, enforced by an llguidance grammar.

mod bpe;
mod bytelevel;
mod detok;
mod error;
pub mod harmony;
mod partition;
mod pretokenize;
mod prompt;
mod pyjson;
pub mod reasoning;
mod spec;
mod spm;
mod stream;
pub mod strftime;
mod template;
mod template_calls;
mod tokenizer;
pub mod tools;
mod vocab;
mod wpm;
mod wpm_unicode;

pub use error::TextError;
pub use prompt::{ChatPrompt, ChatPromptError, TemplateVars};
pub use reasoning::{ReasoningFormat, ReplySplitter, ThinkSplitter};
pub use spec::VocabSpec;
pub use stream::StreamDecoder;
pub use template::{ChatMessage, ChatTemplate};
pub use tokenizer::Tokenizer;
