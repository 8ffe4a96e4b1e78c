//! [`Config`]: `config.json` with typed, checked reads that name the key they fail on.

use serde_json::Value as Json;

use crate::archs::ConfigDefault;
use crate::HfError;

/// A model's `config.json` (or, for multimodal checkpoints, its `text_config`).
pub struct Config {
    pub json: Json,
}

impl Config {
    /// A positive integer below 2^24 (layer counts, widths, head counts).
    pub fn dim(&self, key: &str) -> Result<usize, HfError> {
        self.opt_dim(key)?.ok_or_else(|| HfError::BadConfig {
            key: key.into(),
            why: "is missing".into(),
        })
    }

    /// [`Config::dim`], or `None` when the key is absent or null.
    pub fn opt_dim(&self, key: &str) -> Result<Option<usize>, HfError> {
        match self.json.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .filter(|&v| v > 0 && v < (1 << 24))
                .map(Some)
                .ok_or_else(|| HfError::BadConfig {
                    key: key.into(),
                    why: format!("is {v}, not a positive integer below 2^24"),
                }),
        }
    }

    /// A finite number, or `None` when absent or null.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, HfError> {
        match self.json.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| HfError::BadConfig {
                    key: key.into(),
                    why: format!("is {v}, not a finite number"),
                }),
        }
    }

    /// Multimodal checkpoints keep the language model's settings under `text_config`: they
    /// override the top level, as in the converter (`{**hparams, **text_config}`).
    pub fn lift_text_config(&mut self) {
        let Some(text) = self
            .json
            .get("text_config")
            .and_then(Json::as_object)
            .cloned()
        else {
            return;
        };
        if let Some(root) = self.json.as_object_mut() {
            for (k, v) in text {
                if k != "architectures" {
                    root.insert(k, v);
                }
            }
        }
    }

    /// Sets the keys of `defaults` that the file leaves out (or null).
    pub fn fill_defaults(&mut self, defaults: &[(&str, ConfigDefault)]) {
        let Some(root) = self.json.as_object_mut() else {
            return;
        };
        for &(k, d) in defaults {
            if root.get(k).is_none_or(Json::is_null) {
                let v = match d {
                    ConfigDefault::Int(i) => Json::from(i),
                    ConfigDefault::Float(f) => Json::from(f),
                };
                root.insert(k.to_string(), v);
            }
        }
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, HfError> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Json::as_str)
    }

    /// The first of `architectures`, e.g. `LlamaForCausalLM`.
    pub fn architecture(&self) -> Result<&str, HfError> {
        self.json
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Json::as_str)
            .ok_or_else(|| HfError::BadConfig {
                key: "architectures".into(),
                why: "is missing (expected e.g. [\"LlamaForCausalLM\"])".into(),
            })
    }
}
