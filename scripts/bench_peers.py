#!/usr/bin/env python3
"""paratag against HF transformers and ONNX Runtime at their best, same weights.

One invocation: a fixed corpus of news-length paragraphs (SIB-200 *train*
sentences joined into paragraphs of 10-400 tokens, 7 languages, 3 scripts,
seeded), then rounds that alternate every run, best of `--rounds`. Each run
is its own child process, so its wall time includes its start-up and its
peak RSS is its own (wait4).

Two jobs:
- `heads`: the quick start (`paratag tag` with the installed profile
  `default`: topic, stance and NER heads on one encoder pass). The peers run
  the very same computation: the profile's LoRA adapter, if it has one,
  merged into the encoder weights as paratag merges it at load, and the
  head weights loaded into transformers' own `BertLayer` and `Linear`
  modules (each head's tuned layers above the layer it reads, if any, then
  its classifier), decode stance and entities as
  paratag does (threshold and topic gate from the codebook; IOB2 Viterbi
  over sub-tokens), and are compared label by label with paratag f32.
- `embed`: embedding zero-shot (`-c datasets/codebooks/sib200.toml --no-ner`):
  mean-pooled e5 embeddings, nearest topic description.

Peers at their best: length-sorted batches under a padded-token budget,
`torch.inference_mode`, SDPA attention, f32 and bf16 autocast; ONNX Runtime
with the transformer graph optimiser (fused attention, layer norm, GELU),
f32 and dynamic int8 (per-channel weights). libtorch's matmul peak (same
threads) sets "% of peak".

Run `scripts/bench.sh --peer [--rounds N] [--paragraphs N] [--only a,b]`.
"""
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIB = os.path.join(ROOT, "..", "shared", "datasets", "sib200")
BIN = os.path.join(ROOT, "target", "release", "paratag")
HOME = os.environ.get("PARATAG_HOME", os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "paratag", "home"))
E5 = os.path.join(HOME, "models", "multilingual-e5-small")
PROFILE = os.path.join(HOME, "profiles", "default")
PROFILE_HEADS = os.path.join(PROFILE, "heads")
SIB_CODEBOOK = os.path.join(ROOT, "datasets", "codebooks", "sib200.toml")
LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "rus_Cyrl", "ukr_Cyrl", "arb_Arab"]
PREFIX = "query: "
THREADS = 2
BUDGET = 2048  # padded tokens per batch, as paratag's default

RUNS = {
    # name: (job, engine, dtype)
    "paratag-f32": ("heads", "paratag", "f32"),
    "paratag-bf16": ("heads", "paratag", "bf16"),
    "hf-f32": ("heads", "hf", "f32"),
    "hf-bf16": ("heads", "hf", "bf16"),
    "ort-f32": ("heads", "ort", "f32"),
    "ort-int8": ("heads", "ort", "int8"),
    # TorchScript: the same module traced and frozen (SDPA attention), and
    # with libtorch's oneDNN graph fuser (eager attention, whose pattern it
    # fuses). The lever issue 30 asked about; not in the default --only.
    "ts-f32": ("heads", "ts", "f32"),
    "ts-onednn-f32": ("heads", "ts-onednn", "f32"),
    "paratag-embed-f32": ("embed", "paratag", "f32"),
    "paratag-embed-bf16": ("embed", "paratag", "bf16"),
    "hf-embed-f32": ("embed", "hf", "f32"),
    "hf-embed-bf16": ("embed", "hf", "bf16"),
    "ort-embed-f32": ("embed", "ort", "f32"),
    "ort-embed-int8": ("embed", "ort", "int8"),
}


# --- corpus -----------------------------------------------------------------

def build_corpus(n, tok, path):
    """`n` paragraphs of 10-400 tokens: consecutive SIB-200 train sentences of
    one language, the sentence count drawn from a seeded long-tailed law."""
    rng = random.Random(20261202)
    sents = {}
    for lang in LANGS:
        lines = open(os.path.join(SIB, lang, "train.tsv"), encoding="utf-8").read().splitlines()[1:]
        sents[lang] = [l.split("\t", 2)[2] for l in lines]
    rows = []
    while len(rows) < n:
        lang = LANGS[len(rows) % len(LANGS)]
        k = min(1 + int(rng.expovariate(1 / 3.5)), 16)
        start = rng.randrange(len(sents[lang]))
        parts = [sents[lang][(start + j) % len(sents[lang])] for j in range(k)]
        while True:
            text = " ".join(parts)
            t = len(tok(PREFIX + text)["input_ids"])
            if t <= 400 or len(parts) == 1:
                break
            parts.pop()
        if 10 <= t <= 400:
            rows.append({"id": f"p{len(rows):05d}", "text": text, "lang": lang, "tokens": t})
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
    return rows


