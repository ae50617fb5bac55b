#!/usr/bin/env bash
# Quality and speed figures for the README (not part of CI). Needs
# scripts/setup.sh first. Makes a Python venv in the user cache:
#   scripts/bench.sh          paratag's own figures (venv with polars)
#   scripts/bench.sh --peer   paratag vs HF transformers (venv with torch 2.4.0,
#                             transformers and polars, about 3 GB)
#   scripts/bench.sh --heads  tag with the shipped heads vs NLI zero-shot + NER (same venv)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PARATAG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag}"
if [[ "${1:-}" == "--peer" || "${1:-}" == "--heads" ]]; then
  venv="$cache/peer-venv" pkgs=(torch==2.4.0 transformers==4.46.3 "numpy<2" "polars==1.*")
  script=bench_peer.py
  [[ "$1" == "--heads" ]] && script=bench_heads.py
else
  venv="$cache/bench-venv" script=bench.py pkgs=("polars==1.*")
fi
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "${pkgs[@]}"
fi
echo "paratag $(git -C "$root" rev-parse --short HEAD) on $(date -u +%F), $(nproc) cores"
"$venv/bin/python" "$root/scripts/$script"
