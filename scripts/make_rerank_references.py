#!/usr/bin/env python3
"""A tiny Qwen3-Reranker-shaped GGUF and llama.cpp's rerank scores of it, for owl's tests.

Writes tests/fixtures/rerank/tiny-qwen3-reranker.gguf: the committed tiny random-weight Qwen3
(tests/fixtures/arch/tiny-qwen3.gguf, SmolLM2's 49152-token vocabulary with its ChatML special
tokens) with what convert_hf_to_gguf.py's Qwen3Model adds for a reranker (`_find_rerank_config`):
`qwen3.pooling_type = RANK`, `qwen3.classifier.output_labels = ["yes", "no"]`, the
`tokenizer.chat_template.rerank` prompt, and `cls.output.weight`, the tied output head's rows of
the "yes" and "no" tokens. Then tiny-qwen3-reranker.json: for a query and a few documents, the
pair's tokens as llama-server builds them (`format_prompt_rerank`: the rerank template filled in,
tokenized whole with special tokens parsed, nothing added) and llama.cpp's two outputs per pair
(rank pooling on a causal model: the last token's final-normed state through `cls.output`, then
a softmax; the score llama-server returns is the first, P("yes")).

llama.cpp: llama-cpp-python 0.3.36 (llama.cpp 0c1e570) through its C API, 2 threads. Run with
    LLAMA_CPP_LIB_PATH=/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin \\
        python3 scripts/make_rerank_references.py
Developer machines only; tests read the committed files.
"""

import datetime
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_bench_models as mbm  # noqa: E402
import make_references as mr  # noqa: E402

gguf = mbm.gguf
L = mr.L
ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "tests" / "fixtures" / "arch" / "tiny-qwen3.gguf"
OUT = ROOT / "tests" / "fixtures" / "rerank"

# convert_hf_to_gguf.py's Qwen3 rerank prompt, verbatim.
TEMPLATE = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    "and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
    "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that "
    "answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n"
)
QUERY = "what is a panda?"
DOCUMENTS = ["hi", "The giant panda is a bear native to China.", "pandas 🐼 eat bamboo", ""]


def write(dst: Path, yes: int, no: int) -> Path:
    r = gguf.GGUFReader(SRC)
    w = gguf.GGUFWriter(dst, "qwen3")
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, f.contents(), f.types[0], sub)
    w.add_pooling_type(gguf.PoolingType.RANK)
    w.add_classifier_output_labels(["yes", "no"])
    w.add_chat_template([{"name": "rerank", "template": TEMPLATE}])
    embd = None
    for t in r.tensors:
        data = np.array(t.data)
        if t.name == "token_embd.weight":
            embd = data
        w.add_tensor(t.name, data)
    if embd is None or "output.weight" in [t.name for t in r.tensors]:
        raise RuntimeError("expected a tied output head")
    w.add_tensor("cls.output.weight", np.stack([embd[yes], embd[no]]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst


def scores(model, pairs: list[list[int]]) -> list[list[float]]:
    out = []
    for toks in pairs:
        cp = mr.context_params()
        cp.embeddings = True
        cp.n_ctx = cp.n_batch = cp.n_ubatch = max(len(toks), 16)
        ctx = L.llama_init_from_model(model, cp)
        if not ctx:
            raise RuntimeError("llama_init_from_model failed")
        b = L.llama_batch_init(len(toks), 0, 1)
        try:
            b.n_tokens = len(toks)
            for p, t in enumerate(toks):
                b.token[p], b.pos[p], b.n_seq_id[p], b.logits[p] = t, p, 1, 1
                b.seq_id[p][0] = 0
            if L.llama_decode(ctx, b) != 0:
                raise RuntimeError("llama_decode failed")
            ptr = L.llama_get_embeddings_seq(ctx, 0)
            n = L.llama_model_n_cls_out(model)
            out.append([float(x) for x in np.ctypeslib.as_array(ptr, shape=(n,))])
        finally:
            L.llama_batch_free(b)
            L.llama_free(ctx)
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    L.llama_backend_init()
    mr.quiet_logs(False)
    mp = L.llama_model_default_params()
    base = L.llama_model_load_from_file(str(SRC).encode(), mp)
    vocab = L.llama_model_get_vocab(base)
    yes, no = (mr.tokenize(vocab, w, False, False) for w in ("yes", "no"))
    L.llama_model_free(base)
    if len(yes) != 1 or len(no) != 1:
        raise RuntimeError(f"'yes' {yes} / 'no' {no} are not single tokens")
    path = write(OUT / "tiny-qwen3-reranker.gguf", yes[0], no[0])
    model = L.llama_model_load_from_file(str(path).encode(), mp)
    if not model:
        raise RuntimeError(f"llama.cpp cannot load {path}")
    vocab = L.llama_model_get_vocab(model)
    prompts = [TEMPLATE.replace("{query}", QUERY).replace("{document}", d) for d in DOCUMENTS]
    pairs = [mr.tokenize(vocab, p, False, True) for p in prompts]
    ref = {
        "llama_cpp_python": mr.llama_cpp.__version__,
        "llama_cpp_commit": mr.VENDORED_LLAMA_CPP_COMMIT.get(mr.llama_cpp.__version__),
        "generated_on": datetime.date.today().isoformat(),
        "model": path.name,
        "model_sha256": mr.sha256(path),
        "yes_no_tokens": [yes[0], no[0]],
        "query": QUERY,
        "documents": DOCUMENTS,
        "pairs": pairs,
        "outputs": scores(model, pairs),
    }
    L.llama_model_free(model)
    mr.write_json(OUT / "tiny-qwen3-reranker.json", ref)
    print(f"{path.name}: {path.stat().st_size / 1e3:.0f} kB, references written", flush=True)


if __name__ == "__main__":
    main()
