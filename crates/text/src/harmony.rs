//! gpt-oss's "harmony" replies: thinking and answer in channels.
//!
//! A gpt-oss reply is a sequence of messages, each `[<|start|>ROLE]<|channel|>NAME<|message|>
//! BODY` ended by `<|end|>` (more follows), `<|return|>` or `<|call|>` (the reply is over).
//! The chat template's generation prompt already opened the first message with
//! `<|start|>assistant`. Bodies of the `analysis` channel are the model's thinking (reasoning),
//! everything else (`final`, tool-call `commentary`) is the answer. The splitter reads the reply
//! text with special tokens rendered, as it streams, and holds back a possible partial marker
//! at a chunk boundary, so neither a marker nor half of one ever reaches a client.
//!
//! Tool calls are messages with a recipient (`to=functions.NAME` in the header). By default
//! their bodies are content like any other. In tool mode ([`HarmonySplitter::keep_tool_calls`])
//! each is passed on as `<|start|>assistant to=RECIPIENT<|message|>BODY<|call|>`, the one form
//! the tool-call parser (`tools/harmony.rs`) reads, so the recipient is not lost.

/// Text that marks a harmony chat template.
pub const CHANNEL: &str = "<|channel|>";
const MESSAGE: &str = "<|message|>";
const START: &str = "<|start|>";
const CALL: &str = "<|call|>";
/// Markers that end a message body.
const ENDS: [&str; 3] = ["<|end|>", "<|return|>", CALL];

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Between messages: a header (role, channel, constraints) is being read.
    Header,
    /// Inside a message body of the named channel.
    Body(String),
    /// Inside the body of a message addressed to a recipient (tool mode only).
    Call,
}

/// Streaming splitter of harmony reply text into (reasoning, content).
#[derive(Clone, Debug)]
pub struct HarmonySplitter {
    state: State,
    held: String,
    /// Header text read so far (between `<|start|>`/message end and `<|message|>`).
    header: String,
    /// Tool mode: addressed messages go to content with their recipient.
    tool_calls: bool,
}

impl Default for HarmonySplitter {
    fn default() -> Self {
        HarmonySplitter::new()
    }
}

impl HarmonySplitter {
    /// A splitter for a reply whose first message header was opened by the prompt.
    pub fn new() -> HarmonySplitter {
        HarmonySplitter {
            state: State::Header,
            held: String::new(),
            header: String::new(),
            tool_calls: false,
        }
    }

    /// Tool mode: a message with a recipient (`to=functions.NAME`) reaches content as
    /// `<|start|>assistant to=functions.NAME<|message|>BODY<|call|>`.
    pub fn keep_tool_calls(&mut self) {
        self.tool_calls = true;
    }

    /// Adds reply text; returns the reasoning and the content it releases.
    pub fn push(&mut self, text: &str) -> (String, String) {
        self.held.push_str(text);
        let (mut reasoning, mut content) = (String::new(), String::new());
        loop {
            match &self.state {
                State::Header => match self.held.find(MESSAGE) {
                    Some(at) => {
                        self.header.push_str(&self.held[..at]);
                        self.held.drain(..at + MESSAGE.len());
                        let channel = channel_of(&self.header);
                        let recipient = recipient_of(&self.header);
                        self.header.clear();
                        self.state = match recipient {
                            Some(to) if self.tool_calls => {
                                content.push_str(&format!("{START}assistant to={to}{MESSAGE}"));
                                State::Call
                            }
                            _ => State::Body(channel),
                        };
                    }
                    None => {
                        // A model that skips the header entirely writes plain text: once the
                        // held text cannot be a header, release it as the answer.
                        if self.header.is_empty() && !could_be_header(&self.held) {
                            self.state = State::Body("final".into());
                            continue;
                        }
                        let keep = partial_marker(&self.held);
                        let cut = self.held.len() - keep;
                        self.header.push_str(&self.held[..cut]);
                        self.held.drain(..cut);
                        break;
                    }
                },
                State::Call => {
                    let end = ENDS
                        .iter()
                        .chain([START].iter())
                        .filter_map(|m| self.held.find(m).map(|at| (at, m.len())))
                        .min();
                    match end {
                        Some((at, len)) => {
                            content.push_str(&self.held[..at]);
                            content.push_str(CALL);
                            self.held.drain(..at + len);
                            self.state = State::Header;
                        }
                        None => {
                            let keep = partial_marker(&self.held);
                            let cut = self.held.len() - keep;
                            content.push_str(&self.held[..cut]);
                            self.held.drain(..cut);
                            break;
                        }
                    }
                }
                State::Body(channel) => {
                    let end = ENDS
                        .iter()
                        .chain([START].iter())
                        .filter_map(|m| self.held.find(m).map(|at| (at, m.len())))
                        .min();
                    let thinking = channel == "analysis";
                    let out = if thinking {
                        &mut reasoning
                    } else {
                        &mut content
                    };
                    match end {
                        Some((at, len)) => {
                            // The marker ends the body (`<|start|>` also begins the next
                            // header, whose role is not needed).
                            out.push_str(&self.held[..at]);
                            self.held.drain(..at + len);
                            self.state = State::Header;
                        }
                        None => {
                            let keep = partial_marker(&self.held);
                            let cut = self.held.len() - keep;
                            out.push_str(&self.held[..cut]);
                            self.held.drain(..cut);
                            break;
                        }
                    }
                }
            }
        }
        (reasoning, content)
    }

