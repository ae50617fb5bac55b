#!/usr/bin/env python3
"""Gold sheets and the summary table for stance on UNSEEN targets.

What it does
  `build` converts one split of five shared stance sets into long stance
  tables that `paratag eval` reads (CSV, one target per row: columns
  article_id, paragraph, text, target, stance, plus pass-through columns),
  writes an empty codebook (no topics, no stances), so that eval adds every
  gold target as a target of its own ("The author supports/opposes
  <target>."), and a manifest.json describing each sheet. `codebook` writes a
  codebook holding the targets of one sheet with exactly the sentences eval
  adds (for the provenance check: `paratag tag` + `paratag inspect`, since
  eval's own report does not name the models it ran); `provenance` compares
  that run with eval's and summarises it. `table`
  reads the manifest and eval's JSON reports and prints one Markdown table.
  scripts/unseen-targets.sh drives all three; use it rather than this file.

Sets (all read from ../shared/datasets, read-only; see each SOURCE.md)
  ibm_argq30k_stance      dev.jsonl / test.jsonl; topics of train/dev/test are
                          disjoint; FAVOR/AGAINST only -> metric F_avg.
  perspectrum_stance      dev.jsonl / test.jsonl; claims as targets (release's
                          claim-level split); FAVOR/AGAINST only -> F_avg.
                          article = a perspective cluster (its paraphrases are
                          not independent), so eval's bootstrap resamples them
                          as a whole.
  vast_zero_shot_stance   dev.jsonl / test.jsonl; FAVOR/AGAINST/NONE ->
                          macro-F1. article = one comment (several rows share
                          a comment with different topics). `few_shot` kept.
  mawqif                  Arabic tweets, 3 targets; leave-one-target-out: one
                          sheet per held-out target. Mawqif has NO dev split:
                          for --split dev the held-out target's rows are a
                          seeded 15 % of ITS train rows (stratified by label);
                          for --split test its rows of Mawqif_AllTargets_Test.
                          None -> none; 3 classes -> macro-F1.
  ruw_russia_ukraine      English tweets, targets Russia and Ukraine (each
                          tweet labeled for both); leave-one-target-out: one
                          sheet per held-out target, its stance on val (dev)
                          or test rows. 3 classes -> macro-F1. SOURCE.md says
                          cp1252, but the bytes are GBK (cp936): "…" is A1 AD,
                          "–" is A8 43; read as cp1252 they become "¡\\xad" and
                          "¨C". Every file decodes strictly as GBK, so GBK is
                          the default here (--ruw-encoding cp1252 to compare).

Rules
  Train and tune only on train/dev; test splits are for the final
  measurement only, so --split defaults to dev. Nothing here is fitted: the
  sheets are only measured (zero-shot). "Leave-one-target-out" names the
  held-out target's sheet; the other targets are recorded in the manifest
  (`train_targets`) for a model that would be trained on them.
  Cap: at most --cap rows per sheet (default 1000), a seeded (--seed, default
  1) sample stratified by (target, label), proportional with largest
  remainders, so every target keeps its share.

Usage
  python3 scripts/unseen_targets.py build --split dev [--cap 1000] [--seed 1]
      [--shared ../shared/datasets] [--out target/unseen-targets/dev]
  python3 scripts/unseen_targets.py codebook SHEET.csv -o CODEBOOK.toml
  python3 scripts/unseen_targets.py provenance --sheet S.csv --inspect I.json
      --eval EVAL.json --pred EVAL_PRED.json --output PROVENANCE.json
  python3 scripts/unseen_targets.py table --dir target/unseen-targets/dev
      --commit abc1234 --date 2026-12-07 [--provenance FILE.json]
Python 3 standard library only.
"""
import argparse
import csv
import json
import os
import random
import sys
from collections import Counter, OrderedDict, defaultdict

LABELS = {
    "favor": "favor", "against": "against", "none": "none",
    "pro": "favor", "con": "against", "neutral": "none",
}
SPECIAL = ("=", "+", "-", "@", "\t", "\r")


def label(raw, where):
    v = LABELS.get((raw or "").strip().lower())
    if v is None:
        sys.exit(f"unseen_targets: {where}: unknown stance label {raw!r}")
    return v


def cell(s):
    """A text as paratag's sheet reader gives it back: it takes one leading
    `'` off a cell that starts with `'` followed by a formula character or
    another `'`, so such a text gets one more `'` in front."""
    if len(s) >= 2 and s[0] == "'" and (s[1] in SPECIAL or s[1] == "'"):
        return "'" + s
    return s


