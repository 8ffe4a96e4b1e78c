//! The streaming reply parser shared by every family.
//!
//! Reply content is text with tool-call *regions* in it. A region starts at one of the
//! family's opening markers (or, for families whose calls are bare JSON, at the very start of
//! the reply). Outside regions text is released as it comes, except a suffix that may be the
//! start of a marker and trailing whitespace (dropped if a call follows, so the content does
//! not end in the blank line before a call). Inside a region the family's scanner re-reads the
//! region's text each time it grows and reports the calls seen so far; the parser releases
//! what is new since the last report: a `CallBegin` for a new call, then the arguments' new
//! suffix. Scanners report arguments that only ever grow, so the pieces concatenate to the
//! final arguments whatever the chunking.

use super::id::new_call_id;
use super::{ReplyPiece, ToolCall, ToolFormat, ToolSpec};

/// A call as a scanner sees it so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partial {
    pub name: String,
    /// Arguments JSON text so far; later reports only append to it.
    pub args: String,
    pub done: bool,
}

/// What a family scanner made of a region's text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub calls: Vec<Partial>,
    /// The region closed after this many bytes; what follows is text again.
    pub end: Option<usize>,
    /// The region is not a call after all (only reported before any call was seen).
    pub bad: bool,
    /// Content the region stands for (Generic's `{"response": …}`), released when it closes.
    pub text: Option<String>,
}

/// Whether the start of a reply opens a region of a family whose calls are bare JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOpen {
    No,
    /// Too little text to tell.
    Maybe,
    Yes,
}

#[derive(Clone, Debug)]
enum Mode {
    Text,
    /// Inside a region (its text is `held`); `emitted[i]` is how many argument bytes of the
    /// region's call `i` were released, `base` the global index of its first call.
    Region {
        base: usize,
        emitted: Vec<usize>,
    },
}

/// Streaming parser of a reply's content into text and calls (see the module docs).
#[derive(Clone, Debug)]
pub struct ToolCallParser {
    format: ToolFormat,
    tools: Vec<ToolSpec>,
    mode: Mode,
    held: String,
    /// Non-whitespace content was released (bare-JSON calls can no longer start).
    started: bool,
    /// A region just closed: leading whitespace of the next text is dropped.
    after_region: bool,
    /// Ids and names of calls begun, by index.
    begun: Vec<(String, String)>,
    /// Calls completed, in order.
    done: Vec<ToolCall>,
}