    /// Whatever is still held (the reply ended).
    pub fn finish(&mut self) -> (String, String) {
        let held = std::mem::take(&mut self.held);
        match &self.state {
            State::Body(c) if c == "analysis" => (held, String::new()),
            State::Body(_) | State::Call => (String::new(), held),
            // An unfinished header is not text anyone wrote for the user.
            State::Header => (String::new(), String::new()),
        }
    }
}

/// The channel named in a header (`assistant<|channel|>final <|constrain|>json` → `final`);
/// `final` when there is none.
fn channel_of(header: &str) -> String {
    match header.rfind(CHANNEL) {
        Some(at) => header[at + CHANNEL.len()..]
            .split(|c: char| c.is_whitespace() || c == '<')
            .next()
            .unwrap_or("")
            .to_string(),
        None => "final".to_string(),
    }
}

/// The recipient named in a header (`… to=functions.get_weather <|constrain|>json` →
/// `functions.get_weather`), if any.
fn recipient_of(header: &str) -> Option<String> {
    let at = header.find("to=")?;
    let name: String = header[at + 3..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '<')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Whether `s` may still be the start of a header (it begins with a marker or a role name
/// followed by one).
fn could_be_header(s: &str) -> bool {
    let t = s.trim_start();
    t.is_empty()
        || t.starts_with("<|")
        || "<|".starts_with(t)
        || t.starts_with("assistant")
        || "assistant".starts_with(t)
}

/// Length of a suffix of `s` that may be the start of a `<|…|>` marker: from the last `<`
/// that has no `>` after it (markers are short, so at most 16 bytes are held).
fn partial_marker(s: &str) -> usize {
    match s.rfind('<') {
        Some(at) if !s[at..].contains('>') && s.len() - at <= 16 => s.len() - at,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str]) -> (String, String) {
        let mut s = HarmonySplitter::new();
        let (mut r, mut c) = (String::new(), String::new());
        for ch in chunks {
            let (a, b) = s.push(ch);
            r += &a;
            c += &b;
        }
        let (a, b) = s.finish();
        (r + &a, c + &b)
    }

    const REPLY: &str = "<|channel|>analysis<|message|>User asks 2+2. Easy.<|end|>\
        <|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>";

    #[test]
    fn analysis_is_reasoning_and_final_is_content() {
        assert_eq!(
            split(&[REPLY]),
            ("User asks 2+2. Easy.".into(), "2 + 2 = 4.".into())
        );
    }

    #[test]
    fn any_chunking_gives_the_same_split_and_no_marker_leaks() {
        let whole = split(&[REPLY]);
        let chars: Vec<char> = REPLY.chars().collect();
        for size in [1, 2, 3, 5, 7, 11] {
            let chunks: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
            let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
            // Streamed pieces never contain a marker.
            let mut s = HarmonySplitter::new();
            for ch in &refs {
                let (a, b) = s.push(ch);
                assert!(!a.contains("<|") && !b.contains("<|"), "{a:?} {b:?}");
            }
            assert_eq!(split(&refs), whole, "chunk size {size}");
        }
    }

    #[test]
    fn tool_call_commentary_and_constraints_are_content() {
        let reply = "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant\
            <|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>\
            {\"city\":\"Paris\"}<|call|>";
        assert_eq!(
            split(&[reply]),
            ("Need weather.".into(), "{\"city\":\"Paris\"}".into())
        );
    }

    #[test]
    fn tool_mode_keeps_the_recipient() {
        let reply = "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant\
            <|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>\
            {\"city\":\"Paris\"}<|call|>";
        let mut s = HarmonySplitter::new();
        s.keep_tool_calls();
        let (mut r, mut c) = s.push(reply);
        let (a, b) = s.finish();
        r += &a;
        c += &b;
        assert_eq!(r, "Need weather.");
        assert_eq!(
            c,
            "<|start|>assistant to=functions.get_weather<|message|>{\"city\":\"Paris\"}<|call|>"
        );
    }

    #[test]
    fn unfinished_thinking_and_plain_text_replies() {
        assert_eq!(
            split(&["<|channel|>analysis<|message|>still thinking"]),
            ("still thinking".into(), String::new())
        );
        // A model that ignores the format: its text is the answer.
        assert_eq!(
            split(&["Hello", " there"]),
            (String::new(), "Hello there".into())
        );
        // A less-than sign in an answer is not held forever.
        assert_eq!(
            split(&["<|channel|>final<|message|>a < b and c > d"]),
            (String::new(), "a < b and c > d".into())
        );
    }
}