# --- the model, as paratag computes it, in transformers' modules -------------

def load_heads(cfg):
    """The default profile's heads: {task: (meta, [BertLayer], Linear)}. A
    head without `layer` is linear over the L2-normalised mean embedding;
    one with `layer` reads that layer's states through its tuned layers
    (none for a multi-task head), mean-pooled unless it is NER."""
    import torch
    from safetensors.torch import load_file
    from transformers.models.bert.modeling_bert import BertLayer

    heads = {}
    for name in sorted(os.listdir(PROFILE_HEADS)):
        d = os.path.join(PROFILE_HEADS, name)
        if not os.path.isfile(os.path.join(d, "head.toml")):
            continue
        meta = tomllib.load(open(os.path.join(d, "head.toml"), "rb"))
        w = {k: v.float() for k, v in load_file(os.path.join(d, "head.safetensors")).items()}
        layers = []
        for j in range(meta.get("tune_layers", 0)):
            layer = BertLayer(cfg)
            p = f"layer.{j}."
            layer.load_state_dict({k[len(p):]: v for k, v in w.items() if k.startswith(p)})
            layers.append(layer.eval())
        pre = "classifier." if "classifier.weight" in w else ""
        lin = torch.nn.Linear(cfg.hidden_size, len(meta["labels"]))
        lin.load_state_dict({"weight": w[pre + "weight"], "bias": w[pre + "bias"]})
        heads[meta["task"]] = (meta, torch.nn.ModuleList(layers), lin.eval())
    return heads


# The linear maps of a BERT layer that carry an adapter (src/models/lora.rs).
LORA_MODULES = ["attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense"]


def merge_adapter(model):
    """Adds the profile's adapter (`heads/adapter`, from `paratag train
    multi`) into the encoder weights: W += (alpha / rank) · B · A."""
    import torch
    from safetensors.torch import load_file

    d = os.path.join(PROFILE_HEADS, "adapter")
    if not os.path.isdir(d):
        return
    meta = tomllib.load(open(os.path.join(d, "adapter.toml"), "rb"))
    w = load_file(os.path.join(d, "adapter.safetensors"))
    scale = meta["alpha"] / meta["rank"]
    with torch.no_grad():
        for i in range(meta["layers"]):
            for m in LORA_MODULES:
                lin = model.encoder.layer[i].get_submodule(m)
                delta = w[f"layer.{i}.{m}.lora_b"].float() @ w[f"layer.{i}.{m}.lora_a"].float()
                lin.weight += scale * delta


