//! `tokenizer.json` (+ `tokenizer_config.json`, `config.json`) → the `tokenizer.ggml.*` keys
//! llama.cpp's converter writes, so owl's tokenizer (built from those keys) runs unchanged.
//!
//! What is translated, following `convert_hf_to_gguf.py` (`get_vocab_base`) and gguf-py's
//! `SpecialVocab`:
//!
//! * **Byte-level BPE** (`model.type = "BPE"` with a `ByteLevel` pre-tokenizer): tokens by id
//!   (ids the vocabulary skips become `[PADn]`, unused), added tokens as control tokens when
//!   special or special-looking (`<|…|>`), else user-defined; merges in either JSON form.
//! * **WordPiece** (`"WordPiece"`, BERT): the same token list rewritten into llama.cpp's
//!   "phantom space" form: a word-initial piece gets a `▁` prefix, a `##` continuation loses
//!   its `##`, control tokens stay as they are.
//! * **SentencePiece** (Llama, Gemma 3 with a `tokenizer.model`, which the converter prefers
//!   over `tokenizer.json`): the model's pieces, scores and types (`spm`), ids up to
//!   `vocab_size` padded, `added_tokens.json` and `tokenizer_config.json`'s
//!   `added_tokens_decoder` on top; `tokenizer.ggml.model` "llama" (Gemma: no space prefix).
//! * Special ids from `tokenizer_config.json` (looked up among the added tokens), else from
//!   `config.json`'s `*_token_id`; `add_bos`/`add_eos`/`add_sep` from the post-processor,
//!   overridden by `tokenizer_config.json`'s `add_*_token`; the chat template from
//!   `tokenizer_config.json`, `chat_template.jinja` or `chat_template.json`.
//!
//! The converter picks the pre-tokenizer by hashing how the tokenizer splits a probe text.
//! Without Python's `tokenizers` at hand, owl reads the pre-tokenizer's own description
//! instead and recognises the shapes of the families it supports (Llama 3, Qwen 2, SmolLM,
//! GPT-2); anything else is refused by name rather than guessed.

use std::collections::HashMap;
use std::path::Path;

use owl_gguf::{GgufAssembler, Value};
use serde_json::Value as Json;

use crate::config::Config;
use crate::{read_json, HfError};

