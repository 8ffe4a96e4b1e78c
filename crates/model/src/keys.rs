//! The one reader of an architecture's metadata keys (`{arch}.block_count`, ...).
//!
//! Every loader needs the same few questions answered: "the required width under this key",
//! "this optional count, or a default", "this finite float, if present". Asked through
//! `GgufFile::get_u64` directly, each file wrote its own range check and, worse, a key present
//! with the wrong type (a string where a count belongs) read as *absent* and silently took the
//! default. [`Keys`] answers each question once: a present key of the wrong type, a negative
//! or out-of-range count and a non-finite float are errors naming the full key; only a key
//! that is truly missing falls back to a default.
//!
//! Sizes are bounded below 2^24 before anything is allocated from them.

use owl_gguf::{GgufFile, Value};

use crate::ModelError;

/// Counts and widths above this are refused before anything is sized by them.
const MAX_DIM: u64 = 1 << 24;

/// The `{arch}.*` keys of one file.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub file: &'a GgufFile,
    pub arch: &'a str,
}

impl<'a> Keys<'a> {
    pub fn new(file: &'a GgufFile, arch: &'a str) -> Keys<'a> {
        Keys { file, arch }
    }

    /// The full name of `k`: `{arch}.{k}`.
    pub fn name(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    fn bad(&self, k: &str, why: String) -> ModelError {
        ModelError::BadKey {
            key: self.name(k),
            why,
        }
    }

    fn value(&self, k: &str) -> Option<&'a Value> {
        self.file.get(&self.name(k))
    }

    pub fn has(&self, k: &str) -> bool {
        self.value(k).is_some()
    }

    /// `k` as a non-negative integer below 2^24, if present.
    pub fn count(&self, k: &str) -> Result<Option<usize>, ModelError> {
        let Some(v) = self.value(k) else {
            return Ok(None);
        };
        let n = v.as_u64().ok_or_else(|| match v.as_i64() {
            Some(n) => self.bad(k, format!("{n} is negative")),
            None => self.bad(k, format!("expected an integer, not {}", v.type_name())),
        })?;
        if n >= MAX_DIM {
            return Err(self.bad(k, format!("{n} is out of range")));
        }
        Ok(Some(n as usize))
    }

    /// `k` as a count, `default` when absent.
    pub fn count_or(&self, k: &str, default: usize) -> Result<usize, ModelError> {
        Ok(self.count(k)?.unwrap_or(default))
    }

    /// `k` as a width (above 0 and below 2^24), if present.
    pub fn dim(&self, k: &str) -> Result<Option<usize>, ModelError> {
        match self.count(k)? {
            Some(0) => Err(self.bad(k, "0 is out of range".into())),
            n => Ok(n),
        }
    }

    /// The required width `k`.
    pub fn dim_req(&self, k: &str) -> Result<usize, ModelError> {
        self.dim(k)?
            .ok_or_else(|| ModelError::MissingKey(self.name(k)))
    }

    /// The width `k`, `default` when absent.
    pub fn dim_or(&self, k: &str, default: usize) -> Result<usize, ModelError> {
        Ok(self.dim(k)?.unwrap_or(default))
    }

    /// `k` as a finite float (F32, F64 or an integer), if present.
    pub fn f32(&self, k: &str) -> Result<Option<f32>, ModelError> {
        let Some(v) = self.value(k) else {
            return Ok(None);
        };
        let x = v
            .as_f64()
            .ok_or_else(|| self.bad(k, format!("expected a number, not {}", v.type_name())))?
            as f32;
        if !x.is_finite() {
            return Err(self.bad(k, format!("{x} is not finite")));
        }
        Ok(Some(x))
    }

    /// The required float `k`.
    pub fn f32_req(&self, k: &str) -> Result<f32, ModelError> {
        self.f32(k)?
            .ok_or_else(|| ModelError::MissingKey(self.name(k)))
    }

    /// The float `k`, `default` when absent.
    pub fn f32_or(&self, k: &str, default: f32) -> Result<f32, ModelError> {
        Ok(self.f32(k)?.unwrap_or(default))
    }

    /// The boolean `k`, `default` when absent.
    pub fn bool_or(&self, k: &str, default: bool) -> Result<bool, ModelError> {
        match self.value(k) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.bad(k, format!("expected a boolean, not {}", v.type_name()))),
        }
    }

    /// The string `k`, if present.
    pub fn str(&self, k: &str) -> Result<Option<&'a str>, ModelError> {
        match self.value(k) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.bad(k, format!("expected a string, not {}", v.type_name()))),
        }
    }

    /// `attention.sliding_window`: the window in positions, `None` when absent or 0
    /// (llama.cpp turns sliding-window attention on for `n_swa > 0`).
    pub fn sliding_window(&self) -> Result<Option<usize>, ModelError> {
        Ok(self.count("attention.sliding_window")?.filter(|&w| w > 0))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use owl_gguf::GgufWriter;

    use super::*;

    /// A GGUF of architecture `t` with these keys and no tensors (for key-reading tests).
    pub(crate) fn file(kvs: &[(&str, Value)]) -> GgufFile {
        let mut w = GgufWriter::new();
        w.add_kv("general.architecture", Value::String("t".into()));
        for (k, v) in kvs {
            w.add_kv(k, v.clone());
        }
        GgufFile::from_bytes(w.to_bytes()).expect("gguf")
    }

    fn bad_key(r: Result<impl std::fmt::Debug, ModelError>, want: &str) {
        match r {
            Err(ModelError::BadKey { key, .. }) => assert_eq!(key, want),
            other => panic!("expected a bad {want}, got {other:?}"),
        }
    }

    #[test]
    fn present_keys_of_the_wrong_type_are_errors_not_defaults() {
        let g = file(&[
            ("t.block_count", Value::String("12".into())),
            ("t.rope.freq_base", Value::String("1e4".into())),
            ("t.expert_weights_norm", Value::U32(1)),
            ("t.name", Value::U32(1)),
        ]);
        let k = Keys::new(&g, "t");
        bad_key(k.count_or("block_count", 1), "t.block_count");
        bad_key(k.f32_or("rope.freq_base", 1.0), "t.rope.freq_base");
        bad_key(
            k.bool_or("expert_weights_norm", false),
            "t.expert_weights_norm",
        );
        bad_key(k.str("name"), "t.name");
        assert_eq!(k.count_or("missing", 7).expect("default"), 7);
        assert!(matches!(k.dim_req("missing"), Err(ModelError::MissingKey(n)) if n == "t.missing"));
    }

    #[test]
    fn counts_and_widths_are_range_checked() {
        let g = file(&[
            ("t.zero", Value::U32(0)),
            ("t.neg", Value::I32(-3)),
            ("t.huge", Value::U64(1 << 40)),
            ("t.ok", Value::I64(384)),
            ("t.inf", Value::F32(f32::INFINITY)),
            ("t.attention.sliding_window", Value::U32(0)),
        ]);
        let k = Keys::new(&g, "t");
        assert_eq!(k.count("zero").expect("0 is a count"), Some(0));
        bad_key(k.dim("zero"), "t.zero");
        bad_key(k.count("neg"), "t.neg");
        bad_key(k.count("huge"), "t.huge");
        assert_eq!(k.dim_req("ok").expect("width"), 384);
        assert_eq!(k.f32("ok").expect("an integer is a number"), Some(384.0));
        bad_key(k.f32("inf"), "t.inf");
        assert_eq!(k.sliding_window().expect("0 is off"), None);
    }
}
