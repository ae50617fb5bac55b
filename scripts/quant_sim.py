#!/usr/bin/env python3
"""The quantification simulation behind scripts/quant-sim.sh (issue 28):
how far `paratag estimate`'s corrected shares are from the truth, how often
its 95 % intervals cover it, and whether QuaPy's ACC/PACC/EMQ give the same
point estimates on the same inputs. Use scripts/quant-sim.sh, which runs
the three steps in order; its header says why each choice was made.

  prepare   (python3, standard library) RUW train/val rows of the target
            "Ukraine": the 500-row training sheet and dev sheet exactly as
            scripts/learning-curve.sh writes them for size 500, and the
            pool (the other train rows) as a sheet and as JSONL for `tag`.
  simulate  (the venv: pyarrow, numpy, QuaPy) draws the corpora and gold
            samples, writes the tables `estimate` reads, runs it for every
            method, compares with QuaPy, and writes results.json and
            table.md.

Usage
  python3 scripts/quant_sim.py prepare --shared ../shared/datasets --out DIR [--head-seed 1]
  VENV/bin/python scripts/quant_sim.py simulate --bin P --data DIR --out DIR
      --head weak=TAGGED.parquet,EVAL.json --head trained=... [--reps 20] [--corpora 10]
      [--size 1000] [--gold 300] [--bootstrap 500] [--seed 1] [--no-quapy]
      [--commit C] [--keep-tables]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unseen_targets import number_paragraphs, ruw, stratified, write_sheet  # noqa: E402

TARGET = "Ukraine"
LABELS = ["favor", "against", "none"]  # paratag's order for a stance task
METHODS = ["cc", "acc", "pacc", "emq"]
TRAIN_SIZE = 500


# ---------------------------------------------------------------- prepare

def one_target(sheets):
    rows = [s for s in sheets if s["held_out"] == TARGET]
    if not rows:
        sys.exit(f"quant_sim: RUW has no target {TARGET!r}")
    return rows[0]["rows"]


def prepare(a):
    os.makedirs(a.out, exist_ok=True)
    # As scripts/learning-curve.sh --set ruw --target Ukraine: all train
    # rows (cap 0), dev = val, N rows stratified by label with its seed.
    train = one_target(ruw(a.shared, "train", 0, a.head_seed, "gbk"))
    dev = one_target(ruw(a.shared, "dev", 0, a.head_seed, "gbk"))
    held = {r["article_id"] for r in dev}
    train = [r for r in train if r["article_id"] not in held]
    picked = number_paragraphs(stratified(train, TRAIN_SIZE, a.head_seed,
                                          key=lambda r: r["stance"]))
    used = {r["article_id"] for r in picked}
    pool = number_paragraphs([dict(r) for r in train if r["article_id"] not in used])
    write_sheet(os.path.join(a.out, f"train-{TRAIN_SIZE}.csv"), picked)
    write_sheet(os.path.join(a.out, "dev.csv"), dev)
    write_sheet(os.path.join(a.out, "pool.csv"), pool)
    with open(os.path.join(a.out, "pool.jsonl"), "w", encoding="utf-8") as f:
        for r in pool:
            f.write(json.dumps({"id": r["article_id"], "text": r["text"]}, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "empty.toml"), "w", encoding="utf-8") as f:
        f.write('[codebook]\nname = "quant-sim"\n')
    info = {"train_rows": len(train), "trained_on": len(picked), "dev": len(dev), "pool": len(pool),
            "pool_labels": dict(Counter(r["stance"] for r in pool)),
            "train_labels": dict(Counter(r["stance"] for r in picked)),
            "head_seed": a.head_seed}
    with open(os.path.join(a.out, "prepare.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    print(f"quant_sim: RUW {TARGET!r}: {len(train)} train rows, {len(picked)} for the trained head "
          f"{info['train_labels']}, pool {len(pool)} {info['pool_labels']}, dev (val) {len(dev)}",
          file=sys.stderr)


# --------------------------------------------------------------- simulate

def read_pool(path):
    with open(path, encoding="utf-8", newline="") as f:
        return {r["article_id"]: r["stance"] for r in csv.DictReader(f)}


def plain(t):
    """`t` with string_view (as polars writes strings) made string, nested
    too: pyarrow's take has no kernel for string_view."""
    import pyarrow as pa
    if pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        f = t.value_field
        mk = pa.large_list if pa.types.is_large_list(t) else pa.list_
        return mk(pa.field(f.name, plain(f.type), f.nullable))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, plain(f.type), f.nullable) for f in t])
    return t


