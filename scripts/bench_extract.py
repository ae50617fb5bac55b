#!/usr/bin/env python3
"""Main-text extraction benchmark: paratag vs trafilatura, readability-lxml, goose3.

Data: ../shared/datasets/boilerplate_dev (env BOILERPLATE_DEV): <set>/html/<id>.html.gz,
<set>/gold.jsonl and score.py, whose metric (page-mean bag-of-whitespace-tokens P/R/F1,
NFKC) is imported and used for every table.

The pages are decompressed once to <tmp>/<set>/<site>/<id>.html (raw bytes; <site> is the host
of the page's URL, or a folder of its own when the data set records none). Each Python tool runs
in a child process (this script with --child) that times only its loop over the pages
(read the bytes + extract), after one untimed warm-up page; paratag is timed as the wall
clock of its whole `tag` command. trafilatura runs with a grid of settings; the best by mean
F1 over all pages is "trafilatura (best)".

Run through scripts/bench-extract.sh, which makes the venv with the pinned packages.
"""
import argparse
import gzip
import importlib.util
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "datasets", "boilerplate_dev")
DEFAULT_BIN = os.path.join(ROOT, "target", "release", "paratag")
SETS = ["cleaneval", "cleanportaleval", "daniel", "dragnet", "fundus", "readability"]
LANG_COLS = ["en", "ru", "de", "es", "fr", "uk", "ar"]  # the rest is "other"
TOOLS = ["paratag", "trafilatura", "readability", "goose3"]
ALIASES = {"readability-lxml": "readability", "goose": "goose3", "traf": "trafilatura"}

# trafilatura settings: name -> extract() keyword arguments (defaults: include_comments=True,
# include_tables=True, favor_precision=False, favor_recall=False, fast=False i.e. full cascade
# with the readability/justext fallbacks; include_tables=True is therefore "defaults").
TRAF_SETTINGS = {
    "defaults": {},
    "include_comments=False": {"include_comments": False},
    "include_tables=False": {"include_tables": False},
    "favor_precision": {"favor_precision": True},
    "favor_recall": {"favor_recall": True},
    "include_comments=False+favor_precision": {"include_comments": False, "favor_precision": True},
    "include_comments=False+favor_recall": {"include_comments": False, "favor_recall": True},
    "include_comments=False+include_tables=False": {"include_comments": False, "include_tables": False},
    "fast (no fallback)": {"fast": True},
}


# ------------------------------------------------------------------ child: one Python tool

def block_text(html):
    """Text of an HTML fragment: every block element starts a paragraph (joined with blank
    lines), <br> is a space, whitespace collapsed (as the readability set's gold was made)."""
    import lxml.html
    blocks = {"address", "article", "aside", "blockquote", "body", "caption", "dd", "details",
              "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
              "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "li", "main", "nav", "ol",
              "p", "pre", "section", "summary", "table", "tbody", "thead", "tfoot", "td", "th", "tr",
              "ul"}
    skip = {"script", "style", "noscript", "template"}
    if not html or not html.strip():
        return ""
    root = lxml.html.fromstring(html)
    paras, buf = [], []

    def flush():
        t = " ".join("".join(buf).split())
        if t:
            paras.append(t)
        buf.clear()

    def walk(el):
        tag = el.tag.lower() if isinstance(el.tag, str) else None
        if tag is not None and tag not in skip:
            block = tag in blocks
            if block:
                flush()
            if tag == "br":
                buf.append(" ")
            if el.text:
                buf.append(el.text)
            for c in el:
                walk(c)
            if block:
                flush()
        if el.tail:
            buf.append(el.tail)

    walk(root)
    flush()
    return "\n\n".join(paras)


def make_extractor(tool, kwargs):
    import logging
    logging.disable(logging.CRITICAL)  # the libraries log a warning per odd page
    if tool == "trafilatura":
        import trafilatura

        def run(raw):
            # raw bytes: trafilatura detects the encoding itself (its documented way)
            return trafilatura.extract(raw, **kwargs) or ""
        return run, None
    if tool == "readability":
        from readability import Document

        def run(raw):
            # bytes: readability-lxml detects the encoding itself (meta charset, chardet)
            return block_text(Document(raw).summary())
        return run, None
    if tool == "goose3":
        from goose3 import Goose
        g = Goose()

        def run(raw):
            # bytes, as goose3's own fetcher hands them over (it reads the meta charset)
            return g.extract(raw_html=raw).cleaned_text or ""
        return run, g.close
    raise SystemExit(f"unknown tool {tool}")