// gguf TokenType values (SentencePiece's piece types are the same numbers).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// The Llama 3 split pattern (`tokenizer.json` of Llama 3.x).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// DeepSeek-V3's three splits (llama.cpp's `deepseek-v3` pre-tokenizer), in order.
const DEEPSEEK3_SPLITS: [&str; 3] = [
    r"\p{N}{1,3}",
    "[一-龥\u{3040}-ゟ゠-ヿ]+",
    r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// The Qwen 2 split pattern (single digits).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

struct Added {
    content: String,
    special: bool,
}

/// The added tokens of `tokenizer.json`, by id.
fn added_tokens(
    tj: &Json,
    bad: &dyn Fn(String) -> HfError,
) -> Result<HashMap<u64, Added>, HfError> {
    let mut added: HashMap<u64, Added> = HashMap::new();
    for a in tj
        .get("added_tokens")
        .and_then(Json::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let (Some(id), Some(content)) = (
            a.get("id").and_then(Json::as_u64),
            a.get("content").and_then(Json::as_str),
        ) else {
            return Err(bad("an added token lacks `id` or `content`".into()));
        };
        added.insert(
            id,
            Added {
                content: content.to_string(),
                special: a.get("special").and_then(Json::as_bool).unwrap_or(false),
            },
        );
    }
    Ok(added)
}

/// Writes the tokenizer keys of the directory into `asm`. `arch` is the GGUF architecture:
/// for Llama and Gemma 3 the converter prefers SentencePiece's `tokenizer.model` when the
/// directory has one.
pub fn convert(
    dir: &Path,
    cfg: &Config,
    arch: &str,
    asm: &mut GgufAssembler,
) -> Result<(), HfError> {
    let tcfg_path = dir.join("tokenizer_config.json");
    let tcfg = if tcfg_path.is_file() {
        read_json(&tcfg_path)?
    } else {
        Json::Null
    };
    let spm_path = dir.join("tokenizer.model");
    if matches!(arch, "llama" | "gemma3") && spm_path.is_file() {
        return convert_spm(dir, &spm_path, &tcfg, cfg, arch, asm);
    }
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(HfError::MissingFile(path));
    }
    let tj = read_json(&path)?;
    let bad = |why: String| HfError::Unsupported(format!("{}: {why}", path.display()));

    let model = tj.get("model").ok_or_else(|| bad("no `model`".into()))?;
    let kind = model.get("type").and_then(Json::as_str).unwrap_or("");
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| bad("`model.vocab` is not an object".into()))?;

    // id -> token, the added tokens included (they may or may not repeat vocab entries).
    let mut by_id: HashMap<u64, String> = HashMap::with_capacity(vocab.len());
    for (tok, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| bad(format!("token `{tok}` has no integer id")))?;
        by_id.insert(id, tok.clone());
    }
    let added = added_tokens(&tj, &bad)?;
    for (&id, a) in &added {
        by_id.insert(id, a.content.clone());
    }
    let max_id = by_id.keys().copied().max().unwrap_or(0);
    let n_vocab = match cfg.opt_dim("vocab_size")? {
        Some(n) => n as u64,
        None => max_id + 1,
    };
    if max_id >= n_vocab {
        return Err(bad(format!(
            "token id {max_id} is outside config.json's vocab_size {n_vocab}"
        )));
    }

    let mut tokens = Vec::with_capacity(n_vocab as usize);
    let mut types = Vec::with_capacity(n_vocab as usize);
    for id in 0..n_vocab {
        match (by_id.get(&id), added.get(&id)) {
            (None, _) => {
                tokens.push(format!("[PAD{id}]"));
                types.push(UNUSED);
            }
            (Some(t), Some(a)) if a.special || looks_special(t) => {
                tokens.push(t.clone());
                types.push(CONTROL);
            }
            (Some(t), Some(_)) => {
                tokens.push(t.replace('\u{2581}', " "));
                types.push(USER_DEFINED);
            }
            (Some(t), None) => {
                tokens.push(t.clone());
                types.push(NORMAL);
            }
        }
    }

    match kind {
        "BPE" => {
            if !mentions(&tj, "ByteLevel") {
                return Err(bad(
                    "only byte-level BPE tokenizers are read from tokenizer.json; a \
                     SentencePiece vocabulary (BPE with byte fallback) is read from its \
                     tokenizer.model, which this directory lacks"
                        .into(),
                ));
            }
            asm.set("tokenizer.ggml.model", Value::String("gpt2".into()));
            let pre = detect_pre(&tj, &tcfg).map_err(bad)?;
            asm.set("tokenizer.ggml.pre", Value::String(pre.into()));
            let merges = merges(model).map_err(bad)?;
            asm.set("tokenizer.ggml.merges", strings(merges));
        }
        "WordPiece" => {
            for (t, &ty) in tokens.iter_mut().zip(&types) {
                if ty == CONTROL {
                    continue;
                }
                *t = match t.strip_prefix("##") {
                    Some(rest) => rest.to_string(),
                    None => format!("\u{2581}{t}"),
                };
            }
            asm.set("tokenizer.ggml.model", Value::String("bert".into()));
            asm.set("tokenizer.ggml.pre", Value::String("default".into()));
        }
        other => {
            return Err(bad(format!(
                "tokenizer model `{other}` is not supported (byte-level BPE and WordPiece are)"
            )))
        }
    }
    asm.set("tokenizer.ggml.tokens", strings(tokens));
    asm.set(
        "tokenizer.ggml.token_type",
        Value::Array(types.into_iter().map(Value::I32).collect()),
    );
    special_tokens(&tj, &tcfg, cfg, &added, n_vocab, asm);
    if let Some(t) = chat_template(dir, &tcfg)? {
        asm.set("tokenizer.chat_template", Value::String(t));
    }
    Ok(())
}