def load_tagged(path):
    """The tagged pool: the Arrow table, its Parquet key-value metadata
    (estimate reads the codebook from it; pyarrow does not put polars's
    key-values into the schema, so they are read from the file footer)
    and the stance target's columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    pf = pq.ParquetFile(path)
    meta = {k: v for k, v in (pf.metadata.metadata or {}).items() if k != b"ARROW:schema"}
    table = pf.read()
    table = table.cast(pa.schema([pa.field(f.name, plain(f.type), f.nullable) for f in table.schema]))
    names = table.column_names
    targets = [c[len("stance_"):] for c in names
               if c.startswith("stance_") and f"{c}_score" in names and not c.endswith(
                   ("_score", "_favor", "_against", "_holder", "_reported"))]
    if len(targets) != 1:
        sys.exit(f"quant_sim: {path}: expected one stance target, found {targets}")
    return table, meta, targets[0]


def seen(table, t):
    """What `estimate` sees for each row (src/cmd/estimate.rs `seen_of`):
    the predicted label's index and the posterior (favor, against, none) =
    (f, a, 1 - f - a) clipped at 0 and renormalised; an unscored row
    labelled none is (0, 0, 1)."""
    import numpy as np
    lab = table.column(f"stance_{t}").to_pylist()
    pred = np.array([LABELS.index(x if x is not None else "none") for x in lab])
    fav = table.column(f"stance_{t}_favor").to_pylist()
    ag = table.column(f"stance_{t}_against").to_pylist()
    post = np.zeros((len(lab), 3))
    for i, (f, a_) in enumerate(zip(fav, ag)):
        if f is not None and a_ is not None:
            f, a_ = float(f), float(a_)  # f32 -> f64, as Rust's f64::from
            v = [max(f, 0.0), max(a_, 0.0), max(1.0 - f - a_, 0.0)]
            z = max(v[0] + v[1] + v[2], 1e-12)
            post[i] = [x / z for x in v]
        elif pred[i] == 2:
            post[i] = [0.0, 0.0, 1.0]
        else:
            post[i] = np.nan
    return pred, post


def largest_remainder(shares, n):
    raw = [s * n for s in shares]
    take = [int(x) for x in raw]
    left = n - sum(take)
    for j in sorted(range(len(raw)), key=lambda j: (-(raw[j] - take[j]), j))[:left]:
        take[j] += 1
    return take


def draw(rng, pool_ids, gold_of, a, r):
    """One replication: the gold sample and the corpora, as pool indices."""
    import numpy as np
    idx = rng.permutation(len(pool_ids))
    n_gold_pool = round(len(idx) / 3)
    gold_pool, corpus_pool = idx[:n_gold_pool], idx[n_gold_pool:]
    if a.gold > len(gold_pool):
        sys.exit(f"quant_sim: --gold {a.gold} is more than the gold pool's {len(gold_pool)} rows")
    gold = rng.choice(gold_pool, size=a.gold, replace=False)
    by_label = {l: corpus_pool[[gold_of[pool_ids[i]] == l for i in corpus_pool]] for l in LABELS}
    corpora = []
    for g in range(a.corpora):
        against = 0.10 + 0.30 * (g / (a.corpora - 1) if a.corpora > 1 else 0.0)
        favor = float(rng.uniform(0.10, 0.40))
        target = {"favor": favor, "against": against, "none": 1.0 - favor - against}
        counts = dict(zip(LABELS, largest_remainder([target[l] for l in LABELS], a.size)))
        rows = np.concatenate([rng.choice(by_label[l], size=counts[l], replace=True)
                               for l in LABELS if counts[l] > 0])
        rows = rows[rng.permutation(len(rows))]
        realized = Counter(gold_of[pool_ids[i]] for i in rows)
        corpora.append({"name": f"c{g:02d}", "rows": rows, "target": target,
                        "truth": {l: realized[l] / a.size for l in LABELS}})
    return gold, corpora


def write_rep(table, meta, t, pos, pool_ids, gold_of, gold, corpora, r, pred_path, sheet_path):
    """The table `estimate` reads (the tagged rows, renamed: unique
    article_id, pass-through `corpus`) and the gold sheet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    take, ids, corpus = [], [], []
    for k, i in enumerate(gold):
        take.append(pos[pool_ids[i]])
        ids.append(f"r{r}-gold-{k}")
        corpus.append("gold")
    for c in corpora:
        g = int(c["name"][1:])
        for k, i in enumerate(c["rows"]):
            take.append(pos[pool_ids[i]])
            ids.append(f"r{r}-c{g}-{k}")
            corpus.append(c["name"])
    sub = table.take(pa.array(np.array(take, dtype=np.int64)))
    col = sub.schema.get_field_index("article_id")
    sub = sub.set_column(col, pa.field("article_id", sub.schema.field(col).type),
                         pa.array(ids, type=sub.schema.field(col).type))
    sub = sub.append_column("corpus", pa.array(corpus, type=pa.string()))
    meta = dict(meta)
    meta[b"quant_sim.derived"] = json.dumps(
        {"replication": r, "note": "rows of the tagged pool, redrawn by scripts/quant_sim.py; "
         "article_id renamed, column corpus added"}).encode()
    sub = sub.replace_schema_metadata(meta)
    pq.write_table(sub, pred_path)
    texts = sub.column("text").to_pylist()
    paras = sub.column("paragraph").to_pylist()
    rows = [{"article_id": ids[k], "paragraph": paras[k], "text": texts[k], "target": TARGET,
             "stance": gold_of[pool_ids[i]]} for k, i in enumerate(gold)]
    write_sheet(sheet_path, rows)
    return np.array(take)


