#!/usr/bin/env python3
"""Generate llama.cpp reference fixtures for owl (tests/fixtures/reference/).

What it makes
-------------
* ``generation.json`` -- for a fixed set of prompts (raw completions, code,
  Chinese, arithmetic, a ~600-token English passage, chat-formatted turns
  rendered with the model's own ``tokenizer.chat_template``, emoji/accents):
  the exact prompt text, llama.cpp's tokenization of it, then 48 greedy steps
  (argmax of the raw logits, lowest id on ties, *not* stopping at EOG), and at
  every step the top-10 ``[token_id, logit]`` pairs of the logits llama.cpp
  computed for that step (full float32 precision, stored as JSON numbers whose
  shortest repr round-trips to the exact float32 value).
* ``tokenize.json`` -- ``llama_tokenize`` (vocab level) results for tricky
  strings, and a detokenize section: ``llama_token_to_piece`` concatenations
  (and ``llama_detokenize``) for several id lists.

Everything goes through the *low-level* ctypes API of ``llama-cpp-python``
(``llama_cpp.llama_cpp``), never the high-level ``Llama`` class, so the exact
settings are known:

* context: n_ctx=2048, n_batch=512, n_ubatch=512, n_seq_max=1,
  n_threads=n_threads_batch=2, flash_attn_type=LLAMA_FLASH_ATTN_TYPE_DISABLED,
  type_k/type_v left at their default (F16), CPU only;
* a fresh context per prompt; the whole prompt is evaluated in ONE
  ``llama_decode`` batch (positions 0..n-1, seq 0, logits requested only for
  the last token), then one token per ``llama_decode``.  A prompt longer than
  n_batch (the ~600-token passage) is fed as consecutive ``llama_decode`` calls
  of at most 512 tokens, as llama.cpp's tools do (``prompt_batches`` records
  the sizes).

How to run (developer machine only -- never in CI)
--------------------------------------------------
    pip install -r scripts/requirements-dev.txt
        # = llama-cpp-python==0.3.36 (builds llama.cpp 0c1e57098 from source,
        #   15-25 min on 2 cores), jinja2, numpy.  We built it with
        #   CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF"
    python3 scripts/make_references.py --model PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf

    # gemma-3-270m (no chat template in its GGUF: llama.cpp's built-in "gemma" one renders the
    # chat prompts), generation only, for crates/owl/tests/gemma3_270m.rs:
    python3 scripts/make_references.py --model ~/.owl/models/gemma-3-270m-q4_k_m.gguf \
        --builtin-template gemma --generation-only gemma3-270m-generation.json

``--model`` defaults to ``$OWL_HOME/models/SmolLM2-135M-Instruct.Q4_1.gguf``
when OWL_HOME is set; otherwise it is required.  ``--out`` defaults to
``tests/fixtures/reference`` next to this script's repository root.
``--bench`` additionally measures llama.cpp's speed (pp512 / tg128, median of
3 after one warm-up, same context settings) and prints it; nothing is written.

The output is deterministic for a given llama.cpp build + CPU (the header's
``generated_on`` date aside).  Logits depend on the SIMD paths llama.cpp picks
(``system_info`` in the header), so regenerate on a comparable x86-64 AVX2
machine if they ever need to change.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    import llama_cpp
    import llama_cpp.llama_cpp as L
except ImportError:  # pragma: no cover
    sys.exit("llama-cpp-python is not installed: pip install llama-cpp-python==0.3.36")

import jinja2
import jinja2.ext
import jinja2.sandbox
from machine_info import cpu_model

EXPECTED_LLAMA_CPP_PYTHON = "0.3.36"
# llama.cpp commit vendored by each llama-cpp-python release (from its CHANGELOG).
VENDORED_LLAMA_CPP_COMMIT = {"0.3.36": "0c1e57098"}

N_CTX = 2048
N_BATCH = 512
N_UBATCH = 512
N_THREADS = 2
N_GEN = 48
TOP_K = 10
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# --------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------

PASSAGE = """\
The history of lighthouses is, in many ways, the history of maritime trade itself. Long before electricity, sailors relied on bonfires lit on hilltops to warn them away from rocks and shoals. The most famous early example was the Pharos of Alexandria, completed around 280 BC under Ptolemy II. Ancient writers claimed it stood more than 100 meters tall, and its light, reflected by polished bronze mirrors, could supposedly be seen from 50 kilometers away. It survived for over a thousand years before a series of earthquakes between 956 and 1323 AD reduced it to ruins.

