#!/usr/bin/env python3
"""Peak memory and throughput of `paratag tag` as the corpus grows.

Builds 1x, 10x and 100x copies of the ukraine-aid articles (new ids per
copy: 410, 4,100 and 41,000 paragraphs), tags each with the README quick
start settings (shipped codebook and heads, `-o out.parquet`), and reports
wall time, paragraphs/s and peak RSS (`/usr/bin/time -f %M`). With
`--base OTHER_BINARY`, the two binaries run alternately on the same corpora
in the same invocation, so their ratio is measured side by side.

    scripts/bench_scale.py [--sizes 1,10,100] [--base BIN] [--base-sizes 1,10] [--rounds 1]
"""
import argparse, json, os, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=f"{root}/target/release/paratag")
ap.add_argument("--base", help="another paratag binary to run side by side")
ap.add_argument("--sizes", default="1,10,100")
ap.add_argument("--base-sizes", default="1,10")
ap.add_argument("--rounds", type=int, default=1,
                help="alternating rounds of the sizes both binaries run (others run once)")
ap.add_argument("--json", help="write the runs here")
a = ap.parse_args()

work = tempfile.mkdtemp(prefix="paratag-scale-")
rows = [json.loads(l) for l in open(f"{root}/datasets/ukraine-aid/articles.jsonl", encoding="utf-8")]
opts = ["-c", f"{root}/datasets/codebooks/ukraine-heads.toml", "--heads",
        f"{root}/models/heads/ukraine-topic", f"{root}/models/heads/ukraine-stance",
        f"{root}/models/heads/ukraine-ner", "-q"]

def corpus(k):
    p = f"{work}/x{k}.jsonl"
    if not os.path.exists(p):
        with open(p, "w", encoding="utf-8") as f:
            for c in range(k):
                for r in rows:
                    f.write(json.dumps({**r, "id": f"{r['id']}-{c}"}, ensure_ascii=False) + "\n")
    return p

def run(binary, k):
    out = f"{work}/out.parquet"
    t = subprocess.run(["/usr/bin/time", "-f", "%e %M", binary, "tag", corpus(k), "-o", out] + opts,
                       capture_output=True, text=True)
    if t.returncode != 0:
        sys.exit(f"{binary} failed: {t.stderr}")
    wall, rss = t.stderr.strip().splitlines()[-1].split()
    n = 410 * k
    os.remove(out)
    return {"binary": binary, "copies": k, "paragraphs": n, "seconds": float(wall),
            "paragraphs_per_s": n / float(wall), "peak_rss_mb": int(rss) / 1024}

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

print(f"| corpus | paragraphs | this build: s, paragraphs/s, peak RSS MB |" + (" base: s, paragraphs/s, peak RSS MB | speed ratio |" if a.base else ""))
print("|---|---|---|" + ("---|---|" if a.base else ""))
for k in sorted(set(sizes) | set(base_sizes)):
    n, x, y = best(a.bin, k), best(a.bin, k), best(a.base, k) if a.base else None
    cell = lambda r: f"{r['seconds']:.1f}, {r['paragraphs_per_s']:.1f}, {r['peak_rss_mb']:.0f}" if r else "–"
    line = f"| {k}x | {410 * k} | {cell(x)} |"
    if a.base:
        ratio = f"{y['seconds'] / x['seconds']:.2f}" if x and y else "–"
        line += f" {cell(y)} | {ratio} |"
    print(line)
if a.json:
    json.dump(runs, open(a.json, "w"), indent=1)