def child(args):
    sys.setrecursionlimit(20000)
    with open(args.child_pages, encoding="utf-8") as f:
        pages = json.load(f)  # [[id, path], ...]
    kwargs = json.loads(args.child_kwargs or "{}")
    run, close = make_extractor(args.child, kwargs)
    with open(pages[0][1], "rb") as f:  # untimed warm-up (lazy imports, caches)
        try:
            run(f.read())
        except Exception:
            pass
    texts, errors = [], []
    c0, t0 = time.process_time(), time.perf_counter()
    for pid, path in pages:
        with open(path, "rb") as f:
            raw = f.read()
        try:
            texts.append(run(raw))
        except Exception as e:  # a crash on one page = empty output for it
            texts.append("")
            errors.append(f"{pid}: {type(e).__name__}: {str(e)[:200]}")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    if close:
        close()
    with open(args.child_out, "w", encoding="utf-8") as f:
        for (pid, _), text in zip(pages, texts):
            f.write(json.dumps({"id": pid, "text": text}, ensure_ascii=False) + "\n")
    print(json.dumps({"seconds": secs, "cpu_seconds": cpu, "pages": len(pages), "errors": errors}))


# ------------------------------------------------------------------ parent

def load_score_module(data):
    spec = importlib.util.spec_from_file_location("boilerplate_score", os.path.join(data, "score.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def site_of(g):
    """The page's site as a crawl records it: its URL's host (or daniel's `site`); None if unknown."""
    url = g.get("url") or ""
    if "://" in url:
        host = url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0].lower()
        return host[4:] if host.startswith("www.") else host
    return g.get("site")


def prepare_pages(data, gold, quick, tmp):
    """Decompress the chosen pages to tmp/<set>/<site>/<id>.html, returns [(id, path)] in gold
    order. A crawl knows each page's URL, and paratag reads a folder as a site (for its site-level
    boilerplate), so pages are grouped by the host of their URL; a page whose URL the data set does
    not record gets a folder of its own (no site is made up)."""
    by_set = defaultdict(list)
    for gid, g in gold.items():  # load_gold keeps file order: sets sorted, then gold.jsonl order
        by_set[g["set"]].append(gid)
    pages = []
    for s, ids in by_set.items():
        if quick:
            ids = ids[:quick]
        for gid in ids:
            src = os.path.join(data, s, "html", gid + ".html.gz")
            site = site_of(gold[gid]) or "page-" + gid
            os.makedirs(os.path.join(tmp, s, site), exist_ok=True)
            dst = os.path.join(tmp, s, site, gid + ".html")
            with gzip.open(src, "rb") as fi, open(dst, "wb") as fo:
                shutil.copyfileobj(fi, fo)
            pages.append((gid, dst))
    return pages


def run_python_tool(tool, kwargs, pages_file, out_jsonl, venv_python):
    cmd = [venv_python, os.path.abspath(__file__), "--child", tool, "--child-pages", pages_file,
           "--child-out", out_jsonl, "--child-kwargs", json.dumps(kwargs)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"  {tool} failed (exit {p.returncode}):\n{p.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_paratag(binary, html_dir, pages, out_dir, extra):
    """Whole `paratag tag` command timed; Parquet rows joined per article."""
    import pyarrow.parquet as pq
    parquet = os.path.join(out_dir, "paratag.parquet")
    if os.path.exists(parquet):
        os.remove(parquet)
    home = tempfile.mkdtemp(prefix="paratag-home-")
    env = dict(os.environ, PARATAG_HOME=home)
    cmd = [binary, "tag", html_dir, "-o", parquet, "--no-topic", "--no-stance", "--no-ner",
           "--input-format", "html", *extra]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(home, ignore_errors=True)
    summary = (p.stderr.strip().splitlines() or [""])[-1]
    if p.returncode != 0:
        print(f"  paratag failed (exit {p.returncode}): {' '.join(map(shlex.quote, cmd))}\n"
              f"{p.stderr[-2000:]}", file=sys.stderr)
        return None, None
    known = {gid for gid, _ in pages}
    paras = defaultdict(list)
    unknown = set()
    for row in pq.read_table(parquet, columns=["article_id", "paragraph", "text"]).to_pylist():
        gid = os.path.basename(row["article_id"])
        gid = gid[:-5] if gid.endswith(".html") else gid
        if gid not in known:
            unknown.add(row["article_id"])
            continue
        paras[gid].append((row["paragraph"], row["text"] or ""))
    if unknown:
        print(f"  warning: {len(unknown)} paratag article ids not mapped to gold, e.g. "
              f"{sorted(unknown)[:3]}", file=sys.stderr)
    preds = {gid: "\n\n".join(t for _, t in sorted(paras.get(gid, []))) for gid, _ in pages}
    timing = {"seconds": secs, "pages": len(pages), "errors": [],
              "cpu_seconds": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
              "command": " ".join(map(shlex.quote, cmd)), "summary": summary,
              "pages_without_rows": sum(1 for gid, _ in pages if not paras.get(gid))}
    return preds, timing


def score_tool(score, gold, preds, label, out_dir):
    res, rows = score.evaluate(gold, preds)
    by_lang = defaultdict(list)
    for r in rows:
        by_lang[r["lang"] if r["lang"] in LANG_COLS else "other"].append(r)
    with open(os.path.join(out_dir, "scores", slug(label) + ".tsv"), "w", encoding="utf-8") as f:
        f.write("id\tset\tlang\tprecision\trecall\tf1\n")
        for r in rows:
            f.write(f"{r['id']}\t{r['set']}\t{r['lang']}\t{r['p']:.4f}\t{r['r']:.4f}\t{r['f1']:.4f}\n")
    return {
        "overall": res["overall_pages"],
        "set_mean": res["overall_set_mean"],
        "sets": res["sets"],
        "languages": {k: score.summarize(v) for k, v in by_lang.items()},
        "languages_raw": res["languages"],
        "pages_f1_below_0_5": sum(1 for r in rows if r["f1"] < 0.5),
    }


def slug(label):
    return "".join(c if c.isalnum() or c in "-_=." else "-" for c in label).strip("-").replace("--", "-")


def write_jsonl(path, pages, preds):
    with open(path, "w", encoding="utf-8") as f:
        for gid, _ in pages:
            f.write(json.dumps({"id": gid, "text": preds.get(gid, "")}, ensure_ascii=False) + "\n")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return {r["id"]: r["text"] for r in map(json.loads, f) if r}


def versions():
    from importlib.metadata import version, PackageNotFoundError
    out = {}
    for name in ("trafilatura", "readability-lxml", "goose3", "lxml", "lxml_html_clean", "pyarrow",
                 "justext", "htmldate", "charset-normalizer"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def f3(x):
    return f"{x:.3f}" if x == x else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tools", default=",".join(TOOLS),
                    help=f"comma-separated subset of {','.join(TOOLS)} (default: all)")
    ap.add_argument("--quick", type=int, metavar="N", help="only the first N pages of each set")
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "target", "bench-extract"),
                    help="results folder (default target/bench-extract/)")
    ap.add_argument("--data", default=os.environ.get("BOILERPLATE_DEV", DEFAULT_DATA),
                    help="boilerplate_dev folder (default: env BOILERPLATE_DEV or ../shared/datasets/boilerplate_dev)")
    ap.add_argument("--trafilatura-settings", metavar="NAMES",
                    help="'|'-separated subset of the trafilatura grid (default: all: "
                         + " | ".join(TRAF_SETTINGS) + ")")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-pages", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--child-kwargs", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    tools = [ALIASES.get(t.strip(), t.strip()) for t in args.tools.split(",") if t.strip()]
    bad = [t for t in tools if t not in TOOLS]
    if bad:
        ap.error(f"unknown tool(s) {bad}; choose from {TOOLS}")
    data = os.path.abspath(args.data)
    if not os.path.exists(os.path.join(data, "score.py")):
        sys.exit(f"bench-extract: no score.py under {data} (set BOILERPLATE_DEV or --data)")
    score = load_score_module(data)
    gold_all = score.load_gold(data)
    out = os.path.abspath(args.out)
    for sub in ("predictions", "scores"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    traf_grid = dict(TRAF_SETTINGS)
    if args.trafilatura_settings:
        names = [n.strip() for n in args.trafilatura_settings.split("|") if n.strip()]
        unknown = [n for n in names if n not in TRAF_SETTINGS]
        if unknown:
            ap.error(f"unknown trafilatura setting(s) {unknown}")
        traf_grid = {n: TRAF_SETTINGS[n] for n in names}

    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "cores": os.cpu_count(),
               "argv": sys.argv[1:], "data": data, "versions": versions(), "tools": {},
               "trafilatura_settings": {}}
    try:
        results["paratag_git"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    scored = {}  # label -> (score dict, timing)

    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        html_dir = os.path.join(tmp, "html")
        pages = prepare_pages(data, gold_all, args.quick, html_dir)
        gold = {gid: gold_all[gid] for gid, _ in pages}
        results["pages"] = len(pages)
        pages_file = os.path.join(tmp, "pages.json")
        with open(pages_file, "w", encoding="utf-8") as f:
            json.dump(pages, f)
        print(f"{len(pages)} pages from {data}" + (f" (--quick {args.quick})" if args.quick else ""))

        def record(label, preds_path, timing, kind="main"):
            preds = read_jsonl(preds_path)
            sc = score_tool(score, gold, preds, label, out)
            scored[label] = (sc, timing)
            o = sc["overall"]
            errs = len(timing.get("errors", []))
            print(f"  {label}: P {o['precision']:.3f} R {o['recall']:.3f} F1 {o['f1']:.3f}, "
                  f"{timing['seconds']:.1f} s, {timing['pages'] / timing['seconds']:.1f} pages/s"
                  + (f", {errs} page errors" if errs else ""), flush=True)
            return sc

        if "paratag" in tools:
            binary = os.environ.get("PARATAG_BIN") or DEFAULT_BIN
            if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
                print(f"paratag: SKIPPED, no executable at {binary} (cargo build --release, or set "
                      f"PARATAG_BIN)", flush=True)
                results["tools"]["paratag"] = {"skipped": f"no binary at {binary}"}
            else:
                extra = shlex.split(os.environ.get("PARATAG_ARGS", ""))
                print(f"paratag ({binary}{' ' + ' '.join(extra) if extra else ''})", flush=True)
                preds, timing = run_paratag(binary, html_dir, pages, out, extra)
                if preds is None:
                    results["tools"]["paratag"] = {"failed": True}
                else:
                    path = os.path.join(out, "predictions", "paratag.jsonl")
                    write_jsonl(path, pages, preds)
                    try:
                        timing["version"] = subprocess.run([binary, "--version"], capture_output=True,
                                                           text=True).stdout.strip()
                    except OSError:
                        pass
                    record("paratag", path, timing)
                    print(f"    {timing['summary']}")

        venv_python = sys.executable
        if "trafilatura" in tools:
            print(f"trafilatura: {len(traf_grid)} settings", flush=True)
            best = None
            for name, kw in traf_grid.items():
                path = os.path.join(out, "predictions", "trafilatura-" + slug(name) + ".jsonl")
                timing = run_python_tool("trafilatura", kw, pages_file, path, venv_python)
                if timing is None:
                    continue
                timing["kwargs"] = kw
                sc = record(f"trafilatura [{name}]", path, timing)
                results["trafilatura_settings"][name] = {"kwargs": kw, **sc, "timing": timing}
                if best is None or sc["overall"]["f1"] > scored[f"trafilatura [{best}]"][0]["overall"]["f1"]:
                    best = name
            # the best full-cascade setting once more without the fallbacks, if not tried yet
            if best and not traf_grid[best].get("fast"):
                name = best + "+fast"
                kw = dict(traf_grid[best], fast=True)
                if name not in results["trafilatura_settings"] and "fast (no fallback)" in traf_grid:
                    path = os.path.join(out, "predictions", "trafilatura-" + slug(name) + ".jsonl")
                    timing = run_python_tool("trafilatura", kw, pages_file, path, venv_python)
                    if timing is not None:
                        timing["kwargs"] = kw
                        sc = record(f"trafilatura [{name}]", path, timing)
                        results["trafilatura_settings"][name] = {"kwargs": kw, **sc, "timing": timing}
                        if sc["overall"]["f1"] > scored[f"trafilatura [{best}]"][0]["overall"]["f1"]:
                            best = name
            if best:
                results["trafilatura_best"] = best
                scored["trafilatura (best)"] = scored[f"trafilatura [{best}]"]
                shutil.copyfile(os.path.join(out, "predictions", "trafilatura-" + slug(best) + ".jsonl"),
                                os.path.join(out, "predictions", "trafilatura-best.jsonl"))
                if "defaults" in results["trafilatura_settings"]:
                    scored["trafilatura (defaults)"] = scored["trafilatura [defaults]"]

        for tool in ("readability", "goose3"):
            if tool not in tools:
                continue
            label = "readability-lxml" if tool == "readability" else tool
            print(label, flush=True)
            path = os.path.join(out, "predictions", label + ".jsonl")
            timing = run_python_tool(tool, {}, pages_file, path, venv_python)
            if timing is None:
                results["tools"][label] = {"failed": True}
                continue
            record(label, path, timing)

    # ------------------------------------------------------------------ tables
    main_labels = [l for l in ("paratag", "trafilatura (best)", "trafilatura (defaults)",
                               "readability-lxml", "goose3") if l in scored]
    if "trafilatura (best)" in scored:
        results["trafilatura_best_label"] = f"trafilatura (best) = [{results['trafilatura_best']}]"
    for l in main_labels:
        sc, timing = scored[l]
        results["tools"][l] = {**sc, "timing": timing}
    n = len(pages)
    md = []
    title = f"boilerplate_dev: {n} pages" + (f" (--quick {args.quick})" if args.quick else "") + \
            f", {os.cpu_count()} cores, {results['date']}"
    md.append(f"## {title}\n")

    def overall_row(label, sc, timing):
        o = sc["overall"]
        return [label, f3(o["precision"]), f3(o["recall"]), f3(o["f1"]), f3(sc["set_mean"]["f1"]),
                sc["pages_f1_below_0_5"], f"{timing['seconds']:.1f}", f"{timing['cpu_seconds']:.1f}",
                f"{timing['pages'] / timing['seconds']:.1f}"]

    hdr = ["tool", "P", "R", "F1", "F1 (mean of sets)", "pages F1<0.5", "seconds", "CPU s", "pages/s"]
    md.append("### (a) Overall (page means)\n")
    md.append(md_table(hdr, [overall_row(l + (f" = [{results['trafilatura_best']}]" if l == "trafilatura (best)" else ""),
                                         *scored[l]) for l in main_labels]))
    md.append("\nseconds: Python tools = loop over the pages (read bytes + extract, one process, "
              "warm-up page excluded); paratag = wall clock of the whole `paratag tag` command. "
              "CPU s = user+sys CPU time over the same span (paratag may use several threads).\n")

    sets_present = [s for s in SETS if any(g["set"] == s for g in gold.values())]
    set_n = {s: sum(1 for g in gold.values() if g["set"] == s) for s in sets_present}
    md.append("### (b) F1 per source set\n")
    md.append(md_table(["tool"] + [f"{s} ({set_n[s]})" for s in sets_present] + ["mean of sets", "all pages"],
                       [[l] + [f3(scored[l][0]["sets"][s]["f1"]) for s in sets_present]
                        + [f3(scored[l][0]["set_mean"]["f1"]), f3(scored[l][0]["overall"]["f1"])]
                        for l in main_labels]))
    langs = [x for x in LANG_COLS + ["other"]
             if any((g.get("lang") if g.get("lang") in LANG_COLS else "other") == x for g in gold.values())]
    lang_n = {x: sum(1 for g in gold.values() if (g.get("lang") if g.get("lang") in LANG_COLS else "other") == x)
              for x in langs}
    md.append("\n### (c) F1 per language (gold `lang`; other = all other languages)\n")
    md.append(md_table(["tool"] + [f"{x} ({lang_n[x]})" for x in langs],
                       [[l] + [f3(scored[l][0]["languages"][x]["f1"]) for x in langs] for l in main_labels]))
    if results["trafilatura_settings"]:
        md.append("\n### (d) trafilatura settings tried (full cascade unless `fast`; "
                  "include_tables=True is the default, i.e. the `defaults` row)\n")
        rows = []
        for name, r in results["trafilatura_settings"].items():
            row = overall_row(name + (" **(best)**" if name == results.get("trafilatura_best") else ""),
                              r, r["timing"])
            rows.append(row + [f3(r["sets"][s]["f1"]) for s in sets_present])
        md.append(md_table(["setting"] + hdr[1:] + [f"F1 {s}" for s in sets_present], rows))
    v = results["versions"]
    md.append("\nversions: " + ", ".join(f"{k} {v[k]}" for k in v)
              + (f", paratag {results.get('paratag_git', '?')}" if "paratag" in scored else ""))
    for l in main_labels:
        errs = scored[l][1].get("errors", [])
        if errs:
            md.append(f"\n{l}: {len(errs)} page(s) raised an error (scored as empty), e.g. {errs[0]}")
    if "paratag" in scored:
        md.append(f"\nparatag: `{scored['paratag'][1]['command']}`; "
                  f"{scored['paratag'][1]['pages_without_rows']} page(s) without rows; "
                  f"{scored['paratag'][1]['summary']}")
    text = "\n".join(md) + "\n"
    print("\n" + text)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, ensure_ascii=False, default=str)
    print(f"results: {out}/results.md, results.json, predictions/*.jsonl, scores/*.tsv")


if __name__ == "__main__":
    sys.exit(main())
