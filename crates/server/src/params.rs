//! Checking the sampling fields of a request and turning them into engine settings.
//!
//! Defaults follow OpenAI: temperature 1, top_p 1, no top_k / min_p, no penalties. Penalties
//! look at the last 64 tokens (prompt included), as llama-server does. Every range check
//! names the field, so clients get a 400 they can act on.

use owl_sample::SamplingParams;

use crate::config::{MAX_STOP, MAX_STOP_LEN};
use crate::error::ApiError;
use crate::openai::{CommonFields, StopField};

/// History window of the penalties (llama-server's default `repeat_last_n`).
const PENALTY_WINDOW: usize = 64;

/// The checked sampling part of a request.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
    /// Stop at end-of-generation tokens (false with llama.cpp's `ignore_eos`).
    pub stop_at_eog: bool,
}

fn ranged(
    name: &str,
    v: Option<f64>,
    default: f64,
    ok: impl Fn(f64) -> bool,
    want: &str,
) -> Result<f32, ApiError> {
    let x = v.unwrap_or(default);
    if !x.is_finite() || !ok(x) {
        return Err(ApiError::bad_param(
            name,
            format!("`{name}` must be {want}, got {x}"),
        ));
    }
    Ok(x as f32)
}

/// Checks the shared fields; `n_vocab` bounds `logit_bias` ids.
pub fn settings(c: &CommonFields, n_vocab: usize) -> Result<Settings, ApiError> {
    if let Some(n) = c.n {
        if n != 1 {
            return Err(ApiError::bad_param(
                "n",
                format!("only n=1 is supported (one choice per request), got n={n}"),
            ));
        }
    }
    let temperature = ranged(
        "temperature",
        c.temperature,
        1.0,
        |x| (0.0..=2.0).contains(&x),
        "between 0 and 2",
    )?;
    let top_p = ranged("top_p", c.top_p, 1.0, |x| x > 0.0 && x <= 1.0, "in (0, 1]")?;
    let min_p = ranged(
        "min_p",
        c.min_p,
        0.0,
        |x| (0.0..=1.0).contains(&x),
        "between 0 and 1",
    )?;
    let presence_penalty = ranged(
        "presence_penalty",
        c.presence_penalty,
        0.0,
        |x| (-2.0..=2.0).contains(&x),
        "between -2 and 2",
    )?;
    let frequency_penalty = ranged(
        "frequency_penalty",
        c.frequency_penalty,
        0.0,
        |x| (-2.0..=2.0).contains(&x),
        "between -2 and 2",
    )?;
    let (rp_name, rp) = match (c.repetition_penalty, c.repeat_penalty) {
        (Some(v), _) => ("repetition_penalty", Some(v)),
        (None, v) => ("repeat_penalty", v),
    };
    let repeat_penalty = ranged(rp_name, rp, 1.0, |x| x > 0.0 && x <= 100.0, "in (0, 100]")?;
    // 0 and -1 mean off (llama.cpp's and vLLM's conventions); anything lower is a mistake.
    let top_k = match c.top_k {
        None => 0,
        Some(k) if k >= 0 => usize::try_from(k).unwrap_or(usize::MAX),
        Some(-1) => 0,
        Some(k) => {
            return Err(ApiError::bad_param(
                "top_k",
                format!("`top_k` must be a positive integer, or 0 or -1 for off, got {k}"),
            ))
        }
    };
    let seed = match &c.seed {
        None => None,
        // llama.cpp's convention: -1 asks for a random seed, not for seed 2^64 - 1.
        Some(n) if n.as_i64() == Some(-1) => None,
        Some(n) => Some(
            n.as_u64()
                .or_else(|| n.as_i64().map(|v| v as u64))
                .ok_or_else(|| ApiError::bad_param("seed", "`seed` must be an integer"))?,
        ),
    };
    let mut logit_bias = Vec::new();
    for (k, &v) in c.logit_bias.iter().flatten() {
        let id: u32 = k.trim().parse().map_err(|_| {
            ApiError::bad_param(
                "logit_bias",
                format!("`logit_bias` keys must be token ids, got {k:?}"),
            )
        })?;
        if id as usize >= n_vocab {
            return Err(ApiError::bad_param(
                "logit_bias",
                format!("`logit_bias` token id {id} is outside the vocabulary ({n_vocab} tokens)"),
            ));
        }
        if !v.is_finite() || !(-100.0..=100.0).contains(&v) {
            return Err(ApiError::bad_param(
                "logit_bias",
                format!("`logit_bias` values must be between -100 and 100, got {v} for token {id}"),
            ));
        }
        logit_bias.push((id, v as f32));
    }
    let stop = match &c.stop {
        None => Vec::new(),
        Some(StopField::One(s)) => vec![s.clone()],
        Some(StopField::Many(v)) => v.clone(),
    };
    if stop.len() > MAX_STOP {
        return Err(ApiError::bad_param(
            "stop",
            format!(
                "at most {MAX_STOP} stop strings are supported, got {}",
                stop.len()
            ),
        ));
    }
    if let Some((i, s)) = stop
        .iter()
        .enumerate()
        .find(|(_, s)| s.len() > MAX_STOP_LEN)
    {
        return Err(ApiError::bad_param(
            "stop",
            format!(
                "stop strings may be at most {MAX_STOP_LEN} bytes long, but stop string {i} has {}",
                s.len()
            ),
        ));
    }
    let stop: Vec<String> = stop.into_iter().filter(|s| !s.is_empty()).collect();
    let sampling = SamplingParams {
        temperature,
        top_k,
        top_p,
        min_p,
        repeat_penalty,
        repeat_last_n: PENALTY_WINDOW,
        frequency_penalty,
        presence_penalty,
        logit_bias,
        seed,
    };
    // A backstop: the checks above already cover what `validate` refuses.
    sampling.validate().map_err(|e| match &e {
        owl_sample::SampleError::InvalidParam { field, .. } => {
            let name = if *field == "repeat_penalty" {
                rp_name
            } else {
                field
            };
            ApiError::bad_param(name, e.to_string())
        }
        _ => ApiError::bad_request(e.to_string()),
    })?;
    let stream = c.stream.unwrap_or(false);
    if c.stream_options.is_some() && !stream {
        return Err(ApiError::bad_param(
            "stream_options",
            "`stream_options` is only allowed when `stream` is true",
        ));
    }
    let include_usage = c
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    Ok(Settings {
        sampling,
        stop,
        stream,
        include_usage,
        stop_at_eog: !c.ignore_eos.unwrap_or(false),
    })
}

