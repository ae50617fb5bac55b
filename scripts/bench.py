#!/usr/bin/env python3
"""paratag quality and speed figures for docs/benchmarks.md.

Quality: topic zero-shot with the offline e5 encoder on SIB-200 (real labeled
data in ../shared/datasets/sib200), dev and test splits, per language, with
datasets/codebooks/sib200.toml (written from the label names; nothing was
tuned on test).

Speed: the same 9 x 204 test sentences as one job, paragraphs per second,
with runs side by side in this one invocation so ratios are meaningful on a
noisy machine.

Run scripts/bench.sh (it makes a venv with polars in the user cache).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import polars as pl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIB = os.path.join(ROOT, "..", "shared", "datasets", "sib200")
BIN = os.path.join(ROOT, "target", "release", "paratag")
CODEBOOK = os.path.join(ROOT, "datasets", "codebooks", "sib200.toml")
LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "rus_Cyrl", "ukr_Cyrl", "arb_Arab", "ary_Arab", "arz_Arab"]


def tag(inputs, out, *extra):
    t = time.perf_counter()
    # SIB-200 rows are single sentences: no segmentation, every row is tagged.
    subprocess.run([BIN, "tag", *inputs, "-o", out, "-c", CODEBOOK, "--no-ner", "--no-segment", "-q", *extra], check=True)
    return time.perf_counter() - t


def macro_f1(df):
    f1s = []
    for c in df["gold"].unique().to_list():
        tp = df.filter((pl.col("topic") == c) & (pl.col("gold") == c)).height
        fp = df.filter((pl.col("topic") == c) & (pl.col("gold") != c)).height
        fn = df.filter((pl.col("topic") != c) & (pl.col("gold") == c)).height
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return sum(f1s) / len(f1s)


def main():
    tmp = tempfile.mkdtemp(prefix="paratag-bench-")
    print("| split | " + " | ".join(l.split("_")[0] for l in LANGS) + " |")
    print("|---|" + "---|" * len(LANGS))
    for split in ["dev", "test"]:
        accs, f1s = [], []
        for lang in LANGS:
            out = os.path.join(tmp, f"{lang}-{split}.parquet")
            tag([os.path.join(SIB, lang, f"{split}.tsv"), "--id-col", "index_id"], out)
            df = pl.read_parquet(out).with_columns(gold=pl.col("category").str.replace("/", "_"))
            n_in = sum(1 for _ in open(os.path.join(SIB, lang, f"{split}.tsv"), encoding="utf-8")) - 1
            assert df.height == n_in, f"{lang} {split}: {df.height} rows for {n_in} sentences"
            accs.append((df["topic"] == df["gold"]).mean())
            f1s.append(macro_f1(df))
        print(f"| {split} accuracy | " + " | ".join(f"{a:.3f}" for a in accs) + " |")
        print(f"| {split} macro-F1 | " + " | ".join(f"{f:.3f}" for f in f1s) + " |")

    # Speed: one job over all test sentences.
    jsonl = os.path.join(tmp, "all.jsonl")
    n = 0
    with open(jsonl, "w", encoding="utf-8") as f:
        for lang in LANGS:
            for line in list(open(os.path.join(SIB, lang, "test.tsv"), encoding="utf-8"))[1:]:
                idx, cat, text = line.rstrip("\n").split("\t", 2)
                f.write(json.dumps({"id": f"{lang}:{idx}", "text": text, "category": cat}, ensure_ascii=False) + "\n")
                n += 1
    print()
    print(f"| run ({n} paragraphs, e5-small, topics + stance-free codebook) | seconds | paragraphs/s | ratio |")
    print("|---|---|---|---|")
    base = None
    for label, extra in [("--threads 2 --batch-tokens 2048 (default)", ["--threads", "2"]),
                         ("--threads 1 --batch-tokens 2048", ["--threads", "1"]),
                         ("--threads 2 --batch-tokens 8192", ["--threads", "2", "--batch-tokens", "8192"])]:
        s = tag([jsonl], os.path.join(tmp, "speed.parquet"), *extra)
        base = base or s
        print(f"| {label} | {s:.1f} | {n / s:.1f} | {base / s:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
