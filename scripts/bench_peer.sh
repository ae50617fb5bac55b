#!/usr/bin/env bash
# paratag vs HF transformers, side by side (not part of CI). Needs
# scripts/setup.sh first; makes a ~3 GB venv (torch 2.4.0, transformers) in the user cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PARATAG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag}"
venv="$cache/peer-venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.4.0 transformers==4.46.3 "numpy<2" "polars==1.*"
fi
echo "paratag $(git -C "$root" rev-parse --short HEAD) on $(date -u +%F), $(nproc) cores"
"$venv/bin/python" "$root/scripts/bench_peer.py"
