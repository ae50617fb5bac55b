#!/usr/bin/env bash
# Builds the container image from the release bundle, and runs the README's
# quick start in it as a non-root user with the corpus and the output as
# mounted volumes.
#
#   scripts/container.sh [--base IMAGE] [--tag NAME] [--no-run]
#
# 1. The bundle: dist/paratag-<version>-linux-x86_64.tar.zst, made by
#    scripts/package.sh when missing (needs scripts/setup.sh first).
# 2. The base: --base IMAGE (e.g. docker.io/library/debian:bookworm-slim,
#    where a registry can be reached). Without it, a Debian bookworm base is
#    built from Debian's packages with mmdebstrap (minbase, no docs or
#    locales) and imported as localhost/paratag-base:bookworm, once.
# 3. The image: `podman build -f Containerfile` (or buildah) on a context
#    folder holding the unpacked bundle; tagged --tag (default
#    localhost/paratag:<version>).
# 4. The check (skip with --no-run): `tag datasets/example/` inside the
#    image as uid 10001, with no network and a read-only root (as the
#    Kubernetes Job runs it), the example mounted read-only at
#    /in and a fresh output folder at /out; its label columns must equal
#    target/release/paratag's on the same input (same dtype, f32).
#
# Needs podman (or buildah for steps 1-3) and mmdebstrap; as root with apt
# they are installed from Debian when missing. Where the runtime refuses
# the default limits (a sandbox that forbids raising RLIMIT_NPROC, or
# cgroups in hybrid mode that crun does not support), the run falls back to
# runc with the process's own limits, and says so (scripts/podman-run.sh).
# Set PODMAN_RUN_ARGS to pass other `podman run` options. Not part of CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
base=""
run=1
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tag=localhost/paratag:$version
while [[ $# -gt 0 ]]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --no-run) run=0; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "container: unknown option $1" >&2; exit 2 ;;
  esac
done
say() { printf 'container: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- tools --------------------------------------------------------------------
need=()
command -v podman > /dev/null || command -v buildah > /dev/null || need+=(podman buildah uidmap runc)
[[ -n $base ]] || command -v mmdebstrap > /dev/null || need+=(mmdebstrap)
if [[ ${#need[@]} -gt 0 ]]; then
  [[ $(id -u) == 0 ]] && command -v apt-get > /dev/null \
    || die "install ${need[*]} (Debian/Ubuntu: apt-get install ${need[*]})"
  say "installing ${need[*]} from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null
fi
if command -v podman > /dev/null; then engine=podman; else engine=buildah; fi

# --- the bundle ---------------------------------------------------------------
name=paratag-$version-linux-x86_64
bundle=$(ls dist/"$name".tar.* 2> /dev/null | head -n 1 || true)
if [[ -z $bundle ]]; then
  say "no bundle in dist/: running scripts/package.sh"
  scripts/package.sh dist
  bundle=$(ls dist/"$name".tar.* | head -n 1)
fi
ctx=$(mktemp -d "${TMPDIR:-/tmp}/paratag-image-XXXXXX")
trap 'rm -rf "$ctx"' EXIT
tar -C "$ctx" -xaf "$bundle"
[[ -x $ctx/$name/bin/paratag ]] || die "$bundle holds no $name/bin/paratag"

# --- the base -----------------------------------------------------------------
if [[ -z $base ]]; then
  base=localhost/paratag-base:bookworm
  if ! $engine image exists "$base" 2> /dev/null; then
    say "building $base with mmdebstrap (Debian bookworm, minbase)"
    # The paths debian:bookworm-slim also leaves out.
    mmdebstrap --variant=minbase --quiet \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      bookworm "$ctx/base.tar"
    $engine import --quiet "$ctx/base.tar" "$base" > /dev/null
    rm -f "$ctx/base.tar"
  fi
fi

# --- the image ----------------------------------------------------------------
say "building $tag on $base"
if [[ $engine == podman ]]; then
  podman build --quiet -f Containerfile --build-arg BASE="$base" --build-arg BUNDLE="$name" -t "$tag" "$ctx" > /dev/null
else
  buildah bud --quiet -f Containerfile --build-arg BASE="$base" --build-arg BUNDLE="$name" -t "$tag" "$ctx" > /dev/null
fi
$engine images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -F "${tag#localhost/}" | head -n 1 | sed 's/^/container: image /' >&2
[[ $run == 1 ]] || exit 0
[[ $engine == podman ]] || die "running the check needs podman (buildah built the image)"

# --- the quick start inside it ------------------------------------------------
bin=target/release/paratag
[[ -x $bin ]] || die "$bin missing: run scripts/setup.sh"
py=.pyenv/bin/python
[[ -x $py ]] || die "$py missing: run scripts/setup.sh"
out=$ctx/out
mkdir -p "$out" && chmod 0777 "$out"
# shellcheck source=scripts/podman-run.sh
source scripts/podman-run.sh "$tag"
# As the Kubernetes Job runs it: a read-only root (podman mounts a tmpfs on
# /tmp, the image's HOME), no network, not root.
podman run --rm --read-only --network none --user 10001:10001 "${podman_args[@]}" \
  -v "$root/datasets/example:/in:ro" -v "$out:/out" -e PARATAG_DTYPE=f32 \
  "$tag" tag /in -o /out/example.parquet -q
[[ -s $out/example.parquet ]] || die "the container wrote no $out/example.parquet"
PARATAG_DTYPE=f32 "$bin" tag datasets/example -o "$ctx/build.parquet" -q
"$py" - "$out/example.parquet" "$ctx/build.parquet" <<'PY'
import sys
import polars as pl
a, b = pl.read_parquet(sys.argv[1]), pl.read_parquet(sys.argv[2])
cols = [c for c in b.columns
        if c == "lang" or c.startswith("topic") or c.startswith("stance_") or c == "entities"]
assert a.height == b.height, f"rows: container {a.height}, build {b.height}"
bad = [c for c in cols if not a[c].equals(b[c], null_equal=True)]
if bad or len(cols) < 8:
    sys.exit(f"container: label columns differ from the build's: {bad or cols}")
print(f"container: the image tagged {a.height} paragraphs as uid 10001, read-only root, no network; "
      f"{len(cols)} label columns equal the build's", file=sys.stderr)
PY