/// SentencePiece's `tokenizer.model`, as the converter's `_create_vocab_sentencepiece` and
/// `_set_vocab_sentencepiece` write it: pieces, scores and types by id (ids past the model up
/// to `vocab_size` are `[PADn]`), `added_tokens.json` and `tokenizer_config.json`'s
/// `added_tokens_decoder` layered on top, then the special tokens as for `tokenizer.json`.
fn convert_spm(
    dir: &Path,
    spm_path: &Path,
    tcfg: &Json,
    cfg: &Config,
    arch: &str,
    asm: &mut GgufAssembler,
) -> Result<(), HfError> {
    let pieces = crate::spm::read(spm_path)?;
    let n_vocab = match cfg.opt_dim("vocab_size")? {
        Some(n) => n,
        None => pieces.len(),
    };
    let mut tokens: Vec<String> = (0..n_vocab).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; n_vocab];
    let mut types = vec![UNUSED; n_vocab];
    for (i, p) in pieces.into_iter().enumerate().take(n_vocab) {
        types[i] = match p.kind {
            2 | 3 | 5 | 6 => p.kind,
            _ => NORMAL,
        };
        tokens[i] = p.piece;
        scores[i] = p.score;
    }
    let added_path = dir.join("added_tokens.json");
    if added_path.is_file() {
        if let Some(map) = read_json(&added_path)?.as_object() {
            for (tok, id) in map {
                let Some(id) = id.as_u64().and_then(|i| usize::try_from(i).ok()) else {
                    continue;
                };
                if id < n_vocab {
                    tokens[id] = tok.clone();
                    scores[id] = -1000.0;
                    types[id] = USER_DEFINED;
                }
            }
        }
    }
    if let Some(dec) = tcfg.get("added_tokens_decoder").and_then(Json::as_object) {
        for (id, data) in dec {
            let Some(id) = id.parse::<usize>().ok().filter(|&i| i < n_vocab) else {
                continue;
            };
            let Some(content) = data.get("content").and_then(Json::as_str) else {
                continue;
            };
            let special = data.get("special").and_then(Json::as_bool) == Some(true);
            if special || looks_special(content) {
                types[id] = CONTROL;
                tokens[id] = content.to_string();
            } else {
                types[id] = USER_DEFINED;
                tokens[id] = content.replace('\u{2581}', " ");
            }
            scores[id] = -1000.0;
        }
    }
    asm.set("tokenizer.ggml.model", Value::String("llama".into()));
    asm.set("tokenizer.ggml.pre", Value::String("default".into()));
    asm.set("tokenizer.ggml.tokens", strings(tokens));
    asm.set(
        "tokenizer.ggml.scores",
        Value::Array(scores.into_iter().map(Value::F32).collect()),
    );
    asm.set(
        "tokenizer.ggml.token_type",
        Value::Array(types.into_iter().map(Value::I32).collect()),
    );
    // The special ids come from tokenizer.json's added tokens when it is there.
    let tj_path = dir.join("tokenizer.json");
    let tj = if tj_path.is_file() {
        read_json(&tj_path)?
    } else {
        Json::Null
    };
    let bad = |why: String| HfError::Unsupported(format!("{}: {why}", tj_path.display()));
    let added = added_tokens(&tj, &bad)?;
    special_tokens(&tj, tcfg, cfg, &added, n_vocab as u64, asm);
    if arch == "gemma3" {
        asm.set("tokenizer.ggml.add_space_prefix", Value::Bool(false));
    }
    if let Some(t) = chat_template(dir, tcfg)? {
        asm.set("tokenizer.chat_template", Value::String(t));
    }
    Ok(())
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

/// The converter's `does_token_look_special`.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// Whether a component of type `ty` appears in the pre-tokenizer or decoder.
fn mentions(tj: &Json, ty: &str) -> bool {
    fn walk(v: &Json, ty: &str) -> bool {
        match v {
            Json::Object(o) => {
                o.get("type").and_then(Json::as_str) == Some(ty) || o.values().any(|x| walk(x, ty))
            }
            Json::Array(a) => a.iter().any(|x| walk(x, ty)),
            _ => false,
        }
    }
    ["pre_tokenizer", "decoder"]
        .iter()
        .any(|k| tj.get(*k).is_some_and(|v| walk(v, ty)))
}

