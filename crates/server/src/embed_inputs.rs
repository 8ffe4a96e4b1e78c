//! Inputs of the embedding and rerank endpoints turned into token ids, checked once for both.
//!
//! Text is tokenized as llama-server tokenizes embedding input (the model's special tokens
//! added, e.g. `[CLS] ... [SEP]` for BERT; special-token text parsed); token ids are taken as
//! given and checked against the vocabulary. An input longer than the model's positions is a
//! 400 that names the limit, unless the request asked for truncation: then it is cut to fit.

use std::sync::Arc;

use serde_json::Value;

use crate::error::ApiError;
use crate::pool::Lease;
use crate::routes::blocking;

/// One input before tokenization.
pub enum RawInput {
    Text(String),
    Ids(Vec<u32>),
}

/// OpenAI's `input`: a string, a list of strings, a list of token ids, or a list of such lists.
pub fn parse_input(v: Option<&Value>) -> Result<Vec<RawInput>, ApiError> {
    let bad = || {
        ApiError::bad_param(
            "input",
            "`input` must be a string, a list of strings, a list of token ids or a list of lists of token ids",
        )
    };
    let ids = |a: &[Value], field: &str| -> Result<Vec<u32>, ApiError> {
        a.iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        ApiError::bad_param(field, "token ids must be non-negative integers")
                    })
            })
            .collect()
    };
    match v {
        None | Some(Value::Null) => Err(ApiError::bad_param("input", "`input` is required")),
        Some(Value::String(s)) => Ok(vec![RawInput::Text(s.clone())]),
        Some(Value::Array(a)) if a.is_empty() => {
            Err(ApiError::bad_param("input", "`input` is an empty list"))
        }
        Some(Value::Array(a)) if a[0].is_number() => Ok(vec![RawInput::Ids(ids(a, "input")?)]),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(RawInput::Text(s.clone())),
                Value::Array(t) => Ok(RawInput::Ids(ids(t, &format!("input[{i}]"))?)),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// `truncate` as a boolean, or Cohere's `"NONE"` / `"END"` (`"START"` is refused: owl cuts
/// the end).
pub fn parse_truncate(v: Option<&Value>) -> Result<bool, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("none") => Ok(false),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("end") => Ok(true),
        Some(_) => Err(ApiError::bad_param(
            "truncate",
            "`truncate` must be true, false, \"NONE\" or \"END\"",
        )),
    }
}

/// Token ids of `text` with or without the model's special tokens, on a blocking thread.
pub async fn tokenize(
    model: &Lease,
    text: String,
    add_special: bool,
    field: String,
) -> Result<Vec<u32>, ApiError> {
    let tok = Arc::clone(&model.tokenizer);
    blocking(move || {
        tok.encode(&text, add_special, true)
            .map_err(|e| ApiError::bad_param(&field, format!("cannot tokenize: {e}")))
    })
    .await
}

/// Every input as token ids, each non-empty, inside the vocabulary and within the model's
/// positions (cut to them when `truncate`).
pub async fn to_ids(
    model: &Lease,
    inputs: Vec<RawInput>,
    truncate: bool,
) -> Result<Vec<Vec<u32>>, ApiError> {
    let n_vocab = model.engine.n_vocab();
    let mut out = Vec::with_capacity(inputs.len());
    let single = inputs.len() == 1;
    for (i, x) in inputs.into_iter().enumerate() {
        let field = if single {
            "input".to_string()
        } else {
            format!("input[{i}]")
        };
        let ids = match x {
            RawInput::Text(s) if s.is_empty() => {
                return Err(ApiError::bad_param(&field, "the input is empty"))
            }
            RawInput::Text(s) => tokenize(model, s, true, field.clone()).await?,
            RawInput::Ids(ids) => {
                if let Some(&t) = ids.iter().find(|&&t| t as usize >= n_vocab) {
                    return Err(ApiError::bad_param(
                        &field,
                        format!("token id {t} is outside the vocabulary ({n_vocab} tokens)"),
                    ));
                }
                ids
            }
        };
        out.push(fit(ids, model.n_ctx(), truncate, &field)?);
    }
    Ok(out)
}

/// `ids` if they fit in `n_ctx` positions; cut to them when `truncate`; else a 400 naming the
/// limit. Empty input is a 400 too.
pub fn fit(
    mut ids: Vec<u32>,
    n_ctx: usize,
    truncate: bool,
    field: &str,
) -> Result<Vec<u32>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad_param(field, "the input is empty"));
    }
    if ids.len() > n_ctx {
        if !truncate {
            return Err(ApiError::bad_param(
                field,
                format!(
                    "the input has {} tokens, more than the model's limit of {n_ctx}; shorten it or set `truncate` to true",
                    ids.len()
                ),
            )
            .with_code("context_length_exceeded"));
        }
        ids.truncate(n_ctx);
    }
    Ok(ids)
}

/// Runs the embedding of `inputs` on the model's engine.
pub async fn run(
    model: &Lease,
    inputs: Vec<Vec<u32>>,
    normalize: bool,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let n = inputs.len();
    let rx = model.engine.embed(inputs, normalize)?;
    let out = rx
        .await
        .map_err(|_| ApiError::server("the engine stopped before the embeddings were done"))?
        .map_err(|e| ApiError::server(format!("embedding failed: {e}")))?;
    if out.len() != n {
        return Err(ApiError::server(
            "the engine returned the wrong number of vectors",
        ));
    }
    Ok(out)
}
