//! Pre-tokenizer regexes for byte-level BPE vocabularies, keyed by `tokenizer.ggml.pre`.
//!
//! The regexes are llama.cpp's (`llama-vocab.cpp`), which in turn are the `Split` patterns of
//! each model's `tokenizer.json`. Where llama.cpp rewrote a pattern for `std::regex` (no
//! `(?i:...)`, no `\p{Lu}`), the case-insensitive contractions keep llama.cpp's explicit
//! `'[sS]` form and case classes use the original `\p{Lu}`-style pattern, which Oniguruma
//! supports. Each list is applied in sequence: every regex splits each piece left by the
//! previous one into matches and the gaps between them (HF's `Isolated` behaviour), which is
//! exactly what llama.cpp's `unicode_regex_split` does.

/// What `tokenizer.ggml.pre` selects, besides the regexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PreConfig {
    /// llama.cpp's pre-tokenizer type the name resolved to, e.g. `"llama3"`.
    pub kind: &'static str,
    /// llama.cpp's `clean_spaces`: detokenize drops spaces before `?!.,` and some apostrophes.
    pub clean_spaces: bool,
    /// Look up a whole pre-tokenized word in the vocabulary before running merges.
    pub ignore_merges: bool,
    /// Default for `add_bos` when the file does not say.
    pub add_bos: bool,
    /// llama.cpp drops the default BOS id for this family (ChatGLM).
    pub no_default_bos: bool,
}

const fn cfg(kind: &'static str, clean_spaces: bool) -> PreConfig {
    PreConfig {
        kind,
        clean_spaces,
        ignore_merges: false,
        add_bos: false,
        no_default_bos: false,
    }
}

/// llama.cpp's `default` pre-tokenizer (also used for SentencePiece vocabularies).
pub(crate) const DEFAULT: PreConfig = cfg("default", true);

/// Resolves a `tokenizer.ggml.pre` value the way llama.cpp's `llama_vocab::load` does.
/// A missing value means `"default"`; an unknown name gives `None`.
pub(crate) fn resolve(pre: Option<&str>) -> Option<PreConfig> {
    let c = match pre.unwrap_or("default") {
        "default" => DEFAULT,
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => PreConfig {
            ignore_merges: true,
            add_bos: true,
            ..cfg("llama3", true)
        },
        "minicpm5" => PreConfig {
            ignore_merges: true,
            ..cfg("minicpm5", true)
        },
        "deepseek-llm" => cfg("deepseek-llm", false),
        "deepseek-coder" => cfg("deepseek-coder", false),
        "deepseek-v3" | "hunyuan-dense" | "hy_v4" | "joyai-llm" => cfg("deepseek-v3", false),
        "falcon" => cfg("falcon", true),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "exaone4" => {
            cfg("gpt2", true)
        }
        "trillion" | "granite-docling" => cfg("gpt2", false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            cfg("starcoder", true)
        }
        "command-r" | "smollm" => cfg("starcoder", false),
        "jais-2" => cfg("jais2", true),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => {
            cfg("qwen2", false)
        }
        "stablelm2" | "megrez" => cfg("qwen2", true),
        "grok-2" => cfg("qwen2", false),
        "qwen35" => cfg("qwen35", false),
        "dbrx" | "smaug-bpe" => cfg("llama3", true),
        "poro-chat" => cfg("poro", false),
        "bloom" | "gpt3-finnish" => cfg("poro", true),
        "chatglm-bpe" => PreConfig {
            no_default_bos: true,
            ..cfg("llama3", true)
        },
        "glm4" | "glm5" => PreConfig {
            no_default_bos: true,
            ignore_merges: true,
            ..cfg("llama3", true)
        },
        "viking" => cfg("viking", false),
        "tekken" => PreConfig {
            ignore_merges: true,
            add_bos: true,
            ..cfg("tekken", false)
        },
        "exaone-moe" => cfg("exaone-moe", true),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => cfg("gpt-4o", false),
        "tiny_aya" | "cohere2moe" => cfg("tiny-aya", false),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => cfg("bailingmoe", false),
        "seed-coder" => cfg("seed-coder", false),
        "ufakzeka" => cfg("ufakzeka", false),
        "laguna" => cfg("laguna", false),
        _ => return None,
    };
    Some(c)
}

const CONTRACTIONS: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_TAIL: &str =
    r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_TAIL: &str =
    r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PORO: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";
const DEEPSEEK3_MAIN: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;
const DEEPSEEK_LLM_LETTERS: &str = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
const DEEPSEEK_LLM_PUNCT: &str = r"\s?[!-/:-~！-／：-～‘-‟　-。]+";
const CJK: &str = "[一-龥ࠀ-一가-\u{d7ff}]+";
const UPPER: &str = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]";
const LOWER: &str = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]";

