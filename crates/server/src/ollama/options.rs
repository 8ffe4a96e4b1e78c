//! Ollama's request knobs in owl's terms: `options` (sampling, lengths), `keep_alive`,
//! `format` and `think`.
//!
//! `options` are checked by name: a known option becomes the same [`CommonFields`] the OpenAI
//! routes check (so ranges and errors are the same), options that change nothing on a CPU
//! engine (`num_gpu`, `num_thread`, `use_mmap`, …) are accepted and dropped, and anything else
//! is a 400 naming it. A derived model's parameters are defaults under the request's own.
//! Defaults are Ollama's: temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1 over the
//! last 64 tokens, no length limit but the context.

use owl_grammar::Constraint;
use owl_text::TemplateVars;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::openai::{CommonFields, StopField};
use crate::pool::KeepAlive;

/// Options owl applies.
const APPLIED: &[&str] = &[
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "seed",
    "stop",
    "num_predict",
    "num_ctx",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "repeat_last_n",
];

/// Options that only tune Ollama's own runner (threads, GPU, memory mapping, batch size):
/// owl sizes those itself, so they change no output and are dropped.
const RUNNER_ONLY: &[&str] = &[
    "num_keep",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "use_mmap",
    "use_mlock",
    "num_thread",
    "numa",
    "low_vram",
    "vocab_only",
    "f16_kv",
];

/// Checked options.
pub struct Options {
    pub common: CommonFields,
    /// `num_predict` (`None`: until the context ends).
    pub num_predict: Option<i64>,
    /// `num_ctx`: a cap on prompt plus reply, within the model's loaded context.
    pub num_ctx: Option<i64>,
}

/// Merges `defaults` (a derived model's parameters) under `given` and checks the result.
pub fn options(
    given: Option<&Value>,
    defaults: &std::collections::BTreeMap<String, Value>,
) -> Result<Options, ApiError> {
    let mut merged: Map<String, Value> = defaults
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match given {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                merged.insert(k.clone(), v.clone());
            }
        }
        Some(_) => {
            return Err(ApiError::bad_param(
                "options",
                "`options` must be an object",
            ))
        }
    }
    let num = |k: &str| -> Result<Option<f64>, ApiError> {
        match merged.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                ApiError::bad_param(&format!("options.{k}"), format!("`{k}` must be a number"))
            }),
        }
    };
    let int = |k: &str| -> Result<Option<i64>, ApiError> {
        match num(k)? {
            None => Ok(None),
            Some(x) if x.fract() == 0.0 => Ok(Some(x as i64)),
            Some(x) => Err(ApiError::bad_param(
                &format!("options.{k}"),
                format!("`{k}` must be a whole number, got {x}"),
            )),
        }
    };
    for k in merged.keys() {
        if !APPLIED.contains(&k.as_str()) && !RUNNER_ONLY.contains(&k.as_str()) {
            return Err(ApiError::bad_param(
                &format!("options.{k}"),
                format!(
                    "the option `{k}` is not supported by this server; known options: {}",
                    APPLIED.join(", ")
                ),
            ));
        }
    }
    if let Some(n) = int("repeat_last_n")? {
        if n != 64 && n != -1 && n != 0 {
            // owl's penalties look at the last 64 tokens, as llama-server and Ollama default.
            return Err(ApiError::bad_param(
                "options.repeat_last_n",
                format!("only repeat_last_n 64 is supported, got {n}"),
            ));
        }
    }
    let stop = match merged.get("stop") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(StopField::One(s.clone())),
        Some(Value::Array(a)) => Some(StopField::Many(
            a.iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ApiError::bad_param("options.stop", "`stop` must be a list of strings")
                    })
                })
                .collect::<Result<_, _>>()?,
        )),
        Some(_) => {
            return Err(ApiError::bad_param(
                "options.stop",
                "`stop` must be a string or a list of strings",
            ))
        }
    };
    let seed = match merged.get("seed") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|s| s >= 0) => Some(n.clone()),
        // Ollama's "no seed": -1 (or absent).
        _ => None,
    };
    let top_k = int("top_k")?.unwrap_or(40);
    let common = CommonFields {
        temperature: Some(num("temperature")?.unwrap_or(0.8)),
        top_p: Some(num("top_p")?.unwrap_or(0.9)),
        top_k: Some(top_k),
        min_p: num("min_p")?,
        seed,
        stop,
        presence_penalty: num("presence_penalty")?,
        frequency_penalty: num("frequency_penalty")?,
        repeat_penalty: Some(num("repeat_penalty")?.unwrap_or(1.1)),
        ..CommonFields::default()
    };
    Ok(Options {
        common,
        num_predict: int("num_predict")?.filter(|&n| n >= 0),
        num_ctx: int("num_ctx")?,
    })
}

