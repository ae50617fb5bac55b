#!/usr/bin/env python3
"""Training sheets for the any-target stance head (`paratag train stance
--any-target`): long stance tables (one (text, target) pair per row; columns
article_id, paragraph, text, target, stance) from the shared sets' TRAIN and
DEV splits only.

Sets (read from ../shared/datasets, read-only; see each SOURCE.md)
  train: IBM ArgQ train (en, 49 motions; capped, stratified), Perspectrum
         train (en, claims), VAST dev (en, many topics; VAST has no train
         split here, so VAST is measured on its test split only), RuSentNE
         train (ru, sentiment toward an entity; `none` capped), ANS train (ar,
         headline pairs: s1 is the target, s2 the text; agree/disagree/other).
  dev:   ArgQ dev and Perspectrum dev (capped), RuSentNE validation (capped).
  Mawqif and RUW are NOT used by default (the LoRA adapter the head is
  trained over was, with per-target heads: datasets/recipes/ukraine-multi.toml,
  so measurements on them are not clean unseen targets). `--with-tweets`
  adds their train splits (every target; Mawqif's train file holds the rows
  unseen_targets.py samples as its dev sheets, so a model trained with them
  can no longer be measured on Mawqif or RUW).

`none` where a set has none: a seeded share of ArgQ and Perspectrum texts
also get another motion or claim as a second target, labeled `none` (the
text argues about something else); the row shares the text's article id
(as its next paragraph).

Usage
  python3 scripts/stance_pairs.py [--shared ../shared/datasets]
      [--out target/stance-pairs] [--seed 1] [--argq-cap 8000]
      [--none-share 0.15] [--with-tweets]
Writes OUT/train.csv and OUT/dev.csv, and prints their label counts.
Python 3 standard library only.
"""
import argparse
import csv
import os
import random
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unseen_targets import (label, mawqif, number_paragraphs, read_jsonl,  # noqa: E402
                            ruw, stratified, write_sheet)


def jsonl_rows(path, prefix, key=lambda o: o["id"]):
    return [{"article_id": f"{prefix}-{key(o)}", "text": o["text"], "target": o["target"],
             "stance": label(o["label"], f"{path}:{i + 1}")}
            for i, o in enumerate(read_jsonl(path))]


def with_unrelated(rows, share, rng):
    """A `share` of the rows again, each with another row's target, as none."""
    targets = sorted({r["target"] for r in rows})
    out = []
    for r in rows:
        if rng.random() < share:
            other = rng.choice(targets)
            while other == r["target"]:
                other = rng.choice(targets)
            out.append(dict(r, target=other, stance="none"))
    return out


def capped_none(rows, keep_none, rng):
    none = [r for r in rows if r["stance"] == "none"]
    rng.shuffle(none)
    keep = {id(r) for r in none[:keep_none]}
    return [r for r in rows if r["stance"] != "none" or id(r) in keep]


def ans(path):
    with open(path, encoding="utf-8", newline="") as f:
        return [{"article_id": f"ans-{os.path.basename(path)}-{i}", "text": r["s2"],
                 "target": r["s1"],
                 "stance": {"agree": "favor", "disagree": "against", "other": "none"}[r["stance"]]}
                for i, r in enumerate(csv.DictReader(f))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "shared", "datasets"))
    ap.add_argument("--out", default="target/stance-pairs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--argq-cap", type=int, default=8000)
    ap.add_argument("--dev-cap", type=int, default=800)
    ap.add_argument("--none-share", type=float, default=0.15)
    ap.add_argument("--with-tweets", action="store_true")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    d = lambda *p: os.path.join(a.shared, *p)

    argq = stratified(jsonl_rows(d("ibm_argq30k_stance", "train.jsonl"), "argq"), a.argq_cap, a.seed)
    persp = jsonl_rows(d("perspectrum_stance", "train.jsonl"), "persp")
    vast = jsonl_rows(d("vast_zero_shot_stance", "dev.jsonl"), "vast")
    ru = jsonl_rows(d("rusentne2023_entity_sentiment", "train.jsonl"), "rusentne")
    ru = capped_none(ru, 1500, rng)
    ar = ans(d("ans_khouja", "data", "stance", "train.csv"))
    train = argq + persp + vast + ru + ar
    train += with_unrelated(argq, a.none_share, rng) + with_unrelated(persp, a.none_share, rng)
    if a.with_tweets:
        train += [r for s in mawqif(a.shared, "train", 0, a.seed) for r in s["rows"]]
        train += [r for s in ruw(a.shared, "train", 0, a.seed, "gbk") for r in s["rows"]]

    dargq = stratified(jsonl_rows(d("ibm_argq30k_stance", "dev.jsonl"), "argq"), a.dev_cap, a.seed)
    dpersp = stratified(jsonl_rows(d("perspectrum_stance", "dev.jsonl"), "persp"), a.dev_cap, a.seed)
    dru = stratified(jsonl_rows(d("rusentne2023_entity_sentiment", "validation.jsonl"), "rusentne"),
                     a.dev_cap // 2, a.seed)
    dev = dargq + dpersp + dru
    dev += with_unrelated(dargq, a.none_share, rng) + with_unrelated(dpersp, a.none_share, rng)

    os.makedirs(a.out, exist_ok=True)
    for name, rows in (("train", train), ("dev", dev)):
        rows.sort(key=lambda r: r["article_id"])
        path = os.path.join(a.out, f"{name}.csv")
        write_sheet(path, number_paragraphs(dedupe(rows)))
        print(f"stance_pairs: {path}: {len(rows)} pairs, {len({r['target'] for r in rows})} "
              f"targets, {dict(Counter(r['stance'] for r in rows))}", file=sys.stderr)


def dedupe(rows):
    """One row per (article, target): a pair never counts twice."""
    seen, out = set(), []
    for r in rows:
        k = (r["article_id"], r["target"])
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


if __name__ == "__main__":
    main()
