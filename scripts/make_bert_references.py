#!/usr/bin/env python3
"""Tiny random-weight `bert` encoders and llama.cpp's embeddings of them, for owl's tests.

Writes tests/fixtures/bert/tiny-bert.gguf (mean pooling, a sentence-transformer shape) and
tiny-bert-rerank.gguf (rank pooling: a cross-encoder with llama.cpp's `cls` / `cls.output`
classification head), each with a JSON of llama.cpp's pooled outputs for fixed token-id
inputs (several inputs of different lengths in one llama_decode, one sequence id each, as
llama-server batches them) and llama.cpp's tokenization of a few texts.

The tensors and keys are the ones convert_hf_to_gguf.py writes for BertModel /
BertForSequenceClassification (`token_embd`, `token_types`, `position_embd`,
`token_embd_norm`, `blk.N.attn_{q,k,v,output}`, `attn_output_norm`, `ffn_{up,down}`,
`layer_output_norm`, `bert.pooling_type`, `bert.attention.causal = false`). Weights are
random (seeded), F16 matrices and F32 norms and biases, scaled so attention and the FFN move
the result (a BERT with N(0, 0.02) weights is nearly its embedding LayerNorm).

The vocabulary is a small byte-level BPE (`tokenizer.ggml.model = gpt2`: 256 byte tokens, a
few merges, [PAD] [CLS] [SEP] [UNK]) with [CLS] as BOS and [SEP] as EOS, both added: the
architecture does not care which tokenizer feeds it, and owl's tokenizer reads this one today
(WordPiece vocabularies are tokenized by owl-text's own `bert` model). llama.cpp's rerank
input is then `[CLS] query [SEP] doc [SEP]`.

llama.cpp: llama-cpp-python 0.3.36 (llama.cpp 0c1e570) through its C API, flash attention
off (the f32 attention path), 2 threads. Run with
    LLAMA_CPP_LIB_PATH=/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin \\
        python3 scripts/make_bert_references.py
Developer machines only; tests read the committed files.
"""

import ctypes
import datetime
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_bench_models as mbm  # noqa: E402
import make_references as mr  # noqa: E402

gguf = mbm.gguf
L = mr.L
OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "bert"

DIMS = dict(n_vocab=288, n_embd=64, n_head=4, n_layer=2, n_ff=128, n_ctx=64, n_types=2)
MODELS = {
    "tiny-bert": dict(pooling=gguf.PoolingType.MEAN, seed=11),
    "tiny-bert-rerank": dict(pooling=gguf.PoolingType.RANK, seed=12),
    # nomic-embed-text's shape (convert_hf_to_gguf.py's NomicBertModel): RoPE (NeoX, base 1000)
    # instead of position rows, one fused attn_qkv, a SwiGLU FFN, no biases but the norms'.
    "tiny-nomic-bert": dict(pooling=gguf.PoolingType.MEAN, seed=13, arch="nomic-bert"),
}
# Token-id inputs (every id < 288, each within the 64 positions), run together.
INPUTS = [
    [1, 76, 105, 112, 112, 115, 2],
    [1, 40, 33, 50, 2],
    [1] + [(i * 37) % 280 + 4 for i in range(40)] + [2],
    [1, 2],
    [1] + [(i * 11) % 250 + 5 for i in range(62)] + [2],
]
TEXTS = ["hello world", "The quick brown fox jumps over the lazy dog.", "a"]
RERANK = {"query": "what is a panda?",
          "documents": ["hi", "The giant panda is a bear native to China.", "pandas"]}


def tokenizer() -> dict:
    t = mbm.synthetic_tokenizer()
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"] + t["tokens"][1:]
    types = [int(gguf.TokenType.CONTROL)] * 4 + t["types"][1:]
    return dict(model="gpt2", pre="default", tokens=tokens, types=types, merges=t["merges"],
                ids=dict(bos=1, eos=2, unknown=3, padding=0), add_bos=True, chat_template=None)