/// The regexes, in application order, for a resolved pre-tokenizer kind.
pub(crate) fn regexes(kind: &str) -> Vec<String> {
    let s = |x: &str| x.to_string();
    let cased = |tail: &str| {
        format!(
            r"[^\r\n\p{{L}}\p{{N}}]?{UPPER}*{LOWER}+{tail}|[^\r\n\p{{L}}\p{{N}}]?{UPPER}+{LOWER}*{tail}"
        )
    };
    match kind {
        "llama3" => vec![format!("{CONTRACTIONS}{LLAMA3_TAIL}")],
        "jais2" => vec![format!(
            r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}{{1,3}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s{{512}}(?!\S)|\s{{256}}(?!\S)|\s{{128}}(?!\S)|\s{{64}}(?!\S)|\s{{32}}(?!\S)|\s{{16}}(?!\S)|\s{{8}}(?!\S)|\s{{4}}(?!\S)|\s{{1,2}}(?!\S)|\s{{1}}"
        )],
        "deepseek-llm" => vec![
            s(r"[\r\n]"),
            s(DEEPSEEK_LLM_LETTERS),
            s(DEEPSEEK_LLM_PUNCT),
            // std::regex's `$` (no multiline) is the end of the piece: Oniguruma's `\z`.
            s(r"\s+\z"),
            s(CJK),
            s(r"\p{N}+"),
        ],
        "deepseek-v3" => vec![s(r"\p{N}{1,3}"), s("[一-龥぀-ゟ゠-ヿ]+"), s(DEEPSEEK3_MAIN)],
        "deepseek-coder" => vec![
            s(r"[\r\n]"),
            s(r"\s?\p{L}+"),
            s(r"\s?\p{P}+"),
            s(CJK),
            s(r"\p{N}"),
        ],
        "falcon" => vec![s(r"[\p{P}\$\+<=>\^~\|`]+"), s(GPT2), s("[0-9][0-9][0-9]")],
        "starcoder" => vec![s(r"\p{N}"), s(GPT2)],
        "gpt2" => vec![s(GPT2)],
        "qwen2" => vec![format!("{CONTRACTIONS}{QWEN2_TAIL}")],
        "qwen35" => vec![format!(
            r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?[\p{{L}}\p{{M}}]+|\p{{N}}| ?[^\s\p{{L}}\p{{M}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        )],
        "poro" => vec![s(PORO)],
        "viking" => vec![s(PORO), s(r"\p{N}")],
        "tekken" => vec![format!(
            r"{}|\p{{N}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            cased("")
        )],
        "gpt-4o" => vec![format!(
            r"{}|\p{{N}}{{1,3}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            cased(&format!("{CONTRACTIONS}?"))
        )],
        "tiny-aya" => vec![
            s(r"\d{1,3}(?=(?:\d{3})*\b)"),
            format!(
                r"{}|\p{{N}}{{1,3}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
                cased(&format!("{CONTRACTIONS}?"))
            ),
        ],
        "minicpm5" => vec![
            s(r"\p{N}{1,3}"),
            format!(
                r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}+| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
            ),
        ],
        "exaone-moe" => vec![format!(
            r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?(?:\p{{L}}\p{{M}}*(?: \p{{L}}\p{{M}}*)*)+|\p{{N}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+"
        )],
        "bailingmoe" => vec![s(
            r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",
        )],
        "seed-coder" => vec![format!(
            r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}{{1}}| ?[^\s\p{{L}}\p{{N}}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"
        )],
        "ufakzeka" => vec![s(&QWEN2_TAIL[1..])],
        "laguna" => vec![s(r"[^\n]+|[\n]+"), format!("{CONTRACTIONS}{QWEN2_TAIL}")],
        // "default" and anything unknown: llama.cpp's default list.
        _ => vec![
            s(r"[\p{P}\$\+<=>\^~\|]+"),
            s(GPT2),
            s(r"\p{N}+"),
            s("[0-9][0-9][0-9]"),
        ],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KINDS: &[&str] = &[
        "default",
        "llama3",
        "jais2",
        "deepseek-llm",
        "deepseek-v3",
        "deepseek-coder",
        "falcon",
        "starcoder",
        "gpt2",
        "qwen2",
        "qwen35",
        "poro",
        "viking",
        "tekken",
        "gpt-4o",
        "tiny-aya",
        "minicpm5",
        "exaone-moe",
        "bailingmoe",
        "seed-coder",
        "ufakzeka",
        "laguna",
    ];

    #[test]
    fn every_regex_compiles() {
        for kind in KINDS {
            for r in regexes(kind) {
                tokenizers::pre_tokenizers::split::Split::new(
                    tokenizers::pre_tokenizers::split::SplitPattern::Regex(r.clone()),
                    tokenizers::SplitDelimiterBehavior::Isolated,
                    false,
                )
                .unwrap_or_else(|e| panic!("{kind}: {r}: {e}"));
            }
        }
    }

    #[test]
    fn names_resolve_like_llama_cpp() {
        assert_eq!(resolve(None).unwrap().kind, "default");
        let l3 = resolve(Some("llama-bpe")).unwrap();
        assert_eq!(l3.kind, "llama3");
        assert!(l3.ignore_merges && l3.add_bos && l3.clean_spaces);
        let smol = resolve(Some("smollm")).unwrap();
        assert_eq!(smol.kind, "starcoder");
        assert!(!smol.clean_spaces);
        assert!(resolve(Some("no-such-pre")).is_none());
    }
}
