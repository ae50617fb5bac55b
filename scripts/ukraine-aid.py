#!/usr/bin/env python3
"""Builds datasets/ukraine-aid/{train,dev,test}.jsonl and articles.jsonl from
the hand-written sources in datasets/ukraine-aid/source/*.txt.

Source format (one file per language):

    # article: en-01
    # story: eu-50bn
    # split: train
    TOPIC | STANCE | HOLDER | text with [entity text]{TYPE} marks

STANCE is the position the paragraph expresses or reports (favor, against,
none); HOLDER says whose it is: `author` (argued by the paragraph itself),
`reported` (someone else's: a quote, a statement, a poll), `-` for none.

Output: paratag gold JSONL (offsets in code points, so Python str indices),
one paragraph per line, plus the articles as a tagging corpus. The script
refuses a story split across train/dev/test, so translations of one story
never straddle a split. Deterministic: same sources, same bytes.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "datasets" / "ukraine-aid"
TOPICS = {"aid_to_ukraine", "peace_talks", "battlefield", "domestic_politics",
          "middle_east", "economy", "other"}
STANCES = {"favor", "against", "none"}
HOLDERS = {"author", "reported"}
TYPES = {"PER", "LOC", "ORG", "MISC"}
MARK = re.compile(r"\[([^\]]+)\]\{([A-Z]+)\}")


def parse(path):
    lang = path.stem
    articles, cur = [], None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path}:{n}"
        if not line.strip():
            continue
        m = re.match(r"# (article|story|split): (\S+)$", line)
        if m:
            if m.group(1) == "article":
                cur = {"id": m.group(2), "lang": lang, "paragraphs": []}
                articles.append(cur)
            else:
                cur[m.group(1)] = m.group(2)
            continue
        parts = line.split(" | ", 3)
        if len(parts) != 4 or cur is None:
            sys.exit(f"{where}: expected `TOPIC | STANCE | HOLDER | text`")
        topic, stance, holder, marked = parts
        if topic not in TOPICS or stance not in STANCES:
            sys.exit(f"{where}: unknown topic `{topic}` or stance `{stance}`")
        if (stance == "none") != (holder == "-") or (holder != "-" and holder not in HOLDERS):
            sys.exit(f"{where}: holder `{holder}`: author or reported for favor/against, - for none")
        text, ents, at = "", [], 0
        for m in MARK.finditer(marked):
            text += marked[at:m.start()]
            if m.group(2) not in TYPES:
                sys.exit(f"{where}: unknown entity type `{m.group(2)}`")
            ents.append({"start": len(text), "end": len(text) + len(m.group(1)),
                         "label": m.group(2), "text": m.group(1)})
            text += m.group(1)
            at = m.end()
        text += marked[at:]
        if "[" in text or "]{" in text:
            sys.exit(f"{where}: unbalanced entity mark")
        for e in ents:
            assert text[e["start"]:e["end"]] == e["text"]
        cur["paragraphs"].append((topic, stance, holder, text, ents))
    return articles


def main():
    articles = []
    for p in sorted((ROOT / "source").glob("*.txt")):
        articles += parse(p)
    split_of = {}
    for a in articles:
        if a.get("split") not in {"train", "dev", "test"} or "story" not in a:
            sys.exit(f"article {a['id']}: needs `# story:` and `# split: train|dev|test`")
        if split_of.setdefault(a["story"], a["split"]) != a["split"]:
            sys.exit(f"story {a['story']} is in more than one split")
    out = {"train": [], "dev": [], "test": []}
    corpus = []
    for a in articles:
        for i, (topic, stance, holder, text, ents) in enumerate(a["paragraphs"]):
            row = {
                "article_id": a["id"], "paragraph": i, "text": text,
                "topic": topic, "stance": {"ukraine_aid": stance},
                "entities": [{k: e[k] for k in ("start", "end", "label")} for e in ents],
                "coder": "paratag-authors", "lang": a["lang"], "story": a["story"],
            }
            if holder != "-":
                row["holder"] = {"ukraine_aid": holder}
            out[a["split"]].append(row)
        corpus.append({"id": a["id"], "lang": a["lang"], "split": a["split"],
                       "text": "\n\n".join(p[3] for p in a["paragraphs"])})
    for split, rows in out.items():
        with open(ROOT / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(ROOT / "articles.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for r in corpus:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    for split, rows in out.items():
        langs = {}
        for r in rows:
            langs[r["lang"]] = langs.get(r["lang"], 0) + 1
        print(split, len(rows), dict(sorted(langs.items())))


if __name__ == "__main__":
    main()
