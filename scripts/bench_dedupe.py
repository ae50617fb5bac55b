#!/usr/bin/env python3
"""Repeated paragraphs: how many there are, and what computing each once saves.

    .pyenv/bin/python scripts/bench_dedupe.py [--runs 3] [--threads 2]
        [--timed syndicated,rusentne]

1. The duplicate rate: `paratag tag` over corpora from ../shared/datasets as
   a researcher would feed them (segmentation only: the rate needs no
   model), counting the rows whose `dup_of_article_id` is set (their text,
   after NFC and whitespace folding, came earlier in the job):
   - boilerplate_dev: the 1,349 news and web pages (HTML, segmented);
   - RUW: the Russia-Ukraine tweets, all splits (one paragraph each);
   - Mawqif: the Arabic tweets, all splits;
   - RuSentNE: the Russian news sentences, train + validation (the set
     repeats a sentence once per entity it rates, so its rate is the
     data set's shape more than the news');
   - a synthetic syndicated corpus from datasets/ukraine-aid: 4 outlets;
     each article runs at its own outlet and, with probability 0.35 (seeded),
     at each other one, with the outlet's own dateline line first and its
     own sign-off last; one article in eight carries the standard line "The
     Kremlin did not respond to a request for comment.".
2. The speed-up, side by side: on the corpora named by --timed (default
   the synthetic corpus and RuSentNE, the one public set that repeats much),
   `tag` (default profile, f32) by default against `--recompute-duplicates`,
   alternating, best of --runs, with the label columns of both compared
   (they must be equal).

Needs scripts/setup.sh. Writes target/bench-dedupe/ (corpora, outputs,
results.md) and prints the table. Not part of CI.
"""
import argparse
import csv
import gzip
import json
import os
import random
import subprocess
import sys
import time

import polars as pl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared", "datasets"))
OUT = os.path.join(ROOT, "target", "bench-dedupe")
BIN = os.path.join(ROOT, "target", "release", "paratag")
FIRST = ["dup_of_article_id", "dup_of_paragraph"]


def jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def pages():
    """boilerplate_dev's pages, unzipped into one folder."""
    d = os.path.join(OUT, "pages")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(SHARED, "boilerplate_dev")
    for sub in sorted(os.listdir(src)):
        h = os.path.join(src, sub, "html")
        if not os.path.isdir(h):
            continue
        for name in sorted(os.listdir(h)):
            if name.endswith(".html.gz"):
                with gzip.open(os.path.join(h, name), "rb") as f:
                    data = f.read()
                with open(os.path.join(d, name[: -len(".gz")]), "wb") as g:
                    g.write(data)
    return d


def tweets(name, folder, files, encoding, col):
    """One JSONL of a tweet set's CSV files, one tweet per article."""
    rows = []
    for split, fn in files:
        with open(os.path.join(SHARED, folder, fn), encoding=encoding, errors="replace",
                  newline="") as f:
            rows += [{"id": f"{name}-{split}-{i}", "text": r[col]}
                     for i, r in enumerate(csv.DictReader(f))]
    return jsonl(os.path.join(OUT, f"{name}.jsonl"), rows)


def ruw():
    files = [(s, f"raw_{s}_Russia_Ukraine.csv") for s in ("train", "val", "test")]
    return tweets("ruw", "ruw_russia_ukraine_stance", files, "gbk", "Tweet")


def mawqif():
    files = [(s, f"Mawqif_AllTargets_{s}.csv") for s in ("Train", "Test")]
    return tweets("mawqif", "mawqif", files, "utf-8-sig", "text")


def rusentne():
    rows = []
    src = os.path.join(SHARED, "rusentne2023_entity_sentiment")
    for split in ("train", "validation"):
        with open(os.path.join(src, f"{split}.jsonl"), encoding="utf-8") as f:
            rows += [{"id": r["id"], "text": r["text"]} for r in map(json.loads, f)]
    return jsonl(os.path.join(OUT, "rusentne.jsonl"), rows)