def make_module(job, attn="sdpa"):
    """A torch module: ids, mask -> (embedding,) or the heads' logits."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(E5, attn_implementation=attn, add_pooling_layer=False).eval()
    if job == "heads":
        merge_adapter(model)

    def embed(h, mask):
        m = mask.unsqueeze(-1).to(h.dtype)
        return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)

    if job == "embed":
        class Embed(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = model

            def forward(self, ids, mask):
                return (embed(self.m(input_ids=ids, attention_mask=mask).last_hidden_state.float(), mask),)
        return Embed().eval(), None

    heads = load_heads(model.config)
    order = sorted(heads)

    class Heads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model
            self.layers = torch.nn.ModuleList([heads[t][1] for t in order])
            self.cls = torch.nn.ModuleList([heads[t][2] for t in order])
            self.read = [heads[t][0].get("layer") for t in order]
            self.pooled = [heads[t][0]["kind"] != "ner" for t in order]

        def forward(self, ids, mask):
            o = self.m(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            ext = (1.0 - mask[:, None, None, :].to(o.last_hidden_state.dtype)) * -10000.0
            out = []
            for layers, cls, read, pooled in zip(self.layers, self.cls, self.read, self.pooled):
                if read is None:  # linear head over the sentence embedding
                    out.append(cls(embed(o.last_hidden_state.float(), mask)).float())
                    continue
                h = o.hidden_states[read]
                for l in layers:
                    h = l(h, attention_mask=ext)[0]
                if pooled:
                    m = mask.unsqueeze(-1).to(h.dtype)
                    h = (h * m).sum(1) / m.sum(1)
                out.append(cls(h).float())
            return tuple(out)
    return Heads().eval(), (order, {t: heads[t][0] for t in order})


def batches(lens, budget=BUDGET):
    """Length-sorted batches whose padded size stays within `budget`."""
    order = sorted(range(len(lens)), key=lambda i: lens[i])
    out, cur = [], []
    for i in order:
        if cur and lens[i] * (len(cur) + 1) > budget:
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


# --- decoding, as paratag does it -----------------------------------------------

def viterbi(probs, labels):
    import math
    tags = [(l[0], l[2:]) if l != "O" else ("O", None) for l in labels]

    def ok(prev, cur):
        if tags[cur][0] != "I":
            return True
        return prev is not None and tags[prev][0] in "BI" and tags[prev][1] == tags[cur][1]
    ln = lambda p: math.log(max(p, 1e-12))
    n = len(labels)
    score = [ln(probs[0][c]) if ok(None, c) else -math.inf for c in range(n)]
    back = []
    for p in probs[1:]:
        nxt, frm = [-math.inf] * n, [0] * n
        for c in range(n):
            for q in range(n):
                if ok(q, c) and score[q] > nxt[c]:
                    nxt[c], frm[c] = score[q], q
            nxt[c] += ln(p[c])
        back.append(frm)
        score = nxt
    path = [max(range(n), key=lambda c: (score[c], -c))]
    for frm in reversed(back):
        path.append(frm[path[-1]])
    return path[::-1]


def edge_punct(c):
    return c not in ".'&-" and (c in "!\"#$%()*+,/:;<=>?@[\\]^_`{|}~" or c in "«»“”„‘’،؛؟…·")


def entities(text, offsets, probs, labels):
    """paratag's `decode_entities` with `sub_tokens`: Viterbi over sub-tokens,
    trims, a span ends where its word ends."""
    if not offsets:
        return []
    path = viterbi(probs, labels)
    spans, cur = [], None
    for i, l in enumerate(path):
        kind, ty = ("O", None) if labels[l] == "O" else (labels[l][0], labels[l][2:])
        if kind == "I" and cur and cur[0] == ty:
            cur[2] = i
            continue
        if cur:
            spans.append(cur)
        cur = [ty, i, i] if kind in "BI" else None
    if cur:
        spans.append(cur)
    out = []
    comb = lambda c: unicodedata.combining(c) != 0 or unicodedata.category(c) in ("Mn", "Mc", "Me")
    for ty, a, b in spans:
        s, e = min(offsets[a][0], len(text)), min(offsets[b][1], len(text))
        while s < e and (text[s].isspace() or edge_punct(text[s])):
            s += 1
        while e > s and (text[e - 1].isspace() or edge_punct(text[e - 1])):
            e -= 1
        if e > s + 1 and text[e - 1] == "." and "." not in text[s:e - 1]:
            e -= 1
        while s < e < len(text) and comb(text[e]):
            e += 1
        while s < e < len(text) and text[e - 1].isalnum() and (text[e].isalnum() or comb(text[e])):
            e += 1
        if s < e:
            out.append([s, e, ty])
    return out


# --- one run, in a child process ----------------------------------------------

def child(name, corpus, work):
    job, engine, dtype = RUNS[name]
    t0 = time.perf_counter()
    if engine == "paratag":
        out = os.path.join(work, f"{name}.parquet")
        cmd = [BIN, "tag", corpus, "-o", out, "--no-segment", "-q", "--threads", str(THREADS), "--dtype", dtype, "--force"]
        if job == "embed":
            cmd += ["-c", SIB_CODEBOOK, "--no-ner"]
        subprocess.run(cmd, check=True)
        # The tagger's own peak: this child exec'd from a large parent, so
        # its own maxrss would be the parent's.
        return {"wall_inner": time.perf_counter() - t0, "rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}

    import numpy as np
    import torch
    from transformers import PreTrainedTokenizerFast
    torch.set_num_threads(THREADS)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(E5, "tokenizer.json"), pad_token="<pad>")
    rows = [json.loads(l) for l in open(corpus, encoding="utf-8")]
    texts = [PREFIX + r["text"] for r in rows]
    if job == "embed":
        topics = tomllib.load(open(SIB_CODEBOOK, "rb"))["topic"]
        texts += [PREFIX + t.get("description", t["label"]) for t in topics]
    enc = tok(texts, truncation=True, max_length=512, return_offsets_mapping=True)
    lens = [len(x) for x in enc["input_ids"]]
    if engine == "ort":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = THREADS
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(os.path.join(work, f"{job}-{dtype}.onnx"), so, providers=["CPUExecutionProvider"])
        meta = json.load(open(os.path.join(work, f"{job}.json")))
    elif engine.startswith("ts"):
        module, meta = traced(job, engine)
    else:
        module, meta = make_module(job)
        meta = meta and {"order": meta[0], "heads": meta[1]}
    t_load = time.perf_counter() - t0
    outs = [None] * len(texts)
    pad = tok.pad_token_id
    ts = engine.startswith("ts")

    def one_pass():
        for b in batches(lens):
            width = max(lens[i] for i in b)
            ids = np.full((len(b), width), pad, dtype=np.int64)
            mask = np.zeros((len(b), width), dtype=np.int64)
            for r, i in enumerate(b):
                ids[r, : lens[i]] = enc["input_ids"][i]
                mask[r, : lens[i]] = 1
            if engine == "ort":
                res = sess.run(None, {"ids": ids, "mask": mask})
            else:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                    res = [t.float().numpy() for t in module(torch.from_numpy(ids), torch.from_numpy(mask))]
            for r, i in enumerate(b):
                outs[i] = [o[r, : lens[i]] if o.ndim == 3 else o[r] for o in res]

    first_pass = None
    # The JIT's profiling executor runs under no_grad, not inference_mode.
    with (torch.no_grad() if ts else torch.inference_mode()):
        one_pass()
        if ts:
            # A second pass: the first paid the JIT's per-shape profiling
            # and fusion.
            first_pass = time.perf_counter() - t0 - t_load
            one_pass()
    t_compute = time.perf_counter() - t0 - t_load
    labels = decide(job, rows, enc, outs, meta)
    res = {"wall_inner": time.perf_counter() - t0, "load": t_load, "compute": t_compute, "labels": labels, "rss": hwm()}
    if first_pass is not None:
        # "compute" is both passes; the wall time counts both too, so the
        # table is an upper bound for TorchScript and "second_pass" the
        # warm figure.
        res["first_pass"], res["second_pass"] = first_pass, t_compute - first_pass
    return res


def traced(job, engine):
    """The heads module traced and frozen; with `ts-onednn`, libtorch's
    oneDNN graph fuser on."""
    import torch
    torch.jit.enable_onednn_fusion(engine == "ts-onednn")
    module, meta = make_module(job, attn="eager" if engine == "ts-onednn" else "sdpa")
    ids = torch.full((4, 64), 5, dtype=torch.int64)
    mask = torch.ones((4, 64), dtype=torch.int64)
    mask[1:, 40:] = 0
    with torch.no_grad():
        ts = torch.jit.freeze(torch.jit.trace(module, (ids, mask), strict=False, check_trace=False))
    return ts, meta and {"order": meta[0], "heads": meta[1]}


def hwm():
    """Peak RSS of this process's own address space (VmHWM; ru_maxrss
    would carry the parent's over exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def softmax(x):
    import numpy as np
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def decide(job, rows, enc, outs, meta):
    import numpy as np
    if job == "embed":
        topics = tomllib.load(open(SIB_CODEBOOK, "rb"))["topic"]
        a = np.stack([o[0] for o in outs[len(rows):]])
        return [{"topic": topics[int(np.argmax(a @ o[0]))]["id"]} for o in outs[: len(rows)]]
    cb = tomllib.load(open(os.path.join(PROFILE, "codebook.toml"), "rb"))
    order, heads = meta["order"], meta["heads"]
    res = []
    for i, r in enumerate(rows):
        lab = {}
        for t, o in zip(order, outs[i]):
            h = heads[t]
            p = softmax(o)
            if h["kind"] == "ner":
                offs = enc["offset_mapping"][i]
                keep = [j for j, (s, e) in enumerate(offs) if e > len(PREFIX) and not (s == e == 0)]
                lab["entities"] = entities(r["text"], [(max(offs[j][0], len(PREFIX)) - len(PREFIX), offs[j][1] - len(PREFIX)) for j in keep],
                                           [p[j].tolist() for j in keep], h["labels"])
            else:
                lab[t] = p.tolist()
        tl = heads["topic"]["labels"]
        best = int(np.argmax(lab["topic"]))
        # Below the codebook's topic threshold, paratag's topic is null.
        topic = tl[best] if lab["topic"][best] >= cb.get("topics", {}).get("threshold", 0.0) else None
        out = {"topic": topic, "entities": lab.get("entities", [])}
        for s in cb.get("stance", []):
            t = f"stance_{s['id']}"
            if t not in lab:
                continue
            if s.get("only_topics") and topic not in s["only_topics"]:
                out[t] = None
                continue
            sl = heads[t]["labels"]
            fav, ag = lab[t][sl.index("favor")], lab[t][sl.index("against")]
            best, p = ("favor", fav) if fav >= ag else ("against", ag)
            out[t] = best if p >= s.get("threshold", 0.0) else "none"
        res.append(out)
    return res


