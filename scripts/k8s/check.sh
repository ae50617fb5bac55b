#!/usr/bin/env bash
# Checks the Kubernetes manifests without a cluster:
#  1. validates them against the Kubernetes API schemas (kubernetes-validate,
#     installed from PyPI into a cache folder);
#  2. runs the tag Job's command line here for every completion index, with
#     JOB_COMPLETION_INDEX set as Kubernetes sets it and /data mapped to a
#     local folder holding the shipped corpus, codebook and heads, then the
#     merge Job's command, and compares the merged dataset with a single run.
#   scripts/k8s/check.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/scripts/k8s"
cache="${PARATAG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag}"
venv="$cache/pyenv-k8s"
work="${WORK:-/tmp/paratag-k8s}"
bin="$root/target/release/paratag"
say() { printf 'k8s-check: %s\n' "$*" >&2; }
if [[ ! -f "$venv/.complete" ]]; then
  rm -rf "$venv" && python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet kubernetes-validate==1.37.0 pyyaml
  touch "$venv/.complete"
fi
"$venv/bin/kubernetes-validate" --strict -k 1.31.0 "$here/tag-indexed-job.yaml" "$here/merge-job.yaml"

rm -rf "$work" && mkdir -p "$work/data/codebooks" "$work/data/heads"
cp "$root/datasets/ukraine-aid/articles.jsonl" "$work/data/corpus.jsonl"
cp "$root/datasets/codebooks/ukraine-heads.toml" "$work/data/codebooks/"
cp -r "$root/models/heads/"ukraine-* "$work/data/heads/"
# The containers' command lines and the completion count, from the YAML.
"$venv/bin/python" - "$here/tag-indexed-job.yaml" "$here/merge-job.yaml" "$work" <<'PY' > "$work/plan.sh"
import shlex, sys, yaml
tag_file, merge_file, work = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(tag_file)) if d and d["kind"] == "Job"]
job = docs[0]
n = job["spec"]["completions"]
cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
merge = [d for d in yaml.safe_load_all(open(merge_file)) if d][0]
mcmd = merge["spec"]["template"]["spec"]["containers"][0]["command"]
local = lambda c: [a.replace("/data", f"{work}/data") for a in c]
print(f"completions={n}")
print("tag=(" + " ".join(shlex.quote(a) for a in local(cmd)) + ")")
print("merge=(" + " ".join(shlex.quote(a) for a in local(mcmd)) + ")")
PY
# shellcheck disable=SC1091
source "$work/plan.sh"
tag[0]="$bin"; merge[0]="$bin"
for ((k = 0; k < completions; k++)); do
  say "index $k: ${tag[*]:1}"
  JOB_COMPLETION_INDEX=$k "${tag[@]}" -q
done
"${merge[@]}"
"$bin" tag "$work/data/corpus.jsonl" -o "$work/single.parquet" -q \
  -c "$work/data/codebooks/ukraine-heads.toml" \
  --heads "$work/data/heads/ukraine-topic" "$work/data/heads/ukraine-stance" "$work/data/heads/ukraine-ner"
"$root/.pyenv/bin/python" - "$work/single.parquet" "$work/data/out" <<'PY'
import sys, polars as pl
a = pl.read_parquet(sys.argv[1]).sort("article_id", "paragraph")
b = pl.scan_parquet(f"{sys.argv[2]}/*/*.parquet").collect().sort("article_id", "paragraph")
print(f"k8s-check: {b.height} rows from the shards, {a.height} from a single run; identical: {a.equals(b)}")
sys.exit(0 if a.equals(b) else 1)
PY