def syndicated(seed=1):
    rng = random.Random(seed)
    outlets = ["Kyiv Daily", "Berlin Courier", "Gulf Herald", "Paris Matin"]
    std = "The Kremlin did not respond to a request for comment."
    src = os.path.join(ROOT, "datasets", "ukraine-aid", "articles.jsonl")
    with open(src, encoding="utf-8") as f:
        articles = [json.loads(line) for line in f]
    rows = []
    for i, a in enumerate(articles):
        home = i % len(outlets)
        body = a["text"] + (f"\n\n{std}" if i % 8 == 0 else "")
        for k, o in enumerate(outlets):
            if k != home and rng.random() >= 0.35:
                continue
            text = f"{o.upper()}, {1 + i % 28} March ({o}) -\n\n{body}\n\nReporting for {o}; editing by desk {k}."
            rows.append({"id": f"{a['id']}@{k}", "text": text, "outlet": o})
    return jsonl(os.path.join(OUT, "syndicated.jsonl"), rows)


def tag(corpus, out, threads, extra):
    args = [BIN, "tag", corpus, "-o", out, "--force", "-q", "--dtype", "f32",
            "--threads", str(threads)] + extra
    t0 = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench-dedupe: {' '.join(args)}: {r.stderr.strip()}")
    return time.perf_counter() - t0


def labels_equal(a, b):
    a, b = pl.read_parquet(a).drop(FIRST), pl.read_parquet(b).drop(FIRST)
    return a.equals(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timed", default="syndicated,rusentne",
                    help="corpora to time: pages, ruw, mawqif, rusentne, syndicated")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    known = {
        "pages": ("boilerplate_dev pages (HTML)", pages, []),
        "ruw": ("RUW tweets", ruw, ["--no-segment"]),
        "mawqif": ("Mawqif tweets", mawqif, ["--no-segment"]),
        "rusentne": ("RuSentNE sentences", rusentne, ["--no-segment"]),
        "syndicated": ("synthetic syndicated news", syndicated, []),
    }
    timed = set(filter(None, a.timed.split(",")))
    if timed - known.keys():
        sys.exit(f"bench-dedupe: --timed: unknown corpus {sorted(timed - known.keys())[0]}")
    corpora = [(name, make(), extra, key in timed) for key, (name, make, extra) in known.items()]
    lines = ["| corpus | articles | paragraphs | copied | share copied | default s | `--recompute-duplicates` s | speed-up | labels equal |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, corpus, extra, timed in corpora:
        out = os.path.join(OUT, f"{len(lines)}.parquet")
        slow = os.path.join(OUT, f"{len(lines)}-all.parquet")
        fast_s, slow_s = [], []
        # The rate needs no model: untimed corpora are only segmented.
        count_only = [] if timed else ["--no-topic", "--no-stance", "--no-ner"]
        for _ in range(a.runs if timed else 1):
            fast_s.append(tag(corpus, out, a.threads, extra + count_only))
            if timed:
                slow_s.append(tag(corpus, slow, a.threads, extra + ["--recompute-duplicates"]))
        df = pl.read_parquet(out)
        n, copied = df.height, int(df["dup_of_article_id"].is_not_null().sum())
        arts = df["article_id"].n_unique()
        if timed:
            f, s = min(fast_s), min(slow_s)
            cells = f"{f:.1f} | {s:.1f} | {s / f:.2f}x | {labels_equal(out, slow)}"
        else:
            cells = "- | - | - | -"
        lines.append(f"| {name} | {arts:,} | {n:,} | {copied:,} | {100 * copied / max(n, 1):.1f} % | {cells} |")
        print(lines[-1], flush=True)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    head = (f"{time.strftime('%Y-%m-%d')}, commit {commit}, f32, --threads {a.threads}, "
            f"best of {a.runs} alternating for the timed rows.\n\n")
    with open(os.path.join(OUT, "results.md"), "w", encoding="utf-8") as f:
        f.write(head + "\n".join(lines) + "\n")
    print(head + "\n".join(lines))


if __name__ == "__main__":
    main()