impl ToolCallParser {
    pub(crate) fn new(format: ToolFormat, tools: &[ToolSpec]) -> ToolCallParser {
        ToolCallParser {
            format,
            tools: tools.to_vec(),
            mode: Mode::Text,
            held: String::new(),
            started: false,
            after_region: false,
            begun: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Feeds reply text; returns what can be released. Holds back a possible partial opening
    /// marker at the end; never leaks markup into `Text`.
    pub fn push(&mut self, text: &str) -> Vec<ReplyPiece> {
        self.held.push_str(text);
        let mut out = Vec::new();
        self.run(false, &mut out);
        out
    }

    /// End of reply: flushes held text; a call left unterminated is closed if its arguments
    /// parse as JSON, else its text is released as `Text`.
    pub fn finish(&mut self) -> Vec<ReplyPiece> {
        let mut out = Vec::new();
        self.run(true, &mut out);
        if let Mode::Region { base, emitted } = std::mem::replace(&mut self.mode, Mode::Text) {
            let scan = self.format.scan(&self.tools, &self.held, true);
            let mut closed_any = false;
            for (i, call) in scan.calls.iter().enumerate().take(emitted.len()) {
                if call.done {
                    continue; // recorded by `run`
                }
                if serde_json::from_str::<serde_json::Value>(&call.args).is_ok() {
                    self.record(base + i, &call.args);
                    closed_any = true;
                }
            }
            let held = std::mem::take(&mut self.held);
            if emitted.is_empty() && !closed_any && !held.trim().is_empty() {
                out.push(ReplyPiece::Text(held));
            }
        } else {
            let held = std::mem::take(&mut self.held);
            self.release_text(&held, &mut out);
        }
        merge_text(out)
    }

    /// Calls completed so far (assembled), for non-streaming replies and finish_reason
    /// `tool_calls`.
    pub fn calls(&self) -> Vec<ToolCall> {
        self.done.clone()
    }

    fn record(&mut self, index: usize, args: &str) {
        if let Some((id, name)) = self.begun.get(index) {
            if !self.done.iter().any(|c| c.id == *id) {
                self.done.push(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: args.to_string(),
                });
            }
        }
    }

    fn run(&mut self, eof: bool, out: &mut Vec<ReplyPiece>) {
        loop {
            let progressed = match self.mode {
                Mode::Text => self.text_step(eof, out),
                Mode::Region { .. } => self.region_step(eof, out),
            };
            if !progressed {
                break;
            }
        }
    }

    fn release_text(&mut self, text: &str, out: &mut Vec<ReplyPiece>) {
        let text = if self.after_region {
            text.trim_start()
        } else {
            text
        };
        if text.is_empty() {
            return;
        }
        self.after_region = false;
        if !text.trim().is_empty() {
            self.started = true;
        }
        match out.last_mut() {
            Some(ReplyPiece::Text(t)) => t.push_str(text),
            _ => out.push(ReplyPiece::Text(text.to_string())),
        }
    }

    /// Text mode: finds the next region or releases safe text. Returns whether the mode
    /// changed (so the loop runs again).
    fn text_step(&mut self, eof: bool, out: &mut Vec<ReplyPiece>) -> bool {
        if !self.started {
            let t = self.held.trim_start();
            if t.is_empty() && !eof {
                return false;
            }
            match self.format.start_open(t) {
                StartOpen::Yes => {
                    self.held = t.to_string();
                    self.enter_region();
                    return true;
                }
                StartOpen::Maybe if !eof => return false,
                _ => {}
            }
        }
        let openers = self.format.openers();
        let first = openers.iter().filter_map(|m| self.held.find(m)).min();
        if let Some(at) = first {
            let before = self.held[..at].trim_end().to_string();
            self.release_text(&before, out);
            self.held.drain(..at);
            self.enter_region();
            return true;
        }
        if eof {
            return false; // `finish` releases the rest
        }
        let keep = super::scan::partial_marker(&self.held, openers);
        let body = &self.held[..self.held.len() - keep];
        let cut = body.trim_end().len();
        // Nothing to release while only whitespace (and a partial marker) is held.
        if cut == 0 {
            if self.after_region {
                let n = body.len();
                self.held.drain(..n);
            }
            return false;
        }
        let text = self.held[..cut].to_string();
        self.held.drain(..cut);
        if !text.trim().is_empty() && !self.started {
            // Bare-JSON families: once real text is out, no call can start the reply.
            self.started = true;
        }
        self.release_text(&text, out);
        false
    }

    fn enter_region(&mut self) {
        self.mode = Mode::Region {
            base: self.begun.len(),
            emitted: Vec::new(),
        };
    }

    fn region_step(&mut self, eof: bool, out: &mut Vec<ReplyPiece>) -> bool {
        let scan = self.format.scan(&self.tools, &self.held, eof);
        let Mode::Region { base, emitted } = &mut self.mode else {
            return false;
        };
        let base = *base;
        if scan.bad && emitted.is_empty() {
            // Not a call: the marker and what follows are text after all. Release up to the
            // end of the marker so it is not found again.
            let n = self
                .format
                .openers()
                .iter()
                .filter(|m| self.held.starts_with(*m))
                .map(|m| m.len())
                .max()
                .unwrap_or(self.held.len());
            let text: String = self.held.drain(..n).collect();
            self.mode = Mode::Text;
            self.started = true;
            match out.last_mut() {
                Some(ReplyPiece::Text(t)) => t.push_str(&text),
                _ => out.push(ReplyPiece::Text(text)),
            }
            return true;
        }
        let mut finished = Vec::new();
        for (i, call) in scan.calls.iter().enumerate() {
            let index = base + i;
            if i == emitted.len() {
                let id = new_call_id();
                out.push(ReplyPiece::CallBegin {
                    index,
                    id: id.clone(),
                    name: call.name.clone(),
                });
                self.begun.push((id, call.name.clone()));
                emitted.push(0);
            }
            let sent = emitted[i];
            if call.args.len() > sent && call.args.is_char_boundary(sent) {
                out.push(ReplyPiece::CallArgs {
                    index,
                    text: call.args[sent..].to_string(),
                });
                emitted[i] = call.args.len();
            }
            if call.done {
                finished.push((index, call.args.clone()));
            }
        }
        for (index, args) in finished {
            self.record(index, &args);
        }
        match scan.end {
            Some(end) => {
                self.held.drain(..end.min(self.held.len()));
                self.mode = Mode::Text;
                self.started = true;
                if let Some(text) = scan.text {
                    self.after_region = false;
                    self.release_text(&text, out);
                }
                self.after_region = true;
                true
            }
            None => false,
        }
    }
}

/// Joins adjacent text pieces.
fn merge_text(pieces: Vec<ReplyPiece>) -> Vec<ReplyPiece> {
    let mut out: Vec<ReplyPiece> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match (out.last_mut(), p) {
            (Some(ReplyPiece::Text(a)), ReplyPiece::Text(b)) => a.push_str(&b),
            (_, p) => out.push(p),
        }
    }
    out
}
