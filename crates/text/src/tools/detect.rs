//! Which tool-call markup a chat template uses, from the markers its Jinja source writes.
//! The order matters: several families share `<tool_call>` (Hermes, Qwen3-Coder, GLM) and
//! are told apart by what is inside.

use super::ToolFormat;

pub fn detect(source: &str) -> ToolFormat {
    let has = |s: &str| source.contains(s);
    if has(crate::harmony::CHANNEL) {
        ToolFormat::Harmony
    } else if has(super::deepseek::CALLS_BEGIN) || has(super::deepseek::CALL_BEGIN) {
        // V3/R1 write the call type before the separator, V3.1 the name.
        if has("function<｜tool▁sep｜>") || has("['type'] + '<｜tool▁sep｜>'") {
            ToolFormat::DeepSeekV3
        } else {
            ToolFormat::DeepSeekV31
        }
    } else if has(super::kimi::SECTION_BEGIN) {
        ToolFormat::KimiK2
    } else if has("<arg_key>") {
        ToolFormat::Glm45
    } else if has("<function=") && has("<parameter=") {
        ToolFormat::Qwen3Coder
    } else if has(super::mistral::TOOL_CALLS) {
        ToolFormat::Mistral
    } else if has(super::hermes::OPEN) {
        ToolFormat::Hermes
    } else if has(super::llama3::PYTHON_TAG)
        || (has("<|start_header_id|>") && has("\"parameters\""))
    {
        ToolFormat::Llama3
    } else {
        ToolFormat::Generic
    }
}
