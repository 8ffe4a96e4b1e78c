//! Separating a reasoning model's thinking from its answer.
//!
//! Qwen3 and DeepSeek-R1 think inside `<think>…</think>` at the start of their reply (the
//! template may already have opened the block in the prompt, as DeepSeek-R1's does). The
//! splitter takes the reply's text as it streams and sorts it into reasoning and content,
//! holding back a possible partial tag at a chunk boundary so a tag is never shown half.
//! Only a block at the very start of the reply counts; `<think>` later on is plain text.

/// The tag that opens a thinking block.
pub const THINK_OPEN: &str = "<think>";
/// The tag that closes it.
pub const THINK_CLOSE: &str = "</think>";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Nothing but whitespace seen yet: a `<think>` may still open.
    Start,
    Thinking,
    /// Right after `</think>`: leading whitespace of the answer is dropped.
    AfterThinking,
    Answer,
}

/// Streaming splitter of reply text into (reasoning, content).
#[derive(Clone, Debug)]
pub struct ThinkSplitter {
    mode: Mode,
    held: String,
}

/// How a chat template's model marks its thinking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasoningFormat {
    /// `<think>…</think>` at the start of the reply (Qwen3, DeepSeek-R1).
    Think,
    /// gpt-oss's harmony channels (`analysis` is thinking); the reply must be decoded with
    /// special tokens rendered, since the channel markers are special tokens.
    Harmony,
}

/// A reply splitter of either format.
#[derive(Clone, Debug)]
pub enum ReplySplitter {
    Think(ThinkSplitter),
    Harmony(crate::harmony::HarmonySplitter),
}

impl ReplySplitter {
    /// The splitter for `format`, given the rendered prompt the reply continues.
    pub fn new(format: ReasoningFormat, prompt: &str) -> ReplySplitter {
        match format {
            ReasoningFormat::Think => {
                ReplySplitter::Think(ThinkSplitter::new(prompt_opens_thinking(prompt)))
            }
            ReasoningFormat::Harmony => {
                ReplySplitter::Harmony(crate::harmony::HarmonySplitter::new())
            }
        }
    }

    /// Tool mode: gpt-oss's addressed (tool-call) messages reach content in the form the
    /// Harmony tool-call parser reads (see `harmony.rs`); `<think>` splitting is unaffected.
    pub fn keep_tool_calls(&mut self) {
        if let ReplySplitter::Harmony(s) = self {
            s.keep_tool_calls();
        }
    }

    /// Whether the reply text must include rendered special tokens.
    pub fn needs_special_tokens(&self) -> bool {
        matches!(self, ReplySplitter::Harmony(_))
    }

    /// Adds reply text; returns the reasoning and the content it releases.
    pub fn push(&mut self, text: &str) -> (String, String) {
        match self {
            ReplySplitter::Think(s) => s.push(text),
            ReplySplitter::Harmony(s) => s.push(text),
        }
    }

    /// Whatever is still held (the reply ended).
    pub fn finish(&mut self) -> (String, String) {
        match self {
            ReplySplitter::Think(s) => s.finish(),
            ReplySplitter::Harmony(s) => s.finish(),
        }
    }

    /// A whole reply at once: `push` then `finish`, as (reasoning, content).
    pub fn split_whole(&mut self, text: &str) -> (String, String) {
        let (mut reasoning, mut content) = self.push(text);
        let (r, c) = self.finish();
        reasoning.push_str(&r);
        content.push_str(&c);
        (reasoning, content)
    }
}

/// Whether a rendered prompt leaves the model inside an open thinking block.
pub fn prompt_opens_thinking(prompt: &str) -> bool {
    let p = prompt.trim_end();
    match p.rfind(THINK_OPEN) {
        Some(at) => !p[at..].contains(THINK_CLOSE),
        None => false,
    }
}

impl ThinkSplitter {
    /// A splitter for a reply whose prompt did (`true`) or did not open a thinking block.
    pub fn new(starts_thinking: bool) -> ThinkSplitter {
        ThinkSplitter {
            mode: if starts_thinking {
                Mode::Thinking
            } else {
                Mode::Start
            },
            held: String::new(),
        }
    }