def paratag_labels(path, job):
    import polars as pl
    df = pl.read_parquet(path).sort("article_id")
    out = []
    for r in df.iter_rows(named=True):
        d = {"topic": r["topic"]}
        if job == "heads":
            d["entities"] = [[e["start"], e["end"], e["label"]] for e in (r["entities"] or [])]
            for k, v in r.items():
                if k.startswith("stance_") and not k.endswith(("_score", "_favor", "_against", "_holder", "_reported")):
                    d[k] = v
        out.append(d)
    return out


# --- export for ONNX Runtime ---------------------------------------------------

def export(job, work):
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    # Eager attention: the graph optimiser fuses its pattern into one Attention op.
    module, meta = make_module(job, attn="eager")
    ids = torch.ones((2, 16), dtype=torch.int64)
    raw = os.path.join(work, f"{job}-raw.onnx")
    names = ["emb"] if meta is None else list(meta[0])
    torch.onnx.export(module, (ids, ids), raw, input_names=["ids", "mask"], output_names=names, opset_version=17,
                      dynamic_axes={"ids": {0: "b", 1: "s"}, "mask": {0: "b", 1: "s"}, **{n: {0: "b", 1: "s"} for n in names}})
    opt = optimize_model(raw, model_type="bert", num_heads=module.m.config.num_attention_heads, hidden_size=module.m.config.hidden_size)
    f32 = os.path.join(work, f"{job}-f32.onnx")
    opt.save_model_to_file(f32)
    fused = opt.get_fused_operator_statistics()
    quantize_dynamic(f32, os.path.join(work, f"{job}-int8.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    json.dump(meta and {"order": meta[0], "heads": meta[1]}, open(os.path.join(work, f"{job}.json"), "w"))
    return {k: v for k, v in fused.items() if v}


# --- the parent ---------------------------------------------------------------

def matmul_peak(dtypes):
    """GFLOP/s of one large product per dtype in `dtypes`. bf16 only when a
    bf16 run is asked for: on a CPU without bf16 units libtorch emulates it
    on one thread, and the measurement alone took over 9 minutes."""
    import torch
    torch.set_num_threads(THREADS)
    a, b = torch.randn(4096, 768), torch.randn(768, 3072)
    out = {}
    for name, kind in [("f32", torch.float32), ("bf16", torch.bfloat16)]:
        if name not in dtypes:
            continue
        x, y = a.to(kind), b.to(kind)
        best = 1e9
        for _ in range(8):
            t = time.perf_counter()
            for _ in range(4):
                x @ y
            best = min(best, (time.perf_counter() - t) / 4)
        out[name] = 2 * 4096 * 768 * 3072 / best / 1e9
    return out


def flops(rows, job):
    """Model FLOPs of the real (unpadded) tokens: linear maps 2·T·params,
    attention 4·T²·hidden per layer."""
    cfg = json.load(open(os.path.join(E5, "config.json")))
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    per_layer = lambda t: 2 * t * (4 * h * h + 2 * h * i) + 4 * t * t * h
    if job == "embed":
        layers, extra = cfg["num_hidden_layers"], 0
    else:
        metas = [tomllib.load(open(os.path.join(PROFILE_HEADS, d, "head.toml"), "rb")) for d in os.listdir(PROFILE_HEADS)
                 if os.path.isfile(os.path.join(PROFILE_HEADS, d, "head.toml"))]
        layers, extra = cfg["num_hidden_layers"], sum(m.get("tune_layers", 0) for m in metas)
    return sum((layers + extra) * per_layer(r["tokens"]) for r in rows)


def agreement(ref, got, job):
    keys = ["topic"] + ([k for k in ref[0] if k.startswith("stance_")] if job == "heads" else [])
    out = {k: sum(a[k] == b.get(k) for a, b in zip(ref, got)) / len(ref) for k in keys}
    if job == "heads":
        both = sum(len({tuple(e) for e in a["entities"]} & {tuple(e) for e in b["entities"]}) for a, b in zip(ref, got))
        n = sum(len(a["entities"]) + len(b["entities"]) for a, b in zip(ref, got))
        out["entities"] = 2 * both / n if n else 1.0
    return out


def commit():
    return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def save(result, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    json.dump(result, open(path, "w"), indent=1)
    print(f"\nJSON: {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--paragraphs", type=int, default=2002)
    ap.add_argument("--only", default=",".join(n for n, r in RUNS.items() if not r[1].startswith("ts")))
    ap.add_argument("--json", default=os.path.join(ROOT, "target", "bench-peers.json"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        res = child(a.child[0], a.child[1], a.child[2])
        json.dump(res, open(os.path.join(a.child[2], a.child[0] + ".json"), "w"))
        return 0

    import torch
    import transformers
    import onnxruntime
    from transformers import PreTrainedTokenizerFast
    names = a.only.split(",")
    for n in names:
        if n not in RUNS:
            sys.exit(f"bench_peers: unknown run `{n}`; runs: {', '.join(RUNS)}")
    work = tempfile.mkdtemp(prefix="paratag-peers-")
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(E5, "tokenizer.json"))
    corpus = os.path.join(work, "corpus.jsonl")
    rows = build_corpus(a.paragraphs, tok, corpus)
    ntok = sum(r["tokens"] for r in rows)
    print(f"corpus: {len(rows)} paragraphs, {ntok} tokens ({min(r['tokens'] for r in rows)}-{max(r['tokens'] for r in rows)} per paragraph), "
          f"{len(LANGS)} languages; work folder {work}", flush=True)
    fused = {}
    for job in sorted({RUNS[n][0] for n in names if RUNS[n][1] == "ort"}):
        fused[job] = export(job, work)
        print(f"exported {job} for ONNX Runtime; fused: {fused[job]}", flush=True)
    peak = matmul_peak({"f32"} | {RUNS[n][2] for n in names})
    print(f"matmul peak (4096x768 @ 768x3072, {THREADS} threads): "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()), flush=True)

    times = {n: [] for n in names}
    rss = {n: 0 for n in names}
    extra = {n: {} for n in names}
    labels = {}
    for rnd in range(a.rounds):
        for n in names:
            t = time.perf_counter()
            p = subprocess.Popen([sys.executable, __file__, "--child", n, corpus, work])
            _, status, _ = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t
            if status != 0:
                sys.exit(f"bench_peers: run {n} failed (status {status})")
            res = json.load(open(os.path.join(work, n + ".json")))
            times[n].append(wall)
            rss[n] = max(rss[n], res.pop("rss"))
            job, engine, _ = RUNS[n]
            labels[n] = res.pop("labels") if engine != "paratag" else paratag_labels(os.path.join(work, f"{n}.parquet"), job)
            extra[n] = {k: min(v, extra[n].get(k, v)) for k, v in res.items()}
            print(f"round {rnd + 1} {n}: {wall:.1f} s", flush=True)

    result = {"date": time.strftime("%Y-%m-%d"), "commit": commit(),
              "cores": os.cpu_count(), "threads": THREADS, "paragraphs": len(rows), "tokens": ntok, "matmul_peak_gflops": peak,
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__},
              "onnx_fused": fused, "runs": {}}
    print()
    print("| run | job | best of %d, s | paragraphs/s | tokens/s | GFLOP/s | %% of peak | agreement with paratag f32 | peak RSS |" % a.rounds)
    print("|---|---|---|---|---|---|---|---|---|")
    for n in names:
        job, engine, dtype = RUNS[n]
        ref = "paratag-f32" if job == "heads" else "paratag-embed-f32"
        best = min(times[n])
        gf = flops(rows, job) / best / 1e9
        pk = peak["bf16" if dtype == "bf16" else "f32"]
        agree = agreement(labels[ref], labels[n], job) if ref in labels else {}
        ag = ", ".join(f"{k.replace('stance_', '')} {v:.3f}" for k, v in agree.items()) or "n/a"
        pct = f"{100 * gf / pk:.0f} %" if dtype != "int8" else "n/a"
        print(f"| {n} | {job} | {best:.1f} | {len(rows) / best:.1f} | {ntok / best:,.0f} | {gf:.0f} | {pct} | {ag} | {rss[n] / 1e9:.2f} GB |")
        result["runs"][n] = {"job": job, "engine": engine, "dtype": dtype, "seconds": times[n], "best_s": best,
                             "paragraphs_per_s": len(rows) / best, "tokens_per_s": ntok / best, "gflops": gf,
                             "agreement": agree, "peak_rss_bytes": rss[n], **extra[n]}
    save(result, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