def write(name: str, spec: dict) -> Path:
    d = DIMS
    e, ff = d["n_embd"], d["n_ff"]
    ws = spec.get("w_scale", 1.0)  # multiplies every layer matrix's scale (benchmark shapes)
    rng = np.random.default_rng(spec["seed"])
    path = OUT / f"{name}.gguf"
    arch = spec.get("arch", "bert")
    nomic = arch == "nomic-bert"
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"{name} (random weights)")
    w.add_block_count(d["n_layer"])
    w.add_context_length(d["n_ctx"])
    w.add_embedding_length(e)
    w.add_feed_forward_length(ff)
    w.add_head_count(d["n_head"])
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    if nomic:
        w.add_rope_freq_base(1000.0)
    w.add_pooling_type(spec["pooling"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if spec["pooling"] == gguf.PoolingType.RANK:
        w.add_classifier_output_labels(["LABEL_0"])
    tok = tokenizer()
    mbm.add_tokenizer(w, tok, d["n_vocab"])
    w.add_add_eos_token(True)
    w.add_token_type_count(d["n_types"])

    def mat(rows, cols, scale):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * scale).astype(np.float16)

    def vec(n, scale, base=0.0):
        return (base + rng.standard_normal(n, dtype=np.float32) * scale).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(d["n_vocab"], e, 1.0))
    w.add_tensor("token_types.weight", (rng.standard_normal((d["n_types"], e), dtype=np.float32)
                                        * 0.5).astype(np.float32))
    if not nomic:
        w.add_tensor("position_embd.weight", mat(d["n_ctx"], e, 0.5))
    w.add_tensor("token_embd_norm.weight", vec(e, 0.2, 1.0))
    w.add_tensor("token_embd_norm.bias", vec(e, 0.1))
    for i in range(d["n_layer"]):
        b = f"blk.{i}"
        if nomic:
            w.add_tensor(f"{b}.attn_qkv.weight", mat(3 * e, e, 0.25 * ws))
            w.add_tensor(f"{b}.attn_output.weight", mat(e, e, 0.25 * ws))
        else:
            for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
                w.add_tensor(f"{b}.{t}.weight", mat(e, e, 0.25 * ws))
                w.add_tensor(f"{b}.{t}.bias", vec(e, 0.1))
        w.add_tensor(f"{b}.attn_output_norm.weight", vec(e, 0.2, 1.0))
        w.add_tensor(f"{b}.attn_output_norm.bias", vec(e, 0.1))
        if nomic:
            w.add_tensor(f"{b}.ffn_gate.weight", mat(ff, e, 0.25 * ws))
        w.add_tensor(f"{b}.ffn_up.weight", mat(ff, e, 0.25 * ws))
        if not nomic:
            w.add_tensor(f"{b}.ffn_up.bias", vec(ff, 0.1))
        w.add_tensor(f"{b}.ffn_down.weight", mat(e, ff, 0.15 * ws))
        if not nomic:
            w.add_tensor(f"{b}.ffn_down.bias", vec(e, 0.1))
        w.add_tensor(f"{b}.layer_output_norm.weight", vec(e, 0.2, 1.0))
        w.add_tensor(f"{b}.layer_output_norm.bias", vec(e, 0.1))
    if spec["pooling"] == gguf.PoolingType.RANK:
        w.add_tensor("cls.weight", mat(e, e, 0.25))
        w.add_tensor("cls.bias", vec(e, 0.1))
        w.add_tensor("cls.output.weight", mat(1, e, 0.5))
        w.add_tensor("cls.output.bias", vec(1, 0.1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def pooled(model, inputs: list[list[int]], n_out: int) -> list[list[float]]:
    cp = mr.context_params()
    cp.embeddings = True
    cp.n_seq_max = len(inputs)
    cp.n_ctx = DIMS["n_ctx"] * len(inputs)
    cp.n_batch = cp.n_ubatch = sum(len(t) for t in inputs)
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    n = sum(len(t) for t in inputs)
    b = L.llama_batch_init(n, 0, len(inputs))
    try:
        b.n_tokens = n
        k = 0
        for s, toks in enumerate(inputs):
            for p, t in enumerate(toks):
                b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = t, p, 1, 1
                b.seq_id[k][0] = s
                k += 1
        if L.llama_decode(ctx, b) != 0:
            raise RuntimeError("llama_decode failed")
        out = []
        for s in range(len(inputs)):
            ptr = L.llama_get_embeddings_seq(ctx, s)
            out.append([float(x) for x in np.ctypeslib.as_array(ptr, shape=(n_out,))])
        return out
    finally:
        L.llama_batch_free(b)
        L.llama_free(ctx)


def reference(path: Path, rank: bool) -> dict:
    mp = L.llama_model_default_params()
    model = L.llama_model_load_from_file(str(path).encode(), mp)
    if not model:
        raise RuntimeError(f"llama.cpp cannot load {path}")
    vocab = L.llama_model_get_vocab(model)
    n_out = L.llama_model_n_cls_out(model) if rank else L.llama_model_n_embd(model)
    texts = {t: mr.tokenize(vocab, t, True, False) for t in TEXTS}
    ref = {
        "llama_cpp_python": mr.llama_cpp.__version__,
        "llama_cpp_commit": mr.VENDORED_LLAMA_CPP_COMMIT.get(mr.llama_cpp.__version__),
        "generated_on": datetime.date.today().isoformat(),
        "model": path.name,
        "model_sha256": mr.sha256(path),
        "pooling": "rank" if rank else "mean",
        "normalized": False,
        "inputs": INPUTS,
        "outputs": pooled(model, INPUTS, n_out),
        "texts": [{"text": t, "tokens": ids} for t, ids in texts.items()],
    }
    if rank:
        q = mr.tokenize(vocab, RERANK["query"], False, False)
        pairs = [[1] + q + [2] + mr.tokenize(vocab, d, False, False) + [2]
                 for d in RERANK["documents"]]
        ref["rerank"] = dict(RERANK, pairs=pairs, scores=[s[0] for s in pooled(model, pairs, 1)])
    L.llama_model_free(model)
    return ref


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    L.llama_backend_init()
    mr.quiet_logs(False)
    only = set(sys.argv[1:])  # names to (re)make; none: all
    for name, spec in MODELS.items():
        if only and name not in only:
            continue
        path = write(name, spec)
        ref = reference(path, spec["pooling"] == gguf.PoolingType.RANK)
        mr.write_json(OUT / f"{name}.json", ref)
        print(f"{name}: {path.stat().st_size / 1e3:.0f} kB, references written", flush=True)


if __name__ == "__main__":
    main()
