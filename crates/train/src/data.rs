//! Training data: JSONL of `{"messages": [...]}` conversations, rendered with the model's own
//! chat template, with the loss on the assistant turns only.
//!
//! How the assistant tokens are found without knowing the template: for the `i`-th assistant
//! turn, the conversation up to it rendered *with* the generation prompt ends where the reply
//! starts, and rendered up to and including it (without the prompt) ends where the reply ends
//! (its end-of-turn token included, so the model learns to stop). Both renderings must be
//! prefixes of the whole conversation's rendering — true of every template that renders a turn
//! from the turns before it — and their token counts give the boundaries. Tokenizing the
//! prefixes, rather than segments, keeps SentencePiece's leading-space rule exact.

use std::path::Path;

use owl_text::{ChatMessage, ChatTemplate, Tokenizer};

use crate::model::Sequence;
use crate::TrainError;

#[derive(serde::Deserialize)]
struct Line {
    messages: Vec<ChatMessage>,
}

/// The conversations of a JSONL file (blank lines skipped); errors name the line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Vec<ChatMessage>>, TrainError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::Io(shown.clone(), e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| TrainError::Data {
            file: shown.clone(),
            line: i + 1,
            why,
        };
        let l: Line = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if !l.messages.iter().any(|m| m.role == "assistant") {
            return Err(bad(
                "the conversation has no assistant message to learn".into()
            ));
        }
        out.push(l.messages);
    }
    if out.is_empty() {
        return Err(TrainError::Data {
            file: shown,
            line: 0,
            why: "no conversations".into(),
        });
    }
    Ok(out)
}

/// How many leading tokens `a` and `b` share.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// One conversation as a training sequence of at most `max_len` tokens (assistant turns past
/// the limit are cut; `None` when no trained token is left).
pub fn encode(
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    messages: &[ChatMessage],
    max_len: usize,
) -> Result<Option<Sequence>, TrainError> {
    let render = |msgs: &[ChatMessage], gen: bool| {
        template
            .render(msgs, gen)
            .map_err(|e| TrainError::Template(e.to_string()))
    };
    let tok = |text: &str| {
        tokenizer
            .encode(text, true, true)
            .map_err(|e| TrainError::Template(e.to_string()))
    };
    let full = render(messages, false)?;
    let ids = tok(&full)?;
    let mut targets = vec![None; ids.len()];
    for (i, m) in messages.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let before = render(&messages[..i], true)?;
        let through = render(&messages[..=i], false)?;
        if !full.starts_with(&before) || !full.starts_with(&through) {
            return Err(TrainError::Template(
                "the chat template does not render a conversation turn by turn, so the \
                 assistant's tokens cannot be told apart"
                    .into(),
            ));
        }
        let start = common_prefix(&tok(&before)?, &ids);
        let end = common_prefix(&tok(&through)?, &ids).max(start);
        // Position j predicts token j + 1.
        for j in start.max(1)..end {
            targets[j - 1] = Some(ids[j]);
        }
    }
    let n = ids.len().min(max_len);
    let seq = Sequence {
        tokens: ids[..n].to_vec(),
        targets: targets[..n].to_vec(),
    };
    Ok((seq.n_targets() > 0).then_some(seq))
}
