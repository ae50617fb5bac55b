#!/usr/bin/env bash
# Checks the Kubernetes manifests without a cluster:
#  1. validates them against the Kubernetes API schemas (kubernetes-validate,
#     installed from PyPI into a cache folder);
#  2. runs the tag Job's command line for every completion index, with
#     JOB_COMPLETION_INDEX set as Kubernetes sets it and the container's env
#     set and put in place of $(VAR) as Kubernetes does; then the merge
#     Job's command; and compares the merged dataset with a single run of
#     target/release/paratag with the same profile.
#     Where podman has the manifests' image (scripts/container.sh builds
#     it), each pod runs in it as the manifest says: uid 10001, read-only
#     root, no network, the volume (a local folder holding the shipped
#     corpus) at /data. Otherwise the commands run here with /data mapped to
#     that folder and the local model store standing in for the image's.
# Needs a build and its model store with the Job's profile (scripts/setup.sh
# installs `default`); the local store is PARATAG_HOME, default
# ~/.cache/paratag/home.
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

store="${PARATAG_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag/home}"
rm -rf "$work" && mkdir -p "$work/data"
cp "$root/datasets/ukraine-aid/articles.jsonl" "$work/data/corpus.jsonl"
# The containers' command lines and env, and the completion count, from the
# YAML; $(VAR) in a command takes the container's env value, as in Kubernetes.
"$venv/bin/python" - "$here/tag-indexed-job.yaml" "$here/merge-job.yaml" "$work" <<'PY' > "$work/plan.sh"
import re, shlex, sys, yaml
tag_file, merge_file, work = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(tag_file)) if d and d["kind"] == "Job"]
job = docs[0]
n = job["spec"]["completions"]
container = job["spec"]["template"]["spec"]["containers"][0]
local = lambda a: a.replace("/data", f"{work}/data")
env = {e["name"]: e["value"] for e in container.get("env", [])}
expand = lambda a: re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), a)
cmd = [expand(a) for a in container["command"]]
merge = [d for d in yaml.safe_load_all(open(merge_file)) if d][0]
mc = merge["spec"]["template"]["spec"]["containers"][0]
q = lambda c: " ".join(shlex.quote(a) for a in c)
images = {container["image"], mc["image"]}
if len(images) != 1:
    sys.exit(f"k8s-check: the Jobs name different images: {sorted(images)}")
print(f"completions={n}")
print(f"image={shlex.quote(container['image'])}")
print("podenv=(" + q(f"{k}={v}" for k, v in env.items()) + ")")
print("localenv=(" + q(f"{k}={local(v)}" for k, v in env.items()) + ")")
print(f"profile={shlex.quote(env.get('PARATAG_PROFILE', 'default'))}")
print("tag=(" + q(cmd) + ")")
print("localtag=(" + q(local(a) for a in cmd) + ")")
print("merge=(" + q(mc["command"]) + ")")
print("localmerge=(" + q(local(a) for a in mc["command"]) + ")")
PY
# shellcheck disable=SC1091
source "$work/plan.sh"
[[ -x "$bin" ]] || { say "build first: scripts/setup.sh"; exit 1; }
[[ -f "$store/profiles/$profile/profile.toml" ]] || {
  say "no profile $profile in $store (scripts/setup.sh installs default)"; exit 1; }
if command -v podman >/dev/null && podman image exists "$image" 2>/dev/null; then
  say "running the pods in the image $image"
  # shellcheck source=scripts/podman-run.sh
  source "$root/scripts/podman-run.sh" "$image"
  chmod 0777 "$work/data" # fsGroup 10001 in the manifest
  pod=(podman run --rm --read-only --network none --user 10001:10001 "${podman_args[@]}"
    -v "$work/data:/data" --entrypoint "")
  for e in "${podenv[@]}"; do pod+=(-e "$e"); done
  for ((k = 0; k < completions; k++)); do
    say "index $k: ${podenv[*]} ${tag[*]}"
    "${pod[@]}" -e JOB_COMPLETION_INDEX=$k "$image" "${tag[@]}" -q
  done
  "${pod[@]}" "$image" "${merge[@]}"
else
  say "no image $image in podman (scripts/container.sh builds it): running the commands with $bin"
  localtag[0]="$bin"; localmerge[0]="$bin"
  for ((k = 0; k < completions; k++)); do
    say "index $k: ${localenv[*]} ${localtag[*]:1}"
    env PARATAG_HOME="$store" "${localenv[@]}" JOB_COMPLETION_INDEX=$k "${localtag[@]}" -q
  done
  "${localmerge[@]}"
fi
PARATAG_HOME="$store" "$bin" tag "$work/data/corpus.jsonl" -o "$work/single.parquet" -q \
  --profile "$profile"
"$root/.pyenv/bin/python" - "$work/single.parquet" "$work/data/out" <<'PY'
import sys, polars as pl
a = pl.read_parquet(sys.argv[1]).sort("article_id", "paragraph")
b = pl.scan_parquet(f"{sys.argv[2]}/*/*.parquet").collect().sort("article_id", "paragraph")
# Which of several paragraphs with the same text is the first depends on
# the shard split (docs/commands.md, "Repeated paragraphs"); nothing else may.
first = ["dup_of_article_id", "dup_of_paragraph"]
same = a.drop(first).equals(b.drop(first))
print(f"k8s-check: {b.height} rows from the shards, {a.height} from a single run; identical but for dup_of_*: {same}")
sys.exit(0 if same else 1)
PY