def run_estimate(a, pred, sheet, method, seed, out):
    cmd = [a.bin, "estimate", "--force", pred, "--gold", sheet, "--gold-col", "target=target",
           "--gold-col", "stance=stance", "--by", "corpus", "--method", method,
           "--bootstrap", str(a.bootstrap), "--seed", str(seed), "-o", out]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"quant_sim: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    import pyarrow.parquet as pq
    res = {}
    for row in pq.read_table(out).to_pylist():
        if row["corpus"] and row["corpus"].startswith("c"):
            res[(row["corpus"], row["label"])] = (row["share"], row["ci_low"], row["ci_high"],
                                                  row["raw_share"], row["n"])
    return res, time.time() - t0, p.stderr.strip().splitlines()


def precomputed(pred, post):
    """A 'classifier' for QuaPy that only looks up precomputed outputs: X
    holds row indices into the head's predictions, so QuaPy's aggregative
    methods fit on the gold sample's predictions and aggregate a corpus's
    without any classifier being (re)fitted."""
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Precomputed(ClassifierMixin, BaseEstimator):
        def __init__(self, pred=None, post=None):
            self.pred, self.post = pred, post

        def fit(self, X, y):
            return self

        def predict(self, X):
            return self.pred[np.asarray(X)[:, 0]]

        def predict_proba(self, X):
            return self.post[np.asarray(X)[:, 0]]

        def __sklearn_is_fitted__(self):
            return True

    c = Precomputed(pred, post)
    c.classes_ = np.arange(len(LABELS))
    return c


def simplex_lsq_exact(m, q):
    """argmin ||M p - q||^2 over the probability simplex, exactly: the
    equality-constrained least squares on every support (KKT system), the
    best feasible one. A reference for paratag's projected gradient and
    QuaPy's SLSQP (3 labels: 7 supports)."""
    import itertools
    import numpy as np
    k = len(q)
    best = None
    for size in range(1, k + 1):
        for sup in itertools.combinations(range(k), size):
            ms = m[:, sup]
            kkt = np.zeros((size + 1, size + 1))
            kkt[:size, :size] = 2 * ms.T @ ms
            kkt[:size, size] = 1
            kkt[size, :size] = 1
            rhs = np.concatenate([2 * ms.T @ q, [1.0]])
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
            if (sol < -1e-12).any():
                continue
            p = np.zeros(k)
            p[list(sup)] = np.clip(sol, 0, None)
            p /= p.sum()
            v = float(np.sum((m @ p - q) ** 2))
            if best is None or v < best[0] - 1e-15:
                best = (v, p)
    return best[1]


def rates(pred, post, gold_rows, gold_y, probabilistic):
    """M[i][j] = P(predicted i | true j) on the gold sample (mean posterior
    of i for pacc); identity column for a label no gold item has (as
    src/estimate/mod.rs `rates`)."""
    import numpy as np
    k = len(LABELS)
    m = np.zeros((k, k))
    n = np.zeros(k)
    for r, j in zip(gold_rows, gold_y):
        n[j] += 1
        if probabilistic:
            m[:, j] += post[r]
        else:
            m[pred[r], j] += 1
    for j in range(k):
        m[:, j] = m[:, j] / n[j] if n[j] > 0 else np.eye(k)[:, j]
    return m


def quapy_shares(pred, post, gold_rows, gold_y, corpora_rows):
    """QuaPy's estimates per corpus for ACC, PACC and EMQ (its defaults, and
    EMQ again with paratag's tighter stopping); EMQ-BCTS (posteriors
    recalibrated on the gold sample, Alexandari et al.) as a diagnostic;
    and the exact simplex least-squares solution for ACC and PACC."""
    import warnings
    import numpy as np
    import quapy as qp
    from quapy.method.aggregative import ACC, EMQ, PACC
    # EMQ at eps 1e-10 often runs to QuaPy's 1000-iteration cap, as paratag's
    # EM does to its own (also 1000): the same iterates, so no warning.
    warnings.filterwarnings("ignore", message="the method has reached the maximum number of iterations")
    clf = precomputed(pred, post)
    Xg = np.asarray(gold_rows).reshape(-1, 1)
    y = np.asarray(gold_y)
    out, exact = {}, {}
    # ACC/PACC: solver 'minimize' (SLSQP: min ||M p - q|| on the simplex,
    # QuaPy's default and the same problem as paratag's projected-gradient
    # least squares), method 'inversion', norm 'clip' (defaults).
    models = {"acc": ACC(clf, fit_classifier=False, val_split=None),
              "pacc": PACC(clf, fit_classifier=False, val_split=None),
              "emq": EMQ(clf, fit_classifier=False, val_split=None)}
    for m in models.values():
        m.fit(Xg, y)
    bcts = EMQ(clf, fit_classifier=False, val_split=(Xg, y), exact_train_prev=False,
               calib="bcts", on_calib_error="backup")
    bcts.fit(Xg, y)
    m_acc = rates(pred, post, gold_rows, gold_y, False)
    m_pacc = rates(pred, post, gold_rows, gold_y, True)
    for name, rows in corpora_rows.items():
        X = np.asarray(rows).reshape(-1, 1)
        for mname, m in models.items():
            out[(mname, name)] = np.asarray(m.predict(X), dtype=float)
        emq = models["emq"]
        out[("emq_tight", name)] = np.asarray(
            emq.aggregate(emq.classify(X), epsilon=1e-10), dtype=float)
        out[("emq_bcts", name)] = np.asarray(bcts.predict(X), dtype=float)
        q_acc = np.bincount(pred[np.asarray(rows)], minlength=len(LABELS)) / len(rows)
        q_pacc = post[np.asarray(rows)].mean(axis=0)
        exact[("acc", name)] = (simplex_lsq_exact(m_acc, q_acc), m_acc, q_acc)
        exact[("pacc", name)] = (simplex_lsq_exact(m_pacc, q_pacc), m_pacc, q_pacc)
    return out, exact, qp.__version__