def stratified(rows, cap, seed, key=lambda r: (r["target"], r["stance"])):
    """At most `cap` rows, proportional per stratum (largest remainder),
    seeded; returned in the input order."""
    if cap <= 0 or len(rows) <= cap:
        return list(rows)
    strata = defaultdict(list)
    for i, r in enumerate(rows):
        strata[key(r)].append(i)
    keys = sorted(strata)
    quota = {k: cap * len(strata[k]) / len(rows) for k in keys}
    take = {k: int(quota[k]) for k in keys}
    left = cap - sum(take.values())
    for k in sorted(keys, key=lambda k: (-(quota[k] - take[k]), k))[:left]:
        take[k] += 1
    rng = random.Random(seed)
    keep = set()
    for k in keys:
        keep.update(rng.sample(strata[k], take[k]))
    return [r for i, r in enumerate(rows) if i in keep]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def number_paragraphs(rows):
    """paragraph = running index of a row within its article_id."""
    seen = Counter()
    for r in rows:
        r["paragraph"] = seen[r["article_id"]]
        seen[r["article_id"]] += 1
    return rows


def ibm(shared, split, cap, seed):
    src = os.path.join(shared, "ibm_argq30k_stance", f"{split}.jsonl")
    rows = [{"article_id": o["id"], "text": o["text"], "target": o["target"],
             "stance": label(o["label"], f"{src}:{i + 1}")}
            for i, o in enumerate(read_jsonl(src))]
    return [dict(name="ibm_argq30k", source=src, rows_in=len(rows),
                 rows=number_paragraphs(stratified(rows, cap, seed)),
                 classes=["favor", "against"], article="argument")]


def perspectrum(shared, split, cap, seed):
    src = os.path.join(shared, "perspectrum_stance", f"{split}.jsonl")
    rows = [{"article_id": f"persp-c{o['claim_id']}-k{o['cluster']}",
             "text": o["text"], "target": o["target"],
             "stance": label(o["label"], f"{src}:{i + 1}"),
             "perspective_id": o["perspective_id"]}
            for i, o in enumerate(read_jsonl(src))]
    return [dict(name="perspectrum", source=src, rows_in=len(rows),
                 rows=number_paragraphs(stratified(rows, cap, seed)),
                 classes=["favor", "against"],
                 article="perspective cluster (claim x cluster)")]


def vast(shared, split, cap, seed):
    src = os.path.join(shared, "vast_zero_shot_stance", f"{split}.jsonl")
    comment = {}
    rows = []
    for i, o in enumerate(read_jsonl(src)):
        c = comment.setdefault(o["text"].strip(), len(comment))
        rows.append({"article_id": f"vast-{split}-c{c}", "text": o["text"],
                     "target": o["target"],
                     "stance": label(o["label"], f"{src}:{i + 1}"),
                     "few_shot": o["few_shot"]})
    return [dict(name="vast", source=src, rows_in=len(rows),
                 rows=number_paragraphs(stratified(rows, cap, seed)),
                 classes=["favor", "against", "none"], article="comment")]


def mawqif(shared, split, cap, seed):
    fn = "Mawqif_AllTargets_Test.csv" if split == "test" else "Mawqif_AllTargets_Train.csv"
    src = os.path.join(shared, "mawqif", fn)
    with open(src, encoding="utf-8-sig", newline="") as f:
        rows = [{"article_id": f"mawqif-{r['ID']}", "text": r["text"],
                 "target": r["target"].strip(),
                 "stance": label(r["stance"] or "none", f"{src}:{i + 2}")}
                for i, r in enumerate(csv.DictReader(f))]
    targets = sorted({r["target"] for r in rows})
    out = []
    for t in targets:
        mine = [r for r in rows if r["target"] == t]
        n_in = len(mine)
        if split == "dev":
            # Mawqif has no dev split: a seeded 15 % of the target's train rows.
            mine = stratified(mine, round(0.15 * len(mine)), seed,
                              key=lambda r: r["stance"])
        out.append(dict(
            name=f"mawqif-loto-{slug(t)}", source=src, rows_in=n_in,
            rows=number_paragraphs(stratified(mine, cap, seed)),
            classes=["favor", "against", "none"], article="tweet",
            held_out=t, train_targets=[x for x in targets if x != t],
            note=("dev = seeded 15 % of this target's train rows (Mawqif has no dev split)"
                  if split == "dev" else "test = this target's rows of the test file")))
    return out


