#!/usr/bin/env python3
"""Where the default model's time goes, op by op, on the benchmark corpus.

    scripts/bench.sh --profile [--paragraphs 300] [--dtype f32|bf16]

The profiler is memory-hungry: one session over the whole corpus was killed
here at 1,000 paragraphs (24 GB). Sessions are per 10 batches now, and the
2,002-paragraph benchmark corpus peaked at 18 GB; 300 paragraphs need 2.5.

paratag runs the encoder through libtorch's eager ATen ops (rust-bert's
modules over tch). Its Rust call path cannot be profiled op by op from the
binary, so this profiles the same computation on the same libtorch (torch
2.4.0) in Python: the default profile's model as `scripts/bench_peers.py`
builds it (its adapter merged, its heads in transformers' modules), with
eager attention (matmul, mask add, softmax, matmul: rust-bert's form),
length-sorted batches within 2,048 padded tokens as paratag makes them, 2
threads, `torch.inference_mode`. The ATen ops are grouped into what the
issue asks for (QKV and the other linear maps, attention matmuls, softmax
and masking, layer norm, GELU, copies and layout, embeddings, heads),
each with its share of the time and, for the matrix products, its achieved
GFLOP/s (FLOPs of the padded shapes), against libtorch's matmul peak on
this machine. The profiler's own cost falls mostly on the many small ops,
so their shares are upper bounds; the unprofiled time is printed beside.
Besides it: `paratag tag` on the same corpus and threads, its wall time and
its `models busy` (the share of the time the model threads computed), to
show how far the Rust path is from the eager ops' total.

Writes target/profile-encoder.json and prints a Markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_peers as bp  # noqa: E402

GROUPS = [
    ("linear maps (QKV, attention output, FFN)", ("aten::addmm", "aten::linear")),
    ("attention matmuls (QK^T, softmax·V)", ("aten::bmm", "aten::matmul", "aten::mm")),
    ("softmax", ("aten::softmax", "aten::_softmax")),
    ("mask and scale (add, div, mul, sub, rsub)", ("aten::add", "aten::add_", "aten::div", "aten::mul", "aten::sub", "aten::rsub")),
    ("layer norm", ("aten::layer_norm", "aten::native_layer_norm")),
    ("GELU", ("aten::gelu",)),
    ("copies and layout (copy_, contiguous, clone, cat, to)", ("aten::copy_", "aten::contiguous", "aten::clone", "aten::cat", "aten::to", "aten::_to_copy")),
    ("embeddings", ("aten::embedding", "aten::index_select", "aten::cumsum")),
]


def group_of(name):
    for g, names in GROUPS:
        if name in names:
            return g
    return "other (views, reductions, heads' pooling, allocation)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paragraphs", type=int, default=300)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    a = ap.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import PreTrainedTokenizerFast

    torch.set_num_threads(bp.THREADS)
    work = tempfile.mkdtemp(prefix="paratag-profile-")
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(bp.E5, "tokenizer.json"))
    corpus = os.path.join(work, "corpus.jsonl")
    rows = bp.build_corpus(a.paragraphs, tok, corpus)
    ntok = sum(r["tokens"] for r in rows)
    module, _ = bp.make_module("heads", attn="eager")
    enc = [tok(bp.PREFIX + r["text"])["input_ids"] for r in rows]
    plan = bp.batches([len(e) for e in enc])
    padded = sum(max(len(enc[i]) for i in b) * len(b) for b in plan)
    tensors = []
    for b in plan:
        n = max(len(enc[i]) for i in b)
        ids = torch.full((len(b), n), tok.pad_token_id or 1, dtype=torch.long)
        mask = torch.zeros((len(b), n), dtype=torch.long)
        for j, i in enumerate(b):
            ids[j, : len(enc[i])] = torch.tensor(enc[i])
            mask[j, : len(enc[i])] = 1
        tensors.append((ids, mask))
    auto = torch.autocast("cpu", dtype=torch.bfloat16) if a.dtype == "bf16" else torch.autocast("cpu", enabled=False)

    def run():
        with torch.inference_mode(), auto:
            for ids, mask in tensors:
                module(ids, mask)

    run()  # warm-up: oneDNN/MKL kernels, allocator
    t0 = time.perf_counter()
    run()
    plain = time.perf_counter() - t0
    # No shapes, FLOP counters or stacks: they cost more than the small ops
    # they time (with them, op time tripled and RSS reached 20 GB). One
    # profiler session per 10 batches: a single one over the whole corpus
    # kept growing until the kernel killed it (24 GB at 1,000 paragraphs).
    groups = {}
    total = 0.0
    for k in range(0, len(tensors), 10):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            with torch.inference_mode(), auto:
                for ids, mask in tensors[k : k + 10]:
                    module(ids, mask)
        for e in prof.key_averages():
            us = e.self_cpu_time_total
            total += us
            g = groups.setdefault(group_of(e.key), {"us": 0.0, "flops": 0, "ops": {}})
            g["us"] += us
            g["ops"][e.key] = g["ops"].get(e.key, 0) + us
        del prof
    # FLOPs of what is computed (padded tokens), per encoder pass and tuned
    # head layer: linear maps 2·T·(4h² + 2hi), attention 4·n·L²·h.
    cfg = json.load(open(os.path.join(bp.E5, "config.json")))
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    layers = cfg["num_hidden_layers"] + sum(len(l) for l in module.layers)
    shapes = [(len(b), max(len(enc[i]) for i in b)) for b in plan]
    lin = layers * sum(2 * n * L * (4 * h * h + 2 * h * inter) for n, L in shapes)
    att = layers * sum(4 * n * L * L * h for n, L in shapes)
    groups.get(GROUPS[0][0], {})["flops"] = lin
    groups.get(GROUPS[1][0], {})["flops"] = att
    peak = bp.matmul_peak()[a.dtype]

    # paratag on the same corpus, same threads (its own run, not profiled).
    out = os.path.join(work, "paratag.parquet")
    t0 = time.perf_counter()
    r = subprocess.run([bp.BIN, "tag", corpus, "-o", out, "--no-segment", "--threads", str(bp.THREADS),
                        "--dtype", a.dtype], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"profile_encoder: paratag failed: {r.stderr.strip()}")
    busy = next((l.split("models busy ")[1].split(" %")[0] for l in r.stderr.splitlines() if "models busy" in l), "?")

    lines = [f"{time.strftime('%Y-%m-%d')}, commit {bp.commit()}, {a.dtype}, {bp.THREADS} threads: "
             f"{len(rows)} paragraphs, {ntok:,} tokens ({padded:,} padded, {100 * (padded - ntok) / padded:.1f} % padding), "
             f"{len(plan)} batches. libtorch matmul peak {peak:.0f} GFLOP/s.",
             "",
             f"Eager ops, profiled: {total / 1e6:.1f} s of op time (unprofiled run {plain:.1f} s). "
             f"`paratag tag` on the same corpus: {wall:.1f} s wall, models busy {busy} %.",
             "",
             "| part | share of op time | seconds | GFLOP/s | % of matmul peak |",
             "|---|---|---|---|---|"]
    result = {"paragraphs": len(rows), "tokens": ntok, "padded": padded, "peak": peak, "plain_s": plain,
              "op_s": total / 1e6, "paratag_s": wall, "paratag_busy": busy, "groups": {}}
    for g, v in sorted(groups.items(), key=lambda kv: -kv[1]["us"]):
        s = v["us"] / 1e6
        gf = v["flops"] / max(s, 1e-9) / 1e9 if v["flops"] else None
        cells = f"{gf:.0f} | {100 * gf / peak:.0f} %" if gf else "- | -"
        lines.append(f"| {g} | {100 * v['us'] / total:.1f} % | {s:.2f} | {cells} |")
        top = sorted(v["ops"].items(), key=lambda kv: -kv[1])[:4]
        result["groups"][g] = {"s": s, "gflops": gf, "top_ops": {k: u / 1e6 for k, u in top}}
    path = os.path.join(bp.ROOT, "target", f"profile-encoder-{a.dtype}.json")
    json.dump(result, open(path, "w"), indent=1)
    print("\n".join(lines))
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