def bcts_summary(rows, heads):
    import numpy as np
    out = {}
    for h in heads:
        rs = [x for x in rows if x["head"] == h]
        if rs:
            ag = [x["share"] - x["truth"] for x in rs if x["label"] == "against"]
            out[h] = {"mae": float(np.mean([abs(x["share"] - x["truth"]) for x in rs])),
                      "mae_against": float(np.mean(np.abs(ag))), "bias_against": float(np.mean(ag))}
    return out


def summarize(records, heads, methods):
    import numpy as np
    res = {}
    for h in heads:
        for m in methods:
            rs = [x for x in records if x["head"] == h and x["method"] == m]
            if not rs:
                continue
            err = np.array([abs(x["share"] - x["truth"]) for x in rs])
            cov = np.array([x["ci_low"] <= x["truth"] <= x["ci_high"] for x in rs])
            wid = np.array([x["ci_high"] - x["ci_low"] for x in rs])
            # The corpora of one replication share its gold sample, so their
            # errors are correlated: standard errors from per-replication means.
            reps = sorted({x["rep"] for x in rs})

            def rep_se(vals):
                means = [np.mean([v for v, x in zip(vals, rs) if x["rep"] == r]) for r in reps]
                return float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")
            d = {"pairs": len(rs), "mae": err.mean(), "coverage": cov.mean(), "width": wid.mean(),
                 "mae_se": rep_se(err), "coverage_se": rep_se(cov.astype(float)), "per_label": {}}
            for l in LABELS:
                sel = [x for x in rs if x["label"] == l]
                e = np.array([x["share"] - x["truth"] for x in sel])
                c = np.array([x["ci_low"] <= x["truth"] <= x["ci_high"] for x in sel])
                miss_low = np.mean([x["truth"] < x["ci_low"] for x in sel])
                miss_high = np.mean([x["truth"] > x["ci_high"] for x in sel])
                ra = [x["rep"] for x in sel]
                cse = (float(np.std([c[[q == r for q in ra]].mean() for r in reps], ddof=1) / np.sqrt(len(reps)))
                       if len(reps) > 1 else float("nan"))
                d["per_label"][l] = {"mae": float(np.abs(e).mean()), "bias": float(e.mean()),
                                     "coverage_se": cse,
                                     "coverage": float(c.mean()),
                                     "width": float(np.mean([x["ci_high"] - x["ci_low"] for x in sel])),
                                     "truth_below_ci": float(miss_low),
                                     "truth_above_ci": float(miss_high)}
            res[f"{h}/{m}"] = {k: (float(v) if not isinstance(v, dict) else v) for k, v in d.items()}
    return res


