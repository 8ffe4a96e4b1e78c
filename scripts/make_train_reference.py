#!/usr/bin/env python3
"""One LoRA training step on a tiny model, computed independently in float64.

Reads a committed tiny Llama GGUF with the `gguf` package (weights dequantized to float64),
writes its forward pass in `autograd.numpy` (HIPS autograd: reverse-mode differentiation of
plain numpy code, no torch), and takes one AdamW step on LoRA pairs over every projection.
The pairs start from a closed-form pattern both sides compute (`init_value`), so owl's test
(`crates/train/tests/reference_step.rs`) starts from the same point.

Writes tests/fixtures/train/step-<name>.json: the mean loss, every pair's gradient and its
values after the step.

    pip install gguf autograd numpy   (scripts/requirements-dev.txt)
    python3 scripts/make_train_reference.py tiny-llama
"""
import json
import math
import sys
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from autograd import grad
import gguf

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
RANK = 2
ALPHA = 4.0
LR, BETA1, BETA2, EPS, MAX_NORM = 1e-2, 0.9, 0.999, 1e-8, 1.0


def init_value(layer, t, which, i):
    """The starting value of element i of A (which=0) or B (which=1) of target t."""
    return 0.1 * math.sin(0.37 * i + 1.3 * layer + 0.71 * t + 2.1 * which)