def ruw(shared, split, cap, seed, encoding):
    fn = {"train": "raw_train_Russia_Ukraine.csv", "dev": "raw_val_Russia_Ukraine.csv",
          "test": "raw_test_Russia_Ukraine.csv"}[split]
    src = os.path.join(shared, "ruw_russia_ukraine_stance", fn)
    with open(src, encoding=encoding, newline="") as f:
        table = list(csv.DictReader(f))
    by_target = defaultdict(list)
    for i, r in enumerate(table):
        for k in ("1", "2"):
            t = r[f"Target {k}"].strip()
            by_target[t].append({"article_id": f"ruw-{split}-{i}", "text": r["Tweet"],
                                 "target": t,
                                 "stance": label(r[f"Stance {k}"], f"{src}:row {i + 1}")})
    targets = sorted(by_target)
    return [dict(name=f"ruw-loto-{slug(t)}", source=src, rows_in=len(by_target[t]),
                 rows=number_paragraphs(stratified(by_target[t], cap, seed)),
                 classes=["favor", "against", "none"], article="tweet",
                 held_out=t, train_targets=[x for x in targets if x != t],
                 note=f"read as {encoding}")
            for t in targets]


def slug(t):
    s = "".join(c.lower() if c.isalnum() else "_" for c in t)
    return "_".join(p for p in s.split("_") if p)


COLUMNS = ["article_id", "paragraph", "text", "target", "stance"]


def write_sheet(path, rows):
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS + extra)
        for r in rows:
            w.writerow([cell(str(r.get(c, ""))) for c in COLUMNS + extra])