/// Checks `max_tokens` (at least `min`) and caps it at what the context leaves after the
/// prompt: a huge value means "as many as fit", never an error. Refuses a prompt that leaves
/// no room at all (unless nothing is to be generated).
pub fn max_tokens(
    requested: Option<i64>,
    param: &str,
    min: i64,
    prompt_len: usize,
    n_ctx: usize,
) -> Result<usize, ApiError> {
    if let Some(m) = requested {
        if m < min {
            return Err(ApiError::bad_param(
                param,
                format!("`{param}` must be at least {min}, got {m}"),
            ));
        }
    }
    let wants_tokens = requested != Some(0);
    if prompt_len > n_ctx || (wants_tokens && prompt_len >= n_ctx) {
        let why = if prompt_len == n_ctx {
            ", leaving no room to generate"
        } else {
            ""
        };
        return Err(ApiError::bad_request(format!(
            "the prompt has {prompt_len} tokens but the context holds {n_ctx}{why}; use a shorter prompt or a larger --ctx-size"
        ))
        .with_code("context_length_exceeded"));
    }
    let room = n_ctx - prompt_len;
    Ok(match requested {
        Some(m) => (m as u64).min(room as u64) as usize,
        None => room,
    })
}

/// Fills the sampling fields a request left out from a derived model's parameters (Ollama's
/// names: `temperature`, `top_k`, `top_p`, `min_p`, `seed`, `stop`, `repeat_penalty`,
/// `presence_penalty`, `frequency_penalty`, `num_predict` → `max_tokens`). What the request
/// says always wins.
pub fn with_model_defaults(
    c: &mut CommonFields,
    params: &std::collections::BTreeMap<String, serde_json::Value>,
) {
    use serde_json::Value;
    let num = |k: &str| params.get(k).and_then(Value::as_f64);
    if c.temperature.is_none() {
        c.temperature = num("temperature");
    }
    if c.top_p.is_none() {
        c.top_p = num("top_p");
    }
    if c.top_k.is_none() {
        c.top_k = params.get("top_k").and_then(Value::as_i64);
    }
    if c.min_p.is_none() {
        c.min_p = num("min_p");
    }
    if c.seed.is_none() {
        c.seed = match params.get("seed") {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|s| s >= 0) => Some(n.clone()),
            _ => None,
        };
    }
    if c.repeat_penalty.is_none() && c.repetition_penalty.is_none() {
        c.repeat_penalty = num("repeat_penalty");
    }
    if c.presence_penalty.is_none() {
        c.presence_penalty = num("presence_penalty");
    }
    if c.frequency_penalty.is_none() {
        c.frequency_penalty = num("frequency_penalty");
    }
    if c.max_tokens.is_none() {
        c.max_tokens = params
            .get("num_predict")
            .and_then(Value::as_i64)
            .filter(|&n| n > 0);
    }
    if c.stop.is_none() {
        c.stop = match params.get("stop") {
            Some(Value::String(s)) => Some(StopField::One(s.clone())),
            Some(Value::Array(a)) => Some(StopField::Many(
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            )),
            _ => None,
        };
    }
}