/// The pre-tokenizer steps, flattened out of a `Sequence`.
fn pre_steps(tj: &Json) -> Vec<&Json> {
    match tj.get("pre_tokenizer") {
        Some(p) if p.get("type").and_then(Json::as_str) == Some("Sequence") => p
            .get("pretokenizers")
            .and_then(Json::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some(Json::Null) | None => Vec::new(),
        Some(p) => vec![p],
    }
}

/// llama.cpp's `tokenizer.ggml.pre` for the pre-tokenizer this file describes.
fn detect_pre(tj: &Json, tcfg: &Json) -> Result<&'static str, String> {
    let steps = pre_steps(tj);
    let ty = |s: &Json| {
        s.get("type")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string()
    };
    let kinds: Vec<String> = steps.iter().map(|s| ty(s)).collect();
    let byte_level_regex = |s: &Json| s.get("use_regex").and_then(Json::as_bool).unwrap_or(true);
    let split = steps.iter().find(|s| ty(s) == "Split").and_then(|s| {
        s.get("pattern")
            .and_then(|p| p.get("Regex"))
            .and_then(Json::as_str)
    });
    let clean = tcfg
        .get("clean_up_tokenization_spaces")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    // A regex with its CR/LF written as escapes, so both spellings compare equal.
    let escaped = |r: &str| r.replace('\r', r"\r").replace('\n', r"\n");
    let splits: Vec<String> = steps
        .iter()
        .filter(|s| ty(s) == "Split")
        .filter_map(|s| {
            s.get("pattern")
                .and_then(|p| p.get("Regex"))
                .and_then(Json::as_str)
                .map(escaped)
        })
        .collect();
    if kinds == ["Split", "Split", "Split", "ByteLevel"]
        && !byte_level_regex(steps[3])
        && splits.len() == 3
        && splits
            .iter()
            .zip(DEEPSEEK3_SPLITS)
            .all(|(a, b)| *a == escaped(b))
    {
        return Ok("deepseek-v3");
    }
    match (
        kinds
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        split,
    ) {
        (["Split", "ByteLevel"], Some(LLAMA3_SPLIT)) if !byte_level_regex(steps[1]) => {
            Ok("llama-bpe")
        }
        (["Split", "ByteLevel"], Some(QWEN2_SPLIT)) if !byte_level_regex(steps[1]) => Ok("qwen2"),
        (["Digits", "ByteLevel"], _)
            if steps[0].get("individual_digits").and_then(Json::as_bool) == Some(true)
                && byte_level_regex(steps[1]) =>
        {
            // StarCoder's and SmolLM's tokenizers split the same way; they differ in whether
            // decoding cleans up spaces.
            Ok(if clean { "starcoder" } else { "smollm" })
        }
        (["ByteLevel"], _) if byte_level_regex(steps[0]) => Ok("gpt-2"),
        _ => Err(format!(
            "pre-tokenizer {kinds:?} is not one owl recognises (Llama 3, Qwen 2, DeepSeek-V3, \
             SmolLM/StarCoder, GPT-2); convert with llama.cpp's convert_hf_to_gguf.py"
        )),
    }
}

/// `model.merges` as `"left right"` strings (pairs joined; spaces inside a pair as U+0120).
fn merges(model: &Json) -> Result<Vec<String>, String> {
    let Some(list) = model.get("merges").and_then(Json::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(p) if p.len() == 2 => {
                let part = |v: &Json| -> Result<String, String> {
                    v.as_str()
                        .map(|s| s.replace(' ', "\u{0120}"))
                        .ok_or_else(|| "a merge pair holds a non-string".to_string())
                };
                Ok(format!("{} {}", part(&p[0])?, part(&p[1])?))
            }
            _ => Err("`model.merges` has an entry that is neither a string nor a pair".into()),
        })
        .collect()
}

