#!/usr/bin/env bash
# Quality and speed figures for the README (not part of CI). Needs
# scripts/setup.sh first; makes a Python venv with polars in the user cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PARATAG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag}"
venv="$cache/bench-venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "polars==1.*"
fi
echo "paratag $(git -C "$root" rev-parse --short HEAD) on $(date -u +%F), $(nproc) cores"
"$venv/bin/python" "$root/scripts/bench.py"