/// The reply-length limit: `num_predict`, and whatever `num_ctx` leaves after the prompt
/// (checked again once the prompt is tokenized: see [`fit_num_ctx`]).
pub fn max_tokens(o: &Options) -> Option<i64> {
    o.num_predict
}

/// Caps `max` so that prompt plus reply fit `num_ctx`; a prompt longer than `num_ctx` is a 400.
pub fn fit_num_ctx(max: usize, prompt: usize, num_ctx: Option<i64>) -> Result<usize, ApiError> {
    let Some(ctx) = num_ctx.filter(|&c| c > 0) else {
        return Ok(max);
    };
    let ctx = ctx as usize;
    if prompt >= ctx {
        return Err(ApiError::bad_param(
            "options.num_ctx",
            format!("the prompt has {prompt} tokens, more than num_ctx {ctx} leaves room for"),
        ));
    }
    Ok(max.min(ctx - prompt))
}

/// `keep_alive`, if given.
pub fn keep_alive(v: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => KeepAlive::parse_json(v)
            .map(Some)
            .map_err(|e| ApiError::bad_param("keep_alive", e)),
    }
}

/// `format`: `"json"` (any JSON object) or a JSON schema; `""` is none.
pub fn format(v: Option<&Value>) -> Result<Option<Constraint>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(Constraint::JsonObject)),
        Some(Value::Object(_)) | Some(Value::Bool(_)) => Ok(Some(Constraint::JsonSchema(
            v.cloned().unwrap_or(Value::Null),
        ))),
        Some(other) => Err(ApiError::bad_param(
            "format",
            format!("`format` must be \"json\" or a JSON schema object, got {other}"),
        )),
    }
}

/// `think`: `true`/`false`, or a level (`"low"`, `"medium"`, `"high"`, for gpt-oss), as the
/// template variables the chat templates read.
pub fn think(v: Option<&Value>) -> Result<TemplateVars, ApiError> {
    let mut vars = TemplateVars::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Bool(on)) => {
            vars.insert("enable_thinking".into(), Value::Bool(*on));
        }
        Some(Value::String(level)) if ["low", "medium", "high"].contains(&level.as_str()) => {
            vars.insert("enable_thinking".into(), Value::Bool(true));
            vars.insert("reasoning_effort".into(), Value::String(level.clone()));
        }
        Some(other) => {
            return Err(ApiError::bad_param(
                "think",
                format!(
                    "`think` must be true, false, \"low\", \"medium\" or \"high\", got {other}"
                ),
            ))
        }
    }
    Ok(vars)
}

/// Whether the reply's thinking is wanted (`think` not false).
pub fn thinking_shown(v: Option<&Value>) -> bool {
    !matches!(v, Some(Value::Bool(false)))
}

/// A request with images for a model that reads only text.
pub fn no_images(v: Option<&Value>, field: &str) -> Result<(), ApiError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(_) => Err(ApiError::bad_param(
            field,
            "this model reads only text: images are not supported",
        )),
    }
}