/// The content of a `tokenizer_config.json` token entry (a string or `{"content": …}`).
fn entry_content(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// Special ids and add-special flags, as gguf-py's `SpecialVocab` derives them (llama.cpp's
/// own gguf-py, `_try_load_from_tokenizer_json` then `_try_load_from_config_json`).
fn special_tokens(
    tj: &Json,
    tcfg: &Json,
    cfg: &Config,
    added: &HashMap<u64, Added>,
    n_vocab: u64,
    asm: &mut GgufAssembler,
) {
    let has_tcfg = tcfg.is_object();
    let mut types: Vec<&str> = vec!["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
    let mut content: HashMap<&str, String> = HashMap::new();
    for &typ in &types {
        if let Some(c) = entry_content(tcfg.get(format!("{typ}_token"))) {
            content.insert(typ, c);
        }
    }
    let mut add: HashMap<&str, bool> = HashMap::new();
    if tj.is_object() {
        if has_tcfg && !content.contains_key("bos") {
            if let Some(c) = content.get("cls").cloned() {
                content.insert("bos", c);
            }
        }
        if has_tcfg && !content.contains_key("eos") {
            if let Some(c) = content.get("sep").cloned() {
                content.insert("eos", c);
            }
        }
        let processors = match tj.get("post_processor") {
            Some(p) if p.is_object() => match p.get("processors").and_then(Json::as_array) {
                Some(list) => list.iter().collect::<Vec<_>>(),
                None => vec![p],
            },
            _ => Vec::new(),
        };
        let special_id = |v: Option<&Json>| {
            v.and_then(|x| x.get("SpecialToken"))
                .and_then(|s| s.get("id"))
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let sequence_id = |v: Option<&Json>| {
            v.and_then(|x| x.get("Sequence"))
                .and_then(|s| s.get("id"))
                .and_then(Json::as_str)
                .map(str::to_string)
        };
        for p in processors {
            match p.get("type").and_then(Json::as_str) {
                Some("ByteLevel") => {
                    add.entry("bos").or_insert(false);
                    add.entry("eos").or_insert(false);
                }
                Some("RobertaProcessing") => {
                    add.insert("bos", true);
                    add.insert("eos", true);
                    add.insert("sep", true);
                    let first = |k: &str| {
                        p.get(k)
                            .and_then(|v| v.get(0))
                            .and_then(Json::as_str)
                            .map(str::to_string)
                    };
                    if has_tcfg && !content.contains_key("cls") {
                        if let Some(c) = first("cls").or_else(|| content.get("bos").cloned()) {
                            content.insert("cls", c);
                        }
                    }
                    if has_tcfg && !content.contains_key("sep") {
                        if let Some(c) = first("sep").or_else(|| content.get("eos").cloned()) {
                            content.insert("sep", c);
                        }
                    }
                }
                // Not in gguf-py; owl's BERT directories rely on it.
                Some("BertProcessing") => {
                    add.insert("bos", true);
                    add.insert("eos", true);
                    add.insert("sep", true);
                }
                Some("TemplateProcessing") => {
                    let empty = Vec::new();
                    let single = p.get("single").and_then(Json::as_array).unwrap_or(&empty);
                    let pair = p.get("pair").and_then(Json::as_array).unwrap_or(&empty);
                    let mut first = None;
                    let mut last = None;
                    if single.len() > 1 {
                        first = special_id(single.first());
                        if let Some(f) = &first {
                            if !has_tcfg {
                                content.insert("bos", f.clone());
                            }
                            let known = [content.get("bos"), content.get("cls")]
                                .iter()
                                .any(|c| c.is_some_and(|c| c == f));
                            add.insert("bos", known);
                        }
                        last = special_id(single.last());
                        if let Some(l) = &last {
                            if has_tcfg && content.get("eos").is_some_and(|e| e != l) {
                                // gguf-py keeps the displaced EOS as end-of-turn.
                                if let Some(old) = content.get("eos").cloned() {
                                    if !types.contains(&"eot") {
                                        types.push("eot");
                                        content.insert("eot", old);
                                    } else if !types.contains(&"eom") {
                                        types.push("eom");
                                        content.insert("eom", old);
                                    }
                                }
                            }
                            content.insert("eos", l.clone());
                            add.insert("eos", true);
                        }
                    }
                    if !pair.is_empty() {
                        let start =
                            usize::from(first.is_some() && special_id(pair.first()) == first);
                        let stop = pair.len()
                            - usize::from(last.is_some() && special_id(pair.last()) == last);
                        let inner = pair.get(start..stop.max(start)).unwrap_or(&[]);
                        if !inner.is_empty()
                            && sequence_id(inner.first()).as_deref() == Some("A")
                            && sequence_id(inner.last()).as_deref() == Some("B")
                            && inner.len() > 2
                        {
                            let mid = &inner[1..inner.len() - 1];
                            let is_sep = |id: &Option<String>| {
                                id.as_ref().is_some_and(|id| {
                                    content.get("sep") == Some(id) || content.get("eos") == Some(id)
                                })
                            };
                            let e0 = special_id(mid.first());
                            let mut add_sep = is_sep(&e0) && last.is_none();
                            if mid.len() == 2 && is_sep(&special_id(mid.get(1))) {
                                add_sep = true;
                            }
                            add.insert("sep", add_sep);
                            if add_sep && has_tcfg && !content.contains_key("sep") {
                                if let Some(e) = content.get("eos").cloned() {
                                    content.insert("sep", e);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for &typ in &types {
        if let Some(b) = tcfg.get(format!("add_{typ}_token")).and_then(Json::as_bool) {
            add.insert(typ, b);
        }
    }
    let mut ids: HashMap<&str, u64> = HashMap::new();
    for &typ in &types {
        let Some(c) = content.get(typ) else {
            continue;
        };
        // gguf-py takes the first added token with that content, in file order.
        let mut matches: Vec<u64> = added
            .iter()
            .filter(|(_, a)| a.content == *c)
            .map(|(&id, _)| id)
            .collect();
        matches.sort_unstable();
        if let Some(&id) = matches.first().filter(|&&id| id < n_vocab) {
            ids.insert(typ, id);
        }
    }
    for &typ in &types {
        if ids.contains_key(typ) {
            continue;
        }
        let id = cfg
            .json
            .get(format!("{typ}_token_id"))
            .and_then(Json::as_u64)
            .filter(|&id| id < n_vocab);
        if let Some(id) = id {
            ids.insert(typ, id);
        }
    }
    let key = |typ: &str| match typ {
        "unk" => "tokenizer.ggml.unknown_token_id",
        "sep" => "tokenizer.ggml.seperator_token_id", // sic: llama.cpp's key
        "pad" => "tokenizer.ggml.padding_token_id",
        "bos" => "tokenizer.ggml.bos_token_id",
        "eos" => "tokenizer.ggml.eos_token_id",
        "cls" => "tokenizer.ggml.cls_token_id",
        "eot" => "tokenizer.ggml.eot_token_id",
        "eom" => "tokenizer.ggml.eom_token_id",
        _ => "tokenizer.ggml.mask_token_id",
    };
    let mut sorted: Vec<_> = ids.into_iter().collect();
    sorted.sort();
    for (typ, id) in sorted {
        asm.set(key(typ), Value::U32(id as u32));
    }
    for (typ, b) in add {
        asm.set(&format!("tokenizer.ggml.add_{typ}_token"), Value::Bool(b));
    }
}

/// The chat template: `tokenizer_config.json`'s (a string, or the `default` of a named list),
/// else `chat_template.jinja`, else `chat_template.json`.
fn chat_template(dir: &Path, tcfg: &Json) -> Result<Option<String>, HfError> {
    let pick = |v: &Json| -> Option<String> {
        match v {
            Json::String(s) => Some(s.clone()),
            Json::Array(list) => list
                .iter()
                .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                .or_else(|| list.first())
                .and_then(|t| t.get("template"))
                .and_then(Json::as_str)
                .map(str::to_string),
            _ => None,
        }
    };
    if let Some(t) = tcfg.get("chat_template").and_then(pick) {
        return Ok(Some(t));
    }
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .map_err(|e| HfError::Io {
                path: jinja,
                source: e,
            });
    }
    let json = dir.join("chat_template.json");
    if json.is_file() {
        return Ok(read_json(&json)?.get("chat_template").and_then(pick));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn deepseek_v3_pre_tokenizer_is_recognised() {
        // As DeepSeek-V3's tokenizer.json spells it (CR/LF as JSON escapes).
        let text = r##"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false},
            {"type": "Split", "pattern": {"Regex": "[一-龥\u3040-ゟ゠-ヿ]+"}, "behavior": "Isolated", "invert": false},
            {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
        ]}}"##;
        let tj: Json = serde_json::from_str(text).unwrap();
        assert_eq!(detect_pre(&tj, &Json::Null), Ok("deepseek-v3"));
        let other = text.replace("{1,3}", "{1,2}");
        let tj: Json = serde_json::from_str(&other).unwrap();
        assert!(detect_pre(&tj, &Json::Null).is_err());
    }
}