    /// Adds reply text; returns the reasoning and the content it releases.
    pub fn push(&mut self, text: &str) -> (String, String) {
        self.held.push_str(text);
        let (mut reasoning, mut content) = (String::new(), String::new());
        loop {
            match self.mode {
                Mode::Start => {
                    let t = self.held.trim_start();
                    if let Some(rest) = t.strip_prefix(THINK_OPEN) {
                        self.held = rest.to_string();
                        self.mode = Mode::Thinking;
                    } else if t.is_empty() || THINK_OPEN.starts_with(t) {
                        break; // maybe the start of the tag
                    } else {
                        self.mode = Mode::Answer;
                    }
                }
                Mode::Thinking => {
                    if let Some(at) = self.held.find(THINK_CLOSE) {
                        reasoning.push_str(&self.held[..at]);
                        self.held.drain(..at + THINK_CLOSE.len());
                        self.mode = Mode::AfterThinking;
                    } else {
                        let keep = partial_suffix(&self.held, THINK_CLOSE);
                        let cut = self.held.len() - keep;
                        reasoning.push_str(&self.held[..cut]);
                        self.held.drain(..cut);
                        break;
                    }
                }
                Mode::AfterThinking => {
                    let t = self.held.trim_start();
                    if t.is_empty() {
                        self.held.clear();
                        break;
                    }
                    self.held = t.to_string();
                    self.mode = Mode::Answer;
                }
                Mode::Answer => {
                    content.push_str(&self.held);
                    self.held.clear();
                    break;
                }
            }
        }
        (reasoning, content)
    }

    /// Whatever is still held (the reply ended).
    pub fn finish(&mut self) -> (String, String) {
        let held = std::mem::take(&mut self.held);
        match self.mode {
            Mode::Thinking => (held, String::new()),
            Mode::AfterThinking => (String::new(), String::new()),
            Mode::Start | Mode::Answer => (String::new(), held),
        }
    }
}

/// Length of the longest proper suffix of `s` that begins `tag`, on a char boundary.
fn partial_suffix(s: &str, tag: &str) -> usize {
    let max = (tag.len() - 1).min(s.len());
    (1..=max)
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && tag.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(starts: bool, chunks: &[&str]) -> (String, String) {
        let mut s = ThinkSplitter::new(starts);
        let (mut r, mut c) = (String::new(), String::new());
        for ch in chunks {
            let (a, b) = s.push(ch);
            r += &a;
            c += &b;
        }
        let (a, b) = s.finish();
        (r + &a, c + &b)
    }

    #[test]
    fn a_block_at_the_start_is_reasoning() {
        let (r, c) = split(
            false,
            &[
                "<th",
                "ink>\nLet me ",
                "think.</th",
                "ink>\n\nThe answer is 4.",
            ],
        );
        assert_eq!(r, "\nLet me think.");
        assert_eq!(c, "The answer is 4.");
    }

    #[test]
    fn a_block_opened_by_the_prompt() {
        assert_eq!(
            split(true, &["hmm", "</think>ok"]),
            ("hmm".into(), "ok".into())
        );
        assert!(prompt_opens_thinking("<|Assistant|><think>\n"));
        assert!(!prompt_opens_thinking("<think>\n\n</think>\n\n"));
        assert!(!prompt_opens_thinking("<|im_start|>assistant\n"));
    }

    #[test]
    fn without_a_block_everything_is_content() {
        assert_eq!(
            split(false, &["Hello", " <think>x</think>"]),
            (String::new(), "Hello <think>x</think>".into())
        );
        assert_eq!(
            split(false, &["<", "b>bold"]),
            (String::new(), "<b>bold".into())
        );
    }

    #[test]
    fn an_unfinished_block_is_all_reasoning() {
        assert_eq!(
            split(false, &["<think>still going </thi"]),
            ("still going </thi".into(), String::new())
        );
    }

    #[test]
    fn partial_tags_are_held_on_char_boundaries() {
        assert_eq!(partial_suffix("é</th", THINK_CLOSE), 4);
        assert_eq!(partial_suffix("é", THINK_CLOSE), 0);
        let (r, c) = split(true, &["日本", "<", "/think>語"]);
        assert_eq!((r.as_str(), c.as_str()), ("日本", "語"));
    }
}
