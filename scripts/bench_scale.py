#!/usr/bin/env python3
"""Peak memory and throughput of `paratag tag` as the corpus grows.

Builds 1x, 10x and 100x copies of the ukraine-aid articles (new ids per
copy), tags each with the README quick-start settings (the default profile,
`-o out.parquet`), and reports wall time, paragraphs/s, peak RSS
(`/usr/bin/time -f %M`) and the RSS sampled through the run: at a quarter,
half, three quarters and the end of the run, and its largest value in the
first and in the second half. A corpus-wide structure that grew with the
corpus would show as RSS still rising through the second half; a bounded
job plateaus once its windows are full. With `--base OTHER_BINARY`, the two
binaries run alternately on the same corpora in the same invocation, so
their ratio is measured side by side.

    scripts/bench_scale.py [--sizes 1,10,100] [--base BIN] [--base-sizes 1,10]
                           [--rounds 1] [--json F] [-- extra tag options]
"""
import argparse, json, os, subprocess, sys, tempfile, threading, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=f"{root}/target/release/paratag")
ap.add_argument("--base", help="another paratag binary to run side by side")
ap.add_argument("--sizes", default="1,10,100")
ap.add_argument("--base-sizes", default="1,10")
ap.add_argument("--rounds", type=int, default=1,
                help="alternating rounds of the sizes both binaries run (others run once)")
ap.add_argument("--json", help="write the runs here")
ap.add_argument("opts", nargs="*", help="extra `paratag tag` options (after --)")
a = ap.parse_args()

work = tempfile.mkdtemp(prefix="paratag-scale-")
rows = [json.loads(l) for l in open(f"{root}/datasets/ukraine-aid/articles.jsonl", encoding="utf-8")]


def corpus(k):
    p = f"{work}/x{k}.jsonl"
    if not os.path.exists(p):
        with open(p, "w", encoding="utf-8") as f:
            for c in range(k):
                for r in rows:
                    f.write(json.dumps({**r, "id": f"{r['id']}-{c}"}, ensure_ascii=False) + "\n")
    return p


def sample_rss(pid_of, out, stop):
    """RSS of the paratag process (the child of /usr/bin/time), every 0.25 s."""
    t0 = time.time()
    while not stop.is_set():
        pid = pid_of()
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out.append((time.time() - t0, int(line.split()[1]) / 1024))
        except (OSError, ValueError, TypeError):
            pass
        stop.wait(0.25)


def run(binary, k):
    out = f"{work}/out.parquet"
    p = subprocess.Popen(["/usr/bin/time", "-f", "%e %M", binary, "tag", corpus(k), "-o", out, "--force"]
                         + a.opts, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def child():
        try:
            return int(open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    series, stop = [], threading.Event()
    th = threading.Thread(target=sample_rss, args=(child, series, stop))
    th.start()
    err = p.communicate()[1]
    stop.set()
    th.join()
    if p.returncode != 0:
        sys.exit(f"{binary} failed: {err}")
    lines = err.strip().splitlines()
    wall, rss = lines[-1].split()
    summary = next(l for l in reversed(lines) if "boilerplate lines dropped" in l)
    n = int(summary.split(" paragraphs, ")[0].split()[-1])
    os.remove(out)
    at = lambda f: series[min(len(series) - 1, int(f * len(series)))][1] if series else None
    half = len(series) // 2
    return {"binary": binary, "copies": k, "paragraphs": n, "seconds": float(wall),
            "paragraphs_per_s": n / float(wall), "peak_rss_mb": int(rss) / 1024,
            "rss_quarters_mb": [at(0.25), at(0.5), at(0.75), at(1.0)],
            "rss_max_first_half_mb": max((s[1] for s in series[:half]), default=None),
            "rss_max_second_half_mb": max((s[1] for s in series[half:]), default=None)}


runs = []
sizes = [int(x) for x in a.sizes.split(",")]
base_sizes = [int(x) for x in a.base_sizes.split(",")] if a.base else []
for rnd in range(a.rounds):
    for k in sorted(set(sizes) | set(base_sizes)):
        if rnd > 0 and k not in base_sizes:
            continue
        for b in ([a.bin] if k in sizes else []) + ([a.base] if k in base_sizes else []):
            r = run(b, k)
            r["round"] = rnd
            runs.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)


def best(b, k):
    rs = [r for r in runs if r["binary"] == b and r["copies"] == k]
    return min(rs, key=lambda r: r["seconds"]) if rs else None


mb = lambda x: f"{x:,.0f}" if x is not None else "–"
print("| corpus | paragraphs | s | paragraphs/s | peak RSS MB | RSS at 1/4, 1/2, 3/4, end | max RSS 1st half, 2nd half |"
      + (" base: s, peak RSS MB | speed ratio |" if a.base else ""))
print("|---|---|---|---|---|---|---|" + ("---|---|" if a.base else ""))
for k in sorted(set(sizes) | set(base_sizes)):
    x, y = best(a.bin, k), best(a.base, k) if a.base else None
    if x:
        line = (f"| {k}x | {x['paragraphs']:,} | {x['seconds']:.1f} | {x['paragraphs_per_s']:.1f} | "
                f"{mb(x['peak_rss_mb'])} | {', '.join(mb(q) for q in x['rss_quarters_mb'])} | "
                f"{mb(x['rss_max_first_half_mb'])}, {mb(x['rss_max_second_half_mb'])} |")
    else:
        line = f"| {k}x | – | – | – | – | – | – |"
    if a.base:
        ratio = f"{y['seconds'] / x['seconds']:.2f}" if x and y else "–"
        line += f" {y['seconds']:.1f}, {mb(y['peak_rss_mb'])} | {ratio} |" if y else " – | – |"
    print(line)
if a.json:
    json.dump(runs, open(a.json, "w"), indent=1)
