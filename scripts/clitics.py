#!/usr/bin/env python3
"""Converts ANERCorp (token SPACE tag, blank line between sentences) to
paratag gold JSONL with one Arabic clitic convention: clitics outside the
entity, as datasets/ukraine-aid/GUIDELINES.md says.

ANERCorp marks whole whitespace tokens, so a leading conjunction or
preposition is inside the span (`وألمانيا` B-LOC), while the project's own
gold keeps it out (`و[ألمانيا]`). For an entity's first token, a leading
و ب ل ك ف is split off when the rest is itself an entity token of the
corpus (so `واشنطن`, Washington, keeps its و: `اشنطن` is no entity), up to
two of them (`وب[غداد]`). The definite article ال stays in the span.

The text of each sentence is its tokens joined by single spaces (as
paratag's CoNLL reader joins them), so the converted gold and the original
describe the same text; only span starts move. Offsets are code points.

    scripts/clitics.py IN.txt OUT.jsonl [--vocab OTHER.txt ...]

--vocab adds the entity tokens of other files (e.g. train for test) to the
set the rest must be found in. Prints how many spans were changed.
"""

import argparse
import json
import sys

CLITICS = "وبلكف"


def sentences(path):
    sent = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                if sent:
                    yield sent
                sent = []
                continue
            parts = line.rsplit(" ", 1)
            if len(parts) != 2:
                sys.exit(f"{path}:{n}: expected `token tag`, got {line!r}")
            sent.append((parts[0], parts[1]))
    if sent:
        yield sent


def entity_tokens(path):
    return {tok for s in sentences(path) for tok, tag in s if tag != "O"}


def strip(tok, vocab):
    """How many leading clitic letters to move out of the span."""
    k = 0
    while k < 2 and len(tok) - k > 2 and tok[k] in CLITICS and tok[k + 1 :] in vocab:
        k += 1
    return k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--vocab", action="append", default=[])
    ap.add_argument("--entity-map", default="PERS=PER")
    a = ap.parse_args()
    renames = dict(p.split("=", 1) for p in a.entity_map.split(",") if p)
    vocab = entity_tokens(a.src)
    for v in a.vocab:
        vocab |= entity_tokens(v)
    changed = total = 0
    out = []
    for i, sent in enumerate(sentences(a.src)):
        text, spans, pos = [], [], 0
        cur = None
        for tok, tag in sent:
            start = pos
            text.append(tok)
            pos += len(tok) + 1
            if tag.startswith("B-") or (tag.startswith("I-") and (cur is None or cur[2] != tag[2:])):
                if cur:
                    spans.append(cur)
                k = strip(tok, vocab)
                changed += k > 0
                total += 1
                cur = [start + k, start + len(tok), tag[2:]]
            elif tag.startswith("I-"):
                cur[1] = start + len(tok)
            else:
                if cur:
                    spans.append(cur)
                cur = None
        if cur:
            spans.append(cur)
        out.append(
            json.dumps(
                {
                    "article_id": f"s{i}",
                    "paragraph": 0,
                    "text": " ".join(text),
                    "entities": [
                        {"start": s, "end": e, "label": renames.get(t, t)} for s, e, t in spans
                    ],
                },
                ensure_ascii=False,
            )
        )
    with open(a.dst, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"clitics: {a.src}: {changed} of {total} spans start after a clitic -> {a.dst}", file=sys.stderr)


if __name__ == "__main__":
    main()