def batch(n_vocab):
    def seq(length, salt):
        toks = [(i * 7 + salt * 13 + 1) % n_vocab for i in range(length)]
        tg = [((i * 5 + salt + 2) % n_vocab) if i % 3 != 0 else None for i in range(length)]
        return toks, tg
    return [seq(7, 1), seq(5, 2)]


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "tiny-llama"
    r = gguf.GGUFReader(ROOT / "tests/fixtures/arch" / f"{name}.gguf")
    f = {k: v.contents() for k, v in r.fields.items() if not k.startswith("tokenizer")}
    arch = f["general.architecture"]
    assert arch == "llama", "the reference implements the llama architecture"
    n_layer = f[f"{arch}.block_count"]
    n_embd = f[f"{arch}.embedding_length"]
    n_head = f[f"{arch}.attention.head_count"]
    n_head_kv = f[f"{arch}.attention.head_count_kv"]
    eps = f[f"{arch}.attention.layer_norm_rms_epsilon"]
    base = f[f"{arch}.rope.freq_base"]
    hd = n_embd // n_head
    n_rot = f.get(f"{arch}.rope.dimension_count", hd)
    W = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        W[t.name] = a.reshape([int(d) for d in reversed(t.shape)])
    out_w = W.get("output.weight", W["token_embd.weight"])
    n_vocab = out_w.shape[0]

    shapes = []  # (layer, target index, n_in, n_out)
    for l in range(n_layer):
        for ti, tn in enumerate(TARGETS):
            w = W[f"blk.{l}.{tn}.weight"]
            shapes.append((l, ti, w.shape[1], w.shape[0]))
    params = []
    for (l, ti, ni, no) in shapes:
        a = np.array([init_value(l, ti, 0, i) for i in range(RANK * ni)]).reshape(RANK, ni)
        b = np.array([init_value(l, ti, 1, i) for i in range(no * RANK)]).reshape(no, RANK)
        params += [a, b]
    scale = ALPHA / RANK

    def rope(x, pos):  # x: [L, heads, hd], llama.cpp's normal order (pairs 2i, 2i+1)
        L = x.shape[0]
        i = np.arange(n_rot // 2)
        theta = np.outer(pos, base ** (-2.0 * i / n_rot))  # [L, n_rot/2]
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        x0, x1 = x[:, :, 0:n_rot:2], x[:, :, 1:n_rot:2]
        r0, r1 = x0 * c - x1 * s, x0 * s + x1 * c
        rot = anp.stack([r0, r1], axis=-1).reshape(L, x.shape[1], n_rot)
        return anp.concatenate([rot, x[:, :, n_rot:]], axis=-1)

    def norm(x, w):
        return x / anp.sqrt(anp.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def lin(l, ti, x, P):
        w = W[f"blk.{l}.{TARGETS[ti]}.weight"]
        k = 2 * (l * len(TARGETS) + ti)
        return x @ w.T + scale * (x @ P[k].T) @ P[k + 1].T

    def seq_loss(P, toks, tg):
        L = len(toks)
        x = W["token_embd.weight"][toks]
        pos = np.arange(L)
        mask = np.tril(np.ones((L, L)))
        for l in range(n_layer):
            h = norm(x, W[f"blk.{l}.attn_norm.weight"])
            q = rope(lin(l, 0, h, P).reshape(L, n_head, hd), pos)
            k = rope(lin(l, 1, h, P).reshape(L, n_head_kv, hd), pos)
            v = lin(l, 2, h, P).reshape(L, n_head_kv, hd)
            g = n_head // n_head_kv
            heads = []
            for hh in range(n_head):
                s = (q[:, hh, :] @ k[:, hh // g, :].T) / math.sqrt(hd)
                s = anp.where(mask > 0, s, -1e300)
                s = s - anp.max(s, axis=1, keepdims=True)
                p = anp.exp(s) * mask
                p = p / anp.sum(p, axis=1, keepdims=True)
                heads.append(p @ v[:, hh // g, :])
            o = anp.concatenate(heads, axis=1)
            x = x + lin(l, 3, o, P)
            h2 = norm(x, W[f"blk.{l}.ffn_norm.weight"])
            gt, up = lin(l, 4, h2, P), lin(l, 5, h2, P)
            a = gt / (1 + anp.exp(-gt)) * up
            x = x + lin(l, 6, a, P)
        rows = [i for i, t in enumerate(tg) if t is not None]
        hn = norm(x[rows], W["output_norm.weight"])
        z = hn @ out_w.T
        zmax = anp.max(z, axis=1, keepdims=True)
        lse = anp.log(anp.sum(anp.exp(z - zmax), axis=1)) + zmax[:, 0]
        picked = anp.array([z[j, tg[r]] for j, r in enumerate(rows)])
        return anp.sum(lse - picked)

    data = batch(n_vocab)
    n_targets = sum(1 for _, tg in data for t in tg if t is not None)

    def loss(P):
        return sum(seq_loss(P, toks, tg) for toks, tg in data) / n_targets

    L0 = loss(params)
    grads = grad(loss)(params)
    gnorm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    clip = MAX_NORM / gnorm if gnorm > MAX_NORM else 1.0
    new = []
    for p, g in zip(params, grads):
        g = g * clip
        m = (1 - BETA1) * g
        v = (1 - BETA2) * g * g
        mh, vh = m / (1 - BETA1), v / (1 - BETA2)
        new.append(p - LR * mh / (np.sqrt(vh) + EPS))
    pairs = []
    for j, (l, ti, ni, no) in enumerate(shapes):
        pairs.append({
            "layer": l, "target": TARGETS[ti], "n_in": ni, "n_out": no,
            "grad_a": grads[2 * j].ravel().tolist(), "grad_b": grads[2 * j + 1].ravel().tolist(),
            "a": new[2 * j].ravel().tolist(), "b": new[2 * j + 1].ravel().tolist(),
        })
    out = {
        "model": f"{name}.gguf", "rank": RANK, "alpha": ALPHA,
        "lr": LR, "beta1": BETA1, "beta2": BETA2, "eps": EPS, "max_grad_norm": MAX_NORM,
        "batch": [{"tokens": t, "targets": tg} for t, tg in data],
        "loss": float(L0), "grad_norm": gnorm, "pairs": pairs,
    }
    dst = ROOT / "tests/fixtures/train" / f"step-{name}.json"
    dst.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {dst}: loss {L0:.6f}, grad norm {gnorm:.6f}")


if __name__ == "__main__":
    main()
