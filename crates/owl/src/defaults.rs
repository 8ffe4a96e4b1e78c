//! A model's defaults on the command line: a derived (or Ollama) model's params fill in the
//! sampling flags the user did not give, its system prompt stands in when `--system` is
//! absent, and `num_ctx` sizes the context. Flags always win.

use anyhow::{bail, Result};
use owl_store::Resolved;
use serde_json::Value;

use crate::cli::SamplingArgs;

/// Fills unset `s` fields from `r`'s params; returns the context size they ask for.
pub fn apply(r: &Resolved, s: &mut SamplingArgs) -> Result<Option<usize>> {
    let mut ctx = None;
    for (k, v) in &r.defaults.params {
        let bad = |what: &str| -> Result<()> {
            bail!("model '{}': parameter {k} = {v} is not {what}", r.name)
        };
        let f = || v.as_f64().map(|x| x as f32);
        let u = || v.as_u64();
        match k.as_str() {
            "temperature" => match f() {
                Some(x) => {
                    s.temperature.get_or_insert(x);
                }
                None => bad("a number")?,
            },
            "top_p" => match f() {
                Some(x) => {
                    s.top_p.get_or_insert(x);
                }
                None => bad("a number")?,
            },
            "min_p" => match f() {
                Some(x) => {
                    s.min_p.get_or_insert(x);
                }
                None => bad("a number")?,
            },
            "repeat_penalty" => match f() {
                Some(x) => {
                    s.repeat_penalty.get_or_insert(x);
                }
                None => bad("a number")?,
            },
            "presence_penalty" => match f() {
                Some(x) => {
                    s.presence_penalty.get_or_insert(x);
                }
                None => bad("a number")?,
            },
            "frequency_penalty" => match f() {
                Some(x) => {
                    s.frequency_penalty.get_or_insert(x);
                }
                None => bad("a number")?,
            },
            "top_k" => match u() {
                Some(x) => {
                    s.top_k.get_or_insert(x as usize);
                }
                None => bad("a whole number")?,
            },
            // Ollama writes -1 for "random": leave the seed unset then.
            "seed" => match (u(), v.as_i64()) {
                (Some(x), _) => {
                    s.seed.get_or_insert(x);
                }
                (None, Some(_)) => {}
                _ => bad("a whole number")?,
            },
            // -1 (unlimited) and -2 (fill the context) keep owl's default.
            "num_predict" => match (u(), v.as_i64()) {
                (Some(x), _) => {
                    s.max_tokens.get_or_insert(x as usize);
                }
                (None, Some(_)) => {}
                _ => bad("a whole number")?,
            },
            "num_ctx" => match u() {
                Some(x) if x > 0 => ctx = Some(x as usize),
                _ => bad("a positive whole number")?,
            },
            "stop" if s.stop.is_empty() => {
                s.stop = match v {
                    Value::String(t) => vec![t.clone()],
                    Value::Array(a) if a.iter().all(Value::is_string) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    _ => return bad("a string or a list of strings").map(|_| None),
                };
            }
            // Other Ollama params (num_keep, mirostat, …) have no owl equivalent.
            _ => {}
        }
    }
    Ok(ctx)
}
