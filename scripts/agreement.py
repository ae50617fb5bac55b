#!/usr/bin/env python3
"""How far `--dtype bf16` moves paratag's labels from f32 on the shared test
sets' texts (no gold is read: this measures label stability, not quality).

    .pyenv/bin/python scripts/agreement.py [--profile NAME] [--json OUT]

Each set's texts (SIB-200 test in 9 languages, ANERCorp test, UNER PUD
en/de/ru, Mawqif test, RUW test) become one JSONL corpus; the corpus is tagged
with `paratag tag --no-segment` twice, in f32 and in bf16, with the given
profile (default: the default profile), and the labels are compared the way
scripts/bench_peers.py compares engines: share of equal topic and stance
labels, and the F1 overlap of entity spans (start, end, type). Needs
scripts/setup.sh first (the binary, the profile, and .pyenv with polars).
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared", "datasets"))
BIN = os.path.join(ROOT, "target", "release", "paratag")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_peers import agreement, commit, paratag_labels, save  # noqa: E402

SIB_LANGS = ["arb_Arab", "ary_Arab", "arz_Arab", "eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "rus_Cyrl", "ukr_Cyrl"]


def sib():
    for lang in SIB_LANGS:
        with open(os.path.join(SHARED, "sib200", lang, "test.tsv"), encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                yield r["text"]


def anercorp():
    """Sentences of the token-per-line file (blank lines between them)."""
    words = []
    with open(os.path.join(SHARED, "anercorp_camel", "ANERCorp_CamelLab_test.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts:
                words.append(parts[0])
            elif words:
                yield " ".join(words)
                words = []
    if words:
        yield " ".join(words)


def uner():
    for lang in ["en", "de", "ru"]:
        with open(os.path.join(SHARED, "uner_pud_en_de_ru", f"{lang}_pud-ud-test.iob2"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("# text = "):
                    yield line[len("# text = "):].strip()


def mawqif():
    with open(os.path.join(SHARED, "mawqif", "Mawqif_AllTargets_Test.csv"), encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            yield r["text"]


def ruw():
    with open(os.path.join(SHARED, "ruw_russia_ukraine_stance", "raw_test_Russia_Ukraine.csv"), encoding="gbk") as f:
        for r in csv.DictReader(f):
            yield r["Tweet"]


def cell(v):
    """A table cell: the share, or a dash where the profile has no such task."""
    return "–" if v is None else f"{v:.4f}"


SETS = {"sib200": sib, "anercorp": anercorp, "uner": uner, "mawqif": mawqif, "ruw": ruw}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="default")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--json", default=os.path.join(ROOT, "target", "agreement.json"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="paratag-agree-")
    result = {"date": time.strftime("%Y-%m-%d"),
              "commit": commit(),
              "profile": a.profile, "sets": {}}
    print("| set | paragraphs | topic | stance (lowest target) | entities |")
    print("|---|---|---|---|---|")
    total = {}
    for name in a.sets.split(","):
        if name not in SETS:
            sys.exit(f"agreement: unknown set `{name}`; sets: {', '.join(SETS)}")
        texts = [t for t in SETS[name]() if t.strip()]
        corpus = os.path.join(work, f"{name}.jsonl")
        with open(corpus, "w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": f"{name}-{i:05d}", "text": t}, ensure_ascii=False) + "\n")
        labels, secs = {}, {}
        for dtype in ["f32", "bf16"]:
            out = os.path.join(work, f"{name}-{dtype}.parquet")
            t0 = time.perf_counter()
            subprocess.run([BIN, "tag", corpus, "-o", out, "--no-segment", "-q", "--profile", a.profile, "--dtype", dtype], check=True)
            secs[dtype] = time.perf_counter() - t0
            labels[dtype] = paratag_labels(out, "heads")
        ag = agreement(labels["f32"], labels["bf16"], "heads")
        stance = [v for k, v in ag.items() if k.startswith("stance_")]
        row = {"paragraphs": len(texts), "topic": ag["topic"], "stance": min(stance) if stance else None,
               "entities": ag["entities"], "detail": ag, "seconds": secs}
        result["sets"][name] = row
        for k in ["topic", "stance", "entities"]:
            if row[k] is not None:
                total.setdefault(k, []).append((row[k], len(texts)))
        print(f"| {name} | {len(texts)} | {cell(row['topic'])} | {cell(row['stance'])} | {cell(row['entities'])} |", flush=True)
    # Paragraph-weighted over all sets (entities: weighted by paragraphs too).
    pooled = {k: sum(v * n for v, n in xs) / sum(n for _, n in xs) for k, xs in total.items()}
    result["pooled"] = pooled
    n = sum(r["paragraphs"] for r in result["sets"].values())
    print(f"| all | {n} | {cell(pooled.get('topic'))} | {cell(pooled.get('stance'))} | {cell(pooled.get('entities'))} |")
    save(result, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
