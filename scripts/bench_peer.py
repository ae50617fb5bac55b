#!/usr/bin/env python3
"""Side-by-side speed of paratag and Hugging Face transformers on the same job.

The job: embed the 9 x 204 SIB-200 test sentences with multilingual-e5-small
(the folder scripts/setup.sh imported, so both read the same weights) and pick
the closest topic description of datasets/codebooks/sib200.toml. transformers
runs the usual recipe (AutoModel, mean pooling, batches of 32 in input order,
torch.set_num_threads(2)); paratag runs `paratag tag`, which also reads,
segments, detects language and writes Parquet. Both are timed in this one
process, alternating, best of 3, and the topics they choose are compared.

Run `scripts/bench.sh --peer` (it makes a venv with torch 2.4.0 and
transformers in the user cache; about 3 GB).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib

import polars as pl
import torch
from transformers import AutoModel, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIB = os.path.join(ROOT, "..", "shared", "datasets", "sib200")
BIN = os.path.join(ROOT, "target", "release", "paratag")
CODEBOOK = os.path.join(ROOT, "datasets", "codebooks", "sib200.toml")
HOME = os.environ.get("PARATAG_HOME", os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "paratag", "home"))
E5 = os.path.join(HOME, "models", "multilingual-e5-small")
LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "rus_Cyrl", "ukr_Cyrl", "arb_Arab", "ary_Arab", "arz_Arab"]


def main():
    torch.set_num_threads(2)
    rows = []
    for lang in LANGS:
        for line in list(open(os.path.join(SIB, lang, "test.tsv"), encoding="utf-8"))[1:]:
            idx, cat, text = line.rstrip("\n").split("\t", 2)
            rows.append((f"{lang}:{idx}", text))
    tmp = tempfile.mkdtemp(prefix="paratag-peer-")
    jsonl = os.path.join(tmp, "all.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for i, t in rows:
            f.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")
    topics = tomllib.load(open(CODEBOOK, "rb"))["topic"]
    ids = [t["id"] for t in topics]
    anchors = [t.get("description", t["label"]) for t in topics]

    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(E5, "tokenizer.json"), pad_token="<pad>")
    model = AutoModel.from_pretrained(E5).eval()

    def hf_embed(texts):
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                b = tok(["query: " + t for t in texts[i:i + 32]], padding=True, truncation=True, max_length=512, return_tensors="pt")
                h = model(**b).last_hidden_state
                m = b["attention_mask"].unsqueeze(-1).float()
                e = (h * m).sum(1) / m.sum(1)
                out.append(torch.nn.functional.normalize(e, dim=-1))
        return torch.cat(out)

    def hf_run():
        e = hf_embed([t for _, t in rows])
        a = hf_embed(anchors)
        return [ids[j] for j in (e @ a.T).argmax(1).tolist()]

    def paratag_run():
        out = os.path.join(tmp, "p.parquet")
        subprocess.run([BIN, "tag", jsonl, "-o", out, "-c", CODEBOOK, "--no-ner", "--no-segment", "-q", "--threads", "2"], check=True)
        df = pl.read_parquet(out)
        assert df.height == len(rows)
        return df["topic"].to_list()

    times = {"paratag": [], "transformers": []}
    results = {}
    for _ in range(3):
        for name, fn in [("paratag", paratag_run), ("transformers", hf_run)]:
            t = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t)
    p, h = min(times["paratag"]), min(times["transformers"])
    agree = sum(a == b for a, b in zip(results["paratag"], results["transformers"])) / len(rows)
    print(f"| job ({len(rows)} sentences, 2 threads) | best of 3, s | sentences/s | speed vs transformers |")
    print("|---|---|---|---|")
    print(f"| transformers {__import__('transformers').__version__} + torch {torch.__version__}, batches of 32 | {h:.1f} | {len(rows) / h:.1f} | 1.00 |")
    print(f"| paratag tag (end to end, Parquet out) | {p:.1f} | {len(rows) / p:.1f} | {h / p:.2f} |")
    print(f"\nsame topic chosen for {agree:.1%} of sentences")


if __name__ == "__main__":
    sys.exit(main())