During the Middle Ages, lighthouses were rare and often maintained by monks or local lords, who sometimes charged ships a toll for the service. The Tower of Hercules in northern Spain, built by the Romans in the first century, is the oldest lighthouse still in use today. By the seventeenth century, the growth of Atlantic commerce made reliable lights a matter of economic survival. England's Eddystone Lighthouse, standing on a treacherous reef fourteen miles off Plymouth, was rebuilt four times: the first wooden tower was swept away in the Great Storm of 1703, taking its designer, Henry Winstanley, with it.

The real revolution came in 1822, when the French physicist Augustin-Jean Fresnel invented a lens made of concentric rings of glass prisms. A traditional lens thick enough to focus a powerful beam would have been impossibly heavy, but Fresnel's design bent the light using only thin slices of glass. A first-order Fresnel lens could be more than 3.7 meters tall and weigh over six tonnes, yet it sent a beam visible some 20 miles out to sea. Within a few decades, nearly every major coastline in the world was lit by one.

Keeping the light burning was hard, lonely work. Keepers trimmed wicks, polished brass, wound the clockwork that rotated the lens, and recorded the weather every few hours. Some, like Ida Lewis of Rhode Island, became national heroes; she was credited with saving at least 18 people from the cold waters of Newport Harbor. Others endured months of isolation, storms that shook the tower, and the constant smell of kerosene.

Automation changed everything. Electric lamps replaced oil, and by the late twentieth century radio beacons, radar, and finally satellite navigation had made the keeper's job almost unnecessary. The last manned lighthouse in the United States, Boston Light, was automated in 1998, although a keeper still lives there as a symbolic guardian. Today many old towers have become museums, hotels, or simply landmarks, reminders of a time when a single flame at the edge of the sea was the difference between a safe harbor and a shipwreck.

