#!/usr/bin/env python3
"""A language-balanced NER training mix from ../shared/datasets.

    python3 scripts/ner_mix.py [--shared DIR] [--out DIR] [--seed N]

Writes one CoNLL file per source into OUT (default target/ner-mix/{train,dev})
so that `paratag train ner` sees each source as its own file: a file that
marks no span of some entity type (WikiANN has no MISC) gets that type
masked out of its loss rather than taught as `O`. Sentences are drawn at
random (seeded) up to a cap per source, so that no language or silver set
dominates: the big silver sets (WikiANN) get small caps, gold news gets
large ones. Only train and dev splits are read; NER-UK has no dev split,
so its last 600 sentences (a contiguous block, which keeps documents
together) are held out as dev, and ANERCorp's clitics-outside train file
(scripts/clitics.py, made by scripts/quality.sh) gives 400 dev sentences.
AQMAR's dev part is trained on: it is the only non-test Arabic Wikipedia
gold there is.
"""
import argparse
import json
import os
import random

# (name, path under shared, cap or None for all)
TRAIN = [
    *((f"conll-{l}", f"conll_ner_train_en_de_es_nl/{l}/train.conllu", 3000) for l in ("en", "de", "es", "nl")),
    *((f"wikiann-{l}", f"wikiann_ner_train_6lang/{l}/train.conllu", 1000) for l in ("de", "en", "es", "nl", "pl", "ru")),
    *((f"wikiann-{l}", f"wikiann_ner_train_ar_fr_uk/{l}/train.conllu", 2500) for l in ("ar", "fr", "uk")),
    ("wikineural-fr", "wikineural_ner_val_fr/fr/val.conllu", 2500),
    ("aqmar-ar", "aqmar_arabic_wiki_ner/dev.conllu", None),
]
DEV = [(f"conll-{l}", f"conll_ner_train_en_de_es_nl/{l}/val.conllu", 250) for l in ("en", "de", "es", "nl")]
UK = "ner_uk_v2_gold/train.conllu"
UK_DEV = 600
UK_CAP = 5000
ANER = "target/quality/anercorp-train.jsonl"
ANER_DEV = 400


def sentences(path):
    """Sentences as lists of lines, without -DOCSTART- and comment lines."""
    out, cur = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                if cur:
                    out.append(cur)
                cur = []
                continue
            if line.startswith("#"):
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if "-DOCSTART-" in cols[:2]:
                continue
            cur.append(line)
    if cur:
        out.append(cur)
    return out


def draw(sents, cap, rng):
    if cap is None or len(sents) <= cap:
        return sents
    idx = sorted(rng.sample(range(len(sents)), cap))
    return [sents[i] for i in idx]


def write(path, sents):
    with open(path, "w", encoding="utf-8") as f:
        for s in sents:
            f.write("\n".join(s) + "\n\n")
    print(f"ner_mix: {path}: {len(sents)} sentences")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default="../shared/datasets")
    ap.add_argument("--out", default="target/ner-mix")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    for d in ("train", "dev"):
        os.makedirs(os.path.join(a.out, d), exist_ok=True)
    for split, sources in (("train", TRAIN), ("dev", DEV)):
        for name, rel, cap in sources:
            s = draw(sentences(os.path.join(a.shared, rel)), cap, rng)
            write(os.path.join(a.out, split, f"{name}.conllu"), s)
    uk = sentences(os.path.join(a.shared, UK))
    write(os.path.join(a.out, "train", "ner-uk.conllu"), draw(uk[:-UK_DEV], UK_CAP, rng))
    write(os.path.join(a.out, "dev", "ner-uk.conllu"), uk[-UK_DEV:])
    if not os.path.exists(ANER):
        raise SystemExit(f"ner_mix: {ANER} missing: run scripts/clitics.py as scripts/quality.sh does")
    with open(ANER, encoding="utf-8") as f:
        rows = [l for l in f if l.strip()]
    json.loads(rows[0])  # a readable JSONL, or fail here with its error
    dev = set(rng.sample(range(len(rows)), ANER_DEV))
    for split, keep in (("train", lambda i: i not in dev), ("dev", lambda i: i in dev)):
        p = os.path.join(a.out, split, "anercorp.jsonl")
        with open(p, "w", encoding="utf-8") as f:
            f.writelines(r for i, r in enumerate(rows) if keep(i))
        print(f"ner_mix: {p}: {sum(keep(i) for i in range(len(rows)))} sentences")


if __name__ == "__main__":
    main()
