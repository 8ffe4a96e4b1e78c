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
//! * Special ids from `tokenizer_config.json` (looked up among the added tokens), else from
//!   `config.json`'s `*_token_id`; `add_bos`/`add_eos` from the post-processor, else from
//!   `tokenizer_config.json`; the chat template from `tokenizer_config.json`,
//!   `chat_template.jinja` or `chat_template.json`.
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

// gguf TokenType values.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// The Llama 3 split pattern (`tokenizer.json` of Llama 3.x).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The Qwen 2 split pattern (single digits).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

struct Added {
    content: String,
    special: bool,
}

/// Writes the tokenizer keys of the directory into `asm`.
pub fn convert(dir: &Path, cfg: &Config, asm: &mut GgufAssembler) -> Result<(), HfError> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(HfError::MissingFile(path));
    }
    let tj = read_json(&path)?;
    let tcfg_path = dir.join("tokenizer_config.json");
    let tcfg = if tcfg_path.is_file() {
        read_json(&tcfg_path)?
    } else {
        Json::Null
    };
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
        by_id.insert(id, content.to_string());
        added.insert(
            id,
            Added {
                content: content.to_string(),
                special: a.get("special").and_then(Json::as_bool).unwrap_or(false),
            },
        );
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
                    "only byte-level BPE tokenizers are supported (SentencePiece-style BPE with \
                     byte fallback is not yet); convert with llama.cpp's convert_hf_to_gguf.py"
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
            "pre-tokenizer {kinds:?} is not one owl recognises (Llama 3, Qwen 2, SmolLM/StarCoder, \
             GPT-2); convert with llama.cpp's convert_hf_to_gguf.py"
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

/// Special ids and add-special flags, as gguf-py's `SpecialVocab` derives them.
fn special_tokens(
    tj: &Json,
    tcfg: &Json,
    cfg: &Config,
    added: &HashMap<u64, Added>,
    n_vocab: u64,
    asm: &mut GgufAssembler,
) {
    let mut content: HashMap<&str, String> = HashMap::new();
    for typ in ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] {
        if let Some(c) = entry_content(tcfg.get(format!("{typ}_token"))) {
            content.insert(typ, c);
        }
    }
    if !content.contains_key("bos") {
        if let Some(c) = content.get("cls").cloned() {
            content.insert("bos", c);
        }
    }
    if !content.contains_key("eos") {
        if let Some(c) = content.get("sep").cloned() {
            content.insert("eos", c);
        }
    }
    let mut add: HashMap<&str, bool> = HashMap::new();
    let processors = match tj.get("post_processor") {
        Some(p) if p.get("type").and_then(Json::as_str) == Some("Sequence") => p
            .get("processors")
            .and_then(Json::as_array)
            .map(|a| a.iter().collect::<Vec<_>>())
            .unwrap_or_default(),
        Some(Json::Null) | None => Vec::new(),
        Some(p) => vec![p],
    };
    for p in processors {
        match p.get("type").and_then(Json::as_str) {
            Some("ByteLevel") => {
                add.entry("bos").or_insert(false);
                add.entry("eos").or_insert(false);
            }
            Some("BertProcessing") | Some("RobertaProcessing") => {
                add.insert("bos", true);
                add.insert("eos", true);
                add.insert("sep", true);
            }
            Some("TemplateProcessing") => {
                let single = p.get("single").and_then(Json::as_array);
                let special_id = |v: Option<&Json>| {
                    v.and_then(|x| x.get("SpecialToken"))
                        .and_then(|s| s.get("id"))
                        .and_then(Json::as_str)
                        .map(str::to_string)
                };
                if let Some(single) = single.filter(|s| s.len() > 1) {
                    if let Some(first) = special_id(single.first()) {
                        let known = [content.get("bos"), content.get("cls")]
                            .iter()
                            .any(|c| c.is_some_and(|c| *c == first));
                        if !known && !content.contains_key("bos") {
                            content.insert("bos", first.clone());
                        }
                        add.insert("bos", known || content.get("bos") == Some(&first));
                    }
                    if let Some(last) = special_id(single.last()) {
                        if content.get("eos") != Some(&last) {
                            content.insert("eos", last.clone());
                        }
                        add.insert("eos", true);
                    }
                }
            }
            _ => {}
        }
    }
    for typ in ["bos", "eos", "sep"] {
        if !add.contains_key(typ) {
            if let Some(b) = tcfg.get(format!("add_{typ}_token")).and_then(Json::as_bool) {
                add.insert(typ, b);
            }
        }
    }
    let mut ids: HashMap<&str, u64> = HashMap::new();
    for (typ, c) in &content {
        if let Some((&id, _)) = added.iter().find(|(_, a)| a.content == *c) {
            ids.insert(typ, id);
        }
    }
    for typ in ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] {
        if ids.contains_key(typ) {
            continue;
        }
        if let Some(id) = cfg
            .json
            .get(format!("{typ}_token_id"))
            .and_then(Json::as_u64)
        {
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
        _ => "tokenizer.ggml.mask_token_id",
    };
    let mut sorted: Vec<_> = ids.into_iter().filter(|&(_, id)| id < n_vocab).collect();
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