In one sentence, the main idea of this passage is that"""

# (name, kind, payload).  kind "raw": payload is the exact text;
# kind "chat": payload is a list of messages rendered with the GGUF template.
PROMPTS = [
    ("raw_capital_france", "raw", "The capital of France is"),
    ("raw_fibonacci", "raw", "def fibonacci(n):"),
    ("raw_counting", "raw", "1, 2, 3, 4,"),
    ("raw_en_question", "raw",
     "Question: Why do leaves change color in the autumn?\nAnswer:"),
    ("raw_code_python", "raw",
     "def is_prime(n: int) -> bool:\n"
     "    \"\"\"Return True if n is a prime number, False otherwise.\"\"\"\n"
     "    if n < 2:\n"
     "        return False\n"),
    ("raw_arithmetic", "raw",
     "Q: What is 17 + 25?\nA: 42\nQ: What is 9 * 8?\nA: 72\nQ: What is 144 / 12?\nA:"),
    ("raw_chinese", "raw", "中国的首都是北京。北京是一座历史悠久的城市，"),
    ("raw_emoji_accents", "raw",
     "Crème brûlée at the café 🍮☕ — naïve résumé: Ærøskøbing 🇩🇰 👩🏽‍💻 is"),
    ("raw_passage_600", "raw", PASSAGE),
    ("chat_capital", "chat",
     [{"role": "user", "content": "What is the capital of France?"}]),
    ("chat_code", "chat",
     [{"role": "user",
       "content": "Write a Python function that checks whether a string is a palindrome."}]),
    ("chat_chinese", "chat",
     [{"role": "user", "content": "请用一句话介绍一下你自己。"}]),
    ("chat_multi_turn_system", "chat",
     [{"role": "system",
       "content": "You are a concise assistant. Answer in at most two sentences."},
      {"role": "user", "content": "What is photosynthesis?"},
      {"role": "assistant",
       "content": "Photosynthesis is the process by which plants use sunlight, water and "
                  "carbon dioxide to make glucose and oxygen."},
      {"role": "user", "content": "Why is it important for animals?"}]),
    ("chat_capital_with_system", "chat",
     [{"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": "What is the capital of Japan? Answer briefly."}]),
    ("chat_math", "chat",
     [{"role": "user", "content": "If a train travels 60 km in 45 minutes, what is its average speed in km/h?"}]),
]

# Tokenizer cases: (name, text, add_special, parse_special)
TOKENIZE_CASES = [
    ("empty", "", False, False),
    ("empty_add_special", "", True, False),
    ("single_space", " ", False, False),
    ("lone_newline", "\n", False, False),
    ("hello", "hello", False, False),
    ("leading_space", " hello", False, False),
    ("leading_space_add_special", " hello world", True, False),
    ("spaces_around_and_repeated", "  hello   world  ", False, False),
    ("many_spaces", "a          b", False, False),
    ("newlines_tabs_crlf", "a\n\nb\tc\r\n", False, False),
    ("newline_runs", "line1\n\n\n\nline2\n \n\t\tend", False, False),
    ("emoji_simple", "I love pizza 🍕🍕 and 😀!", False, False),
    ("emoji_zwj_skin", "👩‍👩‍👧‍👦 family, 👍🏿 thumbs, 🧑🏽‍🚀 astronaut, 🏳️‍🌈 flag", False, False),
    ("cjk_chinese", "我喜欢学习机器学习和自然语言处理。", False, False),
    ("japanese", "東京は日本の首都です。ひらがなとカタカナ、ラーメン！", False, False),
    ("korean", "안녕하세요, 세계! 한국어 토큰화 테스트입니다.", False, False),
    ("accented_latin", "naïve café Ærøskøbing", False, False),
    ("accented_more", "Ångström, façade, jalapeño, Straße, Łódź, déjà vu", False, False),
    ("arabic", "مرحبا بالعالم، كيف حالك؟", False, False),
    ("hebrew", "שלום עולם, מה שלומך?", False, False),
    ("digits_long", "1234567890", False, False),
    ("digits_decimal", "3.14159", False, False),
    ("digits_grouped", "1,000,000", False, False),
    ("numbers_mixed", "In 2024, 37.5% of 8,192 users paid $1,299.99 (ID 000123).", False, False),
    ("code_indented",
     "def f(x):\n    if x > 0:\n        return x * 2\n    else:\n\treturn -x  # tab\n", False, False),
    ("code_braces", "for (int i = 0; i < n; ++i) { sum += a[i]; }", False, False),
    ("special_text_parse", "hello <|im_start|>user\nhi<|im_end|>", False, True),
    ("special_text_noparse", "hello <|im_start|>user\nhi<|im_end|>", False, False),
    ("special_text_parse_add_special", "hello <|im_start|>user\nhi<|im_end|>", True, True),
    ("endoftext_parse", "<|endoftext|>", False, True),
    ("endoftext_noparse", "<|endoftext|>", False, False),
    ("contractions", "I'm, you're, they'll, it's, we've, she'd, don't, CAN'T", False, False),
    ("punctuation_runs", "!!!???...---***,,,;;;", False, False),
    ("url", "https://example.com/path/to/page?query=1&x=y#frag", False, False),
    ("email_path", "mail me at john.doe+test@example.org or see C:\\Users\\doe\\file.txt", False, False),
    ("mixed_scripts", "Hello世界Привет мир مرحبا 123abc ΑΒΓ", False, False),
    ("very_long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3, False, False),
    ("repeated_char", "a" * 64, False, False),
    ("trailing_whitespace", "end of line   \n", False, False),
    ("unicode_spaces", "non\u00a0breaking\u2003em\u3000ideographic", False, False),
]

# Id lists for the detokenize section.  Strings are tokenized first (with the
# same flags as tokenize), explicit id lists are used as-is.
DETOKENIZE_FROM_TEXT = [
    ("hello_world", " hello world", False),
    ("emoji_zwj", "👩‍👩‍👧‍👦 👍🏿", False),
    ("cjk", "我喜欢学习机器学习。", False),
    ("accented", "naïve café Ærøskøbing", False),
    ("code", "def f(x):\n\treturn x  # ok\n", False),
    ("special_parsed", "<|im_start|>user\nhi<|im_end|>\n", True),
]
DETOKENIZE_IDS = [
    ("special_ids", [0, 1, 2]),
    ("assorted_ids", [100, 1000, 2000, 10000, 30000, 49151]),
]


# --------------------------------------------------------------------------
# Helpers around the low-level API
# --------------------------------------------------------------------------

_LOG_CB = None


def quiet_logs(verbose: bool) -> None:
    global _LOG_CB
    if verbose:
        return

    @L.llama_log_callback
    def _cb(level, text, user_data):  # noqa: ARG001
        pass

    _LOG_CB = _cb  # keep a reference alive
    L.llama_log_set(_LOG_CB, ctypes.c_void_p(0))


def tokenize(vocab, text: str, add_special: bool, parse_special: bool) -> list[int]:
    data = text.encode("utf-8")
    n_max = len(data) + 16
    buf = (L.llama_token * n_max)()
    n = L.llama_tokenize(vocab, data, len(data), buf, n_max, add_special, parse_special)
    if n < 0:
        n_max = -n
        buf = (L.llama_token * n_max)()
        n = L.llama_tokenize(vocab, data, len(data), buf, n_max, add_special, parse_special)
    assert n >= 0, n
    return [int(buf[i]) for i in range(n)]


def token_to_piece(vocab, tok: int, special: bool) -> bytes:
    buf = ctypes.create_string_buffer(64)
    n = L.llama_token_to_piece(vocab, tok, buf, 64, 0, special)
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = L.llama_token_to_piece(vocab, tok, buf, -n, 0, special)
    assert n >= 0
    return buf.raw[:n]


def detokenize(vocab, toks: list[int], remove_special: bool, unparse_special: bool) -> bytes:
    arr = (L.llama_token * max(1, len(toks)))(*toks)
    cap = 64 + 32 * len(toks)
    buf = ctypes.create_string_buffer(cap)
    n = L.llama_detokenize(vocab, arr, len(toks), buf, cap, remove_special, unparse_special)
    if n < 0:
        cap = -n
        buf = ctypes.create_string_buffer(cap)
        n = L.llama_detokenize(vocab, arr, len(toks), buf, cap, remove_special, unparse_special)
    assert n >= 0
    return buf.raw[:n]


def utf8_or_none(b: bytes):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def meta_str(model, key: str):
    buf = ctypes.create_string_buffer(1 << 16)
    n = L.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
    if n < 0:
        return None
    return buf.raw[:n].decode("utf-8")


def context_params():
    cp = L.llama_context_default_params()
    cp.n_ctx = N_CTX
    cp.n_batch = N_BATCH
    cp.n_ubatch = N_UBATCH
    cp.n_seq_max = 1
    cp.n_threads = N_THREADS
    cp.n_threads_batch = N_THREADS
    cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
    cp.embeddings = False
    cp.no_perf = False
    return cp


def struct_to_dict(s) -> dict:
    out = {}
    for name, ctype in s._fields_:
        v = getattr(s, name)
        if isinstance(v, (bool, int, float)):
            out[name] = v
        elif v is None:
            out[name] = None
        else:  # pointers / callbacks
            out[name] = None if not v else "<non-null pointer>"
    return out


def make_batch(tokens: list[int], pos0: int, logits_last_only: bool = True):
    n = len(tokens)
    b = L.llama_batch_init(n, 0, 1)
    b.n_tokens = n
    for i, t in enumerate(tokens):
        b.token[i] = t
        b.pos[i] = pos0 + i
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = 0
        b.logits[i] = 1 if (i == n - 1 or not logits_last_only) else 0
    return b


def decode(ctx, tokens: list[int], pos0: int) -> None:
    b = make_batch(tokens, pos0)
    try:
        rc = L.llama_decode(ctx, b)
    finally:
        L.llama_batch_free(b)
    if rc != 0:
        raise RuntimeError(f"llama_decode returned {rc}")


def last_logits(ctx, n_vocab: int) -> np.ndarray:
    ptr = L.llama_get_logits_ith(ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float32, copy=True)


def topk(logits: np.ndarray, k: int) -> list[list]:
    # descending logit, ascending id on ties
    order = np.lexsort((np.arange(logits.shape[0]), -logits))[:k]
    out = []
    for i in order:
        v = float(logits[i])
        if not math.isfinite(v):
            raise ValueError(f"non-finite logit {v} for token {i}")
        out.append([int(i), v])
    return out


def render_chat(template_src: str, messages: list[dict]) -> str:
    # Same environment settings as transformers' apply_chat_template.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    return env.from_string(template_src).render(messages=messages, add_generation_prompt=True)


# For a model whose GGUF has no chat template (gemma-3-270m): the name of a llama.cpp built-in
# template (`--builtin-template`, e.g. "gemma") that renders the chat prompts instead.
BUILTIN_TEMPLATE: str | None = None


def llama_builtin_chat(model, messages: list[dict]):
    """llama.cpp's own (non-jinja) template application, for a cross-check; with the model's
    template, else with BUILTIN_TEMPLATE by name."""
    tmpl = L.llama_model_chat_template(model, None)
    if not tmpl and BUILTIN_TEMPLATE:
        tmpl = BUILTIN_TEMPLATE.encode()
    if not tmpl:
        return None
    keep = [(m["role"].encode(), m["content"].encode()) for m in messages]
    arr = (L.llama_chat_message * len(keep))(*[L.llama_chat_message(r, c) for r, c in keep])
    cap = 4096
    buf = ctypes.create_string_buffer(cap)
    n = L.llama_chat_apply_template(tmpl, arr, len(keep), True, buf, cap)
    if n > cap:
        buf = ctypes.create_string_buffer(n)
        n = L.llama_chat_apply_template(tmpl, arr, len(keep), True, buf, n)
    if n < 0:
        return None
    return buf.raw[:n].decode("utf-8")


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                keep = ("avx", "fma", "f16c", "sse", "amx", "vnni", "bmi")
                return sorted(f for f in flags if f.startswith(keep))
    except OSError:
        pass
    return []


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# JSON writer: readable, compact (scalar lists and [id, logit] rows on one line)
# --------------------------------------------------------------------------

def _is_flat(x) -> bool:
    return isinstance(x, list) and all(
        not isinstance(e, (list, dict)) or (isinstance(e, list) and all(not isinstance(f, (list, dict)) for f in e))
        for e in x)


def to_json(obj, indent: int = 0) -> str:
    pad = "  " * indent
    pad1 = "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad1}{json.dumps(k, ensure_ascii=False)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if _is_flat(obj):
            return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        items = [pad1 + to_json(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, obj) -> None:
    text = to_json(obj) + "\n"
    # round-trip check: floats must survive exactly
    assert json.loads(text) == json.loads(json.dumps(obj, ensure_ascii=False)), path
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------

def generate(model, vocab, n_vocab: int, prompt_tokens: list[int]) -> dict:
    ctx = L.llama_init_from_model(model, context_params())
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    try:
        assert L.llama_n_ctx(ctx) == N_CTX
        # The whole prompt in one llama_decode call when it fits in n_batch;
        # longer prompts are fed in consecutive n_batch-sized calls, exactly
        # as llama.cpp's own tools do (logits only for the very last token).
        batches = []
        pos = 0
        while pos < len(prompt_tokens):
            chunk = prompt_tokens[pos:pos + N_BATCH]
            decode(ctx, chunk, pos)
            batches.append(len(chunk))
            pos += len(chunk)
        tokens, top, eog = [], [], []
        for step in range(N_GEN):
            logits = last_logits(ctx, n_vocab)
            tok = int(np.argmax(logits))  # first max = lowest id on ties
            top.append(topk(logits, TOP_K))
            assert top[-1][0][0] == tok
            tokens.append(tok)
            if L.llama_vocab_is_eog(vocab, tok):
                eog.append(step)
            if step + 1 < N_GEN:
                decode(ctx, [tok], pos)
                pos += 1
    finally:
        L.llama_free(ctx)
    text_bytes = detokenize(vocab, tokens, False, True)
    return {
        "prompt_batches": batches,
        "tokens": tokens,
        "eog_steps": eog,
        "first_eog_step": eog[0] if eog else None,
        "text": text_bytes.decode("utf-8", errors="replace"),
        "text_is_valid_utf8": utf8_or_none(text_bytes) is not None,
        "top_logits": top,
    }


def build_generation(model, vocab, n_vocab: int, header: dict) -> tuple[dict, list[str]]:
    template_src = L.llama_model_chat_template(model, None)
    template_src = template_src.decode("utf-8") if template_src else None
    notes = []
    cases = []
    for name, kind, payload in PROMPTS:
        if kind == "chat" and not template_src:
            assert BUILTIN_TEMPLATE, "model has no chat template (see --builtin-template)"
            prompt = llama_builtin_chat(model, payload)
            assert prompt, f"llama.cpp has no built-in template {BUILTIN_TEMPLATE!r}"
            builtin = prompt
            parse_special = True
        elif kind == "chat":
            prompt = render_chat(template_src, payload)
            builtin = llama_builtin_chat(model, payload)
            parse_special = True
        else:
            prompt = payload
            builtin = None
            parse_special = False
        add_special = True
        ptoks = tokenize(vocab, prompt, add_special, parse_special)
        t0 = time.time()
        gen = generate(model, vocab, n_vocab, ptoks)
        dt = time.time() - t0
        case = {"name": name, "kind": kind}
        if kind == "chat":
            case["messages"] = payload
            # llama.cpp's non-jinja chatml does not insert SmolLM's default
            # system message, so this is false exactly when there is none.
            case["same_as_llama_chat_apply_template"] = builtin == prompt
        case.update({
            "prompt": prompt,
            "add_special": add_special,
            "parse_special": parse_special,
            "n_prompt_tokens": len(ptoks),
            "prompt_tokens": ptoks,
        })
        case.update(gen)
        cases.append(case)
        tops = gen["top_logits"]
        gaps = [(i, s[0][1] - s[1][1]) for i, s in enumerate(tops)]
        near = [(i, g) for i, g in gaps if g < 1e-3]
        print(f"[gen] {name:24s} prompt={len(ptoks):4d} tok  eog={gen['first_eog_step']}  "
              f"min_gap={min(g for _, g in gaps):.3g}  {dt:.1f}s  {gen['text'][:70]!r}", file=sys.stderr)
        for i, g in near:
            notes.append(f"{name}: near-tie at step {i}: top-2 gap {g:.3g} "
                         f"({tops[i][0][0]} vs {tops[i][1][0]})")
    doc = dict(header)
    doc["generation"] = {
        "n_generate": N_GEN,
        "top_k_logged": TOP_K,
        "sampling": "greedy: argmax of raw logits, lowest token id on ties; "
                    "generation does not stop at EOG (eog_steps lists where EOG tokens were chosen)",
        "chat_template_rendering": "jinja2 ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) "
                                   "on GGUF tokenizer.chat_template, messages=..., add_generation_prompt=True"
                                   if template_src else
                                   f"the model has no template: llama_chat_apply_template({BUILTIN_TEMPLATE!r}, "
                                   "messages, add_ass=true), llama.cpp's built-in template",
        "text_field": "llama_detokenize(tokens, remove_special=false, unparse_special=true), "
                      "invalid UTF-8 replaced by U+FFFD (informational only; tokens are the reference)",
        "top_logits_format": "per step: TOP_K rows [token_id, logit], logit descending, id ascending on ties; "
                             "logits are float32 values written with shortest round-trip repr",
        "procedure": "fresh llama_context per prompt; llama_decode(whole prompt as one batch, positions 0..n-1, "
                     "seq_id 0, logits only for last token) -- prompts longer than n_batch=512 are fed as "
                     "consecutive llama_decode calls of at most 512 tokens (sizes in prompt_batches); then for each step: argmax of "
                     "llama_get_logits_ith(ctx,-1), llama_decode(that token alone at next position)",
    }
    doc["notes"] = notes
    doc["cases"] = cases
    return doc, notes


# --------------------------------------------------------------------------
# Tokenizer fixtures
# --------------------------------------------------------------------------

def build_tokenize(vocab, header: dict) -> dict:
    cases = []
    for name, text, add_special, parse_special in TOKENIZE_CASES:
        toks = tokenize(vocab, text, add_special, parse_special)
        cases.append({"name": name, "text": text, "add_special": add_special,
                      "parse_special": parse_special, "tokens": toks})
    detok = []
    lists = [(n, tokenize(vocab, t, False, ps), t) for n, t, ps in DETOKENIZE_FROM_TEXT]
    lists += [(n, ids, None) for n, ids in DETOKENIZE_IDS]
    # a list that ends in the middle of a multi-byte character
    emoji = tokenize(vocab, "🍕", False, False)
    if len(emoji) > 1:
        lists.append(("partial_utf8", emoji[:-1], None))
    for name, ids, source in lists:
        entry = {"name": name, "tokens": ids}
        if source is not None:
            entry["source_text"] = source
        for special in (False, True):
            pieces = [token_to_piece(vocab, t, special) for t in ids]
            cat = b"".join(pieces)
            key = "special" if special else "plain"
            entry[f"pieces_hex_{key}"] = [p.hex() for p in pieces]
            entry[f"concat_hex_{key}"] = cat.hex()
            entry[f"concat_text_{key}"] = utf8_or_none(cat)
        d = detokenize(vocab, ids, False, True)
        entry["llama_detokenize_unparse_special_hex"] = d.hex()
        detok.append(entry)
    doc = dict(header)
    doc["tokenize"] = {
        "api": "llama_tokenize(vocab, text_utf8, len, buf, n_max, add_special, parse_special)",
        "note": "model add_bos=false/add_eos=false, so add_special=true adds nothing for this model",
        "cases": cases,
    }
    doc["detokenize"] = {
        "api": "llama_token_to_piece(vocab, id, buf, len, lstrip=0, special) per token, bytes concatenated; "
               "*_plain: special=false, *_special: special=true; concat_text_* is null when the bytes are "
               "not valid UTF-8. llama_detokenize_*: llama_detokenize(remove_special=false, unparse_special=true)",
        "cases": detok,
    }
    return doc


# --------------------------------------------------------------------------
# Benchmark (printed only)
# --------------------------------------------------------------------------

def bench(model, vocab, n_vocab: int, reps: int = 3) -> dict:
    rng = np.random.default_rng(1234)
    n_tok = L.llama_vocab_n_tokens(vocab)
    # like llama-bench: random (non-special) tokens
    pp_tokens = [int(t) for t in rng.integers(100, n_tok, size=512)]

    def run_pp():
        ctx = L.llama_init_from_model(model, context_params())
        try:
            t0 = time.perf_counter()
            decode(ctx, pp_tokens, 0)
            L.llama_synchronize(ctx)
            return time.perf_counter() - t0
        finally:
            L.llama_free(ctx)

    def run_tg(n=128):
        ctx = L.llama_init_from_model(model, context_params())
        try:
            tok = 1000
            t0 = time.perf_counter()
            for i in range(n):
                decode(ctx, [tok], i)
                tok = int(np.argmax(last_logits(ctx, n_vocab)))
            L.llama_synchronize(ctx)
            return time.perf_counter() - t0
        finally:
            L.llama_free(ctx)

    run_pp(); run_tg(16)  # warm-up
    pp = [512 / run_pp() for _ in range(reps)]
    tg = [128 / run_tg() for _ in range(reps)]
    return {"pp512_tok_s": statistics.median(pp), "pp512_all": pp,
            "tg128_tok_s": statistics.median(tg), "tg128_all": tg}


# --------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None,
                    help=f"GGUF model (default: $OWL_HOME/models/{DEFAULT_MODEL_NAME})")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "tests" / "fixtures" / "reference")
    ap.add_argument("--bench", action="store_true", help="also measure pp512/tg128 (printed only)")
    ap.add_argument("--bench-only", action="store_true", help="only run the benchmark")
    ap.add_argument("--bench-reps", type=int, default=3, help="benchmark repetitions (median reported)")
    ap.add_argument("--verbose", action="store_true", help="show llama.cpp logs")
    ap.add_argument("--builtin-template", metavar="NAME",
                    help="for a model without tokenizer.chat_template: render the chat prompts "
                         "with llama.cpp's built-in template NAME (e.g. gemma)")
    ap.add_argument("--generation-only", metavar="FILE",
                    help="write only the generation references, to FILE in --out "
                         "(e.g. gemma3-270m-generation.json)")
    args = ap.parse_args()
    global BUILTIN_TEMPLATE
    BUILTIN_TEMPLATE = args.builtin_template

    if args.model is None:
        home = os.environ.get("OWL_HOME")
        if not home:
            ap.error("--model is required (or set OWL_HOME)")
        args.model = Path(home) / "models" / DEFAULT_MODEL_NAME
    if not args.model.is_file():
        ap.error(f"model not found: {args.model}")

    if llama_cpp.__version__ != EXPECTED_LLAMA_CPP_PYTHON:
        print(f"warning: llama-cpp-python {llama_cpp.__version__} != {EXPECTED_LLAMA_CPP_PYTHON}",
              file=sys.stderr)

    quiet_logs(args.verbose)
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(str(args.model).encode(), mp)
    if not model:
        sys.exit(f"failed to load {args.model}")
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)

    if args.bench or args.bench_only:
        r = bench(model, vocab, n_vocab, args.bench_reps)
        print(f"[bench] {args.model.name}  threads={N_THREADS}  n_batch={N_BATCH}  flash_attn=disabled  "
              f"pp512 = {r['pp512_tok_s']:.1f} tok/s {['%.1f' % x for x in r['pp512_all']]}  "
              f"tg128 = {r['tg128_tok_s']:.1f} tok/s {['%.1f' % x for x in r['tg128_all']]}  "
              f"(median of {args.bench_reps}; best pp {max(r['pp512_all']):.1f}, "
              f"best tg {max(r['tg128_all']):.1f})", file=sys.stderr)
        if args.bench_only:
            L.llama_model_free(model)
            return 0

    desc = ctypes.create_string_buffer(256)
    L.llama_model_desc(model, desc, 256)
    cp = context_params()
    ctx_dict = struct_to_dict(cp)
    header = {
        "generator": "scripts/make_references.py",
        "generated_on": datetime.date.today().isoformat(),
        "llama_cpp_python_version": llama_cpp.__version__,
        "llama_cpp_commit": VENDORED_LLAMA_CPP_COMMIT.get(llama_cpp.__version__),
        "llama_version": (L.llama_version() or b"").decode(),
        "system_info": L.llama_print_system_info().decode().strip(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "machine": platform.machine(),
        "model": {
            "file": args.model.name,
            "sha256": sha256(args.model),
            "desc": desc.value.decode(),
            "n_params": int(L.llama_model_n_params(model)),
            "n_vocab": n_vocab,
            "tokenizer_model": meta_str(model, "tokenizer.ggml.model"),
            "tokenizer_pre": meta_str(model, "tokenizer.ggml.pre"),
            "vocab_add_bos": bool(L.llama_vocab_get_add_bos(vocab)),
            "vocab_add_eos": bool(L.llama_vocab_get_add_eos(vocab)),
            "bos": int(L.llama_vocab_bos(vocab)),
            "eos": int(L.llama_vocab_eos(vocab)),
            "eog_ids": [t for t in range(n_vocab) if L.llama_vocab_is_eog(vocab, t)],
        },
        "settings": {
            "n_ctx": N_CTX,
            "n_batch": N_BATCH,
            "n_ubatch": N_UBATCH,
            "n_threads": N_THREADS,
            "n_threads_batch": N_THREADS,
            "flash_attn_type": "LLAMA_FLASH_ATTN_TYPE_DISABLED (0)",
            "type_k": "F16 (default, ggml type 1)" if cp.type_k == 1 else cp.type_k,
            "type_v": "F16 (default, ggml type 1)" if cp.type_v == 1 else cp.type_v,
            "n_gpu_layers": 0,
            "model_params": struct_to_dict(mp),
            "context_params": ctx_dict,
        },
    }

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.generation_only:
        tok_doc = build_tokenize(vocab, {k: header[k] for k in header if k != "settings"})
        write_json(args.out / "tokenize.json", tok_doc)
        print(f"wrote {args.out / 'tokenize.json'}", file=sys.stderr)

    gen_doc, notes = build_generation(model, vocab, n_vocab, header)
    gen_file = args.out / (args.generation_only or "generation.json")
    write_json(gen_file, gen_doc)
    print(f"wrote {gen_file}", file=sys.stderr)
    for n in notes:
        print("note:", n, file=sys.stderr)

    L.llama_model_free(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
