//! The size of a turn's prompt without generating: what `count_tokens` answers.
//!
//! It must render exactly as [`crate::turn::start`] does, so it asks the turn's own
//! rendering; this file only runs it off the async workers.

use crate::error::ApiError;
use crate::routes::blocking;
use crate::state::AppState;
use crate::turn::Turn;

/// Prompt tokens of `turn`, rendered and tokenized as [`crate::turn::start`] would.
pub async fn prompt_tokens(state: &AppState, turn: Turn) -> Result<usize, ApiError> {
    let st = state.clone();
    blocking(move || {
        let m = st.model()?;
        let t = m.template.as_ref().ok_or_else(|| {
            ApiError::bad_request("this model has no chat template; use /v1/completions")
        })?;
        let p = owl_text::ChatPrompt::render(t, &m.tokenizer, &turn.messages, &turn.template_vars)
            .map_err(|e| ApiError::bad_param("messages", e.to_string()))?;
        Ok(p.ids.len())
    })
    .await
}