def synthetic_head(a, accuracy, base, gold_of):
    """A simulated classifier on the pool (supplementary, --synthetic): the
    base table's rows with the stance columns replaced. Each row's label is
    its gold label with probability `accuracy`, else one of the other two at
    random; the posterior puts c ~ U(0.5, 0.95) on that label and splits the
    rest at random, so the label is also what tag's 0.5 threshold gives.
    Written as a tagged table and measured with `paratag eval` like the heads."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    table, meta, t = load_tagged(base)
    rng = np.random.default_rng([a.seed, 7919, int(round(accuracy * 1000))])
    ids = table.column("article_id").to_pylist()
    g = np.array([LABELS.index(gold_of[x]) for x in ids])
    right = rng.random(len(g)) < accuracy
    other = (g + rng.integers(1, len(LABELS), size=len(g))) % len(LABELS)
    pred = np.where(right, g, other)
    c = rng.uniform(0.5, 0.95, size=len(g))
    u = rng.random(len(g))
    post = np.zeros((len(g), 3))
    for i in range(len(g)):
        rest = [j for j in range(3) if j != pred[i]]
        post[i, pred[i]] = c[i]
        post[i, rest[0]] = (1 - c[i]) * u[i]
        post[i, rest[1]] = (1 - c[i]) * (1 - u[i])
    f32 = lambda v: pa.array(v.astype(np.float32), type=pa.float32())
    score = np.where(pred == 2, 1 - np.maximum(post[:, 0], post[:, 1]), post.max(axis=1))
    cols = {f"stance_{t}": pa.array([LABELS[j] for j in pred], type=pa.string()),
            f"stance_{t}_score": f32(score), f"stance_{t}_favor": f32(post[:, 0]),
            f"stance_{t}_against": f32(post[:, 1])}
    for k, v in cols.items():
        i = table.schema.get_field_index(k)
        table = table.set_column(i, pa.field(k, v.type), v)
    name = f"synthetic-{accuracy:.2f}"
    d = os.path.join(a.out, "synthetic")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{name}.parquet")
    meta = dict(meta)
    meta[b"quant_sim.derived"] = json.dumps({"synthetic_accuracy": accuracy}).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)
    evalj = os.path.join(d, f"eval-{name}.json")
    cmd = [a.bin, "eval", "--force", "--gold", os.path.join(a.data, "pool.csv"), "--pred", path,
           "--gold-col", "target=target", "--gold-col", "stance=stance", "--bootstrap", "1000",
           "--seed", "1", "-q", "--json", evalj, "--report", os.devnull]
    pr = subprocess.run(cmd, capture_output=True, text=True)
    if pr.returncode != 0:
        sys.exit(f"quant_sim: {' '.join(cmd)} failed:\n{pr.stderr}")
    return (name, path, evalj)


def simulate(a):
    import numpy as np
    t_start = time.time()
    heads = []
    gold_of = read_pool(os.path.join(a.data, "pool.csv"))
    pool_ids = sorted(gold_of)  # a fixed order, independent of the tag output's
    for spec in a.head:
        name, rest = spec.split("=", 1)
        tagged, evalj = rest.split(",", 1)
        heads.append((name, tagged, evalj))
    synth = [synthetic_head(a, acc, heads[0][1], gold_of) for acc in a.synthetic]
    heads = (synth if a.synthetic_only else heads + synth)
    if not heads:
        sys.exit("quant_sim: --synthetic-only needs --synthetic ACC")
    tagged = {}
    for name, path, evalj in heads:
        table, meta, t = load_tagged(path)
        ids = table.column("article_id").to_pylist()
        if sorted(ids) != pool_ids:
            sys.exit(f"quant_sim: {path}: its rows are not the pool's ({len(ids)} rows, "
                     f"{len(set(ids) ^ set(pool_ids))} ids differ); tag --no-segment should keep one row per tweet")
        pos = {x: i for i, x in enumerate(ids)}
        pred, post = seen(table, t)
        with open(evalj, encoding="utf-8") as f:
            ev = json.load(f)
        task = [x for x in ev["tasks"] if x["task"].startswith("stance_") and x["task"] != "stance__pooled"][0]
        g = np.array([LABELS.index(gold_of[x]) for x in ids])
        top = post.argmax(axis=1)

        def mf1(pr):
            return float(np.mean([2 * np.sum((pr == j) & (g == j)) / max(1, np.sum(pr == j) + np.sum(g == j))
                                  for j in range(len(LABELS))]))
        tagged[name] = dict(table=table, meta=meta, t=t, pos=pos, pred=pred, post=post,
                            eval={"macro_f1": task["macro_f1"], "accuracy": task["accuracy"],
                                  "n": task["n"], "macro_f1_argmax_posterior": mf1(top),
                                  "predicted": {l: int(np.sum(pred == j)) for j, l in enumerate(LABELS)},
                                  "mean_posterior": dict(zip(LABELS, post.mean(axis=0).round(4).tolist()))})
    os.makedirs(a.out, exist_ok=True)
    records, agree, bcts, timings, notes = [], [], [], Counter(), set()
    qp_version = None
    for r in range(a.reps):
        rng = np.random.default_rng([a.seed, r])
        est_seed = 1000 * a.seed + r
        gold, corpora = draw(rng, pool_ids, gold_of, a, r)
        rdir = os.path.join(a.out, "reps", f"r{r:02d}")
        os.makedirs(rdir, exist_ok=True)
        with open(os.path.join(rdir, "truth.json"), "w") as f:
            json.dump({"seed": [a.seed, r], "estimate_seed": est_seed,
                       "gold_labels": dict(Counter(gold_of[pool_ids[i]] for i in gold)),
                       "corpora": [{k: c[k] for k in ("name", "target", "truth")} for c in corpora]},
                      f, indent=1)
        for name, _, _ in heads:
            h = tagged[name]
            pred_path = os.path.join(rdir, f"{name}.parquet")
            sheet = os.path.join(rdir, f"gold-{name}.csv")
            take = write_rep(h["table"], h["meta"], h["t"], h["pos"], pool_ids, gold_of, gold,
                             corpora, r, pred_path, sheet)
            ours = {}
            for m in a.methods:
                out = os.path.join(rdir, f"shares-{name}-{m}.parquet")
                res, secs, err = run_estimate(a, pred_path, sheet, m, est_seed, out)
                timings[m] += secs
                notes.update(l for l in err if not l.startswith("paratag: ") or "shares (" not in l)
                for c in corpora:
                    for l in LABELS:
                        s, lo, hi, raw, n = res[(c["name"], l)]
                        if n != a.size:
                            sys.exit(f"quant_sim: {out}: group {c['name']} has {n} rows, not {a.size}")
                        records.append({"rep": r, "head": name, "method": m, "corpus": c["name"],
                                        "label": l, "truth": c["truth"][l], "share": s,
                                        "ci_low": lo, "ci_high": hi, "raw": raw})
                        ours[(m, c["name"], l)] = s
            if not a.no_quapy:
                # Row k of the table is pool row take[k]: the gold sample
                # first (its order in the sheet), then the corpora in order.
                gold_rows = take[:len(gold)]
                gold_y = [LABELS.index(gold_of[pool_ids[i]]) for i in gold]
                start, crow = len(gold), {}
                for c in corpora:
                    crow[c["name"]] = take[start:start + len(c["rows"])]
                    start += len(c["rows"])
                t0 = time.time()
                qs, exact, qp_version = quapy_shares(h["pred"], h["post"], gold_rows, gold_y, crow)
                timings["quapy"] += time.time() - t0
                truth = {c["name"]: c["truth"] for c in corpora}
                for (qm, cname), v in qs.items():
                    if qm == "emq_bcts":
                        for j, l in enumerate(LABELS):
                            bcts.append({"rep": r, "head": name, "corpus": cname, "label": l,
                                         "share": float(v[j]), "truth": truth[cname][l]})
                    # paratag's emq recalibrates by BCTS first (since d002736):
                    # its counterpart in QuaPy is EMQ-BCTS, also compared.
                    pm = "emq" if qm in ("emq_tight", "emq_bcts") else qm
                    if pm not in a.methods:
                        continue
                    ex = exact.get((qm, cname))
                    for j, l in enumerate(LABELS):
                        rec = {"rep": r, "head": name, "method": qm, "corpus": cname,
                               "label": l, "quapy": float(v[j]), "paratag": ours[(pm, cname, l)]}
                        if ex is not None:
                            p_ex, mm, qq = ex
                            rec["exact"] = float(p_ex[j])
                            if j == 0:  # objective ||M p - q||^2 at each solution, once per corpus
                                obj = lambda p: float(np.sum((mm @ np.asarray(p) - qq) ** 2))
                                pp = [ours[(pm, cname, x)] for x in LABELS]
                                rec["objective"] = {"exact": obj(p_ex), "paratag": obj(pp),
                                                    "quapy": obj(v)}
                        agree.append(rec)
            if not a.keep_tables:
                os.remove(pred_path)
        print(f"quant_sim: replication {r + 1}/{a.reps} done ({time.time() - t_start:.0f} s)",
              file=sys.stderr)
    summary = summarize(records, [h[0] for h in heads], a.methods)
    qsum = {}
    for h, _, _ in heads:
        for qm in ("acc", "pacc", "emq", "emq_tight", "emq_bcts"):
            d = [abs(x["quapy"] - x["paratag"]) for x in agree if x["head"] == h and x["method"] == qm]
            if d:
                worst = max((x for x in agree if x["head"] == h and x["method"] == qm),
                            key=lambda x: abs(x["quapy"] - x["paratag"]))
                qsum[f"{h}/{qm}"] = {"pairs": len(d), "mean_abs_diff": float(np.mean(d)),
                                     "max_abs_diff": float(np.max(d)),
                                     "over_1e-3": int(sum(x > 1e-3 for x in d)),
                                     "worst": worst}
                xs = [x for x in agree if x["head"] == h and x["method"] == qm and "exact" in x]
                if xs:
                    objs = [x["objective"] for x in xs if "objective" in x]
                    qsum[f"{h}/{qm}"]["vs_exact"] = {
                        "paratag_max_abs_diff": float(max(abs(x["paratag"] - x["exact"]) for x in xs)),
                        "paratag_mean_abs_diff": float(np.mean([abs(x["paratag"] - x["exact"]) for x in xs])),
                        "quapy_max_abs_diff": float(max(abs(x["quapy"] - x["exact"]) for x in xs)),
                        "quapy_mean_abs_diff": float(np.mean([abs(x["quapy"] - x["exact"]) for x in xs])),
                        "paratag_max_objective_gap": float(max(o["paratag"] - o["exact"] for o in objs)),
                        "quapy_max_objective_gap": float(max(o["quapy"] - o["exact"] for o in objs))}
    result = {
        "settings": {"reps": a.reps, "corpora": a.corpora, "size": a.size, "gold": a.gold,
                     "bootstrap": a.bootstrap, "seed": a.seed, "methods": a.methods,
                     "estimate_seed": "1000*seed + replication", "rng": "numpy default_rng([seed, replication])",
                     "commit": a.commit, "binary": a.bin, "quapy": qp_version},
        "data": json.load(open(os.path.join(a.data, "prepare.json"))),
        "heads": {n: tagged[n]["eval"] for n, _, _ in heads},
        "binary_run": {n: json.loads(tagged[n]["meta"].get(b"paratag.run", b"{}")) for n, _, _ in heads},
        "summary": summary, "quapy_agreement": qsum,
        "quapy_emq_bcts": bcts_summary(bcts, [h[0] for h in heads]),
        "estimate_stderr_notes": sorted(notes),
        "seconds": {"total": time.time() - t_start, **{k: float(v) for k, v in timings.items()}},
    }
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(a.out, "records.jsonl"), "w") as f:
        for x in records:
            f.write(json.dumps(x) + "\n")
    with open(os.path.join(a.out, "quapy.jsonl"), "w") as f:
        for x in agree:
            f.write(json.dumps(x) + "\n")
    md = table_md(result, a)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    print(md)


def table_md(res, a):
    s = res["settings"]
    d = res["data"]
    out = []
    p = out.append
    p(f"# paratag estimate: simulation (issue 28)\n")
    p(f"RUW Russia-Ukraine tweets, target \"{TARGET}\". {s['reps']} replications x {s['corpora']} "
      f"corpora = {s['reps'] * s['corpora']} corpora of N = {s['size']} rows; gold sample n = "
      f"{s['gold']} per replication; {s['bootstrap']} bootstrap replicates; seed {s['seed']} "
      f"(replication r: numpy default_rng([{s['seed']}, r]), estimate --seed {1000 * s['seed']} + r). "
      f"Commit {s['commit']}; binary {s['binary']}, built from "
      f"{', '.join(sorted({str(v.get('commit', '?'))[:12] for v in res['binary_run'].values()}))} "
      f"(its `paratag.run` record).\n")
    p(f"Pool: {d['pool']} RUW train rows ({', '.join(f'{k} {v}' for k, v in sorted(d['pool_labels'].items()))}), "
      f"the train rows less the {d['trained_on']} the trained head was fitted on; val ({d['dev']}) "
      f"only as the trained head's dev set; test unused.\n")
    what = {"weak": "shipped head for any target, zero-shot on this target",
            "trained": f"that head fine-tuned on {d['trained_on']} labels (as learning-curve.sh), its threshold calibrated on dev"}
    what.update({h: "simulated: gold label with this probability, else another; posterior "
                 "c ~ U(0.5, 0.95) on it" for h in res["heads"] if h.startswith("synthetic-")})
    p("| head | what | macro-F1 on the pool [95 % CI] (eval) | accuracy | predicted favor / against / none "
      "| macro-F1 of the posterior's argmax | mean posterior favor / against / none |")
    p("|---|---|---|---|---|---|---|")
    for h, e in res["heads"].items():
        m = e["macro_f1"]
        pr, mp = e["predicted"], e["mean_posterior"]
        p(f"| {h} | {what.get(h, '')} | {m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] "
          f"| {e['accuracy']['value']:.3f} | {pr['favor']} / {pr['against']} / {pr['none']} "
          f"| {e['macro_f1_argmax_posterior']:.3f} | {mp['favor']:.3f} / {mp['against']:.3f} / {mp['none']:.3f} |")
    p("")
    p("Labels are `tag`'s: favor or against where the larger of the two probabilities reaches "
      "the codebook's threshold, else none; pacc and emq read the posteriors (favor, against, "
      "1 - favor - against).\n")
    p("## Error and interval coverage\n")
    p("Over all (corpus, label) pairs (3 labels x corpora); truth = the corpus's realized share. "
      "Coverage: share of pairs with ci_low <= truth <= ci_high (nominal 0.95). In brackets: "
      "Monte Carlo standard errors from the spread of the per-replication means (a "
      "replication's corpora share its gold sample, so their errors are correlated; with "
      f"independent pairs a coverage of 0.95 would have s.e. "
      f"{((0.95 * 0.05) / max(1, 3 * s['reps'] * s['corpora'])) ** 0.5:.3f}).\n")
    p("| head | method | MAE | MAE against | bias against | coverage | coverage against | mean CI width |")
    p("|---|---|---|---|---|---|---|---|")
    for k, v in res["summary"].items():
        h, m = k.split("/")
        ag = v["per_label"]["against"]
        p(f"| {h} | {m} | {v['mae']:.4f} ({v['mae_se']:.4f}) | {ag['mae']:.4f} | {ag['bias']:+.4f} "
          f"| {v['coverage']:.3f} ({v['coverage_se']:.3f}) | {ag['coverage']:.3f} ({ag['coverage_se']:.3f}) "
          f"| {v['width']:.4f} |")
    p("")
    p("Per label (MAE / bias / coverage; truth below / above the interval):\n")
    p("| head | method | favor | against | none |")
    p("|---|---|---|---|---|")
    for k, v in res["summary"].items():
        h, m = k.split("/")
        cells = []
        for l in LABELS:
            x = v["per_label"][l]
            cells.append(f"{x['mae']:.3f} / {x['bias']:+.3f} / {x['coverage']:.2f} "
                         f"({x['truth_below_ci']:.2f} / {x['truth_above_ci']:.2f})")
        p(f"| {h} | {m} | " + " | ".join(cells) + " |")
    p("")
    if res["quapy_agreement"]:
        p(f"## QuaPy {s['quapy']} on the same inputs\n")
        p("Same predicted labels and posteriors (built as `estimate` builds them), the same gold "
          "sample as QuaPy's validation set, no classifier fitted (a look-up 'classifier' over "
          "the precomputed outputs). ACC and PACC: QuaPy's defaults, solver `minimize` (SLSQP "
          "minimising ||M p - q|| on the simplex: the same problem as paratag's least squares on "
          "the simplex), method `inversion`, norm `clip`. EMQ: defaults (exact training "
          "prevalence = the gold sample's label shares, stop at MAE < 1e-4 between iterations), "
          "and `emq (eps 1e-10)` with a stop close to paratag's (max change < 1e-9). Absolute "
          "difference of the point estimates over all corpora and labels.\n")
        p("| head | method | pairs | mean abs diff | max abs diff | pairs > 0.001 |")
        p("|---|---|---|---|---|---|")
        for k, v in res["quapy_agreement"].items():
            h, m = k.split("/")
            m = {"emq_tight": "emq (eps 1e-10)",
                 "emq_bcts": "emq vs QuaPy EMQ-BCTS"}.get(m, m)
            p(f"| {h} | {m} | {v['pairs']} | {v['mean_abs_diff']:.2e} | {v['max_abs_diff']:.2e} | {v['over_1e-3']} |")
        p("")
        p("ACC and PACC against the exact least-squares solution on the simplex (every support's "
          "KKT system, the best feasible; same M and q): mean / max absolute difference of the "
          "shares, and the largest excess of the objective ||M p - q||^2 over the exact minimum.\n")
        p("| head | method | paratag - exact (mean / max) | QuaPy - exact (mean / max) | paratag objective excess | QuaPy objective excess |")
        p("|---|---|---|---|---|---|")
        for k, v in res["quapy_agreement"].items():
            if "vs_exact" not in v:
                continue
            h, m = k.split("/")
            e = v["vs_exact"]
            p(f"| {h} | {m} | {e['paratag_mean_abs_diff']:.1e} / {e['paratag_max_abs_diff']:.1e} "
              f"| {e['quapy_mean_abs_diff']:.1e} / {e['quapy_max_abs_diff']:.1e} "
              f"| {e['paratag_max_objective_gap']:.1e} | {e['quapy_max_objective_gap']:.1e} |")
        p("")
        if res.get("quapy_emq_bcts"):
            p("Diagnostic, not a paratag method: QuaPy's EMQ-BCTS (posteriors recalibrated on the "
              "gold sample by bias-corrected temperature scaling, training prevalence = the mean "
              "calibrated posterior), point estimates only:\n")
            p("| head | MAE | MAE against | bias against |")
            p("|---|---|---|---|")
            for h, v in res["quapy_emq_bcts"].items():
                p(f"| {h} | {v['mae']:.4f} | {v['mae_against']:.4f} | {v['bias_against']:+.4f} |")
            p("")
    if res["estimate_stderr_notes"]:
        p("estimate's notes: " + "; ".join(f"`{n}`" for n in res["estimate_stderr_notes"]) + "\n")
    sec = res["seconds"]
    p(f"Simulation time {sec['total']:.0f} s (estimate: " +
      ", ".join(f"{m} {sec.get(m, 0):.0f} s" for m in s["methods"]) +
      (f"; QuaPy {sec.get('quapy', 0):.0f} s" if "quapy" in sec else "") + ").")
    return "\n".join(out) + "\n"


def report(a):
    """Rebuilds results.json's summary and table.md from records.jsonl (a
    run made before the table's layout changed; nothing is re-estimated)."""
    with open(os.path.join(a.out, "results.json")) as f:
        res = json.load(f)
    with open(os.path.join(a.out, "records.jsonl")) as f:
        records = [json.loads(l) for l in f]
    s = res["settings"]
    res["summary"] = summarize(records, list(res["heads"]), s["methods"])
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = table_md(res, a)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    print(md)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("prepare")
    b.add_argument("--shared", default="../shared/datasets")
    b.add_argument("--out", required=True)
    b.add_argument("--head-seed", type=int, default=1)
    s = sub.add_parser("simulate")
    s.add_argument("--bin", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--head", action="append", required=True, help="NAME=TAGGED.parquet,EVAL.json")
    s.add_argument("--reps", type=int, default=20)
    s.add_argument("--corpora", type=int, default=10)
    s.add_argument("--size", type=int, default=1000)
    s.add_argument("--gold", type=int, default=300)
    s.add_argument("--bootstrap", type=int, default=500)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--methods", default=",".join(METHODS))
    s.add_argument("--no-quapy", action="store_true")
    s.add_argument("--synthetic", type=float, action="append", default=[],
                   help="also a simulated classifier of this accuracy (supplementary)")
    s.add_argument("--synthetic-only", action="store_true",
                   help="only the --synthetic classifiers (the first --head is their base table)")
    s.add_argument("--keep-tables", action="store_true")
    s.add_argument("--commit", default="?")
    r = sub.add_parser("report")
    r.add_argument("--out", required=True)
    a = p.parse_args()
    if a.cmd == "prepare":
        prepare(a)
    elif a.cmd == "report":
        report(a)
    else:
        a.methods = [m for m in a.methods.split(",") if m]
        bad = [m for m in a.methods if m not in METHODS]
        if bad:
            sys.exit(f"quant_sim: unknown methods {bad}")
        if a.corpora < 1 or a.reps < 1 or a.size < 1 or a.gold < 1:
            sys.exit("quant_sim: --reps, --corpora, --size and --gold must be positive")
        simulate(a)


if __name__ == "__main__":
    main()
