#!/usr/bin/env bash
# Quality and speed figures for docs/benchmarks.md (not part of CI). Needs
# scripts/setup.sh first. Makes a Python venv in the user cache:
#   scripts/bench.sh          paratag's own figures (venv with polars)
#   scripts/bench.sh --peer   paratag vs HF transformers and ONNX Runtime at
#                             their best, same weights (scripts/bench_peers.py;
#                             venv with torch 2.4.0, transformers, onnxruntime,
#                             polars, about 3 GB); options after --peer go to it
#   scripts/bench.sh --heads  tag with the shipped heads vs NLI zero-shot + NER (same venv)
#   scripts/bench.sh --profile  where the default model's time goes, op by op
#                             (scripts/profile_encoder.py; same venv)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PARATAG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag}"
if [[ "${1:-}" == "--peer" || "${1:-}" == "--heads" || "${1:-}" == "--profile" ]]; then
  venv="$cache/peer-venv" pkgs=(torch==2.4.0 transformers==4.46.3 "numpy<2" "polars==1.*" onnxruntime==1.20.1 onnx==1.17.0)
  script=bench_peers.py
  [[ "$1" == "--heads" ]] && script=bench_heads.py
  [[ "$1" == "--profile" ]] && script=profile_encoder.py
else
  venv="$cache/bench-venv" script=bench.py pkgs=("polars==1.*")
fi
# Re-made when the package list changes; set-up's cached wheels are reused.
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.pkgs" 2>/dev/null)" != "${pkgs[*]}" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --find-links "$cache/wheels" "${pkgs[@]}"
  echo "${pkgs[*]}" > "$venv/.pkgs"
fi
echo "paratag $(git -C "$root" rev-parse --short HEAD) on $(date -u +%F), $(nproc) cores"
shift || true
"$venv/bin/python" "$root/scripts/$script" "$@"