def build(a):
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "codebook.toml"), "w", encoding="utf-8") as f:
        f.write('# No topics, no stances: paratag eval adds each gold target as a target\n'
                '# of its own ("The author supports/opposes <target>.").\n'
                '[codebook]\nname = "unseen-targets"\nhypothesis_language = "en"\n')
    sets = (ibm(a.shared, a.split, a.cap, a.seed) + perspectrum(a.shared, a.split, a.cap, a.seed)
            + vast(a.shared, a.split, a.cap, a.seed) + mawqif(a.shared, a.split, a.cap, a.seed)
            + ruw(a.shared, a.split, a.cap, a.seed, a.ruw_encoding))
    manifest = []
    for s in sets:
        rows = s.pop("rows")
        sheet = os.path.join(a.out, s["name"] + ".csv")
        write_sheet(sheet, rows)
        gold = Counter(r["stance"] for r in rows)
        s.update(sheet=sheet, split=a.split, cap=a.cap, seed=a.seed, n=len(rows),
                 targets=len({r["target"] for r in rows}),
                 articles=len({r["article_id"] for r in rows}),
                 labels=dict(gold),
                 metric="F_avg" if set(gold) <= {"favor", "against"} else "macro-F1")
        manifest.append(s)
        print(f"unseen_targets: {sheet}: {len(rows)} of {s['rows_in']} rows, "
              f"{s['targets']} targets, labels {dict(gold)}", file=sys.stderr)
    with open(os.path.join(a.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)


def codebook(a):
    """The sheet's targets with the sentences eval's Codebook::with_targets
    writes (and no threshold, method or neutral: the same defaults)."""
    with open(a.sheet, encoding="utf-8", newline="") as f:
        targets = sorted({r["target"].strip() for r in csv.DictReader(f)})
    q = lambda s: json.dumps(s, ensure_ascii=False)
    out = ['[codebook]\nname = "unseen-targets-provenance"\nhypothesis_language = "en"\n']
    for i, t in enumerate(targets):
        out.append(f"[[stance]]\nid = \"t{i}\"\ntarget = {q(t)}\n"
                   f"favor = {q('The author supports ' + t + '.')}\n"
                   f"against = {q('The author opposes ' + t + '.')}\n")
    with open(a.output, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


def provenance(a):
    """Summarises the provenance check: `paratag inspect --json` of a `tag`
    run over one sheet with `codebook`'s targets, and eval's reports on that
    sheet tagged by eval itself (--eval) and read from the tag run (--pred).
    Same confusion matrices per target = eval scored the targets with the
    models the tag run records."""
    with open(a.inspect, encoding="utf-8") as f:
        prov = json.load(f)["provenance"]
    reports = []
    for path in (a.eval, a.pred):
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        by_n = sorted((t["n"], t["confusion"]["matrix"]) for t in r["tasks"]
                      if t["task"].startswith("stance_") and t["task"] != "stance__pooled")
        pooled = [t["confusion"]["matrix"] for t in r["tasks"] if t["task"] == "stance__pooled"]
        reports.append((by_n, pooled))
    same = reports[0] == reports[1]
    models = "; ".join(f"{m['role']} {m['id']} ({m.get('revision')}, weights sha256 "
                       f"{m.get('weights_sha256', '')[:12]})" for m in prov.get("paratag.models", []))
    run = prov.get("paratag.run", {})
    heads = prov.get("paratag.heads") or []
    method = ("the profile's heads (a head for any target reads each target's text)" if heads
              else "embedding similarity to favor/against/neutral sentences (no NLI model given)")
    summary = (f"{models}; heads: {len(heads) or 'none'}; adapter: "
               f"{'none' if prov.get('paratag.adapter') is None else 'yes'}; method: {method}; binary built "
               f"from commit {str(run.get('commit', '?'))[:12]}, {run.get('dtype')} on "
               f"{run.get('device')}, {run.get('threads')} threads. Check on {os.path.basename(a.sheet)}: "
               f"eval's own tagging and `paratag tag` with the same sentences give "
               f"{'IDENTICAL' if same else 'DIFFERENT'} confusion matrices for every target")
    with open(a.output, "w", encoding="utf-8") as f:
        json.dump({"summary": summary, "same": same, "models": prov.get("paratag.models"),
                   "run": run}, f, indent=1)
    print(f"unseen_targets: {summary}", file=sys.stderr)
    if not same:
        sys.exit(1)


def fmt(e):
    if e is None or e.get("value") is None:
        return "–"
    if e.get("ci_low") is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def f_avg_ci(t):
    """F_avg with a 95 % interval read off eval's macro-F1 interval.

    eval gives F_avg as a point only. On a two-class gold (no `none` in it)
    macro-F1 averages favor, against and, when the model predicts `none` in
    a sample, a `none` class whose F1 is 0 (no gold `none`): macro-F1 =
    F_avg when no `none` is predicted, 2/3 F_avg when any is. So eval's own
    bootstrap interval of macro-F1 is F_avg's interval exactly when every
    replicate is in the same case: no `none` predicted at all (x1), or at
    least 30 predicted (x3/2; a replicate then lacks `none` with
    probability under about e^-30). Otherwise no interval."""
    pc = {c["label"]: c for c in t["per_class"]}
    none_pred = pc.get("none", {}).get("predicted", 0)
    m = t["macro_f1"]
    if none_pred == 0:
        k = 1.0
    elif none_pred >= 30:
        k = 1.5
    else:
        return {"value": t["f_avg"], "ci_low": None, "ci_high": None}, none_pred
    if abs(k * m["value"] - t["f_avg"]) > 1e-6:
        sys.exit(f"unseen_targets: {t['task']}: F_avg {t['f_avg']} is not {k} x macro-F1 "
                 f"{m['value']}; the interval rule does not hold")
    return {"value": t["f_avg"], "ci_low": k * m["ci_low"], "ci_high": k * m["ci_high"]}, none_pred


def majority_baseline(s):
    """The set's metric for a constant prediction of the gold's majority
    label: its F1 is 2p/(1+p) (p its share), every other class's 0; F_avg
    divides by 2 (0 if the majority is none), macro-F1 by the gold classes."""
    labels = s["labels"]
    n = sum(labels.values())
    m = max(sorted(labels), key=lambda k: labels[k])
    p = labels[m] / n
    f1 = 2 * p / (1 + p)
    if s["metric"] == "F_avg":
        return (f1 / 2 if m != "none" else 0.0), m
    return f1 / len(labels), m


def table(a):
    with open(os.path.join(a.dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    prov = None
    if a.provenance and os.path.exists(a.provenance):
        with open(a.provenance, encoding="utf-8") as f:
            prov = json.load(f)
        built = str(prov.get("run", {}).get("commit") or "?")
        if not a.commit.startswith(built[:7]):
            # The binary's own build commit (paratag.run), when it is not HEAD's.
            a.commit = f"{a.commit} (binary {built[:7]})"
    print("| set | split | rows | targets | metric | value [95 % CI] | accuracy [95 % CI] "
          "| always-majority baseline | eval macro-F1 [95 % CI] | F_avg | predicted none "
          "| date | commit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    for s in manifest:
        path = os.path.join(a.dir, s["name"] + ".json")
        if not os.path.exists(path):
            print(f"| {s['name']} | {s['split']} | {s['n']} | {s['targets']} | {s['metric']} "
                  f"| eval failed (see {s['name']}.err) | | | | | | {a.date} | {a.commit} |")
            continue
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        tasks = {t["task"]: t for t in r["tasks"]}
        stance = [t for t in r["tasks"] if t["task"].startswith("stance_")]
        t = tasks.get("stance__pooled") or (stance[0] if len(stance) == 1 else None)
        if t is None:
            sys.exit(f"unseen_targets: {path}: no single stance task and no stance__pooled")
        pc = {c["label"]: c for c in t["per_class"]}
        none_pred = pc.get("none", {}).get("predicted", 0)
        if s["metric"] == "F_avg":
            v, _ = f_avg_ci(t)
            value = fmt(v) + ("" if v.get("ci_low") is not None else " (no CI: see notes)")
        else:
            value = fmt(t["macro_f1"])
        held = f" (held out: {s['held_out']})" if s.get("held_out") else ""
        base, maj = majority_baseline(s)
        print(f"| {s['name']}{held} | {s['split']} | {t['n']} | {len(stance) - (1 if 'stance__pooled' in tasks else 0)} "
              f"| {s['metric']} | {value} | {fmt(t['accuracy'])} | {base:.3f} (always {maj}) "
              f"| {fmt(t['macro_f1'])} "
              f"| {t['f_avg']:.3f} | {none_pred} of {t['n']} | {a.date} | {a.commit} |")
        if t["n"] != s["n"]:
            notes.append(f"{s['name']}: eval measured {t['n']} of {s['n']} rows "
                         f"(ties {t['ties']}, unmatched {len(r['gold']['unmatched'])})")
        if s["targets"] != len(stance) - (1 if "stance__pooled" in tasks else 0):
            notes.append(f"{s['name']}: {s['targets']} targets in the sheet, "
                         f"{len(stance)} stance tasks in eval's report")
    print()
    cap = manifest[0]["cap"] if manifest else "?"
    print(f"Cap: at most {cap} rows per sheet (seeded sample, seed {manifest[0]['seed']}, "
          "stratified by target and label). Metric: F_avg = mean F1 of favor and against "
          "(two-class gold: IBM, Perspectrum); macro-F1 over favor/against/none (three-class "
          "gold: VAST, Mawqif, RUW). Value and intervals from eval's pooled task "
          "(stance__pooled, micro over targets) or the single target's task; F_avg's interval "
          "is eval's macro-F1 interval x 3/2 (see unseen_targets.py f_avg_ci). "
          "`eval macro-F1` is eval's own figure, over the classes in gold or predictions "
          "(so it counts a `none` class on two-class gold); `predicted none` = rows the "
          "model called none.")
    for s in manifest:
        if s.get("note"):
            notes.append(f"{s['name']}: {s['note']}")
    if prov:
        notes.append("scored by: " + prov.get("summary", ""))
    for n in notes:
        print(f"- {n}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--split", choices=["dev", "test"], default="dev")
    b.add_argument("--cap", type=int, default=1000)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--shared", default="../shared/datasets")
    b.add_argument("--out")
    b.add_argument("--ruw-encoding", default="gbk")
    c = sub.add_parser("codebook")
    c.add_argument("sheet")
    c.add_argument("-o", "--output", required=True)
    v = sub.add_parser("provenance")
    for k in ("--sheet", "--inspect", "--eval", "--pred", "--output"):
        v.add_argument(k, required=True)
    t = sub.add_parser("table")
    t.add_argument("--dir", required=True)
    t.add_argument("--commit", default="?")
    t.add_argument("--date", default="?")
    t.add_argument("--provenance")
    a = p.parse_args()
    if a.cmd == "build":
        a.out = a.out or os.path.join("target", "unseen-targets", a.split)
        build(a)
    elif a.cmd == "codebook":
        codebook(a)
    elif a.cmd == "provenance":
        provenance(a)
    else:
        table(a)


if __name__ == "__main__":
    main()
