//! [`StreamDecoder`]: turns generated tokens into text as they arrive.
//!
//! A byte-level or byte-fallback token can end in the middle of a UTF-8 character (emoji and
//! CJK often span two or three tokens), so bytes are buffered until they form whole
//! characters. Bytes that can never become valid UTF-8 are emitted as U+FFFD at once rather
//! than held back.

use crate::Tokenizer;

/// Incremental detokenizer; emits only complete characters.
#[derive(Clone, Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    render_special: bool,
}

impl StreamDecoder {
    /// A decoder that hides control tokens (llama.cpp's default when printing generations).
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that also renders control tokens such as `<|im_end|>`.
    pub fn with_special(render_special: bool) -> Self {
        StreamDecoder {
            pending: Vec::new(),
            render_special,
        }
    }

    /// Adds one token; returns the text it completed (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        self.pending
            .extend_from_slice(tok.piece(id, self.render_special));
        self.drain_complete()
    }

    /// Flushes whatever is buffered, replacing an unfinished character with U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }

    /// Whether bytes of an unfinished character are being held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn drain_complete(&mut self) -> String {
        let mut out = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let good = start + e.valid_up_to();
                    // The prefix was just validated; from_utf8_lossy does not copy-fail.
                    out.push_str(&String::from_utf8_lossy(&self.pending[start..good]));
                    match e.error_len() {
                        // Invalid bytes: they will never complete a character.
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            start = good + n;
                        }
                        // A truncated character at the end: wait for more bytes.
                        None => {
                            start = good;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }
}
